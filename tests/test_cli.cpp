// The sightline binary end to end: explain / inspect / list, resume, and every bad input
// giving one clear line, the right exit code and no half-written output.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include "sightline/tensor_io.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

fs::path gradcam(const std::string& f) { return test::fixtures() / "gradcam" / f; }

// The fixture's two gapnet inputs as separate [1,3,H,W] .npy files in `dir`.
void write_gapnet_inputs(const fs::path& dir) {
    torch::Tensor x = npy_to_tensor(read_npy(gradcam("input_3x64x80.npy")));
    fs::create_directories(dir);
    write_npy(dir / "img0.npy", tensor_to_npy(x.slice(0, 0, 1)));
    write_npy(dir / "img1.npy", tensor_to_npy(x.slice(0, 1, 2)));
}

int count_files(const fs::path& dir, const std::string& suffix) {
    int n = 0;
    for (auto& e : fs::recursive_directory_iterator(dir)) {
        std::string name = e.path().filename().string();
        if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) ++n;
    }
    return n;
}

std::string model_flags() { return "--model " + gradcam("gapnet.pt").string() + " --layer features"; }

}  // namespace

TEST(ExplainCli, WritesParityMapsOverlaysAndSummary) {
    fs::path in = test::scratch_dir("in"), out = test::scratch_dir("out");
    write_gapnet_inputs(in);
    auto r = test::run_sightline("explain " + model_flags() + " --method gradcam,hirescam --input " +
                                 in.string() + " --out " + out.string() + " --raw --threads 2");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // Both methods, both images, class 1 (the fixture's top-1).
    torch::Tensor ref = npy_to_tensor(read_npy(gradcam("gapnet__GradCAM__top1.npy")));
    for (int b = 0; b < 2; ++b) {
        fs::path map = out / ("img" + std::to_string(b) + ".gradcam.1.npy");
        ASSERT_TRUE(fs::exists(map)) << map;
        torch::Tensor m = npy_to_tensor(read_npy(map));
        EXPECT_LE((m - ref[b]).abs().max().item<double>(), 1e-4);
        EXPECT_TRUE(fs::exists(out / ("img" + std::to_string(b) + ".hirescam.1.png")));
        EXPECT_TRUE(fs::exists(out / ("img" + std::to_string(b) + ".hirescam.1.raw.npy")));
    }
    std::ifstream s(out / "summary.json");
    nlohmann::json summary = nlohmann::json::parse(s);
    ASSERT_EQ(summary["items"].size(), 4u);
    EXPECT_EQ(summary["head"]["kind"], "gap_linear");
    for (const auto& item : summary["items"]) {
        EXPECT_TRUE(item["guarantee"]["holds"].get<bool>()) << item["method"];
        EXPECT_LT(std::abs(item["completeness_residual"].get<double>()), 1e-4);
    }
    EXPECT_EQ(count_files(out, ".tmp"), 0);
}

TEST(ExplainCli, RerunSkipsFinishedInputs) {
    fs::path in = test::scratch_dir("in"), out = test::scratch_dir("out");
    write_gapnet_inputs(in);
    std::string cmd = "explain " + model_flags() + " --input " + in.string() + " --out " + out.string();
    ASSERT_EQ(test::run_sightline(cmd).exit_code, 0);
    fs::path map = out / "img0.hirescam.1.npy";
    auto before = fs::last_write_time(map);
    fs::remove(out / "img1.hirescam.1.npy");
    fs::remove(out / ".sightline" / "explain" / "img1.json");
    auto r = test::run_sightline(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(fs::last_write_time(map), before);        // finished input not redone
    EXPECT_TRUE(fs::exists(out / "img1.hirescam.1.npy"));  // unfinished one redone
}

namespace {

// summary.json without the measured times (the one thing two runs never share).
nlohmann::json summary_without_times(const fs::path& dir) {
    nlohmann::json s = nlohmann::json::parse(read_file(dir / "summary.json"));
    for (auto& item : s["items"]) item.erase("seconds_per_image");
    return s;
}

}  // namespace

// Three shards of 7 inputs in blocks of 2 (shard 0 takes blocks 0 and 3), then merged: the
// same maps, overlays and summary as one run, byte for byte (SmoothGrad's noise included,
// since every batch is the same as in the single run).
TEST(ExplainCli, ShardsMergeIntoTheSingleRunsOutput) {
    fs::path in = test::scratch_dir("in"), root = test::scratch_dir("shards");
    torch::Tensor x = npy_to_tensor(read_npy(gradcam("input_3x64x80.npy")));
    for (int k = 0; k < 7; ++k)
        write_npy(in / ("img" + std::to_string(k) + ".npy"), tensor_to_npy(x.slice(0, k % 2, k % 2 + 1) * (1 + 0.1 * k)));
    const std::string job = "explain " + model_flags() + " --method hirescam,gradcam,smoothgrad --smooth-samples 3 " +
                            "--raw --batch 2 --input " + in.string();
    ASSERT_EQ(test::run_sightline(job + " --out " + (root / "single").string()).exit_code, 0);
    std::string shards;
    for (int i = 0; i < 3; ++i) {
        const fs::path dir = root / ("shard" + std::to_string(i));
        std::string extra;
        if (i == 1) {  // torchrun's environment instead of the flag
            setenv("RANK", "1", 1);
            setenv("WORLD_SIZE", "3", 1);
        } else {
            extra = " --shard " + std::to_string(i) + "/3";
        }
        auto r = test::run_sightline(job + extra + " --out " + dir.string());
        unsetenv("RANK");
        unsetenv("WORLD_SIZE");
        ASSERT_EQ(r.exit_code, 0) << r.err;
        if (i == 1) {
            EXPECT_NE(r.err.find("shard 1/3 from torchrun's RANK and WORLD_SIZE"), std::string::npos) << r.err;
        }
        shards += " " + dir.string();
    }
    EXPECT_EQ(summary_without_times(root / "shard0")["inputs"], 3);  // blocks 0 and 3: img0, img1, img6
    auto r = test::run_sightline("merge" + shards + " --out " + (root / "merged").string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("merged 3 shard(s): 7 input(s), 21 map(s)"), std::string::npos) << r.out;
    EXPECT_EQ(summary_without_times(root / "merged"), summary_without_times(root / "single"));
    int compared = 0;
    for (const auto& e : fs::recursive_directory_iterator(root / "single")) {
        if (!e.is_regular_file() || e.path().filename() == "summary.json") continue;
        const fs::path rel = fs::relative(e.path(), root / "single");
        ASSERT_TRUE(fs::exists(root / "merged" / rel)) << rel;
        if (rel.parent_path().filename() != "explain") {  // records hold the times too
            EXPECT_EQ(read_file(root / "merged" / rel), read_file(e.path())) << rel;
        }
        ++compared;
    }
    EXPECT_EQ(compared, 7 * 3 * 3 + 7);  // .npy, .raw.npy and .png per map; a record per input
    // A missing shard or one of another job is refused before anything is written.
    r = test::run_sightline("merge " + (root / "shard0").string() + " " + (root / "shard2").string() + " --out " +
                            (root / "partial").string());
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "sightline: error: merge: shard 1/3 is missing (give all 3 output folders)\n");
    EXPECT_FALSE(fs::exists(root / "partial"));
}

TEST(ExplainCli, WarnsOnceForMethodsWithoutGuarantee) {
    fs::path in = test::scratch_dir("in"), out = test::scratch_dir("out");
    write_gapnet_inputs(in);
    auto r = test::run_sightline("explain --model " + gradcam("flatnet.pt").string() +
                                 " --method gradcam,hirescam --input " + gradcam("input_3x48x64.npy").string() +
                                 " --out " + out.string());
    // The fixture file holds a batch of 2: not a single input.
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("expected [3,H,W] or [1,3,H,W]"), std::string::npos) << r.err;
    torch::Tensor x = npy_to_tensor(read_npy(gradcam("input_3x48x64.npy")));
    write_npy(in / "flat.npy", tensor_to_npy(x.slice(0, 0, 1)));
    r = test::run_sightline("explain --model " + gradcam("flatnet.pt").string() + " --method gradcam,hirescam --input " +
                            (in / "flat.npy").string() + " --out " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("warning: gradcam: does not hold"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("warning: hirescam"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("used layer 'features'"), std::string::npos) << r.err;  // chosen automatically
    // The flatten head makes contributions exact: Grad-CAM's mass where they are <= 0 is counted,
    // HiResCAM's is 0 by construction.
    const nlohmann::json summary = nlohmann::json::parse(read_file(out / "summary.json"));
    ASSERT_TRUE(summary.contains("mass_on_unused")) << summary.dump();
    EXPECT_EQ(summary["mass_on_unused"]["hirescam"]["mean"].get<double>(), 0.0);
    EXPECT_EQ(summary["mass_on_unused"]["gradcam"]["maps"].get<int>(), 1);
    EXPECT_NE(r.out.find("gradcam: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("% of its mass on locations whose exact contribution to the logit is <= 0"), std::string::npos)
        << r.out;
}

TEST(ExplainCli, GreyImageIsConvertedAndSaysSo) {
    fs::path in = test::scratch_dir("in"), out = test::scratch_dir("out");
    cv::Mat grey(64, 80, CV_8UC1);
    cv::randu(grey, 0, 255);
    cv::imwrite((in / "grey.png").string(), grey);
    auto r = test::run_sightline("explain " + model_flags() + " --input " + (in / "grey.png").string() +
                                 " --out " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("grey.png: grey image converted to RGB"), std::string::npos) << r.err;
}

struct BadCase {
    std::string name, args, message;
    int exit_code;
};

TEST(ExplainCli, BadInputGivesOneClearLineAndNoOutput) {
    fs::path in = test::scratch_dir("in");
    write_gapnet_inputs(in);
    fs::path out = test::scratch_dir("out");
    // A truncated model, a corrupt image, a NaN input, a model whose output is not [B, C],
    // a model whose activations are NaN.
    std::string model_bytes = read_file(gradcam("gapnet.pt"));
    write_file_atomic(in / "truncated.pt", model_bytes.substr(0, model_bytes.size() / 2));
    write_file_atomic(in / "corrupt.png", std::string("\x89PNG\r\n\x1a\n garbage"));
    torch::Tensor nan = torch::full({1, 3, 64, 80}, std::nan(""));
    write_npy(in / "nan.npy", tensor_to_npy(nan));
    torch::jit::Module spatial("Spatial");
    spatial.define("def features(self, x):\n    return torch.relu(x)\n"
                   "def head(self, a):\n    return a\n"
                   "def forward(self, x):\n    return self.head(self.features(x))\n");
    spatial.save((in / "spatial.pt").string());
    torch::jit::Module nan_model("NanNet");
    nan_model.define(
        "def features(self, x):\n    return x * float('nan')\n"
        "def head(self, a):\n    return torch.flatten(torch.adaptive_avg_pool2d(a, [1, 1]), 1)\n"
        "def forward(self, x):\n    return self.head(self.features(x))\n");
    nan_model.save((in / "nan_model.pt").string());
    fs::path img0 = in / "img0.npy";
    write_npy(in / "flat.npy", tensor_to_npy(npy_to_tensor(read_npy(gradcam("input_3x48x64.npy"))).slice(0, 0, 1)));
    const std::string o = " --out " + out.string();
    std::vector<BadCase> cases = {
        {"missing model", "explain --model /nonexistent/m.pt --input " + img0.string() + o, "m.pt: no such model file", 1},
        {"truncated model", "explain --model " + (in / "truncated.pt").string() + " --input " + img0.string() + o,
         "truncated.pt: cannot load TorchScript model", 1},
        {"unknown layer", "explain --model " + gradcam("gapnet.pt").string() + " --layer layer9 --input " + img0.string() + o,
         "no layer named 'layer9'; closest: ", 2},
        {"activation not 4-D", "explain --model " + gradcam("gapnet.pt").string() + " --layer fc --input " + img0.string() + o,
         "activation at layer 'fc' has shape 1x10; expected 4-D", 1},
        {"output not [B, classes]", "explain --model " + (in / "spatial.pt").string() + " --input " + img0.string() + o,
         "spatial.pt: model output has shape 1x3x64x80; expected [batch=1, classes]", 1},
        {"corrupt image", "explain " + model_flags() + " --input " + (in / "corrupt.png").string() + o,
         "corrupt.png: cannot decode image", 1},
        {"NaN input", "explain " + model_flags() + " --input " + (in / "nan.npy").string() + o,
         "nan.npy: input tensor contains NaN or Inf", 1},
        {"NaN activations", "explain --model " + (in / "nan_model.pt").string() + " --input " + img0.string() + o,
         "img0.npy: activations at layer 'features' contain NaN or Inf", 1},
        {"target out of range", "explain " + model_flags() + " --target 10 --input " + img0.string() + o,
         "--target 10: class index out of range; the model has 10 classes (0..9)", 2},
        {"input of the wrong size", "explain --model " + gradcam("flatnet.pt").string() + " --layer features --input " + img0.string() + o,
         "flatnet.pt: the model does not run on 64x80 input: the input size must match the model's", 1},
        {"unknown method", "explain " + model_flags() + " --method gradcan --input " + img0.string() + o,
         "unknown method 'gradcan'; choose from:", 2},
        {"cam on a flatten head", "explain --model " + gradcam("flatnet.pt").string() + " --method cam --input " +
         (in / "flat.npy").string() + o, "method 'cam' needs a global-average-pooling -> Linear head", 2},
        {"output not writable", "explain " + model_flags() + " --input " + img0.string() + " --out /proc/sightline",
         "/proc/sightline: cannot create output folder (/proc is not writable)", 1},
        {"labels count", "explain " + model_flags() + " --labels " + (in / "truncated.pt").string() + " --input " + img0.string() + o,
         "truncated.pt: has", 1},
    };
    for (const auto& c : cases) {
        auto r = test::run_sightline(c.args);
        EXPECT_EQ(r.exit_code, c.exit_code) << c.name << ": " << r.err;
        EXPECT_NE(r.err.find(c.message), std::string::npos) << c.name << ": " << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << c.name << ": " << r.err;
    }
    EXPECT_EQ(count_files(out, ".npy"), 0);
    EXPECT_EQ(count_files(out, ".png"), 0);
    EXPECT_EQ(count_files(out, ".tmp"), 0);
}

TEST(InspectCli, SaysWhichGuaranteeHolds) {
    auto gap = test::run_sightline("inspect --model " + gradcam("gapnet.pt").string() + " --layer features --size 64x80");
    ASSERT_EQ(gap.exit_code, 0) << gap.err;
    EXPECT_NE(gap.out.find("global average pooling then one linear layer"), std::string::npos) << gap.out;
    EXPECT_NE(gap.out.find("CAM, Grad-CAM and HiResCAM are equal up to scale"), std::string::npos);
    fs::path json_path = test::scratch_dir("inspect") / "flat.json";
    auto flat = test::run_sightline("inspect --model " + gradcam("flatnet.pt").string() + " --size 48x64 --json " +
                                    json_path.string());
    ASSERT_EQ(flat.exit_code, 0) << flat.err;
    EXPECT_NE(flat.out.find("linear in the activations, location-dependent weights"), std::string::npos) << flat.out;
    std::ifstream in(json_path);
    nlohmann::json j = nlohmann::json::parse(in);
    EXPECT_EQ(j["head"]["kind"], "linear");
    EXPECT_TRUE(j["methods"]["hirescam"]["holds"].get<bool>());
    EXPECT_FALSE(j["methods"]["gradcam"]["holds"].get<bool>());
    EXPECT_LT(j["head"]["completeness_residual"].get<double>(), 1e-5);
}

TEST(ListCli, ShowsEveryMethodWithItsGuarantee) {
    auto r = test::run_sightline("list");
    ASSERT_EQ(r.exit_code, 0);
    for (const char* key : {"cam ", "hirescam", "gradcam++", "scorecam", "guidedgradcam", "occlusion"})
        EXPECT_NE(r.out.find(key), std::string::npos) << key;
    EXPECT_NE(r.out.find("fails model-randomisation sanity checks"), std::string::npos);
}
