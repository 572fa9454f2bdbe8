// Escaping and tables for the HTML report.
#include <cmath>

#include <fmt/format.h>

#include "sightline/core.hpp"
#include "sightline/report_html.hpp"

namespace sightline {

std::string html_escape(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string html_number(double value, int digits) {
    if (std::isnan(value)) return "\u2013";
    return fmt::format("{:.{}f}", value, digits);
}

std::string html_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                       const std::string& id) {
    std::string out = id.empty() ? "<table>" : fmt::format("<table id=\"{}\">", html_escape(id));
    out += "<tr>";
    for (const auto& h : header) out += "<th>" + h + "</th>";
    out += "</tr>\n";
    for (std::size_t r = 0; r < rows.size(); ++r) {
        if (rows[r].size() != header.size())
            throw Error(fmt::format("html_table {}: row {} has {} cells, the header {}", id, r, rows[r].size(),
                                    header.size()));
        out += "<tr>";
        for (const auto& cell : rows[r]) out += "<td>" + cell + "</td>";
        out += "</tr>\n";
    }
    return out + "</table>\n";
}

}  // namespace sightline
