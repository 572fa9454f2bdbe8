// Segmentation evaluation: a confusion matrix accumulated over a whole set of masks (the
// PASCAL VOC / mmsegmentation convention) and the metrics derived from it.
//
// Labels are uint8 class ids 0..K-1 (K = num_classes, class 0 = background) or the ignore
// value (default 255). Counting rules, for every pixel:
//   - ground truth == ignore: the pixel is not counted at all (a prediction there is free);
//   - prediction == ignore on a labelled pixel: a miss of the GT class (fn), no fp for any
//     class (as mmsegmentation, whose histogram drops out-of-range predictions);
//   - any other value >= K in either mask is an error (Error naming the file and the value).
// The matrix is K rows (GT class) x (K + 1) columns (predicted class, last = "ignore").
//
// Metrics (n = matrix, t_i = GT pixels of class i = row sum, p_i = predicted pixels of class
// i = column sum over labelled pixels, tp_i = n_ii, fp_i = p_i - tp_i, fn_i = t_i - tp_i):
//   IoU_i = tp / (tp + fp + fn)            Dice_i = F1_i = 2 tp / (t_i + p_i)
//   accuracy_i (recall) = tp / t_i         precision_i = tp / p_i
//   fp_ratio_i = fp / (tp + fp + fn)       fn_ratio_i = fn / (tp + fp + fn)   (IoU + both = 1)
// A ratio with a zero denominator is NaN (e.g. a class absent from both GT and prediction).
//   miou = nanmean_i IoU_i (background included); fg_miou = nanmean over classes 1..K-1;
//   mean_dice, mean_accuracy = nanmean; pixel_accuracy = sum tp / sum t;
//   fw_iou = sum_i t_i IoU_i / sum_i t_i (frequency weighted, Long et al. 2015).
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "sightline/core.hpp"

namespace sightline {

inline constexpr double kUndefinedMetric = std::numeric_limits<double>::quiet_NaN();

struct ClassMetrics {
    std::string name;
    int64_t tp = 0, fp = 0, fn = 0;
    int64_t gt_pixels = 0, pred_pixels = 0;  // t_i, p_i
    // NaN (kUndefinedMetric) when the denominator is zero.
    double iou = kUndefinedMetric, dice = kUndefinedMetric;
    double accuracy = kUndefinedMetric, precision = kUndefinedMetric;
    double fp_ratio = kUndefinedMetric, fn_ratio = kUndefinedMetric;
};

struct Metrics {
    int num_classes = 0;
    int64_t pixels = 0;          // labelled pixels (GT != ignore)
    int64_t ignored_pixels = 0;  // GT == ignore, not counted
    // NaN when no class defines them.
    double miou = kUndefinedMetric, fg_miou = kUndefinedMetric, mean_dice = kUndefinedMetric;
    double pixel_accuracy = kUndefinedMetric, mean_accuracy = kUndefinedMetric;
    double fw_iou = kUndefinedMetric;
    std::vector<ClassMetrics> per_class;  // K entries, class order
};

// Names used in error messages for the two masks of one accumulate call.
struct MaskNames {
    std::string pred = "prediction";
    std::string gt = "ground truth";
};

class ConfusionMatrix {
public:
    // num_classes in 1..255; ignore in num_classes..255, or -1 for "no ignore value".
    // Throws UsageError otherwise.
    explicit ConfusionMatrix(int num_classes, int ignore = 255);

    int num_classes() const { return k_; }
    int ignore() const { return ignore_; }

    // Adds n pixel pairs (pred[i], gt[i]). All or nothing: when a value is neither a class nor
    // the ignore value, throws Error "<file>: label <v> is not a class (0..K-1) nor the ignore
    // value <ignore> ..." naming names.pred or names.gt, and leaves the matrix unchanged.
    // Single-threaded; memory-bound (one pass, per-call histograms, runs of equal labels
    // counted eight at a time).
    void accumulate(const uint8_t* pred, const uint8_t* gt, std::size_t n,
                    const MaskNames& names = {});
    // Same for CV_8UC1 masks of equal size (any row stride); throws Error naming both files
    // when the sizes or types differ.
    void accumulate(const cv::Mat& pred, const cv::Mat& gt, const MaskNames& names = {});
    // Adds another matrix of the same class count and ignore value.
    void merge(const ConfusionMatrix& other);

    // Pixels with GT class `gt` (0..K-1) predicted as `pred` (0..K-1, or K for "ignore").
    int64_t count(int gt, int pred) const { return counts_[static_cast<std::size_t>(gt) * (k_ + 1) + pred]; }
    // Row-major K x (K + 1) counts.
    const std::vector<int64_t>& counts() const { return counts_; }
    int64_t ignored_pixels() const { return ignored_; }

    // Metrics as defined at the top of this header. `names` (K entries) label the classes;
    // empty gives "background", "class_1", ...
    Metrics metrics(const std::vector<std::string>& names = {}) const;

private:
    int k_;
    int ignore_;
    std::vector<int64_t> counts_;
    int64_t ignored_ = 0;
};

// One prediction / ground-truth pair already in memory (n labels each).
struct MaskPair {
    const uint8_t* pred;
    const uint8_t* gt;
    std::size_t n;
    MaskNames names;
};

// Accumulates every pair with `threads` workers (0 = all cores), each into its own matrix,
// merged at the end; the counts do not depend on the thread count. With per_pair set, also
// fills one matrix per pair. On bad labels throws the error of the first bad pair in order.
ConfusionMatrix accumulate_pairs(const std::vector<MaskPair>& pairs, int num_classes, int ignore,
                                 int threads = 0, std::vector<ConfusionMatrix>* per_pair = nullptr);

// ---- evaluating mask files (sightline eval) -------------------------------------------------

struct EvalOptions {
    fs::path pred;               // --pred: folder of predicted masks (<stem>.png)
    fs::path gt;                 // --gt: folder of GT masks, or a VOC root with --split
    std::string split;           // --split: read <gt>/ImageSets/Segmentation/<split>.txt and
                                 //          <gt>/SegmentationClass/<id>.png
    std::string classes;         // --classes: a count N, or a classes.txt (line i = class i);
                                 //            empty: <gt>/classes.txt when it exists
    int ignore = 255;            // --ignore: GT value not counted (-1: none)
    bool per_image = false;      // --per-image: also one matrix and metrics per image
    bool allow_missing = false;  // --allow-missing: skip GT masks without a prediction
    int threads = 0;             // --threads: 0 = all cores
};

struct ImageResult {
    std::string id;  // file stem
    Metrics metrics;
};

struct EvalResult {
    std::vector<std::string> class_names;
    std::vector<std::string> ids;      // evaluated masks, sorted
    std::vector<std::string> skipped;  // GT stems without a prediction (--allow-missing)
    ConfusionMatrix confusion{1, -1};
    Metrics metrics;
    std::vector<ImageResult> per_image;  // filled with per_image
};

// Class names from --classes: "N" gives "background", "class_1", ..., a file gives its lines.
std::vector<std::string> resolve_class_names(const std::string& classes, const fs::path& gt,
                                             const std::string& split);

// Pairs the masks, reads them (palette PNGs as indices, see palette.hpp) and accumulates, in
// parallel. Checks everything before returning: missing predictions (all listed), empty
// folders, size mismatches, bad labels and unreadable PNGs throw one Error line. progress
// (optional) is called from worker threads with (done, total).
EvalResult evaluate_masks(const EvalOptions& options,
                          const std::function<void(std::size_t, std::size_t)>& progress = {});

// A fixed-width text table: one row per class and the summary lines.
std::string format_metrics_table(const Metrics& metrics);

// Writes <dir>/metrics.json, metrics.csv, confusion.csv, confusion.png (row-normalised heat
// map with class labels) and, with per-image results, per_image.csv. Each file atomically.
void write_eval_outputs(const fs::path& dir, const EvalResult& result);

// The heat map alone: cell (i, j) = count(i, j) / t_i, viridis, class names on both axes.
// Returns CV_8UC3 RGB.
cv::Mat render_confusion_heatmap(const ConfusionMatrix& confusion,
                                 const std::vector<std::string>& names);

}  // namespace sightline
