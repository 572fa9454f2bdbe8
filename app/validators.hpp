// CLI11 checks whose messages a person can read ("--batch: must be at least 1, got 0";
// CLI::Range says "not in range 0.000000 to 1797693134862315..." and lets NaN through, since
// every comparison with NaN is false).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace sightline::cli {

// value >= min (and finite).
CLI::Validator at_least(double min);
// min <= value <= max (and finite).
CLI::Validator between(double min, double max);
// An integer written as one ("3.5" and "5x" refused; added to every integer option).
CLI::Validator whole_number();
// Refuses text, nan and inf (added to every floating-point option, each value of a list too).
CLI::Validator finite_number();
// The one rule of every --threads / --*-threads option: 0 = all cores (passed on as the core
// count), else 1 .. 4 x cores.
// More threads than that only slow a run down (each waits for the others at every barrier).
CLI::Validator thread_count();
int max_threads();

// Walks every subcommand: a finite-number check on each floating-point option, a whole-number
// check on each integer option, and the
// thread_count() rule on each option whose name ends in "threads". One place, so a new
// option gets the rules without anyone remembering them.
void add_common_checks(CLI::App& app);

// An option whose values are the names of an enum's table (train.hpp's *_choices()), bound to
// the enum: "--optimizer: 'adam' is not one of sgd, adamw" for anything else.
template <typename Enum>
CLI::Option* add_choice_option(CLI::App* cmd, const std::string& name, Enum& value,
                               const std::vector<std::pair<std::string, Enum>>& table, const std::string& help) {
    std::string names, current;
    for (const auto& [choice, v] : table) {
        names += (names.empty() ? "" : ", ") + choice;
        if (v == value) current = choice;
    }
    CLI::Option* option = cmd->add_option_function<std::string>(
        name,
        [&value, &table](const std::string& text) {
            for (const auto& [choice, v] : table)
                if (choice == text) value = v;
        },
        help + " (" + names + ")");
    option->check(CLI::Validator(
        [&table, names](std::string& text) -> std::string {
            for (const auto& entry : table)
                if (entry.first == text) return {};
            return fmt::format("'{}' is not one of {}", text, names);
        },
        ""));
    option->default_str(current);
    return option;
}

// The text of a parse error as one line (CLI11 messages may span lines).
std::string one_line(std::string message);

}  // namespace sightline::cli
