// Strict JPEG decoding for read_image_rgb (jpeg_decode.cpp).
#pragma once

#include <string>

#include <opencv2/core.hpp>

namespace sightline::detail {

// Decodes JPEG bytes to RGB with libjpeg-turbo. Error naming `name` for undecodable data, and
// for data libjpeg only warns about ("corrupt JPEG (Corrupt JPEG data: ...)"). An empty Mat for
// CMYK/YCCK files, which the caller decodes with OpenCV. source_channels: as stored.
cv::Mat decode_jpeg_rgb(const std::string& bytes, const std::string& name, int* source_channels);

}  // namespace sightline::detail
