// Building blocks of the HTML report: escaped text, tables and inline SVG plots. The page must
// be readable from disk with no network, so plots are SVG text inside the page, not scripts.
#pragma once

#include <string>
#include <vector>

namespace sightline {

// &, <, >, " and ' as entities, so any name or message can go into text or an attribute.
std::string html_escape(const std::string& text);

// A <table> with a header row; cells are HTML (escape text yourself). `id` (optional) lets a
// test or a link find the table. Throws Error when a row's length differs from the header's.
std::string html_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                       const std::string& id = "");

// A number for a table cell: fixed `digits` decimals, "–" for NaN.
std::string html_number(double value, int digits = 3);

struct PlotSeries {
    std::string name;
    std::vector<double> x, y;  // same length; NaN points are left out (the line breaks there)
    // Optional, the length of y: a band y +- spread drawn under the line (e.g. the standard
    // deviation over images); a NaN point breaks the band like the line.
    std::vector<double> spread = {};
};

struct PlotAxes {
    std::string title, x_label, y_label;
    double y_min = 0.0, y_max = 1.0;  // fixed range; values outside are clamped to the frame
    int width = 420, height = 240;    // pixels of the whole picture
};

// Lines with round markers, one colour per series, a legend, axis ticks (5 on y; on x the
// distinct x values when there are at most 12, else 5). The x range is the data's range.
// Throws Error for no series, unequal x/y (or spread) lengths or y_max <= y_min.
std::string svg_line_plot(const std::vector<PlotSeries>& series, const PlotAxes& axes);

// Grouped bars: values[g][c] is group g (legend) at category c (x axis); NaN draws no bar and
// writes "n/a". Throws Error when a group's length differs from the category count.
std::string svg_bar_chart(const std::vector<std::string>& categories, const std::vector<std::string>& groups,
                          const std::vector<std::vector<double>>& values, const PlotAxes& axes);

}  // namespace sightline
