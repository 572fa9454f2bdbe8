// The flags that say how images become model input (--size, --mean, --std, --threads), shared
// by the commands that run a classifier on an image folder (sanity, score).
#pragma once

#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

#include "sightline/explain.hpp"
#include "sightline/tensor_io.hpp"

namespace sightline::cli {

struct ModelInputFlags {
    std::string size, mean, std;
    int threads = 0;
};

void add_model_input_flags(CLI::App* cmd, ModelInputFlags& flags);

// Applies the flags: the input size, LibTorch's thread count, and the normalisation (see
// set_model_normalisation) into pre and explain.black.
void apply_model_input_flags(const ModelInputFlags& flags, const std::filesystem::path& model, Preprocess& pre,
                             ExplainOptions& explain);

// --mean/--std when given, else the model's sightline_mean/std attributes, else ImageNet's;
// also sets explain.black (the normalised black image, for the methods' baselines).
void set_model_normalisation(const std::filesystem::path& model, const std::string& mean, const std::string& std,
                             Preprocess& pre, ExplainOptions& explain);

}  // namespace sightline::cli
