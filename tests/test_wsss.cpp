// Seeds of the weakly supervised pipeline: known answers for the background rules, confident
// regions and the multi-scale sum on hand-made CAM tensors; the class-weight fast path against
// the explain engine (slow twin); CAM files and their checks; the threshold sweep; the CRF'd
// pseudo-masks.
#include <cmath>
#include <functional>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "sightline/architectures.hpp"
#include "sightline/core.hpp"
#include "sightline/wsss.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

std::string expect_error(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected sightline::Error";
    return "";
}

// [n,1,W] CAMs from rows of values (one image row).
torch::Tensor row_cams(const std::vector<std::vector<float>>& rows) {
    std::vector<torch::Tensor> maps;
    for (const auto& r : rows) maps.push_back(torch::tensor(r, torch::kFloat32).view({1, -1}));
    return torch::stack(maps);
}

std::vector<int> mat_row(const cv::Mat& m) {
    std::vector<int> v;
    for (int c = 0; c < m.cols; ++c) v.push_back(m.at<uint8_t>(0, c));
    return v;
}

BackgroundRule thresh(double t) { return {BackgroundRule::Kind::kThreshold, t}; }
BackgroundRule power(double a) { return {BackgroundRule::Kind::kPower, a}; }

}  // namespace

TEST(WsssSeeds, ThresholdRuleTakesArgmaxOverBackgroundAndLabelledClasses) {
    // Two labelled classes (ids 2 and 5), three pixels; bg = 0.4.
    torch::Tensor cams = row_cams({{0.1f, 0.5f, 0.9f}, {0.3f, 0.6f, 0.2f}});
    EXPECT_EQ(mat_row(seed_labels(cams, {2, 5}, thresh(0.4))), (std::vector<int>{0, 5, 2}));
    EXPECT_EQ(mat_row(seed_indices(cams, thresh(0.4))), (std::vector<int>{0, 2, 1}));
    // A higher threshold keeps only the strongest pixel.
    EXPECT_EQ(mat_row(seed_labels(cams, {2, 5}, thresh(0.7))), (std::vector<int>{0, 0, 2}));
}

TEST(WsssSeeds, TiesGoToTheBackgroundThenToTheLowerKey) {
    torch::Tensor cams = row_cams({{0.25f, 0.5f}, {0.25f, 0.5f}});
    EXPECT_EQ(mat_row(seed_labels(cams, {1, 3}, thresh(0.25))), (std::vector<int>{0, 1}));
}

TEST(WsssSeeds, PowerRuleBackgroundIsOneMinusMaxToTheAlpha) {
    torch::Tensor cams = row_cams({{0.0f, 0.5f, 1.0f, 0.2f}, {0.1f, 0.2f, 0.3f, 0.6f}});
    torch::Tensor bg = background_score(cams, power(2.0));
    // max over classes: 0.1, 0.5, 1.0, 0.6 -> (1 - max)^2 = 0.81, 0.25, 0, 0.16.
    std::vector<float> expected{0.81f, 0.25f, 0.0f, 0.16f};
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(bg[0][i].item<float>(), expected[i], 1e-6) << i;
    EXPECT_EQ(mat_row(seed_labels(cams, {4, 6}, power(2.0))), (std::vector<int>{0, 4, 4, 6}));
    // A small alpha makes the background large: (0.5)^0.5 = 0.707 beats 0.5 and (0.4)^0.5 = 0.632
    // beats 0.6.
    EXPECT_EQ(mat_row(seed_labels(cams, {4, 6}, power(0.5))), (std::vector<int>{0, 0, 4, 0}));
}

TEST(WsssSeeds, ImageWithoutLabelsIsAllBackground) {
    torch::Tensor none = torch::zeros({0, 2, 3});
    EXPECT_EQ(cv::countNonZero(seed_labels(none, {}, thresh(0.15))), 0);
    EXPECT_EQ(cv::countNonZero(seed_labels(none, {}, power(4))), 0);
}

TEST(WsssSeeds, ConfidentRegionsAre255BetweenTheTwoThresholds) {
    // max CAM 0.02 (sure background), 0.2 (between 0.05 and 0.3: uncertain), 0.5 (sure object).
    torch::Tensor cams = row_cams({{0.02f, 0.2f, 0.5f, 0.04f}, {0.01f, 0.1f, 0.1f, 0.35f}});
    SeedOptions o;
    o.confident_fg = 0.30;
    o.confident_bg = 0.05;
    EXPECT_EQ(mat_row(make_seeds(cams, {3, 4}, o)), (std::vector<int>{0, 255, 3, 4}));
    // The same by hand from the two threshold seeds (IRN's cam_to_ir_label).
    cv::Mat fg = seed_labels(cams, {3, 4}, thresh(0.30)), bg = seed_labels(cams, {3, 4}, thresh(0.05));
    EXPECT_EQ(mat_row(fg), (std::vector<int>{0, 0, 3, 4}));
    EXPECT_EQ(mat_row(bg), (std::vector<int>{0, 3, 3, 4}));
    EXPECT_EQ(mat_row(confident_labels(fg, bg)), (std::vector<int>{0, 255, 3, 4}));
}

TEST(WsssSeeds, BackgroundRuleParsing) {
    EXPECT_EQ(BackgroundRule::parse("thresh:0.25").kind, BackgroundRule::Kind::kThreshold);
    EXPECT_DOUBLE_EQ(BackgroundRule::parse("thresh:0.25").value, 0.25);
    EXPECT_EQ(BackgroundRule::parse("power:16").kind, BackgroundRule::Kind::kPower);
    EXPECT_EQ(BackgroundRule::parse("power:16").to_string(), "power:16");
    for (const char* bad : {"0.2", "thresh:1.5", "power:0", "power:-1", "thresh:", "gauss:2", "thresh:0.2x"})
        EXPECT_EQ(expect_error([&] { BackgroundRule::parse(bad); }),
                  fmt::format("--bg: expected thresh:T (0 < T < 1) or power:ALPHA (ALPHA > 0), got '{}'", bad));
    SeedOptions o;
    o.confident_fg = 0.05;
    o.confident_bg = 0.30;
    EXPECT_EQ(expect_error([&] { validate(o); }), "--confident: expected FG,BG with 0 < BG < FG < 1, got 0.05,0.3");
}

TEST(WsssCams, MultiScaleSumEqualsTheHandComputation) {
    // Scale 1 at full size (2x2) with its flipped pass; scale 2 a constant 1x1 map.
    torch::Tensor s1 = torch::tensor({1.f, -2.f, 3.f, 4.f, 5.f, 6.f, -7.f, 8.f}).view({2, 1, 2, 2});
    torch::Tensor s2 = torch::full({1, 1, 1, 1}, 2.f);
    torch::Tensor sum = sum_class_maps({s1, s2}, 2, 2);
    // ReLU: [[1,0],[3,4]] + un-flipped [[6,5],[8,0]] + 2 everywhere.
    EXPECT_TRUE(torch::equal(sum, torch::tensor({9.f, 7.f, 13.f, 6.f}).view({1, 2, 2})));
    torch::Tensor cams = normalise_cams(sum, {1});
    EXPECT_NEAR(cams[0][1][0].item<float>(), 13.f / (13.f + 1e-5f), 1e-7);
    EXPECT_NEAR(cams[0][0][0].item<float>(), 9.f / (13.f + 1e-5f), 1e-7);
}

TEST(WsssCams, UpsamplingUsesHalfPixelCentres) {
    // [0, 4] on 1x2 -> 1x4: source x = (x + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped.
    torch::Tensor raw = torch::tensor({0.f, 4.f}).view({1, 1, 1, 2});
    torch::Tensor sum = sum_class_maps({raw}, 1, 4);
    EXPECT_TRUE(torch::allclose(sum.flatten(), torch::tensor({0.f, 1.f, 3.f, 4.f})));
}

TEST(WsssCams, OnlyLabelledClassesAreKeptEachByItsOwnMax) {
    torch::Tensor sum = torch::stack({torch::full({2, 2}, 1.f), torch::full({2, 2}, 5.f), torch::arange(4.f).view({2, 2})});
    torch::Tensor cams = normalise_cams(sum, {2, 3});
    ASSERT_EQ(cams.sizes(), (std::vector<int64_t>{2, 2, 2}));
    EXPECT_NEAR(cams[0].max().item<float>(), 5.f / (5.f + 1e-5f), 1e-7);
    EXPECT_NEAR(cams[1][1][1].item<float>(), 3.f / (3.f + 1e-5f), 1e-7);
    EXPECT_NEAR(cams[1][0][1].item<float>(), 1.f / (3.f + 1e-5f), 1e-7);
    EXPECT_EQ(expect_error([&] { normalise_cams(sum, {4}); }),
              "CAMs: label 4 is not an object class of the model (1..3)");
}

namespace {

// A small built-in classifier saved as TorchScript with its model card attributes.
fs::path save_model(const std::string& arch, const fs::path& dir, int64_t classes = 3) {
    ArchOptions a;
    a.num_classes = classes;
    a.input_size = 32;
    a.width = 4;
    a.seed = 3;
    torch::jit::Module m = build_architecture(arch, a);
    ModelCard card{arch, parse_head_design(arch == "resnet_mlp" ? "mlp" : "gap_linear"), 32, 8,
                   {"a", "b", "c"}, {0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}};
    attach_model_card(m, card);
    m.eval();
    fs::path path = dir / (arch + ".pt");
    m.save(path.string());
    return path;
}

cv::Mat random_image(int h, int w, int seed) {
    cv::Mat img(h, w, CV_8UC3);
    cv::RNG rng(seed);
    rng.fill(img, cv::RNG::UNIFORM, 0, 256);
    return img;
}

}  // namespace

// The slow twin: CAMs from fc.weight equal the explain engine's 'cam' (head gradients).
TEST(WsssCams, WeightFastPathEqualsTheExplainEngine) {
    fs::path dir = test::scratch_dir("model");
    fs::path path = save_model("resnet_gap", dir);
    CamModel fast = CamModel::load(path);
    CamOptions slow_options;
    slow_options.use_explainer = true;
    CamModel slow = CamModel::load(path, slow_options);
    EXPECT_FALSE(fast.uses_explainer());
    EXPECT_TRUE(slow.uses_explainer());
    EXPECT_EQ(fast.num_classes(), 3);
    EXPECT_EQ(slow.num_classes(), 3);
    torch::Tensor x = torch::randn({2, 3, 32, 32});
    torch::Tensor a = fast.class_maps(x), b = slow.class_maps(x);
    ASSERT_EQ(a.sizes(), b.sizes());
    EXPECT_LT((a - b).abs().max().item<double>(), 1e-4 * std::max(1.0, a.abs().max().item<double>()));
    cv::Mat img = random_image(40, 36, 1);
    CamOptions o;
    torch::Tensor ca = fast.image_cams(img, {1, 3}, o), cb = slow.image_cams(img, {1, 3}, o);
    ASSERT_EQ(ca.sizes(), (std::vector<int64_t>{2, 40, 36}));
    EXPECT_LT((ca - cb).abs().max().item<double>(), 1e-4);
    EXPECT_GE(ca.min().item<float>(), 0.f);
    EXPECT_LT(ca.max().item<float>(), 1.f);
}

// On a GAP -> Linear head the class map averages to the logit minus the bias (no bias in the map).
TEST(WsssCams, ClassMapsAreBiasFree) {
    fs::path path = save_model("resnet_gap", test::scratch_dir("model"));
    CamModel model = CamModel::load(path);
    torch::jit::Module m = torch::jit::load(path.string());
    torch::Tensor x = torch::randn({1, 3, 32, 32});
    torch::Tensor logits = m.forward({x}).toTensor();
    torch::Tensor bias = m.attr("fc").toModule().attr("bias").toTensor();
    torch::Tensor mean = model.class_maps(x).mean({2, 3});
    EXPECT_TRUE(torch::allclose(mean + bias, logits, 1e-4, 1e-5));
}

TEST(WsssCams, ClassifierWithoutClassMapsIsRejected) {
    fs::path path = save_model("resnet_mlp", test::scratch_dir("model"));
    std::string e = expect_error([&] { CamModel::load(path); });
    EXPECT_EQ(e.rfind(path.string() + ": seeds need class maps, i.e. a global-average-pooling -> Linear head; this "
                                      "model's head is ", 0), 0u) << e;
}

TEST(WsssFiles, CamFilesRoundTripAndEveryCheckNamesTheFile) {
    fs::path dir = test::scratch_dir("cams");
    torch::Tensor cams = torch::rand({2, 4, 5});
    write_cam_file(dir / "a.npy", cams, {1, 3}, 3);
    NpyArray raw = read_npy(dir / "a.npy");
    EXPECT_EQ(raw.shape, (std::vector<int64_t>{3, 4, 5}));
    EXPECT_TRUE(torch::equal(read_cam_file(dir / "a.npy", {1, 3}, 3, 4, 5), cams));

    std::string f = (dir / "a.npy").string();
    EXPECT_EQ(expect_error([&] { read_cam_file(dir / "a.npy", {1, 3}, 4, 4, 5); }),
              f + ": expected CAMs of shape [4,H,W] (one map per object class), got [3,4,5]");
    EXPECT_EQ(expect_error([&] { read_cam_file(dir / "a.npy", {1, 3}, 3, 4, 6); }),
              f + ": CAMs are 4 x 5 (H x W) but the image is 4 x 6");
    EXPECT_EQ(expect_error([&] { read_cam_file(dir / "a.npy", {1}, 3, 4, 5); }),
              f + ": non-zero map for class 3, which the image is not labelled with (labels: 1)");
    std::vector<float> v(3 * 4 * 5, 0.f);
    v[7] = std::nanf("");
    write_npy_f32(dir / "nan.npy", {3, 4, 5}, v.data());
    EXPECT_EQ(expect_error([&] { read_cam_file(dir / "nan.npy", {1}, 3, 4, 5); }),
              (dir / "nan.npy").string() + ": CAM value nan at class 1 pixel (1, 2) is not in [0, 1]");
}

TEST(WsssSweep, ThresholdsParseAndTheBestMatchesTheTruth) {
    std::vector<double> t = default_sweep_thresholds();
    ASSERT_EQ(t.size(), 16u);
    EXPECT_DOUBLE_EQ(t.front(), 0.05);
    EXPECT_DOUBLE_EQ(t.back(), 0.8);
    EXPECT_EQ(parse_thresholds("0.1,0.3"), (std::vector<double>{0.1, 0.3}));
    EXPECT_EQ(expect_error([&] { parse_thresholds("0.1:0.5"); }),
              "--thresholds: expected LO:HI:STEP or a comma list of numbers in (0, 1), got '0.1:0.5'");

    // Object (class 2) pixels have CAM 0.5 and 0.45, background pixels 0.3 and 0.1: any
    // threshold in [0.3, 0.45) separates them exactly.
    torch::Tensor cams = row_cams({{0.5f, 0.45f, 0.3f, 0.1f}});
    cv::Mat gt = (cv::Mat_<uint8_t>(1, 4) << 2, 2, 0, 0);
    ThresholdSweep sweep(3, parse_thresholds("0.2,0.35,0.48"));
    sweep.add(cams, {2}, gt);
    SweepResult r = sweep_result(sweep);
    EXPECT_EQ(r.best, 1u);
    EXPECT_DOUBLE_EQ(r.best_threshold(), 0.35);
    EXPECT_DOUBLE_EQ(r.best_miou(), 1.0);  // classes 0 and 2; class 1 absent (NaN, not counted)
    // t = 0.2: background IoU 1/2 (one of two bg pixels kept), class 2 IoU 2/3.
    EXPECT_NEAR(r.metrics[0].miou, (0.5 + 2.0 / 3.0) / 2, 1e-12);
    EXPECT_NE(sweep_table(r).find("0.35   1.0000  1.0000   <- best"), std::string::npos) << sweep_table(r);
}

namespace {

// Left half blue, right half red; the object (class 1) is the right half. The CAM covers the
// object's inner part strongly, its border weakly and spills into the background near it.
struct TwoRegionCase {
    cv::Mat image;
    torch::Tensor cams;
    cv::Mat gt;
};

TwoRegionCase two_regions(int h, int w) {
    TwoRegionCase c;
    c.image.create(h, w, CV_8UC3);
    c.gt.create(h, w, CV_8UC1);
    c.cams = torch::zeros({1, h, w});
    auto acc = c.cams.accessor<float, 3>();
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            bool object = x >= w / 2;
            c.image.at<cv::Vec3b>(y, x) = object ? cv::Vec3b(210, 40, 30) : cv::Vec3b(30, 60, 200);
            c.gt.at<uint8_t>(y, x) = object ? 1 : 0;
            // A peak near the object's inner edge, decaying both ways: blurry, not aligned.
            double d = std::abs(x - (w / 2 + w / 8));
            acc[0][y][x] = static_cast<float>(std::exp(-d * d / (2.0 * (w / 6.0) * (w / 6.0))));
        }
    return c;
}

double iou_class1(const cv::Mat& pred, const cv::Mat& gt) {
    int inter = cv::countNonZero((pred == 1) & (gt == 1)), uni = cv::countNonZero((pred == 1) | (gt == 1));
    return double(inter) / double(uni);
}

}  // namespace

TEST(WsssPseudo, WithoutCrfThePseudoMaskIsTheSeed) {
    TwoRegionCase c = two_regions(20, 40);
    PseudoOptions o;
    o.crf = false;
    o.seeds.background = thresh(0.3);
    cv::Mat mask = make_pseudo_mask(c.image, c.cams, {1}, o, nullptr);
    EXPECT_EQ(cv::countNonZero(mask != seed_labels(c.cams, {1}, thresh(0.3))), 0);
}

// The CRF snaps the blurry seed to the colour edge: both unaries beat the raw seed.
TEST(WsssPseudo, CrfAlignsTheSeedWithTheColourEdge) {
    TwoRegionCase c = two_regions(24, 48);
    PseudoOptions o;
    o.seeds.background = thresh(0.3);
    o.crf_options.bilateral_sxy = 20.f;
    o.crf_options.threads = 1;
    cv::Mat seed = seed_labels(c.cams, {1}, o.seeds.background);
    double before = iou_class1(seed, c.gt);
    ASSERT_LT(before, 0.9);
    for (const char* unary : {"labels", "probs"}) {
        o.unary = unary;
        DenseCrf crf(o.crf_options);
        cv::Mat mask = make_pseudo_mask(c.image, c.cams, {1}, o, &crf);
        EXPECT_GT(iou_class1(mask, c.gt), before + 0.05) << unary;
    }
    // Minimum confidence: after 0 iterations Q is the label unary's own probability, 0.7 on
    // every pixel, so 0.75 makes every pixel uncertain and 0.65 none.
    o.unary = "labels";
    o.crf_options.iterations = 0;
    DenseCrf crf(o.crf_options);
    o.min_confidence = 0.75;
    EXPECT_EQ(cv::countNonZero(make_pseudo_mask(c.image, c.cams, {1}, o, &crf) == 255), 24 * 48);
    o.min_confidence = 0.65;
    EXPECT_EQ(cv::countNonZero(make_pseudo_mask(c.image, c.cams, {1}, o, &crf) == 255), 0);
}

TEST(WsssPseudo, BadOptionsAndSizesAreOneLine) {
    TwoRegionCase c = two_regions(8, 8);
    PseudoOptions o;
    o.crf_options.bilateral_srgb = 0.f;
    EXPECT_NE(expect_error([&] { validate(o); }).find("--bilateral"), std::string::npos);
    PseudoOptions p;
    p.crf = false;
    EXPECT_EQ(expect_error([&] { make_pseudo_mask(c.image, torch::zeros({1, 8, 9}), {1}, p, nullptr); }),
              "pseudo-mask: the image is 8 x 8 (H x W) but the CAMs are [1, 8, 9]");
    p.unary = "softmax";
    EXPECT_EQ(expect_error([&] { validate(p); }), "--unary: expected labels or probs, got 'softmax'");
}
