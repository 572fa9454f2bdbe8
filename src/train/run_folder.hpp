// A training run's folder and where the run stands: the bookkeeping that lets a run refuse to
// overwrite another, check that a resume matches, and save and read back its progress
// (RUN/checkpoint/checkpoint.pt holds the progress in its meta data, checkpoint.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sightline/core.hpp"
#include "sightline/train.hpp"

namespace sightline::detail {

// RUN/checkpoint/checkpoint.pt
fs::path checkpoint_path(const fs::path& out);

// Called before a run writes anything. Resume: reads the checkpoint's meta data and returns
// it after check_resume(checkpoint, meta) accepted it. Fresh run: refuses a folder that
// already holds a run (a checkpoint or model.pt) and returns null. Either way OUT can be
// written after (it is created with the first checkpoint).
nlohmann::json open_run_folder(
    const fs::path& out, bool resume,
    const std::function<void(const fs::path& checkpoint, const nlohmann::json& meta)>& check_resume);

// How a mismatching value is shown: strings bare (--optimizer sgd), or as JSON (--optimizer
// "sgd", as the segmentation trainer has always shown them).
enum class FlagValues { kBare, kJson };

// Throws Error unless every flag of `wanted` has the same value in the meta data's options.
void check_options_match(const fs::path& checkpoint, const nlohmann::json& meta, const nlohmann::json& wanted,
                         FlagValues style);

// The options both trainers have that decide a run's numbers, keyed by CLI flag (a resume
// must match them all); each trainer adds its own. Options: TrainOptions or
// SegmentTrainOptions, which name these fields alike.
template <typename Options>
nlohmann::json shared_run_options(const Options& o, int64_t input_size) {
    nlohmann::json j;
    j["arch"] = o.arch;
    j["input-size"] = input_size;
    j["epochs"] = o.epochs;
    j["batch"] = o.batch;
    j["optimizer"] = to_string(o.optimizer);
    j["lr"] = o.lr;
    j["momentum"] = o.momentum;
    j["weight-decay"] = o.weight_decay;
    j["schedule"] = to_string(o.schedule);
    j["warmup-epochs"] = o.warmup_epochs;
    j["flip"] = o.flip;
    j["jitter"] = o.jitter;
    j["train-split"] = o.train_split;
    j["seed"] = o.seed;
    return j;
}

// Where a run stands; saved in every checkpoint, read back on resume.
struct RunProgress {
    int64_t epoch = 0;          // epochs done (the one being run, 0-based)
    int64_t step_in_epoch = 0;  // its steps done
    int64_t global_step = 0;    // optimisation steps done in the whole run
    nlohmann::json history = nlohmann::json::array();  // metrics of each finished epoch
    // The interrupted epoch's loss sum, seconds and data wait (used when step_in_epoch > 0).
    double partial_loss = 0.0, partial_seconds = 0.0, partial_wait = 0.0;
};

RunProgress read_progress(const nlohmann::json& meta);

// The state to save at the end of the current epoch (its metrics already in the history).
RunProgress epoch_finished(const RunProgress& progress);

// The state to save when the current epoch is interrupted after progress.step_in_epoch steps.
RunProgress epoch_interrupted(const RunProgress& progress, double loss_sum, double seconds, double wait);

// The meta data every checkpoint holds; the trainer adds its own keys. `next_order`: the
// data order of epoch at.epoch (empty when the run is finished), checked on resume.
nlohmann::json checkpoint_meta(const nlohmann::json& options, const std::vector<std::string>& class_names,
                               std::size_t train_images, const RunProgress& at,
                               const std::vector<std::size_t>& next_order);

// Throws Error when the data are not the run's: another number of training images, or, when
// epochs remain, another data order for the next epoch (the dataset changed since).
void check_data_order(const fs::path& checkpoint, const nlohmann::json& meta, std::size_t train_images,
                      int64_t total_epochs, const BatchLoader& loader);

}  // namespace sightline::detail
