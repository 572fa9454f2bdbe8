// sightline list: the explanation methods, what they guarantee, and their papers. With
// --markdown it prints the same registry as the table in docs/methods.md (a test checks that
// the page holds exactly this output).
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "commands.hpp"
#include "sightline/explain.hpp"

namespace sightline::cli {

namespace {

void print_plain() {
    std::cout << fmt::format("{:<20} {:<22} {:<9} {:<44} {}\n", "key", "method", "gradient", "guarantee", "paper");
    for (const auto& m : explanation_methods())
        std::cout << fmt::format("{:<20} {:<22} {:<9} {:<44} {}\n", m.key, m.title, m.needs_gradient ? "yes" : "no",
                                 to_string(m.guarantee), m.paper);
    std::cout << "\nWhich guarantee holds depends on the model's head: run `sightline inspect --model M`.\n";
}

void print_markdown() {
    std::cout << "| key | method | map space | gradient | class-specific | guarantee | paper |\n"
                 "|---|---|---|---|---|---|---|\n";
    for (const auto& m : explanation_methods())
        std::cout << fmt::format("| `{}` | {} | {} | {} | {} | {} | {} |\n", m.key, m.title,
                                 m.space == MapSpace::kFeature ? "layer" : "input", m.needs_gradient ? "yes" : "no",
                                 m.class_specific ? "yes" : "no", to_string(m.guarantee), m.paper);
}

}  // namespace

void add_list_command(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand("list", "List the explanation methods, their guarantees and papers");
    auto markdown = std::make_shared<bool>(false);
    cmd->add_flag("--markdown", *markdown, "Print the registry as a Markdown table (the one in docs/methods.md)");
    cmd->callback([markdown] { *markdown ? print_markdown() : print_plain(); });
}

}  // namespace sightline::cli
