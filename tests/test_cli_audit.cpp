// sightline audit end to end on hand-made scenes and colour models whose explanation is known
// exactly: a model that reads the object's colour must be found to use the object, one that
// reads the background's colour to use context; bad input gives one line naming the file.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "sightline/audit.hpp"
#include "sightline/palette.hpp"
#include "colour_models.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

using test::colour_model;

// Reads the object colour: a = red, b = blue.
fs::path object_model(const fs::path& dir) {
    return colour_model(dir, "object", torch::tensor({1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f}).view({2, 3}));
}
// Reads the green background for a, and nothing that differs between the scenes for b.
fs::path context_model(const fs::path& dir) {
    return colour_model(dir, "context", torch::tensor({0.0f, 1.0f, 0.0f, 0.0f, 0.5f, 0.0f}).view({2, 3}));
}

struct SceneSpec {
    std::string id, version;
    int cls;       // 1 = a (red square), 2 = b (blue square)
    bool object;   // false: the context-only version
};

// 16x16 scenes: a 4x4 square at (4,4) on green; the context mask marks the green pixels with
// the class id. Layout as `sightline data synth` writes it, with scenes.csv versions.
fs::path write_scenes(const fs::path& root, const std::vector<SceneSpec>& scenes) {
    for (const char* d : {"JPEGImages", "SegmentationClass", "SegmentationContext", "ImageSets/Segmentation"})
        fs::create_directories(root / d);
    write_file_atomic(root / "classes.txt", "background\na\nb\n");
    std::string labels = "image,labels\n", list, csv = "image,split,scene,version,objects,contexts\n";
    for (const SceneSpec& s : scenes) {
        cv::Mat rgb(16, 16, CV_8UC3, cv::Scalar(0, 255, 0));
        cv::Mat mask = cv::Mat::zeros(16, 16, CV_8UC1), ctx(16, 16, CV_8UC1, cv::Scalar(s.cls));
        if (s.object) {
            cv::Rect box(4, 4, 4, 4);
            rgb(box).setTo(s.cls == 1 ? cv::Scalar(255, 0, 0) : cv::Scalar(0, 0, 255));
            mask(box).setTo(s.cls);
            ctx(box).setTo(0);
        }
        write_image_rgb(root / "JPEGImages" / (s.id + ".png"), rgb);
        write_palette_png(root / "SegmentationClass" / (s.id + ".png"), mask);
        write_palette_png(root / "SegmentationContext" / (s.id + ".png"), ctx);
        labels += s.id + "," + (s.cls == 1 ? "a" : "b") + "\n";
        list += s.id + "\n";
        csv += s.id + ",test,0," + s.version + ",x,y\n";
    }
    write_file_atomic(root / "labels.csv", labels);
    write_file_atomic(root / "scenes.csv", csv);
    write_file_atomic(root / "ImageSets/Segmentation/test.txt", list);
    return root;
}

std::vector<SceneSpec> default_scenes() {
    return {{"s0_matched", "matched", 1, true}, {"s0_context", "context", 1, false},
            {"s1_matched", "matched", 2, true}, {"s1_context", "context", 2, false},
            {"s2_matched", "matched", 1, true}};
}

std::string flags(const fs::path& model, const fs::path& data, const fs::path& out) {
    return "audit --model " + model.string() + " --data " + data.string() + " --split test --out " + out.string() +
           " --mean 0,0,0 --std 1,1,1 --threads 1";
}

nlohmann::json read_json(const fs::path& p) {
    std::ifstream in(p);
    return nlohmann::json::parse(in);
}

}  // namespace

TEST(AuditCli, ObjectModelUsesTheObjectExactly) {
    fs::path dir = test::scratch_dir("in");
    fs::path data = write_scenes(dir / "scenes", default_scenes());
    fs::path out = test::scratch_dir("out");
    auto r = test::run_sightline(flags(object_model(dir), data, out) + " --method cam");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    nlohmann::json j = read_json(out / "audit.json");
    EXPECT_EQ(j["trustworthy"], true);
    ASSERT_EQ(j["classes"].size(), 2u);
    const auto& a = j["classes"][0];
    EXPECT_EQ(a["name"], "a");
    EXPECT_EQ(a["images"], 2);
    // The map of class a is the red channel: exactly the object.
    EXPECT_DOUBLE_EQ(a["object_mass"].get<double>(), 1.0);
    EXPECT_DOUBLE_EQ(a["object_area"].get<double>(), 16.0 / 256.0);
    EXPECT_DOUBLE_EQ(a["context_mass"].get<double>(), 0.0);
    EXPECT_DOUBLE_EQ(a["object_concentration"].get<double>(), 16.0);
    EXPECT_EQ(a["verdict"], "uses the object");
    EXPECT_DOUBLE_EQ(a["iou"][0]["iou"].get<double>(), 1.0);
    EXPECT_DOUBLE_EQ(a["best_iou"].get<double>(), 1.0);
    EXPECT_DOUBLE_EQ(a["pointing_game"].get<double>(), 1.0);
    EXPECT_EQ(a["behaviour"][0]["version"], "matched");
    EXPECT_DOUBLE_EQ(a["behaviour"][0]["accuracy"].get<double>(), 1.0);
    EXPECT_EQ(j["classes"][1]["verdict"], "uses the object");
    EXPECT_EQ(j["overall"]["verdict"], "uses the object");
    EXPECT_NE(r.out.find("cam on this model:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("uses the object"), std::string::npos);
    EXPECT_TRUE(fs::exists(out / "audit.csv"));
    EXPECT_TRUE(fs::exists(out / "audit_records.csv"));
}

TEST(AuditCli, ContextModelUsesContextAndContextOnlyImagesStillWork) {
    fs::path dir = test::scratch_dir("in");
    fs::path data = write_scenes(dir / "scenes", default_scenes());
    fs::path out = test::scratch_dir("out");
    auto r = test::run_sightline(flags(context_model(dir), data, out));  // default method hirescam
    ASSERT_EQ(r.exit_code, 0) << r.err;
    nlohmann::json j = read_json(out / "audit.json");
    EXPECT_EQ(j["method"], "hirescam");
    EXPECT_EQ(j["trustworthy"], true);
    const auto& a = j["classes"][0];
    EXPECT_DOUBLE_EQ(a["object_mass"].get<double>(), 0.0);
    EXPECT_DOUBLE_EQ(a["context_mass"].get<double>(), 1.0);
    EXPECT_DOUBLE_EQ(a["reference_concentration"].get<double>(), 256.0 / 240.0);
    EXPECT_EQ(a["verdict"], "uses context");
    EXPECT_DOUBLE_EQ(a["iou"][0]["iou"].get<double>(), 0.0);
    // Class a's logit is the green share: higher without the object, so the context-only
    // version is classified as a too.
    EXPECT_EQ(a["behaviour"][1]["version"], "context");
    EXPECT_DOUBLE_EQ(a["behaviour"][1]["accuracy"].get<double>(), 1.0);
    EXPECT_DOUBLE_EQ(a["behaviour"][1]["context_mass"].get<double>(), 1.0);
    EXPECT_EQ(j["records"].size(), 5u);
}

TEST(AuditCli, MethodWithoutGuaranteeMarksTheAuditUntrustworthy) {
    fs::path dir = test::scratch_dir("in");
    fs::path data = write_scenes(dir / "scenes", default_scenes());
    fs::path out = test::scratch_dir("out");
    auto r = test::run_sightline(flags(object_model(dir), data, out) + " --method gradcam++");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("NOT TRUSTWORTHY: gradcam++ has no faithfulness guarantee for this model", 0), 0u) << r.out;
    EXPECT_EQ(read_json(out / "audit.json")["trustworthy"], false);
}

TEST(AuditCli, RankingMethodsByIouIsRefusedWithTheReason) {
    fs::path dir = test::scratch_dir("in");
    fs::path data = write_scenes(dir / "scenes", default_scenes());
    fs::path out = test::scratch_dir("out") / "report";
    auto r = test::run_sightline(flags(object_model(dir), data, out) + " --rank-methods");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err.rfind("sightline: error: --rank-methods: the audit does not rank explanation methods by IoU. IoU of a "
                          "map with the object mask measures what the model uses",
                          0),
              0u)
        << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
    EXPECT_FALSE(fs::exists(out));
    r = test::run_sightline(flags(object_model(dir), data, out) + " --method cam,hirescam");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--method cam,hirescam: the audit takes one method."), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out));
}

TEST(AuditCli, BadInputIsOneLineNamingTheFile) {
    fs::path dir = test::scratch_dir("in");
    fs::path data = write_scenes(dir / "scenes", default_scenes());
    fs::path model = object_model(dir);
    fs::path out = test::scratch_dir("out") / "report";
    auto one_line = [&](const std::string& args, const std::string& expected) {
        auto r = test::run_sightline(args);
        EXPECT_NE(r.exit_code, 0) << args;
        EXPECT_NE(r.err.find(expected), std::string::npos) << "args: " << args << "\nstderr: " << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        EXPECT_FALSE(fs::exists(out / "audit.json"));
    };
    // A layer the model does not have: the error lists the names it has.
    one_line(flags(model, data, out) + " --layer nosuch", "nosuch");
    // A context mask of another size than its image names both files.
    fs::path ctx = data / "SegmentationContext" / "s1_matched.png";
    write_palette_png(ctx, cv::Mat::zeros(8, 16, CV_8UC1));
    one_line(flags(model, data, out), ctx.string() + ": context mask is 16x8 but the image " +
                                          (data / "JPEGImages" / "s1_matched.png").string() + " is 16x16");
    write_palette_png(ctx, cv::Mat::zeros(16, 16, CV_8UC1));
    // An object mask of another size than its image (checked by the dataset reader).
    fs::path mask = data / "SegmentationClass" / "s2_matched.png";
    std::string good_mask = read_file(mask);
    write_palette_png(mask, cv::Mat::zeros(12, 16, CV_8UC1));
    one_line(flags(model, data, out), "s2_matched.png");
    // A label above the class count that is not the ignore value.
    cv::Mat bad = cv::Mat::zeros(16, 16, CV_8UC1);
    bad.at<uint8_t>(3, 3) = 7;
    write_palette_png(mask, bad);
    one_line(flags(model, data, out), "7");
    write_file_atomic(mask, good_mask);
    // An unreadable image.
    fs::path image = data / "JPEGImages" / "s2_matched.png";
    std::string good_image = read_file(image);
    write_file_atomic(image, std::string("\x89PNG\r\n\x1a\n garbage"));
    one_line(flags(model, data, out), image.string());
    write_file_atomic(image, good_image);
    // A model with another number of classes than the data.
    fs::path three = colour_model(dir, "three", torch::eye(3));
    one_line(flags(three, data, out), three.string() + ": the model has 3 outputs but " +
                                          (data / "classes.txt").string() + " lists 2 object classes");
    // A split that does not exist, and data that is not a folder.
    one_line("audit --model " + model.string() + " --data " + data.string() + " --split nosuch --out " + out.string(),
             "nosuch");
    one_line("audit --model " + model.string() + " --data " + (dir / "none").string() + " --out " + out.string(),
             (dir / "none").string() + ": no such dataset folder");
    one_line(flags(model, data, out) + " --thresholds 0.3,1.2", "--thresholds: 1.2 is not in (0, 1)");
    one_line(flags(model, data, out) + " --method nosuch", "nosuch");
}

// A rerun reuses the finished batches; the result equals a run without the cache.
TEST(AuditModel, ResumedRunEqualsFreshRun) {
    fs::path dir = test::scratch_dir("in");
    fs::path data = write_scenes(dir / "scenes", default_scenes());
    AuditOptions o;
    o.model = context_model(dir);
    o.data = data;
    o.splits = {"test"};
    o.mean = std::array<float, 3>{0, 0, 0};
    o.std = std::array<float, 3>{1, 1, 1};
    o.batch = 2;
    AuditResult fresh = audit_model(o);
    o.resume_dir = test::scratch_dir("cache");
    std::vector<std::size_t> progress;
    AuditResult first = audit_model(o, [&](std::size_t done, std::size_t) { progress.push_back(done); });
    EXPECT_EQ(progress, (std::vector<std::size_t>{2, 4, 5}));
    EXPECT_TRUE(fs::exists(o.resume_dir / "test.2.json"));
    // Poison one cached batch: a rerun must take the cached records, not recompute them.
    nlohmann::json cached = read_json(o.resume_dir / "test.0.json");
    cached["records"][0]["correct"] = !cached["records"][0]["correct"].get<bool>();
    write_file_atomic(o.resume_dir / "test.0.json", cached.dump());
    AuditResult resumed = audit_model(o);
    ASSERT_EQ(resumed.records.size(), fresh.records.size());
    EXPECT_NE(resumed.records[0].correct, fresh.records[0].correct);
    resumed.records[0].correct = fresh.records[0].correct;
    resumed.summary = summarise_audit(resumed.records, resumed.class_names, resumed.thresholds);
    fs::path a = test::scratch_dir("a"), b = test::scratch_dir("b"), c = test::scratch_dir("c");
    write_audit_outputs(a, fresh);
    write_audit_outputs(b, first);
    write_audit_outputs(c, resumed);  // every double read back from the cache bit for bit
    EXPECT_EQ(read_file(a / "audit.json"), read_file(b / "audit.json"));
    EXPECT_EQ(read_file(a / "audit.json"), read_file(c / "audit.json"));
    // Another configuration drops the cache.
    o.thresholds.fixed = {0.4};
    AuditResult other = audit_model(o);
    EXPECT_EQ(other.records[0].correct, fresh.records[0].correct);
    EXPECT_EQ(other.records[0].iou_fixed.size(), 1u);
}

TEST(AuditCli, ShardsMergeIntoTheSingleRunsOutput) {
    fs::path dir = test::scratch_dir("in");
    std::vector<SceneSpec> scenes;
    for (int i = 0; i < 9; ++i)
        scenes.push_back({"s" + std::to_string(i) + (i % 3 == 2 ? "_context" : "_matched"),
                          i % 3 == 2 ? "context" : "matched", 1 + i % 2, i % 3 != 2});
    fs::path data = write_scenes(dir / "scenes", scenes);
    const fs::path root = test::scratch_dir("out");
    const std::string common = " --batch 2";  // 5 batches: 3 shards own 2, 2 and 1
    auto whole = test::run_sightline(flags(context_model(dir), data, root / "whole") + common);
    ASSERT_EQ(whole.exit_code, 0) << whole.err;
    std::string shards;
    for (int i = 0; i < 3; ++i) {
        const fs::path out = root / ("shard" + std::to_string(i));
        auto r = test::run_sightline(flags(context_model(dir), data, out) + common + " --shard " + std::to_string(i) +
                                     "/3");
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.out.find("shard " + std::to_string(i) + "/3:"), std::string::npos) << r.out;
        shards += " " + out.string();
    }
    // Two shards only, a shard twice: one line naming the problem, nothing written.
    auto missing = test::run_sightline("merge" + std::string(" ") + (root / "shard0").string() + " " +
                                       (root / "shard2").string() + " --out " + (root / "bad").string());
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_EQ(missing.err, "sightline: error: merge: shard 1/3 is missing (give all 3 output folders)\n");
    auto twice = test::run_sightline("merge" + shards + " " + (root / "shard1").string() + " --out " +
                                     (root / "bad").string());
    EXPECT_NE(twice.err.find("merge: shard 1/3 given twice"), std::string::npos) << twice.err;
    EXPECT_FALSE(fs::exists(root / "bad"));

    auto merged = test::run_sightline("merge" + shards + " --out " + (root / "merged").string());
    ASSERT_EQ(merged.exit_code, 0) << merged.err;
    for (const char* file : {"audit.json", "audit.csv", "audit_records.csv"})
        EXPECT_EQ(read_file(root / "merged" / file), read_file(root / "whole" / file)) << file;
    // The printed table is the single run's too.
    EXPECT_EQ(merged.out.substr(0, merged.out.find("merged 3 audit shard(s)")),
              whole.out.substr(0, whole.out.find("wrote ")));
    EXPECT_EQ(read_json(root / "merged" / "audit.json")["images"], 9);
}
