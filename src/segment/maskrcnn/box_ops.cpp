// Box arithmetic of torchvision's detection models (models/detection/_utils.py BoxCoder,
// ops/boxes.py), written with the same tensor operations in the same order so the results
// round the same way.
#include <cmath>

#include <ATen/core/dispatch/Dispatcher.h>

#include "segment/maskrcnn/parts.hpp"
#include "sightline/torchvision_ops.hpp"

namespace sightline::maskrcnn {

using torch::indexing::None;
using torch::indexing::Slice;

torch::Tensor decode_boxes(const torch::Tensor& deltas, const torch::Tensor& boxes, const std::array<double, 4>& weights) {
    const torch::Tensor reference = boxes.to(deltas.scalar_type());
    const torch::Tensor widths = reference.select(1, 2) - reference.select(1, 0);
    const torch::Tensor heights = reference.select(1, 3) - reference.select(1, 1);
    const torch::Tensor ctr_x = reference.select(1, 0) + 0.5 * widths;
    const torch::Tensor ctr_y = reference.select(1, 1) + 0.5 * heights;

    const torch::Tensor dx = deltas.index({Slice(), Slice(0, None, 4)}) / weights[0];
    const torch::Tensor dy = deltas.index({Slice(), Slice(1, None, 4)}) / weights[1];
    // exp() of a larger value would overflow: torchvision clamps at log(1000 / 16).
    const double clip = std::log(1000.0 / 16);
    const torch::Tensor dw = torch::clamp_max(deltas.index({Slice(), Slice(2, None, 4)}) / weights[2], clip);
    const torch::Tensor dh = torch::clamp_max(deltas.index({Slice(), Slice(3, None, 4)}) / weights[3], clip);

    const torch::Tensor pred_ctr_x = dx * widths.unsqueeze(1) + ctr_x.unsqueeze(1);
    const torch::Tensor pred_ctr_y = dy * heights.unsqueeze(1) + ctr_y.unsqueeze(1);
    const torch::Tensor half = torch::tensor(0.5, deltas.options());
    const torch::Tensor half_w = half * (torch::exp(dw) * widths.unsqueeze(1));
    const torch::Tensor half_h = half * (torch::exp(dh) * heights.unsqueeze(1));
    return torch::stack({pred_ctr_x - half_w, pred_ctr_y - half_h, pred_ctr_x + half_w, pred_ctr_y + half_h}, 2)
        .flatten(1);
}

torch::Tensor clip_boxes(const torch::Tensor& boxes, int64_t height, int64_t width) {
    const torch::Tensor x = boxes.index({"...", Slice(0, None, 2)}).clamp(0, width);
    const torch::Tensor y = boxes.index({"...", Slice(1, None, 2)}).clamp(0, height);
    return torch::stack({x, y}, boxes.dim()).reshape(boxes.sizes());
}

torch::Tensor remove_small_boxes(const torch::Tensor& boxes, double min_size) {
    const torch::Tensor ws = boxes.select(1, 2) - boxes.select(1, 0);
    const torch::Tensor hs = boxes.select(1, 3) - boxes.select(1, 1);
    return torch::where((ws >= min_size) & (hs >= min_size))[0];
}

torch::Tensor box_area(const torch::Tensor& boxes) {
    return (boxes.select(1, 2) - boxes.select(1, 0)) * (boxes.select(1, 3) - boxes.select(1, 1));
}

namespace {

// torchvision::nms itself, without sightline::nms' stable pre-sort: the kernel's own order of
// equal scores (objectness saturates at 1 often) decides which proposals survive and their order.
torch::Tensor raw_nms(const torch::Tensor& boxes, const torch::Tensor& scores, double iou_threshold) {
    ensure_torchvision_ops();
    static const auto kernel = c10::Dispatcher::singleton()
                                   .findSchemaOrThrow("torchvision::nms", "")
                                   .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double)>();
    return kernel.call(boxes, scores, iou_threshold);
}

}  // namespace

torch::Tensor batched_nms_like_torchvision(const torch::Tensor& boxes, const torch::Tensor& scores,
                                           const torch::Tensor& classes, double iou_threshold) {
    if (boxes.numel() == 0) return torch::empty({0}, boxes.options().dtype(torch::kLong));
    // torchvision shifts classes apart and runs one NMS, except above 4000 coordinates on the CPU
    // (20000 on a GPU) where it runs one NMS per class and sorts the kept boxes by score
    // (unstable sort, as here): follow both paths operation by operation.
    if (boxes.numel() <= (boxes.is_cpu() ? 4000 : 20000)) {
        const torch::Tensor offsets = classes.to(boxes.scalar_type()) * (boxes.max() + torch::tensor(1).to(boxes.scalar_type()));
        return raw_nms(boxes + offsets.unsqueeze(1), scores, iou_threshold);
    }
    torch::Tensor keep_mask = torch::zeros_like(scores, torch::kBool);
    const torch::Tensor unique_classes = std::get<0>(torch::_unique(classes));
    for (int64_t i = 0; i < unique_classes.size(0); ++i) {
        const torch::Tensor members = torch::where(classes == unique_classes[i])[0];
        const torch::Tensor kept = raw_nms(boxes.index_select(0, members), scores.index_select(0, members), iou_threshold);
        keep_mask.index_put_({members.index_select(0, kept)}, true);
    }
    const torch::Tensor keep = torch::where(keep_mask)[0];
    return keep.index_select(0, std::get<1>(scores.index_select(0, keep).sort(-1, /*descending=*/true)));
}

torch::Tensor encode_boxes(const torch::Tensor& gt, const torch::Tensor& reference, const std::array<double, 4>& weights) {
    // torchvision's encode_boxes multiplies by the weights as float tensors, then divides.
    const torch::Tensor w = torch::tensor({weights[0], weights[1], weights[2], weights[3]}, gt.options());
    const auto col = [](const torch::Tensor& b, int64_t c) { return b.select(1, c).unsqueeze(1); };
    const torch::Tensor ex_w = col(reference, 2) - col(reference, 0), ex_h = col(reference, 3) - col(reference, 1);
    const torch::Tensor ex_x = col(reference, 0) + 0.5 * ex_w, ex_y = col(reference, 1) + 0.5 * ex_h;
    const torch::Tensor gt_w = col(gt, 2) - col(gt, 0), gt_h = col(gt, 3) - col(gt, 1);
    const torch::Tensor gt_x = col(gt, 0) + 0.5 * gt_w, gt_y = col(gt, 1) + 0.5 * gt_h;
    return torch::cat({w[0] * (gt_x - ex_x) / ex_w, w[1] * (gt_y - ex_y) / ex_h, w[2] * torch::log(gt_w / ex_w),
                       w[3] * torch::log(gt_h / ex_h)},
                      1);
}

torch::Tensor box_iou(const torch::Tensor& a, const torch::Tensor& b) {
    const torch::Tensor area_a = box_area(a), area_b = box_area(b);
    const torch::Tensor lt = torch::max(a.unsqueeze(1).slice(2, 0, 2), b.slice(1, 0, 2));
    const torch::Tensor rb = torch::min(a.unsqueeze(1).slice(2, 2, 4), b.slice(1, 2, 4));
    const torch::Tensor wh = (rb - lt).clamp_min(0);
    const torch::Tensor inter = wh.select(2, 0) * wh.select(2, 1);
    return inter / (area_a.unsqueeze(1) + area_b - inter);
}

torch::Tensor match_boxes(const torch::Tensor& quality, double high, double low, bool allow_low_quality) {
    auto [values, matches] = quality.max(0);
    const torch::Tensor all_matches = matches.clone();
    matches.masked_fill_(values < low, -1);
    matches.masked_fill_((values >= low) & (values < high), -2);
    if (allow_low_quality) {
        const torch::Tensor best = std::get<0>(quality.max(1));
        const torch::Tensor columns = torch::where(quality == best.unsqueeze(1))[1];
        matches.index_put_({columns}, all_matches.index_select(0, columns));
    }
    return matches;
}

std::pair<torch::Tensor, torch::Tensor> sample_balanced(const torch::Tensor& labels, int64_t batch_size,
                                                        double positive_fraction) {
    const torch::Tensor positive = torch::where(labels >= 1)[0];
    const torch::Tensor negative = torch::where(labels == 0)[0];
    const int64_t num_pos = std::min(positive.numel(), static_cast<int64_t>(static_cast<double>(batch_size) * positive_fraction));
    const int64_t num_neg = std::min(negative.numel(), batch_size - num_pos);
    // Drawn from LibTorch's global CPU generator wherever the labels are (the draws, and so the
    // training run, do not depend on the device), then moved beside them.
    const torch::Tensor perm_pos = torch::randperm(positive.numel(), torch::kLong).slice(0, 0, num_pos).to(labels.device());
    const torch::Tensor perm_neg = torch::randperm(negative.numel(), torch::kLong).slice(0, 0, num_neg).to(labels.device());
    torch::Tensor pos_mask = torch::zeros(labels.sizes(), labels.options().dtype(torch::kBool));
    torch::Tensor neg_mask = torch::zeros(labels.sizes(), labels.options().dtype(torch::kBool));
    pos_mask.index_put_({positive.index_select(0, perm_pos)}, true);
    neg_mask.index_put_({negative.index_select(0, perm_neg)}, true);
    return {pos_mask, neg_mask};
}

}  // namespace sightline::maskrcnn
