// The weakly supervised objectives (wsss_objectives.hpp): known answers of every loss term on
// hand-made tensors, slow twins, k-means and SC-CAM labels, tiny training runs per objective with
// exact resume, and the errors of bad options.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "sightline/train.hpp"
#include "sightline/wsss_objectives.hpp"
#include "test_support.hpp"
#include "saved_weights.hpp"
#include "test_train_toy.hpp"

using namespace sightline;
using test::message_of;
using test::ToyDataset;

namespace {

torch::Tensor t(std::vector<float> v, std::vector<int64_t> shape) { return torch::tensor(v).reshape(shape); }

}  // namespace

// ---- Puzzle-CAM ---------------------------------------------------------------------------------

TEST(PuzzleCam, TilesAreTileMajorInReadingOrder) {
    torch::Tensor x = torch::arange(2 * 1 * 4 * 4, torch::kFloat).reshape({2, 1, 4, 4});
    torch::Tensor tiles = puzzle_tile(x);
    ASSERT_EQ(tiles.sizes(), (std::vector<int64_t>{8, 1, 2, 2}));
    // Image 0 is 0..15 row-major: top-left {0,1,4,5}, top-right {2,3,6,7}, bottom-left {8,9,12,13}.
    EXPECT_TRUE(torch::equal(tiles[0], t({0, 1, 4, 5}, {1, 2, 2})));
    EXPECT_TRUE(torch::equal(tiles[1], t({16, 17, 20, 21}, {1, 2, 2})));  // image 1's top-left
    EXPECT_TRUE(torch::equal(tiles[2], t({2, 3, 6, 7}, {1, 2, 2})));
    EXPECT_TRUE(torch::equal(tiles[4], t({8, 9, 12, 13}, {1, 2, 2})));
    EXPECT_TRUE(torch::equal(tiles[7], t({26, 27, 30, 31}, {1, 2, 2})));  // image 1's bottom-right
}

TEST(PuzzleCam, MergeUndoesTileExactly) {
    torch::Tensor x = torch::randn({3, 5, 6, 8});
    EXPECT_TRUE(torch::equal(puzzle_merge(puzzle_tile(x)), x));
    torch::Tensor tiles = torch::randn({12, 2, 3, 3});
    EXPECT_TRUE(torch::equal(puzzle_tile(puzzle_merge(tiles)), tiles));
}

TEST(PuzzleCam, OddSidesAreRefused) {
    const auto message = [](const std::function<void()>& f) -> std::string {
        try {
            f();
        } catch (const c10::Error& e) {
            return e.what_without_backtrace();
        }
        return "(no error)";
    };
    EXPECT_EQ(message([] { puzzle_tile(torch::zeros({1, 1, 5, 4})); }),
              "puzzle_tile: expected [B,C,H,W] with even H and W, got [1, 1, 5, 4]");
    EXPECT_EQ(message([] { puzzle_tile(torch::zeros({1, 1, 4, 3})); }),
              "puzzle_tile: expected [B,C,H,W] with even H and W, got [1, 1, 4, 3]");
    EXPECT_EQ(message([] { puzzle_tile(torch::zeros({1, 4, 4})); }),
              "puzzle_tile: expected [B,C,H,W] with even H and W, got [1, 4, 4]");
    EXPECT_EQ(message([] { puzzle_merge(torch::zeros({3, 1, 2, 2})); }), "puzzle_merge: expected [4B,C,h,w], got [3, 1, 2, 2]");
    EXPECT_EQ(message([] { puzzle_tile(torch::zeros({1, 1, 4, 4})); }), "(no error)");
}

TEST(PuzzleCam, ReconstructionLossKnownAnswer) {
    // Two classes, 1x2 maps: |F - F_re| = [1, 0] for class 1 and [0, 4] for class 2.
    torch::Tensor full = t({1, 2, 3, 5}, {1, 2, 1, 2}), merged = t({0, 2, 3, 1}, {1, 2, 1, 2});
    // Only labelled classes count, but the mean divides by all 4 entries (reference code).
    EXPECT_FLOAT_EQ(puzzle_reconstruction_loss(full, merged, t({1, 0}, {1, 2})).item<float>(), 0.25f);
    EXPECT_FLOAT_EQ(puzzle_reconstruction_loss(full, merged, t({0, 1}, {1, 2})).item<float>(), 1.0f);
    EXPECT_FLOAT_EQ(puzzle_reconstruction_loss(full, merged, t({1, 1}, {1, 2})).item<float>(), 1.25f);
    EXPECT_FLOAT_EQ(puzzle_reconstruction_loss(full, merged, t({0, 0}, {1, 2})).item<float>(), 0.0f);
}

TEST(PuzzleCam, ReconstructionLossGradientIsTheSignOverTheCount) {
    torch::Tensor full = t({1, 2, 3, 5}, {1, 2, 1, 2}).set_requires_grad(true);
    puzzle_reconstruction_loss(full, t({0, 2, 3, 1}, {1, 2, 1, 2}), t({1, 1}, {1, 2})).backward();
    // d/dF mean |F - F_re| = sign(F - F_re) / 4 (0 where equal, as torch's abs).
    EXPECT_TRUE(torch::allclose(full.grad(), t({0.25f, 0, 0, 0.25f}, {1, 2, 1, 2})));
}

TEST(PuzzleCam, AlphaRampsLinearlyOverTheFirstHalf) {
    EXPECT_DOUBLE_EQ(puzzle_alpha(4.0, 0.5, 0, 100), 0.0);
    EXPECT_DOUBLE_EQ(puzzle_alpha(4.0, 0.5, 10, 100), 0.8);
    EXPECT_DOUBLE_EQ(puzzle_alpha(4.0, 0.5, 25, 100), 2.0);
    EXPECT_DOUBLE_EQ(puzzle_alpha(4.0, 0.5, 50, 100), 4.0);
    EXPECT_DOUBLE_EQ(puzzle_alpha(4.0, 0.5, 99, 100), 4.0);
    EXPECT_DOUBLE_EQ(puzzle_alpha(4.0, 1.0, 50, 100), 2.0);
    EXPECT_DOUBLE_EQ(puzzle_alpha(4.0, 0.0, 0, 100), 4.0);  // no ramp
}

// ---- Mixup-CAM ----------------------------------------------------------------------------------

TEST(MixupCam, SoftMarginLossIsLinearInTheMixedLabels) {
    // Mixing labels with lambda mixes the multi-label soft margin loss with lambda.
    torch::Tensor z = t({1.5f, -0.5f, 0.2f}, {1, 3});
    torch::Tensor y1 = t({1, 0, 0}, {1, 3}), y2 = t({0, 1, 1}, {1, 3});
    const double lam = 0.3;
    double mixed = classification_loss(Objective::kMultiLabel, z, lam * y1 + (1 - lam) * y2).item<double>();
    double parts = lam * classification_loss(Objective::kMultiLabel, z, y1).item<double>() +
                   (1 - lam) * classification_loss(Objective::kMultiLabel, z, y2).item<double>();
    EXPECT_NEAR(mixed, parts, 1e-6);
    // Known value for one class: -[0.3 log s(1.5) + 0.7 log s(-1.5)].
    double s = 1.0 / (1.0 + std::exp(-1.5));
    EXPECT_NEAR(classification_loss(Objective::kMultiLabel, t({1.5f}, {1, 1}), t({0.3f}, {1, 1})).item<double>(),
                -(0.3 * std::log(s) + 0.7 * std::log(1 - s)), 1e-6);
}

TEST(MixupCam, EntropyKnownAnswers) {
    EXPECT_NEAR(sigmoid_entropy(torch::zeros({2, 3})).item<double>(), std::log(2.0), 1e-6);
    // p = 0.75 at z = log 3: -(0.75 log 0.75 + 0.25 log 0.25).
    const double h = -(0.75 * std::log(0.75) + 0.25 * std::log(0.25));
    EXPECT_NEAR(sigmoid_entropy(t({std::log(3.0f), -std::log(3.0f)}, {1, 2})).item<double>(), h, 1e-6);
    EXPECT_NEAR(sigmoid_entropy(t({std::log(3.0f), 0.0f}, {1, 2})).item<double>(), (h + std::log(2.0)) / 2, 1e-6);
    EXPECT_LT(sigmoid_entropy(t({40.0f, -40.0f}, {1, 2})).item<double>(), 1e-12);  // no NaN at saturation
}

TEST(MixupCam, ConcentrationKnownAnswers) {
    // Two positions with orthogonal unit features and equal response: m = (0.5, 0.5) and each
    // |f - m|^2 = 0.5, so the weighted spread is 0.5 (up to the 1e-5 in the normaliser).
    torch::Tensor a = t({1, 0, 0, 1}, {1, 2, 1, 2});  // channel 0 = (1, 0), channel 1 = (0, 1)
    torch::Tensor f = t({2, 2}, {1, 1, 1, 2});
    EXPECT_NEAR(feature_concentration_loss(a, f, t({1}, {1, 1})).item<double>(), 0.5, 1e-4);
    // All response on one position: no spread.
    EXPECT_NEAR(feature_concentration_loss(a, t({3, -1}, {1, 1, 1, 2}), t({1}, {1, 1})).item<double>(), 0.0, 1e-5);
    // Same feature everywhere: no spread whatever the response.
    torch::Tensor same = t({1, 1, 1, 1}, {1, 2, 1, 2});
    EXPECT_NEAR(feature_concentration_loss(same, f, t({1}, {1, 1})).item<double>(), 0.0, 1e-5);
    // No labelled class: zero.
    EXPECT_EQ(feature_concentration_loss(a, f, t({0}, {1, 1})).item<double>(), 0.0);
}

TEST(MixupCam, ConcentrationCannotBeLoweredBySuppressingTheResponse) {
    // Regression: with a gradient through the response R, the way down was to push every class
    // map below 0 (R = 0, term 0): trained from scratch, Mixup-CAM ended with no positive
    // class-map entry, i.e. empty CAMs. The term must only move the features.
    torch::manual_seed(5);
    torch::Tensor a = torch::relu(torch::randn({2, 4, 3, 5})).set_requires_grad(true);
    torch::Tensor f = torch::randn({2, 3, 3, 5}).set_requires_grad(true);
    torch::Tensor y = t({1, 0, 1, 0, 1, 1}, {2, 3});
    torch::Tensor loss = feature_concentration_loss(a, f, y);
    ASSERT_GT(loss.item<double>(), 0.05);
    loss.backward();
    EXPECT_TRUE(!f.grad().defined() || f.grad().abs().max().item<double>() == 0.0);
    ASSERT_TRUE(a.grad().defined());
    EXPECT_GT(a.grad().abs().max().item<double>(), 0.0);
    // A response pushed below zero everywhere would have scored 0; the term does not reward it
    // through the gradient (checked above), and the value of the suppressed map is 0 as before.
    EXPECT_NEAR(feature_concentration_loss(a, -torch::relu(f.detach()), y).item<double>(), 0.0, 1e-6);
}

TEST(MixupCam, ConcentrationMatchesPlainLoops) {
    // Slow twin: the expanded formula against the definition, term by term.
    torch::manual_seed(3);
    torch::Tensor a = torch::relu(torch::randn({2, 4, 3, 5})), f = torch::randn({2, 3, 3, 5});
    torch::Tensor y = t({1, 0, 0.4f, 0, 0, 1}, {2, 3});
    double sum = 0.0;
    int count = 0;
    for (int b = 0; b < 2; ++b)
        for (int k = 0; k < 3; ++k) {
            if (y[b][k].item<float>() <= 0) continue;
            torch::Tensor r = torch::relu(f[b][k]).flatten();
            r = r / (r.sum() + 1e-5);
            torch::Tensor feat = a[b].reshape({4, -1});
            torch::Tensor unit = feat / feat.norm(2, 0, true).clamp_min(1e-12);
            torch::Tensor m = torch::zeros({4});
            for (int u = 0; u < 15; ++u) m += r[u] * unit.select(1, u);
            double term = 0.0;
            for (int u = 0; u < 15; ++u)
                term += r[u].item<double>() * (unit.select(1, u) - m).pow(2).sum().item<double>();
            sum += term;
            ++count;
        }
    EXPECT_NEAR(feature_concentration_loss(a, f, y).item<double>(), sum / count, 1e-5);
}

// ---- SC-CAM -------------------------------------------------------------------------------------

TEST(SubCategory, KMeansSeparatesThreeBlobs) {
    // Three tight blobs of 5 points, far apart, in a shuffled order.
    std::vector<float> v;
    const float centres[3][2] = {{0, 0}, {10, 0}, {0, 10}};
    const int blob[15] = {2, 0, 1, 1, 2, 0, 0, 2, 1, 0, 2, 1, 1, 0, 2};
    for (int i = 0; i < 15; ++i)
        v.insert(v.end(), {centres[blob[i]][0] + 0.1f * (i % 3), centres[blob[i]][1] - 0.1f * (i % 2)});
    KMeansOptions o;
    o.k = 3;
    KMeansResult r = kmeans(t(v, {15, 2}), o);
    ASSERT_EQ(r.assignment.size(), 15u);
    for (int i = 0; i < 15; ++i)
        for (int j = 0; j < 15; ++j) EXPECT_EQ(blob[i] == blob[j], r.assignment[i] == r.assignment[j]) << i << " " << j;
    EXPECT_LT(r.inertia, 0.5);
    EXPECT_EQ(kmeans(t(v, {15, 2}), o).assignment, r.assignment);  // deterministic per seed
}

TEST(SubCategory, KMeansWithFewerPointsThanClusters) {
    KMeansOptions o;
    o.k = 10;
    KMeansResult r = kmeans(t({0, 0, 5, 5}, {2, 2}), o);
    EXPECT_EQ(r.centres.size(0), 2);
    EXPECT_NE(r.assignment[0], r.assignment[1]);
    EXPECT_DOUBLE_EQ(r.inertia, 0.0);
}

TEST(SubCategory, AssignmentsAndTargetsPerClass) {
    // Images 0-3 hold class 1; features split them {0,1} | {2,3}. Images 2,3,4 hold class 2;
    // image 5 holds class 3 alone. Class 4 appears nowhere.
    torch::Tensor features = t({0, 0, 0, 1, 9, 9, 9, 8, 50, 50, -7, 3}, {6, 2});
    std::vector<std::vector<int>> labels = {{1}, {1}, {1, 2}, {1, 2}, {2}, {3}};
    KMeansOptions o;
    o.k = 2;
    auto a = subcategory_assignments(features, labels, 4, o);
    ASSERT_EQ(a.size(), 6u);
    EXPECT_EQ(a[0][0], a[1][0]);
    EXPECT_EQ(a[2][0], a[3][0]);
    EXPECT_NE(a[0][0], a[2][0]);
    EXPECT_EQ(a[2][1], a[3][1]);  // (9,9), (9,8) together, (50,50) alone
    EXPECT_NE(a[2][1], a[4][1]);
    EXPECT_EQ(a[5][2], 0);        // one image: one cluster
    for (int i = 0; i < 6; ++i) {
        EXPECT_EQ(a[i][3], -1);
        for (int c = 1; c <= 3; ++c) {
            bool holds = std::find(labels[i].begin(), labels[i].end(), c) != labels[i].end();
            EXPECT_EQ(a[i][c - 1] >= 0, holds) << i << " " << c;
        }
    }
    torch::Tensor targets = subcategory_targets(a, 4, 2);
    ASSERT_EQ(targets.sizes(), (std::vector<int64_t>{6, 8}));
    // One bit per held class, at (class - 1) * k + cluster.
    EXPECT_EQ(targets[2].sum().item<float>(), 2.0f);
    EXPECT_EQ(targets[2][0 * 2 + a[2][0]].item<float>(), 1.0f);
    EXPECT_EQ(targets[2][1 * 2 + a[2][1]].item<float>(), 1.0f);
    EXPECT_EQ(targets[5][2 * 2 + 0].item<float>(), 1.0f);
    EXPECT_EQ(targets.slice(1, 6).sum().item<float>(), 0.0f);
    EXPECT_EQ(message_of([&] { subcategory_targets({{0, 2, -1, -1}}, 4, 2); }),
              "subcategory_targets: image 0 class 2 has cluster 2, expected -1 .. 1");
}

// ---- training runs ------------------------------------------------------------------------------

namespace {

TrainOptions objective_run(const fs::path& out, const std::string& objective) {
    TrainOptions o;
    o.data = "toy";
    o.out = out;
    o.width = 4;
    o.epochs = 2;
    o.batch = 4;
    o.lr = 0.05;
    o.workers = 2;
    o.jitter = false;
    for (const auto& [name, value] : objective_choices())
        if (name == objective) o.objective = value;
    o.subcategory_k = 2;
    o.subcategory_rounds = 1;
    return o;
}

using test::same_weights;

std::vector<nlohmann::json> metrics_of(const fs::path& run) {
    std::vector<nlohmann::json> lines;
    std::istringstream in(read_file(run / "metrics.jsonl"));
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
}

class ObjectiveRun : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(ObjectiveRun, TrainsSavesAStandardClassifierAndResumesExactly) {
    // 16 multi-label toy images, batch 4: 4 steps per epoch. SC-CAM: a CAM round and one
    // sub-category round of 2 epochs each.
    const std::string objective = GetParam();
    const bool sc = objective == "subcategory";
    ToyDataset train(16, 16, /*multi=*/true);
    fs::path whole = test::scratch_dir("whole"), parts = test::scratch_dir("parts");
    TrainOptions o = objective_run(whole, objective);
    TrainSetup setup;
    TrainResult r = train_classifier(train, {}, o, {}, [&](const TrainSetup& s) { setup = s; });
    EXPECT_EQ(setup.objective, Objective::kMultiLabel);
    EXPECT_EQ(r.epochs_done, sc ? 4 : 2);
    std::vector<nlohmann::json> a = metrics_of(whole);
    ASSERT_EQ(a.size(), sc ? 4u : 2u);
    for (const auto& line : a) EXPECT_TRUE(std::isfinite(line["loss"].get<double>())) << line;

    // The saved model is a plain classifier: features -> [B,C,2,2], head -> 3 parent logits.
    torch::jit::Module model = torch::jit::load(r.model.string());
    torch::Tensor x = torch::randn({2, 3, 16, 16});
    torch::Tensor feats = model.get_method("features")({x}).toTensor();
    EXPECT_EQ(feats.dim(), 4);
    EXPECT_EQ(model.get_method("head")({feats}).toTensor().sizes(), (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(model.forward({x}).toTensor().sizes(), (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(model.named_parameters(true).size(),
              build_architecture(o.arch, {3, 16, 4, {1, 1, 1, 1}, 8, 128, 1}).named_parameters(true).size());

    // Stop inside an epoch (SC-CAM: inside the sub-category round), resume, same bits.
    o.out = parts;
    int steps = 0;
    const int stop_at = sc ? 11 : 6;  // epoch 3 step 3 / epoch 2 step 2
    TrainCallbacks stop{nullptr, nullptr, [&] { return ++steps == stop_at; }};
    TrainResult first = train_classifier(train, {}, o, stop);
    ASSERT_TRUE(first.interrupted);
    o.resume = true;
    train_classifier(train, {}, o);
    EXPECT_TRUE(same_weights(whole / "model.pt", parts / "model.pt")) << objective;
    std::vector<nlohmann::json> b = metrics_of(parts);
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i]["loss"], b[i]["loss"]) << objective << " epoch " << i;
}

INSTANTIATE_TEST_SUITE_P(Objectives, ObjectiveRun, ::testing::Values("cam", "puzzle", "mixup", "subcategory"));

TEST(ObjectiveRuns, SubCategoryResumesAcrossTheRoundBoundary) {
    // Stopped after the CAM round: the resume clusters with the loaded model, as the whole run did.
    ToyDataset train(16, 16, /*multi=*/true);
    fs::path whole = test::scratch_dir("whole"), parts = test::scratch_dir("parts");
    TrainOptions o = objective_run(whole, "subcategory");
    train_classifier(train, {}, o);
    o.out = parts;
    o.stop_after_epoch = 2;
    ASSERT_TRUE(train_classifier(train, {}, o).interrupted);
    o.stop_after_epoch = 0;
    o.resume = true;
    train_classifier(train, {}, o);
    EXPECT_TRUE(same_weights(whole / "model.pt", parts / "model.pt"));
}

TEST(ObjectiveRuns, ObjectivesChangeTheTraining) {
    // Each objective's extra terms move the weights away from the plain CAM run of the same seed.
    ToyDataset train(16, 16, /*multi=*/true);
    std::map<std::string, fs::path> runs;
    for (const std::string objective : {"cam", "puzzle", "mixup"}) {
        TrainOptions o = objective_run(test::scratch_dir(objective), objective);
        o.epochs = 1;
        runs[objective] = train_classifier(train, {}, o).model;
    }
    EXPECT_FALSE(same_weights(runs["cam"], runs["puzzle"]));
    EXPECT_FALSE(same_weights(runs["cam"], runs["mixup"]));
}

TEST(ObjectiveRuns, PuzzleWithZeroAlphaIsClassificationOfImageAndTiles) {
    // With alpha 0 the loss is L_cls + L_p-cls only: the first step's loss is their sum, which
    // differs from the plain loss (checked through the first epoch's mean loss being larger).
    ToyDataset train(8, 16, /*multi=*/true);
    TrainOptions cam = objective_run(test::scratch_dir("cam"), "cam"), puzzle = cam;
    cam.epochs = puzzle.epochs = 1;
    cam.lr = puzzle.lr = 1e-9;  // (almost) no learning: the losses are those of the initial model
    puzzle.out = test::scratch_dir("puzzle");
    puzzle.objective = WsssObjective::kPuzzle;
    puzzle.puzzle_alpha = 0;
    train_classifier(train, {}, cam);
    train_classifier(train, {}, puzzle);
    double l_cam = metrics_of(cam.out)[0]["loss"], l_puzzle = metrics_of(puzzle.out)[0]["loss"];
    EXPECT_GT(l_puzzle, 1.5 * l_cam);  // two soft-margin terms of similar size
    EXPECT_LT(l_puzzle, 2.5 * l_cam);
}

TEST(ObjectiveRunErrors, BadObjectiveOptions) {
    ToyDataset train(8, 16, true);
    TrainOptions o = objective_run(test::scratch_dir("bad"), "puzzle");
    o.arch = "resnet_flatten";
    EXPECT_EQ(message_of([&] { train_classifier(train, {}, o); }),
              "--objective puzzle needs class maps, i.e. a gap_linear architecture; --arch resnet_flatten has a "
              "flatten_linear head");
    o.arch = "resnet_gap";
    o.input_size = 24;
    EXPECT_EQ(message_of([&] { train_classifier(train, {}, o); }),
              "--objective puzzle needs an input side that is a multiple of 2 x the output stride (16), got 24");
    o.input_size = 0;
    o.mixup = 0.4;
    EXPECT_EQ(message_of([&] { train_classifier(train, {}, o); }),
              "--mixup works with --objective cam or mixup, not puzzle");
    o.mixup = 0;
    o.puzzle_ramp = 1.5;
    EXPECT_EQ(message_of([&] { train_classifier(train, {}, o); }), "--puzzle-ramp must be in [0, 1], got 1.5");
    o.puzzle_ramp = 0.5;
    o.objective = WsssObjective::kSubcategory;
    o.subcategory_rounds = 0;
    EXPECT_EQ(message_of([&] { train_classifier(train, {}, o); }), "--subcategory-rounds must be >= 1, got 0");
    EXPECT_TRUE(fs::is_empty(o.out));  // nothing written
}

TEST(ObjectiveRunErrors, ResumeWithAnotherObjective) {
    ToyDataset train(8, 16, true);
    TrainOptions o = objective_run(test::scratch_dir("run"), "puzzle");
    o.stop_after_epoch = 1;
    train_classifier(train, {}, o);
    o.stop_after_epoch = 0;
    o.resume = true;
    o.objective = WsssObjective::kMixup;
    const std::string path = (o.out / "checkpoint" / "checkpoint.pt").string();
    EXPECT_EQ(message_of([&] { train_classifier(train, {}, o); }),
              path + ": the checkpoint was made with --objective puzzle, this run has --objective mixup (resume with "
                     "the same options)");
}
