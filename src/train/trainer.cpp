// The classifier training loop: checks everything, then epochs of steps, validation,
// checkpoint, metrics line. Bookkeeping (options <-> JSON, checkpoint files) lives in helpers
// below, in checkpoint.cpp and, shared with the U-Net trainer, in run_folder.cpp and
// loop_support.cpp, so the loop reads like the recipe.
#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sightline/device.hpp"
#include "sightline/distributed.hpp"
#include "sightline/parallel.hpp"
#include "sightline/train.hpp"
#include "train/checkpoint.hpp"
#include "train/loop_support.hpp"
#include "train/objective_step.hpp"
#include "train/run_folder.hpp"

namespace sightline {

using nlohmann::json;
using detail::PartialEpoch;

namespace {

// The options that decide the numbers of a run, keyed by their CLI flag: a resume must match
// all of them (threads and workers may change; workers never change the numbers).
json run_options(const TrainOptions& o, int64_t input_size, Objective objective) {
    json j = detail::shared_run_options(o, input_size);
    j["width"] = o.width;
    j["depth"] = o.depth;
    j["output-stride"] = o.output_stride;
    j["hidden"] = o.hidden;
    j["label-smoothing"] = o.label_smoothing;
    j["mixup"] = o.mixup;
    j["multilabel"] = objective == Objective::kMultiLabel;
    j["crop"] = o.crop;
    j["shuffle-labels"] = o.shuffle_labels;
    // Only the WSSS objectives add keys, so checkpoints made before they existed still resume.
    if (o.objective != WsssObjective::kCam) j["objective"] = to_string(o.objective);
    if (o.objective == WsssObjective::kPuzzle) j["puzzle-alpha"] = o.puzzle_alpha, j["puzzle-ramp"] = o.puzzle_ramp;
    if (o.objective == WsssObjective::kMixup)
        j["mixup-entropy"] = o.mixup_entropy, j["mixup-concentration"] = o.mixup_concentration;
    if (o.norm != Norm::kBatch) j["norm"] = to_string(o.norm);  // older checkpoints have no key
    if (o.objective == WsssObjective::kSubcategory) {
        j["subcategory-k"] = o.subcategory_k;
        j["subcategory-lambda"] = o.subcategory_lambda;
        j["subcategory-rounds"] = o.subcategory_rounds;
    }
    return j;
}

void check_resume_matches(const fs::path& checkpoint, const json& saved, const json& wanted) {
    const json& old = saved.at("options");
    if (old.value("arch", "") != wanted["arch"])
        throw Error(fmt::format("{}: the checkpoint is of architecture '{}', not '{}' (--arch)", checkpoint.string(),
                                old.value("arch", "?"), wanted["arch"].get<std::string>()));
    if (old.value("objective", "cam") != wanted.value("objective", "cam"))
        throw Error(fmt::format("{}: the checkpoint was made with --objective {}, this run has --objective {} (resume "
                                "with the same options)",
                                checkpoint.string(), old.value("objective", "cam"), wanted.value("objective", "cam")));
    detail::check_options_match(checkpoint, saved, wanted, detail::FlagValues::kBare);
}

void validate(const TrainOptions& o) {
    find_architecture(o.arch);  // lists the choices
    auto check = [](bool ok, const std::string& message) {
        if (!ok) throw UsageError(message);
    };
    detail::check_optimisation_options(o.epochs, o.batch, o.lr);
    check(o.label_smoothing >= 0 && o.label_smoothing < 1,
          fmt::format("--label-smoothing must be in [0, 1), got {}", o.label_smoothing));
    check(o.mixup >= 0, fmt::format("--mixup must be >= 0, got {}", o.mixup));
    check(o.warmup_epochs >= 0, fmt::format("--warmup-epochs must be >= 0, got {}", o.warmup_epochs));
    check(o.input_size >= 0, fmt::format("--input-size must be >= 0, got {}", o.input_size));
    if (o.objective != WsssObjective::kCam) {
        const HeadDesign head = find_architecture(o.arch).head;
        check(head == HeadDesign::kGapLinear,
              fmt::format("--objective {} needs class maps, i.e. a gap_linear architecture; --arch {} has a {} head",
                          to_string(o.objective), o.arch, head_design_name(head)));
    }
    check(o.mixup == 0 || o.objective == WsssObjective::kCam || o.objective == WsssObjective::kMixup,
          fmt::format("--mixup works with --objective cam or mixup, not {}", to_string(o.objective)));
    check(o.puzzle_alpha >= 0, fmt::format("--puzzle-alpha must be >= 0, got {}", o.puzzle_alpha));
    check(o.puzzle_ramp >= 0 && o.puzzle_ramp <= 1, fmt::format("--puzzle-ramp must be in [0, 1], got {}", o.puzzle_ramp));
    check(o.mixup_entropy >= 0, fmt::format("--mixup-entropy must be >= 0, got {}", o.mixup_entropy));
    check(o.mixup_concentration >= 0,
          fmt::format("--mixup-concentration must be >= 0, got {}", o.mixup_concentration));
    check(o.subcategory_k >= 1, fmt::format("--subcategory-k must be >= 1, got {}", o.subcategory_k));
    check(o.subcategory_lambda >= 0, fmt::format("--subcategory-lambda must be >= 0, got {}", o.subcategory_lambda));
    check(o.subcategory_rounds >= 1, fmt::format("--subcategory-rounds must be >= 1, got {}", o.subcategory_rounds));
}

// Every training sample's labels (reads each image once, on the loader's threads).
std::vector<std::vector<int>> scan_labels(const Dataset& data, int workers) {
    std::vector<std::vector<int>> labels(data.size());
    detail::parallel_for_each(data.size(), std::max(1, workers),
                              [&](std::size_t i, int) { labels[i] = data.get(i).labels; });
    return labels;
}

// Validation metric of one split: accuracy for single-label data, mAP for multi-label data.
std::pair<std::string, double> evaluate(torch::jit::Module& model, BatchLoader& loader, const std::string& split,
                                        Objective objective) {
    model.eval();
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> logits, targets;
    loader.start_epoch(0);
    while (auto batch = loader.next()) {
        logits.push_back(model.forward({to_compute(batch->images)}).toTensor().cpu());
        targets.push_back(batch->targets);
    }
    model.train();
    std::string name = split.rfind("val_", 0) == 0 ? split.substr(4) : split;
    torch::Tensor all_logits = torch::cat(logits), all_targets = torch::cat(targets);
    if (objective == Objective::kSingleLabel) return {name + "_acc", top1_accuracy(all_logits, all_targets)};
    return {name + "_map", mean_average_precision(torch::sigmoid(all_logits), all_targets)};
}

double train_score(Objective objective, const PartialEpoch& epoch) {
    if (!epoch.logits.defined() || epoch.logits.size(0) == 0) return std::nan("");
    return objective == Objective::kSingleLabel ? top1_accuracy(epoch.logits, epoch.targets)
                                                : mean_average_precision(torch::sigmoid(epoch.logits), epoch.targets);
}

json metrics_json(const EpochMetrics& m) {
    nlohmann::ordered_json j;
    j["epoch"] = m.epoch;
    j["loss"] = m.loss;
    j["train_score"] = m.train_score;
    for (const auto& [name, value] : m.val) j[name] = std::isnan(value) ? json(nullptr) : json(value);
    j["lr"] = m.lr;
    j["data_wait_share"] = m.data_wait_share;
    j["seconds"] = m.seconds;
    return json::parse(j.dump());  // plain json for storage in the checkpoint
}

std::string metrics_file(const json& history) {
    std::string text;
    for (const json& line : history) {
        // Keys in a fixed, readable order.
        nlohmann::ordered_json o;
        for (const char* key : {"epoch", "loss", "train_score"}) o[key] = line.at(key);
        for (const auto& [k, v] : line.items())
            if (!o.contains(k) && k != "lr" && k != "data_wait_share" && k != "seconds") o[k] = v;
        for (const char* key : {"lr", "data_wait_share", "seconds"}) o[key] = line.at(key);
        text += o.dump() + "\n";
    }
    return text;
}

}  // namespace

std::vector<std::vector<int>> shuffle_labels(std::vector<std::vector<int>> labels, uint64_t seed) {
    Rng(mix_seed(seed, 0x5eed1abe1)).shuffle(labels);
    return labels;
}

std::string to_json_line(const EpochMetrics& metrics) { return metrics_file(json::array({metrics_json(metrics)})); }

std::vector<std::string> default_val_splits(const fs::path& data) {
    const fs::path sets = data / "ImageSets" / "Segmentation";
    if (fs::is_directory(sets)) {
        std::vector<std::string> splits;
        for (const char* s : {"val_matched", "val_swapped", "val_context"})
            if (fs::exists(sets / (std::string(s) + ".txt"))) splits.push_back(s);
        if (splits.empty() && fs::exists(sets / "val.txt")) splits.push_back("val");
        return splits;
    }
    if (fs::exists(data / "val" / "labels.csv")) return {"val"};
    return {};
}

TrainResult train_classifier(const TrainOptions& options, const TrainCallbacks& callbacks,
                             const std::function<void(const TrainSetup&)>& on_setup) {
    validate(options);
    std::unique_ptr<Dataset> train = open_dataset(options.data, options.train_split);
    std::vector<std::unique_ptr<Dataset>> val_sets;
    std::vector<std::pair<std::string, const Dataset*>> val;
    for (const std::string& split :
         options.val_splits.empty() ? default_val_splits(options.data) : options.val_splits) {
        val_sets.push_back(open_dataset(options.data, split));
        val.emplace_back(split, val_sets.back().get());
    }
    return train_classifier(*train, val, options, callbacks, on_setup);
}

TrainResult train_classifier(const Dataset& train, const std::vector<std::pair<std::string, const Dataset*>>& val,
                             const TrainOptions& o, const TrainCallbacks& callbacks,
                             const std::function<void(const TrainSetup&)>& on_setup) {
    validate(o);
    const std::string where = fmt::format("{} (split '{}')", o.data.string(), o.train_split);
    if (train.size() == 0) throw Error(fmt::format("{}: the training split has no images", where));
    for (const auto& [split, data] : val) {
        if (data->size() == 0)
            throw Error(fmt::format("{} (split '{}'): the validation split has no images", o.data.string(), split));
        if (data->class_names() != train.class_names())
            throw Error(fmt::format("{} (split '{}'): class list differs from the training split's", o.data.string(),
                                    split));
    }
    const auto num_classes = static_cast<int64_t>(train.num_object_classes());
    if (num_classes < 1) throw Error(fmt::format("{}: no object classes (only background)", where));
    if (static_cast<int64_t>(train.size()) < o.batch)
        throw Error(fmt::format("{}: {} training images, fewer than one batch of {} (lower --batch)", where,
                                train.size(), o.batch));

    // What the data says: labels, objective, input size.
    std::vector<std::vector<int>> labels = scan_labels(train, o.workers);
    bool single = std::all_of(labels.begin(), labels.end(), [](const auto& l) { return l.size() == 1; });
    const Objective objective =
        (o.multilabel || !single || o.objective != WsssObjective::kCam) ? Objective::kMultiLabel : Objective::kSingleLabel;
    const int64_t input_size = o.input_size > 0 ? o.input_size : train.get(0).image.rows;
    if (o.objective == WsssObjective::kPuzzle && input_size % (2 * o.output_stride) != 0)
        throw UsageError(fmt::format("--objective puzzle needs an input side that is a multiple of 2 x the output "
                                     "stride ({}), got {}",
                                     2 * o.output_stride, input_size));
    if (o.shuffle_labels) labels = shuffle_labels(std::move(labels), o.seed);

    // The run folder: refuse to overwrite, check a resume matches, before writing anything.
    // Data-parallel, rank 0 alone writes; the others read the checkpoint on a resume.
    DistributedGroup* group = o.distributed.get();
    const bool writes = !group || group->is_main();
    const fs::path checkpoint = detail::checkpoint_path(o.out);
    const json options_json = run_options(o, input_size, objective);
    json meta;
    if (writes || o.resume)
        meta = detail::open_run_folder(o.out, o.resume, [&](const fs::path& path, const json& saved) {
            check_resume_matches(path, saved, options_json);
            if (saved.at("train_images").get<std::size_t>() != train.size())
                throw Error(fmt::format("{}: the checkpoint was trained on {} images, {} has {}", path.string(),
                                        saved.at("train_images").get<std::size_t>(), where, train.size()));
        });

    // Model, optimiser, schedule.
    detail::GraphOptimizeOff plain_interpreter;
    detail::KeepGlobalRandomState caller_random_state;
    ArchOptions arch_options;
    arch_options.num_classes = num_classes;
    arch_options.input_size = input_size;
    arch_options.width = o.width;
    arch_options.depth = o.depth;
    arch_options.output_stride = o.output_stride;
    arch_options.hidden = o.hidden;
    arch_options.seed = o.seed;
    arch_options.norm = o.norm;
    torch::jit::Module model = build_architecture(o.arch, arch_options);
    if (!compute_device().is_cpu()) model.to(compute_device());  // before the optimiser takes the parameters
    LoaderOptions loader_options;
    ModelCard card{o.arch,
                   find_architecture(o.arch).head,
                   input_size,
                   o.output_stride,
                   std::vector<std::string>(train.class_names().begin() + 1, train.class_names().end()),
                   loader_options.mean,
                   loader_options.std};
    attach_model_card(model, card);
    const double lr = o.lr > 0 ? o.lr : (o.optimizer == OptimizerKind::kSgd ? 0.05 : 1e-3);
    const double weight_decay = o.weight_decay >= 0 ? o.weight_decay : (o.optimizer == OptimizerKind::kSgd ? 5e-4 : 0.05);
    std::unique_ptr<torch::optim::Optimizer> optimizer =
        detail::make_optimizer(o.optimizer, o.momentum, model, lr, weight_decay);

    loader_options.batch_size = o.batch;
    loader_options.input_size = input_size;
    loader_options.augment = o.crop || o.flip || o.jitter;
    loader_options.augment_options.crop = o.crop;
    loader_options.augment_options.flip = o.flip;
    loader_options.augment_options.jitter = o.jitter;
    loader_options.mixup_alpha = o.objective == WsssObjective::kMixup && o.mixup == 0 ? 1.0 : o.mixup;
    loader_options.workers = o.workers;
    loader_options.seed = o.seed;
    if (group) loader_options.shard_index = group->rank(), loader_options.shard_count = group->size();
    BatchLoader loader(train, loader_options, labels);
    const int64_t steps = loader.batches_per_epoch();
    const ScheduleOptions schedule = detail::make_schedule(o.schedule, lr, steps, o.epochs, o.warmup_epochs);

    LoaderOptions eval_options = loader_options;
    eval_options.shuffle = false;
    eval_options.drop_last = false;
    eval_options.augment = false;
    eval_options.mixup_alpha = 0.0;
    eval_options.shard_index = 0, eval_options.shard_count = 1;  // every rank validates on all images
    std::vector<std::unique_ptr<BatchLoader>> val_loaders;
    for (const auto& split : val) val_loaders.push_back(std::make_unique<BatchLoader>(*split.second, eval_options));

    // The objective; SC-CAM trains rounds of --epochs epochs, each from a fresh model with new
    // sub-category labels from the previous round's model (round 0 is plain CAM training).
    const int64_t total_epochs = o.objective == WsssObjective::kSubcategory ? o.epochs * (o.subcategory_rounds + 1) : o.epochs;
    detail::ObjectiveStep objective_step(o, objective, steps * o.epochs);
    std::vector<std::vector<int>> sub_assignments;
    auto begin_subcategory_round = [&](std::vector<std::vector<int>> assignments) {
        sub_assignments = std::move(assignments);
        model = build_architecture(o.arch, arch_options);
        if (!compute_device().is_cpu()) model.to(compute_device());
        attach_model_card(model, card);
        objective_step.start_subcategory_round(detail::class_map_weight(model).size(1), num_classes, sub_assignments,
                                               o.seed);
        optimizer =
            detail::make_optimizer(o.optimizer, o.momentum, model, lr, weight_decay, {objective_step.subcategory_weight()});
    };

    // State: fresh, or from the checkpoint.
    detail::RunProgress progress;
    PartialEpoch partial;
    if (o.resume) {
        // The saved weights belong to the epoch being run, or to the last one finished.
        const int64_t saved_epoch = meta.at("step_in_epoch").get<int64_t>() > 0
                                        ? meta.at("epochs_done").get<int64_t>()
                                        : meta.at("epochs_done").get<int64_t>() - 1;
        if (o.objective == WsssObjective::kSubcategory && saved_epoch >= o.epochs) {
            begin_subcategory_round(meta.at("subcategory_assignments").get<std::vector<std::vector<int>>>());
            torch::NoGradGuard no_grad;
            objective_step.subcategory_weight().copy_(detail::read_checkpoint_extra(checkpoint, "subcategory_weight"));
        }
        partial = detail::load_checkpoint_state(checkpoint, model, *optimizer);
        progress = detail::read_progress(meta);
        detail::check_data_order(checkpoint, meta, train.size(), total_epochs, loader);
    }
    detail::start_from_rank_zero(group, model);
    TrainSetup setup{objective, train.size(), {}, input_size, steps, 0, progress.epoch, progress.step_in_epoch};
    for (const auto& split : val) setup.val_images.emplace_back(split.first, split.second->size());
    for (const auto& p : model.parameters(true)) setup.parameters += p.numel();
    if (on_setup) on_setup(setup);

    auto save = [&](const detail::RunProgress& at) {
        if (!writes) return;
        json m = detail::checkpoint_meta(options_json, card.class_names, train.size(), at,
                                         at.epoch < total_epochs ? loader.epoch_order(at.epoch)
                                                                 : std::vector<std::size_t>{});
        m["objective"] = objective_name(objective);
        std::vector<std::pair<std::string, torch::Tensor>> extra;
        if (objective_step.has_subcategory_head()) {
            m["subcategory_assignments"] = sub_assignments;
            extra.emplace_back("subcategory_weight", objective_step.subcategory_weight());
        }
        detail::save_checkpoint(checkpoint, m, model, *optimizer, at.step_in_epoch > 0 ? partial : PartialEpoch{},
                                extra);
    };
    auto write_metrics = [&] {
        if (writes) write_file_atomic(o.out / "metrics.jsonl", metrics_file(progress.history));
    };
    // The epoch's training outputs, for its train score (and saved with an interrupted epoch).
    std::vector<torch::Tensor> outputs, targets;
    const detail::LossOfBatch loss_of = [&](const Batch& batch, int64_t stage_step) {
        auto [loss, logits] = objective_step.step(model, batch, stage_step);
        // Data-parallel, every rank keeps the whole batch's outputs (in the single-process row
        // order), so the train score and an interrupted epoch's checkpoint are a single run's.
        const torch::Tensor rows = logits.detach().cpu();  // beside the loader's targets, in host memory
        outputs.push_back(group ? group->all_gather_rows(rows) : rows);
        targets.push_back(group ? group->all_gather_rows(batch.targets) : batch.targets);
        return loss;
    };

    TrainResult result;
    result.checkpoint = checkpoint;
    model.train();
    for (; progress.epoch < total_epochs; ++progress.epoch) {
        const int64_t epoch = progress.epoch;
        if (o.objective == WsssObjective::kSubcategory && progress.step_in_epoch == 0 && epoch > 0 && epoch % o.epochs == 0) {
            // SC-CAM round: k-means per class on the GAP features of the previous round's model.
            BatchLoader in_order(train, eval_options, labels);
            KMeansOptions clustering;
            clustering.k = static_cast<int>(o.subcategory_k);
            clustering.seed = mix_seed(o.seed, static_cast<uint64_t>(epoch / o.epochs));
            begin_subcategory_round(subcategory_assignments(
                detail::pooled_features(model, in_order, train.size()), labels, num_classes, clustering));
        }
        const int64_t stage_start = (epoch / o.epochs) * o.epochs * steps;  // first step of this round
        // A resumed epoch carries the steps done before the interruption.
        detail::EpochTotals totals(progress);
        outputs.clear(), targets.clear();
        if (progress.step_in_epoch > 0 && partial.logits.defined())
            outputs.push_back(partial.logits), targets.push_back(partial.targets);
        if (!detail::run_epoch_steps(loader, *optimizer, schedule, stage_start, loss_of, callbacks.on_step,
                                     callbacks.stop_requested, progress, totals, detail::step_sync(group, model))) {
            partial = {torch::cat(outputs), torch::cat(targets)};
            save(detail::epoch_interrupted(progress, totals.loss_sum, totals.seconds(), totals.wait(loader)));
            result.interrupted = true;
            result.epochs_done = epoch;
            result.step_in_epoch = progress.step_in_epoch;
            return result;
        }
        const double train_seconds = totals.seconds();
        const double wait = totals.wait(loader);
        EpochMetrics m;
        m.epoch = epoch + 1;
        m.epochs = total_epochs;
        m.loss = totals.loss_sum / static_cast<double>(steps);
        m.train_score = train_score(objective, {torch::cat(outputs), torch::cat(targets)});
        for (std::size_t v = 0; v < val.size(); ++v)
            m.val.push_back(evaluate(model, *val_loaders[v], val[v].first, objective));
        m.lr = totals.lr;
        m.data_wait_share = train_seconds > 0 ? wait / train_seconds : 0.0;
        m.seconds = totals.seconds();
        progress.step_in_epoch = 0;
        progress.history.push_back(metrics_json(m));
        save(detail::epoch_finished(progress));
        write_metrics();
        if (callbacks.on_epoch) callbacks.on_epoch(m);
        if (detail::stop_after_epoch(callbacks.stop_requested, o.stop_after_epoch, epoch + 1, group) &&
            epoch + 1 < total_epochs) {
            result.interrupted = true;
            result.epochs_done = epoch + 1;
            return result;
        }
    }

    // Finished: the TorchScript model (in eval mode) and its card.
    if (writes) {
        write_file_atomic(o.out / "model.pt", detail::module_bytes(model));
        write_file_atomic(o.out / "model.json", model_card_json(card));
    }
    write_metrics();
    result.epochs_done = total_epochs;
    result.model = o.out / "model.pt";
    return result;
}

}  // namespace sightline
