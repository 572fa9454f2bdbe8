#include "commands.hpp"

namespace sightline::cli {

void add_demo_command(CLI::App& app) {
    app.add_subcommand("demo", "(not yet implemented)");
}

}  // namespace sightline::cli
