#include "core/image_header.hpp"

#include <cstdlib>

namespace sightline::detail {

namespace {

uint32_t big_endian(const unsigned char* p, int bytes) {
    uint32_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
    return v;
}

int32_t little_endian_i32(const unsigned char* p) {
    return static_cast<int32_t>(p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24));
}

// Start-of-frame markers carry the picture size (C4 = DHT, C8 = JPG, CC = DAC are not frames).
bool is_frame_marker(unsigned char m) { return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC; }

// Walks the JPEG marker segments (ITU T.81 annex B): header segments carry a 2-byte length;
// after each start-of-scan the entropy-coded data runs to the next marker that is not a
// stuffed 0xFF00 or a restart marker. Complete when the end-of-image marker is reached.
void read_jpeg(const unsigned char* d, std::size_t n, ImageHeader& h) {
    std::size_t pos = 2;
    h.complete = false;
    while (pos < n) {
        if (d[pos] != 0xFF) return;  // not at a marker: corrupt; the decoder will say so
        while (pos < n && d[pos] == 0xFF) ++pos;  // fill bytes
        if (pos >= n) return;
        const unsigned char marker = d[pos++];
        if (marker == 0xD9) {
            h.complete = true;
            return;
        }
        if ((marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) continue;  // no length
        if (n - pos < 2) return;
        const std::size_t length = big_endian(d + pos, 2);
        if (length < 2 || n - pos < length) return;
        if (is_frame_marker(marker) && length >= 7) {
            h.height = big_endian(d + pos + 3, 2);
            h.width = big_endian(d + pos + 5, 2);
        }
        pos += length;
        if (marker != 0xDA) continue;
        while (pos + 1 < n) {  // entropy-coded data
            if (d[pos] == 0xFF && d[pos + 1] != 0x00 && d[pos + 1] != 0xFF && (d[pos + 1] < 0xD0 || d[pos + 1] > 0xD7))
                break;
            ++pos;
        }
        if (pos + 1 >= n) return;
    }
}

// TIFF (6.0, section 2): byte order "II" or "MM", 42, the offset of the first image file
// directory; its entries 256 (ImageWidth) and 257 (ImageLength) are SHORT or LONG values.
// OpenCV decodes the first directory's image.
void read_tiff(const unsigned char* d, std::size_t n, ImageHeader& h) {
    const bool little = d[0] == 'I';
    auto u16 = [&](std::size_t p) -> uint32_t { return little ? d[p] | d[p + 1] << 8 : d[p] << 8 | d[p + 1]; };
    auto u32 = [&](std::size_t p) -> uint32_t {
        return little ? (u16(p) | uint32_t{u16(p + 2)} << 16) : (uint32_t{u16(p)} << 16 | u16(p + 2));
    };
    const std::size_t directory = u32(4);
    if (directory > n || n - directory < 2) return;
    const uint32_t entries = u16(directory);
    for (uint32_t i = 0; i < entries; ++i) {
        const std::size_t e = directory + 2 + std::size_t{12} * i;
        if (e > n || n - e < 12) return;
        const uint32_t tag = u16(e), type = u16(e + 2);
        const int64_t value = type == 3 ? u16(e + 8) : type == 4 ? u32(e + 8) : 0;
        if (tag == 256) h.width = value;
        if (tag == 257) h.height = value;
    }
}

}  // namespace

ImageHeader read_image_header(const std::string& bytes) {
    ImageHeader h;
    const auto* d = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::size_t n = bytes.size();
    if (n >= 8 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0) {
        h.format = ImageHeader::Format::kPng;
        if (n >= 24 && bytes.compare(12, 4, "IHDR") == 0) {
            h.width = big_endian(d + 16, 4);
            h.height = big_endian(d + 20, 4);
        }
    } else if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) {
        h.format = ImageHeader::Format::kJpeg;
        read_jpeg(d, n, h);
    } else if (n >= 8 && ((d[0] == 'I' && d[1] == 'I' && d[2] == 42 && d[3] == 0) ||
                          (d[0] == 'M' && d[1] == 'M' && d[2] == 0 && d[3] == 42))) {
        h.format = ImageHeader::Format::kTiff;
        read_tiff(d, n, h);
    } else if (n >= 26 && d[0] == 'B' && d[1] == 'M') {
        h.format = ImageHeader::Format::kBmp;
        h.width = std::llabs(little_endian_i32(d + 18));
        h.height = std::llabs(little_endian_i32(d + 22));
    }
    return h;
}

}  // namespace sightline::detail
