// The layer pass shared by the methods of one explain() call.
#include "explain/context.hpp"

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
    torch::Tensor logits_rows = model.head(a, repeat_extras(features.extras, k()));
    torch::Tensor score = logits_rows.gather(1, target_rows().unsqueeze(1)).sum();
    torch::Tensor g = torch::autograd::grad({score}, {a}, {}, false, false, true)[0];
    if (!g.defined()) g = torch::zeros_like(a);  // the target does not depend on A at all
    detail::check_finite(g, source, fmt::format("gradients at layer '{}'", model.layer()));
    gradients_ = g;
    return g;
}

torch::Tensor MethodContext::input_rows() const {
    return k() == 1 ? input : input.repeat_interleave(k(), 0);
}

namespace detail {

void check_finite(const torch::Tensor& t, const std::string& source, const std::string& what) {
    if (!torch::isfinite(t).all().item<bool>())
        throw Error(fmt::format("{}: {} contain NaN or Inf", source, what));
}

}  // namespace detail
}  // namespace sightline
