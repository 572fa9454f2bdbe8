// Parsing helpers shared by subcommands.
#pragma once

#include <string>

#include <CLI/CLI.hpp>
#include <vector>

#include "sightline/tensor_io.hpp"

namespace sightline::cli {

// "224x224" or "224" -> {height, width}; throws UsageError naming the option.
std::pair<int, int> parse_size(const std::string& text, const std::string& option);
// A comma-separated list of numbers bound to `values` (CLI11 splits, counts and converts; the
// common checks refuse text and non-finite values with the flag's name). count 0 = any number.
template <typename T>
CLI::Option* add_number_list(CLI::App* cmd, const std::string& name, std::vector<T>& values, std::size_t count,
                             const std::string& help) {
    CLI::Option* option = cmd->add_option(name, values, help)->delimiter(',');
    if (count > 0) option->expected(static_cast<int>(count));
    else option->expected(1, CLI::detail::expected_max_vector_size);
    return option;
}
// The three values of a --mean / --std list (add_number_list with count 3).
std::array<float, 3> as_triple(const std::vector<float>& values);
std::vector<std::string> split_list(const std::string& text);

// Adds --threads (LibTorch intra-op threads) bound to `threads`; the command applies it with
// apply_torch_threads before its work. The library never sets the process's thread count.
CLI::Option* add_torch_threads_option(CLI::App* cmd, int& threads,
                                      const std::string& help = "LibTorch threads");
void apply_torch_threads(int threads);

// The commands that run a model (paths such as "train classify"); each gets --device.
const std::vector<std::string>& model_commands();
// Adds --device cpu|cuda|cuda:N to every command of model_commands(): it sets the process's
// compute device (sightline/device.hpp) while the command line is parsed, so a wrong or
// unavailable device is one line and exit 2 before any work. Throws std::logic_error when a
// listed command does not exist (a renamed command must not lose its option silently).
void add_device_options(CLI::App& app);

}  // namespace sightline::cli
