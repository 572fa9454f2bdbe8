// The largest image Sightline decodes. Checked against the size a file's header declares,
// before any pixel is decoded, so a small file declaring a huge picture cannot exhaust memory.
#pragma once

#include <cstdint>
#include <string>

namespace sightline {

// 8192 x 8192. main() sets the limit from the environment variable SIGHTLINE_MAX_PIXELS.
constexpr int64_t kDefaultMaxImagePixels = int64_t{8192} * 8192;
int64_t max_image_pixels();
void set_max_image_pixels(int64_t pixels);
// Throws Error "<name>: image too large (W x H > limit pixels; ...)" beyond the limit; sizes
// of 0 (not declared) pass.
void check_image_pixels(const std::string& name, int64_t width, int64_t height);

}  // namespace sightline
