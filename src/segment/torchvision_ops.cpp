// roi_align, nms and batched_nms: input checks, then torchvision's kernels through the
// dispatcher (see sightline/torchvision_ops.hpp).
#include <cmath>

#include <ATen/core/dispatch/Dispatcher.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include "sightline/core.hpp"
#include "sightline/torchvision_ops.hpp"

namespace sightline {

namespace {

std::string shape_of(const torch::Tensor& t) { return fmt::format("[{}]", fmt::join(t.sizes(), ",")); }

void check_floating_cpu(const char* op, const char* name, const torch::Tensor& t) {
    if (!t.defined()) throw Error(fmt::format("{}: {} is an undefined tensor", op, name));
    if (t.scalar_type() != torch::kFloat && t.scalar_type() != torch::kDouble)
        throw Error(fmt::format("{}: {} should be float32 or float64, got {}", op, name, c10::toString(t.scalar_type())));
    if (!t.device().is_cpu())
        throw Error(fmt::format("{}: {} should be on the CPU (torchvision's CPU kernels), got {}", op, name,
                                t.device().str()));
    if (!torch::isfinite(t).all().item<bool>())
        throw Error(fmt::format("{}: {} should be finite, got NaN or infinity", op, name));
}

// corners: [K,4] (x1, y1, x2, y2); zero size allowed, inverted boxes are an error.
void check_corners(const char* op, const torch::Tensor& corners) {
    const torch::Tensor inverted = (corners.select(1, 2) < corners.select(1, 0)) |
                                   (corners.select(1, 3) < corners.select(1, 1));
    if (!inverted.any().item<bool>()) return;
    const int64_t k = inverted.nonzero()[0][0].item<int64_t>();
    const torch::Tensor b = corners[k].to(torch::kDouble);
    throw Error(fmt::format("{}: box {} should have x1 <= x2 and y1 <= y2, got ({}, {}, {}, {})", op, k,
                            b[0].item<double>(), b[1].item<double>(), b[2].item<double>(), b[3].item<double>()));
}

void check_nms_inputs(const char* op, const torch::Tensor& boxes, const torch::Tensor& scores, double iou_threshold) {
    check_floating_cpu(op, "boxes", boxes);
    check_floating_cpu(op, "scores", scores);
    if (boxes.dim() != 2 || boxes.size(1) != 4)
        throw Error(fmt::format("{}: boxes should be [K,4] (x1, y1, x2, y2), got {}", op, shape_of(boxes)));
    if (scores.dim() != 1 || scores.size(0) != boxes.size(0))
        throw Error(fmt::format("{}: scores should be [{}] (one per box), got {}", op, boxes.size(0), shape_of(scores)));
    if (scores.scalar_type() != boxes.scalar_type())
        throw Error(fmt::format("{}: scores should have the boxes' dtype {}, got {}", op,
                                c10::toString(boxes.scalar_type()), c10::toString(scores.scalar_type())));
    if (!std::isfinite(iou_threshold))
        throw Error(fmt::format("{}: iou_threshold should be finite, got {}", op, iou_threshold));
    check_corners(op, boxes);
}

}  // namespace

torch::Tensor roi_align(const torch::Tensor& input, const torch::Tensor& boxes, double spatial_scale,
                        int64_t output_height, int64_t output_width, int64_t sampling_ratio, bool aligned) {
    constexpr const char* op = "roi_align";
    check_floating_cpu(op, "input", input);
    check_floating_cpu(op, "boxes", boxes);
    if (input.dim() != 4) throw Error(fmt::format("{}: input should be [N,C,H,W], got {}", op, shape_of(input)));
    if (boxes.dim() != 2 || boxes.size(1) != 5)
        throw Error(fmt::format("{}: boxes should be [K,5] (batch index, x1, y1, x2, y2), got {}", op,
                                shape_of(boxes)));
    if (!(spatial_scale > 0) || !std::isfinite(spatial_scale))
        throw Error(fmt::format("{}: spatial_scale should be > 0, got {}", op, spatial_scale));
    if (output_height < 1 || output_width < 1)
        throw Error(fmt::format("{}: output size should be at least 1x1, got {}x{}", op, output_height, output_width));
    if (sampling_ratio < 0)
        throw Error(fmt::format("{}: sampling_ratio should be >= 0 (0 = adaptive), got {}", op, sampling_ratio));
    const torch::Tensor batch = boxes.select(1, 0);
    const torch::Tensor bad_batch = (batch != batch.floor()) | (batch < 0) | (batch >= input.size(0));
    if (bad_batch.any().item<bool>()) {
        const int64_t k = bad_batch.nonzero()[0][0].item<int64_t>();
        throw Error(fmt::format("{}: box {} should have a whole batch index in 0..{}, got {}", op, k,
                                input.size(0) - 1, batch[k].item<double>()));
    }
    check_corners(op, boxes.slice(1, 1, 5));

    ensure_torchvision_ops();
    static const auto kernel = c10::Dispatcher::singleton()
                                   .findSchemaOrThrow("torchvision::roi_align", "")
                                   .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double, int64_t, int64_t,
                                                     int64_t, bool)>();
    return kernel.call(input, boxes.to(input.scalar_type()).contiguous(), spatial_scale, output_height, output_width,
                       sampling_ratio, aligned);
}

torch::Tensor nms(const torch::Tensor& boxes, const torch::Tensor& scores, double iou_threshold) {
    check_nms_inputs("nms", boxes, scores, iou_threshold);
    const int64_t k = boxes.size(0);
    if (k == 0) return torch::empty({0}, boxes.options().dtype(torch::kLong));

    ensure_torchvision_ops();
    static const auto kernel = c10::Dispatcher::singleton()
                                   .findSchemaOrThrow("torchvision::nms", "")
                                   .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double)>();
    // torchvision's kernel sorts scores with an unstable sort: we sort stably ourselves and hand it
    // strictly decreasing ranks, so ties are taken in index order (as numpy's stable argsort).
    const torch::Tensor order = std::get<1>(scores.detach().sort(/*stable=*/true, 0, /*descending=*/true));
    const torch::Tensor ranks = -torch::arange(k, boxes.options().requires_grad(false));
    const torch::Tensor kept = kernel.call(boxes.detach().index_select(0, order).contiguous(), ranks, iou_threshold);
    return order.index_select(0, kept);
}

torch::Tensor batched_nms(const torch::Tensor& boxes, const torch::Tensor& scores, const torch::Tensor& classes,
                          double iou_threshold) {
    constexpr const char* op = "batched_nms";
    check_nms_inputs(op, boxes, scores, iou_threshold);
    if (!classes.defined() || classes.dim() != 1 || classes.size(0) != boxes.size(0))
        throw Error(fmt::format("{}: classes should be [{}] (one per box), got {}", op, boxes.size(0),
                                classes.defined() ? shape_of(classes) : "undefined"));
    if (classes.scalar_type() != torch::kLong)
        throw Error(fmt::format("{}: classes should be int64, got {}", op, c10::toString(classes.scalar_type())));
    if (boxes.size(0) == 0) return torch::empty({0}, boxes.options().dtype(torch::kLong));
    if ((classes < 0).any().item<bool>())
        throw Error(fmt::format("{}: classes should be >= 0, got {}", op, classes.min().item<int64_t>()));
    const torch::Tensor b = boxes.detach();
    // torchvision offsets by class * (max + 1); with negative coordinates that lets classes
    // overlap, so the span counts from min(min, 0) (identical to torchvision when boxes are >= 0).
    const torch::Tensor span = b.max() - b.min().clamp_max(0) + 1;
    const torch::Tensor offsets = classes.to(b.scalar_type()) * span;
    return nms(b + offsets.unsqueeze(1), scores, iou_threshold);
}

}  // namespace sightline
