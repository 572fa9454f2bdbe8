// Index masks as palette PNGs through libpng (OpenCV expands palettes to colours).
//
// libpng reports errors by longjmp. Every setjmp below sits in a small function whose locals
// are plain data, so a longjmp out of libpng never skips a C++ destructor; the png structs are
// owned by RAII guards in the caller. libpng never prints: errors and warnings go to our
// handlers, which keep the first message for the exception.
#include <png.h>

#include <csetjmp>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "core/image_header.hpp"
#include "sightline/palette.hpp"
#include "sightline/image_limits.hpp"

namespace sightline {

std::array<uint8_t, 3> voc_color(int index) {
    // Bit-interleaved VOC map: bits 0, 1, 2 of the index go to the top bits of r, g, b, the
    // next three bits to the next-lower bits, and so on.
    std::array<uint8_t, 3> rgb{0, 0, 0};
    int c = index & 0xff;
    for (int j = 0; j < 8; ++j) {
        rgb[0] |= static_cast<uint8_t>(((c >> 0) & 1) << (7 - j));
        rgb[1] |= static_cast<uint8_t>(((c >> 1) & 1) << (7 - j));
        rgb[2] |= static_cast<uint8_t>(((c >> 2) & 1) << (7 - j));
        c >>= 3;
    }
    return rgb;
}

namespace detail {
namespace {

// Shared by the libpng callbacks of one read or write.
struct PngIo {
    const unsigned char* data = nullptr;  // reading: the whole file
    std::size_t size = 0;
    std::size_t pos = 0;
    std::string* out = nullptr;  // writing: the encoded bytes
    char message[200] = {0};     // the first libpng error
};

void on_error(png_structp png, png_const_charp message) {
    auto* io = static_cast<PngIo*>(png_get_error_ptr(png));
    if (io && io->message[0] == 0) std::snprintf(io->message, sizeof io->message, "%s", message);
    png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}  // warnings are not errors; stay silent

void on_read(png_structp png, png_bytep dest, png_size_t length) {
    auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
    if (io->size - io->pos < length) png_error(png, "file is truncated");
    std::memcpy(dest, io->data + io->pos, length);
    io->pos += length;
}

void on_write(png_structp png, png_bytep src, png_size_t length) {
    auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
    io->out->append(reinterpret_cast<const char*>(src), length);
}

void on_flush(png_structp) {}

struct ReadGuard {
    png_structp png = nullptr;
    png_infop info = nullptr;
    ~ReadGuard() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

struct WriteGuard {
    png_structp png = nullptr;
    png_infop info = nullptr;
    ~WriteGuard() { png_destroy_write_struct(&png, info ? &info : nullptr); }
};

// Sets up a libpng reader over `bytes` with the silent handlers above.
void start_reading(const std::string& bytes, const std::string& name, PngIo& io, ReadGuard& g) {
    io.data = reinterpret_cast<const unsigned char*>(bytes.data());
    io.size = bytes.size();
    g.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, on_error, on_warning);
    if (g.png) g.info = png_create_info_struct(g.png);
    if (!g.png || !g.info) throw Error(fmt::format("{}: out of memory reading PNG", name));
    png_set_read_fn(g.png, &io, on_read);
    png_set_benign_errors(g.png, 1);
}

struct Header {
    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0;
};

// Phase 1 of reading: the header, and the transforms that give one byte per pixel without
// changing values (png_set_packing unpacks 1/2/4-bit pixels; it does not rescale them).
bool read_header(png_structp png, png_infop info, Header* h) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_read_info(png, info);
    int interlace = 0;
    png_get_IHDR(png, info, &h->width, &h->height, &h->bit_depth, &h->color_type, &interlace,
                 nullptr, nullptr);
    if (h->bit_depth < 8) png_set_packing(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    return true;
}

// Phase 1 for colour reading: every layout becomes 8-bit RGB.
bool read_rgb_header(png_structp png, png_infop info, png_uint_32* w, png_uint_32* h, int* depth, int* type) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_read_info(png, info);
    int interlace = 0;
    png_get_IHDR(png, info, w, h, depth, type, &interlace, nullptr, nullptr);
    if (*type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (*type == PNG_COLOR_TYPE_GRAY && *depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (*depth == 16) png_set_scale_16(png);
    if (*type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    if (*type == PNG_COLOR_TYPE_GRAY || *type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    return true;
}

// Phase 2: the pixels into caller-owned rows.
bool read_pixels(png_structp png, png_infop info, png_bytepp rows) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_read_image(png, rows);
    png_read_end(png, info);
    return true;
}

bool write_png(png_structp png, png_infop info, png_uint_32 width, png_uint_32 height,
               const png_color* palette, png_bytepp rows) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_PLTE(png, info, palette, 256);
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
    return true;
}

const char* color_type_name(int color_type) {
    switch (color_type) {
        case PNG_COLOR_TYPE_RGB: return "RGB";
        case PNG_COLOR_TYPE_RGB_ALPHA: return "RGBA";
        case PNG_COLOR_TYPE_GRAY_ALPHA: return "grey+alpha";
        default: return "unknown";
    }
}

}  // namespace
}  // namespace detail

// Decodes any PNG to 8-bit RGB with libpng's silent handlers (OpenCV's PNG decoder prints
// libpng's warnings and errors on stderr). `source_channels`: 1 grey, 2 grey+alpha, 3 colour,
// 4 colour+alpha, as stored.
cv::Mat decode_png_rgb(const std::string& bytes, const std::string& name, int* source_channels) {
    using namespace detail;
    PngIo io;
    ReadGuard g;
    start_reading(bytes, name, io, g);
    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0;
    if (!read_rgb_header(g.png, g.info, &width, &height, &bit_depth, &color_type))
        throw Error(fmt::format("{}: cannot decode image (corrupt PNG: {})", name, io.message));
    switch (color_type) {
        case PNG_COLOR_TYPE_GRAY: *source_channels = 1; break;
        case PNG_COLOR_TYPE_GRAY_ALPHA: *source_channels = 2; break;
        case PNG_COLOR_TYPE_RGB_ALPHA: *source_channels = 4; break;
        default: *source_channels = 3; break;
    }
    check_image_pixels(name, width, height);
    if (png_get_rowbytes(g.png, g.info) != width * 3)
        throw Error(fmt::format("{}: cannot decode image (unsupported PNG layout)", name));
    cv::Mat rgb(static_cast<int>(height), static_cast<int>(width), CV_8UC3);
    std::vector<png_bytep> rows(height);
    for (png_uint_32 r = 0; r < height; ++r) rows[r] = rgb.ptr<png_byte>(static_cast<int>(r));
    if (!read_pixels(g.png, g.info, rows.data()))
        throw Error(fmt::format("{}: cannot decode image (corrupt PNG: {})", name, io.message));
    return rgb;
}

cv::Mat read_index_png(const fs::path& path) {
    using namespace detail;
    const std::string name = path.string();
    if (!fs::exists(path)) throw Error(fmt::format("{}: no such mask file", name));
    std::string bytes = read_file(path);
    if (bytes.empty()) throw Error(fmt::format("{}: mask file is empty", name));
    if (bytes.size() < 8 || png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) != 0)
        throw Error(fmt::format("{}: not a PNG file (masks must be palette or 8-bit grey PNGs)", name));
    const detail::ImageHeader declared = detail::read_image_header(bytes);
    check_image_pixels(name, declared.width, declared.height);

    PngIo io;
    ReadGuard g;
    start_reading(bytes, name, io, g);
    // A palette index beyond the PLTE entries is still a valid label; do not check it.
    png_set_check_for_invalid_index(g.png, 0);

    Header h;
    if (!read_header(g.png, g.info, &h))
        throw Error(fmt::format("{}: corrupt PNG ({})", name, io.message));
    if (h.color_type != PNG_COLOR_TYPE_PALETTE && h.color_type != PNG_COLOR_TYPE_GRAY)
        throw Error(fmt::format(
            "{}: {} PNG is not an index mask (expected a palette or 8-bit grey PNG whose values "
            "are class indices)",
            name, color_type_name(h.color_type)));
    if (h.bit_depth > 8)
        throw Error(fmt::format("{}: {}-bit grey PNG is not an index mask (expected 8 bits)", name,
                                h.bit_depth));
    if (png_get_rowbytes(g.png, g.info) != h.width)
        throw Error(fmt::format("{}: unexpected PNG row layout ({} bytes for {} pixels)", name,
                                png_get_rowbytes(g.png, g.info), h.width));
    check_image_pixels(name, h.width, h.height);

    cv::Mat indices(static_cast<int>(h.height), static_cast<int>(h.width), CV_8UC1);
    std::vector<png_bytep> rows(h.height);
    for (png_uint_32 r = 0; r < h.height; ++r) rows[r] = indices.ptr<png_byte>(static_cast<int>(r));
    if (!read_pixels(g.png, g.info, rows.data()))
        throw Error(fmt::format("{}: corrupt PNG ({})", name, io.message));
    return indices;
}

void write_palette_png(const fs::path& path, const cv::Mat& indices) {
    using namespace detail;
    const std::string name = path.string();
    if (indices.empty() || indices.type() != CV_8UC1)
        throw Error(fmt::format("{}: a palette mask needs non-empty 8-bit single-channel indices, "
                                "got type {} with {} channels",
                                name, indices.depth(), indices.channels()));
    std::string encoded;
    PngIo io;
    io.out = &encoded;
    WriteGuard g;
    g.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &io, on_error, on_warning);
    if (g.png) g.info = png_create_info_struct(g.png);
    if (!g.png || !g.info) throw Error(fmt::format("{}: out of memory writing PNG", name));
    png_set_write_fn(g.png, &io, on_write, on_flush);

    png_color palette[256];
    for (int i = 0; i < 256; ++i) {
        auto c = voc_color(i);
        palette[i] = png_color{c[0], c[1], c[2]};
    }
    std::vector<png_bytep> rows(static_cast<std::size_t>(indices.rows));
    for (int r = 0; r < indices.rows; ++r) rows[r] = const_cast<png_bytep>(indices.ptr<png_byte>(r));
    if (!write_png(g.png, g.info, static_cast<png_uint_32>(indices.cols),
                   static_cast<png_uint_32>(indices.rows), palette, rows.data()))
        throw Error(fmt::format("{}: cannot encode PNG ({})", name, io.message));
    write_file_atomic(path, encoded);
}

}  // namespace sightline
