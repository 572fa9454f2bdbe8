#include "commands.hpp"

namespace sightline::cli {

void add_inspect_command(CLI::App& app) {
    app.add_subcommand("inspect", "(not yet implemented)");
}

}  // namespace sightline::cli
