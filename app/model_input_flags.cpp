#include "model_input_flags.hpp"

#include <iostream>

#include <fmt/format.h>

#include "options.hpp"

namespace sightline::cli {

void add_model_input_flags(CLI::App* cmd, ModelInputFlags& f, const std::string& size_help) {
    cmd->add_option("--size", f.size, "resize images to HxW (N = NxN; default: " + size_help + ")");
    add_number_list(cmd, "--mean", f.mean, 3, "normalisation mean R,G,B (default: the model's stored one, else ImageNet)");
    add_number_list(cmd, "--std", f.std, 3, "normalisation std R,G,B (default: the model's stored one, else ImageNet)");
    cmd->add_option("--threads", f.threads, "LibTorch intra-op threads (default: all cores)");
}

InputRequest input_request(const ModelInputFlags& f) {
    InputRequest r;
    if (!f.size.empty()) r.size = parse_size(f.size, "--size");
    if (!f.mean.empty()) r.mean = as_triple(f.mean);
    if (!f.std.empty()) r.std = as_triple(f.std);
    if (f.threads > 0) torch::set_num_threads(f.threads);
    return r;
}

void print_input_note(const ModelInput& input) {
    if (!input.note.empty()) std::cerr << "sightline: note: " << input.note << "\n";
}

ModelInput apply_model_input_flags(const ModelInputFlags& f, const std::filesystem::path& model, Preprocess& pre,
                                   ExplainOptions& explain) {
    ModelInput input = resolve_model_input(model, input_request(f));
    pre = input.preprocess;
    explain.black = input.black();
    return input;
}

}  // namespace sightline::cli
