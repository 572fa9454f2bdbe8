// sightline audit on a user's own VOC-style folder: labels.csv with an `image,class` header,
// VOC's 255 band in the masks, a context folder of the user's choosing (255 on the object
// too), split files named or given by path and named in the output, and --target predicted.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "colour_models.hpp"
#include "sightline/core.hpp"
#include "sightline/palette.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

nlohmann::json read_json(const fs::path& p) {
    std::ifstream in(p);
    return nlohmann::json::parse(in);
}

struct Photo {
    std::string id;
    int cls;           // 1 = cat (red square), 2 = dog (blue square)
    bool red_patch;    // a red strip in the background: the object model then predicts cat
};

// 16x16 photos on green: a 4x4 square at (4,4) with a one-pixel 255 band around it in the
// mask; the context masks in ctx/ are 255 everywhere, or 0 on the object.
fs::path write_user_folder(const fs::path& root, bool context_on_object = true) {
    const std::vector<Photo> photos = {{"2008_000011", 1, false}, {"2008_000023", 2, false},
                                       {"2008_000035", 1, false}, {"2008_000047", 2, true}};
    for (const char* d : {"JPEGImages", "SegmentationClass", "ctx", "ImageSets/Segmentation"})
        fs::create_directories(root / d);
    write_file_atomic(root / "classes.txt", "background\ncat\ndog\n");
    std::string labels = "image,class\n";
    for (const Photo& p : photos) {
        cv::Mat rgb(16, 16, CV_8UC3, cv::Scalar(0, 255, 0));
        cv::Mat mask = cv::Mat::zeros(16, 16, CV_8UC1), ctx(16, 16, CV_8UC1, cv::Scalar(255));
        if (p.red_patch) rgb(cv::Rect(0, 10, 16, 6)).setTo(cv::Scalar(255, 0, 0));
        rgb(cv::Rect(4, 4, 4, 4)).setTo(p.cls == 1 ? cv::Scalar(255, 0, 0) : cv::Scalar(0, 0, 255));
        mask(cv::Rect(3, 3, 6, 6)).setTo(255);
        mask(cv::Rect(4, 4, 4, 4)).setTo(p.cls);
        if (!context_on_object) ctx(cv::Rect(4, 4, 4, 4)).setTo(0);
        write_image_rgb(root / "JPEGImages" / (p.id + ".png"), rgb);
        write_palette_png(root / "SegmentationClass" / (p.id + ".png"), mask);
        write_palette_png(root / "ctx" / (p.id + ".png"), ctx);
        // One row names the file, the others the id.
        labels += (p.id == "2008_000035" ? p.id + ".png" : p.id) + "," + (p.cls == 1 ? "cat" : "dog") + "\n";
    }
    write_file_atomic(root / "labels.csv", labels);
    write_file_atomic(root / "ImageSets/Segmentation/mine.txt", "2008_000011\n2008_000023\n2008_000035\n2008_000047\n");
    write_file_atomic(root / "ImageSets/Segmentation/trainval.txt", "2008_000011\n2008_000023\n");
    return root;
}

// Reads red for cat and blue for dog; stores its (identity) normalisation.
fs::path object_model(const fs::path& dir) {
    test::StoredInput stored{std::array<double, 3>{0, 0, 0}, std::array<double, 3>{1, 1, 1}, {}};
    return test::colour_model(dir, "pets", torch::tensor({1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f}).view({2, 3}), stored);
}

}  // namespace

TEST(AuditVocCli, UserFolderWithClassColumnAndItsOwnContextFolder) {
    fs::path dir = test::scratch_dir("in");
    fs::path data = write_user_folder(dir / "pets"), model = object_model(dir);
    fs::path out = test::scratch_dir("out");
    auto r = test::run_sightline("audit --model " + model.string() + " --data " + data.string() +
                                 " --split mine --context ctx --size 16x16 --out " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");  // the model stores its normalisation: no note
    EXPECT_NE(r.out.find("4 images of split mine, 4 explained (image, class) pairs, target: label"), std::string::npos)
        << r.out;
    nlohmann::json j = read_json(out / "audit.json");
    EXPECT_EQ(j["splits"], nlohmann::json({"mine"}));
    EXPECT_EQ(j["target"], "label");
    EXPECT_EQ(j["preprocessing"]["source"], "model");
    EXPECT_EQ(j["preprocessing"]["mean"], nlohmann::json({0.0, 0.0, 0.0}));
    EXPECT_EQ(j["preprocessing"]["size"], nlohmann::json({16, 16}));
    EXPECT_EQ(j["preprocessing"]["size_source"], "flags");
    ASSERT_EQ(j["classes"].size(), 2u);
    for (const auto& c : j["classes"]) {
        // Each class's map is its own colour channel: all of it on the object, none on the context.
        EXPECT_DOUBLE_EQ(c["object_mass"].get<double>(), 1.0) << c["name"];
        EXPECT_DOUBLE_EQ(c["context_mass"].get<double>(), 0.0) << c["name"];
        EXPECT_EQ(c["reference"], "context");
        EXPECT_EQ(c["verdict"], "uses the object") << c["name"];
    }
    EXPECT_EQ(j["classes"][0]["name"], "cat");
    EXPECT_EQ(j["classes"][0]["images"], 2);  // 2008_000035.png in labels.csv is the id 2008_000035
    // The dog with a red strip behind it is classified as a cat.
    EXPECT_EQ(j["records"][3]["id"], "2008_000047");
    EXPECT_EQ(j["records"][3]["correct"], false);
    EXPECT_EQ(j["records"][3]["explained_class"], "dog");
}

TEST(AuditVocCli, TargetPredictedExplainsTheDecision) {
    fs::path dir = test::scratch_dir("in");
    fs::path data = write_user_folder(dir / "pets"), model = object_model(dir);
    fs::path out = test::scratch_dir("out");
    auto r = test::run_sightline("audit --model " + model.string() + " --data " + data.string() +
                                 " --split mine --context ctx --target predicted --out " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("target: predicted"), std::string::npos) << r.out;
    nlohmann::json j = read_json(out / "audit.json");
    EXPECT_EQ(j["target"], "predicted");
    const auto& wrong = j["records"][3];
    EXPECT_EQ(wrong["class"], "dog");
    EXPECT_EQ(wrong["explained_class"], "cat");
    // The cat map is the red channel: the strip, all context, nothing on the dog.
    EXPECT_DOUBLE_EQ(wrong["object_mass"].get<double>(), 0.0);
    EXPECT_DOUBLE_EQ(wrong["context_mass"].get<double>(), 1.0);
    for (int i = 0; i < 3; ++i) {  // right decisions: the same map as with --target label
        EXPECT_EQ(j["records"][i]["explained_class"], j["records"][i]["class"]);
        EXPECT_DOUBLE_EQ(j["records"][i]["object_mass"].get<double>(), 1.0);
    }
    r = test::run_sightline("audit --model " + model.string() + " --data " + data.string() +
                            " --split mine --target nosuch --out " + out.string());
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--target nosuch: expected label or predicted"), std::string::npos) << r.err;
}

TEST(AuditVocCli, ContextMaskWith255OnTheObjectEqualsOneWithout) {
    fs::path dir = test::scratch_dir("in");
    fs::path model = object_model(dir);
    fs::path on = write_user_folder(dir / "on", true), off = write_user_folder(dir / "off", false);
    fs::path out_on = test::scratch_dir("out_on"), out_off = test::scratch_dir("out_off");
    for (const auto& [data, out] : {std::pair{on, out_on}, std::pair{off, out_off}}) {
        auto r = test::run_sightline("audit --model " + model.string() + " --data " + data.string() +
                                     " --split mine --context " + (data / "ctx").string() + " --out " + out.string());
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    EXPECT_EQ(read_json(out_on / "audit.json")["classes"], read_json(out_off / "audit.json")["classes"]);
}

TEST(AuditVocCli, SplitsAreNamedAndGivenByNameOrPath) {
    fs::path dir = test::scratch_dir("in");
    fs::path data = write_user_folder(dir / "pets"), model = object_model(dir);
    fs::path out = test::scratch_dir("out");
    const std::string base = "audit --model " + model.string() + " --data " + data.string();
    // No val and two splits: say which there are.
    auto r = test::run_sightline(base + " --out " + out.string());
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("no val split; give --split (one or more of: mine, trainval)"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out / "audit.json"));
    // A split file elsewhere, by path, beside a named one.
    write_file_atomic(dir / "picked.txt", "2008_000047\n");
    r = test::run_sightline(base + " --split trainval," + (dir / "picked.txt").string() + " --out " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("3 images of splits trainval, " + (dir / "picked.txt").string()), std::string::npos) << r.out;
    nlohmann::json j = read_json(out / "audit.json");
    EXPECT_EQ(j["splits"], nlohmann::json({"trainval", (dir / "picked.txt").string()}));
    EXPECT_EQ(j["records"].size(), 3u);
    // Without the context folder given, there is none (the user's is not SegmentationContext/).
    EXPECT_EQ(j["classes"][0]["reference"], "outside the object");
}

TEST(AuditVocCli, LabelsCsvErrorNamesTheRequiredColumns) {
    fs::path dir = test::scratch_dir("in");
    fs::path data = write_user_folder(dir / "pets"), model = object_model(dir);
    write_file_atomic(data / "labels.csv", "file,label\n2008_000011,cat\n");
    auto r = test::run_sightline("audit --model " + model.string() + " --data " + data.string() + " --split mine --out " +
                                 test::scratch_dir("out").string());
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find((data / "labels.csv").string() + ": the first line must be the header 'image,class' or "
                                                          "'image,labels'"),
              std::string::npos)
        << r.err;
    // Several classes of one image separated by spaces.
    write_file_atomic(data / "labels.csv", "image,labels\n2008_000011,cat dog\n");
    r = test::run_sightline("audit --model " + model.string() + " --data " + data.string() + " --split trainval --out " +
                            test::scratch_dir("out2").string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("3 explained (image, class) pairs"), std::string::npos) << r.out;
}
