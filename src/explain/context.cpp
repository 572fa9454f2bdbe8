// The layer pass shared by the methods of one explain() call.
#include "explain/context.hpp"

#include <cmath>

#include <fmt/format.h>

namespace sightline {

torch::Tensor MethodContext::activation_rows() {
    if (!activation_rows_)
        activation_rows_ = k() == 1 ? features.activations
                                    : features.activations.repeat_interleave(k(), 0);
    return *activation_rows_;
}

torch::Tensor MethodContext::gradient_rows() {
    if (gradients_) return *gradients_;
    // Backward through the head only: A is a leaf, the backbone ran without autograd.
    torch::Tensor a = activation_rows().detach().requires_grad_(true);
    set_gradients(a, model.head(a, repeat_extras(features.extras, k())));
    return *gradients_;
}

void MethodContext::set_gradients(const torch::Tensor& a_rows, const torch::Tensor& logits_rows) {
    // All (image, target) rows in one backward: the head's weights are read once for k targets.
    torch::Tensor score = logits_rows.gather(1, target_rows().unsqueeze(1)).sum();
    torch::Tensor g = torch::autograd::grad({score}, {a_rows}, {}, false, false, true)[0];
    if (!g.defined()) g = torch::zeros_like(a_rows);  // the target does not depend on A at all
    detail::check_finite(g, sources, fmt::format("gradients at layer '{}'", model.layer()), k());
    activation_rows_ = a_rows.detach();
    gradients_ = g;
}

void MethodContext::set_computed_gradients(const torch::Tensor& gradients) {
    gradients_ = gradients;
    torch::Tensor uniform = uniform_gradient();
    detail::check_finite(uniform.defined() ? uniform : gradients, sources,
                         fmt::format("gradients at layer '{}'", model.layer()), k());
}

torch::Tensor MethodContext::uniform_gradient() {
    const torch::Tensor g = gradient_rows();
    if (g.dim() != 4 || g.stride(2) != 0 || g.stride(3) != 0) return {};
    return g.select(3, 0).select(2, 0);
}

torch::Tensor MethodContext::weighted_activation_sum(const torch::Tensor& weights) const {
    const torch::Tensor& a = features.activations;
    const int64_t b = a.size(0), channels = a.size(1), h = a.size(2), w = a.size(3);
    return torch::bmm(weights.reshape({b, k(), channels}).to(a.dtype()), a.reshape({b, channels, h * w}))
        .view({b * k(), h, w});
}

torch::Tensor MethodContext::contribution_map() {
    // HiResCAM's rule and the explainer's completeness check both need it: made once.
    if (!contribution_) {
        torch::Tensor uniform = uniform_gradient();
        contribution_ = uniform.defined() ? weighted_activation_sum(uniform) : (gradient_rows() * activation_rows()).sum(1);
    }
    return *contribution_;
}

torch::Tensor MethodContext::input_rows() const {
    return k() == 1 ? input : input.repeat_interleave(k(), 0);
}

namespace detail {

void check_finite(const torch::Tensor& t, const std::vector<std::string>& sources,
                  const std::string& what, int64_t rows_per_image) {
    // A finite sum means every value is finite (a sum that overflows goes on to the exact check
    // below, which then finds nothing): one reduction instead of a mask per element.
    if (t.numel() == 0 || std::isfinite(t.sum().item<double>())) return;
    torch::Tensor bad = ~torch::isfinite(t).reshape({t.size(0), -1}).all(1);
    if (!bad.any().item<bool>()) return;
    int64_t image = bad.nonzero()[0][0].item<int64_t>() / rows_per_image;
    std::string name = image < static_cast<int64_t>(sources.size()) ? sources[image]
                                                                    : fmt::format("input {}", image);
    throw Error(fmt::format("{}: {} contain NaN or Inf", name, what));
}

}  // namespace detail
}  // namespace sightline
