// Pictures for people: heat-map overlays (and, later, the HTML report).
#pragma once

#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace sightline {

// OpenCV colour map by name: jet, viridis, turbo, inferno, magma, plasma, hot, parula, ...
// Throws UsageError listing the names for an unknown one.
int colormap_from_name(const std::string& name);

// pytorch-grad-cam's show_cam_on_image: heat = colormap(uint8(255 * map)), blend
// (1 - image_weight) * heat + image_weight * image, divide by the blend's max, uint8.
// rgb: CV_8UC3 RGB; map: CV_32FC1 in [0,1] of the same size. Returns CV_8UC3 RGB.
cv::Mat overlay_heatmap(const cv::Mat& rgb, const cv::Mat& map, int colormap, float image_weight = 0.5f);

// A labelled grid: cells[row][column] CV_8UC3 RGB (any size, scaled to tile x tile), a label
// per row on the left and per column on top. Throws Error for ragged rows or label counts.
// Returns CV_8UC3 RGB on white.
cv::Mat picture_grid(const std::vector<std::vector<cv::Mat>>& cells, const std::vector<std::string>& row_labels,
                     const std::vector<std::string>& column_labels, int tile = 96);

}  // namespace sightline
