// Two-line rules: a raw map from activations A and gradients G = dy_c/dA, both [N,K,h,w].
// Formulas as pytorch-grad-cam 1.5.5 implements them (docs/methods.md, "Conventions").
#include <fmt/format.h>

#include "explain/context.hpp"
#include "explain/rules.hpp"

namespace sightline::detail {

namespace {


// First principal component of the centred (h*w, K) matrix of each map (EigenCAM).
// The SVD sign is arbitrary, as in the reference; ReLU then keeps one side.
torch::Tensor eigen_projection(const torch::Tensor& maps) {
    const int64_t n = maps.size(0), k = maps.size(1), h = maps.size(2), w = maps.size(3);
    torch::Tensor x = torch::nan_to_num(maps).reshape({n, k, h * w}).transpose(1, 2);  // [N,hw,K]
    x = x - x.mean(1, true);
    torch::Tensor vh = std::get<2>(torch::linalg::svd(x, false, c10::nullopt));                       // [N,K,K]
    return torch::matmul(x, vh.select(1, 0).unsqueeze(-1)).reshape({n, h, w});
}

}  // namespace

// Grad-CAM (Selvaraju et al. 2017): channel weights are the spatial mean of the gradient.
torch::Tensor grad_cam(MethodContext& c) {
    torch::Tensor uniform = c.uniform_gradient();
    return c.weighted_activation_sum(uniform.defined() ? uniform : c.gradient_rows().mean({2, 3}));
}

// HiResCAM (Draelos & Carin 2020): the gradient is not averaged.
torch::Tensor hires_cam(MethodContext& c) { return c.contribution_map(); }

// Grad-CAM element-wise: ReLU before the channel sum.
torch::Tensor grad_cam_elementwise(MethodContext& c) {
    return torch::relu(c.gradient_rows() * c.activation_rows()).sum(1);
}

// Grad-CAM++ (Chattopadhyay et al. 2018), equation 19 with first-order gradient powers.
torch::Tensor grad_cam_plus_plus(MethodContext& c) {
    torch::Tensor g = c.gradient_rows(), a = c.activation_rows();
    torch::Tensor g2 = g * g, g3 = g2 * g;
    torch::Tensor sum_a = a.sum({2, 3}, true);
    torch::Tensor alpha = g2 / (2 * g2 + sum_a * g3 + 1e-6);
    alpha = torch::where(g != 0, alpha, torch::zeros_like(alpha));
    return c.weighted_activation_sum((torch::relu(g) * alpha).sum({2, 3}));
}

// XGrad-CAM (Fu et al. 2020): activation-weighted gradient average.
torch::Tensor xgrad_cam(MethodContext& c) {
    torch::Tensor g = c.gradient_rows(), a = c.activation_rows();
    return c.weighted_activation_sum((g * a).sum({2, 3}) / (a.sum({2, 3}) + 1e-7));
}

// LayerCAM (Jiang et al. 2021): positive gradients weight each location.
torch::Tensor layer_cam(MethodContext& c) {
    return (torch::relu(c.gradient_rows()) * c.activation_rows()).sum(1);
}

// EigenCAM (Muhammad & Yeasin 2020): not class specific, no gradients.
torch::Tensor eigen_cam(MethodContext& c) { return eigen_projection(c.activation_rows()); }

// EigenGrad-CAM: the principal component of gradient x activation.
torch::Tensor eigen_grad_cam(MethodContext& c) {
    return eigen_projection(c.gradient_rows() * c.activation_rows());
}

// CAM (Zhou et al. 2016): sum_k w_ck A_k. On a GAP -> Linear head dy_c/dA_kij = w_ck / (h w)
// at every location, so the class weights are read from the gradient (verified by the head
// analysis) without relying on weight names.
torch::Tensor cam(MethodContext& c) {
    if (c.head.kind != HeadKind::kGapLinear)
        throw UsageError(fmt::format(
            "{}: method 'cam' needs a global-average-pooling -> Linear head; this model's head is "
            "{}. Use 'hirescam' (exact on any linear head) instead",
            c.model.path().string(), c.head.description));
    torch::Tensor a = c.activation_rows();
    return hires_cam(c) * static_cast<double>(a.size(2) * a.size(3));
}

}  // namespace sightline::detail
