// A labelled picture grid (rows x columns of equally sized tiles), e.g. the sanity check's
// methods x randomisation steps.
#include <algorithm>

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include "sightline/core.hpp"
#include "sightline/report.hpp"

namespace sightline {

namespace {

// Text that fits `width` pixels at the given scale (cut with "..." otherwise).
std::string fit(const std::string& text, int width, double scale) {
    std::string t = text;
    int baseline = 0;
    while (t.size() > 3 && cv::getTextSize(t, cv::FONT_HERSHEY_SIMPLEX, scale, 1, &baseline).width > width)
        t = t.substr(0, t.size() - 4) + "..";
    return t;
}

}  // namespace

cv::Mat picture_grid(const std::vector<std::vector<cv::Mat>>& cells, const std::vector<std::string>& row_labels,
                     const std::vector<std::string>& column_labels, int tile) {
    if (cells.empty() || cells.front().empty()) throw Error("picture grid: no pictures");
    if (row_labels.size() != cells.size())
        throw Error(fmt::format("picture grid: {} row labels for {} rows", row_labels.size(), cells.size()));
    const std::size_t columns = cells.front().size();
    if (column_labels.size() != columns)
        throw Error(fmt::format("picture grid: {} column labels for {} columns", column_labels.size(), columns));
    const int gap = 4, label_w = 120, label_h = 22;
    const double scale = 0.4;
    cv::Mat grid(label_h + static_cast<int>(cells.size()) * (tile + gap),
                 label_w + static_cast<int>(columns) * (tile + gap), CV_8UC3, cv::Scalar(255, 255, 255));
    for (std::size_t c = 0; c < columns; ++c)
        cv::putText(grid, fit(column_labels[c], tile, scale),
                    cv::Point(label_w + static_cast<int>(c) * (tile + gap), label_h - 7), cv::FONT_HERSHEY_SIMPLEX,
                    scale, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
    for (std::size_t r = 0; r < cells.size(); ++r) {
        if (cells[r].size() != columns)
            throw Error(fmt::format("picture grid: row {} has {} pictures, expected {}", r, cells[r].size(), columns));
        const int y = label_h + static_cast<int>(r) * (tile + gap);
        cv::putText(grid, fit(row_labels[r], label_w - 6, scale), cv::Point(4, y + tile / 2),
                    cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
        for (std::size_t c = 0; c < columns; ++c) {
            const cv::Mat& cell = cells[r][c];
            if (cell.type() != CV_8UC3) throw Error(fmt::format("picture grid: cell ({}, {}) is not 8-bit RGB", r, c));
            cv::Mat scaled;
            cv::resize(cell, scaled, cv::Size(tile, tile), 0, 0, cv::INTER_AREA);
            scaled.copyTo(grid(cv::Rect(label_w + static_cast<int>(c) * (tile + gap), y, tile, tile)));
        }
    }
    return grid;
}

}  // namespace sightline
