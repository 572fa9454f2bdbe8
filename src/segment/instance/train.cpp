// `sightline train instance`: Mask R-CNN training with torchvision's detection recipe, per-epoch
// validation mask AP, best model kept, exact resume from the end of an epoch.
#include <ATen/CPUGeneratorImpl.h>

#include <unistd.h>

#include <chrono>
#include <future>
#include <cmath>
#include <sstream>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sightline/device.hpp"
#include "sightline/data.hpp"
#include "sightline/distributed.hpp"
#include "sightline/instance.hpp"
#include "train/loop_support.hpp"

namespace sightline {

namespace {

using RunJson = nlohmann::json;

// The proposal and sampler counts under their flag names.
std::vector<std::pair<std::string, int64_t InstanceTrainOptions::*>> sampler_fields() {
    return {{"rpn-pre-nms-top-n-train", &InstanceTrainOptions::rpn_pre_nms_top_n_train},
            {"rpn-post-nms-top-n-train", &InstanceTrainOptions::rpn_post_nms_top_n_train},
            {"rpn-pre-nms-top-n-test", &InstanceTrainOptions::rpn_pre_nms_top_n_test},
            {"rpn-post-nms-top-n-test", &InstanceTrainOptions::rpn_post_nms_top_n_test},
            {"rpn-batch-size-per-image", &InstanceTrainOptions::rpn_batch_size_per_image},
            {"box-batch-size-per-image", &InstanceTrainOptions::box_batch_size_per_image}};
}

RunJson options_json(const InstanceTrainOptions& o) {
    RunJson j{{"data", o.data.string()},   {"val-data", o.val_data.string()}, {"depth", o.depth},
                {"min-size", o.min_size},    {"max-size", o.max_size},          {"epochs", o.epochs},
                {"batch", o.batch},          {"lr", o.lr},                      {"momentum", o.momentum},
                {"weight-decay", o.weight_decay}, {"lr-steps", o.lr_steps},     {"lr-gamma", o.lr_gamma},
                {"warmup-iters", o.warmup_iters}, {"warmup-factor", o.warmup_factor}, {"flip", o.flip},
                {"train-split", o.train_split}, {"val", o.val_split},           {"seed", o.seed}};
    if (!o.train_min_sizes.empty()) j["train-min-sizes"] = o.train_min_sizes;  // older runs have no key
    if (!o.init.empty()) j["init"] = o.init.string();  // only then: older checkpoints still resume
    // The same for the proposal and sampler counts: recorded when they differ from torchvision's.
    const InstanceTrainOptions defaults;
    for (const auto& [key, field] : sampler_fields())
        if (o.*field != defaults.*field) j[key] = o.*field;
    return j;
}

void validate(const InstanceTrainOptions& o) {
    const auto need = [](bool ok, const std::string& m) {
        if (!ok) throw UsageError(m);
    };
    need(!o.data.empty(), "--data is required");
    need(!o.out.empty(), "--out is required");
    if (!o.init.empty() && !fs::is_regular_file(o.init))
        throw Error(fmt::format("{}: no such weights file (--init)", o.init.string()));
    need(o.epochs >= 1, fmt::format("--epochs must be >= 1, got {}", o.epochs));
    need(o.batch >= 1, fmt::format("--batch must be >= 1, got {}", o.batch));
    need(o.lr > 0 && o.momentum >= 0 && o.weight_decay >= 0, "--lr must be > 0, --momentum and --weight-decay >= 0");
    need(o.lr_gamma > 0 && o.warmup_factor > 0 && o.warmup_factor <= 1 && o.warmup_iters >= 0,
         "--lr-gamma must be > 0, --warmup-factor in (0, 1], --warmup-iters >= 0");
    for (const auto& [key, field] : sampler_fields())
        need(o.*field >= 1, fmt::format("--{} must be >= 1, got {}", key, o.*field));
}

fs::path checkpoint_file(const fs::path& out) { return out / "checkpoint" / "checkpoint.pt"; }

struct Progress {
    int64_t epochs_done = 0;
    double best_ap = -1;
    int64_t best_epoch = 0;
    RunJson history = RunJson::array();
    // An interrupted epoch: its steps done, their loss sum and seconds.
    int64_t step_in_epoch = 0;
    double partial_loss = 0, partial_seconds = 0;
};

void save_checkpoint(const fs::path& path, const RunJson& options, const Progress& p, const MaskRCNNImpl& model,
                     torch::optim::Optimizer& optimizer) {
    torch::serialize::OutputArchive archive;
    const RunJson meta{{"format", "sightline-instance-checkpoint-1"}, {"options", options},
                    {"epochs_done", p.epochs_done}, {"best_ap", p.best_ap}, {"best_epoch", p.best_epoch},
                    {"history", p.history}, {"step_in_epoch", p.step_in_epoch}, {"partial_loss", p.partial_loss},
                    {"partial_seconds", p.partial_seconds}};
    archive.write("meta", c10::IValue(meta.dump()));
    torch::serialize::OutputArchive weights;
    for (const auto& [name, t] : model.named_state()) weights.write(name, t.detach());
    archive.write("model", weights);
    torch::serialize::OutputArchive optim;
    optimizer.save(optim);
    archive.write("optimizer", optim);
    // The RPN and RoI samplers draw from LibTorch's generator: resuming needs its state.
    archive.write("torch_generator", at::detail::getDefaultCPUGenerator().get_state());
    std::ostringstream bytes;
    archive.save_to(bytes);
    write_file_atomic(path, bytes.str());
}

RunJson read_checkpoint_meta(const fs::path& path, torch::serialize::InputArchive& archive) {
    try {
        archive.load_from(path.string());
    } catch (const c10::Error&) {
        throw Error(fmt::format("{}: not a readable checkpoint", path.string()));
    }
    c10::IValue meta;
    if (!archive.try_read("meta", meta) || !meta.isString())
        throw Error(fmt::format("{}: not a sightline instance checkpoint", path.string()));
    RunJson j = RunJson::parse(meta.toStringRef(), nullptr, false);
    if (!j.is_object() || j.value("format", "") != "sightline-instance-checkpoint-1")
        throw Error(fmt::format("{}: not a sightline instance checkpoint", path.string()));
    return j;
}

void load_state(torch::serialize::InputArchive& archive, MaskRCNNImpl& model, torch::optim::Optimizer& optimizer) {
    torch::serialize::InputArchive weights;
    archive.read("model", weights);
    torch::NoGradGuard no_grad;
    for (const auto& [name, t] : model.named_state()) {
        torch::Tensor saved;
        weights.read(name, saved);
        t.copy_(saved);
    }
    torch::serialize::InputArchive optim;
    archive.read("optimizer", optim);
    optimizer.load(optim);
    torch::Tensor generator;
    archive.read("torch_generator", generator);
    at::Generator default_generator = at::detail::getDefaultCPUGenerator();
    default_generator.set_state(generator);
}

// Mask and box AP of the model on the validation set (its ground truth as COCO evaluates it).
std::pair<double, double> validation_ap(MaskRCNNImpl& model, const InstanceDataset& val, const CocoDataset& gt,
                                        const std::vector<int64_t>& category_ids) {
    CocoResults results;
    for (std::size_t i = 0; i < val.size(); ++i) {
        const InstanceSample s = val.get(i);
        const InstanceDetections d = model.detect({rgb_to_tensor(s.image)}).detections.at(0);
        for (CocoDetection& det : coco_results_of(d, s.image_id, category_ids)) {
            det.area = (*det.bbox)[2] * (*det.bbox)[3];  // loadRes' rule for results with boxes
            results.detections.push_back(std::move(det));
        }
    }
    return {evaluate_coco(gt, results, CocoIouType::segm).stats[0], evaluate_coco(gt, results, CocoIouType::bbox).stats[0]};
}

void save_model(const MaskRCNNImpl& model, const InstanceModelCard& card, const fs::path& out, const std::string& stem) {
    save_state_dict(model, (out / (stem + ".pth")).string());
    write_file_atomic(out / (stem + ".json"), instance_model_card_json(card));
}

}  // namespace

double instance_learning_rate(const InstanceTrainOptions& o, int64_t epoch, int64_t step, int64_t steps_per_epoch) {
    double lr = o.lr;
    for (int64_t milestone : o.lr_steps)
        if (epoch >= milestone) lr *= o.lr_gamma;
    const int64_t warmup = std::min(o.warmup_iters, steps_per_epoch - 1);
    if (epoch == 0 && warmup > 0 && step < warmup)  // LinearLR(start_factor, total_iters)
        lr *= o.warmup_factor + (1.0 - o.warmup_factor) * static_cast<double>(step) / static_cast<double>(warmup);
    return lr;
}

InstanceTrainResult train_instance(const InstanceTrainOptions& o,
                                   const std::function<void(const InstanceEpochMetrics&)>& on_epoch,
                                   const std::function<void(const std::string&)>& on_message,
                                   const std::function<bool()>& stop_requested) {
    validate(o);
    const auto train = open_instance_dataset(o.data, o.train_split);
    std::unique_ptr<InstanceDataset> val;
    if (!o.val_data.empty()) val = open_instance_dataset(o.val_data, "");
    else if (o.val_split != "none") val = open_instance_dataset(o.data, o.val_split);
    if (val && val->class_names() != train->class_names())
        throw Error(fmt::format("{}: its classes differ from the training data's", o.val_data.empty() ? o.data.string()
                                                                                                      : o.val_data.string()));
    // torchvision's recipe trains on images with objects only.
    std::vector<std::size_t> usable;
    for (std::size_t i = 0; i < train->size(); ++i)
        if (instance_target(train->get(i)).labels.size(0) > 0) usable.push_back(i);
    if (usable.empty()) throw Error(fmt::format("{}: no training image has an object", o.data.string()));

    MaskRCNNConfig config;
    config.depth = o.depth;
    config.num_classes = static_cast<int64_t>(train->class_names().size());
    config.min_size = o.min_size;
    config.train_min_sizes = o.train_min_sizes;
    config.max_size = o.max_size;
    config.trainable_layers = 5;  // from random weights every stage trains (torchvision without weights)
    config.rpn_pre_nms_top_n_train = o.rpn_pre_nms_top_n_train;
    config.rpn_post_nms_top_n_train = o.rpn_post_nms_top_n_train;
    config.rpn_pre_nms_top_n = o.rpn_pre_nms_top_n_test;
    config.rpn_post_nms_top_n = o.rpn_post_nms_top_n_test;
    config.rpn_batch_size_per_image = o.rpn_batch_size_per_image;
    config.box_batch_size_per_image = o.box_batch_size_per_image;
    const InstanceModelCard card = card_for_dataset(config, *train);

    // Data-parallel, rank 0 alone writes; every rank reads the checkpoint on a resume.
    DistributedGroup* group = o.distributed.get();
    const bool writes = !group || group->is_main();
    const int64_t share = group ? o.batch / group->size() : o.batch;
    if (group && o.batch % group->size() != 0)
        throw UsageError(fmt::format("--batch {} is not a multiple of the {} processes: each takes an equal share of "
                                     "every batch",
                                     o.batch, group->size()));
    const RunJson options = options_json(o);
    const fs::path checkpoint = checkpoint_file(o.out);
    torch::serialize::InputArchive archive;
    RunJson meta;
    if (o.resume) {
        if (!fs::exists(checkpoint)) throw Error(fmt::format("{}: no checkpoint to resume from", checkpoint.string()));
        meta = read_checkpoint_meta(checkpoint, archive);
        if (meta["options"] != options)
            throw Error(fmt::format("{}: the run was started with other options ({}); resume with the same ones",
                                    checkpoint.string(), meta["options"].dump()));
    } else if (writes && (fs::exists(checkpoint) || fs::exists(o.out / "model.pth"))) {
        throw Error(fmt::format("{}: already holds a run (--resume continues it)", o.out.string()));
    }
    if (writes) ensure_writable_dir(o.out / "checkpoint");

    detail::KeepGlobalRandomState caller_random_state;
    torch::manual_seed(o.seed);  // torchvision's initialisation and sampling draw from the global generator
    MaskRCNN model(card.config);
    if (!o.init.empty() && !o.resume) {
        const InitReport init = init_from_state_dict(*model, o.init.string());
        if (on_message)
            on_message(fmt::format("init: {} tensors from {}{}{}", init.loaded, o.init.string(),
                                   init.backbone_only ? " (a ResNet classifier: the backbone's body)" : "",
                                   init.skipped.empty() ? ""
                                                        : fmt::format("; {} class-specific tensors of another class "
                                                                      "count left as initialised",
                                                                      init.skipped.size())));
    }
    if (!compute_device().is_cpu()) model->to(compute_device());  // before the optimiser takes the parameters
    std::vector<torch::Tensor> params;
    for (const auto& p : model->parameters())
        if (p.requires_grad()) params.push_back(p);
    auto model_state = [&] {
        std::vector<torch::Tensor> state;
        for (const auto& [name, t] : model->named_state()) state.push_back(t);
        return state;
    };
    torch::optim::SGD optimizer(params,
                                torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay));
    Progress progress;
    if (o.resume) {
        load_state(archive, *model, optimizer);
        progress.epochs_done = meta["epochs_done"];
        progress.best_ap = meta["best_ap"];
        progress.best_epoch = meta["best_epoch"];
        progress.history = meta["history"];
        // Checkpoints written before mid-epoch stops existed hold whole epochs only.
        progress.step_in_epoch = meta.value("step_in_epoch", int64_t{0});
        progress.partial_loss = meta.value("partial_loss", 0.0);
        progress.partial_seconds = meta.value("partial_seconds", 0.0);
    }
    if (group) group->broadcast(model_state());  // every rank starts from rank 0's weights
    CocoDataset val_gt;
    if (val) {
        // Every rank validates (the same numbers); rank 0 writes the ground truth file, the
        // others read their own copy of it.
        const fs::path gt_file = writes ? o.out / "val_instances.json"
                                        : fs::temp_directory_path() / fmt::format("sightline-val-{}-{}.json",
                                                                                  ::getpid(), group->rank());
        write_coco_instances(*val, gt_file);
        val_gt = read_coco_dataset(gt_file);
        if (!writes) fs::remove(gt_file);
    }

    // Data-parallel runs drop an epoch's last, partial batch: every rank needs an equal share.
    const auto steps = static_cast<int64_t>(
        group ? usable.size() / static_cast<std::size_t>(o.batch)
              : (usable.size() + static_cast<std::size_t>(o.batch) - 1) / static_cast<std::size_t>(o.batch));
    if (steps == 0)
        throw Error(fmt::format("{}: {} training images with objects, fewer than one batch of {}", o.data.string(),
                                usable.size(), o.batch));
    InstanceTrainResult result;
    int64_t run_step = progress.epochs_done * steps + progress.step_in_epoch;  // steps of the whole run
    bool stop_pending = false;  // asked to stop at an epoch's last step: stop after the epoch
    for (int64_t epoch = progress.epochs_done; epoch < o.epochs; ++epoch) {
        const auto started = std::chrono::steady_clock::now();
        model->train();
        Rng order_rng(mix_seed(o.seed, static_cast<uint64_t>(epoch)));
        std::vector<std::size_t> order = usable;
        order_rng.shuffle(order);
        // A step's images and targets: this rank's share of the step's batch, flipped by a draw
        // of (seed, epoch, sample), so a step reads the same whoever reads it and when.
        using StepData = std::pair<std::vector<torch::Tensor>, std::vector<InstanceTarget>>;
        auto read_step = [&, epoch](int64_t step) {
            StepData data;
            const int64_t first = group ? share * group->rank() : 0;
            for (int64_t b = first; b < first + share; ++b) {
                const std::size_t at = static_cast<std::size_t>(step * o.batch + b);
                if (at >= order.size()) break;
                InstanceSample s = train->get(order[at]);
                Rng flip_rng(mix_seed(mix_seed(o.seed, static_cast<uint64_t>(epoch) + 1000), order[at]));
                if (o.flip && flip_rng.bernoulli(0.5)) horizontal_flip(s);
                data.first.push_back(rgb_to_tensor(s.image));
                data.second.push_back(instance_target(s));
            }
            return data;
        };
        const int64_t first_step = progress.step_in_epoch;
        double loss_sum = first_step > 0 ? progress.partial_loss : 0.0, lr = o.lr;
        const double carried_seconds = first_step > 0 ? progress.partial_seconds : 0.0;
        progress.step_in_epoch = 0;
        std::future<StepData> next = std::async(std::launch::async, read_step, first_step);
        for (int64_t step = first_step; step < steps; ++step) {
            auto [images, targets] = next.get();
            if (step + 1 < steps) next = std::async(std::launch::async, read_step, step + 1);
            lr = instance_learning_rate(o, epoch, step, steps);
            for (auto& param_group : optimizer.param_groups())
                static_cast<torch::optim::SGDOptions&>(param_group.options()).lr(lr);
            optimizer.zero_grad();
            const torch::Tensor loss = model->losses(images, targets).total();
            double value = loss.item<double>();
            bool finite = std::isfinite(value);
            ++run_step;
            bool stop = (stop_requested && stop_requested()) || (o.stop_after_step > 0 && run_step == o.stop_after_step);
            if (group) {
                // Every rank learns of a bad loss or a stop request on any rank; the loss shown
                // is the mean.
                torch::Tensor shared = torch::tensor({finite ? value : 0.0, finite ? 0.0 : 1.0, stop ? 1.0 : 0.0},
                                                     torch::kFloat64);
                group->all_reduce_sum(shared);
                value = shared[0].item<double>() / group->size();
                finite = shared[1].item<double>() == 0.0;
                stop = shared[2].item<double>() > 0.0;
            }
            if (!finite)
                throw Error(fmt::format("epoch {} step {}: the loss is not finite (lower --lr)", epoch + 1, step + 1));
            loss.backward();
            if (group) group->average_gradients(params);
            optimizer.step();
            loss_sum += value;
            if (stop && step + 1 == steps) stop_pending = true;
            if (stop && step + 1 < steps) {
                // Stopped within the epoch: the checkpoint holds where, for an exact resume.
                if (next.valid()) next.wait();
                progress.step_in_epoch = step + 1;
                progress.partial_loss = loss_sum;
                progress.partial_seconds =
                    carried_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
                if (writes) save_checkpoint(checkpoint, options, progress, *model, optimizer);
                result.stopped = true;
                result.epochs_done = epoch;
                result.step_in_epoch = step + 1;
                result.best_mask_ap = progress.best_ap;
                result.best_epoch = progress.best_epoch;
                return result;
            }
        }
        InstanceEpochMetrics m;
        m.epoch = epoch + 1;
        m.epochs = o.epochs;
        m.loss = loss_sum / static_cast<double>(steps);
        m.lr = lr;
        if (val) {
            std::tie(m.val_mask_ap, m.val_box_ap) = validation_ap(*model, *val, val_gt, card.category_ids);
            m.best = progress.best_epoch == 0 || m.val_mask_ap > progress.best_ap;
            if (m.best) {
                progress.best_ap = m.val_mask_ap;
                progress.best_epoch = m.epoch;
                if (writes) save_model(*model, card, o.out, "best");
            }
        }
        m.seconds = carried_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        progress.epochs_done = epoch + 1;
        progress.history.push_back({{"epoch", m.epoch}, {"loss", m.loss}, {"lr", m.lr}, {"val_mask_AP", m.val_mask_ap},
                                    {"val_box_AP", m.val_box_ap}, {"best", m.best}});
        std::string lines;
        for (const RunJson& h : progress.history) lines += h.dump() + "\n";
        if (writes) {
            write_file_atomic(o.out / "metrics.jsonl", lines);
            save_checkpoint(checkpoint, options, progress, *model, optimizer);
        }
        if (on_epoch) on_epoch(m);
        result.epochs_done = epoch + 1;
        if ((stop_pending || (o.stop_after_epoch > 0 && epoch + 1 == o.stop_after_epoch)) && epoch + 1 < o.epochs) {
            result.stopped = true;
            break;
        }
    }
    if (!result.stopped && writes) save_model(*model, card, o.out, "model");
    result.epochs_done = progress.epochs_done;
    result.best_mask_ap = progress.best_ap;
    result.best_epoch = progress.best_epoch;
    return result;
}

}  // namespace sightline
