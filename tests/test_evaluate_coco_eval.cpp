// COCOeval: hand-computed cases (greedy matching, score ties, image order, crowd regions, the
// 100-detection limit) and parity with pycocotools on the six vendored fixture cases.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sightline/coco.hpp"
#include "test_support.hpp"

using namespace sightline;
using nlohmann::json;

namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();  // pycocotools' np.spacing(1)

using test::coco_fixtures;

// Square 100x100 images; category 1 "thing" (and 2 "other").
CocoDataset dataset(const std::vector<int64_t>& image_ids, std::vector<CocoAnnotation> annotations) {
    CocoDataset d;
    d.source = "gt.json";
    for (int64_t id : image_ids) d.images.push_back({id, 100, 100, ""});
    d.categories = {{1, "thing"}, {2, "other"}};
    d.annotations = std::move(annotations);
    return d;
}

Rle box_mask(const CocoBox& b) {
    cv::Mat m(100, 100, CV_8UC1, cv::Scalar(0));
    m(cv::Rect(static_cast<int>(b[0]), static_cast<int>(b[1]), static_cast<int>(b[2]), static_cast<int>(b[3]))).setTo(1);
    return rle_encode(m);
}

CocoAnnotation gt(int64_t id, int64_t image, CocoBox box, bool crowd = false) {
    CocoAnnotation a;
    a.id = id, a.image_id = image, a.category_id = 1, a.iscrowd = crowd;
    a.bbox = box, a.area = box[2] * box[3];
    if (box[2] == std::floor(box[2]) && box[3] == std::floor(box[3])) a.mask = box_mask(box);
    return a;
}

CocoDetection det(int64_t image, double score, CocoBox box, int64_t category = 1) {
    CocoDetection d;
    d.image_id = image, d.category_id = category, d.score = score, d.bbox = box, d.area = box[2] * box[3];
    return d;
}

CocoResults results(std::vector<CocoDetection> detections) {
    CocoResults r;
    r.source = "dt.json";
    r.detections = std::move(detections);
    return r;
}

// The mean over the 101 recall points, given as runs of (points, precision).
double mean_of(const std::vector<std::pair<int, double>>& runs) {
    double sum = 0;
    int n = 0;
    for (auto [count, value] : runs) sum += count * value, n += count;
    return sum / n;
}

}  // namespace

TEST(CocoEval, TwoObjectsAndAFalsePositiveInBetween) {
    // Scores .9 (hits A), .8 (misses), .7 (hits B): precision 1, 1/2, 2/3 at recall .5, .5, 1;
    // its envelope is 1 up to recall .5 (51 of the 101 points) and 2/3 after (50 points).
    const CocoDataset d = dataset({1}, {gt(1, 1, {0, 0, 10, 10}), gt(2, 1, {20, 20, 10, 10})});
    const CocoResults r = results({det(1, .9, {0, 0, 10, 10}), det(1, .8, {60, 60, 10, 10}),
                                   det(1, .7, {20, 20, 10, 10}), det(1, .6, {0, 0, 10, 10}, 2)});
    const double ap = mean_of({{51, 1 / (1 + kEps)}, {50, 2.0 / 3.0}});
    for (CocoIouType type : {CocoIouType::bbox, CocoIouType::segm}) {
        const CocoEvalResult e = evaluate_coco(d, r, type);
        // All objects are small (area 100): medium and large have no ground truth -> -1.
        const std::array<double, 12> expected = {ap, ap, ap, ap, -1, -1, 0.5, 1, 1, 1, -1, -1};
        for (int i = 0; i < 12; ++i) EXPECT_NEAR(e.stats[i], expected[i], 1e-15) << kCocoStatNames[i];
        ASSERT_EQ(e.per_category.size(), 2u);
        EXPECT_NEAR(e.per_category[0].ap, ap, 1e-15);
        EXPECT_EQ(e.per_category[1].ap, -1);  // "other" has detections but no ground truth
        EXPECT_EQ(e.per_category[1].name, "other");
    }
}

TEST(CocoEval, ScoreTiesKeepFileOrderWithinAnImage) {
    // Two detections of one object with equal scores: the first in the file is matched first.
    // The partial one (IoU 0.62) wins at thresholds .50, .55, .60 (the exact one is then a
    // duplicate) and misses from .65 on, where the exact one is a hit ranked second.
    const CocoDataset d = dataset({1}, {gt(1, 1, {0, 0, 10, 10})});
    const CocoDetection partial = det(1, .5, {0, 0, 10, 6.2}), exact = det(1, .5, {0, 0, 10, 10});
    const double low = 1 / (1 + kEps), high = 0.5;
    EXPECT_NEAR(evaluate_coco(d, results({partial, exact}), CocoIouType::bbox).stats[0], (3 * low + 7 * high) / 10,
                1e-15);
    EXPECT_NEAR(evaluate_coco(d, results({exact, partial}), CocoIouType::bbox).stats[0], low, 1e-15);
}

TEST(CocoEval, ScoreTiesAcrossImagesFollowImageIdOrder) {
    // Equal scores, a miss in image 1 and a hit in image 2: image 1's comes first whatever the
    // order of the files (images sorted by id, as COCOeval's imgIds).
    const CocoDataset d = dataset({2, 1}, {gt(1, 1, {0, 0, 10, 10}), gt(2, 2, {0, 0, 10, 10})});
    const CocoResults r = results({det(2, .5, {0, 0, 10, 10}), det(1, .5, {50, 50, 10, 10})});
    // Precision 0 then 1/2 at recall 0 and 1/2: the envelope is 1/2 up to recall .5, then 0.
    EXPECT_NEAR(evaluate_coco(d, r, CocoIouType::bbox).stats[0], mean_of({{51, 0.5}, {50, 0}}), 1e-15);
}

TEST(CocoEval, CrowdRegionsAbsorbDetections) {
    // Two detections inside a crowd region are matched to it (IoU over their own area = 1)
    // and ignored, so the remaining hit gives AP 1. Without the crowd rule AP would be 1/3.
    const CocoDataset d = dataset({1}, {gt(1, 1, {0, 0, 10, 10}), gt(2, 1, {40, 40, 30, 30}, true)});
    const CocoResults r = results({det(1, .9, {45, 45, 10, 10}), det(1, .8, {50, 50, 10, 10}),
                                   det(1, .7, {0, 0, 10, 10})});
    for (CocoIouType type : {CocoIouType::bbox, CocoIouType::segm}) {
        const CocoEvalResult e = evaluate_coco(d, r, type);
        EXPECT_NEAR(e.stats[0], 1 / (1 + kEps), 1e-15) << coco_iou_type_name(type);
        EXPECT_NEAR(e.stats[8], 1, 1e-15) << coco_iou_type_name(type);
    }
}

TEST(CocoEval, OnlyTheTop100DetectionsOfAnImageCount) {
    const CocoDataset d = dataset({1}, {gt(1, 1, {0, 0, 10, 10})});
    std::vector<CocoDetection> dets;
    for (int i = 0; i < 100; ++i) dets.push_back(det(1, 0.9, {50, 50, 10, 10}));
    dets.push_back(det(1, 0.5, {0, 0, 10, 10}));  // the hit, ranked 101st
    EXPECT_EQ(evaluate_coco(d, results(dets), CocoIouType::bbox).stats[8], 0);
    dets.back().score = 0.95;  // now ranked first
    const CocoEvalResult e = evaluate_coco(d, results(dets), CocoIouType::bbox);
    EXPECT_EQ(e.stats[6], 1);  // AR1
    EXPECT_NEAR(e.stats[0], 1 / (1 + kEps), 1e-15);
}

TEST(CocoEval, ABoxWithoutMaskIsEvaluatedAsItsPolygonForSegm) {
    // loadRes turns the box into a polygon; one reaching far beyond the image covers all of it.
    const CocoDataset d = dataset({1}, {gt(1, 1, {0, 0, 100, 100}), gt(2, 1, {10, 10, 20, 20})});
    const CocoResults r = results({det(1, .9, {-1e9, -1e9, 3e9, 3e9}), det(1, .8, {10, 10, 20, 20})});
    const CocoEvalResult e = evaluate_coco(d, r, CocoIouType::segm);
    EXPECT_NEAR(e.stats[0], 1 / (1 + kEps), 1e-15);
}

TEST(CocoEval, NoDetectionsGiveZeroWhereThereIsGroundTruth) {
    const CocoDataset d = dataset({1}, {gt(1, 1, {0, 0, 10, 10})});
    const CocoEvalResult e = evaluate_coco(d, results({}), CocoIouType::segm);
    const std::array<double, 12> expected = {0, 0, 0, 0, -1, -1, 0, 0, 0, 0, -1, -1};
    for (int i = 0; i < 12; ++i) EXPECT_EQ(e.stats[i], expected[i]) << kCocoStatNames[i];
}

TEST(CocoEval, GroundTruthIdZeroCountsAsAMissAsInPycocotools) {
    // pycocotools stores the matched GT's id and reads 0 as "unmatched".
    const CocoDataset d = dataset({1}, {gt(0, 1, {0, 0, 10, 10})});
    EXPECT_EQ(evaluate_coco(d, results({det(1, .9, {0, 0, 10, 10})}), CocoIouType::bbox).stats[0], 0);
}

TEST(CocoEval, DataMadeInCodeIsChecked) {
    // The readers refuse these; a detector's in-memory output is checked by evaluate_coco.
    const CocoDataset d = dataset({1}, {gt(1, 1, {0, 0, 10, 10.5})});  // no mask (non-integral box)
    EXPECT_EQ(test::message_of([&] { evaluate_coco(d, results({}), CocoIouType::segm); }),
              "gt.json: annotation id 1 has no segmentation (needed for segm evaluation)");
    EXPECT_EQ(test::message_of([&] { evaluate_coco(d, results({det(1, .5, {0, 0, 1, 1}, 9)}), CocoIouType::bbox); }),
              "dt.json: image 1 / category 9 is not in the ground truth");
    CocoDetection no_box = det(1, .5, {0, 0, 1, 1});
    no_box.bbox.reset();
    EXPECT_EQ(test::message_of([&] { evaluate_coco(d, results({no_box}), CocoIouType::bbox); }),
              "dt.json: a detection of image 1 has no bbox");
}

TEST(CocoEval, SummaryLinesInPycocotoolsFormat) {
    CocoEvalResult e;
    e.stats = {0.18586697093101753, 0.370659571855288, 0.1419, 0.1744, 0.4376, -1, 0.2, 0.375, 0.39, 0.38, 0.45, -1};
    const std::string s = format_coco_summary(e);
    EXPECT_EQ(s.substr(0, s.find('\n') + 1),
              " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.186\n");
    EXPECT_NE(s.find(" Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.371\n"),
              std::string::npos);
    EXPECT_NE(s.find(" Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000\n"),
              std::string::npos);
    EXPECT_NE(s.find(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.200\n"),
              std::string::npos);
    EXPECT_NE(s.find(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = 0.450\n"),
              std::string::npos);
    EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 12);
}

// ---- parity with pycocotools ----------------------------------------------------------------

TEST(CocoEvalParity, SixFixtureCasesMatchPycocotoolsWithin1e6) {
    const json manifest = json::parse(read_file(coco_fixtures() / "manifest.json"));
    ASSERT_EQ(manifest["cases"].size(), 6u);
    double worst = 0;
    for (const json& c : manifest["cases"]) {
        const CocoDataset gt = read_coco_dataset(coco_fixtures() / c["gt"].get<std::string>());
        const CocoResults dt = read_coco_results(coco_fixtures() / c["dt"].get<std::string>(), gt);
        ASSERT_EQ(dt.detections.size(), c["detections"].get<std::size_t>());
        for (CocoIouType type : {CocoIouType::segm, CocoIouType::bbox}) {
            const CocoEvalResult e = evaluate_coco(gt, dt, type);
            const json& expected = c[std::string("stats_") + coco_iou_type_name(type)];
            for (int i = 0; i < 12; ++i) {
                EXPECT_NEAR(e.stats[i], expected[i].get<double>(), 1e-6)
                    << c["case"] << " " << coco_iou_type_name(type) << " " << kCocoStatNames[i];
                worst = std::max(worst, std::abs(e.stats[i] - expected[i].get<double>()));
            }
        }
    }
    std::cout << "largest difference to pycocotools over 6 cases x 2 IoU types x 12 stats: " << worst << "\n";
}

TEST(CocoEvalParity, WithoutBoxesOnlyTheAreaSlicesChange) {
    // Results without "bbox" take the mask's area (loadRes' segmentation branch). The area
    // "all" slices cannot depend on detection areas, so they keep pycocotools' values; the
    // small / medium / large slices move because the detections' areas changed.
    const json manifest = json::parse(read_file(coco_fixtures() / "manifest.json"));
    const json& c = manifest["cases"][0];
    const CocoDataset gt = read_coco_dataset(coco_fixtures() / c["gt"].get<std::string>());
    json dt = json::parse(read_file(coco_fixtures() / c["dt"].get<std::string>()));
    for (json& d : dt) d.erase("bbox");
    const fs::path path = test::scratch_dir("no-boxes") / "dt.json";
    write_file_atomic(path, dt.dump());
    const CocoEvalResult e = evaluate_coco(gt, read_coco_results(path, gt), CocoIouType::segm);
    const json& expected = c["stats_segm"];
    for (int i : {0, 1, 2, 6, 7, 8}) EXPECT_NEAR(e.stats[i], expected[i].get<double>(), 1e-12) << kCocoStatNames[i];
    bool moved = false;
    for (int i : {3, 4, 9, 10}) moved = moved || std::abs(e.stats[i] - expected[i].get<double>()) > 1e-9;
    EXPECT_TRUE(moved);
}
