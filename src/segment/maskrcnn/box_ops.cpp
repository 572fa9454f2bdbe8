// Box arithmetic of torchvision's detection models (models/detection/_utils.py BoxCoder,
// ops/boxes.py), written with the same tensor operations in the same order so the results
// round the same way.
#include <cmath>

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

torch::Tensor batched_nms_like_torchvision(const torch::Tensor& boxes, const torch::Tensor& scores,
                                           const torch::Tensor& classes, double iou_threshold) {
    // torchvision shifts classes apart and runs one NMS, except on the CPU above 4000
    // coordinates where it runs one NMS per class: the shift changes the rounding of the IoUs,
    // so follow the same switch.
    if (boxes.numel() <= 4000) return batched_nms(boxes, scores, classes, iou_threshold);
    torch::Tensor keep_mask = torch::zeros_like(scores, torch::kBool);
    const torch::Tensor unique_classes = std::get<0>(torch::_unique(classes));
    for (int64_t i = 0; i < unique_classes.size(0); ++i) {
        const torch::Tensor members = torch::where(classes == unique_classes[i])[0];
        const torch::Tensor kept = nms(boxes.index_select(0, members), scores.index_select(0, members), iou_threshold);
        keep_mask.index_put_({members.index_select(0, kept)}, true);
    }
    const torch::Tensor keep = torch::where(keep_mask)[0];
    const torch::Tensor order = std::get<1>(scores.index_select(0, keep).sort(/*stable=*/true, 0, /*descending=*/true));
    return keep.index_select(0, order);
}

}  // namespace sightline::maskrcnn
