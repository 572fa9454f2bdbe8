// One optimisation step's loss for each --objective, and SC-CAM's per-round state, for the
// training loop (trainer.cpp). The loss terms themselves are in objective_losses.cpp.
#pragma once

#include <string>
#include <vector>

#include <torch/script.h>

#include "sightline/train.hpp"
#include "sightline/wsss_objectives.hpp"

namespace sightline::detail {

struct StepOutput {
    torch::Tensor loss;    // scalar, differentiable
    torch::Tensor logits;  // [B,K] of the (parent) classifier on the batch images
};

class ObjectiveStep {
public:
    // steps_per_stage: optimisation steps of one training stage (all of training, or one SC-CAM
    // round), for Puzzle-CAM's ramp.
    ObjectiveStep(const TrainOptions& options, Objective objective, int64_t steps_per_stage);

    // The loss of one batch. step: 0-based step within the stage.
    StepOutput step(torch::jit::Module& model, const Batch& batch, int64_t step) const;

    // SC-CAM: the sub-category head and targets of a round (none in round 0, plain CAM).
    bool has_subcategory_head() const { return sub_weight_.defined(); }
    // A fresh bias-free head [num_classes*k, channels] (Glorot-uniform, seeded) and the targets
    // [N, num_classes*k] of every training image.
    void start_subcategory_round(int64_t channels, int64_t num_classes,
                                 const std::vector<std::vector<int>>& assignments, uint64_t seed);
    torch::Tensor& subcategory_weight() { return sub_weight_; }

private:
    const TrainOptions& o_;
    Objective objective_;
    int64_t steps_per_stage_;
    torch::Tensor sub_weight_;   // [K_parent * k, C], requires grad
    torch::Tensor sub_targets_;  // [N, K_parent * k]
};

// The class-map weight W [K,C] of a GAP->Linear model (its fc.weight).
torch::Tensor class_map_weight(const torch::jit::Module& model);
// F = W A at every position: A [B,C,h,w] -> [B,K,h,w].
torch::Tensor class_maps(const torch::Tensor& activations, const torch::Tensor& weight);

// GAP of model.features over every sample of `loader` (one epoch, as ordered by the dataset
// index of each row): [N,C]. The model runs in eval mode without autograd, then back in train mode.
torch::Tensor pooled_features(torch::jit::Module& model, BatchLoader& loader, std::size_t n);

}  // namespace sightline::detail
