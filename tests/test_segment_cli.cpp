// `sightline train segment` and `sightline segment` through the binary: a tiny run end to end,
// the saved model in Python (torch.jit.load and the eager U-Net of tools/bench_unet_python.py),
// and bad input (one line naming the file, non-zero exit, nothing written).
#include <sstream>

#include <gtest/gtest.h>
#include <torch/script.h>

#include "sightline/segment.hpp"
#include "test_segment_toy.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

bool python_has_torch() { return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0; }

// A VOC root with train (12) and val (4) squares.
fs::path squares_root(const std::string& name) {
    fs::path root = test::scratch_dir(name);
    test::write_voc(root, "train", test::SquaresDataset(12));
    test::write_voc(root, "val", test::SquaresDataset(4, 32, 40));
    return root;
}

const char* kTiny = " --base 4 --depth 2 --epochs 1 --batch 4 --workers 1";

}  // namespace

TEST(SegmentCli, TrainSegmentEvalEndToEndAndTheModelRunsInPython) {
    fs::path root = squares_root("cli_seg");
    fs::path run = root / "run";
    auto t = test::run_sightline("train segment --data " + root.string() + " --out " + run.string() + kTiny);
    ASSERT_EQ(t.exit_code, 0) << t.err;
    EXPECT_NE(t.out.find("unet ("), std::string::npos) << t.out;
    EXPECT_NE(t.out.find("epoch 1/1"), std::string::npos) << t.out;
    EXPECT_NE(t.out.find("val mIoU"), std::string::npos) << t.out;
    EXPECT_TRUE(t.err.empty()) << t.err;  // piped: no progress bar
    // Inference on the val images: palette labels, overlays, probabilities.
    fs::path pred = root / "pred";
    auto s = test::run_sightline("segment --model " + (run / "model.pt").string() + " --input " +
                                 (root / "JPEGImages").string() + " --out " + pred.string() + " --probs --flip --tile 16");
    ASSERT_EQ(s.exit_code, 0) << s.err;
    EXPECT_TRUE(fs::exists(pred / "sq_40.png"));
    EXPECT_TRUE(fs::exists(pred / "sq_40_overlay.png"));
    NpyArray probs = read_npy(pred / "sq_40.npy");
    EXPECT_EQ(probs.shape, (std::vector<int64_t>{3, 32, 32}));
    EXPECT_EQ(read_index_png(pred / "sq_40.png").size(), cv::Size(32, 32));
    auto e = test::run_sightline("eval --pred " + pred.string() + " --gt " + root.string() + " --split val");
    EXPECT_EQ(e.exit_code, 0) << e.err;

    ASSERT_TRUE(python_has_torch()) << "/usr/bin/python3 has no torch (Debian's python3-torch)";
    // C++ output of the saved model on a fixed input, then the same in Python.
    torch::jit::Module m = torch::jit::load((run / "model.pt").string());
    torch::Tensor x = torch::linspace(-1, 1, 2 * 3 * 16 * 16).reshape({2, 3, 16, 16});
    const double want = m.forward({x}).toTensor().sum().item<double>();
    fs::path script = root / "check.py", out = root / "py.txt";
    write_file_atomic(script, "import torch\nm = torch.jit.load('" + (run / "model.pt").string() +
                                  "')\nx = torch.linspace(-1, 1, 2*3*16*16).reshape(2, 3, 16, 16)\n"
                                  "y = m(x)\nprint(tuple(y.shape), m.training, m.sightline_task, "
                                  "list(m.sightline_class_names), float(y.sum()))\n");
    ASSERT_EQ(std::system(("/usr/bin/python3 " + script.string() + " > " + out.string() + " 2>&1").c_str()), 0)
        << read_file(out);
    const std::string line = first_line(read_file(out));
    const std::string prefix = "(2, 3, 16, 16) False segment ['background', 'red', 'green'] ";
    ASSERT_EQ(line.rfind(prefix, 0), 0u) << line;
    EXPECT_NEAR(std::stod(line.substr(prefix.size())), want, 1e-4 * std::max(1.0, std::abs(want)));
    // The benchmark's eager Python U-Net is the same network: same weights, same outputs.
    const std::string check = "/usr/bin/python3 " + std::string(SIGHTLINE_SOURCE_DIR) +
                              "/tools/bench_unet_python.py --check " + (run / "model.pt").string() + " > " +
                              out.string() + " 2>&1";
    ASSERT_EQ(std::system(check.c_str()), 0) << read_file(out);
    const std::string json = read_file(out);
    const auto at = json.find("\"max_abs_diff\": ");
    ASSERT_NE(at, std::string::npos) << json;
    EXPECT_LT(std::stod(json.substr(at + 16)), 1e-4) << json;
}

TEST(SegmentCli, MaskOfAnotherSizeIsOneLineNamingTheFileAndNothingIsWritten) {
    fs::path root = squares_root("cli_size");
    const fs::path mask = root / "SegmentationClass" / "sq_5.png";
    write_palette_png(mask, cv::Mat(30, 32, CV_8UC1, cv::Scalar(0)));
    auto r = test::run_sightline("train segment --data " + root.string() + " --out " + (root / "run").string() + kTiny);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "sightline: error: " + mask.string() + ": mask is 32x30 but its image " + (root / "JPEGImages" / "sq_5.png").string() +
                         " is 32x32\n");
    EXPECT_FALSE(fs::exists(root / "run"));
}

TEST(SegmentCli, LabelThatIsNoClassNorIgnoreIsOneLineNamingTheFile) {
    fs::path root = squares_root("cli_label");
    const fs::path mask = root / "SegmentationClass" / "sq_41.png";  // a val mask
    cv::Mat m(32, 32, CV_8UC1, cv::Scalar(0));
    m.at<uint8_t>(3, 3) = 7;
    write_palette_png(mask, m);
    auto r = test::run_sightline("train segment --data " + root.string() + " --out " + (root / "run").string() + kTiny);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "sightline: error: " + mask.string() + ": label id 7 outside the class list (0..2 from " +
                         (root / "classes.txt").string() + "; 255 = ignore)\n");
    EXPECT_FALSE(fs::exists(root / "run"));
    // The same through --masks (pseudo-masks).
    fs::path pseudo = root / "pseudo";
    fs::create_directories(pseudo);
    for (int i = 0; i < 12; ++i) write_palette_png(pseudo / ("sq_" + std::to_string(i) + ".png"), cv::Mat(32, 32, CV_8UC1, cv::Scalar(i == 4 ? 9 : 255)));
    auto p = test::run_sightline("train segment --data " + root.string() + " --masks " + pseudo.string() +
                                 " --val none --out " + (root / "run").string() + kTiny);
    EXPECT_EQ(p.exit_code, 1);
    EXPECT_EQ(p.err, "sightline: error: " + (pseudo / "sq_4.png").string() + ": label 9 is not a class (0..2) nor 255 (ignore)\n");
}

TEST(SegmentCli, ModelOutputChannelsOtherThanTheClassCountIsOneLine) {
    fs::path dir = test::scratch_dir("cli_channels");
    // A foreign TorchScript model with 4 output channels.
    torch::jit::Module m("__torch__.Foreign");
    m.register_parameter("weight", torch::ones({4, 3, 1, 1}), false);
    m.define("def forward(self, x):\n    return torch.conv2d(x, self.weight)\n");
    m.save((dir / "foreign.pt").string());
    cv::Mat img(16, 16, CV_8UC3, cv::Scalar(1, 2, 3));
    write_image_rgb(dir / "a.png", img);
    auto r = test::run_sightline("segment --model " + (dir / "foreign.pt").string() + " --classes 3 --input " +
                                 (dir / "a.png").string() + " --out " + (dir / "out").string());
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "sightline: error: " + (dir / "foreign.pt").string() + ": the model outputs 4 channels for " + (dir / "a.png").string() +
                         ", expected 3 (one per class: background, class_1, class_2)\n");
    EXPECT_FALSE(fs::exists(dir / "out" / "a.png"));
    // Our model's card against --classes.
    SegArchOptions o;
    o.num_classes = 3;
    o.base = 4;
    o.depth = 1;
    torch::jit::Module ours = build_segmentation_model("unet", o);
    attach_segment_model_card(ours, {"unet", 16, 2, {"background", "red", "green"}});
    ours.save((dir / "ours.pt").string());
    auto c = test::run_sightline("segment --model " + (dir / "ours.pt").string() + " --classes 5 --input " +
                                 (dir / "a.png").string() + " --out " + (dir / "out").string());
    EXPECT_EQ(c.exit_code, 1);
    EXPECT_EQ(c.err, "sightline: error: " + (dir / "ours.pt").string() + ": the model has 3 classes (background, red, green), --classes 5 "
                                                  "gives 5\n");
}
