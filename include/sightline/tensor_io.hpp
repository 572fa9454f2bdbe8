// Images and .npy files <-> LibTorch tensors.
#pragma once

#include <array>

#include <opencv2/core.hpp>
#include <torch/torch.h>

#include "sightline/core.hpp"

namespace sightline {

// How an image becomes the model's input: resize (0 = keep), scale to [0,1], normalise.
struct Preprocess {
    int height = 0;
    int width = 0;
    std::array<float, 3> mean{0.485f, 0.456f, 0.406f};  // ImageNet, as pytorch-grad-cam's cam.py
    std::array<float, 3> std{0.229f, 0.224f, 0.225f};
};

struct InputItem {
    fs::path path;
    torch::Tensor tensor;   // [1,3,H,W] model input
    cv::Mat display;        // CV_8UC3 RGB at H x W, for overlays
    std::string note;       // e.g. "grey image converted to RGB"; empty when nothing to say
};

// Reads an image (resized and normalised by `pre`) or a .npy float32 tensor of shape [3,H,W]
// or [1,3,H,W] that is already preprocessed (used as it is). Throws Error naming the file.
InputItem read_input(const fs::path& path, const Preprocess& pre);
// read_input for each path, for work that batches them: Error naming both files when one
// input's size differs from the first's ("give --size").
std::vector<InputItem> read_inputs_of_one_size(const std::vector<fs::path>& paths, const Preprocess& pre);

// A picture of a preprocessed [1,3,H,W] tensor for overlays: each channel min-max scaled to 0..255.
cv::Mat tensor_picture(const torch::Tensor& x);
// RGB uint8 image -> [1,3,H,W] float32 after resize and normalisation.
torch::Tensor image_to_tensor(const cv::Mat& rgb, const Preprocess& pre);
// [N,...] float tensor -> NpyArray copy (float32, C order).
NpyArray tensor_to_npy(const torch::Tensor& t);
torch::Tensor npy_to_tensor(const NpyArray& a);

}  // namespace sightline
