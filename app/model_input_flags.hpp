// The flags that say how images become model input (--size, --mean, --std, --threads), the
// same in every command that runs a classifier. The decision itself (flags over the model's
// stored values over ImageNet's) is the library's resolve_model_input.
#pragma once

#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

#include "sightline/explain.hpp"
#include "sightline/model_input.hpp"

namespace sightline::cli {

struct ModelInputFlags {
    std::string size;
    std::vector<float> mean, std;
    int threads = 0;
};

// Adds --size, --mean, --std and --threads. size_help: what --size means when not given.
void add_model_input_flags(CLI::App* cmd, ModelInputFlags& flags,
                           const std::string& size_help = "the model's stored size, else each image's own");

// The flags parsed (UsageError naming the flag for a malformed value); also applies --threads.
InputRequest input_request(const ModelInputFlags& flags);

// Prints the resolution's note (if any) as one "sightline: note: ..." line on stderr; called
// after the work succeeded, so that a failure stays a single line.
void print_input_note(const ModelInput& input);

// For the library calls that take a resolved Preprocess: resolves the flags against the model's
// stored values and sets pre and explain.black. Returns the resolution (for its note).
ModelInput apply_model_input_flags(const ModelInputFlags& flags, const std::filesystem::path& model, Preprocess& pre,
                             ExplainOptions& explain);

}  // namespace sightline::cli
