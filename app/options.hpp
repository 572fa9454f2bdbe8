// Parsing helpers shared by subcommands.
#pragma once

#include <string>
#include <vector>

#include "sightline/tensor_io.hpp"

namespace sightline::cli {

// "224x224" or "224" -> {height, width}; throws UsageError naming the option.
std::pair<int, int> parse_size(const std::string& text, const std::string& option);
// "0.5,0.5,0.5" -> three floats.
std::array<float, 3> parse_triple(const std::string& text, const std::string& option);
std::vector<std::string> split_list(const std::string& text);
// One class name per line; blank lines kept out.
std::vector<std::string> read_lines(const fs::path& path);

}  // namespace sightline::cli
