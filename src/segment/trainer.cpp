// The segmentation training loop: the classifier trainer's machinery (BatchLoader with masks,
// learning_rate schedules, atomic checkpoints with exact resume) around a U-Net, with
// cross-entropy (ignore 255) + optional Dice, and per-epoch val mIoU from evaluate.hpp's
// confusion matrix. Bookkeeping sits in helpers so the loop reads like the recipe.
#include <chrono>
#include <atomic>
#include <cmath>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "segment/segment_detail.hpp"
#include "sightline/train.hpp"
#include "train/checkpoint.hpp"

namespace sightline {

using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void validate(const SegmentTrainOptions& o) {
    find_segmentation_architecture(o.arch);
    auto check = [](bool ok, const std::string& m) {
        if (!ok) throw UsageError(m);
    };
    check(o.optimizer == "sgd" || o.optimizer == "adamw",
          fmt::format("unknown optimizer '{}' (choices: sgd, adamw)", o.optimizer));
    check(o.schedule == "cosine" || o.schedule == "poly",
          fmt::format("unknown schedule '{}' (choices: cosine, poly)", o.schedule));
    check(o.epochs >= 1, fmt::format("--epochs must be >= 1, got {}", o.epochs));
    check(o.batch >= 2, fmt::format("--batch must be >= 2 (BatchNorm needs two images), got {}", o.batch));
    check(o.lr >= 0, fmt::format("--lr must be >= 0, got {}", o.lr));
    check(o.dice >= 0, fmt::format("--dice must be >= 0, got {}", o.dice));
    check(o.scale_min > 0 && o.scale_min <= o.scale_max,
          fmt::format("--scale needs 0 < MIN <= MAX, got {},{}", o.scale_min, o.scale_max));
    check(o.warmup_epochs >= 0, fmt::format("--warmup-epochs must be >= 0, got {}", o.warmup_epochs));
    check(o.threads >= 1, fmt::format("--threads must be >= 1, got {}", o.threads));
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
    return a;
}

// The options that decide a run's numbers, keyed by CLI flag; a resume must match them all.
json run_options(const SegmentTrainOptions& o, int64_t input_size) {
    json j;
    j["task"] = "segment";
    j["arch"] = o.arch;
    j["base"] = o.base;
    j["depth"] = o.depth;
    j["upsample"] = o.upsample;
    j["blocks"] = o.blocks;
    j["input-size"] = input_size;
    j["masks"] = o.masks.string();
    j["epochs"] = o.epochs;
    j["batch"] = o.batch;
    j["optimizer"] = o.optimizer;
    j["lr"] = o.lr;
    j["momentum"] = o.momentum;
    j["weight-decay"] = o.weight_decay;
    j["schedule"] = o.schedule;
    j["warmup-epochs"] = o.warmup_epochs;
    j["dice"] = o.dice;
    j["class-weights"] = o.class_weights;
    j["flip"] = o.flip;
    j["scale"] = {o.scale_min, o.scale_max};
    j["jitter"] = o.jitter;
    j["train-split"] = o.train_split;
    j["seed"] = o.seed;
    return j;
}

void check_resume_matches(const fs::path& checkpoint, const json& saved, const json& wanted) {
    const json& old = saved.at("options");
    for (const auto& [flag, value] : wanted.items())
        if (!old.contains(flag) || old[flag] != value)
            throw Error(fmt::format("{}: the checkpoint was made with --{} {}, this run has --{} {} (resume with the "
                                    "same options)",
                                    checkpoint.string(), flag, old.contains(flag) ? old[flag].dump() : "(unset)", flag,
                                    value.dump()));
}

// As the classifier trainer: the plain interpreter, so a resumed run repeats the numbers.
class GraphOptimizeOff {
public:
    GraphOptimizeOff() : old_(torch::jit::getGraphExecutorOptimize()) { torch::jit::setGraphExecutorOptimize(false); }
    ~GraphOptimizeOff() { torch::jit::setGraphExecutorOptimize(old_); }

private:
    bool old_;
};

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
    std::atomic<std::size_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto work = [&] {
        for (std::size_t i = next++; i < data.size(); i = next++) {
            try {
                Sample s = data.get(i);
                if (s.mask.empty()) throw Error(fmt::format("{}: image '{}' has no mask", where, s.id));
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex);
                if (!error) error = std::current_exception();
                next = data.size();
            }
        }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < std::max(1, workers); ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    if (error) std::rethrow_exception(error);
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

std::string metrics_file(const json& history) {
    std::string text;
    for (const json& line : history) text += line.dump() + "\n";
    return text;
}

std::string module_bytes(torch::jit::Module& model) {
    model.eval();
    std::ostringstream bytes;
    model.save(bytes);
    model.train();
    return bytes.str();
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
    const SegArchOptions arch = arch_options(o, classes);
    const int64_t multiple = find_segmentation_architecture(o.arch).size_multiple(arch);
    const Sample first = train.get(0);
    const int64_t input_size =
        o.input_size > 0 ? o.input_size : std::min(first.image.rows, first.image.cols) / multiple * multiple;
    if (input_size < multiple || input_size % multiple != 0)
        throw UsageError(fmt::format("--input-size must be a positive multiple of {} for {}, got {}", multiple,
                                     o.arch, input_size));

    // The run folder: refuse to overwrite, check a resume matches, before writing anything.
    const fs::path checkpoint = o.out / "checkpoint" / "checkpoint.pt";
    const json options_json = run_options(o, input_size);
    json meta;
    if (o.resume) {
        meta = detail::read_checkpoint_meta(checkpoint);
        check_resume_matches(checkpoint, meta, options_json);
    } else {
        for (const fs::path& existing : {checkpoint, o.out / "model.pt"})
            if (fs::exists(existing))
                throw Error(fmt::format("{}: a run exists here; pass --resume to continue it or choose another --out",
                                        existing.string()));
    }
    ensure_writable_dir(o.out);
    ensure_writable_dir(o.out / "checkpoint");

    at::set_num_threads(o.threads);
    GraphOptimizeOff plain_interpreter;
    torch::jit::Module model = build_segmentation_model(o.arch, arch);
    LoaderOptions loader_options;
    SegmentModelCard card{o.arch, input_size, multiple, train.class_names(), loader_options.mean, loader_options.std};
    attach_segment_model_card(model, card);
    const double lr = o.lr > 0 ? o.lr : (o.optimizer == "sgd" ? 0.01 : 0.002);
    const double weight_decay = o.weight_decay >= 0 ? o.weight_decay : 1e-4;
    std::vector<torch::Tensor> params;
    for (const auto& p : model.parameters(true)) params.push_back(p);
    std::unique_ptr<torch::optim::Optimizer> optimizer;
    if (o.optimizer == "sgd")
        optimizer = std::make_unique<torch::optim::SGD>(
            params, torch::optim::SGDOptions(lr).momentum(o.momentum).weight_decay(weight_decay));
    else
        optimizer = std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(lr).weight_decay(weight_decay));

    loader_options.batch_size = o.batch;
    loader_options.input_size = input_size;
    loader_options.workers = o.workers;
    loader_options.seed = o.seed;
    loader_options.masks = true;
    detail::SegAugmentOptions augment{static_cast<int>(input_size), o.scale_min, o.scale_max, o.flip, o.jitter};
    loader_options.transform = [augment](Sample& s, Rng& rng) { detail::segmentation_augment(s, augment, rng); };
    BatchLoader loader(train, loader_options);
    const int64_t steps = loader.batches_per_epoch();
    ScheduleOptions schedule;
    schedule.kind = o.schedule;
    schedule.base_lr = lr;
    schedule.total_steps = steps * o.epochs;
    schedule.warmup_steps = static_cast<int64_t>(std::llround(o.warmup_epochs * static_cast<double>(steps)));
    const SegLossOptions loss_options{o.dice, o.class_weights};

    // State: fresh, or from the checkpoint.
    int64_t epoch = 0, step_in_epoch = 0, global_step = 0, best_epoch = 0;
    double best_miou = kUndefinedMetric;
    json history = json::array();
    double partial_loss = 0.0, partial_seconds = 0.0, partial_wait = 0.0;
    if (o.resume) {
        detail::load_checkpoint_state(checkpoint, model, *optimizer);
        epoch = meta.at("epochs_done").get<int64_t>();
        step_in_epoch = meta.at("step_in_epoch").get<int64_t>();
        global_step = meta.at("global_step").get<int64_t>();
        history = meta.at("metrics");
        partial_loss = meta.at("partial").at("loss_sum").get<double>();
        partial_seconds = meta.at("partial").at("seconds").get<double>();
        partial_wait = meta.at("partial").at("wait").get<double>();
        best_epoch = meta.at("best_epoch").get<int64_t>();
        if (best_epoch > 0) best_miou = meta.at("best_miou").get<double>();
        if (meta.at("train_images").get<std::size_t>() != train.size() ||
            (epoch < o.epochs && meta.at("epoch_order").get<std::vector<std::size_t>>() != loader.epoch_order(epoch)))
            throw Error(fmt::format("{}: the saved data order differs from this data's (was the dataset changed?)",
                                    checkpoint.string()));
    }
    SegmentTrainSetup setup{train.size(), val ? val->size() : 0, classes, input_size, steps, 0, epoch, step_in_epoch};
    for (const auto& p : model.parameters(true)) setup.parameters += p.numel();
    if (on_setup) on_setup(setup);

    auto save = [&](int64_t epochs_done, int64_t step, double loss_sum, double seconds, double wait) {
        json m;
        m["options"] = options_json;
        m["class_names"] = card.class_names;
        m["train_images"] = train.size();
        m["epochs_done"] = epochs_done;
        m["step_in_epoch"] = step;
        m["global_step"] = global_step;
        m["epoch_order"] = epochs_done < o.epochs ? loader.epoch_order(epochs_done) : std::vector<std::size_t>{};
        m["metrics"] = history;
        m["best_epoch"] = best_epoch;
        m["best_miou"] = nan_to_null(best_miou);
        m["partial"] = {{"loss_sum", loss_sum}, {"seconds", seconds}, {"wait", wait}};
        detail::save_checkpoint(checkpoint, m, model, *optimizer, detail::PartialEpoch{});
    };

    SegmentTrainResult result;
    result.checkpoint = checkpoint;
    result.best_miou = best_miou;
    result.best_epoch = best_epoch;
    model.train();
    for (; epoch < o.epochs; ++epoch) {
        const auto started = Clock::now();
        const bool resumed = step_in_epoch > 0;
        double loss_sum = resumed ? partial_loss : 0.0;
        const double carried_seconds = resumed ? partial_seconds : 0.0, carried_wait = resumed ? partial_wait : 0.0;
        double current_lr = learning_rate(schedule, global_step);
        loader.start_epoch(epoch, step_in_epoch);
        while (auto batch = loader.next()) {
            current_lr = learning_rate(schedule, global_step);
            for (auto& group : optimizer->param_groups()) group.options().set_lr(current_lr);
            optimizer->zero_grad();
            torch::Tensor logits = model.forward({batch->images}).toTensor();
            torch::Tensor loss = segmentation_loss(logits, batch->masks, loss_options);
            loss.backward();
            optimizer->step();
            ++global_step, ++step_in_epoch;
            const double value = loss.item<double>();
            loss_sum += value;
            if (callbacks.on_step) callbacks.on_step(epoch + 1, step_in_epoch, steps, value);
            if (step_in_epoch < steps && callbacks.stop_requested && callbacks.stop_requested()) {
                save(epoch, step_in_epoch, loss_sum, carried_seconds + seconds_since(started),
                     carried_wait + loader.wait_seconds());
                result.interrupted = true;
                result.epochs_done = epoch;
                result.step_in_epoch = step_in_epoch;
                return result;
            }
        }
        const double train_seconds = carried_seconds + seconds_since(started);
        SegmentEpochMetrics m;
        m.epoch = epoch + 1;
        m.epochs = o.epochs;
        m.loss = loss_sum / static_cast<double>(steps);
        m.lr = current_lr;
        m.data_wait_share = train_seconds > 0 ? (carried_wait + loader.wait_seconds()) / train_seconds : 0.0;
        if (val) {
            m.val = validate_epoch(model, *val, card, o.batch, o.data.string() + " (validation)");
            m.best = !std::isnan(m.val.miou) && (best_epoch == 0 || m.val.miou > best_miou);
        }
        m.seconds = carried_seconds + seconds_since(started);
        if (m.best) {
            best_miou = m.val.miou;
            best_epoch = m.epoch;
            write_file_atomic(o.out / "best.pt", module_bytes(model));
        }
        step_in_epoch = 0;
        history.push_back(metrics_json(m));
        save(epoch + 1, 0, 0.0, 0.0, 0.0);
        write_file_atomic(o.out / "metrics.jsonl", metrics_file(history));
        result.last_val = m.val;
        if (callbacks.on_epoch) callbacks.on_epoch(m);
        const bool stop = (callbacks.stop_requested && callbacks.stop_requested()) ||
                          (o.stop_after_epoch > 0 && epoch + 1 == o.stop_after_epoch);
        if (stop && epoch + 1 < o.epochs) {
            result.interrupted = true;
            result.epochs_done = epoch + 1;
            result.best_miou = best_miou;
            result.best_epoch = best_epoch;
            return result;
        }
    }

    write_file_atomic(o.out / "model.pt", module_bytes(model));
    write_file_atomic(o.out / "model.json", segment_model_card_json(card));
    write_file_atomic(o.out / "metrics.jsonl", metrics_file(history));
    result.epochs_done = o.epochs;
    result.model = o.out / "model.pt";
    if (best_epoch > 0) result.best_model = o.out / "best.pt";
    result.best_miou = best_miou;
    result.best_epoch = best_epoch;
    return result;
}

}  // namespace sightline
