#include "commands.hpp"

namespace sightline::cli {

void add_bench_command(CLI::App& app) {
    app.add_subcommand("bench", "(not yet implemented)");
}

}  // namespace sightline::cli
