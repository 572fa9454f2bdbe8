// RoIAlign and NMS for the instance segmenter (issue 16), computed by torchvision's own C++ op
// library: Debian's python3-torchvision ships it as torchvision/_C*.so, which needs only
// LibTorch (not Python). It is dlopen'ed once, on first use, and its ops are called through
// the dispatcher, so results and gradients are torchvision's to the bit.
//
// Which file: $SIGHTLINE_TORCHVISION_OPS if set and not empty, else the file CMake found at
// configure time. A missing or unloadable file is one sightline::Error naming the path, the
// Debian package and the variable.
//
// Boxes are (x1, y1, x2, y2) in pixels of the image the feature map was computed from, with
// x1 <= x2 and y1 <= y2 (zero size is allowed), float32 or float64, on the CPU.
#pragma once

#include <string>

#include <torch/torch.h>

namespace sightline {

// The op library's path: $SIGHTLINE_TORCHVISION_OPS, or the one found at configure time.
std::string torchvision_ops_path();

// dlopen(path, RTLD_NOW | RTLD_GLOBAL), so its TORCH_LIBRARY registrations run, then checks that
// torchvision::roi_align and torchvision::nms are registered. Throws Error
// "<path>: cannot load torchvision's op library (<reason>); install Debian's python3-torchvision
// or set SIGHTLINE_TORCHVISION_OPS to its torchvision/_C*.so".
void load_torchvision_ops(const std::string& path);

// Loads torchvision_ops_path() on the first call; later calls return at once, or throw the
// first call's error again.
void ensure_torchvision_ops();

// RoIAlign (He et al. 2017, Mask R-CNN), torchvision::roi_align.
//   input  [N,C,H,W] float32/float64 feature map, finite.
//   boxes  [K,5] (batch index in 0..N-1, x1, y1, x2, y2), finite; converted to input's dtype.
//   spatial_scale  feature-map pixels per box unit (> 0), e.g. 1/16 for a stride-16 map.
//   output_height, output_width >= 1; sampling_ratio >= 1 points per bin side, or 0 for
//   ceil(box side / output side) (adaptive); aligned = true shifts boxes by -0.5 pixel
//   (pixel centres, Detectron2), false is torchvision's Mask R-CNN default (boxes at least 1 wide).
// Returns [K,C,output_height,output_width]; differentiable in input (torchvision's backward).
torch::Tensor roi_align(const torch::Tensor& input, const torch::Tensor& boxes, double spatial_scale,
                        int64_t output_height, int64_t output_width, int64_t sampling_ratio, bool aligned);

// Greedy non-maximum suppression, torchvision::nms: a box is dropped when its IoU with a kept box
// of higher score is > iou_threshold (strictly). boxes [K,4], scores [K] (same floating dtype,
// finite). Returns the kept indices (int64) in decreasing score order; equal scores are taken in
// index order (torchvision leaves that order unspecified).
torch::Tensor nms(const torch::Tensor& boxes, const torch::Tensor& scores, double iou_threshold);

// NMS within each class only (classes [K] int64 >= 0): torchvision's batched_nms trick of
// shifting each class's boxes by class * (coordinate span + 1) so boxes of different classes
// never overlap, then one nms. Same result and order as nms per class merged by score.
torch::Tensor batched_nms(const torch::Tensor& boxes, const torch::Tensor& scores, const torch::Tensor& classes,
                          double iou_threshold);

}  // namespace sightline
