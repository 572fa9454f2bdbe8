// Classifier training: tensor batches from a sightline::Dataset, objectives, learning-rate
// schedules, checkpoints with exact resume, and the training loop behind
// `sightline train classify`.
//
// Tensors: images [B,3,S,S] float32, pixels scaled to [0,1] then normalised per channel with
// the run's mean/std; targets [B,K] float32 in [0,1], K = object classes, column = class id - 1
// (one-hot for single-label data, multi-hot for multi-label data, convex mixtures with mixup).
// Determinism: every random choice (data order, augmentation, mixup) is drawn from a stream
// seeded by (seed, epoch, batch or sample), never from shared state, so a batch is the same
// whichever worker thread builds it and after a resume.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "sightline/architectures.hpp"
#include "sightline/core.hpp"
#include "sightline/data.hpp"

namespace sightline {

class DistributedGroup;  // distributed.hpp

// ---- batches ---------------------------------------------------------------------------------

struct LoaderOptions {
    int64_t batch_size = 32;
    int64_t input_size = 96;          // S: every image is resized (or random-resized-cropped) to SxS
    bool shuffle = true;              // a new order each epoch, from (seed, epoch)
    bool drop_last = true;            // only full batches (fixed steps per epoch, sane BatchNorm)
    bool augment = false;             // data.hpp's augment(): crop / flip / colour jitter below
    AugmentOptions augment_options{}; // .size is set to input_size
    double mixup_alpha = 0.0;         // > 0: mix each batch with a permutation of itself
    std::vector<double> mean = {0.485, 0.456, 0.406};  // ImageNet statistics
    std::vector<double> std = {0.229, 0.224, 0.225};
    int workers = 2;                  // threads reading and transforming samples
    int prefetch = 4;                 // batches prepared ahead of the consumer
    uint64_t seed = 1;
    // Segmentation: also fill Batch::masks from each sample's mask (which must exist).
    bool masks = false;
    // Data-parallel training: this process builds rows [i*B/n, (i+1)*B/n) of every batch (B a
    // multiple of n), so the ranks share each batch of the single-process order; Batch::index
    // stays the batch's place in the epoch. Mixup then mixes within a rank's rows.
    int shard_index = 0, shard_count = 1;
    // When set, replaces augment() / resize for every sample (it must leave an SxS image and
    // mask); called with the sample's own stream of (seed, epoch, sample).
    std::function<void(Sample&, Rng&)> transform;
};

struct Batch {
    int64_t index = 0;                  // position in the epoch
    torch::Tensor images;               // [B,3,S,S]
    torch::Tensor targets;              // [B,K], mixed when mixup is on
    std::vector<std::size_t> samples;   // dataset indices of the rows
    double mixup_lambda = 1.0;          // targets = lambda * own + (1 - lambda) * partner's
    std::vector<std::size_t> partner;   // row each row was mixed with (empty without mixup)
    torch::Tensor masks;                // [B,S,S] int64 class ids, 255 = ignore (LoaderOptions::masks)
};

// Prefetches batches with worker threads; next() returns them in epoch order.
class BatchLoader {
public:
    // `labels[i]` (class ids >= 1) replaces sample i's own labels when given, e.g. shuffled
    // labels for the data-randomisation check; it must then have data.size() entries.
    BatchLoader(const Dataset& data, LoaderOptions options,
                std::vector<std::vector<int>> labels = {});
    ~BatchLoader();
    BatchLoader(const BatchLoader&) = delete;
    BatchLoader& operator=(const BatchLoader&) = delete;

    int64_t batches_per_epoch() const;
    // The order in which epoch `epoch` visits the samples.
    std::vector<std::size_t> epoch_order(int64_t epoch) const;
    // Starts (or restarts) epoch `epoch` at batch `first_batch`; discards prefetched batches.
    void start_epoch(int64_t epoch, int64_t first_batch = 0);
    // The next batch of the epoch, or nothing after the last one. Rethrows a worker's error
    // (for example a corrupt image, named by the dataset).
    std::optional<Batch> next();
    // Seconds next() spent waiting for workers since the last start_epoch().
    double wait_seconds() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

// ---- objectives and metrics ------------------------------------------------------------------

enum class Objective {
    kSingleLabel,  // softmax cross-entropy: one class per image
    kMultiLabel,   // multi-label soft margin (a sigmoid per class)
};
std::string objective_name(Objective objective);  // "cross_entropy", "multilabel_soft_margin"

// Mean loss over the batch. logits [B,K]; targets [B,K] in [0,1] (soft targets allowed).
// label_smoothing eps: single-label targets become (1-eps) t + eps/K (Szegedy et al. 2016),
// multi-label ones (1-eps) t + eps/2.
torch::Tensor classification_loss(Objective objective, const torch::Tensor& logits,
                                  const torch::Tensor& targets, double label_smoothing = 0.0);

// Average precision of one class: mean over positives of precision at their rank (scores
// sorted descending, ties by index). scores, positives: [N]. NaN when there is no positive.
double average_precision(const torch::Tensor& scores, const torch::Tensor& positives);
// Mean of average_precision over the classes (columns) that have a positive; NaN if none.
double mean_average_precision(const torch::Tensor& scores, const torch::Tensor& targets);
// Share of rows whose top-1 class is one of the row's labels (targets > 0.5); rows without
// a label are skipped. NaN when no row has a label.
double top1_accuracy(const torch::Tensor& logits, const torch::Tensor& targets);

// ---- choices: one enum and one table each (flag value <-> enum) ------------------------------

enum class OptimizerKind { kSgd, kAdamW };
enum class ScheduleKind { kCosine, kPoly };
// The weakly supervised training objectives (wsss_objectives.hpp): the plain loss, Puzzle-CAM,
// Mixup-CAM, Sub-category CAM.
enum class WsssObjective { kCam, kPuzzle, kMixup, kSubcategory };

// The flag values, in help order: "sgd", "adamw" | "cosine", "poly" | "cam", "puzzle",
// "mixup", "subcategory". Run folders and model cards store these names.
const std::vector<std::pair<std::string, OptimizerKind>>& optimizer_choices();
const std::vector<std::pair<std::string, ScheduleKind>>& schedule_choices();
const std::vector<std::pair<std::string, WsssObjective>>& objective_choices();
std::string to_string(OptimizerKind kind);
std::string to_string(ScheduleKind kind);
std::string to_string(WsssObjective objective);

// ---- schedule --------------------------------------------------------------------------------

struct ScheduleOptions {
    ScheduleKind kind = ScheduleKind::kCosine;
    double base_lr = 0.05;
    int64_t total_steps = 1;
    int64_t warmup_steps = 0;     // linear ramp from base_lr / warmup_steps up to base_lr
    double poly_power = 0.9;      // poly: base_lr * (1 - t)^power
    double min_lr = 0.0;          // cosine ends here
};
// Learning rate at optimisation step `step` (0-based). Cosine: Loshchilov & Hutter 2017 without
// restarts; poly: the DeepLab schedule.
double learning_rate(const ScheduleOptions& schedule, int64_t step);

// ---- training --------------------------------------------------------------------------------

// One-to-one with the flags of `sightline train classify`.
struct TrainOptions {
    fs::path data;                     // dataset root (open_dataset)
    fs::path out;                      // RUN folder
    std::string arch = "resnet_gap";
    int64_t input_size = 0;            // 0: the first training image's size
    int64_t width = 16;                // see ArchOptions
    std::vector<int64_t> depth = {1, 1, 1, 1};
    int64_t output_stride = 8;
    int64_t hidden = 128;
    int64_t epochs = 10;
    int64_t batch = 32;
    OptimizerKind optimizer = OptimizerKind::kSgd;  // SGD with momentum, or AdamW
    double lr = 0.0;                   // 0: 0.05 for sgd, 0.001 for adamw
    double momentum = 0.9;
    double weight_decay = -1.0;        // < 0: 5e-4 for sgd, 0.05 for adamw
    ScheduleKind schedule = ScheduleKind::kCosine;
    double warmup_epochs = 0.0;
    double label_smoothing = 0.0;
    double mixup = 0.0;                // Beta(a, a) parameter; 0 = off (1.0 under --objective mixup)
    bool multilabel = false;           // force the multi-label objective (else auto-detected)
    bool crop = false;                 // random resized crop augmentation
    bool flip = true;                  // random horizontal flip
    bool jitter = true;                // colour jitter
    std::string train_split = "train";
    std::vector<std::string> val_splits;  // empty: val_matched/val_swapped/val_context, else val
    uint64_t seed = 1;
    int workers = 2;                   // data loader threads
    bool resume = false;
    bool shuffle_labels = false;       // permute the training labels (data randomisation test)
    int64_t stop_after_epoch = 0;      // debug: stop like a kill after this epoch (0 = never)
    // Weakly supervised segmentation objectives (wsss_objectives.hpp). All but "cam" use the
    // multi-label soft margin and need a gap_linear architecture (they work on class maps).
    WsssObjective objective = WsssObjective::kCam;
    double puzzle_alpha = 4.0;         // weight of the reconstruction loss after the ramp
    double puzzle_ramp = 0.5;          // share of training over which the weight ramps from 0
    double mixup_entropy = 0.1;        // weight of the entropy of the mixed predictions
    double mixup_concentration = 0.1;  // weight of the feature-level concentration term
    int64_t subcategory_k = 10;        // sub-categories (k-means clusters) per class
    double subcategory_lambda = 5.0;   // weight of the sub-category loss
    int64_t subcategory_rounds = 3;    // cluster-and-retrain rounds after the plain CAM round;
                                       // each round trains --epochs epochs from a fresh model
    Norm norm = Norm::kBatch;          // the backbone's normalisation layers (ArchOptions::norm)
    // Data-parallel training (distributed.hpp): null for one process. Every rank runs the same
    // call; each builds its share of every batch, gradients are averaged, rank 0 alone writes.
    std::shared_ptr<DistributedGroup> distributed;
};

// What the callbacks and RUN/metrics.jsonl see after each epoch.
struct EpochMetrics {
    int64_t epoch = 0;                   // 1-based
    int64_t epochs = 0;
    double loss = 0.0;                   // mean training loss
    double train_score = 0.0;            // accuracy (single-label) or mAP (multi-label)
    std::vector<std::pair<std::string, double>> val;  // e.g. {"matched_acc", 0.93}, {"val_map", ..}
    double lr = 0.0;                     // at the epoch's last step
    double data_wait_share = 0.0;        // share of the epoch spent waiting for batches
    double seconds = 0.0;
};
std::string to_json_line(const EpochMetrics& metrics);

struct TrainCallbacks {
    // After every optimisation step: 1-based step in the epoch and the batch loss.
    std::function<void(int64_t epoch, int64_t step, int64_t steps, double loss)> on_step;
    std::function<void(const EpochMetrics&)> on_epoch;
    // Polled after every step; true = save a checkpoint and return (result.interrupted).
    std::function<bool()> stop_requested;
};

// What the run found out before training, for the CLI to show once.
struct TrainSetup {
    Objective objective = Objective::kSingleLabel;
    std::size_t train_images = 0;
    std::vector<std::pair<std::string, std::size_t>> val_images;  // split -> images
    int64_t input_size = 0;
    int64_t steps_per_epoch = 0;
    int64_t parameters = 0;
    int64_t start_epoch = 0;           // epochs already done (resume)
    int64_t start_step = 0;            // steps of the current epoch already done (resume)
};

struct TrainResult {
    bool interrupted = false;          // stopped by stop_requested or stop_after_epoch
    int64_t epochs_done = 0;
    int64_t step_in_epoch = 0;         // steps of the unfinished epoch in the checkpoint
    fs::path model;                    // RUN/model.pt (only when the run finished)
    fs::path checkpoint;               // RUN/checkpoint/checkpoint.pt
};

// Trains on options.data and writes RUN/model.pt, RUN/model.json, RUN/metrics.jsonl and
// RUN/checkpoint/checkpoint.pt. Everything is checked before anything is written: an unknown
// architecture, an empty split, a folder that cannot be written, an existing run without
// --resume, a checkpoint of another architecture or options on --resume all throw Error naming
// the file and leave RUN untouched.
TrainResult train_classifier(const TrainOptions& options, const TrainCallbacks& callbacks = {},
                             const std::function<void(const TrainSetup&)>& on_setup = {});

// The same on already opened datasets (tests use in-memory ones). `val` pairs a split name
// with its dataset; options.data only names the data in messages.
TrainResult train_classifier(const Dataset& train,
                             const std::vector<std::pair<std::string, const Dataset*>>& val,
                             const TrainOptions& options, const TrainCallbacks& callbacks = {},
                             const std::function<void(const TrainSetup&)>& on_setup = {});

// --shuffle-labels: the label lists permuted among the images by a seeded shuffle (Adebayo et
// al. 2018's data randomisation test: same images, same label frequencies, no relation).
std::vector<std::vector<int>> shuffle_labels(std::vector<std::vector<int>> labels, uint64_t seed);

// The validation splits used when TrainOptions::val_splits is empty: val_matched,
// val_swapped, val_context when the counterfactual files exist, else val when it exists.
std::vector<std::string> default_val_splits(const fs::path& data);

}  // namespace sightline
