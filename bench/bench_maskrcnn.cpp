// Mask R-CNN inference and training step (docs/mask-rcnn.md, Speed): the parity fixture's
// configuration and weights (ResNet-18 FPN, 4 classes, min_size 160, max_size 224, score
// threshold 0.01; build/maskrcnn-fixtures/state_dict.pth, torchvision's initialisation made
// to detect), two images of 240x320 and 200x180 drawn by a formula, LibTorch threads = 2.
// tools/bench_maskrcnn_python.py runs torchvision's model on the same weights and images;
// bench/compare_maskrcnn.sh pairs them.
#include <malloc.h>

#include <cmath>
#include <cstdlib>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "sightline/maskrcnn.hpp"

using namespace sightline;

namespace {

// Smooth colour waves with two flat rectangles (the objects of the training targets); the
// Python side draws the same pixels with the same formula.
torch::Tensor bench_image(int64_t height, int64_t width) {
    torch::Tensor y = torch::arange(height, torch::kFloat32).view({1, height, 1});
    torch::Tensor x = torch::arange(width, torch::kFloat32).view({1, 1, width});
    torch::Tensor c = torch::arange(3, torch::kFloat32).view({3, 1, 1});
    torch::Tensor img = 0.5 + 0.4 * torch::sin(0.07 * x + 0.11 * y + 2.0 * c);
    img.slice(1, height / 5, height / 2).slice(2, width / 4, width / 2).select(0, 0).fill_(0.9);
    img.slice(1, height / 2, height - 10).slice(2, width / 2, width - 5).select(0, 2).fill_(0.1);
    return img.contiguous();
}

std::vector<torch::Tensor> bench_images() { return {bench_image(240, 320), bench_image(200, 180)}; }

std::vector<InstanceTarget> bench_targets(const std::vector<torch::Tensor>& images) {
    std::vector<InstanceTarget> out;
    for (const auto& img : images) {
        const int64_t h = img.size(1), w = img.size(2);
        const int64_t rects[2][5] = {{1, h / 5, h / 2, w / 4, w / 2}, {2, h / 2, h - 10, w / 2, w - 5}};
        InstanceTarget t;
        t.masks = torch::zeros({2, h, w}, torch::kUInt8);
        std::vector<float> boxes;
        std::vector<int64_t> labels;
        for (int k = 0; k < 2; ++k) {
            const auto* r = rects[k];
            t.masks[k].slice(0, r[1], r[2]).slice(1, r[3], r[4]).fill_(1);
            boxes.insert(boxes.end(), {static_cast<float>(r[3]), static_cast<float>(r[1]), static_cast<float>(r[4]),
                                       static_cast<float>(r[2])});
            labels.push_back(r[0]);
        }
        t.boxes = torch::tensor(boxes).view({2, 4});
        t.labels = torch::tensor(labels);
        out.push_back(t);
    }
    return out;
}

MaskRCNN fixture_model() {
    at::set_num_threads(2);
    MaskRCNNConfig config;
    config.depth = 18;
    config.num_classes = 4;
    config.min_size = 160;
    config.max_size = 224;
    config.box_score_thresh = 0.01;
    MaskRCNN model(config);
    const char* env = std::getenv("SIGHTLINE_MASKRCNN_WEIGHTS");
    load_state_dict(*model, env ? env : SIGHTLINE_MASKRCNN_FIXTURES_DIR "/state_dict.pth");
    return model;
}

void BM_MaskRCNNInference(benchmark::State& state) {
    MaskRCNN model = fixture_model();
    model->eval();
    const std::vector<torch::Tensor> images = bench_images();
    int64_t detections = 0;
    for (const auto& d : model->detect(images).detections) detections += d.boxes.size(0);
    for (auto _ : state) benchmark::DoNotOptimize(model->detect(images));
    state.counters["images/s"] = benchmark::Counter(2.0, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["detections"] = static_cast<double>(detections);
}
BENCHMARK(BM_MaskRCNNInference)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

void BM_MaskRCNNTrainStep(benchmark::State& state) {
    MaskRCNN model = fixture_model();
    model->train();
    std::vector<torch::Tensor> params;
    for (const auto& p : model->parameters())
        if (p.requires_grad()) params.push_back(p);
    torch::optim::SGD optimizer(params, torch::optim::SGDOptions(0.001).momentum(0.9).weight_decay(1e-4));
    const std::vector<torch::Tensor> images = bench_images();
    const std::vector<InstanceTarget> targets = bench_targets(images);
    torch::manual_seed(0);
    auto step = [&] {
        optimizer.zero_grad();
        model->losses(images, targets).total().backward();
        optimizer.step();
    };
    step();
    for (auto _ : state) step();
    state.counters["images/s"] = benchmark::Counter(2.0, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MaskRCNNTrainStep)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

}  // namespace

int main(int argc, char** argv) {
    // As app/main.cpp (the sightline binary runs `instance` and `train instance` with this).
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
