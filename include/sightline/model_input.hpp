// How images become one model's input, decided in one place for every subcommand that runs a
// classifier: the model's stored preprocessing (the attributes sightline_mean, sightline_std
// and sightline_input_size that `train classify` writes, or that a user adds to a TorchScript
// module), overridden field by field by the flags, else ImageNet's statistics with a note.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/script.h>

#include "sightline/tensor_io.hpp"

namespace sightline {

// What the user asked for on the command line; unset = not given.
struct InputRequest {
    std::optional<std::pair<int, int>> size;  // --size HxW
    std::optional<std::array<float, 3>> mean;  // --mean R,G,B
    std::optional<std::array<float, 3>> std;   // --std R,G,B
};

// The preprocessing actually used, and where each part came from.
struct ModelInput {
    Preprocess preprocess;        // height/width 0 = each image keeps its size
    std::string source;           // mean/std: "model" | "flags" | "imagenet-default", or two of
                                  // them joined by '+' (mean's first) when they differ
    std::string size_source;      // "flags" | "model" | "image"
    std::string note;             // one line for stderr when ImageNet's statistics are assumed

    // The input value of a black pixel per channel, (0 - mean) / std (explain's baselines).
    std::vector<float> black() const;
    // {"mean", "std", "size": [h, w] or null, "source", "size_source"} for summary.json etc.
    nlohmann::json to_json() const;
};

// Resolves the preprocessing of `model` (loaded from `model_path`, named in messages). Throws
// UsageError for a non-positive flag std, Error naming the file for stored values that are
// not three numbers (mean/std) or a positive int (input size).
ModelInput resolve_model_input(const torch::jit::Module& model, const fs::path& model_path,
                               const InputRequest& flags);
// The same, loading the TorchScript file first (for commands that load the model later).
ModelInput resolve_model_input(const fs::path& model_path, const InputRequest& flags);

class Classifier;
// Runs the model once on `example` [1,3,H,W] and returns its logits [1,C]. A failure that is a
// shape mismatch (a flatten head fed another size) becomes one Error line: "<model>: the model
// does not run on HxW input: the input size must match the model's; give it with --size HxW";
// other failures pass through.
torch::Tensor check_model_accepts(const Classifier& model, const torch::Tensor& example);

}  // namespace sightline
