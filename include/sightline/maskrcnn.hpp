// Mask R-CNN (He et al. 2017) as torchvision 0.14 builds it with
// MaskRCNN(resnet_fpn_backbone(backbone_name='resnet18'|'resnet34'|'resnet50', weights=None), num_classes):
// the same modules, parameter names and shapes (so state_dicts move both ways, see docs/mask-rcnn.md)
// and the same inference arithmetic (resize, anchors, proposal filtering, RoIAlign levels, box
// decoding, per-class NMS, mask pasting) and the same five training losses. RoIAlign and NMS are
// torchvision's own kernels (torchvision_ops.hpp).
//
// Shapes and units, once:
//   image       [3,H,W] float32 RGB in [0,1] (not normalised: the model normalises).
//   boxes       [K,4] float32 (x1, y1, x2, y2) in pixels of the image given to detect().
//   labels      [K] int64 class ids 1..num_classes-1 (0 is background and never returned).
//   scores      [K] float32 softmax probability of the label, decreasing.
//   masks       [K,1,H,W] float32 probabilities in [0,1], pasted into the image; threshold them
//               yourself (torchvision's convention is >= 0.5).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace sightline {

struct MaskRCNNConfig {
    int64_t depth = 50;           // ResNet depth: 18, 34 or 50
    int64_t num_classes = 91;     // background included (torchvision's COCO default)
    int64_t trainable_layers = 3; // backbone stages with requires_grad (0..5, torchvision's meaning)
    // GeneralizedRCNNTransform: the short side is resized to min_size unless the long side would
    // exceed max_size; the batch is zero-padded to multiples of 32.
    int64_t min_size = 800, max_size = 1333;
    // Multi-scale training (torchvision's min_size tuple): when not empty, each training image's
    // short side is drawn from these (uniformly, from LibTorch's global generator as torchvision's
    // torch_choice draws); evaluation uses min_size, the tuple's last value in torchvision.
    std::vector<int64_t> train_min_sizes;
    std::array<float, 3> image_mean{0.485f, 0.456f, 0.406f}, image_std{0.229f, 0.224f, 0.225f};
    // RPN: top-n per level before NMS, per image after it, at test and at training time.
    int64_t rpn_pre_nms_top_n = 1000, rpn_post_nms_top_n = 1000;
    int64_t rpn_pre_nms_top_n_train = 2000, rpn_post_nms_top_n_train = 2000;
    double rpn_nms_thresh = 0.7, rpn_score_thresh = 0.0;
    // Training samplers: anchors per image for the RPN losses (half positive at most) and
    // proposals per image for the box and mask losses (a quarter positive at most). Fewer make a
    // step cheaper on small images with few objects; torchvision's keywords of the same names.
    int64_t rpn_batch_size_per_image = 256, box_batch_size_per_image = 512;
    // RoI heads post-processing.
    double box_score_thresh = 0.05, box_nms_thresh = 0.5;
    int64_t box_detections_per_img = 100;
};

// Throws UsageError naming the field when a value is out of range (depth, num_classes >= 2,
// sizes >= 1, thresholds finite, top-n >= 1).
void validate(const MaskRCNNConfig& config);

struct InstanceDetections {
    torch::Tensor boxes, labels, scores, masks;  // see the header comment
};

struct MaskRCNNOutput {
    std::vector<InstanceDetections> detections;  // one per image
    // The RPN's proposals per image [P,4], in pixels of the resized image (before the RoI heads):
    // what torchvision's model.rpn returns in eval mode.
    std::vector<torch::Tensor> proposals;
};

// One image's ground truth for the training losses.
struct InstanceTarget {
    torch::Tensor boxes;   // [G,4] float32 (x1, y1, x2, y2) in pixels of the image, x1 < x2, y1 < y2
    torch::Tensor labels;  // [G] int64 in 1..num_classes-1
    torch::Tensor masks;   // [G,H,W] uint8 0/1, the image's size
};

// torchvision's training loss dict; total() is their sum (torchvision weights them all 1).
struct MaskRCNNLosses {
    torch::Tensor objectness, rpn_box_reg, classifier, box_reg, mask;
    torch::Tensor total() const { return objectness + rpn_box_reg + classifier + box_reg + mask; }
};

class MaskRCNNImpl : public torch::nn::Module {
public:
    // Random weights initialised as torchvision initialises them (FrozenBatchNorm2d as identity).
    explicit MaskRCNNImpl(const MaskRCNNConfig& config);
    // Where the weights are (model->to(device) moves them): images and targets go there, detections
    // come back to host memory.
    torch::Device device() const;

    // Inference on images of any sizes (each [3,H,W] in [0,1], at least one image), with the
    // test-time settings, whatever train()/eval() say. No gradients are recorded.
    MaskRCNNOutput detect(const std::vector<torch::Tensor>& images);

    // The five training losses of torchvision's model in train mode, differentiable in the
    // weights. The anchor and RoI samples are drawn from LibTorch's global generator with the
    // same calls in the same order as torchvision (plus one uniform draw per image for the
    // resize), so torch::manual_seed(s) here and torch.manual_seed(s) in Python draw the same.
    // Throws Error for targets that do not fit their image (naming the image and the field).
    MaskRCNNLosses losses(const std::vector<torch::Tensor>& images, const std::vector<InstanceTarget>& targets);

    const MaskRCNNConfig& config() const { return config_; }

    // Every parameter and buffer under torchvision's state_dict name.
    std::map<std::string, torch::Tensor> named_state() const;

private:
    MaskRCNNConfig config_;
    std::shared_ptr<torch::nn::Module> backbone_, rpn_, roi_heads_;
};
TORCH_MODULE(MaskRCNN);

// ---- weights ------------------------------------------------------------------------------------

// Reads a file written by Python's torch.save(obj, path) where obj is a dict or an OrderedDict
// (e.g. model.state_dict()) of string -> tensor, in the zip format (PyTorch >= 1.6 default).
// Throws Error "<path>: ..." for an unreadable file, the legacy format, or other contents.
std::map<std::string, torch::Tensor> read_tensor_dict(const std::string& path);

// Writes name -> tensor as a dict that Python's torch.load reads (then model.load_state_dict).
void write_tensor_dict(const std::map<std::string, torch::Tensor>& tensors, const std::string& path);

// Copies a torchvision state_dict file into the model. Throws Error naming the file and listing
// every missing, unexpected and mismatched-shape entry on one line; the model is unchanged then.
// "...num_batches_tracked" entries are ignored (torchvision's FrozenBatchNorm2d drops them too).
void load_state_dict(MaskRCNNImpl& model, const std::string& path);

// What init_from_state_dict took from its file.
struct InitReport {
    bool backbone_only = false;          // the file was a ResNet classifier's state_dict
    std::size_t loaded = 0;              // tensors copied into the model
    std::vector<std::string> skipped;    // class-specific layers of another class count, left as initialised
};

// Starts a model from weights for fine-tuning: a torchvision Mask R-CNN state_dict of the same
// depth (the box and mask predictors are skipped when its class count differs), or a torchvision
// ResNet classifier's state_dict (torchvision.models.resnetNN().state_dict()), taken as the
// backbone's body (its fc dropped; FPN, RPN and heads keep their initialisation). Error naming
// the file and every missing, unexpected or mismatched entry otherwise; the model is unchanged then.
InitReport init_from_state_dict(MaskRCNNImpl& model, const std::string& path);

// Saves the model's state_dict so that torchvision's load_state_dict(strict=True) accepts it.
void save_state_dict(const MaskRCNNImpl& model, const std::string& path);

// torchvision's paste_masks_in_image: masks [K,1,M,M] (probabilities), boxes [K,4] in image
// pixels -> [K,1,height,width]; each mask is zero-padded by `padding`, its box expanded to match,
// truncated to integers and the mask resized bilinearly (align_corners=False) into it.
torch::Tensor paste_masks_in_image(const torch::Tensor& masks, const torch::Tensor& boxes, int64_t height,
                                   int64_t width, int64_t padding = 1);

}  // namespace sightline
