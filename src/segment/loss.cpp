// Segmentation losses (notes/seg.md 1.4).
#include <fmt/format.h>
#include <torch/torch.h>

#include "sightline/segment.hpp"

namespace sightline {

torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& target, const SegLossOptions& o) {
    const int64_t k = logits.size(1);
    if (logits.dim() != 4 || target.dim() != 3 || target.size(0) != logits.size(0) ||
        target.size(1) != logits.size(2) || target.size(2) != logits.size(3))
        throw Error(fmt::format("segmentation_loss: logits [B,K,H,W] and target [B,H,W] expected, got [{}] and [{}]",
                                fmt::join(logits.sizes(), ","), fmt::join(target.sizes(), ",")));
    if (!o.class_weights.empty() && static_cast<int64_t>(o.class_weights.size()) != k)
        throw UsageError(fmt::format("--class-weights needs {} values (one per class), got {}", k,
                                     o.class_weights.size()));
    const torch::Tensor valid = target != 255;
    if (!valid.any().item<bool>()) return (logits * 0).sum();  // keeps the graph, loss 0
    torch::Tensor weight;
    if (!o.class_weights.empty())
        weight = torch::tensor(o.class_weights, torch::kDouble).to(logits.device(), logits.scalar_type());
    // Mean over labelled pixels (sum w_y l / sum w_y with weights), ignore index 255.
    torch::Tensor loss = torch::nn::functional::cross_entropy(
        logits, target, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(255).weight(weight));
    if (o.dice > 0) {
        // Soft Dice per class over the batch's labelled pixels; classes absent from the target
        // are left out (smp's DiceLoss mask).
        const torch::Tensor p = torch::softmax(logits, 1) * valid.unsqueeze(1);
        const torch::Tensor g =
            torch::one_hot(torch::where(valid, target, torch::zeros_like(target)), k).permute({0, 3, 1, 2}) *
            valid.unsqueeze(1);
        const torch::Tensor gf = g.to(p.scalar_type());
        const torch::Tensor inter = (p * gf).sum({0, 2, 3});
        const torch::Tensor card = (p + gf).sum({0, 2, 3});
        const torch::Tensor dice = 2 * inter / card.clamp_min(1e-7);
        const torch::Tensor present = gf.sum({0, 2, 3}) > 0;
        loss = loss + o.dice * ((1 - dice) * present).sum() / present.sum().clamp_min(1);
    }
    return loss;
}

}  // namespace sightline
