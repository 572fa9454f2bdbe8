// Gradient attributions in input space: saliency, input x gradient, integrated gradients,
// SmoothGrad. Each reduces the per-channel attribution to one map [N,H,W].
#include <fmt/format.h>

#include "explain/context.hpp"
#include "explain/rules.hpp"
#include "sightline/explain_options.hpp"

namespace sightline::detail {

namespace {

// Vanilla gradients are reduced by the largest magnitude over colour channels
// (Simonyan et al. 2014, section 3.1).
torch::Tensor max_abs_channels(const torch::Tensor& g) { return g.abs().amax(1); }

// Attributions that sum to an output change are summed over channels, then shown by magnitude.
torch::Tensor sum_abs_channels(const torch::Tensor& attribution) { return attribution.sum(1).abs(); }

torch::Tensor black_baseline(const MethodContext& c) {
    torch::Tensor base = torch::zeros({1, 3, 1, 1}, c.input.options());
    if (!c.options.black.empty()) {
        if (c.options.black.size() != 3)
            throw UsageError("integrated gradients: the black baseline needs one value per channel (3)");
        for (int i = 0; i < 3; ++i) base[0][i][0][0] = c.options.black[i];
    }
    return base;
}

}  // namespace

torch::Tensor input_gradients(MethodContext& c, const torch::Tensor& x, const torch::Tensor& targets,
                              bool guided) {
    std::vector<torch::Tensor> parts;
    const int64_t n = x.size(0), step = std::max(1, c.options.input_batch);
    for (int64_t start = 0; start < n; start += step) {
        int64_t end = std::min(n, start + step);
        torch::Tensor leaf = x.slice(0, start, end).detach().requires_grad_(true);
        torch::Tensor logits = guided ? guided_logits(c, leaf) : c.model.forward(leaf);
        torch::Tensor score = logits.gather(1, targets.slice(0, start, end).unsqueeze(1)).sum();
        torch::Tensor g = torch::autograd::grad({score}, {leaf}, {}, false, false, true)[0];
        parts.push_back(g.defined() ? g : torch::zeros_like(leaf));
    }
    torch::Tensor g = torch::cat(parts);
    check_finite(g, c.sources, "input gradients", g.size(0) / c.input.size(0));
    return g;
}

torch::Tensor saliency(MethodContext& c) {
    return max_abs_channels(input_gradients(c, c.input_rows(), c.target_rows()));
}

torch::Tensor input_x_gradient(MethodContext& c) {
    torch::Tensor x = c.input_rows();
    return sum_abs_channels(x * input_gradients(c, x, c.target_rows()));
}

// Midpoint Riemann sum of the gradient along the straight path from the black image to x.
torch::Tensor integrated_gradients(MethodContext& c) {
    torch::Tensor x = c.input_rows(), base = black_baseline(c).expand_as(x);
    torch::Tensor rows = c.target_rows();
    validate(c.options);
    const int steps = c.options.ig_steps;
    const int64_t n = x.size(0);
    // All steps of all rows as one batch list: [steps * N, 3, H, W], step-major.
    std::vector<torch::Tensor> path;
    for (int s = 0; s < steps; ++s) path.push_back(base + (s + 0.5) / steps * (x - base));
    torch::Tensor g = input_gradients(c, torch::cat(path), rows.repeat({steps}));
    torch::Tensor mean_g = g.reshape({steps, n, x.size(1), x.size(2), x.size(3)}).mean(0);
    return sum_abs_channels((x - base) * mean_g);
}

// Average of the base method's map over noisy copies of the input (Smilkov et al. 2017).
torch::Tensor smooth_grad(MethodContext& c) {
    const std::string& base = c.options.smooth_base;
    if (base != "saliency" && base != "inputxgradient" && base != "guidedbackprop")
        throw UsageError(fmt::format("--smooth-base '{}': choose saliency, inputxgradient or guidedbackprop", base));
    torch::Tensor x = c.input_rows(), rows = c.target_rows();
    validate(c.options);
    const int samples = c.options.smooth_samples;
    torch::Tensor range = (x.amax({1, 2, 3}, true) - x.amin({1, 2, 3}, true));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(c.options.seed);
    std::vector<torch::Tensor> noisy;
    for (int s = 0; s < samples; ++s)
        noisy.push_back(x + at::normal(0.0, 1.0, x.sizes(), gen) * c.options.smooth_sigma * range);
    torch::Tensor xs = torch::cat(noisy);
    torch::Tensor g = input_gradients(c, xs, rows.repeat({samples}), base == "guidedbackprop");
    torch::Tensor maps = base == "inputxgradient" ? sum_abs_channels(xs * g) : max_abs_channels(g);
    return maps.reshape({samples, x.size(0), x.size(2), x.size(3)}).mean(0);
}

}  // namespace sightline::detail
