// Every method function of the registry; each returns raw maps [B*k, h, w].
#pragma once

#include <torch/torch.h>

namespace sightline {
struct MethodContext;
}

namespace sightline::detail {

// rules.cpp: two-line rules on activations and head gradients.
torch::Tensor cam(MethodContext& c);
torch::Tensor hires_cam(MethodContext& c);
torch::Tensor grad_cam(MethodContext& c);
torch::Tensor grad_cam_elementwise(MethodContext& c);
torch::Tensor grad_cam_plus_plus(MethodContext& c);
torch::Tensor xgrad_cam(MethodContext& c);
torch::Tensor layer_cam(MethodContext& c);
torch::Tensor eigen_cam(MethodContext& c);
torch::Tensor eigen_grad_cam(MethodContext& c);
// score_cam.cpp, ablation_cam.cpp: gradient-free channel weights.
torch::Tensor score_cam(MethodContext& c);
torch::Tensor ablation_cam(MethodContext& c);
// input_methods.cpp: gradients with respect to the input pixels.
torch::Tensor saliency(MethodContext& c);
torch::Tensor input_x_gradient(MethodContext& c);
torch::Tensor integrated_gradients(MethodContext& c);
torch::Tensor smooth_grad(MethodContext& c);
// guided_backprop.cpp
torch::Tensor guided_backprop(MethodContext& c);
torch::Tensor guided_grad_cam(MethodContext& c);
// occlusion.cpp
torch::Tensor occlusion(MethodContext& c);

}  // namespace sightline::detail
