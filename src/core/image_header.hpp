// What an image file declares before any pixel is decoded: its size, and for JPEG whether the
// data reaches the end-of-image marker. Checked before decoding so that a small file declaring
// a huge picture is refused without allocating it, and a truncated JPEG (which libjpeg decodes
// with a grey bottom and only a warning on stderr) is refused.
#pragma once

#include <cstdint>
#include <string>

namespace sightline::detail {

struct ImageHeader {
    enum class Format { kUnknown, kPng, kJpeg, kBmp, kTiff } format = Format::kUnknown;
    int64_t width = 0, height = 0;  // 0 when the header does not say (or is cut short)
    bool complete = true;           // JPEG: an end-of-image marker follows the last scan
};

// Never throws and never reads outside `bytes`.
ImageHeader read_image_header(const std::string& bytes);

}  // namespace sightline::detail
