// Errors of TorchScript models in one line, and the one-input contract of every model.
#pragma once

#include <exception>
#include <string>

#include <torch/script.h>

#include "sightline/core.hpp"

namespace sightline {

// The model's own error in one line ("ValueError: ..." from a TorchScript `raise`, or a
// LibTorch error's first line), without the interpreter's code listing or C++ backtrace.
std::string script_error_line(const std::exception& e);
// Throws Error naming the file when forward needs other than one input besides self.
void check_single_input(const torch::jit::Module& module, const fs::path& path);

}  // namespace sightline
