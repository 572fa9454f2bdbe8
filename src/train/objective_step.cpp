#include "train/objective_step.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include "sightline/device.hpp"

namespace sightline::detail {

torch::Tensor class_map_weight(const torch::jit::Module& model) {
    return model.attr("fc").toModule().attr("weight").toTensor();
}

torch::Tensor class_maps(const torch::Tensor& activations, const torch::Tensor& weight) {
    return torch::conv2d(activations, weight.unsqueeze(2).unsqueeze(3));
}

torch::Tensor pooled_features(torch::jit::Module& model, BatchLoader& loader, std::size_t n) {
    model.eval();
    torch::NoGradGuard no_grad;
    torch::Tensor out;
    loader.start_epoch(0);
    while (auto batch = loader.next()) {
        torch::Tensor a = model.get_method("features")({to_compute(batch->images)}).toTensor().mean({2, 3}).cpu();
        if (!out.defined()) out = torch::zeros({static_cast<int64_t>(n), a.size(1)});
        for (std::size_t r = 0; r < batch->samples.size(); ++r)
            out[static_cast<int64_t>(batch->samples[r])] = a[static_cast<int64_t>(r)];
    }
    model.train();
    return out;
}

ObjectiveStep::ObjectiveStep(const TrainOptions& options, Objective objective, int64_t steps_per_stage)
    : o_(options), objective_(objective), steps_per_stage_(steps_per_stage) {}

void ObjectiveStep::start_subcategory_round(int64_t channels, int64_t num_classes,
                                            const std::vector<std::vector<int>>& assignments, uint64_t seed) {
    const int64_t rows = num_classes * o_.subcategory_k;
    const double bound = std::sqrt(6.0 / static_cast<double>(rows + channels));  // Glorot uniform, as SC-CAM's fc8
    at::Generator generator = at::detail::createCPUGenerator(mix_seed(seed, 0x5c0ca7));
    sub_weight_ = torch::empty({rows, channels})
                      .uniform_(-bound, bound, generator)
                      .to(compute_device())
                      .set_requires_grad(true);
    sub_targets_ = subcategory_targets(assignments, num_classes, static_cast<int>(o_.subcategory_k));
}

StepOutput ObjectiveStep::step(torch::jit::Module& model, const Batch& batch, int64_t step) const {
    // The loader's batch is in host memory; the step runs where the model is.
    const torch::Tensor x = to_compute(batch.images);
    const torch::Tensor y = to_compute(batch.targets);
    auto loss_of = [&](const torch::Tensor& logits, const torch::Tensor& targets) {
        return classification_loss(objective_, logits, targets, o_.label_smoothing);
    };
    if (o_.objective == WsssObjective::kCam || (o_.objective == WsssObjective::kSubcategory && !sub_weight_.defined())) {
        torch::Tensor logits = model.forward({x}).toTensor();
        return {loss_of(logits, y), logits};
    }
    torch::jit::Method features = model.get_method("features"), head = model.get_method("head");
    torch::Tensor a = features({x}).toTensor();
    torch::Tensor logits = head({a}).toTensor();
    if (o_.objective == WsssObjective::kPuzzle) {
        // Jo & Yu 2021 (`cl_pcl_re`): L_cls + L_p-cls + alpha_t L_re, both passes in one graph.
        torch::Tensor merged = puzzle_merge(features({puzzle_tile(x)}).toTensor());
        if (merged.sizes() != a.sizes())
            throw Error(fmt::format("--objective puzzle: the merged tile features are {}x{}, the full image's {}x{} "
                                    "(the input side must be a multiple of 2 x the output stride)",
                                    merged.size(2), merged.size(3), a.size(2), a.size(3)));
        torch::Tensor w = class_map_weight(model);
        torch::Tensor merged_logits = head({merged}).toTensor();  // = GAP(F_re) + b: the head is linear after GAP
        const double alpha = puzzle_alpha(o_.puzzle_alpha, o_.puzzle_ramp, step, steps_per_stage_);
        torch::Tensor re = puzzle_reconstruction_loss(class_maps(a, w), class_maps(merged, w), y);
        return {loss_of(logits, y) + loss_of(merged_logits, y) + alpha * re, logits};
    }
    if (o_.objective == WsssObjective::kMixup) {
        // The loader mixed images and targets; add the two uncertainty terms on the mixed batch.
        torch::Tensor loss = loss_of(logits, y);
        if (o_.mixup_entropy > 0) loss = loss + o_.mixup_entropy * sigmoid_entropy(logits);
        if (o_.mixup_concentration > 0)
            loss = loss + o_.mixup_concentration *
                              feature_concentration_loss(a, class_maps(a, class_map_weight(model)), y);
        return {loss, logits};
    }
    // SC-CAM: L_parent + lambda L_sub, both heads on the shared GAP feature.
    torch::Tensor index = torch::tensor(std::vector<int64_t>(batch.samples.begin(), batch.samples.end()), torch::kLong);
    torch::Tensor sub_logits = torch::mm(a.mean({2, 3}), sub_weight_.t());
    torch::Tensor sub = classification_loss(Objective::kMultiLabel, sub_logits,
                                            to_compute(sub_targets_.index_select(0, index)));
    return {loss_of(logits, y) + o_.subcategory_lambda * sub, logits};
}

}  // namespace sightline::detail
