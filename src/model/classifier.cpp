// Loading a TorchScript classifier and running it split at the target layer.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/jit/passes/inliner.h>

#include "model/graph_split.hpp"
#include "sightline/device.hpp"
#include "sightline/model.hpp"
#include "sightline/script_errors.hpp"

namespace sightline {

namespace jit = torch::jit;

Classifier::Classifier(Classifier&&) noexcept = default;
Classifier& Classifier::operator=(Classifier&&) noexcept = default;
Classifier::~Classifier() = default;

namespace {

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

void check_logits(const torch::Tensor& logits, int64_t batch, const fs::path& path) {
    if (logits.dim() != 2 || logits.size(0) != batch)
        throw Error(fmt::format("{}: model output has shape {}; expected [batch={}, classes]",
                                path.string(), fmt::join(logits.sizes(), "x"), batch));
}

// Runs TorchScript code; its errors (multi-line interpreter traces) become one Error line
// naming the model file, with the model's own error.
template <typename F>
auto guarded(const fs::path& path, const char* what, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const Error&) {
        throw;
    } catch (const std::exception& e) {
        throw Error(fmt::format("{}: {} failed: {}", path.string(), what, script_error_line(e)));
    }
}

torch::Tensor as_tensor(const c10::IValue& v, const fs::path& path, const char* what) {
    if (!v.isTensor())
        throw Error(fmt::format("{}: {} returned {}, expected a tensor", path.string(), what,
                                v.tagKind()));
    return v.toTensor();
}

}  // namespace

Classifier Classifier::load(const fs::path& path) {
    if (!fs::exists(path)) throw Error(fmt::format("{}: no such model file", path.string()));
    jit::Module module;
    try {
        module = jit::load(path.string(), torch::Device(torch::kCPU));  // a file saved on a GPU loads too
    } catch (const c10::Error& e) {
        throw Error(fmt::format("{}: cannot load TorchScript model (truncated or not a "
                                "torch.jit.save file): {}",
                                path.string(), first_line(e.what_without_backtrace())));
    }
    return from_module(module, path);
}

Classifier Classifier::from_module(const jit::Module& module, const fs::path& name) {
    Classifier c;
    c.path_ = name;
    c.module_ = std::make_unique<jit::Module>(module);
    if (!c.module_->find_method("forward"))
        throw Error(fmt::format("{}: TorchScript module has no forward method", name.string()));
    check_single_input(*c.module_, name);
    c.module_->eval();
    // The weights live where the model runs (--device); inputs follow them in features/forward.
    if (!compute_device().is_cpu()) c.module_->to(compute_device());
    // Explanations differentiate with respect to activations and inputs, never weights.
    for (auto p : c.module_->parameters()) p.set_requires_grad(false);
    return c;
}

void Classifier::set_layer(const std::string& layer, const torch::Tensor& example) {
    split_.reset();
    // The whole model first: a model that fails on this input (a `raise` in forward, a shape
    // it does not accept) is reported with its own error, before its graph is cut. Not again
    // when it has just run on this shape (check_model_accepts before set_layer).
    if (example.sizes().vec() != ran_shape_) {
        torch::NoGradGuard no_grad;
        forward(example);
    }
    if (!layer.empty()) {
        split_ = std::make_unique<detail::SplitGraph>(
            detail::split_at_layer(*module_, layer, path_.string()));
        layer_ = detail::canonical_layer_name(*module_, layer);
        split_kind_ = SplitKind::kNamedLayer;
        return;
    }
    if (module_->find_method("features") && module_->find_method("head")) {
        layer_ = "features";
        split_kind_ = SplitKind::kModelMethods;
        return;
    }
    // The last direct child whose output is 4-D with more than one location (a 1x1 output,
    // like a global pool's, has no spatial map to show).
    std::vector<std::string> calls = detail::top_level_calls(*module_);
    for (auto it = calls.rbegin(); it != calls.rend(); ++it) {
        auto split = std::make_unique<detail::SplitGraph>(
            detail::split_at_layer(*module_, *it, path_.string()));
        split_ = std::move(split);
        torch::Tensor a = run_features(example, false).activations;
        if (a.dim() == 4 && a.size(2) * a.size(3) > 1) {
            layer_ = *it;
            split_kind_ = SplitKind::kAutoLayer;
            return;
        }
    }
    split_.reset();
    throw Error(fmt::format("{}: no submodule called from forward returns a 4-D activation with "
                            "a spatial extent; name one with --layer (available: {})",
                            path_.string(), fmt::join(submodule_names(), ", ")));
}

std::string Classifier::split_description() const {
    switch (split_kind_) {
        case SplitKind::kModelMethods: return "the model's own features() and head() methods";
        case SplitKind::kNamedLayer: return fmt::format("forward graph cut at layer '{}'", layer_);
        case SplitKind::kAutoLayer:
            return fmt::format("forward graph cut at layer '{}' (chosen automatically: the last "
                               "submodule with a 4-D output)", layer_);
    }
    return "";
}

FeatureOutput Classifier::run_features(const torch::Tensor& input, bool record_grad) const {
    const torch::Tensor x = to_compute(input);
    torch::AutoGradMode grad_mode(record_grad);
    FeatureOutput out;
    if (!split_) {
        out.activations = as_tensor(guarded(path_, "features()", [&] { return module_->get_method("features")({x}); }),
                                    path_, "features()");
    } else {
        jit::Stack stack{module_->_ivalue(), x};
        guarded(path_, "the forward pass up to the layer", [&] { split_->features->run(stack); });
        auto elements = stack.back().toTuple()->elements();
        out.activations = as_tensor(elements.at(0), path_, fmt::format("layer '{}'", layer_).c_str());
        out.extras.assign(elements.begin() + 1, elements.end());
    }
    return out;
}

FeatureOutput Classifier::features(const torch::Tensor& x, bool record_grad) const {
    FeatureOutput out = run_features(x, record_grad);
    if (out.activations.dim() != 4)
        throw Error(fmt::format("{}: activation at layer '{}' has shape {}; expected 4-D "
                                "[batch, channels, height, width]",
                                path_.string(), layer_, fmt::join(out.activations.sizes(), "x")));
    return out;
}

torch::Tensor Classifier::head(const torch::Tensor& activations,
                               const std::vector<c10::IValue>& extras) const {
    torch::Tensor logits;
    if (!split_) {
        logits = as_tensor(guarded(path_, "head()", [&] { return module_->get_method("head")({activations}); }),
                           path_, "head()");
    } else {
        jit::Stack stack{module_->_ivalue(), activations};
        stack.insert(stack.end(), extras.begin(), extras.end());
        guarded(path_, "the head", [&] { split_->head->run(stack); });
        logits = as_tensor(stack.back(), path_, "the model");
    }
    check_logits(logits, activations.size(0), path_);
    return logits;
}

torch::Tensor Classifier::forward(const torch::Tensor& input) const {
    const torch::Tensor x = to_compute(input);
    torch::Tensor logits = as_tensor(guarded(path_, "the forward pass", [&] { return module_->forward({x}); }),
                                     path_, "the model");
    check_logits(logits, x.size(0), path_);
    ran_shape_ = x.sizes().vec();
    return logits;
}

std::shared_ptr<jit::Graph> Classifier::inlined_forward_graph() const {
    auto graph = module_->get_method("forward").graph()->copy();
    jit::Inline(*graph);
    return graph;
}

std::shared_ptr<jit::Graph> Classifier::inlined_head_graph() const {
    auto graph = split_ ? split_->head->graph()->copy() : module_->get_method("head").graph()->copy();
    jit::Inline(*graph);
    return graph;
}

std::vector<std::string> Classifier::submodule_names() const {
    return detail::all_submodule_names(*module_);
}

std::vector<c10::IValue> repeat_extras(const std::vector<c10::IValue>& extras, int64_t times) {
    if (times == 1) return extras;
    std::vector<c10::IValue> out;
    out.reserve(extras.size());
    for (const auto& v : extras) {
        if (v.isTensor() && v.toTensor().dim() > 0) {
            torch::Tensor t = v.toTensor();
            std::vector<int64_t> reps(t.dim(), 1);
            reps[0] = times;
            out.emplace_back(t.repeat(reps));
        } else {
            out.push_back(v);
        }
    }
    return out;
}

}  // namespace sightline
