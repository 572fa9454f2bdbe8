// Parsing helpers shared by subcommands.
#pragma once

#include <string>

#include <CLI/CLI.hpp>
#include <vector>

#include "sightline/tensor_io.hpp"

namespace sightline::cli {

// "224x224" or "224" -> {height, width}; throws UsageError naming the option.
std::pair<int, int> parse_size(const std::string& text, const std::string& option);
// "0.5,0.5,0.5" -> three floats.
std::array<float, 3> parse_triple(const std::string& text, const std::string& option);
std::vector<std::string> split_list(const std::string& text);

// Adds --threads (LibTorch intra-op threads) bound to `threads`; the command applies it with
// apply_torch_threads before its work. The library never sets the process's thread count.
CLI::Option* add_torch_threads_option(CLI::App* cmd, int& threads,
                                      const std::string& help = "LibTorch threads");
void apply_torch_threads(int threads);

}  // namespace sightline::cli
