// pycocotools' compressed RLE strings (maskApi.c rleToString / rleFrString): a LEB128-like
// code with 5 value bits per character plus a continuation bit, offset by 48 so the text is
// printable ('0'..'o'). From the third count on, the difference to the count two before is
// stored (runs of 1s resemble runs of 1s), so values can be negative: the last group's bit
// 0x10 is the sign.
#include <fmt/format.h>

#include "sightline/coco.hpp"

namespace sightline {

namespace {

constexpr int kFirstChar = 48;                // '0'
constexpr int kLastChar = kFirstChar + 0x3f;  // 'o'
constexpr int kMaxGroups = 12;                // 60 bits, far beyond any mask size

}  // namespace

std::string rle_to_string(const Rle& rle) {
    std::string out;
    for (std::size_t i = 0; i < rle.counts.size(); ++i) {
        int64_t x = rle.counts[i];
        if (i > 2) x -= rle.counts[i - 2];  // i > 2 (not >= 2), as pycocotools
        for (bool more = true; more;) {
            int c = static_cast<int>(x & 0x1f);
            x >>= 5;  // arithmetic shift keeps the sign
            more = (c & 0x10) ? x != -1 : x != 0;
            if (more) c |= 0x20;
            out += static_cast<char>(c + kFirstChar);
        }
    }
    return out;
}

Rle rle_from_string(const std::string& text, uint32_t h, uint32_t w) {
    Rle rle{h, w, {}};
    uint64_t total = 0;
    std::size_t p = 0;
    while (p < text.size()) {
        const std::size_t start = p;
        int64_t x = 0;
        int k = 0;
        for (bool more = true; more; ++k, ++p) {
            if (p >= text.size())
                throw Error(fmt::format("compressed RLE: the count at character {} is cut off", start));
            const int c = static_cast<unsigned char>(text[p]) - kFirstChar;
            if (c < 0 || c + kFirstChar > kLastChar)
                throw Error(fmt::format("compressed RLE: character '{}' at {} is not in '0'..'o'",
                                        text[p], p));
            if (k == kMaxGroups)
                throw Error(fmt::format("compressed RLE: the count at character {} is too long", start));
            x |= static_cast<int64_t>(c & 0x1f) << (5 * k);
            more = (c & 0x20) != 0;
            if (!more && (c & 0x10)) x |= static_cast<int64_t>(~uint64_t{0} << (5 * (k + 1)));
        }
        const std::size_t m = rle.counts.size();
        if (m > 2) x += rle.counts[m - 2];
        if (x < 0 || x > static_cast<int64_t>(UINT32_MAX))
            throw Error(fmt::format("compressed RLE: run {} has length {}", m, x));
        rle.counts.push_back(static_cast<uint32_t>(x));
        total += static_cast<uint64_t>(x);
    }
    if (total != static_cast<uint64_t>(h) * w)
        throw Error(fmt::format("compressed RLE: runs cover {} pixels, the {}x{} mask has {}", total,
                                w, h, static_cast<uint64_t>(h) * w));
    return rle;
}

}  // namespace sightline
