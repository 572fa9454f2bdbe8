// COCOeval's accumulate() and summarize() (pycocotools cocoeval.py) with default parameters:
// per category, area range and detection limit, the 101-point interpolated precision and the
// recall over all images; the 12 summary numbers. The matching is in coco_match.cpp.
#include <algorithm>
#include <numeric>

#include "evaluate/coco_eval_detail.hpp"

namespace sightline {

namespace {

using namespace detail;

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

template <class T>
std::vector<const T*> sorted_by_id(const std::vector<T>& items) {
    std::vector<const T*> out;
    for (const T& item : items) out.push_back(&item);
    std::sort(out.begin(), out.end(), [](const T* a, const T* b) { return a->id < b->id; });
    return out;
}

// accumulate()'s arrays for every category, area range and limit, and summarize()'s means.
struct Accumulated {
    std::size_t K = 0;
    std::vector<double> precision;  // [t][r][k][a][m], -1 where undefined
    std::vector<double> recall;     // [t][k][a][m]

    std::size_t p_at(int t, int r, std::size_t k, int a, int m) const {
        return (((static_cast<std::size_t>(t) * kRecallPoints + r) * K + k) * kAreas + a) * kLimits + m;
    }
    std::size_t r_at(int t, std::size_t k, int a, int m) const {
        return ((static_cast<std::size_t>(t) * K + k) * kAreas + a) * kLimits + m;
    }
    // Means over the slice in numpy's flattening order (t, r, k), as summarize() takes them.
    double average_precision(const std::vector<int>& ts, int a, int m,
                             std::optional<std::size_t> only_k = std::nullopt) const {
        std::vector<double> values;
        for (int t : ts)
            for (int r = 0; r < kRecallPoints; ++r)
                for (std::size_t k = 0; k < K; ++k)
                    if (!only_k || k == *only_k) values.push_back(precision[p_at(t, r, k, a, m)]);
        return mean_of_defined(values);
    }
    double average_recall(int a, int m) const {
        std::vector<double> values;
        for (int t = 0; t < kThresholds; ++t)
            for (std::size_t k = 0; k < K; ++k) values.push_back(recall[r_at(t, k, a, m)]);
        return mean_of_defined(values);
    }
};

Accumulated accumulate_all(const std::vector<Cell>& cells, std::size_t I, std::size_t K) {
    Accumulated acc{K, std::vector<double>(kThresholds * kRecallPoints * K * kAreas * kLimits, -1.0),
                    std::vector<double>(kThresholds * K * kAreas * kLimits, -1.0)};
    for (std::size_t k = 0; k < K; ++k) {
        for (int a = 0; a < kAreas; ++a) {
            std::vector<CellResult> evaluated;
            evaluated.reserve(I);  // no reallocation: `present` points into it
            std::vector<const CellResult*> present;  // images with GT or detections, in id order
            for (std::size_t i = 0; i < I; ++i) {
                const Cell& cell = cells[k * I + i];
                if (cell.gts.empty() && cell.dts.empty()) continue;  // evaluateImg's None
                evaluated.push_back(evaluate_cell(cell, kAreaRanges[a]));
                present.push_back(&evaluated.back());
            }
            for (int m = 0; m < kLimits; ++m) {
                const Curve curve = accumulate(present, kMaxDets[m]);
                for (int t = 0; t < kThresholds; ++t) {
                    acc.recall[acc.r_at(t, k, a, m)] = curve.recall[t];
                    for (int r = 0; r < kRecallPoints; ++r)
                        acc.precision[acc.p_at(t, r, k, a, m)] = curve.precision[t * kRecallPoints + r];
                }
            }
        }
    }
    return acc;
}

// summarize() selects IoU thresholds by equality with .5 and .75 (none: the stat is -1).
std::vector<int> thresholds_equal_to(double value) {
    std::vector<int> ts;
    for (int t = 0; t < kThresholds; ++t)
        if (kIouThresholds[t] == value) ts.push_back(t);
    return ts;
}

std::vector<int> all_thresholds() {
    std::vector<int> ts(kThresholds);
    std::iota(ts.begin(), ts.end(), 0);
    return ts;
}

}  // namespace

CocoEvalResult evaluate_coco(const CocoDataset& gt, const CocoResults& results, CocoIouType type) {
    const std::vector<const CocoImage*> images = sorted_by_id(gt.images);
    const std::vector<const CocoCategory*> categories = sorted_by_id(gt.categories);
    const Accumulated acc = accumulate_all(build_cells(gt, results, type, images, categories), images.size(),
                                           categories.size());
    const std::vector<int> all = all_thresholds(), at50 = thresholds_equal_to(.5), at75 = thresholds_equal_to(.75);
    CocoEvalResult out;
    out.iou_type = type;
    // summarize()'s _summarizeDets.
    out.stats = {acc.average_precision(all, kAll, kDets100),    acc.average_precision(at50, kAll, kDets100),
                 acc.average_precision(at75, kAll, kDets100),   acc.average_precision(all, kSmall, kDets100),
                 acc.average_precision(all, kMedium, kDets100), acc.average_precision(all, kLarge, kDets100),
                 acc.average_recall(kAll, kDets1),              acc.average_recall(kAll, kDets10),
                 acc.average_recall(kAll, kDets100),            acc.average_recall(kSmall, kDets100),
                 acc.average_recall(kMedium, kDets100),         acc.average_recall(kLarge, kDets100)};
    for (std::size_t k = 0; k < categories.size(); ++k)
        out.per_category.push_back({categories[k]->id, categories[k]->name,
                                    acc.average_precision(all, kAll, kDets100, k),
                                    acc.average_precision(at50, kAll, kDets100, k),
                                    acc.average_precision(at75, kAll, kDets100, k)});
    return out;
}

}  // namespace sightline
