// Faithfulness scores on hand-computed cases: a model whose logit is the sum of its input makes
// every perturbation's effect a sum we can write down. ROAD's imputer is checked against hand
// solutions, against dense Gaussian elimination, and numpy's percentile against known values.
#include <cmath>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "sightline/sanity.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

// logits = [sum(x), 0]: class 0's probability is sigmoid(sum(x)).
Classifier sum_model() {
    torch::jit::Module m("SumNet");
    m.define(R"(
def forward(self, x):
    s = torch.sum(x, [1, 2, 3])
    return torch.stack([s, torch.zeros_like(s)], 1)
)");
    fs::path path = test::scratch_dir("model") / "sum.pt";
    m.save(path.string());
    return Classifier::load(path);
}

// [3,h,w] with the same values in every channel.
torch::Tensor image(const std::vector<float>& v, int64_t h, int64_t w) {
    return torch::tensor(v).reshape({1, h, w}).repeat({3, 1, 1});
}

double sigmoid(double s) { return 1.0 / (1.0 + std::exp(-s)); }

}  // namespace

TEST(Curves, AucIsTheTrapezoidOverUnitSteps) {
    EXPECT_DOUBLE_EQ(curve_auc({1.0, 0.5, 0.0}), 0.5);
    EXPECT_DOUBLE_EQ(curve_auc({1.0, 1.0}), 1.0);
    EXPECT_DOUBLE_EQ(curve_auc({0.0, 1.0, 1.0, 1.0, 1.0}), 0.875);
}

TEST(Curves, RelevanceOrderIsDescendingWithTiesInRasterOrder) {
    EXPECT_EQ(relevance_order(torch::tensor({0.1f, 0.9f, 0.5f, 0.9f}).reshape({2, 2})),
              (std::vector<int64_t>{1, 3, 2, 0}));
}

TEST(Curves, DeletionAndInsertionOnTheSumModel) {
    Classifier model = sum_model();
    // Pixels (raster) 1, 2, -1, 0.5; the map ranks them 1, 2, 3, 0.
    torch::Tensor x = image({1, 2, -1, 0.5}, 2, 2), map = torch::tensor({0.1f, 0.9f, 0.5f, 0.3f}).reshape({2, 2});
    torch::Tensor zero = torch::zeros_like(x);
    // Deletion removes 2, then -1, then 0.5, then 1: per-channel sums 2.5, 0.5, 1.5, 1, 0.
    const double del_sums[] = {2.5, 0.5, 1.5, 1.0, 0.0}, ins_sums[] = {0.0, 2.0, 1.0, 1.5, 2.5};
    for (int batch : {1, 2, 16}) {
        std::vector<double> del = perturbation_curve(model, x, zero, map, 0, false, 4, batch, ScoreOutput::kProbability);
        std::vector<double> ins = perturbation_curve(model, x, zero, map, 0, true, 4, batch, ScoreOutput::kProbability);
        ASSERT_EQ(del.size(), 5u);
        for (int k = 0; k < 5; ++k) {
            EXPECT_NEAR(del[k], sigmoid(3 * del_sums[k]), 1e-6) << k;
            EXPECT_NEAR(ins[k], sigmoid(3 * ins_sums[k]), 1e-6) << k;
        }
        double auc = 0;
        for (int k = 0; k < 4; ++k) auc += (sigmoid(3 * del_sums[k]) + sigmoid(3 * del_sums[k + 1])) / 8;
        EXPECT_NEAR(curve_auc(del), auc, 1e-6);
    }
    std::vector<double> logits = perturbation_curve(model, x, zero, map, 0, false, 4, 3, ScoreOutput::kLogit);
    for (int k = 0; k < 5; ++k) EXPECT_NEAR(logits[k], 3 * del_sums[k], 1e-5);
    // Two steps remove floor(4 / 2) = 2 pixels each.
    std::vector<double> coarse = perturbation_curve(model, x, zero, map, 0, false, 2, 8, ScoreOutput::kLogit);
    EXPECT_NEAR(coarse[1], 3 * 1.5, 1e-5);
}

TEST(Curves, MapOfAnotherSizeIsRefused) {
    Classifier model = sum_model();
    torch::Tensor x = image({1, 2, 3, 4}, 2, 2);
    try {
        perturbation_curve(model, x, x, torch::zeros({3, 3}), 0, false, 4, 4, ScoreOutput::kLogit, "cat.gradcam.npy");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "cat.gradcam.npy: map is 3x3 but the image is 2x2; maps must have the image's size");
    }
}

TEST(Confidence, ChangeIsTheScoreOfInputTimesMapMinusTheScore) {
    Classifier model = sum_model();
    torch::Tensor x = torch::stack({image({1, 2, -1, 0.5}, 2, 2), image({1, 1, 1, 1}, 2, 2)});
    torch::Tensor maps = torch::stack({torch::tensor({1.0f, 0.5f, 0.0f, 0.0f}).reshape({2, 2}),
                                       torch::tensor({1.0f, 1.0f, 1.0f, 1.0f}).reshape({2, 2})});
    std::vector<double> c = confidence_change(model, x, maps, {0, 0}, ScoreOutput::kLogit);
    EXPECT_NEAR(c[0], 3 * (1 + 1) - 3 * 2.5, 1e-5);  // sum(x * map) - sum(x)
    EXPECT_NEAR(c[1], 0.0, 1e-6);
    std::vector<double> p = confidence_change(model, x, maps, {0, 0}, ScoreOutput::kProbability);
    EXPECT_NEAR(p[0], sigmoid(6) - sigmoid(7.5), 1e-6);
}

TEST(Road, PercentileIsNumpysLinearInterpolation) {
    EXPECT_NEAR(percentile({1, 2, 3, 4}, 10), 1.3, 1e-6);
    EXPECT_NEAR(percentile({5, 1, 3}, 50), 3.0, 1e-12);
    EXPECT_NEAR(percentile({10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 80), 8.2, 1e-6);
}

TEST(Road, ImputerHandCases) {
    // One missing pixel in the middle of 3x3: 1/6 of the 4-neighbours plus 1/12 of the diagonals.
    torch::Tensor img = torch::tensor({1.f, 2.f, 3.f, 4.f, 100.f, 6.f, 7.f, 8.f, 9.f}).reshape({1, 3, 3});
    torch::Tensor keep = torch::ones({3, 3});
    keep[1][1] = 0;
    torch::Tensor out = road_impute(img, keep, 0.0);
    EXPECT_NEAR(out[0][1][1].item<double>(), (2 + 4 + 6 + 8) / 6.0 + (1 + 3 + 7 + 9) / 12.0, 1e-5);
    EXPECT_EQ(out[0][0][0].item<float>(), 1.f);  // kept pixels are untouched
    // A corner: the weights outside the image leave the normaliser (1/6 + 1/6 + 1/12 = 5/12).
    torch::Tensor corner = torch::tensor({0.f, 2.f, 4.f, 8.f}).reshape({1, 2, 2});
    torch::Tensor keep2 = torch::ones({2, 2});
    keep2[0][0] = 0;
    EXPECT_NEAR(road_impute(corner, keep2, 0.0)[0][0][0].item<double>(), (2 / 6.0 + 4 / 6.0 + 8 / 12.0) / (5 / 12.0), 1e-5);
    // Two neighbouring unknowns solved jointly. Rows [1 ? ?; 4 5 6]:
    //   (2/3) a - (1/6) b = 11/6 and (5/12) b - (1/6) a = 17/12  =>  a = 4, b = 5.
    torch::Tensor two = torch::tensor({1.f, 0.f, 0.f, 4.f, 5.f, 6.f}).reshape({1, 2, 3});
    torch::Tensor keep3 = torch::ones({2, 3});
    keep3[0][1] = 0;
    keep3[0][2] = 0;
    torch::Tensor solved = road_impute(two, keep3, 0.0);
    EXPECT_NEAR(solved[0][0][1].item<double>(), 4.0, 1e-5);
    EXPECT_NEAR(solved[0][0][2].item<double>(), 5.0, 1e-5);
}

TEST(Road, ConjugateGradientsMatchGaussianElimination) {
    torch::manual_seed(4);
    torch::Tensor img = torch::randn({3, 9, 7});
    torch::Tensor keep = (torch::rand({9, 7}) < 0.35).to(torch::kFloat32);
    keep[0][0] = 1;
    torch::Tensor fast = road_impute(img, keep, 0.0), slow = road_impute_dense(img, keep);
    EXPECT_LE((fast - slow).abs().max().item<double>(), 1e-5);
    EXPECT_TRUE(torch::equal(road_impute(img, keep, 0.0), fast));  // noise 0: deterministic
    torch::Tensor a = road_impute(img, keep, 0.01, at::detail::createCPUGenerator(1));
    torch::Tensor b = road_impute(img, keep, 0.01, at::detail::createCPUGenerator(1));
    EXPECT_TRUE(torch::equal(a, b));
    torch::Tensor removed = (keep == 0).unsqueeze(0).expand_as(img);
    double noise_std = (a - fast).masked_select(removed).std().item<double>();
    EXPECT_NEAR(noise_std, 0.01, 0.004);
    EXPECT_EQ((a - fast).masked_select(~removed).abs().max().item<double>(), 0.0);
}

TEST(Road, MostRelevantFirstOnTheSumModel) {
    Classifier model = sum_model();
    // Map ranks pixels 2 and 1 highest; at p = 70 the threshold is 0.6, so they are imputed as
    // 4 and 5 (the hand case above): each channel's sum goes from 21 to 25.
    torch::Tensor x = image({1, 2, 3, 4, 5, 6}, 2, 3).unsqueeze(0);
    torch::Tensor map = torch::tensor({0.0f, 0.9f, 1.0f, 0.1f, 0.2f, 0.3f}).reshape({1, 2, 3});
    torch::Generator g = at::detail::createCPUGenerator(0);
    std::vector<double> morf = road_change(model, x, map, {0}, 70, true, 0.0, g, ScoreOutput::kLogit);
    EXPECT_NEAR(morf[0], 3 * (25 - 21), 1e-4);
    // Least relevant first is most relevant first on 1 - map.
    std::vector<double> lerf = road_change(model, x, map, {0}, 70, false, 0.0, g, ScoreOutput::kLogit);
    std::vector<double> flipped = road_change(model, x, 1 - map, {0}, 70, true, 0.0, g, ScoreOutput::kLogit);
    EXPECT_DOUBLE_EQ(lerf[0], flipped[0]);
}

TEST(Road, EveryPixelRemovedTakesTheMinimumNormSolution) {
    // A constant map, or one that is zero on more than p % of the pixels, puts the percentile
    // threshold at the minimum, so cam < threshold keeps nothing. The system is then singular;
    // both solvers give its minimum-norm solution, 0, instead of failing.
    torch::Tensor img = torch::tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}).reshape({1, 2, 3});
    torch::Tensor none = torch::zeros({2, 3});
    EXPECT_TRUE(torch::equal(road_impute(img, none, 0.0), torch::zeros({1, 2, 3})));
    EXPECT_TRUE(torch::equal(road_impute_dense(img, none), torch::zeros({1, 2, 3})));
    Classifier model = sum_model();
    torch::Tensor x = image({1, 2, 3, 4, 5, 6}, 2, 3).unsqueeze(0);
    torch::Generator g = at::detail::createCPUGenerator(0);
    torch::Tensor flat = torch::full({1, 2, 3}, 0.5f);
    std::vector<double> morf = road_change(model, x, flat, {0}, 50, true, 0.0, g, ScoreOutput::kLogit);
    EXPECT_NEAR(morf[0], -3 * 21.0, 1e-4);  // every channel's sum 21 -> 0
    // Zero on 4 of 6 pixels: at p = 50 the threshold is 0 and again nothing is kept.
    torch::Tensor sparse = torch::tensor({0.f, 0.f, 0.f, 0.f, 0.5f, 1.f}).reshape({1, 2, 3});
    morf = road_change(model, x, sparse, {0}, 50, true, 0.0, g, ScoreOutput::kLogit);
    EXPECT_NEAR(morf[0], -3 * 21.0, 1e-4);
    EXPECT_TRUE(std::isfinite(morf[0]));
}

TEST(ScoreCli, MapOfAnotherSizeIsOneLine) {
    fs::path dir = test::scratch_dir("score_cli");
    Classifier model = sum_model();
    cv::Mat img(8, 8, CV_8UC3, cv::Scalar(10, 20, 30));
    write_image_rgb(dir / "a.png", img);
    fs::create_directories(dir / "maps");
    write_npy_f32(dir / "maps" / "a.gradcam.0.npy", {4, 4}, std::vector<float>(16, 0.5f).data());
    write_file_atomic(dir / "maps" / "summary.json",
                      R"({"items": [{"stem": "a", "method": "gradcam", "class": 0, "map": "a.gradcam.0.npy"}]})");
    test::CommandResult r = test::run_sightline(fmt::format("score --model {} --input {} --maps {} --mean 0,0,0 --std 1,1,1",
                                                            model.path().string(), (dir / "a.png").string(),
                                                            (dir / "maps").string()));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, fmt::format("sightline: error: {}: map is 4x4 but the image is 8x8; maps must have the image's size\n",
                                 (dir / "maps" / "a.gradcam.0.npy").string() + " (for " + (dir / "a.png").string() + ")"));
}
