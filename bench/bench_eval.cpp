// Confusion-matrix throughput on VOC-sized masks (500x375, 21 classes, 255 = void).
//
// Data: 128 ground-truth masks (object blobs on background, a 5-px void band at object
// borders, as VOC) and predictions that disagree along the borders and in a few blobs, held
// in memory (48 MB, more than the L3 cache). BM_Structured is what real evaluation sees;
// BM_RandomLabels (every pixel independent) is the worst case of the counting loop;
// BM_PlainLoop is the one-pixel-at-a-time twin the tests compare against.
//
//   bench_eval [--dump=DIR] [benchmark flags]
// --dump writes DIR/gt.npy and DIR/pred.npy (uint8 [128, 375, 500]) so that
// bench/compare_eval.sh times numpy's bincount on exactly the same masks.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <opencv2/imgproc.hpp>

#include "sightline/evaluate.hpp"

namespace {

constexpr int kClasses = 21, kWidth = 500, kHeight = 375, kImages = 128;

struct MaskSet {
    std::vector<cv::Mat> gt, pred;
    std::vector<sightline::MaskPair> pairs;
    int64_t pixels = 0;
};

void draw_blobs(cv::Mat& m, std::mt19937& rng, int count) {
    std::uniform_int_distribution<int> cls(1, kClasses - 1), x(0, kWidth - 1), y(0, kHeight - 1),
        r(15, 120), angle(0, 179);
    for (int b = 0; b < count; ++b)
        cv::ellipse(m, {x(rng), y(rng)}, {r(rng), r(rng)}, angle(rng), 0, 360, cv::Scalar(cls(rng)),
                    cv::FILLED);
}

MaskSet make_structured() {
    MaskSet s;
    std::mt19937 rng(2024);
    for (int i = 0; i < kImages; ++i) {
        cv::Mat gt(kHeight, kWidth, CV_8UC1, cv::Scalar(0));
        draw_blobs(gt, rng, 1 + static_cast<int>(rng() % 4));
        // Predictions: the GT objects dilated or eroded a little, plus a false blob sometimes.
        cv::Mat pred;
        cv::Mat kernel = cv::getStructuringElement(cv::MORPH_ELLIPSE, {7, 7});
        if (rng() % 2) cv::dilate(gt, pred, kernel);
        else cv::erode(gt, pred, kernel);
        if (rng() % 3 == 0) draw_blobs(pred, rng, 1);
        // VOC void band: 5 px around object borders.
        cv::Mat edges, band;
        cv::Canny(gt * 10, edges, 1, 1);
        cv::dilate(edges, band, cv::getStructuringElement(cv::MORPH_RECT, {5, 5}));
        gt.setTo(255, band);
        s.gt.push_back(gt);
        s.pred.push_back(pred);
    }
    return s;
}

MaskSet make_random() {
    MaskSet s;
    std::mt19937 rng(7);
    for (int i = 0; i < kImages; ++i) {
        cv::Mat gt(kHeight, kWidth, CV_8UC1), pred(kHeight, kWidth, CV_8UC1);
        cv::randu(gt, 0, kClasses);
        cv::randu(pred, 0, kClasses);
        s.gt.push_back(gt);
        s.pred.push_back(pred);
    }
    return s;
}

MaskSet& with_pairs(MaskSet& s) {
    for (int i = 0; i < kImages; ++i) {
        s.pairs.push_back({s.pred[i].data, s.gt[i].data, s.gt[i].total(), {}});
        s.pixels += static_cast<int64_t>(s.gt[i].total());
    }
    return s;
}

MaskSet& structured() {
    static MaskSet s = make_structured();
    if (s.pairs.empty()) with_pairs(s);
    return s;
}

MaskSet& random_labels() {
    static MaskSet s = make_random();
    if (s.pairs.empty()) with_pairs(s);
    return s;
}

void report(benchmark::State& state, const MaskSet& s) {
    state.SetItemsProcessed(state.iterations() * s.pixels);
    state.counters["Mpx/s"] = benchmark::Counter(static_cast<double>(s.pixels) * 1e-6,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Structured(benchmark::State& state) {
    MaskSet& s = structured();
    for (auto _ : state) {
        auto cm = sightline::accumulate_pairs(s.pairs, kClasses, 255, static_cast<int>(state.range(0)));
        benchmark::DoNotOptimize(cm.counts().data());
    }
    report(state, s);
}

void BM_RandomLabels(benchmark::State& state) {
    MaskSet& s = random_labels();
    for (auto _ : state) {
        auto cm = sightline::accumulate_pairs(s.pairs, kClasses, 255, static_cast<int>(state.range(0)));
        benchmark::DoNotOptimize(cm.counts().data());
    }
    report(state, s);
}

// The slow twin: one pixel at a time into one int64 histogram, single thread.
void BM_PlainLoop(benchmark::State& state) {
    MaskSet& s = structured();
    for (auto _ : state) {
        std::vector<int64_t> hist(kClasses * (kClasses + 1), 0);
        for (const auto& p : s.pairs)
            for (std::size_t i = 0; i < p.n; ++i) {
                int g = p.gt[i], q = p.pred[i];
                if (g == 255) continue;
                hist[g * (kClasses + 1) + (q == 255 ? kClasses : q)]++;
            }
        benchmark::DoNotOptimize(hist.data());
    }
    report(state, s);
}

BENCHMARK(BM_Structured)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RandomLabels)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PlainLoop)->UseRealTime()->Unit(benchmark::kMillisecond);

// uint8 [kImages, kHeight, kWidth] as .npy.
void dump(const std::string& path, const std::vector<cv::Mat>& masks) {
    sightline::NpyArray a;
    a.dtype = "u1";
    a.shape = {kImages, kHeight, kWidth};
    for (const cv::Mat& m : masks) a.bytes.insert(a.bytes.end(), m.datastart, m.dataend);
    sightline::write_npy(path, a);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        if (std::strncmp(argv[i], "--dump=", 7) == 0) {
            std::string dir = argv[i] + 7;
            dump(dir + "/gt.npy", structured().gt);
            dump(dir + "/pred.npy", structured().pred);
            dump(dir + "/gt_random.npy", random_labels().gt);
            dump(dir + "/pred_random.npy", random_labels().pred);
        } else {
            args.push_back(argv[i]);
        }
    }
    int n = static_cast<int>(args.size());
    benchmark::Initialize(&n, args.data());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
