// Cutting a TorchScript forward graph at the output of a named submodule.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/script.h>

namespace sightline::detail {

// features: (self, x) -> Tuple(A, extras...); head: (self, A, extras...) -> logits.
struct SplitGraph {
    std::unique_ptr<torch::jit::GraphFunction> features;
    std::unique_ptr<torch::jit::GraphFunction> head;
    std::size_t num_extras = 0;
};

// Splits `module`'s forward at the output of the submodule with dotted path `layer` (indices
// such as "features[-1]" are accepted, see canonical_layer_name).
// Calls of the layer's ancestors are inlined until the layer's own call is at the top level.
// Values computed before the cut and used after it become head inputs when they depend on
// the model input (skip connections), and are recomputed in the head otherwise (attribute
// reads, constants). Inputs the head writes into in place are copied at its start. Throws
// sightline::Error when the layer does not exist (naming the closest names), is never called,
// is called inside a loop or branch, or is called more than once.
SplitGraph split_at_layer(const torch::jit::Module& module, const std::string& layer,
                          const std::string& model_name);

// The dotted path a layer name stands for: "layer4[-1]" -> "layer4.1" (an index picks a child
// by position, negative from the end, as pytorch-grad-cam's target_layers are written); the
// text itself when it names no submodule.
std::string canonical_layer_name(const torch::jit::Module& module, const std::string& layer);

// Dotted paths of the direct children called from forward, in call order.
std::vector<std::string> top_level_calls(const torch::jit::Module& module);

// Every submodule's dotted path, in definition order.
std::vector<std::string> all_submodule_names(const torch::jit::Module& module);

}  // namespace sightline::detail
