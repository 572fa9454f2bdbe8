// Image reading and writing through OpenCV, with errors that name the file.
#include <fmt/format.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/image_header.hpp"
#include "core/jpeg_decode.hpp"
#include "sightline/core.hpp"
#include "sightline/image_limits.hpp"

namespace sightline {

namespace {

int64_t g_max_image_pixels = kDefaultMaxImagePixels;

}  // namespace

int64_t max_image_pixels() { return g_max_image_pixels; }
void set_max_image_pixels(int64_t pixels) { g_max_image_pixels = pixels; }

void check_image_pixels(const std::string& name, int64_t width, int64_t height) {
    // Divided, not multiplied: a header may declare sizes whose product overflows.
    if (width > 0 && height > 0 && (width > g_max_image_pixels || height > g_max_image_pixels / width))
        throw Error(fmt::format("{}: image too large ({} x {} > {} pixels; raise the limit with "
                                "SIGHTLINE_MAX_PIXELS)",
                                name, width, height, g_max_image_pixels));
}

LoadedImage read_image_rgb(const fs::path& path) {
    if (!fs::exists(path)) throw Error(fmt::format("{}: no such image file", path.string()));
    if (fs::is_directory(path)) throw Error(fmt::format("{}: is a folder, not an image file", path.string()));
    if (fs::file_size(path) == 0) throw Error(fmt::format("{}: image file is empty", path.string()));
    std::string bytes = read_file(path);
    const detail::ImageHeader header = detail::read_image_header(bytes);
    check_image_pixels(path.string(), header.width, header.height);
    if (header.format == detail::ImageHeader::Format::kJpeg && !header.complete)
        throw Error(fmt::format("{}: truncated JPEG (the data ends before the end-of-image marker)", path.string()));
    if (header.format == detail::ImageHeader::Format::kPng) {
        LoadedImage png;
        png.rgb = decode_png_rgb(bytes, path.string(), &png.source_channels);
        if (png.source_channels == 2) png.source_channels = 1;  // grey + alpha: grey for the note
        return png;
    }
    if (header.format == detail::ImageHeader::Format::kJpeg) {
        LoadedImage jpeg;
        jpeg.rgb = detail::decode_jpeg_rgb(bytes, path.string(), &jpeg.source_channels);
        if (!jpeg.rgb.empty()) return jpeg;  // else CMYK: OpenCV below
    }
    cv::Mat raw;
    try {
        raw = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8U, bytes.data()),
                           cv::IMREAD_UNCHANGED);
    } catch (const cv::Exception&) {
        raw.release();
    }
    if (raw.empty())
        throw Error(fmt::format("{}: cannot decode image (corrupt or unsupported format)", path.string()));
    // Formats whose header is not read above (OpenCV decodes more than PNG/JPEG/BMP/TIFF) meet
    // the limit after decoding; OpenCV itself refuses more than 2^30 pixels.
    check_image_pixels(path.string(), raw.cols, raw.rows);
    // 16-bit images are scaled to 8 bits; the models see 0..255 colour like the peers.
    if (raw.depth() == CV_16U) raw.convertTo(raw, CV_8U, 1.0 / 257.0);
    else if (raw.depth() != CV_8U)
        throw Error(fmt::format("{}: unsupported pixel depth (expected 8 or 16 bits)", path.string()));
    LoadedImage out;
    out.source_channels = raw.channels();
    switch (raw.channels()) {
        case 1: cv::cvtColor(raw, out.rgb, cv::COLOR_GRAY2RGB); break;
        case 3: cv::cvtColor(raw, out.rgb, cv::COLOR_BGR2RGB); break;
        case 4: cv::cvtColor(raw, out.rgb, cv::COLOR_BGRA2RGB); break;
        default:
            throw Error(fmt::format("{}: unsupported channel count {}", path.string(), raw.channels()));
    }
    return out;
}

void write_image_rgb(const fs::path& path, const cv::Mat& rgb) {
    cv::Mat bgr;
    if (rgb.channels() == 3) cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    else bgr = rgb;
    std::vector<uchar> buffer;
    std::string ext = path.extension().string();
    if (!cv::imencode(ext.empty() ? ".png" : ext, bgr, buffer))
        throw Error(fmt::format("{}: cannot encode image", path.string()));
    write_file_atomic(path, buffer.data(), buffer.size());
}

}  // namespace sightline
