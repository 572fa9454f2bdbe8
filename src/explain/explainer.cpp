// The "base CAM": one forward, one head backward, then every requested method's rule.
#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "explain/chain_head.hpp"
#include "explain/context.hpp"
#include "sightline/device.hpp"

namespace sightline {

namespace detail {
torch::Tensor choose_targets(const TargetSpec& spec, const torch::Tensor& logits);
}

Explainer::Explainer(const Classifier& model, ExplainOptions options)
    : model_(model), options_(std::move(options)) {}

torch::Tensor Explainer::head_bias(const torch::Tensor& a_rows, const std::vector<c10::IValue>& extras) {
    if (!extras.empty()) return model_.head(torch::zeros_like(a_rows), extras);
    // Without extras head(0) is a constant of the model: one row, computed once per shape.
    std::vector<int64_t> shape(a_rows.sizes().begin() + 1, a_rows.sizes().end());
    if (!bias_row_ || bias_shape_ != shape) {
        shape.insert(shape.begin(), 1);
        bias_row_ = model_.head(torch::zeros(shape, a_rows.options()), {});
        shape.erase(shape.begin());
        bias_shape_ = shape;
    }
    return bias_row_->expand({a_rows.size(0), bias_row_->size(1)});
}

const HeadAnalysis& Explainer::head_analysis(const torch::Tensor& x) {
    if (!head_) head_ = analyse_head(model_, x);
    return *head_;
}

namespace {

// Every tensor of the explanation in host memory, where its readers (maps, JSON, PNGs) are.
void to_host(Explanation& e) {
    e.logits = e.logits.cpu();
    e.targets = e.targets.cpu();
    e.completeness_residual = e.completeness_residual.cpu();
    for (MethodMaps& m : e.methods) {
        m.raw = m.raw.cpu();
        m.maps = m.maps.cpu();
        m.mass_on_unused = m.mass_on_unused.cpu();
    }
}

}  // namespace

Explanation Explainer::explain(const torch::Tensor& input, const TargetSpec& target_spec,
                               const std::vector<std::string>& method_keys,
                               const std::vector<std::string>& sources) {
    const torch::Tensor x = to_compute(input);  // every method works where the model runs
    if (x.dim() != 4 || x.size(1) != 3)
        throw Error(fmt::format("{}: input tensor has shape {}; expected [batch, 3, height, width]",
                                sources.empty() ? "input" : sources.front(), fmt::join(x.sizes(), "x")));
    detail::check_finite(x, sources, "input values");
    std::vector<const MethodInfo*> methods;
    for (const auto& key : method_keys) methods.push_back(&find_method(key));

    const HeadAnalysis& head = head_analysis(x.slice(0, 0, 1));
    MethodContext ctx{model_, options_, head, x, {}, sources, model_.features(x), {}, {}, {}, {}};
    detail::check_finite(ctx.features.activations, sources,
                         fmt::format("activations at layer '{}'", model_.layer()));
    const bool layer_gradients_wanted = std::any_of(methods.begin(), methods.end(), [](const MethodInfo* m) {
        return m->needs_gradient && m->space == MapSpace::kFeature;
    });
    const int64_t k_known = target_spec.kind == TargetSpec::kTopK ? target_spec.k
                            : target_spec.kind == TargetSpec::kAll   ? 0
                                                                     : 1;
    torch::Tensor chain_logits;
    if (layer_gradients_wanted && ctx.features.extras.empty()) {
        if (!chain_checked_) {
            chain_ = detail::ChainHead::compile(model_.inlined_head_graph(), model_.module()._ivalue());
            chain_checked_ = true;
        }
        if (chain_) chain_logits = chain_->forward(ctx.features.activations);
    }
    std::string head_gradients = layer_gradients_wanted ? "autograd" : "";
    if (chain_logits.defined()) {
        // The head is a chain of Linear / ReLU / pooling / reshape steps: one forward row per
        // image, then the k target rows backward by hand (one matrix product per Linear).
        ctx.logits = chain_logits;
        detail::check_finite(ctx.logits, sources, "logits");
        ctx.targets = detail::choose_targets(target_spec, ctx.logits);
        ctx.set_computed_gradients(chain_->gradients(ctx.targets));
        head_gradients = "chain";
    } else if (layer_gradients_wanted && k_known > 0) {
        // One head pass with autograd over the (image, target) rows gives the logits and the
        // gradients; a separate no-grad pass for the logits would read the head's weights
        // again (on VGG-16 the head is 120M parameters).
        const torch::Tensor& a = ctx.features.activations;
        torch::Tensor a_rows = (k_known == 1 ? a : a.repeat_interleave(k_known, 0)).detach().requires_grad_(true);
        torch::Tensor logits_rows = model_.head(a_rows, repeat_extras(ctx.features.extras, k_known));
        ctx.logits = logits_rows.detach().reshape({x.size(0), k_known, -1}).select(1, 0);
        detail::check_finite(ctx.logits, sources, "logits");
        ctx.targets = detail::choose_targets(target_spec, ctx.logits);
        ctx.set_gradients(a_rows, logits_rows);
    } else {
        torch::NoGradGuard no_grad;
        ctx.logits = model_.head(ctx.features.activations, ctx.features.extras);
        detail::check_finite(ctx.logits, sources, "logits");
        ctx.targets = detail::choose_targets(target_spec, ctx.logits);
    }

    Explanation out;
    out.head_gradients = head_gradients;
    out.logits = ctx.logits;
    out.targets = ctx.targets;
    const int64_t batch = x.size(0), k = ctx.k(), height = x.size(2), width = x.size(3);
    for (const MethodInfo* method : methods) {
        auto start = std::chrono::steady_clock::now();
        torch::Tensor raw = method->function(ctx);
        MethodMaps maps;
        maps.key = method->key;
        maps.maps = normalise_maps(raw, height, width).reshape({batch, k, height, width});
        maps.raw = raw.reshape({batch, k, raw.size(-2), raw.size(-1)});
        maps.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        out.methods.push_back(std::move(maps));
    }

    out.completeness_residual = torch::full({batch, k}, std::nan(""), x.options().dtype(torch::kFloat64));
    // Each location's exact contribution to the logit on a linear head (HiResCAM's raw map),
    // [rows, h, w]: computed once for the completeness check and every method's mass on unused
    // locations.
    torch::Tensor contribution;
    if (ctx.has_gradients()) {
        // sum_ij HiResCAM = logit - bias on a linear head, bias = head(0) (HiResCAM paper).
        torch::NoGradGuard no_grad;
        contribution = ctx.contribution_map();
        torch::Tensor bias = head_bias(ctx.features.activations.slice(0, 0, 1).expand(
                                           {batch * k, -1, -1, -1}),
                                       repeat_extras(ctx.features.extras, k));
        torch::Tensor rows = ctx.target_rows().unsqueeze(1);
        torch::Tensor logit = ctx.logits.repeat_interleave(k, 0).gather(1, rows).squeeze(1);
        out.completeness_residual =
            (contribution.sum({1, 2}).to(torch::kFloat64) - (logit - bias.gather(1, rows).squeeze(1)).to(torch::kFloat64))
                .reshape({batch, k});
    }
    for (MethodMaps& maps : out.methods) {
        maps.mass_on_unused = torch::full({batch, k}, std::nan(""), x.options().dtype(torch::kFloat64));
        if (!contribution.defined() || head.kind == HeadKind::kNonLinear) continue;
        torch::NoGradGuard no_grad;
        if (maps.raw.size(-2) != contribution.size(-2) || maps.raw.size(-1) != contribution.size(-1)) continue;
        const torch::Tensor mass = torch::relu(maps.raw.reshape(contribution.sizes()).to(torch::kFloat64));
        const torch::Tensor total = mass.sum({1, 2});
        const torch::Tensor unused = (mass * (contribution <= 0)).sum({1, 2});
        maps.mass_on_unused = torch::where(total > 0, unused / total, torch::full_like(total, std::nan("")))
                                  .reshape({batch, k});
    }
    to_host(out);
    return out;
}

std::pair<torch::Tensor, torch::Tensor> layer_gradients(const Classifier& model, const torch::Tensor& x,
                                                        const torch::Tensor& targets) {
    HeadAnalysis unused;
    ExplainOptions options;
    MethodContext ctx{model, options, unused, x, targets, {}, model.features(x), {}, {}, {}, {}};
    return {ctx.activation_rows(), ctx.gradient_rows()};
}

std::string to_string(Guarantee guarantee) {
    switch (guarantee) {
        case Guarantee::kCamArchitecture: return "exact on GAP -> Linear heads";
        case Guarantee::kLinearHead: return "exact on heads linear in the activations";
        case Guarantee::kNone: return "none (heuristic)";
        case Guarantee::kFailsSanity: return "none; fails model-randomisation sanity checks";
    }
    return "";
}

GuaranteeStatus guarantee_status(const MethodInfo& method, const HeadAnalysis& head) {
    const std::string key = method.key;
    switch (method.guarantee) {
        case Guarantee::kLinearHead:
            if (head.kind != HeadKind::kNonLinear)
                return {true, "holds: the head is linear in the activations, so each location's value "
                              "is its exact contribution to the logit"};
            return {false, "does not hold: the head is non-linear in the activations"};
        case Guarantee::kCamArchitecture:
            if (head.kind == HeadKind::kGapLinear)
                return {true, key == "cam" ? "holds: GAP -> Linear head, CAM is the exact class map"
                                           : "holds: on a GAP -> Linear head Grad-CAM equals CAM and HiResCAM"};
            return {false, key == "gradcam"
                               ? "does not hold: without GAP -> Linear, Grad-CAM's averaged gradient can "
                                 "highlight locations the model does not use"
                               : "does not hold: the head is not GAP -> Linear"};
        case Guarantee::kNone:
            return {false, "none: a heuristic without a faithfulness guarantee"};
        case Guarantee::kFailsSanity:
            return {false, "none: fails model-randomisation sanity checks (Adebayo et al. 2018); "
                           "behaves like an edge detector"};
    }
    return {};
}

}  // namespace sightline
