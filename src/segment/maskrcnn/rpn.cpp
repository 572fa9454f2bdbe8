// Region proposal network at inference (torchvision's rpn.py and anchor_utils.py): RPNHead on
// every FPN level, anchors (32..512 px, one size per level, aspect ratios 0.5/1/2) decoded by the
// predicted deltas, then per image: top-n per level, clip, drop tiny boxes, NMS per level, top-n.
#include "segment/maskrcnn/parts.hpp"

namespace sightline::maskrcnn {

namespace nn = torch::nn;

namespace {

constexpr int64_t kAnchorsPerLocation = 3;

// rpn.head: conv.0.0 (3x3 + ReLU), cls_logits (1x1 -> A), bbox_pred (1x1 -> 4A); normal(0.01) init.
struct RPNHeadImpl : nn::Module {
    explicit RPNHeadImpl(int64_t channels) {
        conv = register_module("conv", nn::Sequential(ConvReLU(channels)));
        cls_logits = register_module("cls_logits", nn::Conv2d(nn::Conv2dOptions(channels, kAnchorsPerLocation, 1)));
        bbox_pred = register_module("bbox_pred", nn::Conv2d(nn::Conv2dOptions(channels, 4 * kAnchorsPerLocation, 1)));
        for (auto& p : named_parameters()) {
            if (p.value().dim() == 4) nn::init::normal_(p.value(), 0, 0.01);
            else nn::init::zeros_(p.value());
        }
    }
    nn::Sequential conv{nullptr};
    nn::Conv2d cls_logits{nullptr}, bbox_pred{nullptr};
};

// [N, A*C, H, W] -> [N, H*W*A, C] (torchvision's permute_and_flatten).
// Integer indices on the device of `like`.
torch::TensorOptions idx_options(const torch::Tensor& like) { return torch::dtype(torch::kLong).device(like.device()); }

torch::Tensor permute_and_flatten(const torch::Tensor& x, int64_t c) {
    const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
    return x.view({n, -1, c, h, w}).permute({0, 3, 4, 1, 2}).reshape({n, -1, c});
}

// AnchorGenerator for one level: cell anchors round([-w, -h, w, h] / 2) for the three aspect
// ratios, shifted to the top-left corner of every cell (stride = padded size // feature size).
torch::Tensor level_anchors(int64_t size, int64_t grid_h, int64_t grid_w, int64_t stride_h, int64_t stride_w,
                            const torch::Device& device) {
    const torch::Tensor scales = torch::tensor({static_cast<float>(size)}).to(device);
    const torch::Tensor ratios = torch::tensor({0.5f, 1.0f, 2.0f}).to(device);
    const torch::Tensor h_ratios = torch::sqrt(ratios);
    const torch::Tensor w_ratios = h_ratios.reciprocal();
    const torch::Tensor ws = (w_ratios.unsqueeze(1) * scales.unsqueeze(0)).view(-1);
    const torch::Tensor hs = (h_ratios.unsqueeze(1) * scales.unsqueeze(0)).view(-1);
    const torch::Tensor base = (torch::stack({-ws, -hs, ws, hs}, 1) / 2).round();

    const torch::Tensor shifts_x = torch::arange(grid_w, torch::dtype(torch::kInt).device(device)) * stride_w;
    const torch::Tensor shifts_y = torch::arange(grid_h, torch::dtype(torch::kInt).device(device)) * stride_h;
    const auto grid = torch::meshgrid({shifts_y, shifts_x}, "ij");
    const torch::Tensor sx = grid[1].reshape(-1), sy = grid[0].reshape(-1);
    const torch::Tensor shifts = torch::stack({sx, sy, sx, sy}, 1);
    return (shifts.view({-1, 1, 4}) + base.view({1, -1, 4})).reshape({-1, 4});
}

}  // namespace

RPNImpl::RPNImpl(const MaskRCNNConfig& cfg) : config(cfg) {
    head = register_module("head", std::make_shared<RPNHeadImpl>(256));
}

RPNResult RPNImpl::forward(const ImageBatch& batch, const std::vector<torch::Tensor>& features, bool training) {
    const int64_t pre_nms_top_n = training ? config.rpn_pre_nms_top_n_train : config.rpn_pre_nms_top_n;
    const int64_t post_nms_top_n = training ? config.rpn_post_nms_top_n_train : config.rpn_post_nms_top_n;
    auto& h = *head->as<RPNHeadImpl>();
    const int64_t num_images = batch.tensors.size(0);
    const int64_t image_h = batch.tensors.size(2), image_w = batch.tensors.size(3);

    std::vector<torch::Tensor> objectness, deltas, anchors;
    std::vector<int64_t> per_level;
    for (size_t level = 0; level < features.size(); ++level) {
        const torch::Tensor& f = features[level];
        const torch::Tensor t = h.conv->forward(f);
        objectness.push_back(permute_and_flatten(h.cls_logits(t), 1));
        deltas.push_back(permute_and_flatten(h.bbox_pred(t), 4));
        const int64_t gh = f.size(2), gw = f.size(3);
        anchors.push_back(level_anchors(32 << level, gh, gw, image_h / gh, image_w / gw, features[level].device()));
        per_level.push_back(gh * gw * kAnchorsPerLocation);
    }
    RPNResult out;
    out.objectness = torch::cat(objectness, 1).flatten();
    out.deltas = torch::cat(deltas, 1).reshape({-1, 4});
    out.anchors = torch::cat(anchors);
    const torch::Tensor scores_all = out.objectness.detach().reshape({num_images, -1});
    const torch::Tensor reference = out.anchors.repeat({num_images, 1});
    const torch::Tensor proposals_all = decode_boxes(out.deltas.detach(), reference, {1, 1, 1, 1}).view({num_images, -1, 4});

    // Top pre_nms_top_n per level (by logit), with each candidate's level for the NMS.
    std::vector<torch::Tensor> top_idx, top_levels;
    int64_t offset = 0;
    for (size_t level = 0; level < per_level.size(); ++level) {
        const torch::Tensor level_scores = scores_all.slice(1, offset, offset + per_level[level]);
        const int64_t k = std::min(pre_nms_top_n, per_level[level]);
        top_idx.push_back(std::get<1>(level_scores.topk(k, 1)) + offset);
        top_levels.push_back(torch::full({num_images, k}, static_cast<int64_t>(level), idx_options(scores_all)));
        offset += per_level[level];
    }
    const torch::Tensor idx = torch::cat(top_idx, 1);
    const torch::Tensor levels = torch::cat(top_levels, 1);

    for (int64_t i = 0; i < num_images; ++i) {
        torch::Tensor scores = torch::sigmoid(scores_all[i].index_select(0, idx[i]));
        torch::Tensor boxes = proposals_all[i].index_select(0, idx[i]);
        torch::Tensor lvl = levels[i];
        boxes = clip_boxes(boxes, batch.sizes[i].first, batch.sizes[i].second);
        torch::Tensor keep = remove_small_boxes(boxes, 1e-3);
        boxes = boxes.index_select(0, keep), scores = scores.index_select(0, keep), lvl = lvl.index_select(0, keep);
        keep = torch::where(scores >= config.rpn_score_thresh)[0];
        boxes = boxes.index_select(0, keep), scores = scores.index_select(0, keep), lvl = lvl.index_select(0, keep);
        keep = batched_nms_like_torchvision(boxes, scores, lvl, config.rpn_nms_thresh);
        keep = keep.slice(0, 0, post_nms_top_n);
        out.proposals.push_back(boxes.index_select(0, keep));
    }
    return out;
}

std::pair<torch::Tensor, torch::Tensor> RPNImpl::losses(const RPNResult& result, const ImageBatch& batch) {
    // Anchor labels: 1 for IoU >= 0.7 (or an anchor tying for a box's best IoU), 0 below 0.3,
    // -1 (ignored) between; regression targets towards the matched box.
    std::vector<torch::Tensor> labels, targets, positives, negatives;
    for (const InstanceTarget& t : batch.targets) {
        torch::Tensor label, matched_boxes;
        if (t.boxes.size(0) == 0) {
            label = torch::zeros({result.anchors.size(0)}, result.anchors.options());
            matched_boxes = torch::zeros(result.anchors.sizes(), result.anchors.options());
        } else {
            const torch::Tensor matches = match_boxes(box_iou(t.boxes, result.anchors), 0.7, 0.3, true);
            matched_boxes = t.boxes.index_select(0, matches.clamp_min(0));
            label = (matches >= 0).to(torch::kFloat);
            label.masked_fill_(matches == -1, 0.0);
            label.masked_fill_(matches == -2, -1.0);
        }
        labels.push_back(label);
        targets.push_back(encode_boxes(matched_boxes, result.anchors, {1, 1, 1, 1}));
    }
    for (const torch::Tensor& label : labels) {
        auto [pos, neg] = sample_balanced(label, config.rpn_batch_size_per_image, 0.5);
        positives.push_back(pos);
        negatives.push_back(neg);
    }
    const torch::Tensor pos = torch::where(torch::cat(positives))[0];
    const torch::Tensor neg = torch::where(torch::cat(negatives))[0];
    const torch::Tensor sampled = torch::cat({pos, neg});
    const torch::Tensor all_labels = torch::cat(labels), all_targets = torch::cat(targets);
    const torch::Tensor box_loss = at::smooth_l1_loss(result.deltas.index_select(0, pos),
                                                      all_targets.index_select(0, pos), at::Reduction::Sum, 1.0 / 9) /
                                   sampled.numel();
    const torch::Tensor objectness_loss = torch::binary_cross_entropy_with_logits(
        result.objectness.index_select(0, sampled), all_labels.index_select(0, sampled));
    return {objectness_loss, box_loss};
}

}  // namespace sightline::maskrcnn
