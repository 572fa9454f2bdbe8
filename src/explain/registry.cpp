// The one table of explanation methods: the CLI's --method choices, `sightline list`, the
// docs (docs/methods.md, via `sightline list --markdown`) and the test sweep all read it.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "explain/rules.hpp"
#include "sightline/explain.hpp"

namespace sightline {

namespace {
using G = Guarantee;
constexpr MapSpace kF = MapSpace::kFeature;
constexpr MapSpace kI = MapSpace::kInput;
}  // namespace

const std::vector<MethodInfo>& explanation_methods() {
    using namespace detail;
    static const std::vector<MethodInfo> kMethods = {
        // key, title, paper, needs gradient, class specific, guarantee, space, function
        {"cam", "CAM", "Zhou et al. 2016, arXiv:1512.04150", true, true, G::kCamArchitecture, kF, cam},
        {"hirescam", "HiResCAM", "Draelos & Carin 2020, arXiv:2011.08891", true, true, G::kLinearHead, kF, hires_cam},
        {"gradcam", "Grad-CAM", "Selvaraju et al. 2017, arXiv:1610.02391", true, true, G::kCamArchitecture, kF, grad_cam},
        {"gradcamelementwise", "Grad-CAM element-wise", "pytorch-grad-cam (ReLU before the channel sum)", true, true, G::kNone, kF, grad_cam_elementwise},
        {"gradcam++", "Grad-CAM++", "Chattopadhyay et al. 2018, arXiv:1710.11063", true, true, G::kNone, kF, grad_cam_plus_plus},
        {"xgradcam", "XGrad-CAM", "Fu et al. 2020, arXiv:2008.02312", true, true, G::kNone, kF, xgrad_cam},
        {"layercam", "LayerCAM", "Jiang et al. 2021, IEEE TIP 30", true, true, G::kNone, kF, layer_cam},
        {"eigencam", "EigenCAM", "Muhammad & Yeasin 2020, arXiv:2008.00299", false, false, G::kNone, kF, eigen_cam},
        {"eigengradcam", "EigenGrad-CAM", "pytorch-grad-cam (EigenCAM of gradient x activation)", true, true, G::kNone, kF, eigen_grad_cam},
        {"scorecam", "Score-CAM", "Wang et al. 2020, arXiv:1910.01279", false, true, G::kNone, kF, score_cam},
        {"ablationcam", "Ablation-CAM", "Desai & Ramaswamy 2020, WACV", false, true, G::kNone, kF, ablation_cam},
        {"saliency", "Gradient saliency", "Simonyan et al. 2014, arXiv:1312.6034", true, true, G::kNone, kI, saliency},
        {"guidedbackprop", "Guided Backprop", "Springenberg et al. 2015, arXiv:1412.6806", true, true, G::kFailsSanity, kI, guided_backprop},
        {"guidedgradcam", "Guided Grad-CAM", "Selvaraju et al. 2017, arXiv:1610.02391", true, true, G::kFailsSanity, kI, guided_grad_cam},
        {"inputxgradient", "Input x Gradient", "Shrikumar et al. 2016, arXiv:1605.01713", true, true, G::kNone, kI, input_x_gradient},
        {"integratedgradients", "Integrated Gradients", "Sundararajan et al. 2017, arXiv:1703.01365", true, true, G::kNone, kI, integrated_gradients},
        {"smoothgrad", "SmoothGrad", "Smilkov et al. 2017, arXiv:1706.03825", true, true, G::kNone, kI, smooth_grad},
        {"occlusion", "Occlusion", "Zeiler & Fergus 2014, arXiv:1311.2901", false, true, G::kNone, kI, occlusion},
    };
    return kMethods;
}

const MethodInfo& find_method(const std::string& key) {
    for (const auto& m : explanation_methods())
        if (key == m.key) return m;
    std::vector<std::string> keys;
    for (const auto& m : explanation_methods()) keys.push_back(m.key);
    throw UsageError(fmt::format("unknown method '{}'; choose from: {}", key, fmt::join(keys, ", ")));
}

}  // namespace sightline
