// Procedural textures for the generators: value noise, the six synth contexts, a neutral
// filler and random backgrounds. Images are CV_32FC3 RGB with values in [0, 255].
#pragma once

#include <opencv2/core.hpp>

#include "sightline/data.hpp"

namespace sightline::detail {

// Fractal value noise, CV_32F in [0, 1] (min-max stretched): `octaves` layers of random
// grids with cells_x x cells_y cells, bicubically upsampled, each twice as fine and half as
// strong as the one before.
cv::Mat fbm_noise(int height, int width, Rng& rng, double cells_x, double cells_y, int octaves);

// RGB (0..255) of a colour given as hue in degrees, saturation and value in [0, 1].
cv::Vec3f hsv_color(double hue, double saturation, double value);

// The context texture of synth class `cls` (1 boat/water, 2 train/tracks, 3 plane/sky,
// 4 car/road, 5 cow/grass, 6 fish/reef) over a whole height x width image.
cv::Mat render_context(int cls, int height, int width, Rng& rng);
// Low-contrast neutral texture for image parts that belong to no context.
cv::Mat render_filler(int height, int width, Rng& rng);
// A random background unrelated to any class (Fashion composites): blended noise, stripes,
// checks, gradients or one of the contexts.
cv::Mat render_background(int height, int width, Rng& rng);

inline float smoothstep(float lo, float hi, float x) {
    float t = (x - lo) / (hi - lo);
    t = t < 0.f ? 0.f : (t > 1.f ? 1.f : t);
    return t * t * (3.f - 2.f * t);
}

}  // namespace sightline::detail
