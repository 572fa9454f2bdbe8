// Pieces shared by the segmentation trainer and inference (not public).
#pragma once

#include <torch/script.h>

#include "sightline/data.hpp"
#include "sightline/segment.hpp"

namespace sightline::detail {

// Training augmentation, image and mask together (data.hpp transforms): the short side is
// rescaled to size * U(scale_min, scale_max), padded to size x size (image 0, mask 255 =
// ignore), cropped at a random place to size x size, flipped with probability 1/2, colour
// jittered when asked.
struct SegAugmentOptions {
    int size = 96;
    double scale_min = 0.75, scale_max = 1.25;
    bool flip = true;
    bool jitter = false;
};
void segmentation_augment(Sample& sample, const SegAugmentOptions& options, Rng& rng);

// RGB CV_8UC3 -> [3,H,W] float32 normalised with mean/std (pixels / 255 first).
torch::Tensor normalise_image(const cv::Mat& rgb, const std::vector<double>& mean, const std::vector<double>& std);

// Logits [B,K,H,W] of x [B,3,H,W]: x zero-padded at the bottom and right to multiples of
// `multiple`, the model run, the logits cropped back. Throws Error "<name>: ..." when the
// output is not [B,K',H',W'] with H', W' = the padded size.
torch::Tensor forward_padded(torch::jit::Module& model, const torch::Tensor& x, int64_t multiple,
                             const std::string& name);

// Labels of a [K,H,W] score tensor as CV_8UC1 (first maximum wins).
cv::Mat argmax_labels(const torch::Tensor& scores);

}  // namespace sightline::detail
