#include "commands.hpp"

namespace sightline::cli {

void add_explain_command(CLI::App& app) {
    app.add_subcommand("explain", "(not yet implemented)");
}

}  // namespace sightline::cli
