// RoI heads at inference (torchvision's roi_heads.py, faster_rcnn.py, mask_rcnn.py, poolers.py):
// MultiScaleRoIAlign, TwoMLPHead + FastRCNNPredictor with per-class box decoding, score
// threshold and per-class NMS, then MaskRCNNHeads + MaskRCNNPredictor on the kept boxes.
#include <cmath>

#include "segment/maskrcnn/parts.hpp"
#include "sightline/torchvision_ops.hpp"

namespace sightline::maskrcnn {

namespace nn = torch::nn;

namespace {

constexpr int64_t kChannels = 256;
constexpr int64_t kBoxPool = 7, kMaskPool = 14, kRepresentation = 1024;

// box_head: fc6, fc7 (default Linear init).
struct TwoMLPHeadImpl : nn::Module {
    TwoMLPHeadImpl() {
        fc6 = register_module("fc6", nn::Linear(kChannels * kBoxPool * kBoxPool, kRepresentation));
        fc7 = register_module("fc7", nn::Linear(kRepresentation, kRepresentation));
    }
    torch::Tensor forward(const torch::Tensor& x) { return torch::relu(fc7(torch::relu(fc6(x.flatten(1))))); }
    nn::Linear fc6{nullptr}, fc7{nullptr};
};

// box_predictor: cls_score (K classes), bbox_pred (4K class-specific deltas).
struct FastRCNNPredictorImpl : nn::Module {
    explicit FastRCNNPredictorImpl(int64_t num_classes) {
        cls_score = register_module("cls_score", nn::Linear(kRepresentation, num_classes));
        bbox_pred = register_module("bbox_pred", nn::Linear(kRepresentation, 4 * num_classes));
    }
    nn::Linear cls_score{nullptr}, bbox_pred{nullptr};
};

// mask_head: 4 x (3x3 conv + ReLU) as Sequential(Sequential(conv, relu)) -> names "i.0";
// kaiming_normal_(fan_out, relu) weights, zero biases.
nn::Sequential make_mask_head() {
    nn::Sequential head;
    for (int i = 0; i < 4; ++i)
        head->push_back(ConvReLU(kChannels));
    for (auto& p : head->named_parameters()) {
        if (p.value().dim() == 4) nn::init::kaiming_normal_(p.value(), 0, torch::kFanOut, torch::kReLU);
        else nn::init::zeros_(p.value());
    }
    return head;
}

// mask_predictor: conv5_mask (2x2 stride-2 transposed conv) + ReLU, mask_fcn_logits (1x1).
struct MaskRCNNPredictorImpl : nn::Module {
    explicit MaskRCNNPredictorImpl(int64_t num_classes) {
        conv5_mask = register_module(
            "conv5_mask", nn::ConvTranspose2d(nn::ConvTranspose2dOptions(kChannels, kChannels, 2).stride(2)));
        mask_fcn_logits = register_module("mask_fcn_logits", nn::Conv2d(nn::Conv2dOptions(kChannels, num_classes, 1)));
        for (auto& p : named_parameters())
            if (p.key().find("weight") != std::string::npos)
                nn::init::kaiming_normal_(p.value(), 0, torch::kFanOut, torch::kReLU);
    }
    torch::Tensor forward(const torch::Tensor& x) { return mask_fcn_logits(torch::relu(conv5_mask(x))); }
    nn::ConvTranspose2d conv5_mask{nullptr};
    nn::Conv2d mask_fcn_logits{nullptr};
};

}  // namespace

torch::Tensor multiscale_roi_align(const std::vector<torch::Tensor>& features, const std::vector<torch::Tensor>& boxes,
                                   const std::vector<std::pair<int64_t, int64_t>>& image_sizes, int64_t output_size,
                                   int64_t sampling_ratio) {
    constexpr size_t kLevels = 4;  // '0'..'3'; 'pool' is for the RPN only
    // Each level's scale: 2^round(log2(feature height / largest image height)), as _infer_scale.
    int64_t max_h = 0;
    for (const auto& size : image_sizes) max_h = std::max(max_h, size.first);
    std::vector<double> scales;
    for (size_t l = 0; l < kLevels; ++l) {
        const float approx = static_cast<float>(static_cast<double>(features[l].size(2)) / static_cast<double>(max_h));
        scales.push_back(std::pow(2.0, torch::tensor(approx).log2().round().item<double>()));
    }
    const auto k_min = static_cast<int64_t>(-torch::log2(torch::tensor(static_cast<float>(scales.front()))).item<float>());
    const auto k_max = static_cast<int64_t>(-torch::log2(torch::tensor(static_cast<float>(scales.back()))).item<float>());

    std::vector<torch::Tensor> rois_list;
    for (size_t i = 0; i < boxes.size(); ++i)
        rois_list.push_back(torch::cat({torch::full({boxes[i].size(0), 1}, static_cast<double>(i), boxes[i].options()), boxes[i]}, 1));
    const torch::Tensor rois = torch::cat(rois_list);
    const torch::Tensor all_boxes = rois.slice(1, 1, 5);

    // LevelMapper (FPN paper eq. 1): floor(4 + log2(sqrt(area) / 224) + 1e-6), clamped.
    const torch::Tensor s = torch::sqrt(box_area(all_boxes));
    torch::Tensor levels = torch::floor(torch::log2(s / 224) + 4 + torch::tensor(1e-6f, s.options()));
    levels = levels.clamp(k_min, k_max).to(torch::kLong) - k_min;

    const int64_t channels = features[0].size(1);
    torch::Tensor result = torch::zeros({rois.size(0), channels, output_size, output_size}, features[0].options());
    for (size_t l = 0; l < kLevels; ++l) {
        const torch::Tensor in_level = torch::where(levels == static_cast<int64_t>(l))[0];
        if (in_level.numel() == 0) continue;
        result.index_put_({in_level}, roi_align(features[l], rois.index_select(0, in_level), scales[l], output_size,
                                                output_size, sampling_ratio, /*aligned=*/false));
    }
    return result;
}

RoIHeadsImpl::RoIHeadsImpl(const MaskRCNNConfig& cfg) : config(cfg) {
    box_head = register_module("box_head", std::make_shared<TwoMLPHeadImpl>());
    box_predictor = register_module("box_predictor", std::make_shared<FastRCNNPredictorImpl>(cfg.num_classes));
    mask_head = register_module("mask_head", make_mask_head().ptr());
    mask_predictor = register_module("mask_predictor", std::make_shared<MaskRCNNPredictorImpl>(cfg.num_classes));
}

std::vector<InstanceDetections> RoIHeadsImpl::forward(const std::vector<torch::Tensor>& features,
                                                      const std::vector<torch::Tensor>& proposals,
                                                      const std::vector<std::pair<int64_t, int64_t>>& image_sizes) {
    const torch::Tensor box_features =
        box_head->as<TwoMLPHeadImpl>()->forward(multiscale_roi_align(features, proposals, image_sizes, kBoxPool, 2));
    auto& predictor = *box_predictor->as<FastRCNNPredictorImpl>();
    const torch::Tensor class_logits = predictor.cls_score(box_features);
    const torch::Tensor box_regression = predictor.bbox_pred(box_features);

    // postprocess_detections
    const int64_t num_classes = class_logits.size(-1);
    const torch::Tensor pred_boxes =
        decode_boxes(box_regression.reshape({box_regression.size(0), -1}), torch::cat(proposals), {10, 10, 5, 5})
            .reshape({box_regression.size(0), -1, 4});
    const torch::Tensor pred_scores = torch::softmax(class_logits, -1);

    std::vector<InstanceDetections> detections;
    int64_t offset = 0;
    for (size_t i = 0; i < proposals.size(); ++i) {
        const int64_t n = proposals[i].size(0);
        torch::Tensor boxes = clip_boxes(pred_boxes.slice(0, offset, offset + n), image_sizes[i].first, image_sizes[i].second);
        torch::Tensor scores = pred_scores.slice(0, offset, offset + n);
        offset += n;
        torch::Tensor labels = torch::arange(num_classes, scores.options().dtype(torch::kLong)).view({1, -1}).expand_as(scores);
        // Every (proposal, class) pair but the background is a candidate.
        boxes = boxes.slice(1, 1).reshape({-1, 4});
        scores = scores.slice(1, 1).reshape(-1);
        labels = labels.slice(1, 1).reshape(-1);
        torch::Tensor keep = torch::where(scores > config.box_score_thresh)[0];
        boxes = boxes.index_select(0, keep), scores = scores.index_select(0, keep), labels = labels.index_select(0, keep);
        keep = remove_small_boxes(boxes, 1e-2);
        boxes = boxes.index_select(0, keep), scores = scores.index_select(0, keep), labels = labels.index_select(0, keep);
        keep = batched_nms_like_torchvision(boxes, scores, labels, config.box_nms_thresh)
                   .slice(0, 0, config.box_detections_per_img);
        detections.push_back({boxes.index_select(0, keep), labels.index_select(0, keep), scores.index_select(0, keep), {}});
    }

    // Mask branch on the kept boxes: the predicted label's channel, as probabilities.
    std::vector<torch::Tensor> kept_boxes;
    for (const auto& d : detections) kept_boxes.push_back(d.boxes);
    const torch::Tensor mask_features = mask_head->as<nn::Sequential>()->forward(
        multiscale_roi_align(features, kept_boxes, image_sizes, kMaskPool, 2));
    const torch::Tensor mask_probs = mask_predictor->as<MaskRCNNPredictorImpl>()->forward(mask_features).sigmoid();
    offset = 0;
    for (auto& d : detections) {
        const int64_t n = d.boxes.size(0);
        const torch::Tensor rows = torch::arange(offset, offset + n, d.labels.options());
        d.masks = mask_probs.index({rows, d.labels}).unsqueeze(1);
        offset += n;
    }
    return detections;
}

std::array<torch::Tensor, 3> RoIHeadsImpl::losses(const std::vector<torch::Tensor>& features,
                                                 const std::vector<torch::Tensor>& proposals, const ImageBatch& batch) {
    // select_training_samples: ground-truth boxes join the proposals; IoU >= 0.5 takes the
    // matched box's label, else background; 512 RoIs per image, a quarter positive at most.
    std::vector<torch::Tensor> sampled_boxes, sampled_labels, sampled_matches, sampled_targets;
    for (size_t i = 0; i < proposals.size(); ++i) {
        const InstanceTarget& t = batch.targets[i];
        const torch::Tensor candidates = torch::cat({proposals[i], t.boxes});
        torch::Tensor matches, labels;
        if (t.boxes.size(0) == 0) {
            matches = torch::zeros({candidates.size(0)}, candidates.options().dtype(torch::kLong));
            labels = torch::zeros({candidates.size(0)}, candidates.options().dtype(torch::kLong));
        } else {
            const torch::Tensor raw = match_boxes(box_iou(t.boxes, candidates), 0.5, 0.5, false);
            matches = raw.clamp_min(0);
            labels = t.labels.index_select(0, matches);
            labels.masked_fill_(raw == -1, 0);
            labels.masked_fill_(raw == -2, -1);
        }
        sampled_boxes.push_back(candidates);
        sampled_labels.push_back(labels);
        sampled_matches.push_back(matches);
    }
    for (size_t i = 0; i < proposals.size(); ++i) {
        auto [pos, neg] = sample_balanced(sampled_labels[i], config.box_batch_size_per_image, 0.25);
        const torch::Tensor keep = torch::where(pos | neg)[0];
        sampled_boxes[i] = sampled_boxes[i].index_select(0, keep);
        sampled_labels[i] = sampled_labels[i].index_select(0, keep);
        sampled_matches[i] = sampled_matches[i].index_select(0, keep);
        const torch::Tensor gt = batch.targets[i].boxes.size(0) ? batch.targets[i].boxes
                                                                : torch::zeros({1, 4}, sampled_boxes[i].options());
        sampled_targets.push_back(encode_boxes(gt.index_select(0, sampled_matches[i]), sampled_boxes[i], {10, 10, 5, 5}));
    }

    // fastrcnn_loss: cross-entropy over all sampled RoIs; smooth L1 (beta 1/9) of the true
    // class's deltas over the positives, divided by the number of sampled RoIs.
    const torch::Tensor box_features =
        box_head->as<TwoMLPHeadImpl>()->forward(multiscale_roi_align(features, sampled_boxes, batch.sizes, kBoxPool, 2));
    auto& predictor = *box_predictor->as<FastRCNNPredictorImpl>();
    const torch::Tensor class_logits = predictor.cls_score(box_features);
    const torch::Tensor box_regression = predictor.bbox_pred(box_features);
    const torch::Tensor labels = torch::cat(sampled_labels), targets = torch::cat(sampled_targets);
    const torch::Tensor classifier_loss = torch::nn::functional::cross_entropy(class_logits, labels);
    const torch::Tensor pos = torch::where(labels > 0)[0];
    const torch::Tensor pos_labels = labels.index_select(0, pos);
    const torch::Tensor regression = box_regression.reshape({box_regression.size(0), box_regression.size(-1) / 4, 4});
    const torch::Tensor box_loss = at::smooth_l1_loss(regression.index({pos, pos_labels}), targets.index_select(0, pos),
                                                      at::Reduction::Sum, 1.0 / 9) /
                                   labels.numel();

    // maskrcnn_loss on the positive RoIs: targets are the matched ground-truth masks cut out by
    // RoIAlign (28x28, adaptive sampling, soft values), binary cross-entropy with the label's logits.
    std::vector<torch::Tensor> mask_boxes, mask_labels, mask_targets;
    for (size_t i = 0; i < proposals.size(); ++i) {
        const torch::Tensor positive = torch::where(sampled_labels[i] > 0)[0];
        const torch::Tensor boxes = sampled_boxes[i].index_select(0, positive);
        const torch::Tensor matched = sampled_matches[i].index_select(0, positive);
        mask_boxes.push_back(boxes);
        mask_labels.push_back(batch.targets[i].labels.index_select(0, matched));
        const torch::Tensor rois = torch::cat({matched.unsqueeze(1).to(boxes.scalar_type()), boxes}, 1);
        const torch::Tensor gt_masks = batch.targets[i].masks.unsqueeze(1).to(rois.scalar_type());
        mask_targets.push_back(rois.size(0) ? roi_align(gt_masks, rois, 1.0, 28, 28, 0, false).select(1, 0)
                                            : torch::zeros({0, 28, 28}, gt_masks.options()));
    }
    const torch::Tensor mask_logits = mask_predictor->as<MaskRCNNPredictorImpl>()->forward(
        mask_head->as<nn::Sequential>()->forward(multiscale_roi_align(features, mask_boxes, batch.sizes, kMaskPool, 2)));
    const torch::Tensor all_mask_labels = torch::cat(mask_labels), all_mask_targets = torch::cat(mask_targets);
    const torch::Tensor mask_loss =
        all_mask_targets.numel() == 0
            ? mask_logits.sum() * 0
            : torch::binary_cross_entropy_with_logits(
                  mask_logits.index({torch::arange(all_mask_labels.size(0), all_mask_labels.options()), all_mask_labels}),
                  all_mask_targets);
    return {classifier_loss, box_loss, mask_loss};
}

}  // namespace sightline::maskrcnn
