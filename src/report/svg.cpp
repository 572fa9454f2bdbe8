// Inline SVG plots for the report: line plots (training curves, randomisation curves) and
// grouped bar charts (IoU per class). Plain SVG 1.1 text, no scripts, no external fonts.
#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "sightline/core.hpp"
#include "sightline/report_html.hpp"

namespace sightline {

namespace {

// Colour-blind-safe qualitative palette (Okabe & Ito 2008), repeated when there are more series.
const char* colour(std::size_t i) {
    static const char* kColours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                     "#E69F00", "#56B4E9", "#000000", "#F0E442"};
    return kColours[i % 8];
}

// The plot frame inside the picture: room for the title and legend on top, tick labels left
// and below.
struct Frame {
    double left, top, right, bottom;
    double width() const { return right - left; }
    double height() const { return bottom - top; }
};

Frame frame_of(const PlotAxes& axes) {
    return {52.0, 44.0, axes.width - 12.0, axes.height - 38.0};
}

double y_pixel(const Frame& f, const PlotAxes& axes, double y) {
    double t = (std::clamp(y, axes.y_min, axes.y_max) - axes.y_min) / (axes.y_max - axes.y_min);
    return f.bottom - t * f.height();
}

std::string tick(double v) {
    std::string s = fmt::format("{:.3g}", v);
    return s == "-0" ? "0" : s;
}

// Title, legend, frame, y ticks and axis labels: everything but the data.
std::string open_picture(const PlotAxes& axes, const std::vector<std::string>& legend) {
    if (!(axes.y_max > axes.y_min))
        throw Error(fmt::format("plot '{}': y range [{}, {}] is empty", axes.title, axes.y_min, axes.y_max));
    const Frame f = frame_of(axes);
    std::string s = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
        "font-family=\"sans-serif\" font-size=\"11\" role=\"img\" aria-label=\"{2}\">\n"
        "<text x=\"{3}\" y=\"14\" font-size=\"13\" font-weight=\"bold\">{2}</text>\n",
        axes.width, axes.height, html_escape(axes.title), f.left);
    double x = f.left;
    for (std::size_t i = 0; i < legend.size(); ++i) {
        s += fmt::format("<rect x=\"{:.1f}\" y=\"23\" width=\"10\" height=\"10\" fill=\"{}\"/>"
                         "<text x=\"{:.1f}\" y=\"32\">{}</text>\n",
                         x, colour(i), x + 13, html_escape(legend[i]));
        x += 13 + 6.5 * static_cast<double>(legend[i].size()) + 14;
    }
    s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" stroke=\"#888\"/>\n",
                     f.left, f.top, f.width(), f.height());
    for (int i = 0; i <= 4; ++i) {
        double v = axes.y_min + (axes.y_max - axes.y_min) * i / 4.0;
        double py = y_pixel(f, axes, v);
        s += fmt::format("<line x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" stroke=\"#ddd\"/>"
                         "<text x=\"{3:.1f}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
                         f.left, f.right, py, f.left - 4, py + 4, tick(v));
    }
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", f.left + f.width() / 2,
                     axes.height - 4.0, html_escape(axes.x_label));
    s += fmt::format("<text transform=\"translate(12,{:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                     f.top + f.height() / 2, html_escape(axes.y_label));
    return s;
}

}  // namespace

std::string svg_line_plot(const std::vector<PlotSeries>& series, const PlotAxes& axes) {
    if (series.empty()) throw Error(fmt::format("plot '{}': no series", axes.title));
    double x_min = INFINITY, x_max = -INFINITY;
    std::set<double> xs;
    std::vector<std::string> names;
    for (const auto& s : series) {
        if (s.x.size() != s.y.size())
            throw Error(fmt::format("plot '{}': series '{}' has {} x and {} y values", axes.title, s.name, s.x.size(),
                                    s.y.size()));
        for (std::size_t i = 0; i < s.x.size(); ++i) {
            if (std::isnan(s.y[i]) || std::isnan(s.x[i])) continue;
            x_min = std::min(x_min, s.x[i]);
            x_max = std::max(x_max, s.x[i]);
            xs.insert(s.x[i]);
        }
        if (!s.spread.empty() && s.spread.size() != s.y.size())
            throw Error(fmt::format("plot '{}': series '{}' has {} spread and {} y values", axes.title, s.name,
                                    s.spread.size(), s.y.size()));
        names.push_back(s.name);
    }
    std::string out = open_picture(axes, names);
    if (xs.empty()) return out + "</svg>\n";
    const Frame f = frame_of(axes);
    auto x_pixel = [&](double x) {
        return x_max > x_min ? f.left + (x - x_min) / (x_max - x_min) * f.width() : f.left + f.width() / 2;
    };
    std::vector<double> ticks(xs.begin(), xs.end());
    if (ticks.size() > 12) {
        ticks.clear();
        for (int i = 0; i <= 4; ++i) ticks.push_back(x_min + (x_max - x_min) * i / 4.0);
    }
    for (double t : ticks)
        out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", x_pixel(t),
                           f.bottom + 14, tick(t));
    // Bands first, so that every line stays visible above them.
    for (std::size_t k = 0; k < series.size(); ++k) {
        const auto& s = series[k];
        if (s.spread.empty()) continue;
        std::vector<std::size_t> run;  // consecutive points with a value and a spread
        auto band = [&] {
            if (run.size() >= 2) {
                std::string points;
                for (std::size_t i : run)
                    points += fmt::format("{:.1f},{:.1f} ", x_pixel(s.x[i]), y_pixel(f, axes, s.y[i] + s.spread[i]));
                for (auto it = run.rbegin(); it != run.rend(); ++it)
                    points += fmt::format("{:.1f},{:.1f} ", x_pixel(s.x[*it]),
                                          y_pixel(f, axes, s.y[*it] - s.spread[*it]));
                points.pop_back();
                out += fmt::format("<polygon fill=\"{}\" fill-opacity=\"0.15\" stroke=\"none\" points=\"{}\"/>\n",
                                   colour(k), points);
            }
            run.clear();
        };
        for (std::size_t i = 0; i < s.x.size(); ++i) {
            if (std::isnan(s.y[i]) || std::isnan(s.x[i]) || std::isnan(s.spread[i])) band();
            else run.push_back(i);
        }
        band();
    }
    for (std::size_t k = 0; k < series.size(); ++k) {
        const auto& s = series[k];
        std::string points;
        auto flush = [&] {
            if (!points.empty())
                out += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n",
                                   colour(k), points);
            points.clear();
        };
        for (std::size_t i = 0; i < s.x.size(); ++i) {
            if (std::isnan(s.y[i]) || std::isnan(s.x[i])) {
                flush();
                continue;
            }
            points += fmt::format("{}{:.1f},{:.1f}", points.empty() ? "" : " ", x_pixel(s.x[i]),
                                  y_pixel(f, axes, s.y[i]));
        }
        flush();
        for (std::size_t i = 0; i < s.x.size(); ++i) {
            if (std::isnan(s.y[i]) || std::isnan(s.x[i])) continue;
            out += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"><title>{}: {} = {}</title></circle>\n",
                               x_pixel(s.x[i]), y_pixel(f, axes, s.y[i]), colour(k), html_escape(s.name),
                               tick(s.x[i]), tick(s.y[i]));
        }
    }
    return out + "</svg>\n";
}

std::string svg_bar_chart(const std::vector<std::string>& categories, const std::vector<std::string>& groups,
                          const std::vector<std::vector<double>>& values, const PlotAxes& axes) {
    if (categories.empty() || groups.empty() || values.size() != groups.size())
        throw Error(fmt::format("bar chart '{}': {} categories, {} groups, {} value rows", axes.title,
                                categories.size(), groups.size(), values.size()));
    for (std::size_t g = 0; g < groups.size(); ++g)
        if (values[g].size() != categories.size())
            throw Error(fmt::format("bar chart '{}': group '{}' has {} values for {} categories", axes.title, groups[g],
                                    values[g].size(), categories.size()));
    std::string out = open_picture(axes, groups);
    const Frame f = frame_of(axes);
    const double slot = f.width() / static_cast<double>(categories.size());
    const double bar = 0.8 * slot / static_cast<double>(groups.size());
    const double base = y_pixel(f, axes, std::max(axes.y_min, 0.0));
    for (std::size_t c = 0; c < categories.size(); ++c) {
        const double x0 = f.left + slot * static_cast<double>(c) + 0.1 * slot;
        out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
                           f.left + slot * (c + 0.5), f.bottom + 14, html_escape(categories[c]));
        for (std::size_t g = 0; g < groups.size(); ++g) {
            const double x = x0 + bar * static_cast<double>(g);
            const double v = values[g][c];
            if (std::isnan(v)) {
                out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"9\" text-anchor=\"middle\">n/a</text>\n",
                                   x + bar / 2, base - 3);
                continue;
            }
            const double top = y_pixel(f, axes, v);
            out += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\">"
                               "<title>{} / {}: {}</title></rect>\n",
                               x, std::min(top, base), bar, std::abs(base - top), colour(g), html_escape(groups[g]),
                               html_escape(categories[c]), tick(v));
        }
    }
    return out + "</svg>\n";
}

}  // namespace sightline
