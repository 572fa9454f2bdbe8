// Procedural context textures. Lengths are given for a 96-pixel image and scaled with the
// image size, so a scene looks the same at every resolution.
#include "textures.hpp"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

namespace sightline::detail {

namespace {

constexpr float kTwoPi = 6.28318530717958647692f;

cv::Vec3f mix(const cv::Vec3f& a, const cv::Vec3f& b, float t) { return a * (1.f - t) + b * t; }

// Calls fn(x, y, pixel) for every pixel of a CV_32FC3 image.
template <typename Fn>
void for_pixels(cv::Mat& img, Fn&& fn) {
    for (int y = 0; y < img.rows; ++y) {
        auto* row = img.ptr<cv::Vec3f>(y);
        for (int x = 0; x < img.cols; ++x) fn(x, y, row[x]);
    }
}

// Horizontal bands: boat on water, waves as sines bent by low-frequency noise, sun glints
// on the crests, darker with depth.
cv::Mat water(int h, int w, Rng& rng) {
    const float sc = h / 96.f;
    cv::Vec3f base = hsv_color(rng.uniform(195, 215), rng.uniform(0.6, 0.85), rng.uniform(0.45, 0.65));
    const float wavelength = static_cast<float>(rng.uniform(6, 11)) * sc;
    const float swell = wavelength * static_cast<float>(rng.uniform(4, 7));
    const float phase = static_cast<float>(rng.uniform(0, kTwoPi));
    cv::Mat warp = fbm_noise(h, w, rng, 3, 3, 3), glint = fbm_noise(h, w, rng, 24, 24, 2);
    cv::Mat img(h, w, CV_32FC3);
    for_pixels(img, [&](int x, int y, cv::Vec3f& px) {
        float wave = std::sin(kTwoPi * (y / wavelength + 0.6f * warp.at<float>(y, x)) +
                              0.8f * std::sin(kTwoPi * x / swell + phase));
        float depth = 1.1f - 0.25f * y / h;
        cv::Vec3f c = base * ((0.78f + 0.22f * wave) * depth);
        float spark = smoothstep(0.8f, 0.97f, wave) * smoothstep(0.35f, 0.7f, glint.at<float>(y, x));
        px = mix(c, cv::Vec3f(235, 245, 255), 0.75f * spark);
    });
    return img;
}

// Railway: grainy ballast, wooden sleepers across, two steel rails along a slightly tilted
// direction, track pairs repeating across the region.
cv::Mat tracks(int h, int w, Rng& rng) {
    const float sc = h / 96.f;
    const float angle = static_cast<float>(rng.uniform(-0.2, 0.2));
    const float ca = std::cos(angle), sa = std::sin(angle);
    const float period = static_cast<float>(rng.uniform(30, 40)) * sc;
    const float gauge = static_cast<float>(rng.uniform(11, 14)) * sc;
    const float sleeper = static_cast<float>(rng.uniform(6, 8)) * sc;
    const float offset = static_cast<float>(rng.uniform(0, period)), shift = static_cast<float>(rng.uniform(0, sleeper));
    cv::Vec3f ballast = hsv_color(rng.uniform(20, 40), rng.uniform(0.1, 0.25), rng.uniform(0.45, 0.6));
    cv::Vec3f wood = hsv_color(rng.uniform(20, 32), rng.uniform(0.45, 0.65), rng.uniform(0.3, 0.42));
    cv::Vec3f steel = hsv_color(rng.uniform(200, 230), rng.uniform(0.02, 0.1), rng.uniform(0.7, 0.85));
    cv::Mat grain = fbm_noise(h, w, rng, 28, 28, 2), patch = fbm_noise(h, w, rng, 4, 4, 2);
    cv::Mat img(h, w, CV_32FC3);
    for_pixels(img, [&](int x, int y, cv::Vec3f& px) {
        float u = x * ca + y * sa, v = -x * sa + y * ca;
        float across = std::fmod(v - offset + 1000 * period, period) - period / 2;  // 0 = track centre
        float g = grain.at<float>(y, x);
        cv::Vec3f c = ballast * (0.55f + 0.6f * g) * (0.85f + 0.3f * patch.at<float>(y, x));
        if (std::abs(across) < gauge / 2 + 4 * sc &&
            std::fmod(u + shift + 1000 * sleeper, sleeper) < 0.5f * sleeper)
            c = wood * (0.8f + 0.4f * g);
        float rail = std::min(std::abs(across - gauge / 2), std::abs(across + gauge / 2));
        if (rail < 1.3f * sc) c = steel * (1.0f - 0.25f * rail / (1.3f * sc));
        px = c;
    });
    return img;
}

// Sky: a vertical blue gradient with white clouds (thresholded noise, stretched sideways).
cv::Mat sky(int h, int w, Rng& rng) {
    const double hue = rng.uniform(205, 222), sat = rng.uniform(0.5, 0.8), val = rng.uniform(0.65, 0.85);
    cv::Vec3f top = hsv_color(hue, sat, val), bottom = hsv_color(hue, sat * 0.35, std::min(1.0, val + 0.15));
    const float tilt = static_cast<float>(rng.uniform(-0.2, 0.2));
    const float threshold = static_cast<float>(rng.uniform(0.45, 0.62));
    double cells = rng.uniform(2.0, 3.5);
    cv::Mat cloud = fbm_noise(h, w, rng, cells, cells * 1.6, 4);
    cv::Mat img(h, w, CV_32FC3);
    for_pixels(img, [&](int x, int y, cv::Vec3f& px) {
        float t = std::clamp((y + tilt * (x - w / 2.f)) / h, 0.f, 1.f);
        float n = cloud.at<float>(y, x);
        float c = smoothstep(threshold, threshold + 0.18f, n);
        px = mix(mix(top, bottom, t), cv::Vec3f(250, 250, 252) * (0.88f + 0.12f * n), 0.92f * c);
    });
    return img;
}

// Road: fine-grained asphalt with dashed white lane lines (and sometimes a solid yellow one)
// along a slightly tilted direction.
cv::Mat road(int h, int w, Rng& rng) {
    const float sc = h / 96.f;
    const float angle = static_cast<float>(rng.uniform(-0.2, 0.2));
    const float ca = std::cos(angle), sa = std::sin(angle);
    const float period = static_cast<float>(rng.uniform(28, 40)) * sc;
    const float dash = static_cast<float>(rng.uniform(8, 12)) * sc;
    const float width = static_cast<float>(rng.uniform(1.4, 2.0)) * sc;
    const float offset = static_cast<float>(rng.uniform(0, period)), shift = static_cast<float>(rng.uniform(0, 2 * dash));
    const bool yellow = rng.bernoulli(0.5);
    const float yellow_at = static_cast<float>(rng.uniform(0.3, 0.7)) * period;
    const float grey = static_cast<float>(rng.uniform(55, 85));
    cv::Vec3f asphalt(grey, grey, grey * static_cast<float>(rng.uniform(1.0, 1.08)));
    cv::Mat grain = fbm_noise(h, w, rng, 32, 32, 2), wear = fbm_noise(h, w, rng, 3, 3, 3);
    cv::Mat img(h, w, CV_32FC3);
    for_pixels(img, [&](int x, int y, cv::Vec3f& px) {
        float u = x * ca + y * sa, v = -x * sa + y * ca;
        float across = std::fmod(v - offset + 1000 * period, period);
        cv::Vec3f c = asphalt * (0.75f + 0.4f * grain.at<float>(y, x)) * (0.85f + 0.3f * wear.at<float>(y, x));
        if (std::abs(across - period / 2) < width / 2 &&
            std::fmod(u + shift + 1000 * dash, 2 * dash) < dash)
            c = cv::Vec3f(235, 235, 230);
        if (yellow && std::abs(across - yellow_at) < width / 2) c = cv::Vec3f(230, 190, 40);
        px = c;
    });
    return img;
}

// Grass: green with vertical blade streaks (noise with many more cells across than down)
// and a few lighter tufts.
cv::Mat grass(int h, int w, Rng& rng) {
    cv::Vec3f base = hsv_color(rng.uniform(80, 115), rng.uniform(0.55, 0.8), rng.uniform(0.4, 0.6));
    cv::Vec3f tip = hsv_color(rng.uniform(55, 75), rng.uniform(0.45, 0.7), rng.uniform(0.7, 0.85));
    cv::Mat blades = fbm_noise(h, w, rng, 40, 6, 2), tufts = fbm_noise(h, w, rng, 4, 4, 3);
    cv::Mat img(h, w, CV_32FC3);
    for_pixels(img, [&](int x, int y, cv::Vec3f& px) {
        float b = blades.at<float>(y, x), t = tufts.at<float>(y, x);
        cv::Vec3f c = base * (0.5f + 0.7f * b) * (0.8f + 0.35f * t);
        px = mix(c, tip, 0.6f * smoothstep(0.75f, 0.95f, b) * t);
    });
    return img;
}

// Reef: turquoise water with coral blobs in two or three colours and bright polyp dots.
cv::Mat reef(int h, int w, Rng& rng) {
    static const cv::Vec3f corals[] = {{235, 120, 60}, {225, 90, 150}, {140, 80, 170},
                                       {230, 200, 70}, {240, 150, 120}};
    cv::Vec3f water = hsv_color(rng.uniform(172, 190), rng.uniform(0.6, 0.8), rng.uniform(0.5, 0.65));
    cv::Vec3f a = corals[rng.uniform_int(0, 4)], b = corals[rng.uniform_int(0, 4)];
    const float threshold = static_cast<float>(rng.uniform(0.4, 0.5));
    cv::Mat blobs = fbm_noise(h, w, rng, 5, 5, 3), hue = fbm_noise(h, w, rng, 3, 3, 2),
            dots = fbm_noise(h, w, rng, 30, 30, 1);
    cv::Mat img(h, w, CV_32FC3);
    for_pixels(img, [&](int x, int y, cv::Vec3f& px) {
        float n = blobs.at<float>(y, x), d = dots.at<float>(y, x);
        cv::Vec3f coral = mix(a, b, smoothstep(0.35f, 0.65f, hue.at<float>(y, x))) * (0.7f + 0.45f * d);
        cv::Vec3f c = water * (0.85f + 0.3f * n);
        c = mix(c, coral, smoothstep(threshold, threshold + 0.06f, n));
        if (n > threshold + 0.06f && d > 0.8f) c = mix(c, cv::Vec3f(255, 240, 220), 0.6f);
        px = c;
    });
    return img;
}

cv::Mat noise_blend(int h, int w, Rng& rng) {
    cv::Vec3f a = hsv_color(rng.uniform(0, 360), rng.uniform(0.1, 0.7), rng.uniform(0.3, 0.9));
    cv::Vec3f b = hsv_color(rng.uniform(0, 360), rng.uniform(0.1, 0.7), rng.uniform(0.3, 0.9));
    double cells = rng.uniform(2, 8);
    cv::Mat n = fbm_noise(h, w, rng, cells, cells, 4);
    cv::Mat img(h, w, CV_32FC3);
    for_pixels(img, [&](int x, int y, cv::Vec3f& px) { px = mix(a, b, n.at<float>(y, x)); });
    return img;
}

cv::Mat stripes(int h, int w, Rng& rng) {
    cv::Vec3f a = hsv_color(rng.uniform(0, 360), rng.uniform(0.1, 0.7), rng.uniform(0.3, 0.9));
    cv::Vec3f b = hsv_color(rng.uniform(0, 360), rng.uniform(0.1, 0.7), rng.uniform(0.3, 0.9));
    const float angle = static_cast<float>(rng.uniform(0, kTwoPi / 2));
    const float period = static_cast<float>(rng.uniform(6, 20)) * h / 96.f;
    const bool checks = rng.bernoulli(0.4);
    cv::Mat grain = fbm_noise(h, w, rng, 16, 16, 2);
    cv::Mat img(h, w, CV_32FC3);
    for_pixels(img, [&](int x, int y, cv::Vec3f& px) {
        float u = x * std::cos(angle) + y * std::sin(angle), v = -x * std::sin(angle) + y * std::cos(angle);
        bool on = std::fmod(u / period + 1000.f, 1.f) < 0.5f;
        if (checks) on = on != (std::fmod(v / period + 1000.f, 1.f) < 0.5f);
        px = (on ? a : b) * (0.85f + 0.3f * grain.at<float>(y, x));
    });
    return img;
}

cv::Mat gradient(int h, int w, Rng& rng) {
    cv::Vec3f a = hsv_color(rng.uniform(0, 360), rng.uniform(0.1, 0.7), rng.uniform(0.3, 0.9));
    cv::Vec3f b = hsv_color(rng.uniform(0, 360), rng.uniform(0.1, 0.7), rng.uniform(0.3, 0.9));
    const float cx = static_cast<float>(rng.uniform(0, w)), cy = static_cast<float>(rng.uniform(0, h));
    cv::Mat grain = fbm_noise(h, w, rng, 12, 12, 2);
    cv::Mat img(h, w, CV_32FC3);
    for_pixels(img, [&](int x, int y, cv::Vec3f& px) {
        float r = std::hypot(x - cx, y - cy) / std::hypot(float(w), float(h));
        px = mix(a, b, std::min(1.f, 1.5f * r)) * (0.9f + 0.2f * grain.at<float>(y, x));
    });
    return img;
}

}  // namespace

cv::Mat fbm_noise(int height, int width, Rng& rng, double cells_x, double cells_y, int octaves) {
    cv::Mat sum = cv::Mat::zeros(height, width, CV_32F), layer;
    float amplitude = 1.f;
    for (int o = 0; o < octaves; ++o) {
        int gw = std::max(2, static_cast<int>(std::ceil(cells_x)) + 1);
        int gh = std::max(2, static_cast<int>(std::ceil(cells_y)) + 1);
        cv::Mat grid(gh, gw, CV_32F);
        for (int i = 0; i < gh * gw; ++i) grid.at<float>(i) = static_cast<float>(rng.uniform());
        cv::resize(grid, layer, cv::Size(width, height), 0, 0, cv::INTER_CUBIC);
        sum += layer * amplitude;
        amplitude *= 0.5f;
        cells_x *= 2;
        cells_y *= 2;
    }
    double lo, hi;
    cv::minMaxLoc(sum, &lo, &hi);
    sum = (sum - lo) / std::max(hi - lo, 1e-6);
    return sum;
}

cv::Vec3f hsv_color(double hue, double saturation, double value) {
    hue = std::fmod(std::fmod(hue, 360.0) + 360.0, 360.0);
    double c = value * saturation, x = c * (1 - std::abs(std::fmod(hue / 60.0, 2.0) - 1)), m = value - c;
    double r = 0, g = 0, b = 0;
    switch (static_cast<int>(hue / 60.0)) {
        case 0: r = c, g = x; break;
        case 1: r = x, g = c; break;
        case 2: g = c, b = x; break;
        case 3: g = x, b = c; break;
        case 4: r = x, b = c; break;
        default: r = c, b = x; break;
    }
    return cv::Vec3f(static_cast<float>((r + m) * 255), static_cast<float>((g + m) * 255),
                     static_cast<float>((b + m) * 255));
}

cv::Mat render_context(int cls, int height, int width, Rng& rng) {
    switch (cls) {
        case 1: return water(height, width, rng);
        case 2: return tracks(height, width, rng);
        case 3: return sky(height, width, rng);
        case 4: return road(height, width, rng);
        case 5: return grass(height, width, rng);
        case 6: return reef(height, width, rng);
        default: return render_filler(height, width, rng);
    }
}

cv::Mat render_filler(int height, int width, Rng& rng) {
    cv::Vec3f base = hsv_color(rng.uniform(20, 50), rng.uniform(0.04, 0.18), rng.uniform(0.55, 0.75));
    cv::Mat n = fbm_noise(height, width, rng, 4, 4, 3);
    cv::Mat img(height, width, CV_32FC3);
    for_pixels(img, [&](int x, int y, cv::Vec3f& px) { px = base * (0.9f + 0.2f * n.at<float>(y, x)); });
    return img;
}

cv::Mat render_background(int height, int width, Rng& rng) {
    int kind = rng.uniform_int(0, 4);
    switch (kind) {
        case 0: return noise_blend(height, width, rng);
        case 1: return stripes(height, width, rng);
        case 2: return gradient(height, width, rng);
        case 3: return render_filler(height, width, rng);
        default: return render_context(rng.uniform_int(1, 6), height, width, rng);
    }
}

}  // namespace sightline::detail
