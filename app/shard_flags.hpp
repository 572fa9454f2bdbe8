// `--shard I/N` of the commands that split their inputs over processes (explain, audit), with
// torchrun's RANK and WORLD_SIZE as the default; `sightline merge` joins the outputs.
#pragma once

#include <string>
#include <utility>

#include <CLI/CLI.hpp>

namespace sightline::cli {

// Adds --shard to `cmd`, validated as I/N with 0 <= I < N; `what` says what is split.
void add_shard_option(CLI::App* cmd, std::string& text, const std::string& what);

// (I, N) from --shard's text, else from torchrun's RANK/WORLD_SIZE (with a note on stderr that
// says so), else (0, 1).
std::pair<int, int> resolve_shard(const std::string& text);

}  // namespace sightline::cli
