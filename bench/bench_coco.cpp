// COCO evaluation throughput (sightline eval --coco): detections per second.
//
// Data: 50 synthetic 640x480 images (COCO's usual size), 3 categories, 6 ground-truth
// ellipses per image (one in six a crowd region), 60 detections per image = 3,000 in all,
// as a Mask R-CNN writes them: shifted / resized copies of the objects, some with the wrong
// class, and false positives, scores uniform in (0, 1). BM_CocoSegm and BM_CocoBbox time
// evaluate_coco alone (IoUs, matching, accumulation, summary); BM_CocoSegmFromFiles adds
// reading both JSON files (compressed RLE masks), i.e. all of `sightline eval --coco`
// except printing.
//
//   bench_coco [benchmark flags]
#include <algorithm>
#include <random>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "sightline/coco.hpp"

namespace {

using namespace sightline;

constexpr int kImages = 50, kWidth = 640, kHeight = 480, kObjects = 6, kDetections = 60, kCategories = 3;

struct Ellipse {
    cv::Point centre;
    cv::Size axes;
    int angle;
};

Rle ellipse_mask(const Ellipse& e) {
    cv::Mat m(kHeight, kWidth, CV_8UC1, cv::Scalar(0));
    cv::ellipse(m, e.centre, e.axes, e.angle, 0, 360, cv::Scalar(1), cv::FILLED);
    return rle_encode(m);
}

struct Data {
    CocoDataset gt;
    CocoResults results;
};

const Data& data() {
    static const Data d = [] {
        Data d;
        std::mt19937 rng(7);
        std::uniform_int_distribution<int> x(40, kWidth - 40), y(40, kHeight - 40), r(8, 90), angle(0, 179),
            shift(-12, 12), category(1, kCategories);
        std::uniform_real_distribution<double> score(0.0, 1.0);
        d.gt.source = "synthetic-gt";
        d.results.source = "synthetic-results";
        for (int k = 1; k <= kCategories; ++k) d.gt.categories.push_back({k, "class" + std::to_string(k)});
        int64_t next_id = 1;
        for (int i = 1; i <= kImages; ++i) {
            d.gt.images.push_back({i, kHeight, kWidth, ""});
            std::vector<std::pair<Ellipse, int>> objects;
            for (int o = 0; o < kObjects; ++o) {
                const Ellipse e{{x(rng), y(rng)}, {r(rng), r(rng)}, angle(rng)};
                const int k = category(rng);
                objects.push_back({e, k});
                CocoAnnotation a;
                a.id = next_id++, a.image_id = i, a.category_id = k, a.iscrowd = o % 6 == 5;
                a.mask = ellipse_mask(e);
                a.area = static_cast<double>(rle_area(*a.mask));
                a.bbox = rle_to_bbox(*a.mask);
                d.gt.annotations.push_back(std::move(a));
            }
            for (int n = 0; n < kDetections; ++n) {
                Ellipse e{{x(rng), y(rng)}, {r(rng), r(rng)}, angle(rng)};
                int k = category(rng);
                if (n % 3 != 2) {  // two in three near an object, sometimes of the wrong class
                    const auto& [obj, obj_k] = objects[static_cast<std::size_t>(n) % kObjects];
                    e = {obj.centre + cv::Point(shift(rng), shift(rng)),
                         {std::max(2, obj.axes.width + shift(rng)), std::max(2, obj.axes.height + shift(rng))},
                         obj.angle + shift(rng)};
                    if (n % 5 != 0) k = obj_k;
                }
                CocoDetection det;
                det.image_id = i, det.category_id = k, det.score = score(rng);
                det.mask = ellipse_mask(e);
                det.bbox = rle_to_bbox(*det.mask);
                det.area = (*det.bbox)[2] * (*det.bbox)[3];
                d.results.detections.push_back(std::move(det));
            }
        }
        return d;
    }();
    return d;
}

void run(benchmark::State& state, CocoIouType type) {
    const Data& d = data();
    for (auto _ : state) benchmark::DoNotOptimize(evaluate_coco(d.gt, d.results, type));
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(d.results.detections.size()));
    state.counters["detections"] = static_cast<double>(d.results.detections.size());
    state.counters["AP"] = evaluate_coco(d.gt, d.results, type).stats[0];
}

void BM_CocoSegm(benchmark::State& state) { run(state, CocoIouType::segm); }
void BM_CocoBbox(benchmark::State& state) { run(state, CocoIouType::bbox); }

void BM_CocoSegmFromFiles(benchmark::State& state) {
    const Data& d = data();
    const fs::path dir = fs::temp_directory_path() / "sightline-bench-coco";
    fs::create_directories(dir);
    // The ground truth as COCO JSON with compressed RLE segmentations.
    nlohmann::json gt{{"images", nlohmann::json::array()}, {"categories", nlohmann::json::array()},
                      {"annotations", nlohmann::json::array()}};
    for (const CocoImage& i : d.gt.images)
        gt["images"].push_back({{"id", i.id}, {"height", i.height}, {"width", i.width}});
    for (const CocoCategory& c : d.gt.categories) gt["categories"].push_back({{"id", c.id}, {"name", c.name}});
    for (const CocoAnnotation& a : d.gt.annotations)
        gt["annotations"].push_back({{"id", a.id}, {"image_id", a.image_id}, {"category_id", a.category_id},
                                     {"iscrowd", a.iscrowd ? 1 : 0}, {"area", a.area}, {"bbox", a.bbox},
                                     {"segmentation", {{"size", {a.mask->h, a.mask->w}},
                                                       {"counts", rle_to_string(*a.mask)}}}});
    write_file_atomic(dir / "gt.json", gt.dump());
    write_coco_results(dir / "dt.json", d.results.detections);
    for (auto _ : state) {
        const CocoDataset g = read_coco_dataset(dir / "gt.json");
        const CocoResults r = read_coco_results(dir / "dt.json", g);
        benchmark::DoNotOptimize(evaluate_coco(g, r, CocoIouType::segm));
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(d.results.detections.size()));
    fs::remove_all(dir);
}

BENCHMARK(BM_CocoSegm)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CocoBbox)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CocoSegmFromFiles)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
