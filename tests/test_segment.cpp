// Segmentation library: architectures, loss, inference paths against their slow twins,
// training (learns, resumes exactly, keeps the best), pseudo-mask override and its errors.
#include <cmath>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "segment/segment_detail.hpp"
#include "sightline/segment.hpp"
#include "test_segment_toy.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

int64_t count_parameters(const torch::jit::Module& m) {
    int64_t n = 0;
    for (const auto& p : m.parameters(true)) n += p.numel();
    return n;
}

torch::Tensor run(torch::jit::Module& m, const torch::Tensor& x) { return m.forward({x}).toTensor(); }

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

// A pointwise "segmenter" (1x1 conv, no context): every inference path must give exactly the
// per-pixel answer, whatever the tiling, flipping or padding.
torch::jit::Module pointwise_model(int64_t classes) {
    torch::jit::Module m("__torch__.PointwiseSeg");
    m.register_parameter("weight", torch::randn({classes, 3, 1, 1}, torch::Generator(at::detail::createCPUGenerator(5))),
                         false);
    m.register_parameter("bias", torch::linspace(-0.5, 0.5, classes), false);
    m.define(R"py(
def forward(self, x):
    return torch.conv2d(x, self.weight, self.bias)
)py");
    return m;
}

cv::Mat random_image(int h, int w, int seed) {
    cv::Mat img(h, w, CV_8UC3);
    cv::RNG rng(static_cast<uint64_t>(seed));
    rng.fill(img, cv::RNG::UNIFORM, 0, 256);
    return img;
}

SegmentTrainOptions tiny_options(const fs::path& out) {
    SegmentTrainOptions o;
    o.data = "squares";
    o.out = out;
    o.base = 8;
    o.depth = 2;
    o.epochs = 4;
    o.batch = 4;
    o.lr = 0.01;
    o.workers = 2;
    return o;
}

}  // namespace

TEST(SegmentArch, UnetParameterCountMatchesThePythonUNet) {
    // tools/bench_unet_python.py's UNet (milesial's layout: 31.04 M at base 64, notes/seg.md 1.2).
    SegArchOptions o;
    o.num_classes = 2;
    o.base = 64;
    o.depth = 4;
    EXPECT_EQ(count_parameters(build_segmentation_model("unet", o)), 31037698);
    o.num_classes = 7;
    o.base = 16;
    EXPECT_EQ(count_parameters(build_segmentation_model("unet", o)), 1942679);
}

TEST(SegmentArch, OutputSizeEqualsInputSizeForEveryArchitecture) {
    for (const SegArchInfo& arch : segmentation_architectures())
        for (const char* up : {"transposed", "bilinear"}) {
            SegArchOptions o;
            o.num_classes = 5;
            o.base = 4;
            o.depth = 3;
            o.upsample = up;
            torch::jit::Module m = build_segmentation_model(arch.name, o);
            const int64_t k = arch.size_multiple(o);
            torch::Tensor y = run(m, torch::randn({2, 3, 2 * k, 3 * k}));
            EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 5, 2 * k, 3 * k})) << arch.name << " " << up;
        }
}

TEST(SegmentArch, SameSeedSameWeightsOtherSeedOthers) {
    SegArchOptions o;
    o.num_classes = 3;
    o.base = 4;
    o.depth = 2;
    torch::Tensor x = torch::randn({1, 3, 16, 16});
    auto a = build_segmentation_model("unet", o), b = build_segmentation_model("unet", o);
    EXPECT_TRUE(torch::equal(run(a, x), run(b, x)));
    o.seed = 2;
    auto c = build_segmentation_model("unet", o);
    EXPECT_FALSE(torch::equal(run(a, x), run(c, x)));
}

TEST(SegmentArch, BadOptionsNameTheFlag) {
    SegArchOptions o;
    o.num_classes = 3;
    o.upsample = "cubic";
    EXPECT_EQ(error_of([&] { build_segmentation_model("unet", o); }),
              "unknown --upsample 'cubic' (choices: transposed, bilinear)");
    EXPECT_EQ(error_of([&] { build_segmentation_model("segnet", o); }),
              "unknown segmentation architecture 'segnet' (choices: unet, resnet_unet)");
    o.upsample = "transposed";
    o.num_classes = 1;
    EXPECT_EQ(error_of([&] { build_segmentation_model("unet", o); }),
              "unet: need 2..255 classes (background included), got 1");
}

TEST(SegmentLoss, CrossEntropyIgnoresLabel255AsAPlainLoopDoes) {
    torch::manual_seed(3);
    torch::Tensor logits = torch::randn({2, 3, 4, 5});
    torch::Tensor target = torch::randint(0, 3, {2, 4, 5}, torch::kLong);
    target.index_put_({0, 1}, 255);
    target.index_put_({1, 2, 3}, 255);
    const std::vector<double> w = {1.0, 2.0, 0.5};
    double sum = 0, wsum = 0, plain = 0;
    int64_t n = 0;
    auto lp = torch::log_softmax(logits, 1);
    for (int b = 0; b < 2; ++b)
        for (int y = 0; y < 4; ++y)
            for (int x = 0; x < 5; ++x) {
                const int64_t t = target[b][y][x].item<int64_t>();
                if (t == 255) continue;
                const double l = -lp[b][t][y][x].item<double>();
                plain += l, ++n;
                sum += w[t] * l, wsum += w[t];
            }
    EXPECT_NEAR(segmentation_loss(logits, target).item<double>(), plain / n, 1e-5);
    EXPECT_NEAR(segmentation_loss(logits, target, {0.0, w}).item<double>(), sum / wsum, 1e-5);
    // All ignored: zero, and still differentiable.
    torch::Tensor l = logits.clone().requires_grad_(true);
    torch::Tensor zero = segmentation_loss(l, torch::full({2, 4, 5}, 255, torch::kLong));
    zero.backward();
    EXPECT_EQ(zero.item<double>(), 0.0);
}

TEST(SegmentLoss, DiceIsZeroForAPerfectPredictionAndAsALoopOtherwise) {
    torch::Tensor target = torch::tensor({0, 1, 1, 255, 0, 1}, torch::kLong).reshape({1, 2, 3});
    torch::Tensor perfect = torch::one_hot(torch::where(target == 255, torch::zeros_like(target), target), 3)
                                .permute({0, 3, 1, 2}).to(torch::kFloat) * 100;
    const double ce = segmentation_loss(perfect, target).item<double>();
    EXPECT_NEAR(segmentation_loss(perfect, target, {1.0, {}}).item<double>(), ce, 1e-5);
    // A random prediction: soft Dice by hand over labelled pixels, classes 0 and 1 present.
    torch::manual_seed(1);
    torch::Tensor logits = torch::randn({1, 3, 2, 3});
    torch::Tensor p = torch::softmax(logits, 1);
    double dice_loss = 0;
    for (int c = 0; c < 2; ++c) {
        double inter = 0, card = 0;
        for (int i = 0; i < 6; ++i) {
            const int64_t t = target.view(-1)[i].item<int64_t>();
            if (t == 255) continue;
            const double pc = p[0][c].view(-1)[i].item<double>(), g = t == c;
            inter += pc * g, card += pc + g;
        }
        dice_loss += 1 - 2 * inter / card;
    }
    EXPECT_NEAR(segmentation_loss(logits, target, {0.5, {}}).item<double>(),
                segmentation_loss(logits, target).item<double>() + 0.5 * dice_loss / 2, 1e-5);
}

TEST(SegmentInference, SlidingWindowFlipScalePaddingAgreeWithThePerPixelAnswer) {
    torch::jit::Module m = pointwise_model(4);
    SegmentModelCard card{"pointwise", 0, 8, {"background", "a", "b", "c"}, {0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}};
    Segmenter seg(m, card, "pointwise.pt");
    const cv::Mat img = random_image(37, 51, 1);  // not a multiple of 8: padding is cropped off
    // Slow twin: softmax of the 1x1 conv per pixel.
    torch::Tensor x = sightline::detail::normalise_image(img, card.mean, card.std).unsqueeze(0);
    torch::Tensor want = torch::softmax(torch::conv2d(x, m.attr("weight").toTensor(), m.attr("bias").toTensor()), 1);
    SegmentOptions whole;
    std::vector<float> p = seg.probabilities(img, whole);
    ASSERT_EQ(p.size(), static_cast<std::size_t>(4 * 37 * 51));
    torch::Tensor got = torch::from_blob(p.data(), {1, 4, 37, 51}).clone();
    EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-6));
    SegmentOptions slide = whole;
    slide.tile = 16;
    slide.overlap = 0.5;
    slide.flip = true;
    std::vector<float> q = seg.probabilities(img, slide);
    EXPECT_TRUE(torch::allclose(torch::from_blob(q.data(), {1, 4, 37, 51}), want, 1e-5, 1e-6));
    // Scale 1 twice = scale 1 once; labels are the argmax.
    SegmentOptions twice = whole;
    twice.scales = {1.0, 1.0};
    std::vector<float> r = seg.probabilities(img, twice);
    EXPECT_TRUE(torch::allclose(torch::from_blob(r.data(), {1, 4, 37, 51}), want, 1e-5, 1e-6));
    cv::Mat labels = seg.segment(img, whole);
    cv::Mat expected = sightline::detail::argmax_labels(want[0]);
    EXPECT_EQ(cv::countNonZero(labels != expected), 0);
}

TEST(SegmentInference, SlidingWindowCoversEveryPixelOfARealUNet) {
    SegArchOptions o;
    o.num_classes = 3;
    o.base = 4;
    o.depth = 2;
    torch::jit::Module m = build_segmentation_model("unet", o);
    Segmenter seg(m, {"unet", 16, 4, {"background", "a", "b"}}, "unet.pt");
    const cv::Mat img = random_image(30, 45, 2);
    SegmentOptions slide;
    slide.tile = 16;
    std::vector<float> p = seg.probabilities(img, slide);
    torch::Tensor t = torch::from_blob(p.data(), {3, 30, 45});
    EXPECT_TRUE(torch::allclose(t.sum(0), torch::ones({30, 45}), 1e-5, 1e-5));
    // Scales other than 1 give the image's own size back.
    slide.scales = {0.5, 1.5};
    slide.flip = true;
    EXPECT_EQ(seg.probabilities(img, slide).size(), static_cast<std::size_t>(3 * 30 * 45));
}

TEST(SegmentInference, OutputChannelsOtherThanTheClassCountIsAnError) {
    Segmenter seg(pointwise_model(4), {"pointwise", 0, 1, {"background", "a", "b"}}, "four.pt");
    EXPECT_EQ(error_of([&] { seg.probabilities(random_image(8, 8, 3), {}, "x.png"); }),
              "four.pt: the model outputs 4 channels for x.png, expected 3 (one per class: background, a, b)");
}

TEST(SegmentInference, CrfRefinesWithoutChangingAConfidentAnswer) {
    // Class 1 sums the normalised channels, class 0 their negation: bright pixels are class 1 with
    // logits of about +-7, dark ones class 0 with about +-5. The CRF must keep both halves.
    torch::jit::Module m = pointwise_model(2);
    m.register_parameter("weight", torch::tensor({-1.0f, -1.0f, -1.0f, 1.0f, 1.0f, 1.0f}).reshape({2, 3, 1, 1}), false);
    m.register_parameter("bias", torch::zeros({2}), false);
    Segmenter seg(m, {"pointwise", 0, 1, {"background", "a"}}, "p.pt");
    cv::Mat img(24, 24, CV_8UC3, cv::Scalar(10, 10, 10));
    img(cv::Rect(0, 0, 12, 24)).setTo(cv::Scalar(250, 250, 250));
    SegmentOptions plain, o;
    o.crf = true;
    o.crf_options.threads = 1;
    const cv::Mat before = seg.segment(img, plain, "img");
    std::vector<float> q;
    cv::Mat labels = seg.segment(img, o, "img", &q);
    ASSERT_EQ(q.size(), static_cast<std::size_t>(2 * 24 * 24));
    EXPECT_NEAR(q[0] + q[24 * 24], 1.0f, 1e-4);
    // Without the CRF the bright left half is class 1 and the dark right half class 0 ...
    EXPECT_EQ(cv::countNonZero(before(cv::Rect(0, 0, 12, 24)) != 1), 0);
    EXPECT_EQ(cv::countNonZero(before(cv::Rect(12, 0, 12, 24)) != 0), 0);
    // ... and the CRF keeps exactly that: one label per half, the two halves different.
    EXPECT_EQ(cv::countNonZero(labels(cv::Rect(0, 0, 12, 24)) != 1), 0);
    EXPECT_EQ(cv::countNonZero(labels(cv::Rect(12, 0, 12, 24)) != 0), 0);
    // Its marginals stay confident on both sides of the edge (class 1's row-major plane).
    EXPECT_GT(q[24 * 24 + 11], 0.9f);
    EXPECT_LT(q[24 * 24 + 12], 0.1f);
}

TEST(SegmentTrain, LearnsTheSquaresAndKeepsTheBest) {
    test::SquaresDataset train(24), val(8, 32, 100);
    fs::path out = test::scratch_dir("seg_learn");
    SegmentTrainOptions o = tiny_options(out);
    o.epochs = 20;
    o.lr = 0.02;
    std::vector<SegmentEpochMetrics> epochs;
    SegmentTrainResult r = train_segmenter(train, &val, o, {{}, [&](const SegmentEpochMetrics& m) { epochs.push_back(m); }, {}});
    ASSERT_EQ(epochs.size(), 20u);
    std::string trace;
    for (const auto& m : epochs)
        trace += fmt::format(" [loss {:.3f} iou {:.2f} {:.2f} {:.2f}]", m.loss, m.val.per_class[0].iou,
                             m.val.per_class[1].iou, m.val.per_class[2].iou);
    EXPECT_GT(r.best_miou, 0.8) << "val mIoU after 20 tiny epochs:" << trace;
    EXPECT_GT(epochs.back().val.miou, epochs.front().val.miou);
    EXPECT_LT(epochs.back().loss, epochs.front().loss);
    EXPECT_TRUE(fs::exists(out / "model.pt"));
    EXPECT_TRUE(fs::exists(out / "best.pt"));
    EXPECT_TRUE(fs::exists(out / "model.json"));
    // The best epoch's mIoU is the maximum and the saved best model reproduces it.
    double best = 0;
    for (const auto& m : epochs) best = std::max(best, m.val.miou);
    EXPECT_DOUBLE_EQ(r.best_miou, best);
    Segmenter seg(out / "best.pt");
    ASSERT_EQ(seg.card().class_names, val.class_names());
    ConfusionMatrix cm(3);
    for (std::size_t i = 0; i < val.size(); ++i) {
        Sample s = val.get(i);
        cm.accumulate(seg.segment(s.image, {}), s.mask);
    }
    EXPECT_NEAR(cm.metrics().miou, r.best_miou, 1e-9);
    // A second run into the same folder is refused.
    EXPECT_EQ(error_of([&] { train_segmenter(train, &val, o); }),
              (out / "checkpoint" / "checkpoint.pt").string() +
                  ": a run exists here; pass --resume to continue it or choose another --out");
}

TEST(SegmentTrain, ResumeAfterAnEpochOrMidEpochRepeatsTheUninterruptedRun) {
    test::SquaresDataset train(16), val(4, 32, 50);
    auto final_weights = [](const fs::path& dir) {
        torch::jit::Module m = torch::jit::load((dir / "model.pt").string());
        std::vector<torch::Tensor> w;
        for (const auto& p : m.named_parameters(true)) w.push_back(p.value);
        for (const auto& b : m.named_buffers(true)) w.push_back(b.value);
        return w;
    };
    SegmentTrainOptions o = tiny_options(test::scratch_dir("seg_straight"));
    o.epochs = 3;
    train_segmenter(train, &val, o);
    // Stopped after epoch 1, resumed.
    SegmentTrainOptions a = o;
    a.out = test::scratch_dir("seg_epoch");
    a.stop_after_epoch = 1;
    EXPECT_TRUE(train_segmenter(train, &val, a).interrupted);
    a.resume = true;
    a.stop_after_epoch = 0;
    EXPECT_FALSE(train_segmenter(train, &val, a).interrupted);
    // Stopped in the middle of epoch 2 (after its 2nd step of 4), resumed.
    SegmentTrainOptions b = o;
    b.out = test::scratch_dir("seg_step");
    int steps = 0;
    SegmentTrainCallbacks stop_mid{[&](int64_t, int64_t, int64_t, double) { ++steps; }, {}, [&] { return steps == 6; }};
    SegmentTrainResult r = train_segmenter(train, &val, b, stop_mid);
    EXPECT_TRUE(r.interrupted);
    EXPECT_EQ(r.epochs_done, 1);
    EXPECT_EQ(r.step_in_epoch, 2);
    b.resume = true;
    train_segmenter(train, &val, b);
    auto want = final_weights(o.out), got_a = final_weights(a.out), got_b = final_weights(b.out);
    ASSERT_EQ(want.size(), got_a.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_TRUE(torch::equal(want[i], got_a[i])) << "epoch resume, tensor " << i;
        EXPECT_TRUE(torch::equal(want[i], got_b[i])) << "mid-epoch resume, tensor " << i;
    }
    EXPECT_EQ(read_file(o.out / "metrics.jsonl").size() > 0, true);
    // Resume with other options names the flag.
    SegmentTrainOptions c = b;
    c.dice = 0.5;
    EXPECT_EQ(error_of([&] { train_segmenter(train, &val, c); }),
              (b.out / "checkpoint" / "checkpoint.pt").string() +
                  ": the checkpoint was made with --dice 0.0, this run has --dice 0.5 (resume with the same options)");
}

TEST(SegmentData, PseudoMaskFolderReplacesTheGroundTruthAndIsChecked) {
    fs::path root = test::scratch_dir("seg_voc");
    test::write_voc(root, "train", test::SquaresDataset(4));
    fs::path pseudo = root / "pseudo";
    fs::create_directories(pseudo);
    for (int i = 0; i < 4; ++i) {
        cv::Mat m(32, 32, CV_8UC1, cv::Scalar(255));
        m(cv::Rect(0, 0, 8, 8)).setTo(2);
        write_palette_png(pseudo / ("sq_" + std::to_string(i) + ".png"), m);
    }
    auto data = open_segmentation_dataset(root, "train", pseudo);
    Sample s = data->get(1);
    EXPECT_EQ(s.mask.at<uint8_t>(0, 0), 2);
    EXPECT_EQ(s.mask.at<uint8_t>(20, 20), 255);
    EXPECT_EQ(s.labels, std::vector<int>{2});
    // Size mismatch, a label that is no class and not 255, a missing mask: one line naming the file.
    write_palette_png(pseudo / "sq_1.png", cv::Mat(16, 32, CV_8UC1, cv::Scalar(0)));
    EXPECT_EQ(error_of([&] { data->get(1); }),
              (pseudo / "sq_1.png").string() + ": mask is 32x16 but its image 'sq_1' is 32x32");
    write_palette_png(pseudo / "sq_2.png", cv::Mat(32, 32, CV_8UC1, cv::Scalar(7)));
    EXPECT_EQ(error_of([&] { data->get(2); }),
              (pseudo / "sq_2.png").string() + ": label 7 is not a class (0..2) nor 255 (ignore)");
    fs::remove(pseudo / "sq_3.png");
    EXPECT_EQ(error_of([&] { data->get(3); }), (pseudo / "sq_3.png").string() + ": no such mask file (image 'sq_3')");
    EXPECT_EQ(error_of([&] { open_segmentation_dataset(root, "train", root / "nope"); }),
              (root / "nope").string() + ": no such mask folder (--masks)");
}

TEST(SegmentTrain, TrainsOnPseudoMasksWithIgnoreFromDisk) {
    fs::path root = test::scratch_dir("seg_pseudo");
    test::write_voc(root, "train", test::SquaresDataset(8));
    test::write_voc(root, "val", test::SquaresDataset(4, 32, 40));
    // Pseudo-masks: the ground truth with a 255 band where a pipeline would be unsure.
    fs::path pseudo = root / "pseudo";
    fs::create_directories(pseudo);
    test::SquaresDataset gt(8);
    for (std::size_t i = 0; i < gt.size(); ++i) {
        Sample s = gt.get(i);
        s.mask(cv::Rect(0, 0, 32, 6)).setTo(255);
        write_palette_png(pseudo / (s.id + ".png"), s.mask);
    }
    SegmentTrainOptions o = tiny_options(root / "run");
    o.data = root;
    o.masks = pseudo;
    o.epochs = 1;
    SegmentTrainResult r = train_segmenter(o);
    EXPECT_TRUE(fs::exists(r.model));
    EXPECT_EQ(r.last_val.per_class.size(), 3u);
    EXPECT_EQ(r.last_val.pixels, 4 * 32 * 32);  // validation on the ground truth
}
