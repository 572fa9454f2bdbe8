// RoIAlign, NMS and batched NMS (torchvision's kernels, loaded from python3-torchvision) against
// plain-loop twins written here, their input checks, and the missing-library message.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "sightline/core.hpp"
#include "sightline/torchvision_ops.hpp"
#include "test_support.hpp"

using namespace sightline;
using sightline::test::message_of;

namespace {

// ---- RoIAlign twin: each output cell is a weighted sum of input pixels (its "taps") ----------

struct Tap {
    int64_t y, x;
    double weight;
};

// Bilinear interpolation at (y, x) as Mask R-CNN's RoIAlign defines it: zero beyond one pixel
// outside the map, coordinates clamped to the edge pixels otherwise.
void bilinear_taps(double y, double x, int64_t h, int64_t w, double scale, std::vector<Tap>& taps) {
    if (y < -1.0 || y > h || x < -1.0 || x > w) return;
    y = std::max(y, 0.0);
    x = std::max(x, 0.0);
    int64_t y0 = static_cast<int64_t>(y), x0 = static_cast<int64_t>(x), y1 = y0 + 1, x1 = x0 + 1;
    if (y0 >= h - 1) y0 = y1 = h - 1, y = static_cast<double>(y0);
    if (x0 >= w - 1) x0 = x1 = w - 1, x = static_cast<double>(x0);
    const double ly = y - y0, lx = x - x0;
    taps.push_back({y0, x0, scale * (1 - ly) * (1 - lx)});
    taps.push_back({y0, x1, scale * (1 - ly) * lx});
    taps.push_back({y1, x0, scale * ly * (1 - lx)});
    taps.push_back({y1, x1, scale * ly * lx});
}

// taps[(k * oh + i) * ow + j]: the average of grid x grid bilinear samples in bin (i, j) of box k.
std::vector<std::vector<Tap>> roi_align_taps(const std::vector<std::array<double, 5>>& boxes, int64_t h, int64_t w,
                                             double spatial_scale, int64_t oh, int64_t ow, int64_t sampling_ratio,
                                             bool aligned) {
    std::vector<std::vector<Tap>> taps(boxes.size() * oh * ow);
    const double shift = aligned ? 0.5 : 0.0;
    for (size_t k = 0; k < boxes.size(); ++k) {
        const double x1 = boxes[k][1] * spatial_scale - shift, y1 = boxes[k][2] * spatial_scale - shift;
        double bw = boxes[k][3] * spatial_scale - shift - x1, bh = boxes[k][4] * spatial_scale - shift - y1;
        if (!aligned) bw = std::max(bw, 1.0), bh = std::max(bh, 1.0);
        const double bin_h = bh / oh, bin_w = bw / ow;
        const int64_t gy = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(std::ceil(bh / oh));
        const int64_t gx = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(std::ceil(bw / ow));
        const double mean = 1.0 / std::max<int64_t>(gy * gx, 1);
        for (int64_t i = 0; i < oh; ++i)
            for (int64_t j = 0; j < ow; ++j)
                for (int64_t sy = 0; sy < gy; ++sy)
                    for (int64_t sx = 0; sx < gx; ++sx)
                        bilinear_taps(y1 + i * bin_h + (sy + 0.5) * bin_h / gy, x1 + j * bin_w + (sx + 0.5) * bin_w / gx,
                                      h, w, mean, taps[(k * oh + i) * ow + j]);
    }
    return taps;
}

torch::Tensor boxes_tensor(const std::vector<std::array<double, 5>>& boxes) {
    torch::Tensor t = torch::zeros({static_cast<int64_t>(boxes.size()), 5}, torch::kDouble);
    for (size_t k = 0; k < boxes.size(); ++k)
        for (int c = 0; c < 5; ++c) t[k][c] = boxes[k][c];
    return t;
}

torch::Tensor roi_align_twin(const torch::Tensor& input, const std::vector<std::array<double, 5>>& boxes,
                             double spatial_scale, int64_t oh, int64_t ow, int64_t sampling_ratio, bool aligned) {
    const int64_t c = input.size(1);
    const auto taps = roi_align_taps(boxes, input.size(2), input.size(3), spatial_scale, oh, ow, sampling_ratio, aligned);
    torch::Tensor out = torch::zeros({static_cast<int64_t>(boxes.size()), c, oh, ow}, torch::kDouble);
    auto in = input.accessor<double, 4>();
    auto o = out.accessor<double, 4>();
    for (size_t k = 0; k < boxes.size(); ++k)
        for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t i = 0; i < oh; ++i)
                for (int64_t j = 0; j < ow; ++j)
                    for (const Tap& t : taps[(k * oh + i) * ow + j])
                        o[k][ch][i][j] += t.weight * in[static_cast<int64_t>(boxes[k][0])][ch][t.y][t.x];
    return out;
}

// d(sum(out * grad_out)) / d input: every tap sends its share of the output's gradient back.
torch::Tensor roi_align_backward_twin(const torch::Tensor& grad_out, const std::vector<std::array<double, 5>>& boxes,
                                      at::IntArrayRef input_sizes, double spatial_scale, int64_t sampling_ratio,
                                      bool aligned) {
    const int64_t oh = grad_out.size(2), ow = grad_out.size(3);
    const auto taps = roi_align_taps(boxes, input_sizes[2], input_sizes[3], spatial_scale, oh, ow, sampling_ratio, aligned);
    torch::Tensor grad = torch::zeros(input_sizes, torch::kDouble);
    auto g = grad.accessor<double, 4>();
    auto go = grad_out.accessor<double, 4>();
    for (size_t k = 0; k < boxes.size(); ++k)
        for (int64_t ch = 0; ch < input_sizes[1]; ++ch)
            for (int64_t i = 0; i < oh; ++i)
                for (int64_t j = 0; j < ow; ++j)
                    for (const Tap& t : taps[(k * oh + i) * ow + j])
                        g[static_cast<int64_t>(boxes[k][0])][ch][t.y][t.x] += t.weight * go[k][ch][i][j];
    return grad;
}

// Inside, across the top-left and bottom-right borders (H=6, W=7), of zero size, and almost
// entirely outside (some samples beyond -1: zero).
const std::vector<std::array<double, 5>> kBoxes = {
    {0, 1.2, 0.7, 4.9, 3.3}, {1, -2.0, -1.5, 3.0, 2.5}, {0, 4.0, 3.0, 9.5, 8.0},
    {1, 2.5, 2.5, 2.5, 2.5}, {0, 0.0, 0.0, 6.0, 7.0},   {1, -3.0, -3.0, -1.5, -1.2}};

// ---- NMS twin ------------------------------------------------------------------------------------

double iou(const float* a, const float* b) {
    const double iw = std::max(0.0, static_cast<double>(std::min(a[2], b[2]) - std::max(a[0], b[0])));
    const double ih = std::max(0.0, static_cast<double>(std::min(a[3], b[3]) - std::max(a[1], b[1])));
    const double inter = iw * ih;
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

// Greedy: visit boxes by decreasing score (ties in index order), keep one unless a kept box
// overlaps it by IoU > threshold.
std::vector<int64_t> nms_twin(const torch::Tensor& boxes, const torch::Tensor& scores, double threshold) {
    const int64_t k = boxes.size(0);
    const float* b = boxes.data_ptr<float>();
    const float* s = scores.data_ptr<float>();
    std::vector<int64_t> order(k), kept;
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return s[i] > s[j]; });
    for (int64_t i : order)
        if (std::none_of(kept.begin(), kept.end(), [&](int64_t j) { return iou(b + 4 * i, b + 4 * j) > threshold; }))
            kept.push_back(i);
    return kept;
}

std::vector<int64_t> to_vector(const torch::Tensor& t) {
    EXPECT_EQ(t.scalar_type(), torch::kLong);
    const torch::Tensor c = t.contiguous();
    return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

torch::Tensor float_boxes(const std::vector<std::array<float, 4>>& boxes) {
    torch::Tensor t = torch::empty({static_cast<int64_t>(boxes.size()), 4}, torch::kFloat);
    for (size_t k = 0; k < boxes.size(); ++k)
        for (int c = 0; c < 4; ++c) t[k][c] = boxes[k][c];
    return t;
}

// K random boxes with corners in [-5, 40) and sides in [1, 16).
torch::Tensor random_boxes(int64_t k) {
    const torch::Tensor xy = torch::rand({k, 2}) * 45 - 5;
    return torch::cat({xy, xy + 1 + torch::rand({k, 2}) * 15}, 1);
}

}  // namespace

// ---- roi_align -------------------------------------------------------------------------------------

TEST(SegmentOpsRoiAlign, MatchesPlainLoopsForEverySamplingAndAlignment) {
    torch::manual_seed(3);
    const torch::Tensor input = torch::randn({2, 3, 6, 7}, torch::kDouble);
    for (double scale : {1.0, 0.5})
        for (int64_t sampling : {2, 0})
            for (bool aligned : {false, true}) {
                SCOPED_TRACE(testing::Message() << "scale " << scale << " sampling " << sampling << " aligned " << aligned);
                const torch::Tensor out = roi_align(input, boxes_tensor(kBoxes), scale, 3, 2, sampling, aligned);
                ASSERT_EQ(out.sizes(), (std::vector<int64_t>{6, 3, 3, 2}));
                EXPECT_LT((out - roi_align_twin(input, kBoxes, scale, 3, 2, sampling, aligned)).abs().max().item<double>(),
                          1e-12);
            }
}

TEST(SegmentOpsRoiAlign, AveragesTheSamplesOfALinearRamp) {
    // f(y, x) = x is reproduced exactly by bilinear interpolation, so each bin's value is the mean
    // of its sample columns: box x 1..5 in 2 bins of width 2, samples at 1.5, 2.5 | 3.5, 4.5.
    const torch::Tensor ramp = torch::arange(8, torch::kDouble).repeat({8, 1}).view({1, 1, 8, 8});
    const torch::Tensor out = roi_align(ramp, boxes_tensor({{0, 1, 1, 5, 5}}), 1.0, 2, 2, 2, false);
    EXPECT_TRUE(torch::allclose(out.view({2, 2}), torch::tensor({{2.0, 4.0}, {2.0, 4.0}}, torch::kDouble)));
    // aligned = true moves the box half a pixel left: 1.5, 3.5.
    const torch::Tensor shifted = roi_align(ramp, boxes_tensor({{0, 1, 1, 5, 5}}), 1.0, 2, 2, 2, true);
    EXPECT_TRUE(torch::allclose(shifted.view({2, 2}), torch::tensor({{1.5, 3.5}, {1.5, 3.5}}, torch::kDouble)));
}

TEST(SegmentOpsRoiAlign, ZeroSizeAndEmptyBoxes) {
    const torch::Tensor input = torch::arange(2 * 5 * 5, torch::kFloat).view({2, 1, 5, 5});
    // aligned: a zero-size box has no sample (adaptive grid 0): zeros. Not aligned: it is widened
    // to 1 pixel, so samples exist.
    const torch::Tensor point = torch::tensor({{1.0f, 2.0f, 2.0f, 2.0f, 2.0f}});
    EXPECT_EQ(roi_align(input, point, 1.0, 2, 2, 0, true).abs().sum().item<float>(), 0.0f);
    EXPECT_GT(roi_align(input, point, 1.0, 2, 2, 0, false).abs().sum().item<float>(), 0.0f);

    const torch::Tensor none = roi_align(input, torch::zeros({0, 5}), 1.0, 4, 3, 2, false);
    EXPECT_EQ(none.sizes(), (std::vector<int64_t>{0, 1, 4, 3}));
    EXPECT_EQ(none.scalar_type(), torch::kFloat);
}

TEST(SegmentOpsRoiAlign, GradientMatchesThePlainLoopBackward) {
    torch::manual_seed(5);
    const std::vector<std::array<double, 5>> boxes = {{0, 0.3, 0.6, 3.7, 2.9}, {1, -1.0, 2.0, 4.5, 5.5}, {0, 2, 2, 2, 2}};
    for (int64_t sampling : {2, 0})
        for (bool aligned : {false, true}) {
            SCOPED_TRACE(testing::Message() << "sampling " << sampling << " aligned " << aligned);
            const torch::Tensor input = torch::randn({2, 2, 5, 5}, torch::kDouble).requires_grad_();
            const torch::Tensor out = roi_align(input, boxes_tensor(boxes), 1.0, 2, 3, sampling, aligned);
            const torch::Tensor grad_out = torch::randn(out.sizes(), torch::kDouble);
            const torch::Tensor grad = torch::autograd::grad({(out * grad_out).sum()}, {input})[0];
            const torch::Tensor twin = roi_align_backward_twin(grad_out, boxes, input.sizes(), 1.0, sampling, aligned);
            EXPECT_GT(twin.abs().sum().item<double>(), 0.0);
            EXPECT_LT((grad - twin).abs().max().item<double>(), 1e-12);
        }
}

TEST(SegmentOpsRoiAlign, GradientMatchesFiniteDifferences) {
    torch::manual_seed(6);
    const torch::Tensor input = torch::randn({1, 1, 4, 4}, torch::kDouble).requires_grad_();
    const torch::Tensor boxes = torch::tensor({{0.0, 0.4, 0.2, 2.8, 3.1}}, torch::kDouble);
    auto f = [&](const torch::Tensor& x) { return (roi_align(x, boxes, 1.0, 2, 2, 2, false).pow(2)).sum(); };
    const torch::Tensor grad = torch::autograd::grad({f(input)}, {input})[0];
    const torch::Tensor x = input.detach();
    for (int64_t i = 0; i < 16; ++i) {
        torch::Tensor up = x.clone(), down = x.clone();
        up.view(-1)[i] += 1e-6;
        down.view(-1)[i] -= 1e-6;
        const double numeric = (f(up) - f(down)).item<double>() / 2e-6;
        EXPECT_NEAR(grad.view(-1)[i].item<double>(), numeric, 1e-6) << "pixel " << i;
    }
}

TEST(SegmentOpsRoiAlign, RejectsBadInputsWithMessages) {
    const torch::Tensor input = torch::zeros({2, 1, 4, 4});
    EXPECT_EQ(message_of([&] { roi_align(input, torch::zeros({3, 4}), 1.0, 2, 2, 2, false); }),
              "roi_align: boxes should be [K,5] (batch index, x1, y1, x2, y2), got [3,4]");
    EXPECT_EQ(message_of([&] { roi_align(torch::zeros({1, 4, 4}), torch::zeros({1, 5}), 1.0, 2, 2, 2, false); }),
              "roi_align: input should be [N,C,H,W], got [1,4,4]");
    EXPECT_EQ(message_of([&] { roi_align(input, boxes_tensor({{2, 0, 0, 1, 1}}), 1.0, 2, 2, 2, false); }),
              "roi_align: box 0 should have a whole batch index in 0..1, got 2");
    EXPECT_EQ(message_of([&] { roi_align(input, boxes_tensor({{0, 0, 0, 1, 1}, {0.5, 0, 0, 1, 1}}), 1.0, 2, 2, 2, false); }),
              "roi_align: box 1 should have a whole batch index in 0..1, got 0.5");
    EXPECT_EQ(message_of([&] { roi_align(input, boxes_tensor({{0, 3, 0, 1, 1}}), 1.0, 2, 2, 2, false); }),
              "roi_align: box 0 should have x1 <= x2 and y1 <= y2, got (3, 0, 1, 1)");
    EXPECT_EQ(message_of([&] { roi_align(input, boxes_tensor({{0, 0, 0, NAN, 1}}), 1.0, 2, 2, 2, false); }),
              "roi_align: boxes should be finite, got NaN or infinity");
    EXPECT_EQ(message_of([&] { roi_align(input.to(torch::kInt), torch::zeros({1, 5}), 1.0, 2, 2, 2, false); }),
              "roi_align: input should be float32 or float64, got Int");
    EXPECT_EQ(message_of([&] { roi_align(input, torch::zeros({1, 5}), 0.0, 2, 2, 2, false); }),
              "roi_align: spatial_scale should be > 0, got 0");
    EXPECT_EQ(message_of([&] { roi_align(input, torch::zeros({1, 5}), 1.0, 0, 2, 2, false); }),
              "roi_align: output size should be at least 1x1, got 0x2");
    EXPECT_EQ(message_of([&] { roi_align(input, torch::zeros({1, 5}), 1.0, 2, 2, -1, false); }),
              "roi_align: sampling_ratio should be >= 0 (0 = adaptive), got -1");
}

// ---- nms / batched_nms -------------------------------------------------------------------------------

TEST(SegmentOpsNms, IouExactlyAtTheThresholdIsKept) {
    // IoU of these two is exactly 50 / 100.
    const torch::Tensor boxes = float_boxes({{0, 0, 10, 10}, {0, 0, 10, 5}});
    const torch::Tensor scores = torch::tensor({0.9f, 0.8f});
    EXPECT_EQ(to_vector(nms(boxes, scores, 0.5)), (std::vector<int64_t>{0, 1}));
    EXPECT_EQ(to_vector(nms(boxes, scores, 0.49)), (std::vector<int64_t>{0}));
}

TEST(SegmentOpsNms, EqualScoresAreTakenInIndexOrder) {
    // 0 and 1 overlap (IoU 81/119) with equal scores: the lower index wins; 2 scores highest.
    const torch::Tensor boxes = float_boxes({{0, 0, 10, 10}, {1, 1, 11, 11}, {20, 20, 30, 30}});
    EXPECT_EQ(to_vector(nms(boxes, torch::tensor({0.5f, 0.5f, 0.7f}), 0.5)), (std::vector<int64_t>{2, 0}));
    EXPECT_EQ(to_vector(nms(boxes.flip(0), torch::tensor({0.7f, 0.5f, 0.5f}), 0.5)), (std::vector<int64_t>{0, 1}));
    // All equal and disjoint: everything, in index order.
    const torch::Tensor apart = float_boxes({{0, 0, 1, 1}, {2, 2, 3, 3}, {4, 4, 5, 5}, {6, 6, 7, 7}});
    EXPECT_EQ(to_vector(nms(apart, torch::full({4}, 0.3f), 0.5)), (std::vector<int64_t>{0, 1, 2, 3}));
}

TEST(SegmentOpsNms, EmptyInputKeepsNothing) {
    const torch::Tensor kept = nms(torch::zeros({0, 4}), torch::zeros({0}), 0.5);
    EXPECT_EQ(kept.numel(), 0);
    EXPECT_EQ(kept.scalar_type(), torch::kLong);
    EXPECT_EQ(batched_nms(torch::zeros({0, 4}), torch::zeros({0}), torch::zeros({0}, torch::kLong), 0.5).numel(), 0);
}

TEST(SegmentOpsNms, MatchesThePlainLoopOnRandomBoxes) {
    torch::manual_seed(7);
    for (int trial = 0; trial < 5; ++trial) {
        const torch::Tensor boxes = random_boxes(40);
        const torch::Tensor scores = torch::rand({40});
        for (double threshold : {0.0, 0.3, 0.5, 0.7}) {
            const auto kept = to_vector(nms(boxes, scores, threshold));
            EXPECT_EQ(kept, nms_twin(boxes, scores, threshold)) << "trial " << trial << " threshold " << threshold;
            if (threshold == 0.7) {
                EXPECT_GT(kept.size(), 1u);
            }
        }
    }
}

TEST(SegmentOpsBatchedNms, KeepsOverlappingBoxesOfDifferentClasses) {
    const torch::Tensor boxes = float_boxes({{0, 0, 10, 10}, {1, 1, 11, 11}, {0, 0, 10, 10}});
    const torch::Tensor scores = torch::tensor({0.9f, 0.8f, 0.7f});
    // Same class: 1 and 2 fall to 0. Box 1 in another class survives; 2 (class of 0) does not.
    EXPECT_EQ(to_vector(batched_nms(boxes, scores, torch::tensor({0L, 0L, 0L}), 0.5)), (std::vector<int64_t>{0}));
    EXPECT_EQ(to_vector(batched_nms(boxes, scores, torch::tensor({0L, 1L, 0L}), 0.5)), (std::vector<int64_t>{0, 1}));
    EXPECT_EQ(to_vector(batched_nms(boxes, scores, torch::tensor({3L, 1L, 2L}), 0.5)), (std::vector<int64_t>{0, 1, 2}));
    // Negative coordinates: torchvision's (max + 1) offset would make these two overlap (IoU 0.22).
    const torch::Tensor negative = float_boxes({{-10, -10, 5, 5}, {-10, -10, 5, 5}});
    EXPECT_EQ(to_vector(batched_nms(negative, torch::tensor({0.9f, 0.8f}), torch::tensor({0L, 1L}), 0.1)),
              (std::vector<int64_t>{0, 1}));
}

TEST(SegmentOpsBatchedNms, EqualsPerClassNmsMergedByScore) {
    torch::manual_seed(8);
    const torch::Tensor boxes = random_boxes(60);
    const torch::Tensor scores = torch::rand({60});
    const torch::Tensor classes = torch::randint(0, 3, {60}, torch::kLong);
    std::vector<int64_t> expected;
    for (int64_t c = 0; c < 3; ++c) {
        const torch::Tensor members = (classes == c).nonzero().view(-1);
        for (int64_t i : nms_twin(boxes.index_select(0, members), scores.index_select(0, members), 0.4))
            expected.push_back(members[i].item<int64_t>());
    }
    const float* s = scores.data_ptr<float>();
    std::stable_sort(expected.begin(), expected.end(), [&](int64_t i, int64_t j) { return s[i] > s[j]; });
    EXPECT_EQ(to_vector(batched_nms(boxes, scores, classes, 0.4)), expected);
}

TEST(SegmentOpsNms, RejectsBadInputsWithMessages) {
    const torch::Tensor boxes = float_boxes({{0, 0, 1, 1}, {0, 0, 2, 2}});
    EXPECT_EQ(message_of([&] { nms(boxes, torch::zeros({3}), 0.5); }),
              "nms: scores should be [2] (one per box), got [3]");
    EXPECT_EQ(message_of([&] { nms(torch::zeros({2, 5}), torch::zeros({2}), 0.5); }),
              "nms: boxes should be [K,4] (x1, y1, x2, y2), got [2,5]");
    EXPECT_EQ(message_of([&] { nms(boxes, torch::zeros({2}, torch::kDouble), 0.5); }),
              "nms: scores should have the boxes' dtype Float, got Double");
    EXPECT_EQ(message_of([&] { nms(float_boxes({{0, 0, 1, 1}, {0, 5, 2, 2}}), torch::zeros({2}), 0.5); }),
              "nms: box 1 should have x1 <= x2 and y1 <= y2, got (0, 5, 2, 2)");
    EXPECT_EQ(message_of([&] { nms(boxes, torch::tensor({0.5f, INFINITY}), 0.5); }),
              "nms: scores should be finite, got NaN or infinity");
    EXPECT_EQ(message_of([&] { batched_nms(boxes, torch::zeros({2}), torch::zeros({2}), 0.5); }),
              "batched_nms: classes should be int64, got Float");
    EXPECT_EQ(message_of([&] { batched_nms(boxes, torch::zeros({2}), torch::tensor({0L, -1L}), 0.5); }),
              "batched_nms: classes should be >= 0, got -1");
}

// ---- loading the library ---------------------------------------------------------------------------

TEST(SegmentOpsLibrary, PathComesFromTheEnvironmentOrConfigure) {
    const char* saved = std::getenv("SIGHTLINE_TORCHVISION_OPS");
    const std::string before = saved ? saved : "";
    setenv("SIGHTLINE_TORCHVISION_OPS", "/elsewhere/_C.so", 1);
    EXPECT_EQ(torchvision_ops_path(), "/elsewhere/_C.so");
    unsetenv("SIGHTLINE_TORCHVISION_OPS");
    const std::string configured = torchvision_ops_path();
    EXPECT_TRUE(std::filesystem::exists(configured)) << configured;
    EXPECT_NE(configured.find("torchvision/_C"), std::string::npos) << configured;
    if (!before.empty()) setenv("SIGHTLINE_TORCHVISION_OPS", before.c_str(), 1);
}

TEST(SegmentOpsLibrary, MissingOrBrokenFileIsOneClearError) {
    EXPECT_EQ(message_of([] { load_torchvision_ops("/nonexistent/_C.so"); }),
              "/nonexistent/_C.so: cannot load torchvision's op library (/nonexistent/_C.so: cannot open shared "
              "object file: No such file or directory); install Debian's python3-torchvision or set "
              "SIGHTLINE_TORCHVISION_OPS to its torchvision/_C*.so");
    const auto text = sightline::test::scratch_dir("segment_ops_not_elf") / "_C.so";
    std::ofstream(text) << "not a shared library\n";
    const std::string message = message_of([&] { load_torchvision_ops(text.string()); });
    EXPECT_EQ(message.rfind(text.string() + ": cannot load torchvision's op library (", 0), 0u) << message;
    EXPECT_NE(message.find("python3-torchvision"), std::string::npos) << message;
}

TEST(SegmentOpsLibraryDeathTest, EnvironmentVariablePointingNowhereFailsTheFirstOp) {
    // "threadsafe" re-runs this test alone in a fresh process, where the library is not loaded yet.
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            setenv("SIGHTLINE_TORCHVISION_OPS", "/nonexistent/tv_C.so", 1);
            try {
                nms(torch::zeros({1, 4}), torch::zeros({1}), 0.5);
            } catch (const Error& e) {
                std::cerr << e.what() << std::endl;
                std::exit(1);
            }
            std::exit(0);
        },
        testing::ExitedWithCode(1),
        "^/nonexistent/tv_C.so: cannot load torchvision's op library .*; install Debian's python3-torchvision or "
        "set SIGHTLINE_TORCHVISION_OPS to its torchvision/_C\\*.so");
}
