// Index masks as palette PNGs (PASCAL VOC convention: 8-bit indices, VOC colour map,
// 255 = ignore / void). OpenCV's imread expands a palette to colours, so these go through
// libpng and keep the indices.
#pragma once

#include <array>

#include <opencv2/core.hpp>

#include "sightline/core.hpp"

namespace sightline {

// The PASCAL VOC colour of class index i (bit-interleaved map; 255 -> (224, 224, 192)).
std::array<uint8_t, 3> voc_color(int index);

// Reads a mask PNG as CV_8UC1 indices: palette PNGs give their indices, 8-bit grey PNGs
// their values. RGB PNGs are rejected (the colours are not indices). Throws Error naming
// the file when it is missing, corrupt or of another kind.
cv::Mat read_index_png(const fs::path& path);

// Writes CV_8UC1 indices as a palette PNG with the VOC colours, atomically.
void write_palette_png(const fs::path& path, const cv::Mat& indices);

}  // namespace sightline
