// What holds for this model: is the head linear in A, and is its gradient spatially uniform?
// Structure is read from the head's graph; the claims are checked with gradients.
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/jit/ir/ir.h>

#include "sightline/model.hpp"

namespace sightline {

namespace {

// Operations that only move or reshape data, or do nothing at inference time.
bool is_bookkeeping(const std::string& op) {
    static const std::set<std::string> kSkip = {
        "flatten", "view", "reshape", "squeeze", "unsqueeze", "contiguous", "dropout", "dropout_",
        "size", "dim", "Int", "Float", "to", "detach", "clone", "__getitem__", "len", "format",
        "warn", "eq", "ne", "__is__", "__isnot__", "__not__", "list", "numel", "select", "mul",
        "floordiv", "add", "sub", "__derive_index", "__range_length", "append", "slice", "copy_"};
    return kSkip.count(op) > 0;
}

std::vector<std::string> compute_ops(torch::jit::Graph& graph) {
    std::vector<std::string> ops;
    for (torch::jit::Node* n : graph.nodes()) {
        if (n->kind().is_prim()) continue;
        std::string op = n->kind().toUnqualString();
        // Tensor-valued adds / muls are real compute (e.g. a residual), scalar ones are not.
        bool tensor_op = !n->outputs().empty() && n->output()->type()->isSubtypeOf(*c10::TensorType::get());
        if (is_bookkeeping(op) && !(tensor_op && (op == "add" || op == "mul" || op == "sub"))) continue;
        ops.push_back(op);
    }
    return ops;
}

// d sum_b logits[b, cls[b]] / dA at `a`.
torch::Tensor head_gradient(const Classifier& model, const torch::Tensor& a,
                            const std::vector<c10::IValue>& extras, const torch::Tensor& cls) {
    torch::Tensor leaf = a.detach().requires_grad_(true);
    torch::Tensor logits = model.head(leaf, extras);
    torch::Tensor score = logits.gather(1, cls.unsqueeze(1)).sum();
    torch::Tensor g = torch::autograd::grad({score}, {leaf}, {}, false, false, true)[0];
    return g.defined() ? g : torch::zeros_like(a);
}

bool close(const torch::Tensor& a, const torch::Tensor& b) {
    double scale = std::max(a.abs().max().item<double>(), 1e-12);
    return (a - b).abs().max().item<double>() <= 1e-5 * scale;
}

}  // namespace

std::string to_string(HeadKind kind) {
    switch (kind) {
        case HeadKind::kGapLinear: return "gap_linear";
        case HeadKind::kLinear: return "linear";
        case HeadKind::kNonLinear: return "nonlinear";
    }
    return "";
}

HeadAnalysis analyse_head(const Classifier& model, const torch::Tensor& x) {
    HeadAnalysis out;
    out.ops = compute_ops(*model.inlined_head_graph());
    FeatureOutput f = model.features(x);
    torch::Tensor a = f.activations;
    torch::Tensor logits, bias;
    {
        torch::NoGradGuard no_grad;
        logits = model.head(a, f.extras);
        bias = model.head(torch::zeros_like(a), f.extras);
    }
    torch::Tensor cls = logits.argmax(1);
    torch::Tensor g = head_gradient(model, a, f.extras, cls);
    // Probe A at other points: a head linear in A has the same gradient everywhere.
    // Its own generator (seed 0): the caller's global one (in Python, torch's) stays untouched.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
    // Drawn on the host (the generator's device), then moved to where the model runs.
    const auto host = a.options().device(torch::kCPU);
    torch::Tensor probe_scaled = a * at::rand(a.sizes(), gen, host).to(a.device()) * 2;
    torch::Tensor probe_negated = -a - at::rand(a.sizes(), gen, host).to(a.device());
    out.gradient_constant_in_a = close(g, head_gradient(model, probe_scaled, f.extras, cls)) &&
                                 close(g, head_gradient(model, probe_negated, f.extras, cls));
    out.gradient_spatially_uniform = close(g, g.mean({2, 3}, true).expand_as(g));
    torch::Tensor target_logit = logits.gather(1, cls.unsqueeze(1)).squeeze(1);
    torch::Tensor target_bias = bias.gather(1, cls.unsqueeze(1)).squeeze(1);
    torch::Tensor contribution = (g * a).sum({1, 2, 3}).to(torch::kFloat64);
    torch::Tensor expected = (target_logit - target_bias).to(torch::kFloat64);
    torch::Tensor scale = target_logit.abs().to(torch::kFloat64).clamp_min(1.0);
    out.completeness_residual = ((contribution - expected).abs() / scale).max().item<double>();

    const bool linear = out.gradient_constant_in_a && out.completeness_residual < 1e-4;
    std::string chain = out.ops.empty() ? "identity" : fmt::format("{}", fmt::join(out.ops, " -> "));
    if (linear && out.gradient_spatially_uniform) {
        out.kind = HeadKind::kGapLinear;
        out.description = fmt::format("global average pooling then one linear layer ({})", chain);
        out.guarantees = {
            "HiResCAM is exact: each location's map value is its contribution to the logit, and "
            "the raw map sums to logit - bias",
            "CAM, Grad-CAM and HiResCAM are equal up to scale (the gradient is constant over "
            "locations)"};
    } else if (linear) {
        out.kind = HeadKind::kLinear;
        out.description = fmt::format("linear in the activations, location-dependent weights ({})", chain);
        out.guarantees = {
            "HiResCAM is exact: each location's map value is its contribution to the logit, and "
            "the raw map sums to logit - bias",
            "Grad-CAM is not faithful here: it averages the gradient over locations and can "
            "highlight locations the model does not use"};
    } else {
        out.kind = HeadKind::kNonLinear;
        out.description = fmt::format("non-linear in the activations ({})", chain);
        out.guarantees = {};
    }
    return out;
}

}  // namespace sightline
