// Dense CRF speed: lattice build for both kernels plus 10 mean-field iterations, the unit of
// work pydensecrf's `DenseCRF2D(...); addPairwise...; inference(10)` does per image.
// Peer (pydensecrf, single-threaded C++, this machine): 500x375 K=21 ~750 ms, 1024x768 K=21
// ~5.8 s. Run: build-crf/bench/bench_crf --benchmark_min_time=2
#include <cstdlib>
#include <random>

#include <fmt/format.h>

#include <benchmark/benchmark.h>
#include <opencv2/imgproc.hpp>

#include "sightline/core.hpp"
#include "sightline/crf.hpp"

namespace {

using namespace sightline;

// A real photograph, resized to the benchmark size: the full peer set's astronaut (the recorded
// figures in docs/crf.md used it) when SIGHTLINE_PEER_FIXTURES names that set, else the
// repository's chelsea (tests/fixtures/densecrf).
cv::Mat photo(int width, int height) {
    const char* peer = std::getenv("SIGHTLINE_PEER_FIXTURES");
    fs::path astronaut = fs::path(peer ? peer : "") / "densecrf" / "images" / "astronaut_500x375.png";
    fs::path path = peer && fs::exists(astronaut)
                        ? astronaut
                        : fs::path(SIGHTLINE_SOURCE_DIR) / "tests" / "fixtures" / "densecrf" / "images" / "chelsea_449x299.png";
    cv::Mat rgb = read_image_rgb(path).rgb, out;
    cv::resize(rgb, out, cv::Size(width, height), 0, 0, cv::INTER_LINEAR);
    return out;
}

// CAM-like soft maps: smooth random logits on a 16-pixel grid, upsampled, softmax over K.
std::vector<float> soft_maps(int k_count, int width, int height) {
    std::mt19937 rng(1234);
    std::normal_distribution<float> normal(0.f, 2.f);
    const int n = width * height;
    std::vector<float> logits(size_t(k_count) * n);
    for (int k = 0; k < k_count; ++k) {
        cv::Mat coarse(height / 16 + 1, width / 16 + 1, CV_32F), fine;
        for (int i = 0; i < coarse.rows * coarse.cols; ++i) coarse.ptr<float>()[i] = normal(rng);
        cv::resize(coarse, fine, cv::Size(width, height), 0, 0, cv::INTER_LINEAR);
        std::copy_n(fine.ptr<float>(), n, logits.begin() + size_t(k) * n);
    }
    std::vector<float> probs(logits.size());
    for (int i = 0; i < n; ++i) {
        float top = -1e30f, sum = 0;
        for (int k = 0; k < k_count; ++k) top = std::max(top, logits[size_t(k) * n + i]);
        for (int k = 0; k < k_count; ++k) sum += probs[size_t(k) * n + i] = std::exp(logits[size_t(k) * n + i] - top);
        for (int k = 0; k < k_count; ++k) probs[size_t(k) * n + i] /= sum;
    }
    return probs;
}

// args: width, height, K, threads
void BM_DenseCrf(benchmark::State& state) {
    const int width = static_cast<int>(state.range(0)), height = static_cast<int>(state.range(1));
    const int k_count = static_cast<int>(state.range(2));
    cv::Mat image = photo(width, height);
    std::vector<float> unary = unary_from_probabilities(soft_maps(k_count, width, height));
    std::vector<float> q(unary.size());
    DenseCrfOptions options;
    options.threads = static_cast<int>(state.range(3));
    DenseCrf crf(options);  // one object reused across images, as `sightline crf` on a folder
    for (auto _ : state) {
        crf.set_image(image);
        crf.infer(unary.data(), k_count, q.data());
        benchmark::DoNotOptimize(q.data());
    }
    state.SetLabel(fmt::format("{}x{} K={} threads={}", width, height, k_count, options.threads));
}

BENCHMARK(BM_DenseCrf)
    ->ArgNames({"W", "H", "K", "threads"})
    ->Args({500, 375, 2, 2})
    ->Args({500, 375, 21, 2})
    ->Args({1024, 768, 2, 2})
    ->Args({1024, 768, 21, 2})
    ->Args({500, 375, 21, 1})
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()  // CPU column: all threads (wall time suffers on a shared machine)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
