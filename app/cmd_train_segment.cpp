// `sightline train segment`: train a U-Net (or the ResNet encoder-decoder) on masks, write
// RUN/model.pt, RUN/best.pt (best val mIoU), RUN/model.json, RUN/metrics.jsonl and
// RUN/checkpoint/ for --resume. Wired from cmd_train.cpp.
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>

#include <fmt/format.h>

#include "commands.hpp"
#include "options.hpp"
#include "validators.hpp"
#include "train_run.hpp"
#include "sightline/segment.hpp"

namespace sightline::cli {

namespace {

void print_setup(const SegmentTrainOptions& o, const SegmentTrainSetup& s) {
    fmt::print("{} ({} parameters, {} classes, {}x{} crops) on {} images, {} steps per epoch; validation: {}\n", o.arch,
               s.parameters, s.num_classes, s.input_size, s.input_size, s.train_images, s.steps_per_epoch,
               s.val_images ? fmt::format("{} images", s.val_images) : std::string("none"));
    if (s.start_epoch > 0 || s.start_step > 0) fmt::print("resuming after epoch {} step {}\n", s.start_epoch, s.start_step);
    std::fflush(stdout);
}

void print_segment_epoch(const SegmentEpochMetrics& m) {
    std::string val = std::isnan(m.val.miou) ? std::string()
                                             : fmt::format("  val mIoU {:.3f}{}", m.val.miou, m.best ? " (best)" : "");
    fmt::print("epoch {}/{}  loss {:.4f}{}  lr {:.4g}  data wait {:.0f}%  {:.1f} s\n", m.epoch, m.epochs, m.loss, val,
               m.lr, 100.0 * m.data_wait_share, m.seconds);
    std::fflush(stdout);
}

}  // namespace

void add_train_segment_command(CLI::App& train) {
    auto o = std::make_shared<SegmentTrainOptions>();
    auto data = std::make_shared<std::string>(), out = std::make_shared<std::string>();
    auto masks = std::make_shared<std::string>();
    auto no_flip = std::make_shared<bool>(false);
    auto scale = std::make_shared<std::vector<double>>(std::vector<double>{o->scale_min, o->scale_max});
    std::string archs;
    for (const SegArchInfo& a : segmentation_architectures()) archs += fmt::format("  {:<14}{}\n", a.name, a.description);
    auto* c = train.add_subcommand("segment", "Train a semantic segmenter on masks (VOC layout; 255 = ignore). "
                                              "Architectures:\n" + archs);
    c->add_option("--data", *data, "Dataset root (JPEGImages/, SegmentationClass/, ImageSets/Segmentation/)")->required();
    c->add_option("--out", *out, "Run folder: model.pt, best.pt, model.json, metrics.jsonl, checkpoint/")->required();
    c->add_option("--masks", *masks, "Folder of <id>.png masks used instead of SegmentationClass/ for the training "
                                     "split (e.g. pseudo-masks); validation keeps the ground truth");
    c->add_option("--arch", o->arch, "Architecture (" + segmentation_architecture_names() + ")")->capture_default_str();
    c->add_option("--base", o->base, "Channels of the first level (doubling per level)")->capture_default_str();
    c->add_option("--depth", o->depth, "unet: poolings (input side a multiple of 2^depth)")->capture_default_str();
    c->add_option("--upsample", o->upsample, "unet: transposed or bilinear")->capture_default_str();
    c->add_option("--blocks", o->blocks, "resnet_unet: blocks per encoder stage, 4 numbers")->delimiter(',')
        ->capture_default_str();
    c->add_option("--input-size", o->input_size, "Training crop side (0 = the first image's side)")->capture_default_str();
    c->add_option("--epochs", o->epochs, "Training epochs")->capture_default_str();
    c->add_option("--batch", o->batch, "Batch size")->capture_default_str();
    add_choice_option(c, "--optimizer", o->optimizer, optimizer_choices(), "Optimiser: SGD with momentum, or AdamW");
    c->add_option("--lr", o->lr, "Peak learning rate (0: 0.002 for adamw, 0.01 for sgd)")->capture_default_str();
    c->add_option("--momentum", o->momentum, "SGD momentum")->capture_default_str();
    c->add_option("--weight-decay", o->weight_decay, "Weight decay (< 0: 1e-4)")->capture_default_str();
    add_choice_option(c, "--schedule", o->schedule, schedule_choices(), "Learning-rate schedule");
    c->add_option("--warmup-epochs", o->warmup_epochs, "Linear warmup length in epochs")->capture_default_str();
    c->add_option("--dice", o->dice, "Weight of the soft Dice loss added to cross-entropy (0 = off)")
        ->capture_default_str();
    c->add_option("--class-weights", o->class_weights, "Cross-entropy weight per class (K values)")->delimiter(',');
    c->add_option("--scale", *scale, "Random rescale range MIN,MAX before the crop")->delimiter(',')->expected(2);
    c->add_flag("--no-flip", *no_flip, "No random horizontal flip");
    c->add_flag("--jitter", o->jitter, "Colour jitter");
    c->add_option("--train-split", o->train_split, "Training split")->capture_default_str();
    c->add_option("--val", o->val_split, "Validation split (default: val when it exists; none = no validation)");
    c->add_option("--seed", o->seed, "Seed: initialisation, data order, augmentation")->capture_default_str();
    auto threads = std::make_shared<int>(2);
    add_torch_threads_option(c, *threads);
    c->add_option("--workers", o->workers, "Data loading threads (do not change results)")->capture_default_str();
    c->add_flag("--resume", o->resume, "Continue the run in --out from its checkpoint, exactly");
    add_choice_option(c, "--norm", o->norm, norm_choices(),
                      "Normalisation after each convolution: BatchNorm, or GroupNorm (the same weights on any number "
                      "of processes, docs/distributed.md)");
    c->add_option("--stop-after-epoch", o->stop_after_epoch, "Debug: stop as if killed after this epoch")->group("");
    c->callback([o, data, out, masks, no_flip, scale, threads] {
        apply_torch_threads(*threads);
        o->data = *data;
        o->out = *out;
        o->masks = *masks;
        o->flip = !*no_flip;
        o->scale_min = (*scale)[0];
        o->scale_max = (*scale)[1];
        o->distributed = join_distributed_group();
        const bool prints = prints_progress(o->distributed.get());
        StopOnSignals signals;
        SegmentTrainCallbacks callbacks{prints ? step_bar() : nullptr, prints ? print_segment_epoch : nullptr,
                                        [&signals] { return signals.signal() != 0; }};
        SegmentTrainResult r = train_segmenter(*o, callbacks, [&](const SegmentTrainSetup& s) {
            if (prints) print_setup(*o, s);
        });
        print_communication(o->distributed.get());
        if (r.interrupted) throw interrupted_error(r.checkpoint, signals.signal(), r.epochs_done, r.step_in_epoch);
        if (!prints) return;
        if (r.best_epoch > 0)
            fmt::print("best val mIoU {:.4f} at epoch {} ({})\n", r.best_miou, r.best_epoch, r.best_model.string());
        fmt::print("wrote {}, {}, {}\n", r.model.string(), (o->out / "model.json").string(),
                   (o->out / "metrics.jsonl").string());
    });
}

}  // namespace sightline::cli
