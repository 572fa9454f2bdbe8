// Fully supervised semantic segmentation: U-Net (Ronneberger et al. 2015) and a light ResNet
// encoder-decoder, both built in C++ as TorchScript modules (they train here and open in
// Python with torch.jit.load); the training loop behind `sightline train segment`; inference
// behind `sightline segment` (whole image or sliding window, flip / multi-scale test-time
// augmentation, optional dense CRF).
//
// Shapes and ranges, once:
//   x       [B,3,H,W] float32, RGB pixels scaled to [0,1] then normalised with the model's
//           mean/std; H and W multiples of the model's size multiple (2^depth for unet, 16
//           for resnet_unet; inference pads to it and crops back).
//   logits  [B,K,H,W] = model.forward(x), K = classes INCLUDING background (channel = class id).
//   masks   CV_8UC1 (or [B,H,W] int64) class ids 0..K-1, 255 = ignore: not counted by the
//           loss nor by the metrics (evaluate.hpp's confusion matrix).
//   probabilities  float32 K x H x W planar (softmax, averaged over test-time augmentations),
//           the layout of crf.hpp and of the .npy files.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <torch/script.h>

#include "sightline/core.hpp"
#include "sightline/crf.hpp"
#include "sightline/data.hpp"
#include "sightline/evaluate.hpp"
#include "sightline/train.hpp"  // OptimizerKind, ScheduleKind

namespace sightline {

class DistributedGroup;  // distributed.hpp

// ---- architectures -----------------------------------------------------------------------------

struct SegArchOptions {
    int64_t num_classes = 0;              // K, background included (>= 2)
    int64_t base = 16;                    // unet: channels of level 0, level l has base * 2^l;
                                          // resnet_unet: width of the first encoder stage
    int64_t depth = 4;                    // unet: 2x2 poolings (1..6); input side multiple of 2^depth
    std::string upsample = "transposed";  // "transposed" (2x2 stride-2 transposed conv) or "bilinear"
    std::vector<int64_t> blocks = {1, 1, 1, 1};  // resnet_unet: basic blocks per encoder stage
    uint64_t seed = 1;                    // weight initialisation
    Norm norm = Norm::kBatch;             // after each convolution (architectures.hpp)
};

struct SegArchInfo {
    std::string name;
    std::string description;
    torch::jit::Module (*build)(const SegArchOptions&);
    int64_t (*size_multiple)(const SegArchOptions&);
};

// The table of built-in segmentation architectures ("unet", "resnet_unet"): --arch reads it.
const std::vector<SegArchInfo>& segmentation_architectures();
std::string segmentation_architecture_names();
// Throws UsageError "unknown segmentation architecture 'x' (choices: ...)".
const SegArchInfo& find_segmentation_architecture(const std::string& name);
// Validates (UsageError naming the flag) and builds in training mode. forward(x) -> logits.
torch::jit::Module build_segmentation_model(const std::string& name, const SegArchOptions& options);

// Saved as RUN/model.json and as module attributes (sightline_task = "segment",
// sightline_arch, sightline_class_names, sightline_mean, sightline_std,
// sightline_input_size, sightline_size_multiple), so a .pt alone can be used for inference.
struct SegmentModelCard {
    std::string arch;
    int64_t input_size = 0;       // training crop side
    int64_t size_multiple = 1;    // H, W of x must be multiples of this
    std::vector<std::string> class_names;  // K names, [0] = "background"
    std::vector<double> mean{0.485, 0.456, 0.406};
    std::vector<double> std{0.229, 0.224, 0.225};
    std::string task = "segment";          // "affinity": an embedding network (affinity.hpp)
};
std::string segment_model_card_json(const SegmentModelCard& card);
void attach_segment_model_card(torch::jit::Module& module, const SegmentModelCard& card);

// ---- data ----------------------------------------------------------------------------------------

// open_dataset(root, split) whose masks come from `masks/<id>.png` instead of
// SegmentationClass/ when `masks` is not empty (pseudo-masks of a weakly supervised
// pipeline: palette or grey index PNGs, 255 = ignore). Reading a sample throws Error naming
// the mask file when it is missing, its size differs from the image's or a value is neither a
// class id (0..K-1) nor 255. Labels then come from the override mask.
std::unique_ptr<Dataset> open_segmentation_dataset(const fs::path& root, const std::string& split,
                                                   const fs::path& masks = {});

// ---- losses --------------------------------------------------------------------------------------

struct SegLossOptions {
    double dice = 0.0;                  // weight of the soft Dice loss added to cross-entropy
    std::vector<double> class_weights;  // K cross-entropy weights; empty = all 1
};
// Cross-entropy with ignore index 255 (mean over labelled pixels, weighted mean with class
// weights) + dice * soft Dice loss (1 - (2 sum p g) / (sum p + sum g), per class over the
// batch's labelled pixels, averaged over the classes present in the target; as smp's
// DiceLoss). logits [B,K,H,W]; target [B,H,W] int64. A batch with no labelled pixel gives 0.
torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& target,
                                const SegLossOptions& options = {});

// ---- training ------------------------------------------------------------------------------------

// One-to-one with the flags of `sightline train segment`.
struct SegmentTrainOptions {
    fs::path data;                      // --data: dataset root (VOC layout with masks)
    fs::path masks;                     // --masks: folder of <id>.png replacing SegmentationClass/
                                        //   for the TRAINING split (pseudo-masks); val keeps the GT
    fs::path out;                       // --out: RUN folder
    std::string arch = "unet";          // --arch
    int64_t base = 16;                  // --base
    int64_t depth = 4;                  // --depth (unet)
    std::string upsample = "transposed";  // --upsample
    std::vector<int64_t> blocks = {1, 1, 1, 1};  // --blocks (resnet_unet)
    int64_t input_size = 0;             // --input-size: training crop side; 0 = first image's
                                        //   side rounded down to the size multiple
    int64_t epochs = 10;
    int64_t batch = 8;
    OptimizerKind optimizer = OptimizerKind::kAdamW;
    double lr = 0.0;                    // 0: 0.002 for adamw, 0.01 for sgd
    double momentum = 0.9;
    double weight_decay = -1.0;         // < 0: 1e-4
    ScheduleKind schedule = ScheduleKind::kPoly;  // the DeepLab schedule
    double warmup_epochs = 0.0;
    double dice = 0.0;                  // --dice: weight of the Dice loss (0 = CE only)
    std::vector<double> class_weights;  // --class-weights: K values
    bool flip = true;                   // --no-flip
    double scale_min = 0.75;            // --scale MIN,MAX: random rescale before the crop
    double scale_max = 1.25;
    bool jitter = false;                // --jitter: colour jitter
    std::string train_split = "train";
    std::string val_split;              // --val: empty = "val" when it exists; "none" = no validation
    uint64_t seed = 1;
    int workers = 2;                    // loader threads (never change the numbers)
    bool resume = false;
    int64_t stop_after_epoch = 0;       // debug: stop like a kill after this epoch
    Norm norm = Norm::kBatch;           // --norm: BatchNorm or GroupNorm
    // Data-parallel training (distributed.hpp), as TrainOptions::distributed: null for one process.
    std::shared_ptr<DistributedGroup> distributed;
    // Another network trained by this loop (the affinity network of affinity.hpp): its output
    // has `output_channels` channels instead of K, `loss(output, masks)` replaces the
    // segmentation loss, and `task` (with `loss_name`, recorded for resumes) names it in the card.
    int64_t output_channels = 0;
    std::function<torch::Tensor(const torch::Tensor& output, const torch::Tensor& masks)> loss;
    std::string task = "segment";
    std::string loss_name;
};

struct SegmentEpochMetrics {
    int64_t epoch = 0;                  // 1-based
    int64_t epochs = 0;
    double loss = 0.0;                  // mean training loss
    Metrics val;                        // val metrics (miou NaN without validation)
    bool best = false;                  // this epoch's val mIoU is the best so far (best.pt)
    double lr = 0.0;
    double data_wait_share = 0.0;
    double seconds = 0.0;
};

struct SegmentTrainCallbacks {
    std::function<void(int64_t epoch, int64_t step, int64_t steps, double loss)> on_step;
    std::function<void(const SegmentEpochMetrics&)> on_epoch;
    // Polled after every step; true = save a checkpoint and return (result.interrupted).
    std::function<bool()> stop_requested;
};

struct SegmentTrainSetup {
    std::size_t train_images = 0;
    std::size_t val_images = 0;
    int64_t num_classes = 0;
    int64_t input_size = 0;
    int64_t steps_per_epoch = 0;
    int64_t parameters = 0;
    int64_t start_epoch = 0;
    int64_t start_step = 0;
};

struct SegmentTrainResult {
    bool interrupted = false;
    int64_t epochs_done = 0;
    int64_t step_in_epoch = 0;
    fs::path model;        // RUN/model.pt, the last epoch's weights (only when finished)
    fs::path best_model;   // RUN/best.pt, best val mIoU so far (empty without validation)
    fs::path checkpoint;   // RUN/checkpoint/checkpoint.pt
    double best_miou = kUndefinedMetric;
    int64_t best_epoch = 0;
    Metrics last_val;      // the last epoch's validation metrics
};

// Trains and writes RUN/model.pt, RUN/best.pt, RUN/model.json, RUN/metrics.jsonl and
// RUN/checkpoint/checkpoint.pt (exact resume with options.resume). Everything is checked
// before anything is written (bad options, missing masks, an existing run without --resume,
// a checkpoint of other options): Error naming the file, RUN untouched. Per-epoch validation
// predicts each val image whole (padded to the size multiple) and accumulates one
// ConfusionMatrix over the split.
SegmentTrainResult train_segmenter(const SegmentTrainOptions& options, const SegmentTrainCallbacks& callbacks = {},
                                   const std::function<void(const SegmentTrainSetup&)>& on_setup = {});
// The same on opened datasets (val may be null). options.data only names the data in messages.
SegmentTrainResult train_segmenter(const Dataset& train, const Dataset* val, const SegmentTrainOptions& options,
                                   const SegmentTrainCallbacks& callbacks = {},
                                   const std::function<void(const SegmentTrainSetup&)>& on_setup = {});

// ---- inference -----------------------------------------------------------------------------------

// One-to-one with the flags of `sightline segment`.
struct SegmentOptions {
    fs::path model;                     // --model: a segmentation .pt (ours or any TorchScript
                                        //   model whose forward maps [B,3,H,W] -> [B,K,H,W])
    fs::path input;                     // --input: image or folder
    fs::path out;                       // --out: folder
    std::string classes;                // --classes: a count K or a classes.txt; must match the
                                        //   model's output channels (empty: the model's card)
    int64_t tile = 0;                   // --tile: sliding-window side (0 = whole image)
    double overlap = 1.0 / 3.0;         // --overlap: share of the tile shared with its neighbour
    bool flip = false;                  // --flip: average with the horizontally flipped image
    std::vector<double> scales = {1.0}; // --scales: multi-scale average (image resized by each)
    bool crf = false;                   // --crf: dense CRF on the probabilities
    DenseCrfOptions crf_options{};      // --crf-* flags
    bool probabilities = false;         // --probs: also <stem>.npy, K x H x W float32
    bool overlay = true;                // --no-overlay: no <stem>_overlay.png
};

// A loaded segmentation model: mean/std, classes and size multiple from its card attributes
// (ImageNet mean/std, multiple 32 and "class_<i>" names when absent).
class Segmenter {
public:
    // Throws Error naming the model file when it cannot be loaded, or when `classes` (a count
    // or a classes.txt) disagrees with the card's class list.
    explicit Segmenter(const fs::path& model, const std::string& classes = "");
    Segmenter(torch::jit::Module model, SegmentModelCard card, std::string name = "model");

    // probabilities (K x H x W planar, H x W = rgb's size) for an RGB CV_8UC3 image. Throws
    // Error naming `source` and the model when the model's output has != K channels or is
    // not [1,K,h,w].
    std::vector<float> probabilities(const cv::Mat& rgb, const SegmentOptions& options,
                                     const std::string& source = "image") const;
    // Argmax labels (CV_8UC1) of probabilities (after the CRF when options.crf).
    cv::Mat segment(const cv::Mat& rgb, const SegmentOptions& options, const std::string& source = "image",
                    std::vector<float>* probabilities_out = nullptr) const;

    int64_t num_classes() const;
    const SegmentModelCard& card() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

struct SegmentSummary {
    std::size_t images = 0;
    std::vector<fs::path> written;  // label PNGs
    double seconds = 0.0;
};

// Segments every image of options.input into options.out: <stem>.png (VOC palette labels),
// <stem>_overlay.png (colours over the image) unless !overlay, <stem>.npy with --probs.
// All inputs and options are checked before anything is written. progress(done, total).
SegmentSummary segment_images(const SegmentOptions& options,
                              const std::function<void(std::size_t, std::size_t)>& progress = {});

}  // namespace sightline
