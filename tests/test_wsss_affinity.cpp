// Affinity propagation (sightline/affinity.hpp): PSA's pair set, cell pooling, the pair loss
// against hand-computed values, and the random walk against the paper's dense formula
// x T^t with T = A^beta / column sums.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "sightline/affinity.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace affinity_test {

// x T^steps with T the column-normalised A^beta over every pair of cells closer than the radius.
torch::Tensor dense_walk(const torch::Tensor& maps, const torch::Tensor& cells, const AffinityOptions& o) {
    const int64_t h = cells.size(1), w = cells.size(2), n = h * w;
    torch::Tensor f = cells.reshape({cells.size(0), n}).to(torch::kDouble);
    torch::Tensor a = torch::zeros({n, n}, torch::kDouble);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
            const int64_t dy = i / w - j / w, dx = i % w - j % w;
            if (dy * dy + dx * dx >= o.radius * o.radius) continue;
            const double d = (f.select(1, i) - f.select(1, j)).abs().mean().item<double>();
            a[i][j] = std::exp(-o.beta * d);
        }
    torch::Tensor t = a / a.sum(0, true);
    torch::Tensor x = maps.reshape({maps.size(0), n}).to(torch::kDouble);
    for (int64_t s = 0; s < o.steps; ++s) x = x.matmul(t);
    return x.view({maps.size(0), h, w}).to(torch::kFloat);
}

}  // namespace affinity_test

TEST(Affinity, OffsetsArePsasPairSetEachPairOnce) {
    auto offsets = affinity_offsets(5);
    EXPECT_EQ(offsets.size(), 34u);
    for (const auto& [dy, dx] : offsets) {
        EXPECT_LT(dy * dy + dx * dx, 25);
        EXPECT_TRUE(dy > 0 || (dy == 0 && dx > 0)) << dy << "," << dx;
    }
    EXPECT_EQ(affinity_offsets(2).size(), 4u);  // (0,1), (1,-1), (1,0), (1,1): the 8-neighbourhood, once
}

TEST(Affinity, CellLabelsKeepOnlyPureCells) {
    // 5 x 6 labels, cells of 2: the last row of cells is half outside the image, so unknown.
    torch::Tensor labels = torch::tensor({0, 0, 1, 1, 2, 2,
                                          0, 0, 1, 2, 2, 2,
                                          3, 3, 255, 255, 0, 0,
                                          3, 3, 255, 255, 0, 0,
                                          1, 1, 1, 1, 1, 1}, torch::kLong).view({1, 5, 6});
    torch::Tensor cells = cell_labels(labels, 2);
    torch::Tensor expected = torch::tensor({0, 255, 2, 3, 255, 0, 255, 255, 255}, torch::kLong).view({1, 3, 3});
    EXPECT_TRUE(torch::equal(cells, expected)) << cells;
}

TEST(Affinity, CellEmbeddingAveragesTheCellsOwnPixels) {
    torch::Tensor e = torch::arange(15, torch::kFloat).view({1, 1, 3, 5});
    torch::Tensor c = cell_embedding(e, 2);
    ASSERT_EQ(c.sizes(), (std::vector<int64_t>{1, 1, 2, 3}));
    EXPECT_FLOAT_EQ(c[0][0][0][0].item<float>(), (0 + 1 + 5 + 6) / 4.0f);
    EXPECT_FLOAT_EQ(c[0][0][0][2].item<float>(), (4 + 9) / 2.0f);   // last column: one pixel wide
    EXPECT_FLOAT_EQ(c[0][0][1][2].item<float>(), 14.0f);            // corner: one pixel
}

TEST(Affinity, LossIsPsasThreeTermsOnHandMadePairs) {
    // One row of three cells: f = 0, 0, 2 (mean over two equal channels), labels bg, bg, class 1.
    // Radius 2 has only the (0,1) offset: pair (0,1) is bg-bg at distance 0, pair (1,2) is
    // negative at distance 2.
    torch::Tensor f = torch::tensor({0.f, 0.f, 2.f, 0.f, 0.f, 2.f}).view({1, 2, 1, 3}).requires_grad_();
    torch::Tensor labels = torch::tensor({0, 0, 1}, torch::kLong).view({1, 1, 3});
    torch::Tensor loss = affinity_loss(f, labels, 2);
    const double neg = -std::log(1.0 - std::exp(-2.0) + 1e-5);
    EXPECT_NEAR(loss.item<double>(), 0.0 / 4 + 0.0 / 4 + neg / (1 + 1e-5) / 2, 1e-5);
    loss.backward();
    // The negative pair pulls cells 1 and 2 apart: the gradient on cell 2 is negative (raising
    // f_2 lowers the loss), on cell 1 positive.
    EXPECT_LT(f.grad()[0][0][0][2].item<float>(), 0.f);
    EXPECT_GT(f.grad()[0][0][0][1].item<float>(), 0.f);

    // Two object cells of the same class at distance 1: L_fg = 1, weighted 1/4; unknown cells
    // add no pair.
    torch::Tensor g = torch::tensor({1.f, 2.f, 0.f}).view({1, 1, 1, 3});
    torch::Tensor l2 = torch::tensor({4, 4, 255}, torch::kLong).view({1, 1, 3});
    EXPECT_NEAR(affinity_loss(g, l2, 2).item<double>(), 1.0 / (1 + 1e-5) / 4, 1e-6);
}

TEST(Affinity, WalkEqualsTheDenseTransitionMatrixFormula) {
    torch::manual_seed(3);
    torch::Tensor cells = torch::rand({3, 5, 6});
    torch::Tensor maps = torch::rand({2, 5, 6});
    AffinityOptions o;
    o.radius = 3;
    o.beta = 2.0;
    o.steps = 7;
    torch::Tensor walked = random_walk(maps, cells, o);
    torch::Tensor dense = affinity_test::dense_walk(maps, cells, o);
    EXPECT_LT((walked - dense).abs().max().item<double>(), 1e-5) << walked << dense;
}

TEST(Affinity, WalkFillsItsRegionAndNeverCrossesAZeroAffinityBoundary) {
    // Left half and right half of 8 x 8 cells are far apart in the embedding (a^beta = e^-100).
    torch::Tensor cells = torch::zeros({1, 8, 8});
    cells.index_put_({0, torch::indexing::Slice(), torch::indexing::Slice(4, 8)}, 10.0);
    torch::Tensor map = torch::zeros({1, 8, 8});
    map.index_put_({0, torch::indexing::Slice(2, 4), torch::indexing::Slice(1, 3)}, 1.0);  // a blob on the left
    AffinityOptions o;
    torch::Tensor walked = random_walk(map, cells, o);
    torch::Tensor left = walked.index({0, torch::indexing::Slice(), torch::indexing::Slice(0, 4)});
    torch::Tensor right = walked.index({0, torch::indexing::Slice(), torch::indexing::Slice(4, 8)});
    EXPECT_LT(right.abs().max().item<double>(), 1e-12);
    // 256 steps spread the blob over its whole region: nearly level, at its degree-weighted mean.
    EXPECT_LT((left.max() - left.min()).item<double>(), 0.02) << left;
    EXPECT_GT(left.min().item<double>(), 0.05);
}

TEST(Affinity, PropagatedCamsKeepTheImageSizeAndTheCamRange) {
    torch::manual_seed(4);
    torch::Tensor cams = torch::zeros({2, 10, 13});
    cams[0].index_put_({torch::indexing::Slice(2, 6), torch::indexing::Slice(3, 8)}, 0.8);
    torch::Tensor embedding = torch::rand({4, 10, 13});
    AffinityOptions o;
    torch::Tensor out = propagate_cams(cams, embedding, o);
    ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 10, 13}));
    EXPECT_NEAR(out[0].max().item<double>(), 1.0, 1e-4);
    EXPECT_GE(out.min().item<double>(), 0.0);
    EXPECT_EQ(out[1].abs().max().item<double>(), 0.0);  // an empty map stays empty
    EXPECT_EQ(propagate_cams(torch::zeros({0, 10, 13}), embedding, o).size(0), 0);
    EXPECT_THROW(propagate_cams(cams, torch::rand({4, 9, 13}), o), Error);
}

TEST(Affinity, BadOptionsNameTheFlag) {
    auto message = [](AffinityOptions o) { return test::message_of([&] { validate(o); }); };
    AffinityOptions o;
    o.radius = 1;
    EXPECT_NE(message(o).find("--radius"), std::string::npos);
    o = {};
    o.beta = 0;
    EXPECT_NE(message(o).find("--beta"), std::string::npos);
    o = {};
    o.stride = 0;
    EXPECT_NE(message(o).find("--cell"), std::string::npos);
    o = {};
    o.steps = 0;
    EXPECT_NE(message(o).find("--steps"), std::string::npos);
    o = {};
    o.embedding = 0;
    EXPECT_NE(message(o).find("--embedding"), std::string::npos);
}
