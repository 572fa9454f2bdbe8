// Multi-label class activation maps for seeds: bias-free class maps, ReLU, multi-scale and
// flip, summed at full resolution, labelled classes kept, each divided by its own max
// (notes/wsss.md 1.3, the PSA / IRN convention).
#include <array>
#include <cmath>

#include <fmt/format.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "sightline/explain.hpp"
#include "sightline/model.hpp"
#include "sightline/model_input.hpp"
#include "sightline/tensor_io.hpp"
#include "sightline/wsss.hpp"

namespace sightline {

struct CamModel::Impl {
    std::unique_ptr<Classifier> model;
    std::unique_ptr<Explainer> explainer;  // set when the class weights are not read directly
    torch::Tensor weight;                  // [C,K] of fc (fast path)
    int64_t num_classes = 0;
    std::vector<std::string> class_names;
    std::array<float, 3> mean{}, std{};    // resolve_model_input's
    fs::path path;
};

CamModel::CamModel() : impl_(std::make_unique<Impl>()) {}
CamModel::CamModel(CamModel&&) noexcept = default;
CamModel& CamModel::operator=(CamModel&&) noexcept = default;
CamModel::~CamModel() = default;

namespace {

std::string string_attr(const torch::jit::Module& m, const char* name) {
    return m.hasattr(name) && m.attr(name).isString() ? m.attr(name).toStringRef() : std::string();
}

}  // namespace

CamModel CamModel::load(const fs::path& path, const CamOptions& options) {
    CamModel cm;
    Impl& d = *cm.impl_;
    d.path = path;
    d.model = std::make_unique<Classifier>(Classifier::load(path));
    torch::jit::Module& m = d.model->module();
    m.eval();
    const ModelInput input = resolve_model_input(m, path, {std::nullopt, options.mean, options.std});
    d.mean = input.preprocess.mean;
    d.std = input.preprocess.std;
    if (m.hasattr("sightline_class_names"))
        for (const auto& name : m.attr("sightline_class_names").toListRef()) d.class_names.push_back(name.toStringRef());
    // The example only picks the split; its size matters for flatten heads.
    const int64_t h = input.preprocess.height > 0 ? input.preprocess.height : 224;
    const int64_t w = input.preprocess.width > 0 ? input.preprocess.width : 224;
    torch::Tensor example = torch::zeros({1, 3, h, w});
    d.model->set_layer("", example);

    // Built-in GAP models: M_c = sum_k W_ck A_k with fc's weight, one einsum for every class.
    if (!options.use_explainer && string_attr(m, "sightline_head") == "gap_linear" && m.hasattr("fc")) {
        d.weight = m.attr("fc").toModule().attr("weight").toTensor().detach();
        d.num_classes = d.weight.size(0);
        return cm;
    }
    // Any other model: only a GAP -> Linear head has class maps; the explain engine's 'cam'
    // reads the weights from the head gradient.
    HeadAnalysis head = analyse_head(*d.model, torch::randn({1, 3, h, w}));
    if (head.kind != HeadKind::kGapLinear)
        throw Error(fmt::format("{}: seeds need class maps, i.e. a global-average-pooling -> Linear head; this "
                                "model's head is {} ({})",
                                path.string(), to_string(head.kind), head.description));
    d.explainer = std::make_unique<Explainer>(*d.model);
    {
        torch::NoGradGuard no_grad;
        d.num_classes = d.model->forward(example).size(1);
    }
    return cm;
}

torch::Tensor CamModel::class_maps(const torch::Tensor& x) const {
    const Impl& d = *impl_;
    if (!d.explainer) {
        torch::NoGradGuard no_grad;
        torch::Tensor a = d.model->features(x).activations;
        return torch::einsum("ck,bkhw->bchw", {d.weight, a}).cpu();
    }
    TargetSpec every_class;
    every_class.kind = TargetSpec::kAll;
    Explanation e = d.explainer->explain(x, every_class, {"cam"}, {d.path.string()});
    return e.methods.at(0).raw.detach();
}

torch::Tensor CamModel::image_cams(const cv::Mat& rgb, const std::vector<int>& keys, const CamOptions& options) const {
    const Impl& d = *impl_;
    std::vector<torch::Tensor> raw;
    for (double s : options.scales) {
        Preprocess pre;
        pre.height = std::max(1, static_cast<int>(std::lround(rgb.rows * s)));
        pre.width = std::max(1, static_cast<int>(std::lround(rgb.cols * s)));
        pre.mean = d.mean;
        pre.std = d.std;
        torch::Tensor x = image_to_tensor(rgb, pre);
        if (options.flip) x = torch::cat({x, x.flip({3})}, 0);  // both directions in one batch
        raw.push_back(class_maps(x));
    }
    return normalise_cams(sum_class_maps(raw, rgb.rows, rgb.cols), keys);
}

int64_t CamModel::num_classes() const { return impl_->num_classes; }
const std::vector<std::string>& CamModel::class_names() const { return impl_->class_names; }
const fs::path& CamModel::path() const { return impl_->path; }
bool CamModel::uses_explainer() const { return impl_->explainer != nullptr; }

torch::Tensor sum_class_maps(const std::vector<torch::Tensor>& raw_per_scale, int64_t height, int64_t width) {
    torch::Tensor total;
    for (const torch::Tensor& raw : raw_per_scale) {
        if (raw.dim() != 4 || raw.size(0) < 1 || raw.size(0) > 2)
            throw Error(fmt::format("class maps: expected [1 or 2,C,h,w], got {}", c10::str(raw.sizes())));
        torch::Tensor m = torch::relu(raw.to(torch::kFloat32));
        m = torch::nn::functional::interpolate(
            m, torch::nn::functional::InterpolateFuncOptions()
                   .size(std::vector<int64_t>{height, width})
                   .mode(torch::kBilinear)
                   .align_corners(false));
        torch::Tensor sum = m[0];
        if (m.size(0) == 2) sum = sum + m[1].flip({2});  // the mirrored pass, mirrored back
        total = total.defined() ? total + sum : sum;
    }
    if (!total.defined()) throw Error("class maps: no scale given");
    return total;
}

torch::Tensor normalise_cams(const torch::Tensor& summed, const std::vector<int>& keys) {
    const int64_t classes = summed.size(0);
    std::vector<int64_t> rows;
    for (int k : keys) {
        if (k < 1 || k > classes)
            throw Error(fmt::format("CAMs: label {} is not an object class of the model (1..{})", k, classes));
        rows.push_back(k - 1);
    }
    torch::Tensor kept = summed.index_select(0, torch::tensor(rows, torch::kInt64));
    if (rows.empty()) return kept;
    // Each class by its own maximum (+1e-5), as PSA / IRN.
    torch::Tensor top = std::get<0>(kept.flatten(1).max(1)).view({-1, 1, 1});
    return kept / (top + 1e-5);
}

}  // namespace sightline
