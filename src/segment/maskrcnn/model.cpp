// The assembled model (torchvision's GeneralizedRCNN.forward in eval mode): transform, backbone,
// RPN, RoI heads, then boxes scaled back to each input image and masks pasted into it.
#include <cmath>

#include <fmt/format.h>

#include "segment/maskrcnn/parts.hpp"
#include "sightline/core.hpp"

namespace sightline {

void validate(const MaskRCNNConfig& c) {
    const auto need = [](bool ok, const std::string& message) {
        if (!ok) throw UsageError("Mask R-CNN: " + message);
    };
    need(c.depth == 18 || c.depth == 34 || c.depth == 50, fmt::format("depth should be 18, 34 or 50, got {}", c.depth));
    need(c.num_classes >= 2, fmt::format("num_classes should be >= 2 (background included), got {}", c.num_classes));
    need(c.trainable_layers >= 0 && c.trainable_layers <= 5,
         fmt::format("trainable_layers should be 0..5, got {}", c.trainable_layers));
    need(c.min_size >= 1 && c.max_size >= 1,
         fmt::format("min_size and max_size should be >= 1, got {} and {}", c.min_size, c.max_size));
    for (int64_t size : c.train_min_sizes)
        need(size >= 1, fmt::format("every training min_size should be >= 1, got {}", size));
    for (int i = 0; i < 3; ++i)
        need(std::isfinite(c.image_mean[i]) && std::isfinite(c.image_std[i]) && c.image_std[i] > 0,
             "image_mean should be finite and image_std > 0");
    need(c.rpn_pre_nms_top_n >= 1 && c.rpn_post_nms_top_n >= 1 && c.box_detections_per_img >= 1,
         "rpn_pre_nms_top_n, rpn_post_nms_top_n and box_detections_per_img should be >= 1");
    need(std::isfinite(c.rpn_nms_thresh) && std::isfinite(c.rpn_score_thresh) && std::isfinite(c.box_score_thresh) &&
             std::isfinite(c.box_nms_thresh),
         "thresholds should be finite");
}

MaskRCNNImpl::MaskRCNNImpl(const MaskRCNNConfig& config) : config_(config) {
    validate(config_);
    backbone_ = register_module("backbone", std::make_shared<maskrcnn::BackboneImpl>(config_.depth, config_.trainable_layers));
    rpn_ = register_module("rpn", std::make_shared<maskrcnn::RPNImpl>(config_));
    roi_heads_ = register_module("roi_heads", std::make_shared<maskrcnn::RoIHeadsImpl>(config_));
}

MaskRCNNOutput MaskRCNNImpl::detect(const std::vector<torch::Tensor>& images) {
    c10::InferenceMode inference;
    const maskrcnn::ImageBatch batch = maskrcnn::transform_images(images, config_);
    const std::vector<torch::Tensor> features = backbone_->as<maskrcnn::BackboneImpl>()->forward(batch.tensors);
    MaskRCNNOutput out;
    out.proposals = rpn_->as<maskrcnn::RPNImpl>()->forward(batch, features, /*training=*/false).proposals;
    out.detections = roi_heads_->as<maskrcnn::RoIHeadsImpl>()->forward(features, out.proposals, batch.sizes);
    for (size_t i = 0; i < images.size(); ++i) {
        InstanceDetections& d = out.detections[i];
        const std::pair<int64_t, int64_t> original{images[i].size(1), images[i].size(2)};
        d.boxes = maskrcnn::resize_boxes(d.boxes, batch.sizes[i], original);
        d.masks = paste_masks_in_image(d.masks, d.boxes, original.first, original.second);
    }
    return out;
}

MaskRCNNLosses MaskRCNNImpl::losses(const std::vector<torch::Tensor>& images, const std::vector<InstanceTarget>& targets) {
    const maskrcnn::ImageBatch batch = maskrcnn::transform_images(images, config_, &targets);
    const std::vector<torch::Tensor> features = backbone_->as<maskrcnn::BackboneImpl>()->forward(batch.tensors);
    auto& rpn = *rpn_->as<maskrcnn::RPNImpl>();
    const maskrcnn::RPNResult proposals = rpn.forward(batch, features, /*training=*/true);
    MaskRCNNLosses out;
    std::tie(out.objectness, out.rpn_box_reg) = rpn.losses(proposals, batch);
    const auto heads = roi_heads_->as<maskrcnn::RoIHeadsImpl>()->losses(features, proposals.proposals, batch);
    out.classifier = heads[0];
    out.box_reg = heads[1];
    out.mask = heads[2];
    return out;
}

std::map<std::string, torch::Tensor> MaskRCNNImpl::named_state() const {
    std::map<std::string, torch::Tensor> state;
    for (const auto& p : named_parameters()) state[p.key()] = p.value();
    for (const auto& b : named_buffers()) state[b.key()] = b.value();
    return state;
}

}  // namespace sightline
