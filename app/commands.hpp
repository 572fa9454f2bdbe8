// Every subcommand lives in app/cmd_<verb>.cpp and exports add_<verb>_command; commands.cpp
// wires them in one list. A command's callback does the work and throws sightline::Error.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>

#include <nlohmann/json.hpp>

namespace sightline {
struct SanityReport;
struct Preprocess;
struct ExplainOptions;
}  // namespace sightline

namespace sightline::cli {

void add_all_commands(CLI::App& app);

void add_list_command(CLI::App& app);
void add_explain_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_demo_command(CLI::App& app);
void add_data_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_audit_command(CLI::App& app);
void add_crf_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_wsss_command(CLI::App& app);
void add_segment_command(CLI::App& app);
void add_instance_command(CLI::App& app);
void add_merge_command(CLI::App& app);
void add_launch_command(CLI::App& app);
// `train segment` (cmd_train_segment.cpp), added by add_train_command.
void add_train_segment_command(CLI::App& train);
// `train instance` (cmd_train_instance.cpp), added by add_train_command.
void add_train_instance_command(CLI::App& train);
void add_sanity_command(CLI::App& app);
void add_score_command(CLI::App& app);
// sanity.json (with `preprocessing`, ModelInput::to_json), the sanity.png grid (rows methods,
// columns steps) and sanity_curves.svg into `dir` (cmd_sanity.cpp); with `picture`, sanity.png is a
// copy of that file (a merge takes shard 0's, whose first image is the run's first).
void write_sanity_outputs(const SanityReport& report, const nlohmann::json& preprocessing,
                          const std::filesystem::path& dir, const std::filesystem::path& picture = {});
// The randomisation curves, one panel per similarity metric, mean +- std over the images.
std::string sanity_curves_svg(const SanityReport& report);

}  // namespace sightline::cli
