// `sightline eval --coco`: the output file and summary of a small case, and bad input — one
// error line naming the file and the problem, a non-zero exit, no output folder. Each bad
// case is checked through the readers; some also through the binary (slow to start).
#include <algorithm>
#include <functional>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sightline/coco.hpp"
#include "test_support.hpp"

using namespace sightline;
using nlohmann::json;

namespace {

// One 30x20 image with one 4x4 object, found exactly by the one detection.
json good_gt() {
    return json::parse(R"({
      "images": [{"id": 1, "height": 20, "width": 30, "file_name": "a.png"}],
      "categories": [{"id": 1, "name": "thing"}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 16,
                       "bbox": [2, 2, 4, 4], "segmentation": [[2, 2, 2, 6, 6, 6, 6, 2]]}]})");
}

json good_results() {
    const Rle mask = rle_from_polygon({2, 2, 2, 6, 6, 6, 6, 2}, 20, 30);
    return json::array({{{"image_id", 1}, {"category_id", 1}, {"score", 0.9}, {"bbox", {2, 2, 4, 4}},
                         {"segmentation", {{"size", {20, 30}}, {"counts", rle_to_string(mask)}}}}});
}

struct Files {
    fs::path gt, dt, out;
};

Files write_case(const std::string& name, const json& gt, const json& dt) {
    const fs::path dir = test::scratch_dir(name);
    Files f{dir / "gt.json", dir / "dt.json", dir / "out"};
    write_file_atomic(f.gt, gt.dump());
    write_file_atomic(f.dt, dt.dump());
    return f;
}

test::CommandResult run_eval(const Files& f, const std::string& extra = "--iou-type segm,bbox") {
    return test::run_sightline("eval --coco " + f.gt.string() + " --results " + f.dt.string() + " " + extra +
                               " --out " + f.out.string());
}

}  // namespace

TEST(CocoEvalCli, WritesStatsInPycocotoolsOrderAndPrintsTheSummary) {
    ASSERT_TRUE(fs::exists(SIGHTLINE_BINARY)) << "sightline binary not built";
    json dt = good_results();
    dt.push_back({{"image_id", 1}, {"category_id", 9}, {"score", 0.5}, {"bbox", {0, 0, 3, 3}}});
    const Files f = write_case("good", good_gt(), dt);
    const auto res = run_eval(f);
    ASSERT_EQ(res.exit_code, 0) << res.err;
    EXPECT_EQ(res.err, "");
    EXPECT_NE(res.out.find("Evaluate annotation type *segm*\n"
                           " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000\n"),
              std::string::npos) << res.out;
    EXPECT_NE(res.out.find(" Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000\n"),
              std::string::npos) << res.out;
    EXPECT_NE(res.out.find("(1 results of categories not in " + f.gt.string() + " skipped, as pycocotools)"),
              std::string::npos) << res.out;

    const auto doc = nlohmann::ordered_json::parse(read_file(f.out / "coco_eval.json"));
    for (const char* type : {"segm", "bbox"}) {
        std::vector<std::string> keys;
        for (auto it = doc[type].begin(); it != doc[type].end(); ++it) keys.push_back(it.key());
        EXPECT_EQ(keys, std::vector<std::string>(kCocoStatNames.begin(), kCocoStatNames.end())) << type;
        EXPECT_NEAR(doc[type]["AP"].get<double>(), 1.0, 1e-12);
        EXPECT_EQ(doc[type]["APl"].get<double>(), -1.0);
        EXPECT_EQ(doc["per_category"][type][0]["name"], "thing");
        EXPECT_NEAR(doc["per_category"][type][0]["AP"].get<double>(), 1.0, 1e-12);
    }
    EXPECT_EQ(doc["inputs"]["skipped_unknown_category"], 1);
    EXPECT_EQ(doc["inputs"]["detections"], 1);
}

TEST(CocoEvalCli, BadInputIsOneLineAndWritesNothing) {
    ASSERT_TRUE(fs::exists(SIGHTLINE_BINARY)) << "sightline binary not built";
    struct Case {
        std::string name;
        std::function<void(json& gt, json& dt)> spoil;
        bool in_gt;            // the message names the GT file (else the results file)
        std::string message;   // after "<file>: "
        bool via_binary = false;
    };
    const std::vector<Case> cases = {
        {"empty-annotations", [](json& gt, json&) { gt["annotations"] = json::array(); }, true,
         "\"annotations\" is empty: nothing to evaluate", true},
        {"negative-box", [](json& gt, json&) { gt["annotations"][0]["bbox"] = {2, 2, -4, 4}; }, true,
         "annotations[0] (id 1): \"bbox\" has a negative size (-4 x 4)"},
        {"polygon-outside",
         [](json& gt, json&) { gt["annotations"][0]["segmentation"] = {{40, 2, 40, 6, 44, 6, 44, 2}}; }, true,
         "annotations[0] (id 1): a polygon lies entirely outside the 30x20 image (x 40..44, y 2..6)", true},
        {"rle-size",
         [](json& gt, json&) { gt["annotations"][0]["segmentation"] = {{"size", {10, 30}}, {"counts", {300}}}; },
         true, "annotations[0] (id 1): RLE size is 10x30 (height x width) but the image is 20x30", true},
        {"unknown-category", [](json& gt, json&) { gt["annotations"][0]["category_id"] = 7; }, true,
         "annotations[0] (id 1): category_id 7 is not in \"categories\""},
        {"unknown-image", [](json&, json& dt) { dt[0]["image_id"] = 5; }, false, "[0]: image_id 5 is not an image of ",
         true},
        {"negative-result-box", [](json&, json& dt) { dt[0]["bbox"] = {2, 2, 4, -1}; }, false,
         "[0]: \"bbox\" has a negative size (4 x -1)"},
        {"bad-rle-string", [](json&, json& dt) { dt[0]["segmentation"]["counts"] = "0000~"; }, false,
         "[0]: compressed RLE: character '~' at 4 is not in '0'..'o'"},
        {"results-object", [](json&, json& dt) { dt = {{"annotations", dt}}; }, false,
         "a results file is a JSON list of detections ({image_id, category_id, score, bbox, segmentation}), "
         "got an object"},
    };
    for (const Case& c : cases) {
        json gt = good_gt(), dt = good_results();
        c.spoil(gt, dt);
        const Files f = write_case(c.name, gt, dt);
        std::string expected = (c.in_gt ? f.gt : f.dt).string() + ": " + c.message;
        if (c.name == "unknown-image") expected += f.gt.string();
        EXPECT_EQ(test::message_of([&] { read_coco_results(f.dt, read_coco_dataset(f.gt)); }), expected) << c.name;
        if (!c.via_binary) continue;
        const auto res = run_eval(f);
        EXPECT_EQ(res.err, "sightline: error: " + expected + "\n") << c.name;
        EXPECT_EQ(res.exit_code, 1) << c.name;
        EXPECT_EQ(res.out, "") << c.name;
        EXPECT_FALSE(fs::exists(f.out)) << c.name;
    }
}

TEST(CocoEvalCli, MalformedJsonNamesTheFileAndThePosition) {
    ASSERT_TRUE(fs::exists(SIGHTLINE_BINARY)) << "sightline binary not built";
    const Files f = write_case("malformed", good_gt(), good_results());
    write_file_atomic(f.gt, "{\"images\": [");
    const auto res = run_eval(f);
    EXPECT_EQ(res.exit_code, 1);
    EXPECT_EQ(res.err.rfind("sightline: error: " + f.gt.string() + ": not valid JSON: parse error at line 1, column 13", 0),
              0u) << res.err;
    EXPECT_EQ(std::count(res.err.begin(), res.err.end(), '\n'), 1) << res.err;
    EXPECT_FALSE(fs::exists(f.out));
}

TEST(CocoEvalCli, MisusedOptionsAreUsageErrors) {
    ASSERT_TRUE(fs::exists(SIGHTLINE_BINARY)) << "sightline binary not built";
    const Files f = write_case("usage", good_gt(), good_results());
    auto res = run_eval(f, "--iou-type segm,keypoints");
    EXPECT_EQ(res.exit_code, 2) << res.err;
    EXPECT_NE(res.err.find("keypoints"), std::string::npos) << res.err;
    res = test::run_sightline("eval --coco " + f.gt.string());
    EXPECT_EQ(res.exit_code, 2) << res.err;
    EXPECT_NE(res.err.find("--results"), std::string::npos) << res.err;
    res = test::run_sightline("eval --coco " + f.gt.string() + " --results " + f.dt.string() + " --pred x");
    EXPECT_EQ(res.exit_code, 2) << res.err;
    EXPECT_NE(res.err.find("excludes"), std::string::npos) << res.err;
    res = test::run_sightline("eval --gt x");
    EXPECT_EQ(res.exit_code, 2) << res.err;
    EXPECT_EQ(res.err, "sightline: error: --pred is required (or --coco GT.json --results DT.json for COCO AP)\n");
    EXPECT_FALSE(fs::exists(f.out));
}
