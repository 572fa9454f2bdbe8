// sightline list: the explanation methods, what they guarantee, and their papers.
#include <iostream>

#include <fmt/format.h>

#include "commands.hpp"
#include "sightline/explain.hpp"

namespace sightline::cli {

void add_list_command(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand("list", "List the explanation methods, their guarantees and papers");
    cmd->callback([] {
        std::cout << fmt::format("{:<20} {:<22} {:<9} {:<44} {}\n", "key", "method", "gradient", "guarantee", "paper");
        for (const auto& m : explanation_methods())
            std::cout << fmt::format("{:<20} {:<22} {:<9} {:<44} {}\n", m.key, m.title,
                                     m.needs_gradient ? "yes" : "no", to_string(m.guarantee), m.paper);
        std::cout << "\nWhich guarantee holds depends on the model's head: run `sightline inspect --model M`.\n";
    });
}

}  // namespace sightline::cli
