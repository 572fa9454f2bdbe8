// Mask R-CNN's pieces, each a torch::nn module registered under torchvision's names (not public;
// sightline/maskrcnn.hpp assembles them). The arithmetic follows torchvision 0.14 operation by
// operation (same ops in the same order), so results agree to float rounding.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "sightline/maskrcnn.hpp"

namespace sightline::maskrcnn {

// torchvision's Conv2dNormActivation without a norm (3x3 conv, padding 1, then ReLU): the conv is
// child "0", as in the RPN head's conv.0.0 and the mask head's i.0.
struct ConvReLUImpl : torch::nn::Module {
    explicit ConvReLUImpl(int64_t channels)
        : conv(register_module("0", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 3).padding(1)))) {}
    torch::Tensor forward(const torch::Tensor& x) { return torch::relu(conv(x)); }
    torch::nn::Conv2d conv;
};
TORCH_MODULE(ConvReLU);

// ---- backbone.cpp: ResNet body with FrozenBatchNorm2d + FPN with LastLevelMaxPool --------------

// Feature maps '0'..'3' (strides 4..32) and 'pool' (stride 64), 256 channels each.
struct BackboneImpl : torch::nn::Module {
    BackboneImpl(int64_t depth, int64_t trainable_layers);
    std::vector<torch::Tensor> forward(const torch::Tensor& x);
    std::shared_ptr<torch::nn::Module> body, fpn;
};

// ---- box_ops.cpp --------------------------------------------------------------------------------

// torchvision's BoxCoder.decode_single: deltas [R, 4*C] relative to boxes [R,4] -> [R, 4*C].
torch::Tensor decode_boxes(const torch::Tensor& deltas, const torch::Tensor& boxes, const std::array<double, 4>& weights);
// clip_boxes_to_image on [..., 4] boxes; size = (height, width).
torch::Tensor clip_boxes(const torch::Tensor& boxes, int64_t height, int64_t width);
// Indices of boxes whose width and height are both >= min_size.
torch::Tensor remove_small_boxes(const torch::Tensor& boxes, double min_size);
torch::Tensor box_area(const torch::Tensor& boxes);
// torchvision.ops.batched_nms, including its switch to one NMS per class above 4000 coordinates
// and its kernel's (unstable) order of equal scores.
torch::Tensor batched_nms_like_torchvision(const torch::Tensor& boxes, const torch::Tensor& scores,
                                           const torch::Tensor& classes, double iou_threshold);
// BoxCoder.encode_single: deltas of gt [R,4] relative to reference [R,4] -> [R,4].
torch::Tensor encode_boxes(const torch::Tensor& gt, const torch::Tensor& reference, const std::array<double, 4>& weights);
// IoU matrix [G,N] of boxes a [G,4] and b [N,4].
torch::Tensor box_iou(const torch::Tensor& a, const torch::Tensor& b);
// Matcher on quality [G,N]: best gt per column, -1 below `low`, -2 in [low, high); with
// allow_low_quality, columns tying for some gt's best quality keep their best gt.
torch::Tensor match_boxes(const torch::Tensor& quality, double high, double low, bool allow_low_quality);
// BalancedPositiveNegativeSampler for one image: labels >= 1 positive, == 0 negative; returns
// (positive mask, negative mask), drawn with torch::randperm (positives first) as torchvision.
std::pair<torch::Tensor, torch::Tensor> sample_balanced(const torch::Tensor& labels, int64_t batch_size,
                                                        double positive_fraction);

// ---- transform.cpp: GeneralizedRCNNTransform -----------------------------------------------------

struct ImageBatch {
    torch::Tensor tensors;                             // [N,3,Hp,Wp], Hp and Wp multiples of 32
    std::vector<std::pair<int64_t, int64_t>> sizes;    // (h, w) of each resized image
    std::vector<InstanceTarget> targets;               // resized with the images (training)
};
// With targets (training), one uniform draw per image as torchvision's random min_size choice,
// and the targets' boxes and masks (nearest) resized with their image.
ImageBatch transform_images(const std::vector<torch::Tensor>& images, const MaskRCNNConfig& config,
                            const std::vector<InstanceTarget>* targets = nullptr);
// resize_boxes: boxes from `from` (h, w) to `to` (h, w).
torch::Tensor resize_boxes(const torch::Tensor& boxes, std::pair<int64_t, int64_t> from, std::pair<int64_t, int64_t> to);

// ---- rpn.cpp: AnchorGenerator, RPNHead, RegionProposalNetwork (inference) ------------------------

struct RPNResult {
    std::vector<torch::Tensor> proposals;  // per image [P,4] in resized-image pixels (no gradient)
    torch::Tensor objectness;              // [N*A] logits, A anchors per image (with gradient)
    torch::Tensor deltas;                  // [N*A,4] (with gradient)
    torch::Tensor anchors;                 // [A,4], the same for every image
};

struct RPNImpl : torch::nn::Module {
    explicit RPNImpl(const MaskRCNNConfig& config);
    // training selects the training top-n values.
    RPNResult forward(const ImageBatch& batch, const std::vector<torch::Tensor>& features, bool training);
    // (objectness loss, box regression loss) against batch.targets.
    std::pair<torch::Tensor, torch::Tensor> losses(const RPNResult& result, const ImageBatch& batch);
    std::shared_ptr<torch::nn::Module> head;
    MaskRCNNConfig config;
};

// ---- roi_heads.cpp: MultiScaleRoIAlign, box and mask branches (inference) ------------------------

struct RoIHeadsImpl : torch::nn::Module {
    explicit RoIHeadsImpl(const MaskRCNNConfig& config);
    // Detections per image in resized-image pixels, masks [K,1,28,28] probabilities.
    std::vector<InstanceDetections> forward(const std::vector<torch::Tensor>& features,
                                            const std::vector<torch::Tensor>& proposals,
                                            const std::vector<std::pair<int64_t, int64_t>>& image_sizes);
    // (classifier, box regression, mask) losses on sampled proposals + ground-truth boxes.
    std::array<torch::Tensor, 3> losses(const std::vector<torch::Tensor>& features,
                                        const std::vector<torch::Tensor>& proposals, const ImageBatch& batch);
    std::shared_ptr<torch::nn::Module> box_head, box_predictor, mask_head, mask_predictor;
    MaskRCNNConfig config;
};

// MultiScaleRoIAlign over features '0'..'3': boxes per image -> [sum K, 256, out, out].
torch::Tensor multiscale_roi_align(const std::vector<torch::Tensor>& features, const std::vector<torch::Tensor>& boxes,
                                   const std::vector<std::pair<int64_t, int64_t>>& image_sizes, int64_t output_size,
                                   int64_t sampling_ratio);

}  // namespace sightline::maskrcnn
