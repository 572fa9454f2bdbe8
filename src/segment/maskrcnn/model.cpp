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
    need(c.rpn_pre_nms_top_n_train >= 1 && c.rpn_post_nms_top_n_train >= 1,
         "rpn_pre_nms_top_n_train and rpn_post_nms_top_n_train should be >= 1");
    need(c.rpn_batch_size_per_image >= 1 && c.box_batch_size_per_image >= 1,
         "rpn_batch_size_per_image and box_batch_size_per_image should be >= 1");
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

namespace {

// transform_images works in host memory; the network runs where its weights are (model->to(...)).
maskrcnn::ImageBatch on_device(maskrcnn::ImageBatch batch, const torch::Device& device) {
    if (device.is_cpu()) return batch;
    batch.tensors = batch.tensors.to(device);
    for (InstanceTarget& t : batch.targets) {
        t.boxes = t.boxes.to(device);
        t.labels = t.labels.to(device);
        t.masks = t.masks.to(device);
    }
    return batch;
}

}  // namespace

torch::Device MaskRCNNImpl::device() const { return parameters().front().device(); }

MaskRCNNOutput MaskRCNNImpl::detect(const std::vector<torch::Tensor>& images) {
    c10::InferenceMode inference;
    const maskrcnn::ImageBatch batch = on_device(maskrcnn::transform_images(images, config_), device());
    const std::vector<torch::Tensor> features = backbone_->as<maskrcnn::BackboneImpl>()->forward(batch.tensors);
    MaskRCNNOutput out;
    out.proposals = rpn_->as<maskrcnn::RPNImpl>()->forward(batch, features, /*training=*/false).proposals;
    out.detections = roi_heads_->as<maskrcnn::RoIHeadsImpl>()->forward(features, out.proposals, batch.sizes);
    for (size_t i = 0; i < images.size(); ++i) {
        InstanceDetections& d = out.detections[i];
        // Back in host memory, where the caller reads them; the masks are pasted there.
        d.boxes = d.boxes.cpu(), d.labels = d.labels.cpu(), d.scores = d.scores.cpu(), d.masks = d.masks.cpu();
        out.proposals[i] = out.proposals[i].cpu();
        const std::pair<int64_t, int64_t> original{images[i].size(1), images[i].size(2)};
        d.boxes = maskrcnn::resize_boxes(d.boxes, batch.sizes[i], original);
        d.masks = paste_masks_in_image(d.masks, d.boxes, original.first, original.second);
    }
    return out;
}

MaskRCNNLosses MaskRCNNImpl::losses(const std::vector<torch::Tensor>& images, const std::vector<InstanceTarget>& targets) {
    const maskrcnn::ImageBatch batch = on_device(maskrcnn::transform_images(images, config_, &targets), device());
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
