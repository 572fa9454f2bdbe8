// Weakly supervised semantic segmentation: from image-level labels to pixel masks.
// CAM seeds of a trained multi-label classifier, background rules, confident regions, a
// threshold sweep against ground truth, pseudo-masks (optionally refined by the dense CRF) and
// the whole two-stage pipeline behind `sightline wsss run`. Conventions and reference numbers:
// docs/wsss.md. (The training objectives Puzzle-CAM,
// Mixup-CAM and SC-CAM are declared in sightline/wsss_objectives.hpp.)
//
// Shapes, once: an image is CV_8UC3 RGB, H x W. Raw class maps are [F,C,h,w] float32 from the
// classifier's feature resolution (F = 1, or 2 with the horizontally flipped copy second,
// C = object classes, map c = class id c + 1). Image CAMs are [n,H,W] float32 in [0,1] for the
// n classes the image is labelled with ("keys", class ids >= 1, ascending). Label maps
// (seeds, pseudo-masks) are CV_8UC1 H x W class ids, 255 = uncertain / ignore.
// On disk a CAM file is <id>.npy, float32 [C,H,W] with every object class: the maps of the
// labelled classes, zeros for the others.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <torch/types.h>

#include "sightline/affinity.hpp"
#include "sightline/core.hpp"
#include "sightline/crf.hpp"
#include "sightline/evaluate.hpp"
#include "sightline/train.hpp"  // WsssObjective

namespace sightline {

class Classifier;
class Dataset;

// ---- class activation maps ---------------------------------------------------------------

struct CamOptions {
    std::vector<double> scales = {1.0, 0.5, 1.5, 2.0};  // --scales: input resize factors
    bool flip = true;                                   // --no-flip: skip the mirrored pass
    bool use_explainer = false;  // --via-explain: CAMs from the explain engine even for built-in
                                 // models (the slow twin of the weight fast path)
    std::optional<std::array<float, 3>> mean, std;  // --mean/--std; unset = the model's stored
                                                     // ones, else ImageNet's (resolve_model_input)
};

// A classifier that has bias-free class maps: a global-average-pooling -> Linear head
// (Zhou et al. 2016), so M_c = sum_k w_ck A_k and logit_c = mean(M_c) + b_c.
class CamModel {
public:
    // Loads a TorchScript classifier. Built-in models (sightline_head == "gap_linear") read the
    // class weights from fc.weight; any other model is split by its features/head methods or
    // at its last 4-D activation and its head analysed: only a GAP -> Linear head has class
    // maps, anything else throws Error "<model>: seeds need class maps ...". Normalisation
    // mean/std: options' when set, else the model's stored ones, else ImageNet's.
    static CamModel load(const fs::path& path, const CamOptions& options = {});
    CamModel(CamModel&&) noexcept;
    CamModel& operator=(CamModel&&) noexcept;
    ~CamModel();

    // Raw bias-free class maps of a normalised batch x [B,3,h,w] -> [B,C,h',w'] (no ReLU).
    torch::Tensor class_maps(const torch::Tensor& x) const;
    // The image CAMs of one image for its labelled classes (multi-scale + flip, see cams_from_raw).
    torch::Tensor image_cams(const cv::Mat& rgb, const std::vector<int>& keys, const CamOptions& options) const;

    int64_t num_classes() const;
    const std::vector<std::string>& class_names() const;  // object classes, output order (may be empty)
    const fs::path& path() const;
    bool uses_explainer() const;  // false: the fc.weight fast path

private:
    CamModel();
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Sums the raw maps of every scale at full resolution: for each entry [F,C,h,w], ReLU, un-flip
// the second copy (F = 2), resize bilinearly (half-pixel centres) to height x width, add.
// Returns [C,H,W] (not normalised).
torch::Tensor sum_class_maps(const std::vector<torch::Tensor>& raw_per_scale, int64_t height, int64_t width);
// Keeps the labelled classes (keys, class ids >= 1) of summed maps [C,H,W] and divides each by
// its own maximum + 1e-5 -> [n,H,W] in [0,1). Throws Error for a key outside 1..C.
torch::Tensor normalise_cams(const torch::Tensor& summed, const std::vector<int>& keys);

// ---- seeds -------------------------------------------------------------------------------

// How the background score is made from the CAMs (notes/wsss.md 1.4).
struct BackgroundRule {
    enum class Kind { kThreshold, kPower };
    Kind kind = Kind::kThreshold;
    double value = 0.15;  // threshold t (bg = t) or alpha (bg = (1 - max_c CAM_c)^alpha)

    // "thresh:T" or "power:ALPHA" (--bg); throws UsageError naming --bg otherwise.
    static BackgroundRule parse(const std::string& text);
    std::string to_string() const;
};

// Background score [H,W] for cams [n,H,W] (n may be 0: the rule's value of an all-zero CAM).
torch::Tensor background_score(const torch::Tensor& cams, const BackgroundRule& rule);
// Seed: keys[argmax over [bg, cams]] per pixel, 0 where the background wins (ties go to the
// background, then to the lower key). Returns CV_8UC1 H x W.
cv::Mat seed_labels(const torch::Tensor& cams, const std::vector<int>& keys, const BackgroundRule& rule);
// Indices into [bg, keys...] instead of class ids (for the CRF's label unary).
cv::Mat seed_indices(const torch::Tensor& cams, const BackgroundRule& rule);
// Confident regions (IRN's cam_to_ir_label): label = fg where fg is an object; where fg is
// background, 0 if bg is background too, else 255. fg: seeds with a high threshold
// (foreground sure), bg: seeds with a low threshold (background sure). Any label maps of the
// same size (class ids or indices).
cv::Mat confident_labels(const cv::Mat& fg, const cv::Mat& bg);

struct SeedOptions {
    BackgroundRule background{};  // --bg thresh:0.15 | power:ALPHA
    // --confident FG,BG: 255 between the two thresholds (IRN 0.30,0.05; Puzzle-CAM 0.40,0.10);
    // both 0 = off. When on, it replaces `background`.
    double confident_fg = 0.0;
    double confident_bg = 0.0;
    bool confident() const { return confident_fg > 0.0; }
};
// Throws UsageError naming the flag (threshold outside (0, 1), alpha <= 0, FG <= BG).
void validate(const SeedOptions& options);
// Seeds of one image by the options (plain or confident).
cv::Mat make_seeds(const torch::Tensor& cams, const std::vector<int>& keys, const SeedOptions& options);

// ---- pseudo-masks ------------------------------------------------------------------------

struct PseudoOptions {
    SeedOptions seeds{};
    bool crf = true;                  // --no-crf
    DenseCrfOptions crf_options{};    // --gaussian, --bilateral, --iterations, --threads
    // --unary labels | probs: the CRF unary from the seed labels with a confidence (IRN /
    // Puzzle-CAM crf_inference_label) or from [bg, CAMs] rescaled to sum 1 (PSA crf_inference;
    // -log p differs from pydensecrf's unnormalised call by a per-pixel constant, which the
    // mean field ignores, except where p is clipped at 1e-5).
    std::string unary = "labels";
    float confidence = 0.7f;          // --confidence: gt_prob of the label unary
    double min_confidence = 0.0;      // --min-confidence: 255 where the CRF's max Q is lower
};
void validate(const PseudoOptions& options);

// Seeds -> optional CRF -> label map (class ids, 255 uncertain). `crf` is reused between images
// (lattice buffers); it must have been made with options.crf_options.
cv::Mat make_pseudo_mask(const cv::Mat& rgb, const torch::Tensor& cams, const std::vector<int>& keys,
                         const PseudoOptions& options, DenseCrf* crf);

// ---- CAM files ---------------------------------------------------------------------------

// Writes <path> float32 [C,H,W]: the image CAMs at their keys' rows, zeros elsewhere.
void write_cam_file(const fs::path& path, const torch::Tensor& cams, const std::vector<int>& keys,
                    int64_t num_classes);
// Reads a CAM file for an image of height x width labelled `keys`, checking everything (each
// throws Error naming the file): shape [C,H,W] with C = num_classes, the size of the image,
// every value finite and in [0, 1], and no non-zero map for a class the image is not labelled
// with. Returns [n,H,W] for the keys.
torch::Tensor read_cam_file(const fs::path& path, const std::vector<int>& keys, int64_t num_classes,
                            int64_t height, int64_t width);

// ---- threshold sweep ---------------------------------------------------------------------

// Thresholds lo, lo + step, ... <= hi (+1e-9): "0.05:0.80:0.05" (--thresholds) or a comma list.
std::vector<double> parse_thresholds(const std::string& text);
inline std::vector<double> default_sweep_thresholds() { return parse_thresholds("0.05:0.80:0.05"); }

// Seeds at every threshold accumulated into one confusion matrix each (dataset level, as
// notes/wsss.md 1.8: GT 255 not counted, mIoU over all classes with background).
class ThresholdSweep {
public:
    ThresholdSweep(int num_classes, std::vector<double> thresholds);
    // One image: its CAMs [n,H,W], keys and ground-truth mask (CV_8UC1 H x W).
    void add(const torch::Tensor& cams, const std::vector<int>& keys, const cv::Mat& gt,
             const MaskNames& names = {});
    void merge(const ThresholdSweep& other);
    const std::vector<double>& thresholds() const { return thresholds_; }
    const std::vector<ConfusionMatrix>& confusions() const { return confusions_; }

private:
    int num_classes_;
    std::vector<double> thresholds_;
    std::vector<ConfusionMatrix> confusions_;
};

struct SweepResult {
    std::vector<double> thresholds;
    std::vector<Metrics> metrics;  // one per threshold
    std::size_t best = 0;          // index of the highest mIoU (first on ties)
    double best_threshold() const { return thresholds.at(best); }
    double best_miou() const { return metrics.at(best).miou; }
};
SweepResult sweep_result(const ThresholdSweep& sweep, const std::vector<std::string>& class_names = {});
std::string sweep_json(const SweepResult& result);   // {"best_threshold", "best_miou", "rows": [...]}
std::string sweep_table(const SweepResult& result);  // one line per threshold: t, mIoU, fg mIoU

// ---- dataset-level stages (the subcommands) ------------------------------------------------

// Where the CAMs come from: a model (computed) or a folder of CAM files (read and checked).
struct CamSource {
    fs::path model;  // --model
    fs::path cams;   // --cams
    CamOptions options{};
};

using StageProgress = std::function<void(std::size_t done, std::size_t total)>;

struct SeedsRunOptions {
    CamSource source{};
    fs::path data;               // --data: dataset root (open_dataset)
    std::string split = "train"; // --split
    fs::path out;                // --out: <id>.png seeds, cams/<id>.npy (computed CAMs), metrics.json
    SeedOptions seeds{};
    bool save_cams = true;       // --no-save-cams
};
struct SeedsRunResult {
    std::size_t images = 0;
    bool evaluated = false;      // the split has masks
    Metrics metrics;             // of the seeds against the masks
};
// `sightline wsss seeds`. Checks the whole input first (model head, every CAM file, sizes,
// labels); nothing is written on bad input.
SeedsRunResult run_seeds(const SeedsRunOptions& options, const StageProgress& progress = {});

struct SweepRunOptions {
    CamSource source{};
    fs::path data;
    std::string split = "train";
    std::vector<double> thresholds = default_sweep_thresholds();
    fs::path out;                // optional: sweep.json, sweep.csv
};
// `sightline wsss sweep`: needs masks in the split.
SweepResult run_sweep(const SweepRunOptions& options, const StageProgress& progress = {});

struct PseudoRunOptions {
    CamSource source{};
    fs::path data;
    std::string split = "train";
    fs::path out;                // <id>.png pseudo-masks (VOC palette, 255 uncertain), metrics.json
    PseudoOptions pseudo{};
};
struct PseudoRunResult {
    std::size_t images = 0;
    bool evaluated = false;
    Metrics metrics;             // against the split's masks (255 in the pseudo-mask = a miss)
    double ignored_share = 0.0;  // share of pixels left 255
};
PseudoRunResult run_pseudo(const PseudoRunOptions& options, const StageProgress& progress = {});

// ---- the whole pipeline --------------------------------------------------------------------

// `sightline wsss run`: one folder in, every stage's output in OUT, resumable stage by stage.
struct WsssRunOptions {
    fs::path data;                    // --data: dataset with train (image labels used, masks only
                                      //         for reporting) and val (masks for the final score)
    fs::path out;                     // --out
    std::string train_split = "train";
    std::string val_split = "val";    // empty or missing: no final evaluation
    // stage 1: the classifier (TrainOptions of train.hpp; multi-label)
    std::string arch = "resnet_gap";
    WsssObjective objective = WsssObjective::kCam;  // --objective
    int64_t epochs = 30;
    int64_t batch = 32;
    double lr = 0.2;
    double warmup_epochs = 1.0;
    int64_t width = 16;
    int64_t output_stride = 8;
    // stage 2: seeds and pseudo-masks
    CamOptions cams{};
    std::vector<double> thresholds = default_sweep_thresholds();
    PseudoOptions pseudo{};           // pseudo.seeds.background is set from the sweep's best
    // stage 2b (--affinity): confident labels -> affinity network -> random-walked CAMs, whose
    // own sweep and pseudo-masks replace the CAMs' (affinity.hpp)
    bool affinity = false;
    AffinityOptions affinity_options{};
    // --affinity-confident FG,BG; 0,0 = from the sweep's best threshold t: FG = t + (1 - t)/6,
    // BG = t/3 (IRN's 0.30, 0.05 at its threshold 0.15)
    double affinity_fg = 0.0, affinity_bg = 0.0;
    int64_t affinity_epochs = 10;                   // --affinity-epochs
    // the walked maps are flatter than CAMs, so their sweep reaches higher
    std::vector<double> affinity_thresholds = parse_thresholds("0.05:0.95:0.05");
    // stage 3: the segmenter on the pseudo-masks
    int64_t segment_epochs = 30;
    uint64_t seed = 1;
};

struct WsssStageReport {
    std::string stage;                // "classifier", "cams", "sweep", "seeds", "pseudo", ...
    bool skipped = false;             // outputs existed
    double seconds = 0.0;
    std::string summary;              // one line, e.g. "best threshold 0.25, mIoU 0.513"
};

struct WsssRunResult {
    std::vector<WsssStageReport> stages;
    double best_threshold = 0.0;
    double seeds_miou = kUndefinedMetric;    // train seeds at the best threshold
    double affinity_threshold = 0.0;         // with --affinity: the walked CAMs' best threshold
    double affinity_miou = kUndefinedMetric; // and their seeds' train mIoU there
    double affinity_fg = 0.0, affinity_bg = 0.0;  // the confident thresholds used
    double pseudo_miou = kUndefinedMetric;   // train pseudo-masks (+ CRF when on)
    double final_miou = kUndefinedMetric;    // segmenter on val
    fs::path summary;                        // OUT/summary.json
};

// Progress of the pipeline: a stage starts (done = 0) and advances (done of total).
using WsssProgress = std::function<void(const std::string& stage, std::size_t done, std::size_t total)>;

// Runs (or resumes) every stage; a stage whose outputs exist is skipped. Throws Error (bad
// data, bad options) before writing anything of the failing stage.
WsssRunResult run_wsss(const WsssRunOptions& options, const WsssProgress& progress = {});

}  // namespace sightline
