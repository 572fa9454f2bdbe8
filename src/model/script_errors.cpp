// One line for an error raised while running TorchScript code. The interpreter's message is a
// banner, the serialized and the original code with "<--- HERE" markers, then the model's own
// error ("builtins.ValueError: ..."); c10::Error adds a C++ backtrace after
// "Exception raised from".
#include <regex>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sightline/script_errors.hpp"

namespace sightline {

namespace {

std::string trimmed(const std::string& s) {
    const auto begin = s.find_first_not_of(" \t\r");
    if (begin == std::string::npos) return "";
    return s.substr(begin, s.find_last_not_of(" \t\r") - begin + 1);
}

}  // namespace

std::string script_error_line(const std::exception& e) {
    const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
    std::string message = c10_error ? c10_error->what_without_backtrace() : e.what();
    const auto backtrace = message.find("Exception raised from");
    if (backtrace != std::string::npos) message.resize(backtrace);
    std::vector<std::string> lines;
    std::istringstream in(message);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    // After the last code marker: the first "SomethingError: ..." line (a traced model lists
    // its Python frames before it), else the first line that is not indented code.
    std::size_t start = 0;
    for (std::size_t i = 0; i < lines.size(); ++i)
        if (lines[i].find("<--- HERE") != std::string::npos) start = i + 1;
    static const std::regex error_line(R"(^(builtins\.)?[A-Za-z_.]*(Error|Exception)[A-Za-z]*: .*)");
    std::string fallback;
    for (std::size_t i = start; i < lines.size(); ++i) {
        if (start > 0 && !lines[i].empty() && (lines[i][0] == ' ' || lines[i][0] == '\t')) continue;
        std::string line = trimmed(lines[i]);
        if (line.empty() || line.rfind("Traceback of TorchScript", 0) == 0) continue;
        if (line.rfind("builtins.", 0) == 0) line = line.substr(9);  // "builtins.ValueError: ..."
        if (std::regex_match(line, error_line)) return line;
        if (fallback.empty()) fallback = line;
    }
    if (!fallback.empty()) return fallback;
    return "(no message)";
}

void check_single_input(const torch::jit::Module& module, const fs::path& path) {
    const auto& arguments = module.get_method("forward").function().getSchema().arguments();
    std::vector<std::string> names, required;
    for (std::size_t i = 1; i < arguments.size(); ++i) {  // 0 is self
        names.push_back(arguments[i].name());
        if (i > 1 && !arguments[i].default_value()) required.push_back(arguments[i].name());
    }
    if (!names.empty() && required.empty()) return;
    throw Error(fmt::format("{}: forward takes {} input(s) ({}); Sightline gives a model one image batch [B,3,H,W]",
                            path.string(), names.size(), fmt::join(names, ", ")));
}

}  // namespace sightline
