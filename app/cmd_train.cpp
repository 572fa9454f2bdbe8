// `sightline train classify` (and later `train segment`): train a model, write RUN/model.pt
// (TorchScript), RUN/model.json, RUN/metrics.jsonl and RUN/checkpoint/ for --resume.
#include <unistd.h>

#include <csignal>
#include <cstdio>

#include <fmt/format.h>

#include "commands.hpp"
#include "options.hpp"
#include "validators.hpp"
#include "train_run.hpp"
#include "sightline/train.hpp"

namespace sightline::cli {

namespace {

void print_setup(const TrainOptions& o, const TrainSetup& s) {
    std::string val;
    for (const auto& [split, n] : s.val_images) val += fmt::format(" {}={}", split, n);
    fmt::print("{} ({} parameters, {}x{} input) on {} images, {}; {} steps per epoch; validation:{}\n", o.arch,
               s.parameters, s.input_size, s.input_size, s.train_images, objective_name(s.objective),
               s.steps_per_epoch, val.empty() ? " none" : val);
    if (s.start_epoch > 0 || s.start_step > 0)
        fmt::print("resuming after epoch {} step {}\n", s.start_epoch, s.start_step);
    std::fflush(stdout);
}

void print_epoch(const EpochMetrics& m) {
    std::string val;
    for (const auto& [name, value] : m.val) val += fmt::format("  {} {:.3f}", name, value);
    fmt::print("epoch {}/{}  loss {:.4f}  train {:.3f}{}  lr {:.4g}  data wait {:.0f}%  {:.1f} s\n", m.epoch, m.epochs,
               m.loss, m.train_score, val, m.lr, 100.0 * m.data_wait_share, m.seconds);
    std::fflush(stdout);
}

void add_classify(CLI::App& train) {
    auto o = std::make_shared<TrainOptions>();
    auto data = std::make_shared<std::string>(), out = std::make_shared<std::string>();
    auto no_flip = std::make_shared<bool>(false), no_jitter = std::make_shared<bool>(false);
    auto* c = train.add_subcommand(
        "classify", "Train an image classifier on a dataset written by `sightline data` (or VOC / image folder "
                    "+ labels.csv). Architectures:\n" + architecture_help());
    c->add_option("--data", *data, "Dataset root")->required();
    c->add_option("--out", *out, "Run folder: model.pt, model.json, metrics.jsonl, checkpoint/")->required();
    c->add_option("--arch", o->arch, "Architecture (" + architecture_names() + ")")->capture_default_str();
    c->add_option("--epochs", o->epochs, "Training epochs")->capture_default_str();
    c->add_option("--batch", o->batch, "Batch size")->capture_default_str();
    c->add_option("--lr", o->lr, "Peak learning rate (0: 0.05 for sgd, 0.001 for adamw)")->capture_default_str();
    add_choice_option(c, "--optimizer", o->optimizer, optimizer_choices(), "Optimiser: SGD with momentum, or AdamW");
    c->add_option("--momentum", o->momentum, "SGD momentum")->capture_default_str();
    c->add_option("--weight-decay", o->weight_decay, "Weight decay (< 0: 5e-4 for sgd, 0.05 for adamw)")
        ->capture_default_str();
    add_choice_option(c, "--schedule", o->schedule, schedule_choices(), "Learning-rate schedule");
    c->add_option("--warmup-epochs", o->warmup_epochs, "Linear warmup length in epochs")->capture_default_str();
    c->add_option("--label-smoothing", o->label_smoothing, "Label smoothing epsilon")->capture_default_str();
    c->add_option("--mixup", o->mixup, "Mixup Beta(a, a) parameter a (0 = off)")->capture_default_str();
    c->add_flag("--multilabel", o->multilabel, "Multi-label objective even if every image has one label");
    c->add_option("--input-size", o->input_size, "Square input side (0 = the images' size)")->capture_default_str();
    c->add_option("--width", o->width, "Channels of the first stage (doubling per stage)")->capture_default_str();
    c->add_option("--depth", o->depth, "Blocks per stage, 4 numbers")->delimiter(',')->capture_default_str();
    c->add_option("--output-stride", o->output_stride, "Input side / feature side: 4, 8 or 16")->capture_default_str();
    c->add_option("--hidden", o->hidden, "Hidden units of the MLP head")->capture_default_str();
    c->add_flag("--crop", o->crop, "Random resized crop augmentation");
    c->add_flag("--no-flip", *no_flip, "No random horizontal flip");
    c->add_flag("--no-jitter", *no_jitter, "No colour jitter");
    c->add_option("--train-split", o->train_split, "Training split")->capture_default_str();
    c->add_option("--val", o->val_splits,
                  "Validation splits (default: val_matched,val_swapped,val_context if present, else val)")
        ->delimiter(',');
    c->add_option("--seed", o->seed, "Seed: initialisation, data order, augmentation")->capture_default_str();
    auto threads = std::make_shared<int>(2);
    add_torch_threads_option(c, *threads, "LibTorch threads (results are reproducible per thread count)");
    c->add_option("--workers", o->workers, "Data loading threads (do not change results)")->capture_default_str();
    c->add_flag("--resume", o->resume, "Continue the run in --out from its checkpoint, exactly");
    c->add_flag("--shuffle-labels", o->shuffle_labels, "Permute the training labels (data randomisation test)");
    // Weakly supervised segmentation objectives (docs/wsss-objectives.md).
    add_choice_option(c, "--objective", o->objective, objective_choices(),
                      "cam (plain loss), puzzle (Puzzle-CAM), mixup (Mixup-CAM), subcategory (SC-CAM); all but cam "
                      "need a gap_linear architecture");
    c->add_option("--puzzle-alpha", o->puzzle_alpha, "Puzzle-CAM: reconstruction loss weight after the ramp")
        ->capture_default_str();
    c->add_option("--puzzle-ramp", o->puzzle_ramp, "Puzzle-CAM: share of training over which the weight ramps up")
        ->capture_default_str();
    c->add_option("--mixup-entropy", o->mixup_entropy, "Mixup-CAM: weight of the entropy of mixed predictions")
        ->capture_default_str();
    c->add_option("--mixup-concentration", o->mixup_concentration,
                  "Mixup-CAM: weight of the feature-level concentration term")
        ->capture_default_str();
    c->add_option("--subcategory-k", o->subcategory_k, "SC-CAM: sub-categories (k-means clusters) per class")
        ->capture_default_str();
    c->add_option("--subcategory-lambda", o->subcategory_lambda, "SC-CAM: weight of the sub-category loss")
        ->capture_default_str();
    c->add_option("--subcategory-rounds", o->subcategory_rounds,
                  "SC-CAM: cluster-and-retrain rounds after a plain CAM round (each --epochs long)")
        ->capture_default_str();
    add_choice_option(c, "--norm", o->norm, norm_choices(),
                      "Normalisation after each convolution: BatchNorm, or GroupNorm (the same weights on any number "
                      "of processes, docs/distributed.md)");
    c->add_option("--stop-after-epoch", o->stop_after_epoch, "Debug: stop as if killed after this epoch")
        ->group("");  // hidden
    c->callback([o, data, out, no_flip, no_jitter, threads] {
        apply_torch_threads(*threads);
        o->data = *data;
        o->out = *out;
        o->flip = !*no_flip;
        o->jitter = !*no_jitter;
        o->distributed = join_distributed_group();
        const bool prints = prints_progress(o->distributed.get());
        StopOnSignals signals;
        TrainCallbacks callbacks{prints ? step_bar() : nullptr, prints ? print_epoch : nullptr,
                                 [&signals] { return signals.signal() != 0; }};
        TrainResult r = train_classifier(*o, callbacks, [&](const TrainSetup& s) {
            if (prints) print_setup(*o, s);
        });
        print_communication(o->distributed.get());
        if (r.interrupted) throw interrupted_error(r.checkpoint, signals.signal(), r.epochs_done, r.step_in_epoch);
        if (prints)
            fmt::print("wrote {}, {}, {}\n", r.model.string(), (o->out / "model.json").string(),
                       (o->out / "metrics.jsonl").string());
    });
}

}  // namespace

void add_train_command(CLI::App& app) {
    auto* train = app.add_subcommand("train", "Train models (TorchScript checkpoints, resumable)");
    train->require_subcommand(1);
    add_classify(*train);
    add_train_segment_command(*train);
    add_train_instance_command(*train);
}

}  // namespace sightline::cli
