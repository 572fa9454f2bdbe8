// Field writers shared by the outputs of sightline eval, audit and wsss: an undefined value
// (NaN, or infinity) is null in JSON and "nan" in CSV.
#pragma once

#include <cmath>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace sightline::output_fields {

inline nlohmann::json number(double v) {
    return std::isnan(v) || std::isinf(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
}
// Shortest representation that reads back to the same double; "nan" when undefined.
inline std::string csv_number(double v) { return std::isnan(v) ? "nan" : fmt::format("{}", v); }
// Quoted (with doubled quotes) only when it holds a comma, a quote or a newline.
inline std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

}  // namespace sightline::output_fields
