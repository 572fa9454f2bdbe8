// resolve_model_input: the one place that decides mean, std and input size for a model.
#include "sightline/model_input.hpp"

#include <fmt/format.h>

#include "sightline/model.hpp"

namespace sightline {

namespace {

constexpr const char* kImageNet = "imagenet-default";

// A stored list of three numbers, or nullopt when the attribute is absent.
std::optional<std::array<float, 3>> stored_triple(const torch::jit::Module& m, const fs::path& path,
                                                  const char* name) {
    if (!m.hasattr(name)) return std::nullopt;
    const c10::IValue v = m.attr(name);
    std::vector<double> values;
    if (v.isDoubleList()) values = v.toDoubleVector();
    else if (v.isTensor() && v.toTensor().numel() == 3) {
        torch::Tensor t = v.toTensor().to(torch::kDouble).contiguous();
        values.assign(t.data_ptr<double>(), t.data_ptr<double>() + 3);
    }
    if (values.size() != 3)
        throw Error(fmt::format("{}: attribute {} must hold three numbers (R,G,B)", path.string(), name));
    return std::array<float, 3>{float(values[0]), float(values[1]), float(values[2])};
}

std::optional<std::pair<int, int>> stored_size(const torch::jit::Module& m, const fs::path& path) {
    const char* name = "sightline_input_size";
    if (!m.hasattr(name)) return std::nullopt;
    const c10::IValue v = m.attr(name);
    std::vector<int64_t> hw;
    if (v.isInt()) hw = {v.toInt(), v.toInt()};
    else if (v.isIntList()) hw = v.toIntVector();
    if (hw.size() != 2 || hw[0] <= 0 || hw[1] <= 0)
        throw Error(fmt::format("{}: attribute {} must be a positive int N (NxN) or a list [H, W]", path.string(),
                                name));
    return std::make_pair(static_cast<int>(hw[0]), static_cast<int>(hw[1]));
}

}  // namespace

std::vector<float> ModelInput::black() const {
    std::vector<float> black;
    for (int c = 0; c < 3; ++c) black.push_back(-preprocess.mean[c] / preprocess.std[c]);
    return black;
}

nlohmann::json ModelInput::to_json() const {
    nlohmann::json size = nullptr;
    if (preprocess.height > 0) size = {preprocess.height, preprocess.width};
    return {{"mean", preprocess.mean}, {"std", preprocess.std}, {"size", size}, {"source", source},
            {"size_source", size_source}};
}

ModelInput resolve_model_input(const torch::jit::Module& model, const fs::path& model_path,
                               const InputRequest& flags) {
    if (flags.std)
        for (float s : *flags.std)
            if (!(s > 0)) throw UsageError("--std: values must be positive");
    ModelInput in;
    // Each of mean and std: the flag, else the stored value, else ImageNet's (Preprocess's default).
    auto pick = [&](const std::optional<std::array<float, 3>>& flag, const char* attr, std::array<float, 3>& out) {
        if (flag) {
            out = *flag;
            return std::string("flags");
        }
        if (auto stored = stored_triple(model, model_path, attr)) {
            out = *stored;
            return std::string("model");
        }
        return std::string(kImageNet);
    };
    const std::string mean_source = pick(flags.mean, "sightline_mean", in.preprocess.mean);
    const std::string std_source = pick(flags.std, "sightline_std", in.preprocess.std);
    for (float s : in.preprocess.std)
        if (!(s > 0)) throw Error(fmt::format("{}: stored sightline_std must be positive", model_path.string()));
    in.source = mean_source == std_source ? mean_source : mean_source + "+" + std_source;

    const std::string file = model_path.filename().string();
    if (mean_source == kImageNet && std_source == kImageNet)
        in.note = fmt::format("{} stores no normalisation; using ImageNet mean/std; give --mean/--std to override",
                              file);
    else if (mean_source == kImageNet || std_source == kImageNet)
        in.note = fmt::format("{} stores no {}; using ImageNet's; give --{} to override", file,
                              mean_source == kImageNet ? "mean" : "std", mean_source == kImageNet ? "mean" : "std");

    if (flags.size) {
        std::tie(in.preprocess.height, in.preprocess.width) = *flags.size;
        in.size_source = "flags";
    } else if (auto stored = stored_size(model, model_path)) {
        std::tie(in.preprocess.height, in.preprocess.width) = *stored;
        in.size_source = "model";
    } else {
        in.size_source = "image";
    }
    return in;
}

torch::Tensor check_model_accepts(const Classifier& model, const torch::Tensor& example) {
    try {
        torch::NoGradGuard no_grad;
        return model.forward(example);
    } catch (const Error& e) {
        const std::string message = e.what();
        bool shape = false;
        for (const char* sign : {"shapes cannot be multiplied", "size mismatch", "is invalid for input of size",
                                 "must match the size of tensor", "Expected size"})
            shape = shape || message.find(sign) != std::string::npos;
        if (!shape) throw;
        throw Error(fmt::format("{}: the model does not run on {}x{} input: the input size must match the model's "
                                "(e.g. the size it was trained at); give it with --size HxW",
                                model.path().string(), example.size(2), example.size(3)));
    }
}

ModelInput resolve_model_input(const fs::path& model_path, const InputRequest& flags) {
    Classifier classifier = Classifier::load(model_path);
    return resolve_model_input(classifier.module(), model_path, flags);
}

}  // namespace sightline
