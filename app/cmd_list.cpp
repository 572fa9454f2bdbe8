#include "commands.hpp"

namespace sightline::cli {

void add_list_command(CLI::App& app) {
    app.add_subcommand("list", "(not yet implemented)");
}

}  // namespace sightline::cli
