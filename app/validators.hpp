// CLI11 checks whose messages a person can read ("--batch: must be at least 1, got 0";
// CLI::Range says "not in range 0.000000 to 1797693134862315..." and lets NaN through, since
// every comparison with NaN is false).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace sightline::cli {

// value >= min (and finite).
CLI::Validator at_least(double min);
// min <= value <= max (and finite).
CLI::Validator between(double min, double max);
// An integer written as one ("3.5" and "5x" refused; added to every integer option).
CLI::Validator whole_number();
// Refuses nan / inf (added to every floating-point option by add_common_checks).
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

// The text of a parse error as one line (CLI11 messages may span lines).
std::string one_line(std::string message);

}  // namespace sightline::cli
