// The segmentation training loop: the classifier trainer's machinery (BatchLoader with masks,
// learning_rate schedules, atomic checkpoints with exact resume) around a U-Net, with
// cross-entropy (ignore 255) + optional Dice, and per-epoch val mIoU from evaluate.hpp's
// confusion matrix. The bookkeeping both trainers share (run folder, progress, optimiser,
// steps) is in train/loop_support.hpp and train/run_folder.hpp, so the loop reads like the recipe.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sightline/device.hpp"
#include "segment/segment_detail.hpp"
#include "sightline/distributed.hpp"
#include "sightline/parallel.hpp"
#include "sightline/train.hpp"
#include "train/checkpoint.hpp"
#include "train/loop_support.hpp"
#include "train/run_folder.hpp"

namespace sightline {

using nlohmann::json;

namespace {

void validate(const SegmentTrainOptions& o) {
    find_segmentation_architecture(o.arch);
    auto check = [](bool ok, const std::string& m) {
        if (!ok) throw UsageError(m);
    };
    detail::check_optimisation_options(o.epochs, o.batch, o.lr);
    check(o.dice >= 0, fmt::format("--dice must be >= 0, got {}", o.dice));
    check(o.scale_min > 0 && o.scale_min <= o.scale_max,
          fmt::format("--scale needs 0 < MIN <= MAX, got {},{}", o.scale_min, o.scale_max));
    check(o.warmup_epochs >= 0, fmt::format("--warmup-epochs must be >= 0, got {}", o.warmup_epochs));
    check(o.input_size >= 0, fmt::format("--input-size must be >= 0, got {}", o.input_size));
    for (double w : o.class_weights) check(w >= 0, fmt::format("--class-weights must be >= 0, got {}", w));
}

SegArchOptions arch_options(const SegmentTrainOptions& o, int64_t classes) {
    SegArchOptions a;
    a.num_classes = classes;
    a.base = o.base;
    a.depth = o.depth;
    a.upsample = o.upsample;
    a.blocks = o.blocks;
    a.seed = o.seed;
    a.norm = o.norm;
    return a;
}

// The options that decide a run's numbers, keyed by CLI flag; a resume must match them all.
json run_options(const SegmentTrainOptions& o, int64_t input_size) {
    json j = detail::shared_run_options(o, input_size);
    j["task"] = o.task;
    if (!o.loss_name.empty()) j["loss"] = o.loss_name;
    if (o.output_channels > 0) j["output_channels"] = o.output_channels;
    j["base"] = o.base;
    j["depth"] = o.depth;
    j["upsample"] = o.upsample;
    j["blocks"] = o.blocks;
    j["masks"] = o.masks.string();
    j["dice"] = o.dice;
    j["class-weights"] = o.class_weights;
    j["scale"] = {o.scale_min, o.scale_max};
    if (o.norm != Norm::kBatch) j["norm"] = to_string(o.norm);  // older checkpoints have no key
    return j;
}

// Predicts every val image whole (padded to the size multiple), batching consecutive images
// of equal size, and accumulates one confusion matrix over the split.
Metrics validate_epoch(torch::jit::Module& model, const Dataset& val, const SegmentModelCard& card, int64_t batch,
                       const std::string& model_name) {
    model.eval();
    torch::NoGradGuard no_grad;
    ConfusionMatrix confusion(static_cast<int>(card.class_names.size()), 255);
    std::vector<Sample> group;
    auto flush = [&] {
        if (group.empty()) return;
        std::vector<torch::Tensor> xs;
        for (const Sample& s : group) xs.push_back(detail::normalise_image(s.image, card.mean, card.std));
        torch::Tensor logits = detail::forward_padded(model, torch::stack(xs), card.size_multiple, model_name);
        for (std::size_t i = 0; i < group.size(); ++i) {
            cv::Mat pred = detail::argmax_labels(logits[static_cast<int64_t>(i)]);
            confusion.accumulate(pred, group[i].mask, {"prediction for " + group[i].id, group[i].id});
        }
        group.clear();
    };
    for (std::size_t i = 0; i < val.size(); ++i) {
        Sample s = val.get(i);
        if (s.mask.empty()) throw Error(fmt::format("{}: validation image without a mask", s.id));
        if (!group.empty() && (group.front().image.size() != s.image.size() ||
                               static_cast<int64_t>(group.size()) >= batch))
            flush();
        group.push_back(std::move(s));
    }
    flush();
    model.train();
    return confusion.metrics(card.class_names);
}

// Reads every sample once on `workers` threads so a bad image or mask (size mismatch, a value
// that is neither a class nor 255, a missing mask) stops the run before anything is written.
void check_samples(const Dataset& data, int workers, const std::string& where) {
    detail::parallel_for_each(data.size(), std::max(1, workers), [&](std::size_t i, int) {
        Sample s = data.get(i);
        if (s.mask.empty()) throw Error(fmt::format("{}: image '{}' has no mask", where, s.id));
    });
}

json nan_to_null(double v) { return std::isnan(v) ? json(nullptr) : json(v); }

json metrics_json(const SegmentEpochMetrics& m) {
    nlohmann::ordered_json j;
    j["epoch"] = m.epoch;
    j["loss"] = m.loss;
    j["val_miou"] = nan_to_null(m.val.miou);
    j["val_pixel_accuracy"] = nan_to_null(m.val.pixel_accuracy);
    nlohmann::ordered_json per_class;
    for (const ClassMetrics& c : m.val.per_class) per_class[c.name] = nan_to_null(c.iou);
    j["val_iou"] = per_class;
    j["best"] = m.best;
    j["lr"] = m.lr;
    j["data_wait_share"] = m.data_wait_share;
    j["seconds"] = m.seconds;
    return j;
}

// One line per epoch (keys sorted, as json stores them).
std::string metrics_file(const json& history) {
    std::string text;
    for (const json& line : history) text += line.dump() + "\n";
    return text;
}

}  // namespace

SegmentTrainResult train_segmenter(const SegmentTrainOptions& o, const SegmentTrainCallbacks& callbacks,
                                   const std::function<void(const SegmentTrainSetup&)>& on_setup) {
    validate(o);
    std::unique_ptr<Dataset> train = open_segmentation_dataset(o.data, o.train_split, o.masks);
    std::unique_ptr<Dataset> val;
    std::string val_split = o.val_split;
    if (val_split.empty())
        val_split = fs::exists(o.data / "ImageSets" / "Segmentation" / "val.txt") ? "val" : "none";
    if (val_split != "none") val = open_dataset(o.data, val_split);
    return train_segmenter(*train, val.get(), o, callbacks, on_setup);
}

SegmentTrainResult train_segmenter(const Dataset& train, const Dataset* val, const SegmentTrainOptions& o,
                                   const SegmentTrainCallbacks& callbacks,
                                   const std::function<void(const SegmentTrainSetup&)>& on_setup) {
    validate(o);
    const std::string where = fmt::format("{} (split '{}')", o.data.string(), o.train_split);
    if (train.size() == 0) throw Error(fmt::format("{}: the training split has no images", where));
    if (val && val->class_names() != train.class_names())
        throw Error(fmt::format("{}: the validation split's class list differs from the training split's",
                                o.data.string()));
    const auto classes = static_cast<int64_t>(train.class_names().size());
    if (classes < 2) throw Error(fmt::format("{}: no object classes (only background)", where));
    if (static_cast<int64_t>(train.size()) < o.batch)
        throw Error(fmt::format("{}: {} training images, fewer than one batch of {} (lower --batch)", where,
                                train.size(), o.batch));
    check_samples(train, o.workers, where);
    if (val) check_samples(*val, o.workers, fmt::format("{} (validation)", o.data.string()));
    const SegArchOptions arch = arch_options(o, o.output_channels > 0 ? o.output_channels : classes);
    const int64_t multiple = find_segmentation_architecture(o.arch).size_multiple(arch);
    const Sample first = train.get(0);
    const int64_t input_size =
        o.input_size > 0 ? o.input_size : std::min(first.image.rows, first.image.cols) / multiple * multiple;
    if (input_size < multiple || input_size % multiple != 0)
        throw UsageError(fmt::format("--input-size must be a positive multiple of {} for {}, got {}", multiple,
                                     o.arch, input_size));

    // The run folder: refuse to overwrite, check a resume matches, before writing anything.
    // Data-parallel, rank 0 alone writes; the others read the checkpoint on a resume.
    DistributedGroup* group = o.distributed.get();
    const bool writes = !group || group->is_main();
    const fs::path checkpoint = detail::checkpoint_path(o.out);
    const json options_json = run_options(o, input_size);
    json meta;
    if (writes || o.resume)
        meta = detail::open_run_folder(o.out, o.resume, [&](const fs::path& path, const json& saved) {
            detail::check_options_match(path, saved, options_json, detail::FlagValues::kJson);
        });

    detail::GraphOptimizeOff plain_interpreter;
    detail::KeepGlobalRandomState caller_random_state;
    torch::jit::Module model = build_segmentation_model(o.arch, arch);
    if (!compute_device().is_cpu()) model.to(compute_device());  // before the optimiser takes the parameters
    LoaderOptions loader_options;
    SegmentModelCard card{o.arch, input_size, multiple, train.class_names(), loader_options.mean, loader_options.std,
                          o.task};
    attach_segment_model_card(model, card);
    const double lr = o.lr > 0 ? o.lr : (o.optimizer == OptimizerKind::kSgd ? 0.01 : 0.002);
    const double weight_decay = o.weight_decay >= 0 ? o.weight_decay : 1e-4;
    std::unique_ptr<torch::optim::Optimizer> optimizer =
        detail::make_optimizer(o.optimizer, o.momentum, model, lr, weight_decay);

    loader_options.batch_size = o.batch;
    loader_options.input_size = input_size;
    loader_options.workers = o.workers;
    loader_options.seed = o.seed;
    loader_options.masks = true;
    detail::SegAugmentOptions augment{static_cast<int>(input_size), o.scale_min, o.scale_max, o.flip, o.jitter};
    loader_options.transform = [augment](Sample& s, Rng& rng) { detail::segmentation_augment(s, augment, rng); };
    if (group) loader_options.shard_index = group->rank(), loader_options.shard_count = group->size();
    BatchLoader loader(train, loader_options);
    const int64_t steps = loader.batches_per_epoch();
    const ScheduleOptions schedule = detail::make_schedule(o.schedule, lr, steps, o.epochs, o.warmup_epochs);
    const SegLossOptions loss_options{o.dice, o.class_weights};

    // State: fresh, or from the checkpoint.
    detail::RunProgress progress;
    int64_t best_epoch = 0;
    double best_miou = kUndefinedMetric;
    if (o.resume) {
        detail::load_checkpoint_state(checkpoint, model, *optimizer);
        progress = detail::read_progress(meta);
        best_epoch = meta.at("best_epoch").get<int64_t>();
        if (best_epoch > 0) best_miou = meta.at("best_miou").get<double>();
        detail::check_data_order(checkpoint, meta, train.size(), o.epochs, loader);
    }
    detail::start_from_rank_zero(group, model);
    const detail::StepSync sync = detail::step_sync(group, model);
    SegmentTrainSetup setup{train.size(), val ? val->size() : 0, classes, input_size, steps, 0, progress.epoch,
                            progress.step_in_epoch};
    for (const auto& p : model.parameters(true)) setup.parameters += p.numel();
    if (on_setup) on_setup(setup);

    auto save = [&](const detail::RunProgress& at) {
        if (!writes) return;
        json m = detail::checkpoint_meta(options_json, card.class_names, train.size(), at,
                                         at.epoch < o.epochs ? loader.epoch_order(at.epoch) : std::vector<std::size_t>{});
        m["best_epoch"] = best_epoch;
        m["best_miou"] = nan_to_null(best_miou);
        detail::save_checkpoint(checkpoint, m, model, *optimizer, detail::PartialEpoch{});
    };
    const detail::LossOfBatch loss_of = [&](const Batch& batch, int64_t) {
        torch::Tensor output = model.forward({to_compute(batch.images)}).toTensor();
        if (o.loss) return o.loss(output, to_compute(batch.masks));
        return segmentation_loss(output, to_compute(batch.masks), loss_options);
    };

    SegmentTrainResult result;
    result.checkpoint = checkpoint;
    result.best_miou = best_miou;
    result.best_epoch = best_epoch;
    model.train();
    for (; progress.epoch < o.epochs; ++progress.epoch) {
        detail::EpochTotals totals(progress);
        if (!detail::run_epoch_steps(loader, *optimizer, schedule, 0, loss_of, callbacks.on_step,
                                     callbacks.stop_requested, progress, totals, sync)) {
            save(detail::epoch_interrupted(progress, totals.loss_sum, totals.seconds(), totals.wait(loader)));
            result.interrupted = true;
            result.epochs_done = progress.epoch;
            result.step_in_epoch = progress.step_in_epoch;
            return result;
        }
        const double train_seconds = totals.seconds();
        SegmentEpochMetrics m;
        m.epoch = progress.epoch + 1;
        m.epochs = o.epochs;
        m.loss = totals.loss_sum / static_cast<double>(steps);
        m.lr = totals.lr;
        m.data_wait_share = train_seconds > 0 ? totals.wait(loader) / train_seconds : 0.0;
        if (val) {
            m.val = validate_epoch(model, *val, card, o.batch, o.data.string() + " (validation)");
            m.best = !std::isnan(m.val.miou) && (best_epoch == 0 || m.val.miou > best_miou);
        }
        m.seconds = totals.seconds();
        if (m.best) {
            best_miou = m.val.miou;
            best_epoch = m.epoch;
            if (writes) write_file_atomic(o.out / "best.pt", detail::module_bytes(model));
        }
        progress.step_in_epoch = 0;
        progress.history.push_back(metrics_json(m));
        save(detail::epoch_finished(progress));
        if (writes) write_file_atomic(o.out / "metrics.jsonl", metrics_file(progress.history));
        result.last_val = m.val;
        if (callbacks.on_epoch) callbacks.on_epoch(m);
        if (detail::stop_after_epoch(callbacks.stop_requested, o.stop_after_epoch, progress.epoch + 1, group) &&
            progress.epoch + 1 < o.epochs) {
            result.interrupted = true;
            result.epochs_done = progress.epoch + 1;
            result.best_miou = best_miou;
            result.best_epoch = best_epoch;
            return result;
        }
    }

    if (writes) {
        write_file_atomic(o.out / "model.pt", detail::module_bytes(model));
        write_file_atomic(o.out / "model.json", segment_model_card_json(card));
        write_file_atomic(o.out / "metrics.jsonl", metrics_file(progress.history));
    }
    result.epochs_done = o.epochs;
    result.model = o.out / "model.pt";
    if (best_epoch > 0) result.best_model = o.out / "best.pt";
    result.best_miou = best_miou;
    result.best_epoch = best_epoch;
    return result;
}

}  // namespace sightline
