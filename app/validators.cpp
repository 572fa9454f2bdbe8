#include "validators.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <regex>
#include <thread>

#include <fmt/format.h>

namespace sightline::cli {

namespace {

// The value of an option as a number, or nullopt-like NaN when it is not one.
bool parse_number(const std::string& text, double& value) {
    if (text.empty()) return false;
    char* end = nullptr;
    value = std::strtod(text.c_str(), &end);
    return end && *end == '\0';
}

std::string show(double v) { return fmt::format("{:g}", v); }

}  // namespace

CLI::Validator at_least(double min) {
    return CLI::Validator(
        [min](std::string& text) -> std::string {
            double v = 0;
            if (!parse_number(text, v)) return fmt::format("'{}' is not a number", text);
            if (!std::isfinite(v) || v < min) return fmt::format("must be at least {}, got {}", show(min), text);
            return {};
        },
        fmt::format(">={}", show(min)));
}

CLI::Validator between(double min, double max) {
    return CLI::Validator(
        [min, max](std::string& text) -> std::string {
            double v = 0;
            if (!parse_number(text, v)) return fmt::format("'{}' is not a number", text);
            if (!std::isfinite(v) || v < min || v > max)
                return fmt::format("must be between {} and {}, got {}", show(min), show(max), text);
            return {};
        },
        fmt::format("{}..{}", show(min), show(max)));
}

CLI::Validator finite_number() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            double v = 0;
            if (!parse_number(text, v)) return fmt::format("'{}' is not a number", text);
            if (!std::isfinite(v)) return fmt::format("must be a finite number, got {}", text);
            return {};
        },
        "");
}

CLI::Validator whole_number() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            double v = 0;
            if (!parse_number(text, v)) return fmt::format("'{}' is not a number", text);
            if (v != std::floor(v)) return fmt::format("'{}' is not a whole number", text);
            return {};
        },
        "");
}

int max_threads() {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    return static_cast<int>(4 * cores);
}

CLI::Validator thread_count() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            double v = 0;
            const int most = max_threads();
            if (!parse_number(text, v) || v != std::floor(v) || v < 0 || v > most)
                return fmt::format("must be 0 (all cores) or 1..{} (4 x the {} cores), got {}", most, most / 4, text);
            if (v == 0) text = std::to_string(most / 4);  // every command reads 0 the same way
            return {};
        },
        "");
}

namespace {

// Options that mean the same in every subcommand that has them, with their valid values.
// Library checks stay (other callers); these give the message before any work starts.
const std::map<std::string, CLI::Validator>& option_rules() {
    static const std::map<std::string, CLI::Validator> rules = {
        {"--batch", at_least(1)},
        {"--seed", at_least(0)},
        {"--max-images", at_least(0)},
        {"--epochs", at_least(1)},
        {"--segment-epochs", at_least(1)},
        {"--n", at_least(1)},
        {"--width", at_least(1)},
        {"--depth", at_least(1)},
        {"--hidden", at_least(1)},
        {"--input-size", at_least(0)},
        {"--workers", at_least(0)},
        {"--steps", at_least(1)},
        {"--repeat", at_least(1)},
        {"--ig-steps", at_least(1)},
        {"--smooth-samples", at_least(1)},
        {"--smooth-sigma", at_least(0)},
        {"--occlusion-window", at_least(1)},
        {"--occlusion-stride", at_least(1)},
        {"--noise", at_least(0)},
        {"--tile", at_least(0)},
        {"--iterations", at_least(0)},
        {"--crf-iterations", at_least(0)},
        {"--lr", at_least(0)},
        {"--momentum", between(0, 1)},
        {"--warmup-epochs", at_least(0)},
        {"--label-smoothing", between(0, 1)},
        {"--mixup", at_least(0)},
        {"--dice", at_least(0)},
        {"--spurious", between(0, 1)},
        {"--ignore", between(-1, 255)},
        {"--output-stride", CLI::IsMember({4, 8, 16})},
        {"--puzzle-alpha", at_least(0)},
        {"--puzzle-ramp", between(0, 1)},
        {"--mixup-entropy", at_least(0)},
        {"--mixup-concentration", at_least(0)},
        {"--subcategory-k", at_least(1)},
        {"--subcategory-lambda", at_least(0)},
        {"--subcategory-rounds", at_least(0)},
    };
    return rules;
}

bool ends_with(const std::string& s, const std::string& end) {
    return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
}

}  // namespace

void add_common_checks(CLI::App& app) {
    for (CLI::Option* option : app.get_options()) {
        const std::string name = option->get_name();
        if (ends_with(name, "threads")) {
            option->transform(thread_count());
            continue;
        }
        const std::string type = option->get_type_name();
        if (type.rfind("FLOAT", 0) == 0) option->check(finite_number());
        // First, so that "3.5" or "5x" is named as the flag's problem, not CLI11's "Could not convert".
        if ((type == "INT" || type == "UINT") && option->get_expected_max() == 1) option->check(whole_number());
        auto rule = option_rules().find(name);
        if (rule != option_rules().end()) option->check(rule->second);
    }
    for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) add_common_checks(*sub);
}

std::string one_line(std::string message) {
    // A list with too few values: CLI11 says "--mean: At least 3 required but received 2".
    static const std::regex too_few(R"(^(\S+): At least (\d+) required but received (\d+)\s*$)");
    std::smatch m;
    if (std::regex_match(message, m, too_few))
        return fmt::format("{}: expected {} comma-separated values, got {}", m[1].str(), m[2].str(), m[3].str());
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    std::string out;
    for (char c : message) {
        if (c == '\n') out += out.empty() || out.back() == ':' ? " " : "; ";
        else out += c;
    }
    return out;
}

}  // namespace sightline::cli
