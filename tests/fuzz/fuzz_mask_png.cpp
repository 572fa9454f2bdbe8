// read_index_png (palette / grey masks through libpng) on arbitrary bytes.
#include "fuzz_support.hpp"
#include "sightline/palette.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    const auto path = sightline::fuzz::scratch("mask.png");
    sightline::fuzz::write(path, data, size);
    try {
        cv::Mat m = sightline::read_index_png(path);
        if (m.type() != CV_8UC1) std::abort();
    } catch (const sightline::Error&) {
    }
    return 0;
}
