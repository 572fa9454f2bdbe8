// COCOeval's per-image step (evaluateImg), shared by coco_match.cpp (which does it) and
// coco_eval.cpp (which accumulates and summarises its results). Default parameters only.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "sightline/coco.hpp"

namespace sightline::detail {

constexpr int kThresholds = 10, kRecallPoints = 101, kAreas = 4, kLimits = 3;
constexpr std::array<int, kLimits> kMaxDets = {1, 10, 100};
constexpr std::array<std::array<double, 2>, kAreas> kAreaRanges = {
    {{0, 1e10}, {0, 32 * 32}, {32 * 32, 96 * 96}, {96 * 96, 1e10}}};  // all, small, medium, large
enum Area { kAll = 0, kSmall, kMedium, kLarge };
enum Limit { kDets1 = 0, kDets10, kDets100 };

// numpy.linspace(start, stop, n): i * step + start, the last value exactly stop. The IoU and
// recall thresholds must be these doubles (i / 100.0 differs at 35 of the 101 points).
template <int N>
std::array<double, N> linspace(double start, double stop) {
    std::array<double, N> values{};
    const double step = (stop - start) / (N - 1);
    for (int i = 0; i < N; ++i) values[i] = i * step + start;
    values[N - 1] = stop;
    return values;
}
inline const std::array<double, kThresholds> kIouThresholds = linspace<kThresholds>(0.5, 0.95);
inline const std::array<double, kRecallPoints> kRecallThresholds = linspace<kRecallPoints>(0.0, 1.0);

// The ground truth and detections of one (image, category), ready for matching.
struct Cell {
    std::vector<const CocoAnnotation*> gts;  // file order
    std::vector<const CocoDetection*> dts;   // by descending score (stable), at most 100
    std::vector<double> ious;                // dts.size() x gts.size()
};

// evaluateImg's output for one cell and area range.
struct CellResult {
    std::vector<double> scores;       // D, descending
    std::vector<uint8_t> matched;     // T x D: matched to a GT (of nonzero id, see below)
    std::vector<uint8_t> ignored;     // T x D
    int64_t counted_gts = 0;          // GTs not ignored in this area range
};

// Stable sort by descending score: numpy's argsort(-score, kind="mergesort").
template <class T, class Score>
void sort_by_score(std::vector<T>& items, Score score) {
    std::stable_sort(items.begin(), items.end(), [&](const T& a, const T& b) { return score(a) > score(b); });
}

// The cells of every (category, image) in that order (k * images + i), detections sorted and
// truncated to 100, IoUs computed. images and categories are sorted by id.
std::vector<Cell> build_cells(const CocoDataset& gt, const CocoResults& results, CocoIouType type,
                              const std::vector<const CocoImage*>& images,
                              const std::vector<const CocoCategory*>& categories);

// evaluateImg for one cell and area range [lo, hi].
CellResult evaluate_cell(const Cell& cell, const std::array<double, 2>& range);

}  // namespace sightline::detail
