// Heads that are one chain of simple operations (Linear, ReLU, ReLU6, dropout at inference,
// flatten/view, global or block average pooling, mean): their gradients for k target classes
// come from ONE forward row per image and a k-row backward written out by hand. Autograd would
// need the forward repeated for every target row (it cannot push k gradients through a graph
// recorded for one row), and on VGG-16 that forward is a 103M-weight matrix product.
#pragma once

#include <memory>
#include <vector>

#include <torch/csrc/jit/ir/ir.h>
#include <torch/script.h>

namespace sightline::detail {

class ChainHead {
public:
    // A chain for the head graph (inputs: self, A; output: logits), or null when the graph
    // holds any other tensor operation or extra input: the caller then uses autograd.
    static std::shared_ptr<ChainHead> compile(std::shared_ptr<torch::jit::Graph> graph, c10::IValue self);

    // Runs the head on A [B,...] without autograd and keeps what the backward needs. Returns
    // logits [B,C], or an undefined tensor when this input leaves the chain's assumptions (a
    // dropout in training mode, a pooling that is not into equal blocks).
    torch::Tensor forward(const torch::Tensor& a);
    // After forward: d logits[b, targets[b,j]] / dA for every (b, j), [B*k, ...] image-major.
    torch::Tensor gradients(const torch::Tensor& targets) const;

private:
    enum class Kind { kIdentity, kReshape, kLinear, kRelu, kClamp, kBlockPool, kMean };
    struct Step {
        torch::jit::Node* node;
        Kind kind;
        // Filled by forward():
        std::vector<int64_t> input_shape;
        torch::Tensor saved;  // Linear: weight; ReLU / clamp: the mask of passing entries [B,...]
        std::vector<int64_t> dims;  // mean: reduced dims (of the input); block pool: kh, kw
        bool keepdim = false;
    };
    std::shared_ptr<torch::jit::Graph> graph_;
    c10::IValue self_;
    std::vector<Step> steps_;
    int64_t classes_ = 0;  // width of the last forward's logits
    torch::TensorOptions logits_options_;  // their dtype and device (the gradients' too)
};

}  // namespace sightline::detail
