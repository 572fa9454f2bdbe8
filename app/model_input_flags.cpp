#include "model_input_flags.hpp"

#include "options.hpp"

namespace sightline::cli {

void add_model_input_flags(CLI::App* cmd, ModelInputFlags& f) {
    cmd->add_option("--size", f.size, "resize images to HxW (default: keep their size)");
    cmd->add_option("--mean", f.mean, "normalisation mean per channel (default: the model's, else ImageNet)");
    cmd->add_option("--std", f.std, "normalisation std per channel (default: the model's, else ImageNet)");
    cmd->add_option("--threads", f.threads, "LibTorch intra-op threads (default: all cores)");
}

void apply_model_input_flags(const ModelInputFlags& f, const std::filesystem::path& model, Preprocess& pre,
                             ExplainOptions& explain) {
    if (!f.size.empty()) std::tie(pre.height, pre.width) = parse_size(f.size, "--size");
    if (f.threads > 0) torch::set_num_threads(f.threads);
    set_model_normalisation(model, f.mean, f.std, pre, explain);
}

void set_model_normalisation(const std::filesystem::path& model, const std::string& mean, const std::string& std,
                             Preprocess& pre, ExplainOptions& explain) {
    if (mean.empty() || std.empty()) {
        Classifier classifier = Classifier::load(model);
        const torch::jit::Module& m = classifier.module();
        auto take = [&](const char* name, std::array<float, 3>& dst) {
            if (!m.hasattr(name)) return;
            auto v = m.attr(name).toDoubleList();
            if (v.size() == 3)
                for (int c = 0; c < 3; ++c) dst[c] = static_cast<float>(v[c]);
        };
        if (mean.empty()) take("sightline_mean", pre.mean);
        if (std.empty()) take("sightline_std", pre.std);
    }
    if (!mean.empty()) pre.mean = parse_triple(mean, "--mean");
    if (!std.empty()) pre.std = parse_triple(std, "--std");
    explain.black.clear();
    for (int c = 0; c < 3; ++c) {
        if (pre.std[c] <= 0) throw UsageError("--std: values must be positive");
        explain.black.push_back(-pre.mean[c] / pre.std[c]);
    }
}

}  // namespace sightline::cli
