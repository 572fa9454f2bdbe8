// The confusion matrix: one pass over the label pairs into a small histogram.
//
// Each pixel pair becomes a bin index row[gt] + col[pred] of a (K+2) x (K+2) histogram whose
// extra row/column K holds "ignore" and K+1 "not a valid label", so validation costs nothing
// in the loop: the invalid bins are checked once at the end (and only then is the mask
// scanned again to name the first bad pixel). Masks are mostly long runs of one label, so a
// 16-pixel (SSE2) or 8-pixel block with a single (gt, pred) pair is counted with one add;
// other blocks go pixel by pixel into four interleaved histograms, which keeps consecutive
// increments of the same bin from waiting on each other.
#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "sightline/evaluate.hpp"

namespace sightline {

namespace {

constexpr int kCopies = 4;
constexpr uint64_t kOnes = 0x0101010101010101ull;
// uint32 bins: never count more than this many pixels before folding into int64.
constexpr std::size_t kChunk = std::size_t{1} << 30;

struct PairHistogram {
    int k, ignore, width;  // width = K + 2
    std::vector<uint32_t> row, col;
    std::vector<uint32_t> bins;  // kCopies x width^2

    PairHistogram(int k_, int ignore_) : k(k_), ignore(ignore_), width(k_ + 2), row(256), col(256) {
        for (int v = 0; v < 256; ++v) {
            int slot = v < k ? v : (v == ignore ? k : k + 1);
            row[v] = static_cast<uint32_t>(slot * width);
            col[v] = static_cast<uint32_t>(slot);
        }
        bins.assign(static_cast<std::size_t>(kCopies) * width * width, 0);
    }

    void add(const uint8_t* pred, const uint8_t* gt, std::size_t n) {
        const std::size_t plane = static_cast<std::size_t>(width) * width;
        uint32_t* h0 = bins.data();
        uint32_t* h1 = h0 + plane;
        uint32_t* h2 = h1 + plane;
        uint32_t* h3 = h2 + plane;
        const uint32_t* r = row.data();
        const uint32_t* c = col.data();
        std::size_t i = 0;
#if defined(__SSE2__)
        // 16 pixels at a time: slots and bin indices computed in vector registers (one load
        // per pixel left in the scalar part instead of four). Slot K + 1 must fit a byte.
        if (k <= 254) {
            const __m128i zero = _mm_setzero_si128();
            const __m128i vk = _mm_set1_epi8(static_cast<char>(k));
            const __m128i vk1 = _mm_set1_epi8(static_cast<char>(k + 1));
            const __m128i vign = _mm_set1_epi8(static_cast<char>(ignore));
            const __m128i one = _mm_set1_epi8(1);
            const __m128i vw = _mm_set1_epi16(static_cast<short>(width));
            // v < K: v; v == ignore: K; otherwise K + 1 ("not a label").
            auto slots = [&](__m128i v) {
                __m128i not_class = _mm_cmpeq_epi8(_mm_max_epu8(v, vk), v);
                __m128i is_ignore = ignore >= 0 ? _mm_cmpeq_epi8(v, vign) : zero;
                __m128i high = _mm_sub_epi8(vk1, _mm_and_si128(is_ignore, one));
                return _mm_or_si128(_mm_and_si128(not_class, high), _mm_andnot_si128(not_class, v));
            };
            alignas(16) uint16_t idx[16];
            for (; i + 16 <= n; i += 16) {
                __m128i g = _mm_loadu_si128(reinterpret_cast<const __m128i*>(gt + i));
                __m128i p = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pred + i));
                __m128i same = _mm_and_si128(_mm_cmpeq_epi8(g, _mm_set1_epi8(static_cast<char>(gt[i]))),
                                             _mm_cmpeq_epi8(p, _mm_set1_epi8(static_cast<char>(pred[i]))));
                if (_mm_movemask_epi8(same) == 0xffff) {  // a run: one (gt, pred) pair
                    h0[r[gt[i]] + c[pred[i]]] += 16;
                    continue;
                }
                g = slots(g);
                p = slots(p);
                __m128i lo = _mm_add_epi16(_mm_mullo_epi16(_mm_unpacklo_epi8(g, zero), vw),
                                           _mm_unpacklo_epi8(p, zero));
                __m128i hi = _mm_add_epi16(_mm_mullo_epi16(_mm_unpackhi_epi8(g, zero), vw),
                                           _mm_unpackhi_epi8(p, zero));
                _mm_store_si128(reinterpret_cast<__m128i*>(idx), lo);
                _mm_store_si128(reinterpret_cast<__m128i*>(idx + 8), hi);
                for (int j = 0; j < 16; j += 4) {
                    h0[idx[j]]++;
                    h1[idx[j + 1]]++;
                    h2[idx[j + 2]]++;
                    h3[idx[j + 3]]++;
                }
            }
        }
#endif
        for (; i + 8 <= n; i += 8) {
            uint64_t g, p;
            std::memcpy(&g, gt + i, 8);
            std::memcpy(&p, pred + i, 8);
            if (g == (g & 0xff) * kOnes && p == (p & 0xff) * kOnes) {
                h0[r[g & 0xff] + c[p & 0xff]] += 8;
                continue;
            }
            h0[r[gt[i + 0]] + c[pred[i + 0]]]++;
            h1[r[gt[i + 1]] + c[pred[i + 1]]]++;
            h2[r[gt[i + 2]] + c[pred[i + 2]]]++;
            h3[r[gt[i + 3]] + c[pred[i + 3]]]++;
            h0[r[gt[i + 4]] + c[pred[i + 4]]]++;
            h1[r[gt[i + 5]] + c[pred[i + 5]]]++;
            h2[r[gt[i + 6]] + c[pred[i + 6]]]++;
            h3[r[gt[i + 7]] + c[pred[i + 7]]]++;
        }
        for (; i < n; ++i) h0[r[gt[i]] + c[pred[i]]]++;
    }

    // Sum of the copies for bin (gt slot, pred slot).
    int64_t at(int g, int p) const {
        const std::size_t plane = static_cast<std::size_t>(width) * width;
        std::size_t idx = static_cast<std::size_t>(g) * width + p;
        int64_t s = 0;
        for (int copy = 0; copy < kCopies; ++copy) s += bins[copy * plane + idx];
        return s;
    }

    bool has_invalid() const {
        for (int s = 0; s < width; ++s)
            if (at(k + 1, s) != 0 || at(s, k + 1) != 0) return true;
        return false;
    }

    // Adds the valid bins into a K x (K+1) matrix and the ignored count, then clears.
    void fold(std::vector<int64_t>& counts, int64_t& ignored) {
        for (int g = 0; g < k; ++g)
            for (int p = 0; p <= k; ++p) counts[static_cast<std::size_t>(g) * (k + 1) + p] += at(g, p);
        for (int p = 0; p <= k; ++p) ignored += at(k, p);
        std::fill(bins.begin(), bins.end(), 0u);
    }
};

std::string class_range(int k) { return k == 1 ? "0" : fmt::format("0..{}", k - 1); }

[[noreturn]] void throw_bad_label(const std::string& file, int value, const std::string& where,
                                  int k, int ignore) {
    if (ignore >= 0)
        throw Error(fmt::format("{}: label {} at {} is not a class ({}) nor the ignore value {}",
                                file, value, where, class_range(k), ignore));
    throw Error(fmt::format("{}: label {} at {} is not a class ({}; no ignore value)", file, value,
                            where, class_range(k)));
}

bool is_valid(int v, int k, int ignore) { return v < k || v == ignore; }

}  // namespace

ConfusionMatrix::ConfusionMatrix(int num_classes, int ignore) : k_(num_classes), ignore_(ignore) {
    if (num_classes < 1 || num_classes > 255)
        throw UsageError(fmt::format("the class count must be 1..255 (8-bit masks), got {}", num_classes));
    if (ignore != -1 && (ignore < num_classes || ignore > 255))
        throw UsageError(fmt::format(
            "the ignore value must be {}..255 (not a class id) or -1 for none, got {}", num_classes,
            ignore));
    counts_.assign(static_cast<std::size_t>(k_) * (k_ + 1), 0);
}

void ConfusionMatrix::accumulate(const uint8_t* pred, const uint8_t* gt, std::size_t n,
                                 const MaskNames& names) {
    PairHistogram hist(k_, ignore_);
    std::vector<int64_t> counts(counts_.size(), 0);
    int64_t ignored = 0;
    for (std::size_t start = 0; start < n; start += kChunk) {
        std::size_t len = std::min(kChunk, n - start);
        hist.add(pred + start, gt + start, len);
        if (hist.has_invalid()) {
            // Slow path, only on error: name the first bad pixel, GT first.
            for (std::size_t i = start; i < start + len; ++i) {
                if (!is_valid(gt[i], k_, ignore_))
                    throw_bad_label(names.gt, gt[i], fmt::format("pixel {}", i), k_, ignore_);
                if (!is_valid(pred[i], k_, ignore_))
                    throw_bad_label(names.pred, pred[i], fmt::format("pixel {}", i), k_, ignore_);
            }
        }
        hist.fold(counts, ignored);
    }
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += counts[i];
    ignored_ += ignored;
}

void ConfusionMatrix::accumulate(const cv::Mat& pred, const cv::Mat& gt, const MaskNames& names) {
    if (pred.type() != CV_8UC1 || gt.type() != CV_8UC1)
        throw Error(fmt::format("{}: masks must be 8-bit single-channel labels (ground truth {})",
                                names.pred, names.gt));
    if (pred.size() != gt.size())
        throw Error(fmt::format("{}: prediction is {}x{} (width x height) but the ground truth {} is {}x{}",
                                names.pred, pred.cols, pred.rows, names.gt, gt.cols, gt.rows));
    if (pred.isContinuous() && gt.isContinuous()) {
        try {
            accumulate(pred.data, gt.data, pred.total(), names);
        } catch (const Error&) {
            // Re-find the first bad pixel to report it as (x, y) rather than a flat index.
            for (int y = 0; y < gt.rows; ++y)
                for (int x = 0; x < gt.cols; ++x) {
                    int g = gt.at<uint8_t>(y, x), p = pred.at<uint8_t>(y, x);
                    std::string where = fmt::format("x={} y={}", x, y);
                    if (!is_valid(g, k_, ignore_)) throw_bad_label(names.gt, g, where, k_, ignore_);
                    if (!is_valid(p, k_, ignore_)) throw_bad_label(names.pred, p, where, k_, ignore_);
                }
            throw;
        }
        return;
    }
    // Row by row into a scratch matrix, so a bad label leaves *this unchanged.
    ConfusionMatrix rows(k_, ignore_);
    for (int y = 0; y < gt.rows; ++y)
        rows.accumulate(pred.ptr<uint8_t>(y), gt.ptr<uint8_t>(y), static_cast<std::size_t>(gt.cols), names);
    merge(rows);
}

void ConfusionMatrix::merge(const ConfusionMatrix& other) {
    if (other.k_ != k_ || other.ignore_ != ignore_)
        throw Error(fmt::format("cannot merge confusion matrices of {} and {} classes (ignore {} and {})",
                                k_, other.k_, ignore_, other.ignore_));
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    ignored_ += other.ignored_;
}

Metrics ConfusionMatrix::metrics(const std::vector<std::string>& names) const {
    if (!names.empty() && static_cast<int>(names.size()) != k_)
        throw Error(fmt::format("{} class names for a {}-class confusion matrix", names.size(), k_));
    auto ratio = [](double num, double den) { return den > 0 ? num / den : kUndefinedMetric; };
    Metrics m;
    m.num_classes = k_;
    m.ignored_pixels = ignored_;
    m.per_class.resize(k_);
    for (int i = 0; i < k_; ++i) {
        ClassMetrics& c = m.per_class[i];
        c.name = !names.empty() ? names[i] : (i == 0 ? "background" : fmt::format("class_{}", i));
        for (int j = 0; j <= k_; ++j) c.gt_pixels += count(i, j);
        for (int g = 0; g < k_; ++g) c.pred_pixels += count(g, i);
        c.tp = count(i, i);
        c.fp = c.pred_pixels - c.tp;
        c.fn = c.gt_pixels - c.tp;
        const double uni = static_cast<double>(c.tp + c.fp + c.fn);
        c.iou = ratio(c.tp, uni);
        c.dice = ratio(2.0 * c.tp, static_cast<double>(c.gt_pixels + c.pred_pixels));
        c.accuracy = ratio(c.tp, c.gt_pixels);
        c.precision = ratio(c.tp, c.pred_pixels);
        c.fp_ratio = ratio(c.fp, uni);
        c.fn_ratio = ratio(c.fn, uni);
        m.pixels += c.gt_pixels;
    }
    // nanmean: classes whose value is undefined are left out of the mean.
    auto nanmean = [&](double ClassMetrics::*field, int first) {
        double sum = 0;
        int n = 0;
        for (int i = first; i < k_; ++i) {
            double v = m.per_class[i].*field;
            if (!std::isnan(v)) sum += v, ++n;
        }
        return n ? sum / n : kUndefinedMetric;
    };
    m.miou = nanmean(&ClassMetrics::iou, 0);
    m.fg_miou = nanmean(&ClassMetrics::iou, 1);
    m.mean_dice = nanmean(&ClassMetrics::dice, 0);
    m.mean_accuracy = nanmean(&ClassMetrics::accuracy, 0);
    int64_t correct = 0;
    double weighted = 0;
    for (const ClassMetrics& c : m.per_class) {
        correct += c.tp;
        if (c.gt_pixels > 0) weighted += static_cast<double>(c.gt_pixels) * c.iou;
    }
    m.pixel_accuracy = ratio(static_cast<double>(correct), static_cast<double>(m.pixels));
    m.fw_iou = ratio(weighted, static_cast<double>(m.pixels));
    return m;
}

}  // namespace sightline
