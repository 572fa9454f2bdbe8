// `sightline train instance`: train Mask R-CNN (torchvision's detection recipe) on instance data,
// write RUN/model.pth + model.json, RUN/best.pth + best.json (best val mask AP),
// RUN/metrics.jsonl and RUN/checkpoint/ for --resume. Wired from cmd_train.cpp.
#include <cstdio>
#include <tuple>

#include <fmt/format.h>

#include "commands.hpp"
#include "options.hpp"
#include "train_run.hpp"
#include "sightline/instance.hpp"

namespace sightline::cli {

void add_train_instance_command(CLI::App& train) {
    auto o = std::make_shared<InstanceTrainOptions>();
    auto data = std::make_shared<std::string>(), val_data = std::make_shared<std::string>(),
         out = std::make_shared<std::string>();
    auto no_flip = std::make_shared<bool>(false);
    auto* c = train.add_subcommand("instance", "Train Mask R-CNN on instance masks (VOC SegmentationObject/ or COCO "
                                               "JSON), torchvision's recipe, val mask AP per epoch");
    c->add_option("--data", *data, "VOC folder with SegmentationObject/ (or a COCO instance .json)")->required();
    c->add_option("--val-data", *val_data, "COCO instance .json for validation (default: --data's --val split)");
    c->add_option("--out", *out, "Run folder")->required();
    c->add_option("--init", o->init,
                  "Start from torchvision weights: a Mask R-CNN state_dict (its class-specific predictors are "
                  "skipped when the class count differs) or a ResNet classifier's (the backbone)");
    c->add_option("--depth", o->depth, "ResNet depth: 18, 34 or 50")->capture_default_str();
    auto min_sizes = std::make_shared<std::vector<int64_t>>(std::vector<int64_t>{o->min_size});
    c->add_option("--min-size", *min_sizes,
                  "Short side the images are resized to; a list (e.g. 480,512,544,576,608,640) trains each image at "
                  "a size drawn from it and evaluates at the last, as torchvision's min_size tuple")
        ->delimiter(',')
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    c->add_option("--max-size", o->max_size, "Longest side after resizing")->capture_default_str();
    // torchvision's MaskRCNN keywords; smaller counts make steps on small images with few objects
    // much cheaper (docs/mask-rcnn.md, Training).
    for (const auto& [flag, field, what] :
         {std::tuple{"--rpn-pre-nms-top-n-train", &o->rpn_pre_nms_top_n_train, "Proposals per FPN level before NMS, training"},
          std::tuple{"--rpn-post-nms-top-n-train", &o->rpn_post_nms_top_n_train, "Proposals per image after NMS, training"},
          std::tuple{"--rpn-pre-nms-top-n-test", &o->rpn_pre_nms_top_n_test,
                     "Proposals per FPN level before NMS, evaluation (kept in the model card)"},
          std::tuple{"--rpn-post-nms-top-n-test", &o->rpn_post_nms_top_n_test,
                     "Proposals per image after NMS, evaluation (kept in the model card)"},
          std::tuple{"--rpn-batch-size-per-image", &o->rpn_batch_size_per_image, "Anchors sampled per image for the RPN losses"},
          std::tuple{"--box-batch-size-per-image", &o->box_batch_size_per_image,
                     "Proposals sampled per image for the box and mask losses"}})
        c->add_option(flag, *field, what)->check(CLI::PositiveNumber)->capture_default_str();
    c->add_option("--epochs", o->epochs)->capture_default_str();
    c->add_option("--batch", o->batch, "Images per step")->capture_default_str();
    c->add_option("--lr", o->lr, "SGD learning rate")->capture_default_str();
    c->add_option("--momentum", o->momentum)->capture_default_str();
    c->add_option("--weight-decay", o->weight_decay)->capture_default_str();
    c->add_option("--lr-steps", o->lr_steps, "Epochs at which the rate is multiplied by --lr-gamma")
        ->delimiter(',')
        ->capture_default_str();
    c->add_option("--lr-gamma", o->lr_gamma)->capture_default_str();
    c->add_option("--warmup-iters", o->warmup_iters, "Linear warm-up steps in the first epoch")->capture_default_str();
    c->add_option("--warmup-factor", o->warmup_factor, "Warm-up start factor")->capture_default_str();
    c->add_flag("--no-flip", *no_flip, "No horizontal flips");
    c->add_option("--train-split", o->train_split)->capture_default_str();
    c->add_option("--val", o->val_split, "Validation split ('none': no validation)")->capture_default_str();
    c->add_option("--seed", o->seed)->capture_default_str();
    auto threads = std::make_shared<int>(2);
    add_torch_threads_option(c, *threads);
    c->add_flag("--resume", o->resume, "Continue the run in --out from its checkpoint");
    c->add_option("--stop-after-epoch", o->stop_after_epoch, "Debug: stop as if killed after this epoch")->group("");
    c->add_option("--stop-after-step", o->stop_after_step, "Debug: stop as if interrupted after this many steps")
        ->group("");
    c->callback([o, data, val_data, out, no_flip, threads, min_sizes] {
        o->min_size = min_sizes->back();
        if (min_sizes->size() > 1) o->train_min_sizes = *min_sizes;
        apply_torch_threads(*threads);
        o->data = *data;
        o->val_data = *val_data;
        o->out = *out;
        o->flip = !*no_flip;
        o->distributed = join_distributed_group();
        const bool prints = prints_progress(o->distributed.get());
        StopOnSignals signals;
        const InstanceTrainResult r = train_instance(*o, [prints](const InstanceEpochMetrics& m) {
            if (!prints) return;
            const std::string val = m.val_mask_ap < -0.5 && m.val_box_ap < -0.5
                                        ? std::string()
                                        : fmt::format("  val mask AP {:.3f} box AP {:.3f}{}", m.val_mask_ap,
                                                      m.val_box_ap, m.best ? " (best)" : "");
            fmt::print("epoch {}/{}  loss {:.4f}{}  lr {:.4g}  {:.1f} s\n", m.epoch, m.epochs, m.loss, val, m.lr,
                       m.seconds);
            std::fflush(stdout);
        }, [prints](const std::string& line) {
            if (!prints) return;
            fmt::print("{}\n", line);
            std::fflush(stdout);
        }, [&signals] { return signals.signal() != 0; });
        print_communication(o->distributed.get());
        if (prints && r.best_epoch > 0)
            fmt::print("best val mask AP {:.3f} at epoch {}\n", r.best_mask_ap, r.best_epoch);
        if (r.stopped)
            throw interrupted_error(o->out / "checkpoint" / "checkpoint.pt", signals.signal(), r.epochs_done,
                                    r.step_in_epoch, r.step_in_epoch > 0 ? "--stop-after-step" : "--stop-after-epoch");
        if (prints) fmt::print("wrote {}\n", (o->out / "model.pth").string());
    });
}

}  // namespace sightline::cli
