// What a method sees: the model, the input, the targets, and the layer pass shared by all
// methods of one explain() call (computed on first use).
#pragma once

#include <memory>
#include <optional>

#include <torch/csrc/jit/api/function_impl.h>

#include "sightline/explain.hpp"

namespace sightline {

struct MethodContext {
    const Classifier& model;
    const ExplainOptions& options;
    const HeadAnalysis& head;
    torch::Tensor input;      // x [B,3,H,W]
    torch::Tensor targets;    // [B,k]
    std::vector<std::string> sources;  // one name per image, for messages
    FeatureOutput features;   // A [B,K,h,w] and the head's extra inputs
    torch::Tensor logits;     // [B,C]

    int64_t k() const { return targets.size(1); }
    // Rows are (image, target) pairs, image-major: row r is image r / k.
    torch::Tensor target_rows() const { return targets.reshape({-1}); }
    torch::Tensor activation_rows();   // A repeated per target [B*k,K,h,w]
    torch::Tensor gradient_rows();     // d logit[target] / dA, [B*k,K,h,w]
    torch::Tensor input_rows() const;  // x repeated per target [B*k,3,H,W]
    bool has_gradients() const { return gradients_.has_value(); }
    // Takes the gradients from a head pass that recorded autograd: a_rows [B*k,K,h,w] (a leaf
    // requiring grad) and its logits [B*k,C]; `targets` must be set.
    void set_gradients(const torch::Tensor& a_rows, const torch::Tensor& logits_rows);
    // Takes gradients computed without autograd (the chain head): A per row and G, both [B*k,...].
    // A is repeated per row only when a method asks for activation_rows().
    void set_computed_gradients(const torch::Tensor& gradients);
    // The gradient's per-channel value [B*k,K] when it is the same at every position (a
    // global-pooling head's, which the chain head keeps as a stride-0 view); undefined otherwise.
    torch::Tensor uniform_gradient();
    // sum_c weights[r,c] * A[image of r, c] -> [B*k,h,w], one batched matrix product over the
    // B activations instead of a product over A repeated k times.
    torch::Tensor weighted_activation_sum(const torch::Tensor& weights) const;
    // Each location's contribution sum_c G * A [B*k,h,w] (HiResCAM's raw map).
    torch::Tensor contribution_map();

    // Forward with every ReLU replaced by the guided-backprop rule (built on first use).
    std::shared_ptr<torch::jit::GraphFunction> guided_forward;

    // Caches behind the accessors above.
    std::optional<torch::Tensor> activation_rows_;
    std::optional<torch::Tensor> gradients_;
    std::optional<torch::Tensor> contribution_;
};

}  // namespace sightline

namespace sightline::detail {

// Throws Error when `t` (batch-major, `rows_per_image` rows per image) holds NaN or Inf,
// naming the first image that has them and what they are.
void check_finite(const torch::Tensor& t, const std::vector<std::string>& sources,
                  const std::string& what, int64_t rows_per_image = 1);

// d sum_r y[r, targets[r]] / d x for inputs x [N,3,H,W], evaluated in batches. `guided`
// uses the guided-backprop ReLU rule. Returns [N,3,H,W].
torch::Tensor input_gradients(MethodContext& ctx, const torch::Tensor& x, const torch::Tensor& targets,
                              bool guided = false);

// The model's logits with guided-backprop ReLUs (guided_backprop.cpp).
torch::Tensor guided_logits(MethodContext& c, const torch::Tensor& x);

}  // namespace sightline::detail
