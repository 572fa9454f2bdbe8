// JPEG decoding with libjpeg-turbo, strictly. OpenCV's decoder prints libjpeg's warnings
// ("Corrupt JPEG data: ...") to stderr and returns whatever pixels it recovered, so a file
// damaged in the middle of its data would be used without a word; here a warning is an error
// that names the file. libjpeg reports fatal errors by longjmp: as in palette_png.cpp, each
// setjmp sits in a small function whose locals are plain data, so the jump never skips a C++
// destructor.
#include <csetjmp>
#include <cstdio>

#include <jpeglib.h>

#include <fmt/format.h>

#include "core/jpeg_decode.hpp"
#include "sightline/core.hpp"
#include "sightline/image_limits.hpp"

namespace sightline::detail {

namespace {

struct Reporter {
    jpeg_error_mgr manager;  // first member: libjpeg's err pointer is the Reporter's address
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    bool fatal;
    bool warned;
};

Reporter& reporter(j_common_ptr info) { return *reinterpret_cast<Reporter*>(info->err); }

void on_error(j_common_ptr info) {
    Reporter& r = reporter(info);
    (*info->err->format_message)(info, r.message);
    r.fatal = true;
    std::longjmp(r.jump, 1);
}

// Level -1: a warning (corrupt data libjpeg worked around); levels >= 0 are trace messages.
void on_message(j_common_ptr info, int level) {
    Reporter& r = reporter(info);
    if (level >= 0 || r.warned) return;
    (*info->err->format_message)(info, r.message);
    r.warned = true;
}

bool start(jpeg_decompress_struct* info, Reporter* r, const unsigned char* data, unsigned long size,
           bool* colour_convertible) {
    if (setjmp(r->jump)) return false;
    jpeg_create_decompress(info);
    jpeg_mem_src(info, data, size);
    jpeg_read_header(info, TRUE);
    // Grey and YCbCr/RGB convert to RGB; CMYK/YCCK are left to OpenCV.
    *colour_convertible = info->num_components == 1 || info->num_components == 3;
    if (!*colour_convertible) return true;
    info->out_color_space = JCS_RGB;
    jpeg_start_decompress(info);
    return true;
}

bool read_rows(jpeg_decompress_struct* info, Reporter* r, unsigned char* pixels, std::size_t stride) {
    if (setjmp(r->jump)) return false;
    while (info->output_scanline < info->output_height) {
        JSAMPROW row = pixels + static_cast<std::size_t>(info->output_scanline) * stride;
        jpeg_read_scanlines(info, &row, 1);
    }
    jpeg_finish_decompress(info);
    return true;
}

}  // namespace

cv::Mat decode_jpeg_rgb(const std::string& bytes, const std::string& name, int* source_channels) {
    jpeg_decompress_struct info{};
    Reporter r{};
    info.err = jpeg_std_error(&r.manager);
    r.manager.error_exit = on_error;
    r.manager.emit_message = on_message;
    bool convertible = false;
    cv::Mat rgb;
    bool ok = start(&info, &r, reinterpret_cast<const unsigned char*>(bytes.data()),
                    static_cast<unsigned long>(bytes.size()), &convertible);
    if (ok && convertible) {
        try {
            check_image_pixels(name, info.output_width, info.output_height);
        } catch (...) {
            jpeg_destroy_decompress(&info);
            throw;
        }
        rgb.create(static_cast<int>(info.output_height), static_cast<int>(info.output_width), CV_8UC3);
        ok = read_rows(&info, &r, rgb.data, rgb.step[0]);
    }
    if (source_channels) *source_channels = info.num_components;
    jpeg_destroy_decompress(&info);
    if (!ok) throw Error(fmt::format("{}: cannot decode JPEG ({})", name, r.message));
    if (r.warned) throw Error(fmt::format("{}: corrupt JPEG ({})", name, r.message));
    return convertible ? rgb : cv::Mat();
}

}  // namespace sightline::detail
