// Sanity checks for explanation methods (Adebayo et al. 2018, "Sanity Checks for Saliency
// Maps") and faithfulness scores that need no object masks (deletion / insertion, Average
// Drop / Increase in Confidence, ROAD).
//
// Maps here are one per (image, target): [H,W] float32 at the input resolution. Final maps
// are in [0,1] (explain.hpp); signed raw maps are resized to H x W bilinearly first.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <torch/script.h>

#include "sightline/explain.hpp"
#include "sightline/tensor_io.hpp"

namespace sightline {

// done, total: called after each unit of work (the CLI draws a bar; nothing when null).
using Progress = std::function<void(std::size_t, std::size_t)>;

// ---- similarity of two maps (CV_32FC1 of the same size; throws Error otherwise) -----------

// Spearman rank correlation: Pearson correlation of the ranks, ties given their average rank
// (as scipy.stats.spearmanr). Defined as 0 when either map is constant (no ranking at all).
double spearman(const cv::Mat& a, const cv::Mat& b);
// Pearson correlation (n normalisation cancels); 0 when either side is constant.
double pearson(const std::vector<double>& a, const std::vector<double>& b);
// Mean SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, dynamic
// range `range`, statistics with reflected borders (OpenCV BORDER_REFLECT_101), mean over every
// pixel. Maps smaller than 11x11 use the whole map as one window.
double ssim(const cv::Mat& a, const cv::Mat& b, double range = 1.0);
// Pearson correlation of the HOG features of the two maps (uint8(255 * clamp(map, 0, 1)); 8x8
// cells, 16x16 blocks, stride 8, 9 bins, OpenCV's HOGDescriptor on the largest multiple-of-8
// window). Maps must be at least 16x16.
double hog_pearson(const cv::Mat& a, const cv::Mat& b);
// Discrete entropy (natural log) of the map's values in `bins` equal-width bins spanning their
// minimum to maximum (numpy.histogram's bins, then scipy.stats.entropy of the counts): the
// complexity measure of efficient MPRT (Hedström et al. 2023). 0 for a constant map.
double discrete_entropy(const cv::Mat& map, int bins = 100);
// The edge-detector baseline: Sobel gradient magnitude of the grey image (3x3 kernels),
// min-max normalised to [0,1]. rgb: CV_8UC3.
cv::Mat sobel_map(const cv::Mat& rgb);

// ---- parameter randomisation -------------------------------------------------------------

// `depth` that makes every module owning parameters its own block: Adebayo et al.'s layer-by-layer
// cascade (every Conv, BatchNorm and Linear), the CLI's `--depth layers`.
inline constexpr int kEveryLayer = 1 << 30;

// A unit of randomisation: modules whose parameters are re-initialised together.
struct ParameterBlock {
    std::string name;                  // dotted module path, "(root)" for the root's own parameters
    std::vector<std::string> modules;  // dotted paths of the modules owning parameters or buffers
    int64_t parameters = 0;            // number of scalar parameters
};

// The blocks of a model, input side first: the submodules `depth` levels below the root that
// hold parameters, in definition order; parameters held directly by a module above that depth
// form their own block, placed last (treated as the output side). kEveryLayer: every module that
// owns parameters, each a block. Throws Error naming `source` when the model has no parameters.
std::vector<ParameterBlock> parameter_blocks(const torch::jit::Module& model, int depth,
                                             const std::string& source);

// Re-initialises every module of the block in place with PyTorch's default initialiser for its
// type, from a generator seeded by (seed, module path), so a block gets the same values in
// cascading and independent runs:
//   BatchNorm / running statistics: weight 1, bias 0, running_mean 0, running_var 1, count 0;
//   other modules: a weight of 2+ dims ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(fan_in),
//   1/sqrt(fan_in)), fan_in = size(1) * prod(kernel); a 1-D parameter ~ U(+-1/sqrt(fan_in)) of
//   the module's weight (as Conv/Linear biases), or U(+-1/sqrt(n)) without one.
void reinitialise(torch::jit::Module& model, const ParameterBlock& block, uint64_t seed);

// ---- `sightline sanity` ----------------------------------------------------------------

struct SanityOptions {
    fs::path model;
    std::string layer;                 // split for the CAM methods (empty = model's own / automatic)
    fs::path input;                    // image or folder (images and .npy tensors)
    std::vector<std::string> methods{"saliency", "gradcam", "hirescam", "guidedbackprop", "guidedgradcam"};
    fs::path random_model;             // optional: same architecture trained on shuffled labels
    bool independent = false;          // one block at a time instead of cascading
    int depth = 1;                     // module depth of a block (1 = the root's children; kEveryLayer)
    uint64_t seed = 0;                 // re-initialisation seed
    int max_images = 16;               // first N inputs (sorted)
    int batch = 8;                     // images per explain() call
    Preprocess preprocess;
    ExplainOptions explain;
    bool edge_baseline = true;         // add the Sobel row
    // Random-logit test (Sixt et al. 2020): explain the original model for a uniformly drawn other
    // class of each image (seeded) and compare with the top-1 class's map.
    bool random_logit = true;
    // Smooth MPRT (Hedström et al. 2023): with smooth_samples >= 2, every explanation is also
    // averaged over that many copies of the input, the last without noise and the others with
    // Gaussian noise of std smooth_noise x (max - min) of the image (the same draws at every
    // step), and the checks are repeated on the averaged maps. 0 = off.
    int smooth_samples = 0;
    double smooth_noise = 0.1;
    // Efficient MPRT: entropy of the raw maps in this many bins, original vs fully randomised model.
    int entropy_bins = 100;
    // Shard `shard_index` of `shard_count` (`--shard I/N`): the inputs are cut into blocks of
    // `batch` (in input order) and this run takes every N-th block from block I. Every draw (the
    // random-logit classes, smooth MPRT's noise) is made for the whole input set and sliced, and
    // every model call sees the single run's blocks, so merge_sanity_shards() gives the single
    // run's numbers bit for bit.
    int shard_index = 0, shard_count = 1;
    // Verdict: a method passes when `verdict_metric`, averaged over images, is below `threshold`
    // at the step `verdict_on` names: "top" (default) the first model step, the top block (the
    // logits layer) re-initialised; "curve" the mean over every model step (for cascading, the
    // area under the similarity curve). The data-randomisation step gets its own verdict by the
    // same threshold.
    std::string verdict_metric = "spearman_abs";
    std::string verdict_on = "top";
    double threshold = 0.5;
};

// The four similarity metrics, in table order.
inline const std::array<const char*, 4> kSimilarityMetrics = {"spearman", "spearman_abs", "ssim", "hog"};
// The random-logit test's metric, as Sixt et al. 2020 and Quantus: SSIM of the final maps, no
// absolute values (another class's raw map is often close to the negative of the target's).
inline constexpr const char* kRandomLogitMetric = "ssim";

struct SimilarityStats {
    double mean = 0, std = 0;          // over images (std with n - 1)
    std::vector<double> per_image;
};

struct SanityStep {
    std::string name;                  // "fc", "+layer4" (cascading), "data: shuffled.pt"
    std::vector<std::string> randomised;  // blocks re-initialised at this step
    bool data = false;                 // the data-randomisation model
    bool random_logit = false;         // the original model, explained for another class
};

// One test's verdict for one method; the rules are fixed in docs/sanity.md before any run.
struct TestVerdict {
    std::string test;                  // mprt, data, random_logit, smooth_mprt, emprt
    double value = 0;                  // the number the rule reads (mean over images)
    bool passes = false;
};

// Efficient MPRT of one method: discrete entropy of the raw maps of the original and of the fully
// randomised model, and the relative rise (H_random - H_original) / H_original per image (images
// whose original map is constant, H = 0, are left out and counted).
struct ComplexityRise {
    SimilarityStats original, randomised, rise;
    int constant_maps = 0;
};

struct SanityVerdict {
    bool passes = false;
    double value = 0;                  // the verdict metric at the verdict's step (mean over images)
    std::string step;                  // the step's name ("fc") or "mean over N steps"
    bool data_passes = false;          // same rule against the shuffled-label model (if given)
    double data_value = 0;
    std::vector<TestVerdict> tests;    // every test that ran, in the order of TestVerdict::test
};

// What a shard covers (SanityReport::shard; count 1 for a whole run).
struct SanityShard {
    int index = 0, count = 1;
    std::size_t inputs = 0;                  // images of the whole run
    std::vector<std::size_t> image_indices;  // this shard's images, positions in the whole run's list
    int batch = 0;
    std::string model, input, random_model;  // what was run, to refuse a merge of another job's shards
    uint64_t seed = 0;
    std::vector<int64_t> shape;              // one input's [1,3,H,W]
};

struct SanityReport {
    SanityShard shard;
    std::vector<std::string> images;   // input paths
    std::vector<int64_t> targets;      // the original model's top-1 class, kept for every step
    std::vector<int64_t> random_targets;  // the random-logit step's classes (empty when it did not run)
    std::vector<SanityStep> steps;     // not including the original model
    std::vector<std::string> methods;  // the requested ones, then "sobel" if edge_baseline
    // similarity[method][step][metric] (metric in kSimilarityMetrics order)
    std::vector<std::vector<std::array<SimilarityStats, 4>>> similarity;
    // The same for the smoothed maps (smooth MPRT; empty when smooth_samples < 2).
    std::vector<std::vector<std::array<SimilarityStats, 4>>> smooth_similarity;
    int smooth_samples = 0;
    double smooth_noise = 0;
    std::vector<ComplexityRise> complexity;  // per method: efficient MPRT
    int entropy_bins = 0;
    std::vector<SanityVerdict> verdicts;   // per method
    std::string verdict_metric;
    std::string verdict_on;
    double threshold = 0;
    bool independent = false;
    // For the picture grid: the first image and each method's final map at the original model
    // (column 0) and after each step.
    cv::Mat display;                   // CV_8UC3 RGB
    std::vector<std::vector<cv::Mat>> first_maps;  // [method][1 + step] CV_32FC1 in [0,1]
    double seconds = 0;
};

// Runs the checks. Throws Error for an unreadable model or input, a model without parameters,
// fewer than 2 images, an unknown method (UsageError).
SanityReport run_sanity(const SanityOptions& options, const Progress& progress = {});
// The same checks on a model and inputs in memory (the Python API); options.model, .input,
// .random_model, .max_images and .preprocess are not used. The modules are copied, never
// changed; `name` names the model in messages; items: at least 2, of one size (read_input's).
SanityReport run_sanity(const torch::jit::Module& model, const std::string& name, const std::vector<InputItem>& items,
                        const SanityOptions& options, const torch::jit::Module* random_model = nullptr,
                        const Progress& progress = {});
// The output folders of `sanity --shard I/N` runs (their sanity.json) joined into the whole run's
// report: per-image values put back in input order, means, spreads and verdicts recomputed as the
// single run computes them; `seconds` is the sum of the shards'. `display` and `first_maps` stay
// empty (the picture is shard 0's sanity.png). Throws Error with one line for a missing, repeated
// or foreign shard. `first_shard`, when given, receives shard 0's folder (its picture and
// preprocessing are the run's).
SanityReport merge_sanity_shards(const std::vector<fs::path>& shard_dirs, fs::path* first_shard = nullptr);
// Mean and spread (std with n - 1; 0 for one value) of per-image values, summed in their order.
SimilarityStats similarity_stats(std::vector<double> per_image);
// Efficient MPRT from per-image entropies of the original and the fully randomised maps.
ComplexityRise complexity_from_entropies(const std::vector<double>& original, const std::vector<double>& randomised);
// The verdicts of report.similarity (steps, methods and similarity filled) by the rule of
// SanityOptions; UsageError for an unknown verdict_on or metric.
std::vector<SanityVerdict> sanity_verdicts(const SanityReport& report, const std::string& verdict_metric,
                                           const std::string& verdict_on, double threshold);
// The report as JSON (sanity.json) and as a text table (method x step x metric, then verdicts).
nlohmann::json sanity_json(const SanityReport& report);
std::string sanity_table(const SanityReport& report);
// Each test's rule in words, by test name (sanity.json's "test_rules").
std::map<std::string, std::string> sanity_test_rules(const SanityReport& report);

// ---- faithfulness scores (`sightline score`) ---------------------------------------------

// What a perturbation metric reads from the model: the softmax probability of the target
// (pytorch-grad-cam's ClassifierOutputSoftmaxTarget) or its logit (ClassifierOutputTarget).
enum class ScoreOutput { kProbability, kLogit };

// Area under a curve sampled at x = 0, 1/n, ..., 1 (trapezoid rule); `y` has n + 1 values.
double curve_auc(const std::vector<double>& y);

// Pixel order of a map [H,W]: indices of the largest values first, ties in raster order.
std::vector<int64_t> relevance_order(const torch::Tensor& map);

// Deletion (remove the most relevant pixels first, replacing them by `baseline`) or insertion
// (start from `baseline`, put the most relevant pixels back) curve of one image, n + 1 points
// at 0, 1/n, ..., 1 of the pixels (count rounded down). x, baseline [3,H,W]; map [H,W] (throws
// Error naming `source` when its size differs from the image). Forwards `batch` inputs at once.
std::vector<double> perturbation_curve(const Classifier& model, const torch::Tensor& x,
                                       const torch::Tensor& baseline, const torch::Tensor& map,
                                       int64_t target, bool insertion, int steps, int batch,
                                       ScoreOutput output, const std::string& source = "map");

// RISE's blur baseline: Gaussian blur of x [3,H,W] (11x11, sigma 5, reflected borders).
torch::Tensor blurred(const torch::Tensor& x);

// numpy.percentile(values, p) with linear interpolation.
double percentile(std::vector<float> values, double p);

// ROAD's noisy linear imputer (Rong et al. 2022, arXiv:2202.00449, as pytorch-grad-cam's
// NoisyLinearImputer): each pixel with keep == 0 becomes the weighted mean of its 8 neighbours
// (4-neighbours 1/6, diagonals 1/12, weights of neighbours outside the image dropped), all
// removed pixels solved jointly (conjugate gradients on the symmetric positive definite
// system), then + noise * N(0,1). img [C,H,W], keep [H,W] (1 keep, 0 impute). When nothing is
// kept the system is singular and its minimum-norm solution, 0 everywhere (+ noise), is used.
torch::Tensor road_impute(const torch::Tensor& img, const torch::Tensor& keep, double noise,
                          torch::Generator generator = {});
// The same system solved densely by Gaussian elimination (the slow twin for tests).
torch::Tensor road_impute_dense(const torch::Tensor& img, const torch::Tensor& keep);

struct ScoreOptions {
    fs::path model;
    std::string layer;
    fs::path input;                    // image or folder
    std::vector<std::string> methods{"gradcam", "hirescam"};
    fs::path maps;                     // optional: an `explain --out` folder (summary.json) to score
    int max_images = 16;
    Preprocess preprocess;
    ExplainOptions explain;
    std::string baseline = "blur";     // deletion/insertion baseline: blur | constant
    float fill = 0.0f;                 // constant baseline, in normalised input units
    int steps = 32;                    // deletion / insertion curve points - 1
    int batch = 16;                    // forwards per batch
    ScoreOutput output = ScoreOutput::kProbability;
    std::vector<double> road_percentiles{10, 20, 30, 40, 50, 60, 70, 80, 90};
    double noise = 0.01;               // ROAD imputer noise (0 = deterministic)
    uint64_t seed = 0;
    bool road = true;
};

// Per method, means over images (per-image values in `per_image`).
struct MethodScores {
    std::string method;
    double deletion_auc = 0, insertion_auc = 0;
    double average_drop = 0;           // pytorch-grad-cam DropInConfidence: max(0, s - s(x*map))
    double increase = 0;               // IncreaseInConfidence: share of images with s(x*map) > s
    double average_drop_percent = 0;   // Chattopadhyay et al.: 100 max(0, s - s')/s
    double road_morf = 0, road_lerf = 0, road_combined = 0;  // mean changes; combined = (lerf - morf)/2
    std::vector<double> deletion_curve, insertion_curve;     // mean curves
    std::map<std::string, std::vector<double>> per_image;
};

struct ScoreReport {
    std::vector<std::string> images;
    std::vector<MethodScores> methods;
    int64_t forwards = 0;
    double seconds = 0;                // perturbation forwards and imputation
    double images_per_second = 0;      // perturbed inputs through the model per second
};

ScoreReport run_score(const ScoreOptions& options, const Progress& progress = {});
nlohmann::json score_json(const ScoreReport& report);
std::string score_table(const ScoreReport& report);

// Average Drop / Increase in Confidence of one batch (pytorch-grad-cam's
// CamMultImageConfidenceChange): change = s(x * map) - s(x) per image. x [B,3,H,W], maps [B,H,W].
std::vector<double> confidence_change(const Classifier& model, const torch::Tensor& x,
                                      const torch::Tensor& maps, const std::vector<int64_t>& targets,
                                      ScoreOutput output);
// ROAD change for one percentile: s(imputed) - s(x); most relevant first removes map >=
// percentile(map, p), least relevant first does the same on 1 - map.
std::vector<double> road_change(const Classifier& model, const torch::Tensor& x, const torch::Tensor& maps,
                                const std::vector<int64_t>& targets, double percentile_p,
                                bool most_relevant_first, double noise, torch::Generator generator,
                                ScoreOutput output);

}  // namespace sightline
