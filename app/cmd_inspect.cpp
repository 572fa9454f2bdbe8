// sightline inspect: which faithfulness guarantees hold for this model, checked numerically.
#include <algorithm>
#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "commands.hpp"
#include "model_input_flags.hpp"
#include "options.hpp"
#include "sightline/inspect.hpp"

namespace sightline::cli {

namespace {

struct InspectFlags {
    fs::path model, input, json_out;
    std::string layer;
    ModelInputFlags preprocessing;
    bool layers = false;
};

constexpr int kNoiseSide = 224;  // noise input side when neither --size nor the model gives one

// Every submodule's dotted path (what --layer takes) with its class, indented by depth.
void print_layers(const Classifier& model) {
    for (const auto& child : model.module().named_modules()) {
        if (child.name.empty()) continue;
        std::string type = child.value.type()->name() ? child.value.type()->name()->name() : "?";
        const auto depth = std::count(child.name.begin(), child.name.end(), '.');
        std::cout << fmt::format("{:{}}{}  {}\n", "", 2 * depth, child.name, type);
    }
}

void run(const InspectFlags& f) {
    Classifier model = Classifier::load(f.model);
    if (f.layers) return print_layers(model);
    const ModelInput input = resolve_model_input(model.module(), f.model, input_request(f.preprocessing));
    torch::Tensor x;
    std::string input_desc;
    if (!f.input.empty()) {
        x = read_input(f.input, input.preprocess).tensor;
        input_desc = fmt::format("{} ({}x{})", f.input.string(), x.size(2), x.size(3));
    } else {
        const bool sized = input.preprocess.height > 0;
        const int h = sized ? input.preprocess.height : kNoiseSide, w = sized ? input.preprocess.width : kNoiseSide;
        torch::manual_seed(0);
        x = torch::randn({1, 3, h, w});
        input_desc = fmt::format("standard normal noise {}x{} ({}; seed 0; give --input for a real image)", h, w,
                                 input.size_source == "flags"   ? "--size"
                                 : input.size_source == "model" ? "the model's stored size"
                                                                : "default; give --size HxW");
    }
    check_model_accepts(model, x);
    model.set_layer(f.layer, x);
    HeadAnalysis head = analyse_head(model, x);
    torch::Tensor a = model.features(x).activations;
    std::cout << fmt::format("model:       {}\n", f.model.string());
    std::cout << fmt::format("split:       {}\n", model.split_description());
    std::cout << fmt::format("activation:  [{}] at layer '{}'\n", fmt::join(a.sizes(), ", "), model.layer());
    std::cout << fmt::format("input:       {}\n", input_desc);
    std::cout << fmt::format("head:        {}\n", head.description);
    std::cout << fmt::format("checks:      gradient constant in A: {}; spatially uniform: {}; "
                             "completeness |sum(HiResCAM) - (logit - bias)| / max(1,|logit|) = {:.2e}\n",
                             head.gradient_constant_in_a ? "yes" : "no",
                             head.gradient_spatially_uniform ? "yes" : "no", head.completeness_residual);
    std::cout << "guarantees:\n";
    if (head.guarantees.empty()) std::cout << "  none: the head is non-linear, no method is provably faithful here\n";
    for (const auto& g : head.guarantees) std::cout << "  - " << g << "\n";
    std::cout << "methods:\n";
    for (const auto& m : explanation_methods()) {
        GuaranteeStatus s = guarantee_status(m, head);
        std::cout << fmt::format("  {:<20} {:<5} {}\n", m.key, s.holds ? "yes" : "no", s.statement);
    }
    if (!f.input.empty()) print_input_note(input);  // noise needs no normalisation; an image does
    if (!f.json_out.empty())
        write_file_atomic(f.json_out, inspect_json(model, f.model.string(), x, head, input).dump(1));
}

}  // namespace

void add_inspect_command(CLI::App& app) {
    auto flags = std::make_shared<InspectFlags>();
    CLI::App* cmd = app.add_subcommand("inspect", "Analyse a classifier's head: which explanation guarantees hold");
    cmd->add_option("--model", flags->model, "TorchScript classifier (.pt)")->required();
    cmd->add_option("--layer", flags->layer, "dotted submodule path (default: features/head methods or auto)");
    cmd->add_option("--input", flags->input, "image or .npy tensor to check on (default: noise at --size)");
    cmd->add_option("--json", flags->json_out, "also write the analysis as JSON");
    cmd->add_flag("--layers", flags->layers, "list every layer name --layer accepts (dotted paths, with classes) and stop");
    add_model_input_flags(cmd, flags->preprocessing, "the model's stored size, else 224x224 noise or the image's own");
    cmd->callback([flags] { run(*flags); });
}

}  // namespace sightline::cli
