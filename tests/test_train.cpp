// Classifier training pieces: the batch loader, objectives, metrics and schedules.
// Architectures: test_train_arch.cpp; training runs and resume: test_train_run.cpp; the
// command line: test_train_cli.cpp.
#include <cmath>
#include <numeric>
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "sightline/train.hpp"
#include "test_support.hpp"
#include "test_train_toy.hpp"

using namespace sightline;
using test::ToyDataset;

namespace {

LoaderOptions toy_loader(int workers = 2) {
    LoaderOptions o;
    o.batch_size = 4;
    o.input_size = 16;
    o.workers = workers;
    o.augment = true;
    o.augment_options.crop = true;
    return o;
}

std::vector<Batch> epoch(BatchLoader& loader, int64_t e, int64_t first = 0) {
    std::vector<Batch> out;
    loader.start_epoch(e, first);
    while (auto b = loader.next()) out.push_back(std::move(*b));
    return out;
}

}  // namespace

TEST(Loader, BatchesDoNotDependOnWorkerCount) {
    ToyDataset data(18);
    BatchLoader one(data, toy_loader(1)), three(data, toy_loader(3));
    for (int64_t e : {0, 1}) {
        std::vector<Batch> a = epoch(one, e), b = epoch(three, e);
        ASSERT_EQ(a.size(), 4u);  // 18 / 4, last partial batch dropped
        ASSERT_EQ(a.size(), b.size());
        for (std::size_t i = 0; i < a.size(); ++i) {
            EXPECT_EQ(a[i].index, static_cast<int64_t>(i));
            EXPECT_EQ(a[i].samples, b[i].samples);
            EXPECT_TRUE(torch::equal(a[i].images, b[i].images));
            EXPECT_TRUE(torch::equal(a[i].targets, b[i].targets));
        }
    }
}

TEST(Loader, ShardsSplitEveryBatchInRankOrder) {
    // Data-parallel ranks: rank r builds rows [r B/n, (r+1) B/n) of each single-process batch,
    // with the same pixels (augmentation is drawn per sample).
    ToyDataset data(18);
    LoaderOptions options = toy_loader(2);
    options.augment = true;
    BatchLoader whole(data, options);
    LoaderOptions first = options, second = options;
    first.shard_count = second.shard_count = 2;
    second.shard_index = 1;
    BatchLoader rank0(data, first), rank1(data, second);
    std::vector<Batch> a = epoch(whole, 1), b0 = epoch(rank0, 1), b1 = epoch(rank1, 1);
    ASSERT_EQ(b0.size(), a.size());
    ASSERT_EQ(b1.size(), a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(b0[i].index, a[i].index);
        std::vector<std::size_t> joined = b0[i].samples;
        joined.insert(joined.end(), b1[i].samples.begin(), b1[i].samples.end());
        EXPECT_EQ(joined, a[i].samples);
        EXPECT_TRUE(torch::equal(torch::cat({b0[i].images, b1[i].images}), a[i].images));
        EXPECT_TRUE(torch::equal(torch::cat({b0[i].targets, b1[i].targets}), a[i].targets));
    }
    LoaderOptions uneven = first;
    uneven.batch_size = 3;
    EXPECT_EQ(test::message_of([&] { BatchLoader bad(data, uneven); }),
              "--batch 3 is not a multiple of the 2 processes: each takes an equal share of every batch");
}

TEST(Loader, EachEpochIsAPermutationAndEpochsDiffer) {
    ToyDataset data(12);
    BatchLoader loader(data, toy_loader());
    std::vector<std::size_t> seen;
    for (const Batch& b : epoch(loader, 0)) seen.insert(seen.end(), b.samples.begin(), b.samples.end());
    EXPECT_EQ(seen, loader.epoch_order(0));
    EXPECT_EQ(std::set<std::size_t>(seen.begin(), seen.end()).size(), 12u);
    EXPECT_NE(loader.epoch_order(0), loader.epoch_order(1));
    LoaderOptions other = toy_loader();
    other.seed = 2;
    BatchLoader reseeded(data, other);
    EXPECT_NE(loader.epoch_order(0), reseeded.epoch_order(0));
    // Restarting mid-epoch gives the same batches as the uninterrupted epoch.
    std::vector<Batch> full = epoch(loader, 3), tail = epoch(loader, 3, 1);
    ASSERT_EQ(tail.size(), 2u);
    EXPECT_TRUE(torch::equal(tail[0].images, full[1].images));
    EXPECT_TRUE(torch::equal(tail[1].targets, full[2].targets));
}

TEST(Loader, NormalisesLikeTheFormulaPixelByPixel) {
    // Slow twin of the fused multiply-add: (x / 255 - mean) / std with at().
    ToyDataset data(4);
    LoaderOptions o = toy_loader();
    o.augment = false;
    o.shuffle = false;
    BatchLoader loader(data, o);
    Batch b = epoch(loader, 0).at(0);
    ASSERT_EQ(b.images.sizes(), (std::vector<int64_t>{4, 3, 16, 16}));
    for (int r = 0; r < 4; ++r) {
        cv::Mat img = data.get(r).image;
        for (int c = 0; c < 3; ++c)
            for (int y = 0; y < 16; y += 5)
                for (int x = 0; x < 16; x += 3) {
                    double expected = (img.at<cv::Vec3b>(y, x)[c] / 255.0 - o.mean[c]) / o.std[c];
                    EXPECT_NEAR(b.images[r][c][y][x].item<double>(), expected, 1e-5);
                }
        torch::Tensor t = torch::zeros({3});
        for (int id : data.labels_of(r)) t[id - 1] = 1;
        EXPECT_TRUE(torch::equal(b.targets[r], t));
    }
}

TEST(Loader, ResizesToTheInputSize) {
    ToyDataset data(4, 20);
    LoaderOptions o = toy_loader();
    o.augment = false;
    o.input_size = 12;
    BatchLoader loader(data, o);
    EXPECT_EQ(epoch(loader, 0).at(0).images.sizes(), (std::vector<int64_t>{4, 3, 12, 12}));
}

TEST(Loader, MixupMixesImagesAndTargetsWithOneLambda) {
    ToyDataset data(8, 16, /*multi=*/true);
    LoaderOptions plain = toy_loader();
    plain.augment = false;
    LoaderOptions mixed = plain;
    mixed.mixup_alpha = 0.4;
    BatchLoader a(data, plain), b(data, mixed);
    std::vector<Batch> pa = epoch(a, 0), pb = epoch(b, 0);
    bool some_lambda_inside = false;
    for (std::size_t i = 0; i < pa.size(); ++i) {
        const Batch& x = pa[i];
        const Batch& m = pb[i];
        ASSERT_EQ(m.partner.size(), 4u);
        EXPECT_TRUE(m.mixup_lambda >= 0 && m.mixup_lambda <= 1);
        some_lambda_inside |= m.mixup_lambda > 0.01 && m.mixup_lambda < 0.99;
        auto partner = torch::tensor(std::vector<int64_t>(m.partner.begin(), m.partner.end()));
        double lam = m.mixup_lambda;
        EXPECT_TRUE(torch::allclose(m.images, lam * x.images + (1 - lam) * x.images.index_select(0, partner), 1e-5, 1e-5));
        EXPECT_TRUE(torch::allclose(m.targets, lam * x.targets + (1 - lam) * x.targets.index_select(0, partner), 1e-6, 1e-6));
    }
    EXPECT_TRUE(some_lambda_inside);
}

TEST(Loader, LabelOverrideReplacesTheSamplesLabels) {
    ToyDataset data(4);
    LoaderOptions o = toy_loader();
    o.shuffle = false;
    BatchLoader loader(data, o, {{3}, {3}, {1, 2}, {}});
    Batch b = epoch(loader, 0).at(0);
    EXPECT_TRUE(torch::equal(b.targets, torch::tensor({0.f, 0.f, 1.f, 0.f, 0.f, 1.f, 1.f, 1.f, 0.f, 0.f, 0.f, 0.f}).reshape({4, 3})));
}

TEST(Loader, WorkerErrorReachesTheConsumerWithTheFileName) {
    ToyDataset data(12, 16, false, /*fail_at=*/5);
    LoaderOptions o = toy_loader();
    o.shuffle = false;
    BatchLoader loader(data, o);
    loader.start_epoch(0);
    EXPECT_TRUE(loader.next().has_value());  // samples 0-3
    try {
        loader.next();
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "toy/5.png: cannot decode image");
    }
}

TEST(Loader, KeepsTheLastPartialBatchWhenAsked) {
    ToyDataset data(10);
    LoaderOptions o = toy_loader();
    o.drop_last = false;
    BatchLoader loader(data, o);
    std::vector<Batch> batches = epoch(loader, 0);
    ASSERT_EQ(batches.size(), 3u);
    EXPECT_EQ(batches[2].images.size(0), 2);
}

// ---- objectives and metrics ------------------------------------------------------------------

TEST(Objectives, CrossEntropyMatchesLibTorchWithAndWithoutSmoothing) {
    torch::manual_seed(3);
    torch::Tensor logits = torch::randn({5, 4}, torch::kDouble);
    torch::Tensor labels = torch::tensor({0, 3, 1, 1, 2}, torch::kLong);
    torch::Tensor onehot = torch::one_hot(labels, 4).to(torch::kDouble);
    namespace F = torch::nn::functional;
    for (double eps : {0.0, 0.1}) {
        double ours = classification_loss(Objective::kSingleLabel, logits, onehot, eps).item<double>();
        double theirs = F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().label_smoothing(eps)).item<double>();
        EXPECT_NEAR(ours, theirs, 1e-12) << eps;
    }
}

TEST(Objectives, MultiLabelSoftMarginMatchesLibTorch) {
    torch::manual_seed(4);
    torch::Tensor logits = torch::randn({6, 3}, torch::kDouble) * 3;
    torch::Tensor targets = (torch::rand({6, 3}, torch::kDouble) > 0.5).to(torch::kDouble);
    double ours = classification_loss(Objective::kMultiLabel, logits, targets).item<double>();
    double theirs = torch::nn::functional::multilabel_soft_margin_loss(logits, targets).item<double>();
    EXPECT_NEAR(ours, theirs, 1e-12);
}

TEST(Objectives, SoftTargetsAreTheMixOfTheLosses) {
    // Mixup's target mix is exact for cross-entropy: loss is linear in the target.
    torch::manual_seed(5);
    torch::Tensor logits = torch::randn({3, 4}, torch::kDouble);
    torch::Tensor a = torch::one_hot(torch::tensor({0, 1, 2}), 4).to(torch::kDouble);
    torch::Tensor b = torch::one_hot(torch::tensor({3, 3, 0}), 4).to(torch::kDouble);
    double mixed = classification_loss(Objective::kSingleLabel, logits, 0.3 * a + 0.7 * b).item<double>();
    double parts = 0.3 * classification_loss(Objective::kSingleLabel, logits, a).item<double>() +
                   0.7 * classification_loss(Objective::kSingleLabel, logits, b).item<double>();
    EXPECT_NEAR(mixed, parts, 1e-12);
}

TEST(Metrics, AveragePrecisionKnownAnswers) {
    // Ranks 1 and 3 are positive: (1/1 + 2/3) / 2.
    EXPECT_NEAR(average_precision(torch::tensor({0.9, 0.8, 0.7, 0.6}), torch::tensor({1, 0, 1, 0})), (1 + 2.0 / 3) / 2, 1e-12);
    EXPECT_DOUBLE_EQ(average_precision(torch::tensor({0.1, 0.8, 0.7}), torch::tensor({0, 1, 1})), 1.0);
    EXPECT_TRUE(std::isnan(average_precision(torch::tensor({0.1, 0.2}), torch::tensor({0, 0}))));
    // mAP skips the class without positives: mean of 1.0 and 0.5.
    torch::Tensor scores = torch::tensor({0.9, 0.1, 0.5, 0.2, 0.8, 0.3}).reshape({3, 2});
    torch::Tensor targets = torch::tensor({1, 0, 0, 0, 0, 0}).reshape({3, 2});
    EXPECT_DOUBLE_EQ(mean_average_precision(scores, targets), 1.0);
    targets = torch::tensor({1, 0, 0, 1, 0, 0}).reshape({3, 2});  // class 2: positive ranked 2nd of 3
    EXPECT_DOUBLE_EQ(mean_average_precision(scores, targets), (1.0 + 0.5) / 2);
}

TEST(Metrics, AveragePrecisionAgreesWithBruteForceDefinition) {
    // Slow twin: AP = sum over thresholds of precision * recall increment.
    torch::manual_seed(6);
    for (int trial = 0; trial < 5; ++trial) {
        torch::Tensor s = torch::rand({30}, torch::kDouble), p = (torch::rand({30}) > 0.6).to(torch::kDouble);
        if (p.sum().item<double>() == 0) continue;
        double total = p.sum().item<double>(), ap = 0, prev_recall = 0;
        std::vector<int64_t> order(30);
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return s[a].item<double>() > s[b].item<double>(); });
        double tp = 0;
        for (int k = 0; k < 30; ++k) {
            tp += p[order[k]].item<double>();
            double recall = tp / total, precision = tp / (k + 1);
            ap += precision * (recall - prev_recall);
            prev_recall = recall;
        }
        EXPECT_NEAR(average_precision(s, p), ap, 1e-12);
    }
}

TEST(Metrics, TopOneAccuracyCountsLabelledRowsOnly) {
    torch::Tensor logits = torch::tensor({2.0, 1.0, 0.0, 1.0, 1.0, 3.0, 5.0, 0.0}).reshape({4, 2});
    torch::Tensor targets = torch::tensor({1, 0, 1, 0, 0, 0, 1, 1}).reshape({4, 2});
    // Row 0 right, row 1 wrong (top is class 1), row 2 unlabelled, row 3 right (multi-label).
    EXPECT_DOUBLE_EQ(top1_accuracy(logits, targets), 2.0 / 3.0);
}

// ---- schedules --------------------------------------------------------------------------------

TEST(Schedule, CosineAndPolyKnownValues) {
    ScheduleOptions s;
    s.base_lr = 0.1;
    s.total_steps = 100;
    EXPECT_DOUBLE_EQ(learning_rate(s, 0), 0.1);
    EXPECT_NEAR(learning_rate(s, 50), 0.05, 1e-12);
    EXPECT_NEAR(learning_rate(s, 25), 0.05 * (1 + std::cos(M_PI / 4)), 1e-12);
    EXPECT_NEAR(learning_rate(s, 100), 0.0, 1e-12);
    s.kind = ScheduleKind::kPoly;
    EXPECT_NEAR(learning_rate(s, 50), 0.1 * std::pow(0.5, 0.9), 1e-12);
    s.warmup_steps = 10;
    EXPECT_NEAR(learning_rate(s, 0), 0.01, 1e-12);
    EXPECT_NEAR(learning_rate(s, 9), 0.1, 1e-12);
    EXPECT_NEAR(learning_rate(s, 10), 0.1, 1e-12);
    EXPECT_NEAR(learning_rate(s, 55), 0.1 * std::pow(0.5, 0.9), 1e-12);
}

TEST(ShuffleLabels, IsASeededPermutationOfTheLabelLists) {
    std::vector<std::vector<int>> labels;
    for (int i = 0; i < 40; ++i) labels.push_back({i % 4 + 1});
    auto a = shuffle_labels(labels, 1), b = shuffle_labels(labels, 1), c = shuffle_labels(labels, 2);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, labels);
    EXPECT_NE(a, c);
    auto sorted = a;
    std::sort(sorted.begin(), sorted.end());
    auto original = labels;
    std::sort(original.begin(), original.end());
    EXPECT_EQ(sorted, original);
}
