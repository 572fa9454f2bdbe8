// One preprocessing per model, the same in every command: the model's stored mean/std/size
// are used without flags, flags override them, ImageNet's are assumed with one note, and the
// choice is recorded. Also explain's --labels (classes.txt with a background line) and --list.
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "colour_models.hpp"
#include "sightline/core.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

nlohmann::json read_json(const fs::path& p) {
    std::ifstream in(p);
    return nlohmann::json::parse(in);
}

// Random 16x16 RGB images <name>.png in dir.
fs::path write_images(const fs::path& dir, const std::vector<std::string>& names) {
    cv::RNG rng(7);
    for (const auto& name : names) {
        cv::Mat rgb(16, 16, CV_8UC3);
        rng.fill(rgb, cv::RNG::UNIFORM, 0, 256);
        write_image_rgb(dir / (name + ".png"), rgb);
    }
    return dir;
}

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

torch::Tensor three_classes() { return torch::tensor({1.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 1.0f}).view({3, 3}); }

// features = relu(x); head = flatten -> Linear: runs only at 12x12.
fs::path flatten_model(const fs::path& dir, const std::string& name, bool store_size) {
    torch::jit::Module m("FlatNet");
    torch::manual_seed(0);
    m.register_parameter("fc_w", torch::randn({2, 3 * 12 * 12}), false);
    m.define(R"(
def features(self, x):
    return torch.relu(x)
def head(self, a):
    return torch.mm(torch.flatten(a, 1), self.fc_w.t())
def forward(self, x):
    return self.head(self.features(x))
)");
    if (store_size) m.register_attribute("sightline_input_size", c10::IntType::get(), int64_t{12});
    fs::path path = dir / (name + ".pt");
    m.save(path.string());
    return path;
}

}  // namespace

TEST(PreprocessCli, ExplainUsesTheModelsStoredNormalisationWithoutFlags) {
    fs::path dir = test::scratch_dir("in");
    fs::path images = write_images(dir / "images", {"p", "q"});
    test::StoredInput stored{std::array<double, 3>{0.2, 0.3, 0.4}, std::array<double, 3>{0.5, 0.6, 0.7}, {}};
    fs::path model = test::colour_model(dir, "stored", three_classes(), stored);
    fs::path plain = test::scratch_dir("plain"), given = test::scratch_dir("given"), imagenet = test::scratch_dir("imagenet");
    const std::string base = "explain --model " + model.string() + " --target 2 --input " + images.string();
    auto r = test::run_sightline(base + " --out " + plain.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err.find("note:"), std::string::npos) << r.err;
    nlohmann::json pre = read_json(plain / "summary.json")["preprocessing"];
    EXPECT_EQ(pre["source"], "model");
    EXPECT_NEAR(pre["mean"][2].get<double>(), 0.4, 1e-6);
    EXPECT_NEAR(pre["std"][0].get<double>(), 0.5, 1e-6);
    EXPECT_TRUE(pre["size"].is_null());
    EXPECT_EQ(pre["size_source"], "image");
    r = test::run_sightline(base + " --mean 0.2,0.3,0.4 --std 0.5,0.6,0.7 --out " + given.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_json(given / "summary.json")["preprocessing"]["source"], "flags");
    r = test::run_sightline(base + " --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --out " + imagenet.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const char* map : {"p.hirescam.2.npy", "q.hirescam.2.npy"}) {
        EXPECT_EQ(read_file(plain / map), read_file(given / map)) << map;  // bit for bit
        EXPECT_NE(read_file(plain / map), read_file(imagenet / map)) << map;  // the normalisation matters
    }
}

TEST(PreprocessCli, WithoutStoredNormalisationImageNetIsAssumedWithOneNote) {
    fs::path dir = test::scratch_dir("in");
    fs::path images = write_images(dir / "images", {"p", "q", "r"});
    fs::path model = test::colour_model(dir, "bare", three_classes());
    fs::path out = test::scratch_dir("out");
    auto r = test::run_sightline("explain --model " + model.string() + " --input " + images.string() + " --out " +
                                 out.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count(r.err, "sightline: note: bare.pt stores no normalisation; using ImageNet mean/std; give "
                           "--mean/--std to override\n"),
              1u)
        << r.err;
    nlohmann::json pre = read_json(out / "summary.json")["preprocessing"];
    EXPECT_EQ(pre["source"], "imagenet-default");
    EXPECT_NEAR(pre["mean"][0].get<double>(), 0.485, 1e-6);
    // A flag for one of the two: the other is still ImageNet's, and the note says which.
    r = test::run_sightline("explain --model " + model.string() + " --input " + images.string() + " --mean 0,0,0 --out " +
                            test::scratch_dir("out2").string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("note: bare.pt stores no std; using ImageNet's; give --std to override"), std::string::npos)
        << r.err;
    // The same resolution in audit-free commands that take the flags: inspect records it too.
    fs::path json = dir / "inspect.json";
    r = test::run_sightline("inspect --model " + model.string() + " --input " + (images / "p.png").string() +
                            " --mean 0.1,0.1,0.1 --std 0.2,0.2,0.2 --json " + json.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_json(json)["preprocessing"]["source"], "flags");
    EXPECT_NEAR(read_json(json)["preprocessing"]["std"][1].get<double>(), 0.2, 1e-6);
}

TEST(PreprocessCli, StoredInputSizeIsTheDefaultAndAWrongSizeSaysHowToGiveIt) {
    fs::path dir = test::scratch_dir("in");
    fs::path images = write_images(dir / "images", {"p"});
    fs::path sized = flatten_model(dir, "sized", true), unsized = flatten_model(dir, "unsized", false);
    auto r = test::run_sightline("inspect --model " + sized.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("standard normal noise 12x12 (the model's stored size"), std::string::npos) << r.out;
    auto wrong = [&](const std::string& args, const std::string& size) {
        auto w = test::run_sightline(args);
        EXPECT_EQ(w.exit_code, 1) << args;
        EXPECT_NE(w.err.find("the model does not run on " + size +
                             " input: the input size must match the model's (e.g. the size it was trained at); "
                             "give it with --size HxW"),
                  std::string::npos)
            << w.err;
        EXPECT_EQ(w.err.find("mat1"), std::string::npos) << w.err;
        EXPECT_EQ(count(w.err, "\n"), 1u) << w.err;
    };
    wrong("inspect --model " + sized.string() + " --size 16x16", "16x16");
    wrong("inspect --model " + unsized.string(), "224x224");
    fs::path out = test::scratch_dir("out");
    wrong("explain --model " + unsized.string() + " --mean 0,0,0 --std 1,1,1 --input " + images.string() + " --out " +
              out.string(),
          "16x16");
    // explain resizes the 16x16 image to the stored 12x12 without being told.
    r = test::run_sightline("explain --model " + sized.string() + " --mean 0,0,0 --std 1,1,1 --input " +
                            images.string() + " --out " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    nlohmann::json pre = read_json(out / "summary.json")["preprocessing"];
    EXPECT_EQ(pre["size"], nlohmann::json({12, 12}));
    EXPECT_EQ(pre["size_source"], "model");
    EXPECT_EQ(pre["source"], "flags");
    r = test::run_sightline("inspect --model " + unsized.string() + " --size 12x12");
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(PreprocessCli, LabelsMayStartWithTheBackgroundLine) {
    fs::path dir = test::scratch_dir("in");
    fs::path images = write_images(dir / "images", {"p"});
    fs::path model = test::colour_model(dir, "two", torch::tensor({1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f}).view({2, 3}));
    write_file_atomic(dir / "classes.txt", "background\ncat\ndog\n");
    fs::path out = test::scratch_dir("out");
    auto r = test::run_sightline("explain --model " + model.string() + " --mean 0,0,0 --std 1,1,1 --target all --labels " +
                                 (dir / "classes.txt").string() + " --input " + images.string() + " --out " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("classes.txt has 3 names for 2 outputs; its first line 'background' is taken as the "
                         "background"),
              std::string::npos)
        << r.err;
    nlohmann::json items = read_json(out / "summary.json")["items"];
    ASSERT_EQ(items.size(), 2u);
    EXPECT_EQ(items[0]["class_name"], "cat");
    EXPECT_EQ(items[1]["class_name"], "dog");
    EXPECT_TRUE(fs::exists(out / "p.hirescam.dog.npy"));
    write_file_atomic(dir / "classes.txt", "background\ncat\ndog\nbird\n");
    r = test::run_sightline("explain --model " + model.string() + " --mean 0,0,0 --std 1,1,1 --labels " +
                            (dir / "classes.txt").string() + " --input " + images.string() + " --out " + out.string());
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("classes.txt: has 4 class names but the model has 2 classes"), std::string::npos) << r.err;
}

TEST(PreprocessCli, ExplainListTakesTheImagesOfASplitFile) {
    fs::path dir = test::scratch_dir("in");
    fs::path images = write_images(dir / "images", {"a", "b", "c"});
    fs::path model = test::colour_model(dir, "m", three_classes());
    write_file_atomic(dir / "val.txt", "c\n\nb.png\n");
    fs::path out = test::scratch_dir("out");
    const std::string base = "explain --model " + model.string() + " --mean 0,0,0 --std 1,1,1 --input " + images.string();
    auto r = test::run_sightline(base + " --list " + (dir / "val.txt").string() + " --out " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::set<std::string> stems;
    const nlohmann::json summary = read_json(out / "summary.json");
    for (const auto& item : summary["items"]) stems.insert(item["stem"].get<std::string>());
    EXPECT_EQ(stems, (std::set<std::string>{"b", "c"}));
    write_file_atomic(dir / "bad.txt", "a\nzz\n");
    r = test::run_sightline(base + " --list " + (dir / "bad.txt").string() + " --out " + test::scratch_dir("o2").string());
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find((dir / "bad.txt").string() + ": line 2: no image named 'zz' in " + images.string()),
              std::string::npos)
        << r.err;
}

TEST(PreprocessCli, SanityAndScoreRecordThePreprocessingTheyUsed) {
    fs::path dir = test::scratch_dir("in");
    fs::path images = write_images(dir / "images", {"a", "b"});
    const fs::path gapnet = test::fixtures() / "gradcam" / "gapnet.pt";
    fs::path sanity = test::scratch_dir("sanity"), score = test::scratch_dir("score");
    auto r = test::run_sightline("sanity --model " + gapnet.string() + " --input " + images.string() +
                                 " --method gradcam --no-edges --mean 0.1,0.2,0.3 --std 0.4,0.5,0.6 --size 32x40 --out " +
                                 sanity.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // The curves of every metric, with their spread over the images.
    const std::string curves = read_file(sanity / "sanity_curves.svg");
    EXPECT_EQ(curves.rfind("<svg xmlns", 0), 0u);
    EXPECT_NE(curves.find("spearman_abs with the original maps"), std::string::npos);
    EXPECT_NE(curves.find("<polygon"), std::string::npos);
    nlohmann::json pre = read_json(sanity / "sanity.json")["preprocessing"];
    EXPECT_EQ(pre["source"], "flags");
    EXPECT_NEAR(pre["mean"][1].get<double>(), 0.2, 1e-6);
    EXPECT_NEAR(pre["std"][2].get<double>(), 0.6, 1e-6);
    EXPECT_EQ(pre["size"], nlohmann::json({32, 40}));
    EXPECT_EQ(pre["size_source"], "flags");
    // Without flags the model's lack of stored values is recorded as ImageNet's default.
    r = test::run_sightline("score --model " + gapnet.string() + " --input " + images.string() +
                            " --method gradcam --no-road --steps 4 --out " + score.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("note: gapnet.pt stores no normalisation"), std::string::npos) << r.err;
    pre = read_json(score / "score.json")["preprocessing"];
    EXPECT_EQ(pre["source"], "imagenet-default");
    EXPECT_NEAR(pre["std"][0].get<double>(), 0.229, 1e-6);
    EXPECT_TRUE(pre["size"].is_null());
    EXPECT_EQ(pre["size_source"], "image");
}
