// COCOeval (pycocotools cocoeval.py) with default parameters: per image and category, greedy
// matching of detections in score order at each IoU threshold (evaluateImg); per category,
// area range and detection limit, the 101-point interpolated precision and the recall
// (accumulate); the 12 summary numbers (summarize).
#include <algorithm>
#include <numeric>
#include <unordered_map>

#include <fmt/format.h>

#include "sightline/coco.hpp"

namespace sightline {

namespace {

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
const std::array<double, kThresholds> kIouThresholds = linspace<kThresholds>(0.5, 0.95);
const std::array<double, kRecallPoints> kRecallThresholds = linspace<kRecallPoints>(0.0, 1.0);

// numpy's pairwise summation (np.add.reduce on a contiguous array), so that the means below
// are the very doubles np.mean gives.
double numpy_sum(const double* a, std::size_t n) {
    if (n < 8) {
        double sum = 0;
        for (std::size_t i = 0; i < n; ++i) sum += a[i];
        return sum;
    }
    if (n <= 128) {
        double r[8];
        std::copy(a, a + 8, r);
        std::size_t i = 8;
        for (; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; ++j) r[j] += a[i + j];
        double sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) sum += a[i];
        return sum;
    }
    std::size_t half = n / 2;
    half -= half % 8;
    return numpy_sum(a, half) + numpy_sum(a + half, n - half);
}

// The mean of the values > -1, or -1 when there are none (summarize's rule).
double mean_of_defined(const std::vector<double>& values) {
    std::vector<double> defined;
    for (double v : values)
        if (v > -1) defined.push_back(v);
    if (defined.empty()) return -1;
    return numpy_sum(defined.data(), defined.size()) / static_cast<double>(defined.size());
}

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

Rle box_polygon_mask(const CocoBox& b, const CocoImage& image) {
    // loadRes gives a result without a segmentation the box as a polygon. Clamping the corners
    // to one pixel beyond the image keeps the mask (rleFrPoly clips there anyway) and the
    // outline short whatever the box.
    auto clamp_x = [&](double x) { return std::clamp(x, -1.0, image.width + 1.0); };
    auto clamp_y = [&](double y) { return std::clamp(y, -1.0, image.height + 1.0); };
    const double x1 = clamp_x(b[0]), x2 = clamp_x(b[0] + b[2]), y1 = clamp_y(b[1]), y2 = clamp_y(b[1] + b[3]);
    return rle_from_polygon({x1, y1, x1, y2, x2, y2, x2, y1}, static_cast<uint32_t>(image.height),
                            static_cast<uint32_t>(image.width));
}

void compute_ious(Cell& cell, CocoIouType type, const CocoImage& image) {
    const std::size_t D = cell.dts.size(), G = cell.gts.size();
    cell.ious.assign(D * G, 0.0);
    for (std::size_t d = 0; d < D; ++d) {
        const CocoDetection& dt = *cell.dts[d];
        std::optional<Rle> box_mask;
        if (type == CocoIouType::segm && !dt.mask) box_mask = box_polygon_mask(*dt.bbox, image);
        const Rle* dt_mask = dt.mask ? &*dt.mask : box_mask ? &*box_mask : nullptr;
        for (std::size_t g = 0; g < G; ++g) {
            const CocoAnnotation& gt = *cell.gts[g];
            cell.ious[d * G + g] = type == CocoIouType::segm ? rle_iou(*dt_mask, *gt.mask, gt.iscrowd)
                                                             : box_iou(*dt.bbox, gt.bbox, gt.iscrowd);
        }
    }
}

// evaluateImg: greedy matching at each threshold, detections in score order.
CellResult evaluate_cell(const Cell& cell, const std::array<double, 2>& range) {
    const std::size_t D = cell.dts.size(), G = cell.gts.size();
    auto outside = [&](double area) { return area < range[0] || area > range[1]; };
    std::vector<uint8_t> gt_ignored(G);
    for (std::size_t g = 0; g < G; ++g) gt_ignored[g] = cell.gts[g]->iscrowd || outside(cell.gts[g]->area);
    // GTs not ignored first (stable), so a detection prefers them.
    std::vector<std::size_t> order(G);
    std::iota(order.begin(), order.end(), 0);
    std::stable_partition(order.begin(), order.end(), [&](std::size_t g) { return !gt_ignored[g]; });

    CellResult result;
    result.scores.resize(D);
    for (std::size_t d = 0; d < D; ++d) result.scores[d] = cell.dts[d]->score;
    result.matched.assign(kThresholds * D, 0);
    result.ignored.assign(kThresholds * D, 0);
    for (std::size_t g = 0; g < G; ++g) result.counted_gts += gt_ignored[g] ? 0 : 1;

    for (int t = 0; t < kThresholds; ++t) {
        std::vector<uint8_t> gt_taken(G, 0);
        for (std::size_t d = 0; d < D; ++d) {
            double best_iou = std::min(kIouThresholds[t], 1 - 1e-10);
            std::ptrdiff_t best = -1;
            for (std::size_t g : order) {
                if (gt_taken[g] && !cell.gts[g]->iscrowd) continue;  // crowds match many
                // Matched to a counted GT: ignored ones (sorted last) cannot replace it.
                if (best >= 0 && !gt_ignored[best] && gt_ignored[g]) break;
                const double iou = cell.ious[d * G + g];
                if (iou < best_iou) continue;
                best_iou = iou;  // ">=": of equal IoUs the later GT wins
                best = static_cast<std::ptrdiff_t>(g);
            }
            if (best < 0) continue;
            gt_taken[best] = 1;
            result.ignored[t * D + d] = gt_ignored[best];
            // pycocotools records the GT's id and reads 0 as "no match": a GT of id 0 counts
            // as a miss for the detection (while still used up). Kept for exact parity.
            result.matched[t * D + d] = cell.gts[best]->id != 0;
        }
        for (std::size_t d = 0; d < D; ++d)
            if (!result.matched[t * D + d] && outside(cell.dts[d]->area)) result.ignored[t * D + d] = 1;
    }
    return result;
}

// precision[t][r] and recall[t] of one (category, area, limit) from its image results.
struct Curve {
    std::vector<double> precision;  // T x R, -1 when undefined
    std::vector<double> recall;     // T, -1 when undefined
};

Curve accumulate(const std::vector<const CellResult*>& cells, int max_det) {
    Curve curve{std::vector<double>(kThresholds * kRecallPoints, -1.0), std::vector<double>(kThresholds, -1.0)};
    if (cells.empty()) return curve;
    struct Entry {
        double score;
        const CellResult* cell;
        std::size_t d;
    };
    std::vector<Entry> entries;
    int64_t counted_gts = 0;
    for (const CellResult* c : cells) {
        const std::size_t n = std::min(c->scores.size(), static_cast<std::size_t>(max_det));
        for (std::size_t d = 0; d < n; ++d) entries.push_back({c->scores[d], c, d});
        counted_gts += c->counted_gts;
    }
    if (counted_gts == 0) return curve;
    sort_by_score(entries, [](const Entry& e) { return e.score; });

    const std::size_t nd = entries.size();
    std::vector<double> rc(nd), pr(nd);
    for (int t = 0; t < kThresholds; ++t) {
        double tp = 0, fp = 0;
        for (std::size_t i = 0; i < nd; ++i) {
            const Entry& e = entries[i];
            const std::size_t D = e.cell->scores.size();
            if (!e.cell->ignored[t * D + e.d]) (e.cell->matched[t * D + e.d] ? tp : fp) += 1;
            rc[i] = tp / static_cast<double>(counted_gts);
            pr[i] = tp / (fp + tp + std::numeric_limits<double>::epsilon());  // np.spacing(1)
        }
        curve.recall[t] = nd ? rc[nd - 1] : 0;
        // The precision envelope: best precision at this recall or any higher one.
        for (std::size_t i = nd; i-- > 1;) pr[i - 1] = std::max(pr[i - 1], pr[i]);
        for (int r = 0; r < kRecallPoints; ++r) {
            const std::size_t i = std::lower_bound(rc.begin(), rc.end(), kRecallThresholds[r]) - rc.begin();
            curve.precision[t * kRecallPoints + r] = i < nd ? pr[i] : 0;
        }
    }
    return curve;
}

// The cells of every (category, image), detections sorted and IoUs computed.
std::vector<Cell> build_cells(const CocoDataset& gt, const CocoResults& results, CocoIouType type,
                              const std::vector<const CocoImage*>& images,
                              const std::vector<const CocoCategory*>& categories) {
    std::unordered_map<int64_t, std::size_t> image_index, category_index;
    for (std::size_t i = 0; i < images.size(); ++i) image_index[images[i]->id] = i;
    for (std::size_t k = 0; k < categories.size(); ++k) category_index[categories[k]->id] = k;
    const std::size_t I = images.size();
    std::vector<Cell> cells(categories.size() * I);
    for (const CocoAnnotation& a : gt.annotations) {
        if (type == CocoIouType::segm && !a.mask)
            throw Error(fmt::format("{}: annotation id {} has no segmentation (needed for segm evaluation)",
                                    gt.source.string(), a.id));
        cells[category_index.at(a.category_id) * I + image_index.at(a.image_id)].gts.push_back(&a);
    }
    for (const CocoDetection& d : results.detections) {
        // read_coco_results guarantees these; detections made in code may lack them.
        if (!d.bbox && (type == CocoIouType::bbox || !d.mask))
            throw Error(fmt::format("{}: a detection of image {} has no {}", results.source.string(), d.image_id,
                                    type == CocoIouType::bbox ? "bbox" : "segmentation nor bbox"));
        cells[category_index.at(d.category_id) * I + image_index.at(d.image_id)].dts.push_back(&d);
    }
    for (std::size_t c = 0; c < cells.size(); ++c) {
        Cell& cell = cells[c];
        sort_by_score(cell.dts, [](const CocoDetection* d) { return d->score; });
        if (cell.dts.size() > static_cast<std::size_t>(kMaxDets.back())) cell.dts.resize(kMaxDets.back());
        compute_ious(cell, type, *images[c % I]);
    }
    return cells;
}

template <class T>
std::vector<const T*> sorted_by_id(const std::vector<T>& items) {
    std::vector<const T*> out;
    for (const T& item : items) out.push_back(&item);
    std::sort(out.begin(), out.end(), [](const T* a, const T* b) { return a->id < b->id; });
    return out;
}

}  // namespace

CocoEvalResult evaluate_coco(const CocoDataset& gt, const CocoResults& results, CocoIouType type) {
    const std::vector<const CocoImage*> images = sorted_by_id(gt.images);
    const std::vector<const CocoCategory*> categories = sorted_by_id(gt.categories);
    const std::size_t I = images.size(), K = categories.size();
    const std::vector<Cell> cells = build_cells(gt, results, type, images, categories);

    // precision[t][r][k][a][m] and recall[t][k][a][m], as accumulate() lays them out.
    std::vector<double> precision(kThresholds * kRecallPoints * K * kAreas * kLimits, -1.0);
    std::vector<double> recall(kThresholds * K * kAreas * kLimits, -1.0);
    auto p_at = [&](int t, int r, std::size_t k, int a, int m) {
        return (((static_cast<std::size_t>(t) * kRecallPoints + r) * K + k) * kAreas + a) * kLimits + m;
    };
    auto r_at = [&](int t, std::size_t k, int a, int m) {
        return ((static_cast<std::size_t>(t) * K + k) * kAreas + a) * kLimits + m;
    };
    for (std::size_t k = 0; k < K; ++k) {
        for (int a = 0; a < kAreas; ++a) {
            std::vector<CellResult> evaluated;
            evaluated.reserve(I);
            std::vector<const CellResult*> present;  // images with GT or detections, in id order
            for (std::size_t i = 0; i < I; ++i) {
                const Cell& cell = cells[k * I + i];
                if (cell.gts.empty() && cell.dts.empty()) continue;
                evaluated.push_back(evaluate_cell(cell, kAreaRanges[a]));
                present.push_back(&evaluated.back());
            }
            for (int m = 0; m < kLimits; ++m) {
                const Curve curve = accumulate(present, kMaxDets[m]);
                for (int t = 0; t < kThresholds; ++t) {
                    recall[r_at(t, k, a, m)] = curve.recall[t];
                    for (int r = 0; r < kRecallPoints; ++r)
                        precision[p_at(t, r, k, a, m)] = curve.precision[t * kRecallPoints + r];
                }
            }
        }
    }

    // summarize(): means over the selected slice in numpy's flattening order (t, r, k).
    auto thresholds_equal_to = [](double value) {
        std::vector<int> ts;
        for (int t = 0; t < kThresholds; ++t)
            if (kIouThresholds[t] == value) ts.push_back(t);
        return ts;
    };
    std::vector<int> all_thresholds(kThresholds);
    std::iota(all_thresholds.begin(), all_thresholds.end(), 0);
    auto average_precision = [&](const std::vector<int>& ts, int a, int m, std::optional<std::size_t> only_k) {
        std::vector<double> values;
        for (int t : ts)
            for (int r = 0; r < kRecallPoints; ++r)
                for (std::size_t k = 0; k < K; ++k)
                    if (!only_k || k == *only_k) values.push_back(precision[p_at(t, r, k, a, m)]);
        return mean_of_defined(values);
    };
    auto average_recall = [&](int a, int m) {
        std::vector<double> values;
        for (int t = 0; t < kThresholds; ++t)
            for (std::size_t k = 0; k < K; ++k) values.push_back(recall[r_at(t, k, a, m)]);
        return mean_of_defined(values);
    };
    const std::vector<int> at50 = thresholds_equal_to(.5), at75 = thresholds_equal_to(.75);

    CocoEvalResult out;
    out.iou_type = type;
    out.stats = {average_precision(all_thresholds, kAll, kDets100, {}),
                 average_precision(at50, kAll, kDets100, {}),
                 average_precision(at75, kAll, kDets100, {}),
                 average_precision(all_thresholds, kSmall, kDets100, {}),
                 average_precision(all_thresholds, kMedium, kDets100, {}),
                 average_precision(all_thresholds, kLarge, kDets100, {}),
                 average_recall(kAll, kDets1),
                 average_recall(kAll, kDets10),
                 average_recall(kAll, kDets100),
                 average_recall(kSmall, kDets100),
                 average_recall(kMedium, kDets100),
                 average_recall(kLarge, kDets100)};
    for (std::size_t k = 0; k < K; ++k)
        out.per_category.push_back({categories[k]->id, categories[k]->name,
                                    average_precision(all_thresholds, kAll, kDets100, k),
                                    average_precision(at50, kAll, kDets100, k),
                                    average_precision(at75, kAll, kDets100, k)});
    return out;
}

}  // namespace sightline
