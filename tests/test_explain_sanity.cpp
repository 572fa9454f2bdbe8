// Sanity checks: similarity measures on hand cases (with a brute-force SSIM twin), seeded
// re-initialisation by layer type, bad input, and the paper's finding on a tiny trained model:
// Guided Backprop survives cascading randomisation, Grad-CAM and HiResCAM do not.
#include <cmath>
#include <limits>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "sightline/architectures.hpp"
#include "sightline/sanity.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

cv::Mat row(std::vector<float> v) { return cv::Mat(v, true).reshape(1, 1); }

cv::Mat random_map(int h, int w, uint64_t seed) {
    cv::Mat m(h, w, CV_32FC1);
    cv::RNG rng(seed);
    rng.fill(m, cv::RNG::UNIFORM, 0.0, 1.0);
    return m;
}

// Wang et al. 2004 written out: explicit 11x11 Gaussian window with reflect-101 borders.
double ssim_slow(const cv::Mat& a, const cv::Mat& b) {
    double g[11], sum = 0;
    for (int i = 0; i < 11; ++i) sum += g[i] = std::exp(-(i - 5) * (i - 5) / (2 * 1.5 * 1.5));
    for (double& v : g) v /= sum;
    auto at = [](const cv::Mat& m, int y, int x) {
        y = cv::borderInterpolate(y, m.rows, cv::BORDER_REFLECT_101);
        x = cv::borderInterpolate(x, m.cols, cv::BORDER_REFLECT_101);
        return static_cast<double>(m.at<float>(y, x));
    };
    const double c1 = 1e-4, c2 = 9e-4;
    double total = 0;
    for (int y = 0; y < a.rows; ++y)
        for (int x = 0; x < a.cols; ++x) {
            double mx = 0, my = 0, xx = 0, yy = 0, xy = 0;
            for (int dy = -5; dy <= 5; ++dy)
                for (int dx = -5; dx <= 5; ++dx) {
                    double w = g[dy + 5] * g[dx + 5], p = at(a, y + dy, x + dx), q = at(b, y + dy, x + dx);
                    mx += w * p;
                    my += w * q;
                    xx += w * p * p;
                    yy += w * q * q;
                    xy += w * p * q;
                }
            total += ((2 * mx * my + c1) * (2 * (xy - mx * my) + c2)) /
                     ((mx * mx + my * my + c1) * (xx - mx * mx + yy - my * my + c2));
        }
    return total / static_cast<double>(a.total());
}

}  // namespace

TEST(Similarity, SpearmanUsesAverageRanksForTies) {
    // ranks of b: 1, 2, 3.5, 5, 3.5 -> r = 8 / sqrt(10 * 9.5)
    EXPECT_NEAR(spearman(row({1, 2, 3, 4, 5}), row({5, 6, 7, 8, 7})), 8.0 / std::sqrt(95.0), 1e-12);
    EXPECT_NEAR(spearman(row({1, 2, 3, 4}), row({10, 20, 30, 1000})), 1.0, 1e-12);  // monotone = 1
    EXPECT_NEAR(spearman(row({1, 2, 3, 4}), row({4, 3, 2, 1})), -1.0, 1e-12);
    EXPECT_EQ(spearman(row({1, 2, 3, 4}), row({7, 7, 7, 7})), 0.0);  // a constant map has no ranking
}

TEST(Similarity, PearsonKnownAnswerAndSizeMismatch) {
    EXPECT_NEAR(pearson({1, 2, 3}, {2, 4, 7}), 5.0 / std::sqrt(2.0 * 38.0 / 3.0), 1e-12);
    try {
        spearman(row({1, 2, 3}), row({1, 2}));
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "spearman: maps differ in size (1x3 and 1x2)");
    }
}

TEST(Similarity, SsimOfConstantMapsAndIdentity) {
    cv::Mat a(16, 16, CV_32FC1, cv::Scalar(0.2)), b(16, 16, CV_32FC1, cv::Scalar(0.6));
    // Flat maps: only the luminance term, (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01)^2 (with
    // the float32 values of 0.2 and 0.6).
    const double x = 0.2f, y = 0.6f;
    EXPECT_NEAR(ssim(a, b), (2 * x * y + 1e-4) / (x * x + y * y + 1e-4), 1e-9);
    cv::Mat r = random_map(20, 17, 1);
    EXPECT_NEAR(ssim(r, r), 1.0, 1e-12);
}

TEST(Similarity, SsimMatchesTheWrittenOutWindowSum) {
    cv::Mat a = random_map(20, 17, 2), b = random_map(20, 17, 3);
    cv::Mat c = 0.5 * a + 0.5 * b;
    EXPECT_NEAR(ssim(a, b), ssim_slow(a, b), 1e-9);
    EXPECT_NEAR(ssim(a, c), ssim_slow(a, c), 1e-9);
    EXPECT_GT(ssim(a, c), ssim(a, b) + 0.2);
}

TEST(Similarity, HogSeesEdgeOrientationNotContrast) {
    cv::Mat vertical(32, 32, CV_32FC1, cv::Scalar(0)), horizontal(32, 32, CV_32FC1, cv::Scalar(0));
    for (int i = 0; i < 32; ++i)
        for (int j = 0; j < 32; ++j) {
            vertical.at<float>(i, j) = (j / 4) % 2 ? 1.0f : 0.0f;
            horizontal.at<float>(i, j) = (i / 4) % 2 ? 1.0f : 0.0f;
        }
    EXPECT_NEAR(hog_pearson(vertical, vertical), 1.0, 1e-12);
    EXPECT_GT(hog_pearson(vertical, vertical * 0.5), 0.99);  // block normalisation
    EXPECT_LT(hog_pearson(vertical, horizontal), 0.1);
    cv::Mat small(8, 8, CV_32FC1, cv::Scalar(0));
    try {
        hog_pearson(small, small);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "hog: maps of 8x8 are smaller than one 16x16 HOG block");
    }
}

// numpy.histogram(map, bins) then scipy.stats.entropy(counts), worked by hand.
TEST(Similarity, DiscreteEntropyKnownAnswers) {
    EXPECT_EQ(discrete_entropy(cv::Mat(4, 4, CV_32FC1, cv::Scalar(0.3)), 100), 0.0);  // constant: one bin
    EXPECT_NEAR(discrete_entropy(row({0, 0, 1, 1}), 100), std::log(2.0), 1e-12);
    std::vector<float> ramp;
    for (int i = 0; i < 100; ++i) ramp.push_back(static_cast<float>(i));
    EXPECT_NEAR(discrete_entropy(row(ramp), 100), std::log(100.0), 1e-12);  // one value per bin
    EXPECT_NEAR(discrete_entropy(row(ramp), 10), std::log(10.0), 1e-12);
    // Bins are half-open except the last: 0.5 sits on the edge of bin 1, 1 in the closed last bin.
    const double third = 1.0 / 3.0;
    EXPECT_NEAR(discrete_entropy(row({0, 0.5f, 1}), 2), -(third * std::log(third) + 2 * third * std::log(2 * third)),
                1e-12);
    // Only the ranks of the bins matter: an affine change of the map keeps its entropy.
    cv::Mat m = random_map(16, 16, 5);
    EXPECT_NEAR(discrete_entropy(m * 3.0 - 1.0, 100), discrete_entropy(m, 100), 1e-9);
    EXPECT_THROW(discrete_entropy(cv::Mat(2, 2, CV_8UC1), 10), Error);
}

TEST(Similarity, SobelMapIsTheEdge) {
    cv::Mat img(12, 12, CV_8UC3, cv::Scalar(0, 0, 0));
    img(cv::Rect(6, 0, 6, 12)).setTo(cv::Scalar(255, 255, 255));
    cv::Mat e = sobel_map(img);
    EXPECT_NEAR(e.at<float>(5, 5), 1.0, 1e-5);  // the two columns beside the step
    EXPECT_NEAR(e.at<float>(5, 6), 1.0, 1e-5);
    EXPECT_EQ(e.at<float>(5, 1), 0.0f);
    EXPECT_EQ(e.at<float>(5, 10), 0.0f);
}

TEST(Randomise, BlocksFollowTheModelAndLayersGetTheirDefaultInitialiser) {
    ArchOptions ao;
    ao.num_classes = 3;
    ao.input_size = 32;
    ao.width = 8;
    torch::jit::Module m = build_architecture("resnet_gap", ao);
    std::vector<ParameterBlock> blocks = parameter_blocks(m, 1, "m.pt");
    std::vector<std::string> names;
    for (const auto& b : blocks) names.push_back(b.name);
    EXPECT_EQ(names, (std::vector<std::string>{"stem", "layer1", "layer2", "layer3", "layer4", "fc"}));
    EXPECT_EQ(blocks.back().parameters, 64 * 3 + 3);
    EXPECT_EQ(parameter_blocks(m, 2, "m.pt")[0].name, "stem.conv");

    torch::NoGradGuard no_grad;
    // Disturb the BatchNorm state so the reset is visible.
    m.attr("stem").toModule().attr("bn").toModule().attr("running_var").toTensor().fill_(5);
    m.attr("stem").toModule().attr("bn").toModule().attr("weight").toTensor().fill_(3);
    reinitialise(m, blocks.front(), 7);
    torch::jit::Module bn = m.attr("stem").toModule().attr("bn").toModule();
    EXPECT_TRUE(torch::equal(bn.attr("running_var").toTensor(), torch::ones({8})));
    EXPECT_TRUE(torch::equal(bn.attr("weight").toTensor(), torch::ones({8})));
    EXPECT_TRUE(torch::equal(bn.attr("bias").toTensor(), torch::zeros({8})));
    torch::Tensor conv = m.attr("stem").toModule().attr("conv").toModule().attr("weight").toTensor();
    const double bound = 1.0 / std::sqrt(27.0);  // kaiming_uniform(a = sqrt(5)), fan_in 3 * 3 * 3
    EXPECT_LE(conv.abs().max().item<double>(), bound);
    EXPECT_GT(conv.abs().max().item<double>(), 0.9 * bound);
    // Same seed, same values; the Linear bias uses the weight's fan_in (64).
    torch::Tensor before = conv.clone();
    reinitialise(m, blocks.front(), 7);
    EXPECT_TRUE(torch::equal(before, conv));
    reinitialise(m, blocks.front(), 8);
    EXPECT_FALSE(torch::equal(before, conv));
    reinitialise(m, blocks.back(), 7);
    torch::Tensor fc_b = m.attr("fc").toModule().attr("bias").toTensor();
    EXPECT_LE(fc_b.abs().max().item<double>(), 1.0 / 8.0);

    // GroupNorm (--norm group) keeps no statistics; it resets to affine 1 / 0 as torch's does.
    ao.norm = Norm::kGroup;
    torch::jit::Module g = build_architecture("resnet_gap", ao);
    torch::jit::Module gn = g.attr("stem").toModule().attr("bn").toModule();
    gn.attr("weight").toTensor().fill_(3);
    gn.attr("bias").toTensor().fill_(2);
    reinitialise(g, parameter_blocks(g, 1, "g.pt").front(), 7);
    EXPECT_TRUE(torch::equal(gn.attr("weight").toTensor(), torch::ones({8})));
    EXPECT_TRUE(torch::equal(gn.attr("bias").toTensor(), torch::zeros({8})));
}

// Adebayo et al.'s layer-by-layer cascade: every module that owns parameters is a block of its
// own, in definition order (input side first), BatchNorm included.
TEST(Randomise, EveryLayerIsItsOwnBlock) {
    ArchOptions ao;
    ao.num_classes = 3;
    ao.input_size = 32;
    ao.width = 8;
    torch::jit::Module m = build_architecture("resnet_gap", ao);
    std::vector<ParameterBlock> blocks = parameter_blocks(m, kEveryLayer, "m.pt");
    int64_t owners = 0, total = 0;
    for (const auto& sub : m.named_modules())
        if (sub.value.named_parameters(false).size() > 0) ++owners;
    for (const auto& p : m.named_parameters(true)) total += p.value.numel();
    ASSERT_EQ(static_cast<int64_t>(blocks.size()), owners);
    int64_t covered = 0;
    for (const auto& b : blocks) {
        EXPECT_EQ(b.modules, std::vector<std::string>{b.name});
        covered += b.parameters;
    }
    EXPECT_EQ(covered, total);  // every parameter in exactly one block
    EXPECT_EQ(blocks.front().name, "stem.conv");
    EXPECT_EQ(blocks[1].name, "stem.bn");
    EXPECT_EQ(blocks.back().name, "fc");
    EXPECT_GT(blocks.size(), parameter_blocks(m, 2, "m.pt").size());
}

TEST(Randomise, ModelWithoutParametersIsRefused) {
    torch::jit::Module m("Empty");
    m.define("def forward(self, x):\n    return torch.flatten(x, 1)\n");
    try {
        parameter_blocks(m, 1, "empty.pt");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "empty.pt: the model has no parameters to re-initialise");
    }
}

namespace {

// Class c in {0,1,2}: a 12x12 square of colour c at a position set by i on a noisy grey field.
cv::Mat toy_image(int i) {
    cv::Mat img(32, 32, CV_8UC3);
    cv::RNG rng(static_cast<uint64_t>(i) + 5);
    rng.fill(img, cv::RNG::UNIFORM, 90, 160);
    static const cv::Scalar colours[] = {{230, 30, 30}, {30, 230, 30}, {30, 30, 230}};
    cv::rectangle(img, cv::Rect((i * 7) % 18, (i * 5) % 18, 12, 12), colours[i % 3], cv::FILLED);
    return img;
}

// A resnet_gap trained for a few seconds on toy images; saved as TorchScript.
fs::path trained_toy_model(const fs::path& dir) {
    ArchOptions ao;
    ao.num_classes = 3;
    ao.input_size = 32;
    ao.width = 8;
    ao.seed = 3;
    torch::jit::Module m = build_architecture("resnet_gap", ao);
    Preprocess pre;
    pre.mean = {0.5f, 0.5f, 0.5f};
    pre.std = {0.25f, 0.25f, 0.25f};
    std::vector<torch::Tensor> xs, ys;
    for (int i = 0; i < 96; ++i) {
        xs.push_back(image_to_tensor(toy_image(i), pre));
        ys.push_back(torch::tensor({static_cast<int64_t>(i % 3)}));
    }
    torch::Tensor x = torch::cat(xs), y = torch::cat(ys);
    std::vector<torch::Tensor> params;
    for (const auto& p : m.parameters()) params.push_back(p);
    torch::optim::SGD opt(params, torch::optim::SGDOptions(0.05).momentum(0.9));
    torch::manual_seed(0);
    m.train();
    for (int step = 0; step < 60; ++step) {
        torch::Tensor idx = torch::randperm(96).slice(0, 0, 32);
        opt.zero_grad();
        torch::Tensor loss = torch::cross_entropy_loss(m.forward({x.index_select(0, idx)}).toTensor(), y.index_select(0, idx));
        loss.backward();
        opt.step();
    }
    m.eval();
    fs::path path = dir / "toy.pt";
    m.save(path.string());
    return path;
}

}  // namespace

TEST(SanityRun, GuidedBackpropSurvivesCascadingRandomisationGradCamAndHiResCamDoNot) {
    fs::path dir = test::scratch_dir("sanity_toy");
    fs::create_directories(dir / "images");
    for (int i = 0; i < 6; ++i) write_image_rgb(dir / "images" / ("toy" + std::to_string(i) + ".png"), toy_image(100 + i));
    SanityOptions o;
    o.model = trained_toy_model(dir);
    const std::string model_bytes = read_file(o.model);
    o.input = dir / "images";
    o.methods = {"gradcam", "hirescam", "guidedbackprop"};
    o.preprocess.mean = {0.5f, 0.5f, 0.5f};
    o.preprocess.std = {0.25f, 0.25f, 0.25f};
    std::size_t calls = 0;
    SanityReport r = run_sanity(o, [&](std::size_t, std::size_t) { ++calls; });
    ASSERT_EQ(r.steps.size(), 7u);  // six blocks, then the random logit
    EXPECT_EQ(calls, 8u);
    EXPECT_EQ(r.steps[5].randomised.size(), 6u);  // cascading: all blocks at the last model step
    EXPECT_TRUE(r.steps.back().random_logit);
    ASSERT_EQ(r.methods.back(), "sobel");
    const auto last = [&](std::size_t m, int k) { return r.similarity[m][5][k].mean; };
    // spearman_abs: the CAMs lose the original ranking at the first step (the logits layer);
    // Guided Backprop keeps it until the first layers are randomised too.
    EXPECT_LT(r.similarity[0][0][1].mean, 0.5);
    EXPECT_LT(r.similarity[1][0][1].mean, 0.5);
    EXPECT_GT(r.similarity[2][0][1].mean, 0.8);
    EXPECT_GT(r.similarity[2][3][1].mean, 0.6);  // fc, layer4, layer3 and layer2 randomised
    EXPECT_GT(r.verdicts[2].value, r.verdicts[0].value + 0.3);
    EXPECT_TRUE(r.verdicts[0].passes);
    EXPECT_TRUE(r.verdicts[1].passes);
    EXPECT_FALSE(r.verdicts[2].passes);
    EXPECT_FALSE(r.verdicts[3].passes);  // the edge detector ignores the model
    EXPECT_NEAR(last(3, 2), 1.0, 1e-9);
    // Randomisation works on copies: the model file is byte for byte what it was.
    EXPECT_EQ(read_file(o.model), model_bytes);
    nlohmann::json j = sanity_json(r);
    EXPECT_EQ(j["methods"]["gradcam"]["steps"].size(), 7u);
    EXPECT_EQ(j["mode"], "cascading");
}

// The repairs of the test on the same toy model: the random logit (Sixt et al. 2020), smooth
// MPRT and efficient MPRT (Hedström et al. 2023).
TEST(SanityRun, RandomLogitSmoothAndEfficientMprt) {
    fs::path dir = test::scratch_dir("sanity_repairs");
    fs::create_directories(dir / "images");
    for (int i = 0; i < 6; ++i) write_image_rgb(dir / "images" / ("toy" + std::to_string(i) + ".png"), toy_image(200 + i));
    SanityOptions o;
    o.model = trained_toy_model(dir);
    o.input = dir / "images";
    o.methods = {"gradcam", "guidedbackprop"};
    o.preprocess.mean = {0.5f, 0.5f, 0.5f};
    o.preprocess.std = {0.25f, 0.25f, 0.25f};
    o.smooth_samples = 3;
    o.smooth_noise = 0.0;  // noise-free copies: the averaged maps are the maps
    SanityReport r = run_sanity(o);
    ASSERT_EQ(r.random_targets.size(), r.targets.size());
    for (std::size_t i = 0; i < r.targets.size(); ++i) {
        EXPECT_NE(r.random_targets[i], r.targets[i]);
        EXPECT_GE(r.random_targets[i], 0);
        EXPECT_LT(r.random_targets[i], 3);
    }
    ASSERT_EQ(r.smooth_similarity.size(), r.similarity.size());
    for (std::size_t m = 0; m < r.similarity.size(); ++m)
        for (std::size_t s = 0; s < r.steps.size(); ++s)
            for (int k = 0; k < 4; ++k)  // float rounding of the mean of three copies only
                EXPECT_NEAR(r.smooth_similarity[m][s][k].mean, r.similarity[m][s][k].mean, 2e-4);
    const std::size_t logit = r.steps.size() - 1;
    // Another class's Grad-CAM is close to the negative of the target's (signed Spearman < -0.5),
    // which the absolute values cannot see: the test reads SSIM of the final (ReLU'd) maps, which
    // are then nearly disjoint. Guided Backprop barely looks at the class (Sixt et al.).
    EXPECT_LT(r.similarity[0][logit][0].mean, -0.5);
    EXPECT_LT(r.similarity[0][logit][2].mean, 0.3);
    EXPECT_GT(r.similarity[1][logit][2].mean, 0.6);
    EXPECT_DOUBLE_EQ(r.similarity[2][logit][2].mean, 1.0);  // Sobel
    EXPECT_TRUE(r.verdicts[0].tests[1].passes);
    EXPECT_DOUBLE_EQ(r.verdicts[0].tests[1].value, r.similarity[0][logit][2].mean);
    // Efficient MPRT: the Sobel row's complexity cannot change, so it cannot pass.
    ASSERT_EQ(r.complexity.size(), 3u);
    EXPECT_EQ(r.complexity[2].rise.mean, 0.0);
    EXPECT_GT(r.complexity[0].original.mean, 0.0);
    std::vector<std::string> tests;
    for (const auto& t : r.verdicts[0].tests) tests.push_back(t.test);
    EXPECT_EQ(tests, (std::vector<std::string>{"mprt", "random_logit", "smooth_mprt", "emprt"}));
    EXPECT_FALSE(r.verdicts[2].tests.back().passes);
    EXPECT_FALSE(r.verdicts[1].tests[1].passes);  // Guided Backprop: class-insensitive
    nlohmann::json j = sanity_json(r);
    EXPECT_EQ(j["smooth"]["samples"], 3);
    EXPECT_EQ(j["methods"]["gradcam"]["smooth_steps"].size(), r.steps.size());
    EXPECT_TRUE(j["methods"]["gradcam"]["verdict"]["tests"].contains("emprt"));
    EXPECT_TRUE(j["test_rules"].contains("random_logit"));

    // With noise the averaged maps differ from the plain ones; the plain ones stay as they were.
    o.smooth_noise = 0.2;
    o.random_logit = false;
    SanityReport noisy = run_sanity(o);
    EXPECT_TRUE(noisy.random_targets.empty());
    EXPECT_EQ(noisy.steps.size(), r.steps.size() - 1);
    for (int k = 0; k < 4; ++k) EXPECT_DOUBLE_EQ(noisy.similarity[0][0][k].mean, r.similarity[0][0][k].mean);
    double differ = 0;
    for (int k = 0; k < 4; ++k) differ += std::abs(noisy.smooth_similarity[0][0][k].mean - noisy.similarity[0][0][k].mean);
    EXPECT_GT(differ, 1e-2);

    o.smooth_samples = 1;
    EXPECT_THROW(run_sanity(o), UsageError);
}

// Independent randomisation never reaches the fully random model; eMPRT gets a pass of its own.
TEST(SanityRun, IndependentModeStillMeasuresTheFullyRandomModel) {
    fs::path dir = test::scratch_dir("sanity_independent");
    fs::create_directories(dir / "images");
    for (int i = 0; i < 4; ++i) write_image_rgb(dir / "images" / ("toy" + std::to_string(i) + ".png"), toy_image(300 + i));
    SanityOptions o;
    o.model = trained_toy_model(dir);
    o.input = dir / "images";
    o.methods = {"hirescam"};
    o.preprocess.mean = {0.5f, 0.5f, 0.5f};
    o.preprocess.std = {0.25f, 0.25f, 0.25f};
    o.edge_baseline = false;
    SanityReport cascading = run_sanity(o);
    o.independent = true;
    std::size_t calls = 0, reported_total = 0;
    SanityReport independent = run_sanity(o, [&](std::size_t, std::size_t total) {
        ++calls;
        reported_total = total;
    });
    EXPECT_EQ(calls, 1 + independent.steps.size() + 1);
    EXPECT_EQ(reported_total, calls);
    // Both end at every block re-initialised with the same seeded values: the same maps.
    ASSERT_EQ(independent.complexity.size(), 1u);
    EXPECT_DOUBLE_EQ(independent.complexity[0].randomised.mean, cascading.complexity[0].randomised.mean);
    EXPECT_DOUBLE_EQ(independent.complexity[0].original.mean, cascading.complexity[0].original.mean);
}

TEST(SanityRun, FewerThanTwoImagesIsRefused) {
    fs::path dir = test::scratch_dir("sanity_one");
    write_image_rgb(dir / "one.png", toy_image(1));
    SanityOptions o;
    o.model = dir / "missing.pt";
    o.input = dir;
    try {
        run_sanity(o);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  dir.string() + ": the sanity checks need at least 2 images for their correlation statistics (found 1)");
    }
}

// The verdict rules on a hand-made report: "top" reads the first model step only, "curve" the
// mean over the model steps; the data step has its own verdict under both.
TEST(SanityVerdicts, TopStepAndCurveRules) {
    SanityReport r;
    r.methods = {"edgey", "faithful"};
    r.steps = {{"fc", {"fc"}, false}, {"+layer4", {"fc", "layer4"}, false}, {"data: s.pt", {}, true}};
    auto stats = [](double v) {
        std::array<SimilarityStats, 4> a;
        for (auto& s : a) s.mean = 0.0;
        a[1].mean = v;  // spearman_abs
        return a;
    };
    // edgey keeps 0.8 after the logits layer and falls to 0.1 later (mean 0.45);
    // faithful falls to 0.3 at once and stays.
    r.similarity = {{stats(0.8), stats(0.1), stats(0.7)}, {stats(0.3), stats(0.3), stats(0.2)}};
    std::vector<SanityVerdict> top = sanity_verdicts(r, "spearman_abs", "top", 0.5);
    ASSERT_EQ(top.size(), 2u);
    EXPECT_DOUBLE_EQ(top[0].value, 0.8);
    EXPECT_EQ(top[0].step, "fc");
    EXPECT_FALSE(top[0].passes);
    EXPECT_TRUE(top[1].passes);
    EXPECT_FALSE(top[0].data_passes);
    EXPECT_DOUBLE_EQ(top[0].data_value, 0.7);
    std::vector<SanityVerdict> curve = sanity_verdicts(r, "spearman_abs", "curve", 0.5);
    EXPECT_DOUBLE_EQ(curve[0].value, 0.45);  // the data step is not part of the curve
    EXPECT_EQ(curve[0].step, "mean over 2 steps");
    EXPECT_TRUE(curve[0].passes);
    EXPECT_TRUE(curve[1].data_passes);
    EXPECT_FALSE(sanity_verdicts(r, "ssim", "top", 0.5)[0].value > 0);  // another metric column
    EXPECT_THROW(sanity_verdicts(r, "spearman_abs", "bottom", 0.5), UsageError);
}

// Each test has its own verdict: the random-logit step is neither a model step nor the data step,
// smooth MPRT reads its own table by the MPRT rule, eMPRT passes on a rise above 0.
TEST(SanityVerdicts, EveryTestReadsItsOwnNumbers) {
    SanityReport r;
    r.methods = {"m"};
    r.steps = {{"fc", {"fc"}, false}, {"+layer4", {"fc", "layer4"}, false}, {"random logit", {}, false, true}};
    auto stats = [](double v) {
        std::array<SimilarityStats, 4> a;
        a[1].mean = v;
        a[2].mean = v - 0.05;  // ssim, the random-logit test's metric
        return a;
    };
    r.similarity = {{stats(0.2), stats(0.6), stats(0.9)}};
    r.smooth_similarity = {{stats(0.7), stats(0.1), stats(0.4)}};
    r.complexity.resize(1);
    r.complexity[0].rise.mean = -0.05;
    std::vector<SanityVerdict> curve = sanity_verdicts(r, "spearman_abs", "curve", 0.5);
    ASSERT_EQ(curve[0].tests.size(), 4u);
    EXPECT_EQ(curve[0].tests[0].test, "mprt");
    EXPECT_DOUBLE_EQ(curve[0].tests[0].value, 0.4);  // the random-logit step is not on the curve
    EXPECT_TRUE(curve[0].tests[0].passes);
    EXPECT_EQ(curve[0].tests[1].test, "random_logit");
    EXPECT_DOUBLE_EQ(curve[0].tests[1].value, 0.85);  // read on SSIM whatever the MPRT metric
    EXPECT_FALSE(curve[0].tests[1].passes);
    EXPECT_EQ(curve[0].tests[2].test, "smooth_mprt");
    EXPECT_DOUBLE_EQ(curve[0].tests[2].value, 0.4);
    EXPECT_EQ(curve[0].tests[3].test, "emprt");
    EXPECT_FALSE(curve[0].tests[3].passes);
    std::vector<SanityVerdict> top = sanity_verdicts(r, "spearman_abs", "top", 0.5);
    EXPECT_DOUBLE_EQ(top[0].tests[2].value, 0.7);  // smooth MPRT at the logits layer
    EXPECT_FALSE(top[0].tests[2].passes);
    r.complexity[0].rise.mean = std::numeric_limits<double>::quiet_NaN();  // every original map constant
    EXPECT_FALSE(sanity_verdicts(r, "spearman_abs", "top", 0.5)[0].tests[3].passes);
}
