// What `sightline inspect --json` reports about a model: the head analysis, which method's
// guarantee holds, shapes and preprocessing. Shared by the CLI and the Python module.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "sightline/explain.hpp"
#include "sightline/model_input.hpp"

namespace sightline {

// {"kind", "description", "ops", "completeness_residual", "gradient_constant_in_activations",
//  "gradient_spatially_uniform", "guarantees"} (summary.json's "head" too).
nlohmann::json head_analysis_json(const HeadAnalysis& head);

// {"model": model_name, "layer", "split", "activation_shape", "input_shape", "preprocessing",
//  "head", "methods": {key: {"holds", "statement"}}} for `model` split at its layer and
// analysed at `x` (`head` = analyse_head(model, x)).
nlohmann::json inspect_json(const Classifier& model, const std::string& model_name, const torch::Tensor& x,
                            const HeadAnalysis& head, const ModelInput& input);

}  // namespace sightline
