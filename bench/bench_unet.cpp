// U-Net training step and inference (docs/segmentation.md): unet, base 16,
// depth 4, transposed-conv upsampling, 7 classes, batch 8 of 96x96, LibTorch threads = 2 --
// the same network and step as tools/bench_unet_python.py (bench/compare_unet.sh pairs them).
// Training: AdamW (lr 0.002, wd 1e-4), cross-entropy with ignore 255, the plain TorchScript
// interpreter as the trainer runs it. Inference: eval mode, no grad, argmax, as the Segmenter
// runs it (graph executor on).
#include <malloc.h>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "sightline/segment.hpp"

using namespace sightline;

namespace {

constexpr int64_t kBatch = 8, kSize = 96, kClasses = 7;

torch::jit::Module make_unet() {
    at::set_num_threads(2);
    SegArchOptions o;
    o.num_classes = kClasses;
    o.base = 16;
    o.depth = 4;
    return build_segmentation_model("unet", o);
}

void BM_UNetTrainStep(benchmark::State& state) {
    torch::jit::setGraphExecutorOptimize(false);
    torch::jit::Module model = make_unet();
    model.train();
    std::vector<torch::Tensor> params;
    for (const auto& p : model.parameters(true)) params.push_back(p);
    torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(0.002).weight_decay(1e-4));
    torch::manual_seed(0);
    torch::Tensor x = torch::randn({kBatch, 3, kSize, kSize});
    torch::Tensor target = torch::randint(0, kClasses, {kBatch, kSize, kSize}, torch::kLong);
    target.slice(1, 0, 4).fill_(255);
    auto step = [&] {
        optimizer.zero_grad();
        torch::Tensor loss = segmentation_loss(model.forward({x}).toTensor(), target);
        loss.backward();
        optimizer.step();
    };
    step();
    for (auto _ : state) step();
    state.counters["images/s"] = benchmark::Counter(static_cast<double>(kBatch), benchmark::Counter::kIsIterationInvariantRate);
    torch::jit::setGraphExecutorOptimize(true);
}
BENCHMARK(BM_UNetTrainStep)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

void BM_UNetInference(benchmark::State& state) {
    torch::jit::Module model = make_unet();
    model.eval();
    torch::NoGradGuard no_grad;
    torch::manual_seed(0);
    torch::Tensor x = torch::randn({kBatch, 3, kSize, kSize});
    for (int i = 0; i < 3; ++i) model.forward({x}).toTensor().argmax(1);  // profiling executor warm-up
    for (auto _ : state) benchmark::DoNotOptimize(model.forward({x}).toTensor().argmax(1));
    state.counters["images/s"] = benchmark::Counter(static_cast<double>(kBatch), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_UNetInference)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

}  // namespace

int main(int argc, char** argv) {
    // As app/main.cpp (the sightline binary trains and segments with this): keep large freed
    // blocks instead of returning them to the kernel after every step.
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
