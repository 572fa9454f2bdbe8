// A TorchScript classifier split at a target layer into features(x) -> A and head(A) -> logits.
//
// Shapes: x [B,3,H,W] float32 (already normalised); A [B,K,h,w] activations of the target
// layer; logits [B,C]. The backbone runs without autograd; gradients are taken with respect
// to A only, so a gradient CAM costs one forward plus a head backward.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/script.h>

#include "sightline/core.hpp"

namespace sightline {

// How the split was made, for messages and summary.json.
enum class SplitKind {
    kModelMethods,  // the model's own `features` and `head` methods
    kNamedLayer,    // the forward graph cut at the output of `--layer NAME`
    kAutoLayer,     // the last submodule whose output is 4-D with a spatial extent > 1x1
};

// Activations of the target layer plus the values the head also needs (skip connections
// computed before the cut). The extras are inputs of the head, never differentiated.
struct FeatureOutput {
    torch::Tensor activations;          // A [B,K,h,w]
    std::vector<c10::IValue> extras;    // batch-major tensors or constants
};

namespace detail {
struct SplitGraph;
}

class Classifier {
public:
    // Loads a torch.jit.trace / torch.jit.script classifier. Throws Error naming the file for
    // a missing or truncated file or one that is not TorchScript.
    static Classifier load(const fs::path& path);
    // The same for a module already in memory (the Python binding's ScriptModule), shared, not
    // copied: it is set to eval mode and its parameters to requires_grad(false), as load()
    // does. `name` stands for the file in messages.
    static Classifier from_module(const torch::jit::Module& module, const fs::path& name);

    // Chooses the split. `layer` is a dotted submodule path ("layer4", "features.29"); empty
    // means the model's features/head methods if it has them, else the last 4-D activation,
    // found by running `example` (a [1,3,H,W] input). Throws Error for an unknown layer,
    // listing the available names, and for an activation that is not 4-D.
    void set_layer(const std::string& layer, const torch::Tensor& example);

    const std::string& layer() const { return layer_; }
    SplitKind split_kind() const { return split_kind_; }
    std::string split_description() const;
    const fs::path& path() const { return path_; }

    // features(x), under no-grad unless `record_grad` (tests use it to chain gradients).
    FeatureOutput features(const torch::Tensor& x, bool record_grad = false) const;
    // head(A, extras) with autograd recording (A may require grad). Checks [B,C] output.
    torch::Tensor head(const torch::Tensor& activations, const std::vector<c10::IValue>& extras) const;
    // The whole model, x -> logits (autograd as the caller's grad mode says).
    torch::Tensor forward(const torch::Tensor& x) const;

    // The head's graph (self, A, extras...) -> logits with every call inlined.
    std::shared_ptr<torch::jit::Graph> inlined_head_graph() const;
    // The forward graph with every call inlined (for guided backprop's ReLU rewrite).
    std::shared_ptr<torch::jit::Graph> inlined_forward_graph() const;
    torch::jit::Module& module() { return *module_; }
    const torch::jit::Module& module() const { return *module_; }

    // Dotted names of every submodule, in definition order (for error messages and listing).
    std::vector<std::string> submodule_names() const;

    Classifier(Classifier&&) noexcept;
    Classifier& operator=(Classifier&&) noexcept;
    ~Classifier();

private:
    Classifier() = default;
    // features() without the 4-D check (the automatic layer search probes 2-D outputs too).
    FeatureOutput run_features(const torch::Tensor& x, bool record_grad) const;
    fs::path path_;
    std::unique_ptr<torch::jit::Module> module_;
    std::string layer_;
    SplitKind split_kind_ = SplitKind::kModelMethods;
    std::unique_ptr<detail::SplitGraph> split_;
    // The input shape of the last forward that succeeded: set_layer skips its own check run
    // when the caller has just run the model on an input of that shape.
    mutable std::vector<int64_t> ran_shape_;
};

// Repeats every batch-major tensor in `extras` `times` times along dim 0 (for explaining
// several targets of one image from one forward).
std::vector<c10::IValue> repeat_extras(const std::vector<c10::IValue>& extras, int64_t times);

// ---- what holds for this model: the head analysis of `sightline inspect` -------------------

enum class HeadKind {
    kGapLinear,      // global average pooling then one Linear: the CAM architecture
    kLinear,         // any head linear in A, e.g. flatten -> one Linear
    kNonLinear,      // deeper head: no guarantee
};

struct HeadAnalysis {
    HeadKind kind;
    std::string description;      // e.g. "GAP -> Linear(512, 10)"
    std::vector<std::string> ops; // the head's compute operations in order
    // Completeness check on the given input: |sum(raw HiResCAM) - (logit - bias)| / max(1,|logit|)
    // for the top-1 class of each image, bias = head(0). Only meaningful for linear heads.
    double completeness_residual = 0.0;
    bool gradient_constant_in_a = false;   // dy/dA unchanged when A changes: the head is affine
    bool gradient_spatially_uniform = false;  // dy/dA constant over (i,j): GAP-type head
    std::vector<std::string> guarantees;   // human-readable statements that hold
};

// Analyses the head of `model` numerically at `x` (structure from the head's graph, checked
// by gradients at A and at a perturbed A).
HeadAnalysis analyse_head(const Classifier& model, const torch::Tensor& x);
std::string to_string(HeadKind kind);

}  // namespace sightline
