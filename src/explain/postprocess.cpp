// Map normalisation exactly as pytorch-grad-cam's scale_cam_image (docs/methods.md, "Conventions").
#include <fmt/format.h>

#include "sightline/explain.hpp"

namespace sightline {

torch::Tensor minmax_maps(const torch::Tensor& maps) {
    // The max is taken after subtracting the min; eps 1e-7 keeps a flat map at 0.
    auto flat = maps.reshape({maps.size(0), -1});
    auto shifted = flat - std::get<0>(flat.min(1, true));
    auto scaled = shifted / (std::get<0>(shifted.max(1, true)) + 1e-7);
    return scaled.reshape(maps.sizes());
}

torch::Tensor normalise_maps(const torch::Tensor& raw, int64_t height, int64_t width) {
    namespace F = torch::nn::functional;
    torch::Tensor m = minmax_maps(torch::relu(raw.to(torch::kFloat32)));
    if (m.size(1) != height || m.size(2) != width) {
        // Half-pixel bilinear, as cv::resize INTER_LINEAR (align_corners = false, no antialias).
        m = F::interpolate(m.unsqueeze(1), F::InterpolateFuncOptions()
                                               .size(std::vector<int64_t>{height, width})
                                               .mode(torch::kBilinear)
                                               .align_corners(false))
                .squeeze(1);
    }
    return minmax_maps(torch::relu(m));
}

}  // namespace sightline
