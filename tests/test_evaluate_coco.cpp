// COCO evaluation: RLE, string codec, polygon rasterisation and box IoU on known answers and
// against pixel-counting twins; COCOeval on hand-computed cases (score ties, image order,
// crowd regions); parity with pycocotools on the six vendored cases.
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sightline/coco.hpp"
#include "test_support.hpp"

using namespace sightline;
using nlohmann::json;

namespace {

using test::coco_fixtures;

cv::Mat mask_from_rows(const std::vector<std::vector<int>>& rows) {
    cv::Mat m(static_cast<int>(rows.size()), static_cast<int>(rows[0].size()), CV_8UC1);
    for (int y = 0; y < m.rows; ++y)
        for (int x = 0; x < m.cols; ++x) m.at<uint8_t>(y, x) = static_cast<uint8_t>(rows[y][x]);
    return m;
}

cv::Mat random_blobs(std::mt19937& rng, int h, int w) {
    cv::Mat m(h, w, CV_8UC1, cv::Scalar(0));
    std::uniform_int_distribution<int> px(0, w - 1), py(0, h - 1), size(1, 6);
    for (int i = 0; i < 3; ++i) {
        const int x = px(rng), y = py(rng);
        m(cv::Rect(x, y, std::min(size(rng), w - x), std::min(size(rng), h - y))).setTo(1);
    }
    return m;
}

int count_ones(const cv::Mat& m) { return cv::countNonZero(m); }

}  // namespace

// ---- RLE ------------------------------------------------------------------------------------

TEST(CocoRle, EncodesColumnMajorRunsStartingWithZeros) {
    // Columns top to bottom: (0,1,0), (1,1,0) -> runs 1 zero, 1 one, 1 zero, 2 ones, 1 zero.
    const cv::Mat m = mask_from_rows({{0, 1}, {1, 1}, {0, 0}});
    const Rle rle = rle_encode(m);
    EXPECT_EQ(rle.h, 3u);
    EXPECT_EQ(rle.w, 2u);
    EXPECT_EQ(rle.counts, (std::vector<uint32_t>{1, 1, 1, 2, 1}));
    EXPECT_EQ(rle_area(rle), 3u);
    // A mask starting with a 1 has a leading 0 run.
    EXPECT_EQ(rle_encode(mask_from_rows({{1, 0}, {0, 0}})).counts, (std::vector<uint32_t>{0, 1, 3}));
    EXPECT_EQ(rle_encode(mask_from_rows({{0, 0}, {0, 0}})).counts, (std::vector<uint32_t>{4}));
}

TEST(CocoRle, DecodeInvertsEncodeOnRandomMasks) {
    std::mt19937 rng(3);
    for (int trial = 0; trial < 50; ++trial) {
        const cv::Mat m = random_blobs(rng, 5 + trial % 7, 4 + trial % 9);
        const Rle rle = rle_encode(m);
        EXPECT_EQ(cv::norm(rle_decode(rle), m, cv::NORM_INF), 0) << "trial " << trial;
        EXPECT_EQ(rle_area(rle), static_cast<uint64_t>(count_ones(m)));
    }
}

TEST(CocoRle, CompressedStringKnownAnswers) {
    // Counts 1,1,1 are stored as they are, then 2-1 = 1 and 1-1 = 0.
    EXPECT_EQ(rle_to_string(Rle{3, 2, {1, 1, 1, 2, 1}}), "11110");
    // 100 = 4 + 3 * 32: low group 4 with the continuation bit (36 + 48 = 'T'), then 3 -> '3'.
    EXPECT_EQ(rle_to_string(Rle{10, 10, {100}}), "T3");
    // 2 - 3 = -1 -> one group 0x1f with the sign bit set: 31 + 48 = 'O'.
    EXPECT_EQ(rle_to_string(Rle{3, 4, {5, 3, 2, 2}}), "532O");
    EXPECT_EQ(rle_from_string("532O", 3, 4).counts, (std::vector<uint32_t>{5, 3, 2, 2}));
    EXPECT_EQ(rle_from_string("T3", 10, 10).counts, (std::vector<uint32_t>{100}));
}

TEST(CocoRle, CompressedStringRoundTripsPycocotoolsStrings) {
    // Every compressed RLE of the vendored pycocotools files re-encodes to the same string.
    int checked = 0;
    for (const char* name : {"case00.dt.json", "case03.gt.json"}) {
        const json doc = json::parse(read_file(coco_fixtures() / name));
        const json& list = doc.is_array() ? doc : doc["annotations"];
        for (const json& entry : list) {
            const json& seg = entry["segmentation"];
            if (!seg.is_object() || !seg["counts"].is_string()) continue;
            const std::string s = seg["counts"].get<std::string>();
            const Rle rle = rle_from_string(s, seg["size"][0].get<uint32_t>(), seg["size"][1].get<uint32_t>());
            EXPECT_EQ(rle_to_string(rle), s);
            ++checked;
        }
    }
    EXPECT_GT(checked, 100);
}

TEST(CocoRle, MalformedStringsAreErrors) {
    EXPECT_EQ(test::message_of([] { rle_from_string("11p", 1, 3); }),
              "compressed RLE: character 'p' at 2 is not in '0'..'o'");
    EXPECT_EQ(test::message_of([] { rle_from_string("1T", 10, 10); }),
              "compressed RLE: the count at character 1 is cut off");
    EXPECT_EQ(test::message_of([] { rle_from_string("12", 2, 2); }),
              "compressed RLE: runs cover 3 pixels, the 2x2 mask has 4");
    // 'N' = 30: one group with the sign bit, -2; the third count is stored as it is.
    EXPECT_EQ(test::message_of([] { rle_from_string("11N", 2, 2); }), "compressed RLE: run 2 has length -2");
}

TEST(CocoRle, MergeUnionAndIntersection) {
    const Rle a = rle_encode(mask_from_rows({{1, 1, 0}, {0, 0, 0}}));
    const Rle b = rle_encode(mask_from_rows({{0, 1, 1}, {0, 1, 0}}));
    EXPECT_EQ(cv::norm(rle_decode(rle_merge({a, b})), mask_from_rows({{1, 1, 1}, {0, 1, 0}}), cv::NORM_INF), 0);
    EXPECT_EQ(cv::norm(rle_decode(rle_merge({a, b}, true)), mask_from_rows({{0, 1, 0}, {0, 0, 0}}), cv::NORM_INF), 0);
    // Random masks against pixel-wise OR / AND.
    std::mt19937 rng(5);
    for (int trial = 0; trial < 30; ++trial) {
        const cv::Mat x = random_blobs(rng, 9, 7), y = random_blobs(rng, 9, 7), z = random_blobs(rng, 9, 7);
        EXPECT_EQ(cv::norm(rle_decode(rle_merge({rle_encode(x), rle_encode(y), rle_encode(z)})), x | y | z,
                           cv::NORM_INF), 0);
        EXPECT_EQ(cv::norm(rle_decode(rle_merge({rle_encode(x), rle_encode(y)}, true)), x & y, cv::NORM_INF), 0);
    }
    EXPECT_EQ(test::message_of([&] { rle_merge({a, rle_encode(mask_from_rows({{1}}))}); }),
              "masks of different sizes: 3x2 and 1x1 (width x height)");
}

TEST(CocoRle, IouKnownAnswersIncludingCrowd) {
    // 4x4: a = columns 0-1 (8 px), b = columns 1-2 (8 px): 4 shared, union 12.
    cv::Mat a(4, 4, CV_8UC1, cv::Scalar(0)), b = a.clone(), c = a.clone();
    a.colRange(0, 2).setTo(1);
    b.colRange(1, 3).setTo(1);
    c.colRange(3, 4).setTo(1);
    EXPECT_DOUBLE_EQ(rle_iou(rle_encode(a), rle_encode(b), false), 4.0 / 12.0);
    // A crowd GT: intersection over the detection's area.
    EXPECT_DOUBLE_EQ(rle_iou(rle_encode(a), rle_encode(b), true), 4.0 / 8.0);
    EXPECT_EQ(rle_iou(rle_encode(a), rle_encode(c), false), 0.0);
    EXPECT_EQ(rle_iou(rle_encode(cv::Mat(4, 4, CV_8UC1, cv::Scalar(0))), rle_encode(b), true), 0.0);
}

TEST(CocoRle, IouMatchesPixelCountsOnRandomMasks) {
    std::mt19937 rng(9);
    for (int trial = 0; trial < 100; ++trial) {
        const cv::Mat d = random_blobs(rng, 11, 13), g = random_blobs(rng, 11, 13);
        const double inter = count_ones(d & g), uni = count_ones(d | g);
        const double expected = inter == 0 ? 0 : inter / uni;
        const double expected_crowd = inter == 0 ? 0 : inter / count_ones(d);
        EXPECT_DOUBLE_EQ(rle_iou(rle_encode(d), rle_encode(g), false), expected) << trial;
        EXPECT_DOUBLE_EQ(rle_iou(rle_encode(d), rle_encode(g), true), expected_crowd) << trial;
    }
}

TEST(CocoRle, BoundingBoxAsRleToBbox) {
    cv::Mat m(4, 4, CV_8UC1, cv::Scalar(0));
    m.at<uint8_t>(1, 1) = m.at<uint8_t>(2, 2) = 1;  // (y, x)
    EXPECT_EQ(rle_to_bbox(rle_encode(m)), (CocoBox{1, 1, 2, 2}));
    EXPECT_EQ(rle_to_bbox(rle_encode(cv::Mat(3, 3, CV_8UC1, cv::Scalar(0)))), (CocoBox{0, 0, 0, 0}));
    // One run from the bottom of column 0 to the top of column 1: pycocotools widens the box
    // to the full height.
    cv::Mat wrap(4, 3, CV_8UC1, cv::Scalar(0));
    wrap.at<uint8_t>(3, 0) = wrap.at<uint8_t>(0, 1) = 1;
    EXPECT_EQ(rle_to_bbox(rle_encode(wrap)), (CocoBox{0, 0, 2, 4}));
}

// ---- polygons and boxes ---------------------------------------------------------------------

TEST(CocoPolygon, SquareCoversThePixelCentresInside) {
    // The square (0,0)-(2,2) contains the pixel centres (0.5, 0.5) .. (1.5, 1.5): 2x2 pixels.
    // Traced by hand through rleFrPoly: toggles at column-major 0, 2, 4, 6 -> runs 0,2,2,2,10.
    const Rle rle = rle_from_polygon({0, 0, 0, 2, 2, 2, 2, 0}, 4, 4);
    EXPECT_EQ(rle.counts, (std::vector<uint32_t>{0, 2, 2, 2, 10}));
    // Counter-clockwise gives the same mask.
    EXPECT_EQ(rle_from_polygon({0, 0, 2, 0, 2, 2, 0, 2}, 4, 4).counts, rle.counts);
    // A square reaching out of the image is clipped to it.
    EXPECT_EQ(rle_from_polygon({-1, -1, -1, 2, 2, 2, 2, -1}, 4, 4).counts, rle.counts);
    // Shifted by one pixel right and down.
    const cv::Mat shifted = rle_decode(rle_from_polygon({1, 1, 1, 3, 3, 3, 3, 1}, 4, 4));
    cv::Mat expected(4, 4, CV_8UC1, cv::Scalar(0));
    expected(cv::Rect(1, 1, 2, 2)).setTo(1);
    EXPECT_EQ(cv::norm(shifted, expected, cv::NORM_INF), 0);
}

TEST(CocoPolygon, IntegerRectanglesCoverExactlyTheirPixels) {
    // Twin: a rectangle with integer corners covers the pixels whose centres it contains,
    // clipped to the image, whatever the corner order.
    std::mt19937 rng(11);
    std::uniform_int_distribution<int> coord(-4, 14);
    for (int trial = 0; trial < 200; ++trial) {
        int x0 = coord(rng), x1 = coord(rng), y0 = coord(rng), y1 = coord(rng);
        if (x0 == x1 || y0 == y1) continue;
        std::vector<double> xy = {double(x0), double(y0), double(x0), double(y1), double(x1), double(y1), double(x1), double(y0)};
        cv::Mat expected(9, 11, CV_8UC1, cv::Scalar(0));
        const cv::Rect inside = cv::Rect(std::min(x0, x1), std::min(y0, y1), std::abs(x1 - x0), std::abs(y1 - y0)) &
                                cv::Rect(0, 0, 11, 9);
        if (inside.area() == 0) continue;
        expected(inside).setTo(1);
        EXPECT_EQ(cv::norm(rle_decode(rle_from_polygon(xy, 9, 11)), expected, cv::NORM_INF), 0)
            << x0 << "," << y0 << " " << x1 << "," << y1;
    }
}

TEST(CocoPolygon, FixturePolygonAreasEqualPycocotools) {
    // The fixtures' polygon annotations carry the area pycocotools computed from the
    // rasterised polygon, so every area must match ours exactly.
    int checked = 0;
    for (int c = 0; c < 6; ++c) {
        const CocoDataset gt = read_coco_dataset(coco_fixtures() / fmt::format("case{:02d}.gt.json", c));
        const json doc = json::parse(read_file(gt.source));
        for (std::size_t i = 0; i < gt.annotations.size(); ++i) {
            if (!doc["annotations"][i]["segmentation"].is_array()) continue;
            EXPECT_EQ(static_cast<double>(rle_area(*gt.annotations[i].mask)), gt.annotations[i].area)
                << gt.source << " annotation id " << gt.annotations[i].id;
            ++checked;
        }
    }
    EXPECT_GT(checked, 50);
}

TEST(CocoBoxIou, KnownAnswers) {
    EXPECT_DOUBLE_EQ(box_iou({0, 0, 2, 2}, {1, 1, 2, 2}, false), 1.0 / 7.0);
    EXPECT_DOUBLE_EQ(box_iou({0, 0, 2, 2}, {1, 1, 2, 2}, true), 1.0 / 4.0);  // over the detection's area
    EXPECT_EQ(box_iou({0, 0, 1, 1}, {1, 0, 1, 1}, false), 0.0);              // touching
    EXPECT_EQ(box_iou({0, 0, 0, 5}, {0, 0, 5, 5}, false), 0.0);              // zero width
    EXPECT_DOUBLE_EQ(box_iou({2, 3, 4, 5}, {2, 3, 4, 5}, false), 1.0);
}

// ---- JSON readers and writer ----------------------------------------------------------------

namespace {

// A 6x5 image (width x height) with one annotation whose fields `patch` overrides.
fs::path write_gt(const std::string& name, const json& patch) {
    json gt = json::parse(R"({
      "images": [{"id": 1, "height": 5, "width": 6}],
      "categories": [{"id": 1, "name": "thing"}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "area": 4, "bbox": [1, 1, 2, 2],
                       "segmentation": [[1, 1, 1, 3, 3, 3, 3, 1]]}]})");
    gt["annotations"][0].merge_patch(patch);
    const fs::path path = test::scratch_dir(name) / "gt.json";
    write_file_atomic(path, gt.dump());
    return path;
}

}  // namespace

TEST(CocoJson, PolygonsAndBothRleFormsGiveTheSameMask) {
    cv::Mat expected(5, 6, CV_8UC1, cv::Scalar(0));
    expected(cv::Rect(1, 1, 2, 2)).setTo(1);
    const Rle rle = rle_encode(expected);
    const json uncompressed = {{"size", {5, 6}}, {"counts", rle.counts}};
    const json compressed = {{"size", {5, 6}}, {"counts", rle_to_string(rle)}};
    const json two_parts = {{1, 1, 1, 2, 3, 2, 3, 1}, {1, 2, 1, 3, 3, 3, 3, 2}};  // merged by union
    for (const json& seg : {json{{1, 1, 1, 3, 3, 3, 3, 1}}, uncompressed, compressed, two_parts}) {
        const CocoDataset d = read_coco_dataset(write_gt("forms", {{"segmentation", seg}}));
        ASSERT_TRUE(d.annotations[0].mask.has_value());
        EXPECT_EQ(d.annotations[0].mask->counts, rle.counts) << seg.dump();
    }
}

TEST(CocoJson, GroundTruthProblemsNameTheAnnotation) {
    auto error = [](const json& patch) {
        const fs::path path = write_gt("bad", patch);
        const std::string message = test::message_of([&] { read_coco_dataset(path); });
        return message.substr(0, path.string().size()) == path.string() ? message.substr(path.string().size())
                                                                        : message;
    };
    EXPECT_EQ(error({{"area", nullptr}}), ": annotations[0] (id 1): no \"area\"");
    EXPECT_EQ(error({{"image_id", 4}}), ": annotations[0] (id 1): image_id 4 is not in \"images\"");
    EXPECT_EQ(error({{"iscrowd", 2}}), ": annotations[0] (id 1): \"iscrowd\" must be 0 or 1, got 2");
    EXPECT_EQ(error({{"segmentation", json::array()}}), ": annotations[0] (id 1): \"segmentation\" is an empty list");
    EXPECT_EQ(error({{"segmentation", {{1, 1, 1, 3, 3}}}}),
              ": annotations[0] (id 1): a polygon has an odd number of coordinates (5)");
    EXPECT_EQ(error({{"segmentation", {{1, 1, 1, 3}}}}), ": annotations[0] (id 1): a polygon needs at least 3 points, got 2");
    EXPECT_EQ(error({{"segmentation", {{"size", {5, 6}}, {"counts", {29}}}}}),
              ": annotations[0] (id 1): RLE counts cover 29 pixels, the 6x5 image has 30");
    EXPECT_EQ(error({{"segmentation", {{1, 1, 1, 3, 30, 3}}}}),
              ": annotations[0] (id 1): polygon x = 30 is far outside the 6x5 image");
    EXPECT_EQ(error({{"bbox", {1, 1, 2}}}), ": annotations[0] (id 1): \"bbox\" must be [x, y, width, height]");
    EXPECT_EQ(error({{"id", "one"}}), ": annotations[0]: \"id\" must be an integer, got a string");
}

TEST(CocoJson, DuplicateIdsAreErrors) {
    const fs::path dir = test::scratch_dir("dup");
    json gt = json::parse(R"({"images": [{"id": 1, "height": 5, "width": 6}, {"id": 1, "height": 5, "width": 6}],
                              "categories": [{"id": 1}], "annotations": []})");
    write_file_atomic(dir / "gt.json", gt.dump());
    EXPECT_EQ(test::message_of([&] { read_coco_dataset(dir / "gt.json"); }),
              (dir / "gt.json").string() + ": images[1]: image id 1 appears twice");
}

TEST(CocoJson, ResultAreasFollowLoadResRule) {
    const CocoDataset gt = read_coco_dataset(write_gt("gt", json::object()));
    const fs::path dir = test::scratch_dir("areas");
    const json mask = {{"size", {5, 6}}, {"counts", rle_to_string(rle_from_polygon({1, 1, 1, 3, 3, 3, 3, 1}, 5, 6))}};
    // The first result has a bbox: every area is the box's (here 3 x 3, not the 4-pixel mask).
    write_file_atomic(dir / "boxes.json",
                      json::array({{{"image_id", 1}, {"category_id", 1}, {"score", 1}, {"bbox", {0, 0, 3, 3}},
                                    {"segmentation", mask}}})
                          .dump());
    EXPECT_EQ(read_coco_results(dir / "boxes.json", gt).detections[0].area, 9);
    // No bbox in the first: the mask's area, and the box from the mask.
    write_file_atomic(dir / "masks.json",
                      json::array({{{"image_id", 1}, {"category_id", 1}, {"score", 1}, {"segmentation", mask}}}).dump());
    const CocoDetection d = read_coco_results(dir / "masks.json", gt).detections[0];
    EXPECT_EQ(d.area, 4);
    EXPECT_EQ(*d.bbox, (CocoBox{1, 1, 2, 2}));
    // A box-area file with a result lacking its box.
    write_file_atomic(dir / "mixed.json",
                      json::array({{{"image_id", 1}, {"category_id", 1}, {"score", 1}, {"bbox", {0, 0, 3, 3}}},
                                   {{"image_id", 1}, {"category_id", 1}, {"score", 1}, {"segmentation", mask}}})
                          .dump());
    EXPECT_EQ(test::message_of([&] { read_coco_results(dir / "mixed.json", gt); }),
              (dir / "mixed.json").string() +
                  ": [1]: no \"bbox\" (the first result has one, so every result needs one: its area is the "
                  "box's, as pycocotools)");
}

TEST(CocoJson, WrittenResultsReadBackUnchanged) {
    const CocoDataset gt = read_coco_dataset(write_gt("gt", json::object()));
    CocoDetection a;
    a.image_id = 1, a.category_id = 1, a.score = 0.123456789012345, a.bbox = CocoBox{1, 1, 2, 2.5};
    a.mask = rle_from_polygon({1, 1, 1, 3, 3, 3, 3, 1}, 5, 6);
    const fs::path path = test::scratch_dir("write") / "results.json";
    write_coco_results(path, {a, a});
    const CocoResults back = read_coco_results(path, gt);
    ASSERT_EQ(back.detections.size(), 2u);
    EXPECT_EQ(back.detections[1].score, a.score);
    EXPECT_EQ(*back.detections[1].bbox, *a.bbox);
    EXPECT_EQ(back.detections[1].mask->counts, a.mask->counts);
    EXPECT_EQ(back.detections[1].area, 5);  // box area, as loadRes
}
