// Score-CAM (Wang et al. 2020): each channel, upsampled and min-max scaled, masks the input;
// the target's logit on the masked input is the channel's score; weights = softmax(scores).
#include "explain/context.hpp"
#include "explain/rules.hpp"

namespace sightline::detail {

torch::Tensor score_cam(MethodContext& c) {
    namespace F = torch::nn::functional;
    torch::NoGradGuard no_grad;
    const torch::Tensor& a = c.features.activations;  // [B,K,h,w]
    const int64_t batch = a.size(0), channels = a.size(1), k = c.k();
    const int64_t height = c.input.size(2), width = c.input.size(3);
    torch::Tensor weights = torch::empty({batch * k, channels}, a.options());
    for (int64_t b = 0; b < batch; ++b) {
        // The reference upsamples with UpsamplingBilinear2d, i.e. align_corners = true.
        torch::Tensor up = F::interpolate(a.slice(0, b, b + 1),
                                          F::InterpolateFuncOptions()
                                              .size(std::vector<int64_t>{height, width})
                                              .mode(torch::kBilinear)
                                              .align_corners(true))[0];  // [K,H,W]
        torch::Tensor flat = up.reshape({channels, -1});
        torch::Tensor lo = std::get<0>(flat.min(1)).view({channels, 1, 1});
        torch::Tensor hi = std::get<0>(flat.max(1)).view({channels, 1, 1});
        up = (up - lo) / (hi - lo + 1e-8);
        torch::Tensor scores = torch::empty({channels, k}, a.options());
        torch::Tensor image = c.input[b];
        torch::Tensor cls = c.targets[b];
        for (int64_t start = 0; start < channels; start += c.options.score_batch) {
            int64_t end = std::min(channels, start + c.options.score_batch);
            torch::Tensor masked = image.unsqueeze(0) * up.slice(0, start, end).unsqueeze(1);
            scores.slice(0, start, end) = c.model.forward(masked).index_select(1, cls);
        }
        weights.slice(0, b * k, (b + 1) * k) = torch::softmax(scores.t(), 1);
    }
    return c.weighted_activation_sum(weights);
}

}  // namespace sightline::detail
