// read_image_rgb on arbitrary bytes: Sightline's own header checks (size limit, truncated
// JPEG) in front of libpng and OpenCV's decoders.
#include "fuzz_support.hpp"
#include "sightline/core.hpp"
#include "sightline/image_limits.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    sightline::set_max_image_pixels(4096 * 4096);  // bounded work per input
    const auto path = sightline::fuzz::scratch("image.bin");
    sightline::fuzz::write(path, data, size);
    try {
        sightline::LoadedImage image = sightline::read_image_rgb(path);
        if (image.rgb.type() != CV_8UC3) std::abort();
    } catch (const sightline::Error&) {
    }
    return 0;
}
