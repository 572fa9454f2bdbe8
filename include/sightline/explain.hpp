// Explanation methods: CAM, HiResCAM, the Grad-CAM family, gradient saliency, guided
// backprop and perturbation methods, listed in one registry table.
//
// Shapes: x [B,3,H,W] (normalised input); targets [B,k] class indices (k targets per image);
// raw maps [B,k,h,w] (feature resolution for layer methods, input resolution for input
// methods); final maps [B,k,H,W] in [0,1], computed as pytorch-grad-cam does:
// final = minmax(resize(minmax(relu(raw)))), minmax(m) = (m - min) / (max + 1e-7) after the
// shift, resize = bilinear with half-pixel centres.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "sightline/model.hpp"

namespace sightline {

// What a method promises, independent of the model. Whether it holds for a model is decided
// by the head analysis (guarantee_status).
enum class Guarantee {
    kCamArchitecture,  // exact class map on a GAP -> Linear head (CAM; Grad-CAM equals it there)
    kLinearHead,       // exact per-location contribution on any head linear in A (HiResCAM)
    kNone,             // heuristic: no faithfulness guarantee
    kFailsSanity,      // known to fail model-randomisation checks (behaves like an edge detector)
};

enum class MapSpace { kFeature, kInput };

struct ExplainOptions {
    int score_batch = 16;            // Score-CAM masked forwards per batch (as the peer)
    int ablation_batch = 32;         // Ablation-CAM head evaluations per batch (as the peer)
    int ig_steps = 32;               // integrated gradients: midpoint Riemann steps
    int smooth_samples = 25;         // SmoothGrad: noisy samples
    double smooth_sigma = 0.15;      // SmoothGrad: noise std as a fraction of (max - min) of x
    std::string smooth_base = "saliency";  // saliency | inputxgradient | guidedbackprop
    int occlusion_window = 16;       // occlusion: square window side in pixels
    int occlusion_stride = 8;        // occlusion: window stride in pixels
    int input_batch = 16;            // forwards per batch for IG / SmoothGrad / occlusion
    uint64_t seed = 0;               // SmoothGrad noise
    // Input value of a "black" pixel per channel (for integrated gradients' baseline), i.e.
    // (0 - mean) / std of the preprocessing; empty = 0 in every channel.
    std::vector<float> black;
};

struct MethodContext;  // defined in src/explain/context.hpp
using MethodFunction = torch::Tensor (*)(MethodContext&);  // returns raw maps [B*k, h, w]

struct MethodInfo {
    const char* key;          // CLI key, pytorch-grad-cam's where it has the method
    const char* title;
    const char* paper;
    bool needs_gradient;
    bool class_specific;      // false for EigenCAM: one map whatever the target
    Guarantee guarantee;
    MapSpace space;
    MethodFunction function;
};

// The registry: every method, in the order `sightline list` shows them.
const std::vector<MethodInfo>& explanation_methods();
// Throws UsageError listing the keys for an unknown key.
const MethodInfo& find_method(const std::string& key);

// Which targets to explain.
struct TargetSpec {
    enum Kind { kTopK, kIndex, kAll, kPerImage } kind = kTopK;
    int64_t k = 1;       // kTopK
    int64_t index = 0;   // kIndex
    std::vector<int64_t> indices;  // kPerImage: one class per image of the batch (the Python API)
};
// Parses top1 | topK | <index> | <class name> | all; names are looked up in `class_names`.
TargetSpec parse_target(const std::string& text, const std::vector<std::string>& class_names);

// Whether a method's guarantee holds for a model with this head.
struct GuaranteeStatus {
    bool holds = false;
    std::string statement;  // one sentence for people and summary.json
};
GuaranteeStatus guarantee_status(const MethodInfo& method, const HeadAnalysis& head);

struct MethodMaps {
    std::string key;
    torch::Tensor raw;    // [B,k,h,w] as the method computed it
    torch::Tensor maps;   // [B,k,H,W] in [0,1]
    double seconds = 0;
    // [B,k] float64: the share of the method's positive mass (its ReLU'd raw map) on locations
    // whose exact contribution to the logit (HiResCAM's raw map) is <= 0, i.e. where the model's
    // computation did not raise the score (HiResCAM paper: Grad-CAM's averaged gradient can put
    // mass there). Exact contributions exist only for heads linear in the activations, so NaN
    // on a non-linear head, for maps not at the layer's resolution, and for maps without
    // positive mass.
    torch::Tensor mass_on_unused;
};

struct Explanation {
    torch::Tensor logits;       // [B,C]
    torch::Tensor targets;      // [B,k] int64
    // Per (image, target): sum of raw HiResCAM - (logit - head bias). Zero up to rounding on
    // linear heads; NaN when no gradient method ran.
    torch::Tensor completeness_residual;  // [B,k] float64
    std::vector<MethodMaps> methods;
    // How the layer gradients were made: "chain" (one head row per image and a hand-written
    // k-row backward, for heads of Linear / ReLU / pooling / reshape steps), "autograd" (the
    // head repeated per target row), or "" (no gradient method ran).
    std::string head_gradients;
};

namespace detail {
class ChainHead;
}

// Runs methods on one batch, sharing the forward pass and the head backward between them.
class Explainer {
public:
    Explainer(const Classifier& model, ExplainOptions options = {});
    // `sources` names each image of the batch in error messages (file names); empty = "input i".
    Explanation explain(const torch::Tensor& x, const TargetSpec& targets,
                        const std::vector<std::string>& method_keys,
                        const std::vector<std::string>& sources = {});
    // The head analysis, computed on the first batch explained (or on `x` if given first).
    const HeadAnalysis& head_analysis(const torch::Tensor& x);

private:
    // head(0) for the completeness check, [rows, C].
    torch::Tensor head_bias(const torch::Tensor& a_rows, const std::vector<c10::IValue>& extras);

    const Classifier& model_;
    ExplainOptions options_;
    std::optional<HeadAnalysis> head_;
    std::optional<torch::Tensor> bias_row_;  // head(0) of one row when the head has no extras
    std::vector<int64_t> bias_shape_;        // the [K,h,w] it was computed for
    std::shared_ptr<detail::ChainHead> chain_;  // null: the head is not a chain (autograd)
    bool chain_checked_ = false;
};

// The head-only gradient the gradient methods use: A = features(x) and G = d logit[target]/dA
// for each (image, target) row, [B*k,K,h,w]; targets [B,k].
std::pair<torch::Tensor, torch::Tensor> layer_gradients(const Classifier& model, const torch::Tensor& x,
                                                        const torch::Tensor& targets);

// final = minmax(resize(minmax(relu(raw)))) per map; raw [N,h,w] -> [N,H,W].
torch::Tensor normalise_maps(const torch::Tensor& raw, int64_t height, int64_t width);
// Per-map (m - min) / (max + 1e-7) after the shift, as pytorch-grad-cam's scale_cam_image.
torch::Tensor minmax_maps(const torch::Tensor& maps);

std::string to_string(Guarantee guarantee);

}  // namespace sightline
