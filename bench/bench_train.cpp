// Training step of the built-in ResNet (docs/training.md): resnet_gap, width 16,
// depth 1,1,1,1, output stride 8, 96x96 inputs, batch 32, 6 classes, SGD with momentum,
// LibTorch threads = 2 -- the same step as tools/bench_train_python.py (bench/compare_train.sh
// prints the ratio). Also: one batch from the loader (decode-free, in-memory images), to show
// what the data side costs per step.
#include <malloc.h>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "sightline/architectures.hpp"
#include "sightline/train.hpp"

using namespace sightline;

namespace {

constexpr int64_t kBatch = 32, kSize = 96, kClasses = 6;

struct Step {
    torch::jit::Module model;
    std::unique_ptr<torch::optim::SGD> optimizer;
    torch::Tensor x, targets;

    Step() {
        at::set_num_threads(2);
        ArchOptions o;
        o.num_classes = kClasses;
        o.input_size = kSize;
        model = build_architecture("resnet_gap", o);
        model.train();
        std::vector<torch::Tensor> params;
        for (const auto& p : model.parameters(true)) params.push_back(p);
        optimizer = std::make_unique<torch::optim::SGD>(
            params, torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(5e-4));
        torch::manual_seed(0);
        x = torch::randn({kBatch, 3, kSize, kSize});
        targets = torch::one_hot(torch::randint(kClasses, {kBatch}), kClasses).to(torch::kFloat);
    }
    void run() {
        optimizer->zero_grad();
        torch::Tensor loss = classification_loss(Objective::kSingleLabel, model.forward({x}).toTensor(), targets);
        loss.backward();
        optimizer->step();
    }
};

// As the trainer runs it: the plain TorchScript interpreter (graph optimiser off).
void BM_TrainStep(benchmark::State& state) {
    torch::jit::setGraphExecutorOptimize(false);
    Step step;
    step.run();
    for (auto _ : state) step.run();
    state.counters["images/s"] = benchmark::Counter(static_cast<double>(kBatch), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_TrainStep)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(4.0);

// For comparison: with the profiling graph executor's optimisations (not used for training,
// because it swaps graphs after warm-up runs and a resumed run must repeat the numbers).
void BM_TrainStepGraphOptimised(benchmark::State& state) {
    torch::jit::setGraphExecutorOptimize(true);
    Step step;
    for (int i = 0; i < 3; ++i) step.run();
    for (auto _ : state) step.run();
    torch::jit::setGraphExecutorOptimize(false);
}
BENCHMARK(BM_TrainStepGraphOptimised)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(4.0);

class NoiseImages : public Dataset {
public:
    std::size_t size() const override { return 256; }
    const std::vector<std::string>& class_names() const override { return names_; }
    Sample get(std::size_t i) const override {
        Sample s;
        s.id = std::to_string(i);
        s.image = cv::Mat(kSize, kSize, CV_8UC3);
        cv::randu(s.image, 0, 255);
        s.labels = {static_cast<int>(i % kClasses) + 1};
        return s;
    }

private:
    std::vector<std::string> names_ = {"background", "a", "b", "c", "d", "e", "f"};
};

// One augmented batch (flip + colour jitter + normalisation) on one worker thread.
void BM_LoaderBatch(benchmark::State& state) {
    NoiseImages data;
    LoaderOptions o;
    o.batch_size = kBatch;
    o.input_size = kSize;
    o.augment = true;
    o.augment_options.crop = false;
    o.workers = 1;
    o.prefetch = 1;
    BatchLoader loader(data, o);
    int64_t epoch = 0;
    loader.start_epoch(epoch);
    for (auto _ : state) {
        auto batch = loader.next();
        if (!batch) {
            loader.start_epoch(++epoch);
            batch = loader.next();
        }
        benchmark::DoNotOptimize(batch->images.data_ptr());
    }
}
BENCHMARK(BM_LoaderBatch)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
    // As app/main.cpp: keep large blocks instead of returning them to the kernel after each
    // step (the sightline binary trains with this setting).
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
