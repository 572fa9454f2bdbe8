// The report's HTML and SVG building blocks: escaping, tables, and plots whose coordinates
// follow from the frame (known answers), NaN handling and errors.
#include <cmath>
#include <regex>

#include <gtest/gtest.h>

#include "sightline/core.hpp"
#include "sightline/report_html.hpp"

using namespace sightline;

namespace {

int count(const std::string& text, const std::string& what) {
    int n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

// The `points` attribute of every polyline, in order.
std::vector<std::string> polylines(const std::string& svg) {
    std::vector<std::string> out;
    std::regex re("<polyline[^>]*points=\"([^\"]*)\"");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it)
        out.push_back((*it)[1]);
    return out;
}

}  // namespace

TEST(Html, EscapesEveryMarkupCharacter) {
    EXPECT_EQ(html_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
    EXPECT_EQ(html_escape("plain"), "plain");
}

TEST(Html, TableHasHeaderRowsAndId) {
    std::string t = html_table({"a", "b"}, {{"1", "2"}, {"3", "4"}}, "results");
    EXPECT_NE(t.find("<table id=\"results\">"), std::string::npos);
    EXPECT_EQ(count(t, "<tr>"), 3);
    EXPECT_EQ(count(t, "<th>"), 2);
    EXPECT_EQ(count(t, "<td>"), 4);
    EXPECT_NE(t.find("<td>3</td><td>4</td>"), std::string::npos);
}

TEST(Html, RaggedRowIsAnError) {
    try {
        html_table({"a", "b"}, {{"1"}}, "t");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "html_table t: row 0 has 1 cells, the header 2");
    }
}

TEST(Html, NumbersAndNaN) {
    EXPECT_EQ(html_number(0.12345), "0.123");
    EXPECT_EQ(html_number(2.0, 1), "2.0");
    EXPECT_EQ(html_number(std::nan("")), "\u2013");
}

TEST(Svg, LinePlotMapsCornersOfTheDataToTheFrame) {
    PlotAxes axes;
    axes.width = 452;   // frame x from 52 to 440
    axes.height = 282;  // frame y from 44 (top) to 244 (bottom)
    axes.title = "loss & <acc>";
    std::string svg = svg_line_plot({{"train", {1, 2, 3}, {0.0, 0.5, 1.0}}}, axes);
    auto lines = polylines(svg);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0], "52.0,244.0 246.0,144.0 440.0,44.0");
    EXPECT_NE(svg.find("loss &amp; &lt;acc&gt;"), std::string::npos);  // title escaped
    EXPECT_EQ(count(svg, "<circle"), 3);
}

TEST(Svg, NaNBreaksTheLineAndValuesAreClamped) {
    PlotAxes axes;
    axes.width = 452;
    axes.height = 282;
    std::string svg = svg_line_plot({{"a", {0, 1, 2, 3}, {0.2, NAN, 5.0, -1.0}}}, axes);
    auto lines = polylines(svg);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0], "52.0,204.0");                    // one point before the gap
    EXPECT_EQ(lines[1], "310.7,44.0 440.0,244.0");       // 5.0 clamped to 1, -1 to 0
    EXPECT_EQ(count(svg, "<circle"), 3);
}

TEST(Svg, SeveralSeriesGetTheirOwnColourAndLegend) {
    std::string svg = svg_line_plot({{"gradcam", {0, 1}, {1, 0.2}}, {"guided", {0, 1}, {1, 0.9}}}, PlotAxes{});
    EXPECT_EQ(polylines(svg).size(), 2u);
    EXPECT_NE(svg.find(">gradcam</text>"), std::string::npos);
    EXPECT_NE(svg.find(">guided</text>"), std::string::npos);
    EXPECT_NE(svg.find("stroke=\"#0072B2\""), std::string::npos);
    EXPECT_NE(svg.find("stroke=\"#D55E00\""), std::string::npos);
}

// The band of y +- spread: upper edge left to right, then lower edge back; a NaN spread splits it.
TEST(Svg, SpreadIsABandAroundTheLine) {
    PlotAxes axes;
    axes.width = 452;   // frame x from 52 to 440
    axes.height = 282;  // frame y from 44 (top) to 244 (bottom)
    PlotSeries s{"m", {0, 1, 2}, {0.5, 0.5, 0.5}, {0.1, 0.2, 0.0}};
    std::string svg = svg_line_plot({s}, axes);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(svg, m, std::regex("<polygon[^>]*points=\"([^\"]*)\"")));
    EXPECT_EQ(m[1].str(), "52.0,124.0 246.0,104.0 440.0,144.0 440.0,144.0 246.0,184.0 52.0,164.0");
    EXPECT_LT(svg.find("<polygon"), svg.find("<polyline"));  // under the line
    s.spread = {0.1, NAN, 0.1};  // no two neighbours with a spread: no band
    EXPECT_EQ(count(svg_line_plot({s}, axes), "<polygon"), 0);
    s.spread = {0.1};
    EXPECT_THROW(svg_line_plot({s}, axes), Error);
}

TEST(Svg, LinePlotErrors) {
    PlotAxes axes;
    axes.title = "p";
    EXPECT_THROW(svg_line_plot({}, axes), Error);
    try {
        svg_line_plot({{"s", {1, 2}, {1}}}, axes);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "plot 'p': series 's' has 2 x and 1 y values");
    }
    axes.y_max = axes.y_min;
    EXPECT_THROW(svg_line_plot({{"s", {1}, {1}}}, axes), Error);
}

TEST(Svg, BarHeightsAreProportionalAndNaNIsMarked) {
    PlotAxes axes;
    axes.width = 452;
    axes.height = 282;  // 200 px of frame height for y in [0, 1]
    std::string svg = svg_bar_chart({"boat", "train"}, {"seeds", "crf"}, {{0.5, 0.25}, {1.0, NAN}}, axes);
    std::regex re("<rect x=\"[0-9.]+\" y=\"([0-9.]+)\" width=\"[0-9.]+\" height=\"([0-9.]+)\" fill=\"#");
    std::vector<std::pair<double, double>> bars;
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it)
        bars.emplace_back(std::stod((*it)[1]), std::stod((*it)[2]));
    // Legend swatches come first (2), then the 3 bars.
    ASSERT_EQ(bars.size(), 5u);
    EXPECT_DOUBLE_EQ(bars[2].second, 100.0);
    EXPECT_DOUBLE_EQ(bars[3].second, 200.0);
    EXPECT_DOUBLE_EQ(bars[4].second, 50.0);
    EXPECT_DOUBLE_EQ(bars[3].first, 44.0);
    EXPECT_EQ(count(svg, ">n/a</text>"), 1);
}

TEST(Svg, BarChartShapeErrorsNameTheGroup) {
    PlotAxes axes;
    axes.title = "iou";
    try {
        svg_bar_chart({"a", "b"}, {"g"}, {{1.0}}, axes);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "bar chart 'iou': group 'g' has 1 values for 2 categories");
    }
}
