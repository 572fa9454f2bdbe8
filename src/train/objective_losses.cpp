// The loss terms of Puzzle-CAM and Mixup-CAM (see wsss_objectives.hpp for shapes).
#include <algorithm>

#include <torch/torch.h>

#include "sightline/wsss_objectives.hpp"

namespace sightline {

torch::Tensor puzzle_tile(const torch::Tensor& x) {
    TORCH_CHECK(x.dim() == 4 && x.size(2) % 2 == 0 && x.size(3) % 2 == 0,
                "puzzle_tile: expected [B,C,H,W] with even H and W, got ", x.sizes());
    const int64_t h = x.size(2) / 2, w = x.size(3) / 2;
    // Jo & Yu 2021, tile order: top-left, top-right, bottom-left, bottom-right.
    return torch::cat({x.slice(2, 0, h).slice(3, 0, w), x.slice(2, 0, h).slice(3, w),
                       x.slice(2, h).slice(3, 0, w), x.slice(2, h).slice(3, w)},
                      0);
}

torch::Tensor puzzle_merge(const torch::Tensor& tiles) {
    TORCH_CHECK(tiles.dim() == 4 && tiles.size(0) % 4 == 0,
                "puzzle_merge: expected [4B,C,h,w], got ", tiles.sizes());
    std::vector<torch::Tensor> t = tiles.chunk(4, 0);
    return torch::cat({torch::cat({t[0], t[1]}, 3), torch::cat({t[2], t[3]}, 3)}, 2);
}

torch::Tensor puzzle_reconstruction_loss(const torch::Tensor& full_maps, const torch::Tensor& merged_maps,
                                         const torch::Tensor& targets) {
    TORCH_CHECK(full_maps.dim() == 4 && full_maps.sizes() == merged_maps.sizes(),
                "puzzle_reconstruction_loss: class maps differ in shape: ", full_maps.sizes(), " and ",
                merged_maps.sizes());
    TORCH_CHECK(targets.dim() == 2 && targets.size(0) == full_maps.size(0) && targets.size(1) == full_maps.size(1),
                "puzzle_reconstruction_loss: targets must be [B,K] = ", full_maps.sizes().slice(0, 2), ", got ",
                targets.sizes());
    // L1 with class masking (train_classification_with_puzzle.py, `re_loss_option masking`).
    return ((full_maps - merged_maps).abs() * targets.unsqueeze(2).unsqueeze(3)).mean();
}

double puzzle_alpha(double alpha, double ramp, int64_t step, int64_t total_steps) {
    if (ramp <= 0 || total_steps <= 0) return alpha;
    return std::min(alpha * static_cast<double>(step) / (static_cast<double>(total_steps) * ramp), alpha);
}

torch::Tensor sigmoid_entropy(const torch::Tensor& logits) {
    // -(p log p + (1-p) log(1-p)) with log p = log_sigmoid(z), log(1-p) = log_sigmoid(-z).
    torch::Tensor p = torch::sigmoid(logits);
    return -(p * torch::log_sigmoid(logits) + (1 - p) * torch::log_sigmoid(-logits)).mean();
}

torch::Tensor feature_concentration_loss(const torch::Tensor& activations, const torch::Tensor& class_maps,
                                         const torch::Tensor& targets) {
    TORCH_CHECK(activations.dim() == 4 && class_maps.dim() == 4 && activations.size(0) == class_maps.size(0) &&
                    activations.sizes().slice(2) == class_maps.sizes().slice(2),
                "feature_concentration_loss: activations ", activations.sizes(), " and class maps ",
                class_maps.sizes(), " must share B, h, w");
    TORCH_CHECK(targets.dim() == 2 && targets.size(0) == class_maps.size(0) && targets.size(1) == class_maps.size(1),
                "feature_concentration_loss: targets must be [B,K], got ", targets.sizes());
    const int64_t b = activations.size(0), c = activations.size(1), k = class_maps.size(1);
    torch::Tensor f = torch::nn::functional::normalize(activations.reshape({b, c, -1}),
                                                       torch::nn::functional::NormalizeFuncOptions().dim(1));
    // R is a constant weight (detached): with gradient through R, the term is lowered to 0 by
    // making every class map negative (R = 0), i.e. by erasing the CAMs the seeds come from —
    // what training from scratch did (no positive class-map entry left after 20 epochs).
    torch::Tensor r = torch::relu(class_maps.detach().reshape({b, k, -1}));
    r = r / (r.sum(2, true) + 1e-5);                     // [B,K,N], each row sums to ~1 (or 0)
    torch::Tensor centre = torch::bmm(r, f.transpose(1, 2));  // [B,K,C]
    // sum_u R |f - m|^2 = sum_u R |f|^2 - 2 m . sum_u R f + |m|^2 sum_u R, with |f| = 1 (or 0).
    torch::Tensor f2 = (f * f).sum(1, true);             // [B,1,N]
    torch::Tensor mass = r.sum(2);                       // [B,K]
    torch::Tensor spread = (r * f2).sum(2) - (centre * centre).sum(2) * (2 - mass);
    torch::Tensor present = (targets > 0).to(spread.dtype());
    torch::Tensor count = present.sum();
    if (count.item<double>() == 0) return (spread * 0).sum();
    return (spread * present).sum() / count;
}

}  // namespace sightline
