// Class silhouettes as polygons in unit coordinates (x from about -0.5 to 0.5, y down).
#include "shapes.hpp"

#include <cmath>

#include <opencv2/imgproc.hpp>

#include "textures.hpp"

namespace sightline::detail {

namespace {

using Poly = std::vector<cv::Point2f>;

Poly ellipse(float cx, float cy, float rx, float ry, int n = 28) {
    Poly p;
    for (int i = 0; i < n; ++i) {
        float t = 6.2831853f * i / n;
        p.emplace_back(cx + rx * std::cos(t), cy + ry * std::sin(t));
    }
    return p;
}

Poly rect(float x0, float y0, float x1, float y1) { return {{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}}; }

Poly mirror_y(Poly p) {
    for (auto& q : p) q.y = -q.y;
    return p;
}

float jitter(Rng& rng, float v, float amount) {
    return v * static_cast<float>(rng.uniform(1 - amount, 1 + amount));
}

void boat(std::vector<ObjectPart>& parts, Rng& rng) {
    float depth = jitter(rng, 0.17f, 0.2f), stern = jitter(rng, 0.36f, 0.1f);
    parts.push_back({{{-0.5f, 0.f}, {0.5f, -0.03f}, {stern, depth}, {-stern, depth}}, kBody});
    parts.push_back({{{-0.47f, 0.03f}, {0.47f, 0.f}, {0.45f, 0.05f}, {-0.45f, 0.08f}}, kSecond});
    if (rng.bernoulli(0.6)) {  // sailing boat: mast, main sail, sometimes a jib
        float mast = jitter(rng, 0.6f, 0.12f);
        parts.push_back({rect(-0.02f, -mast, 0.02f, 0.f), kDark});
        parts.push_back({{{0.04f, -mast + 0.04f}, {0.04f, -0.05f}, {jitter(rng, 0.38f, 0.12f), -0.05f}}, kLight});
        if (rng.bernoulli(0.5))
            parts.push_back({{{-0.04f, -mast + 0.1f}, {-0.04f, -0.05f}, {-0.3f, -0.05f}}, kLight});
    } else {  // motor boat: cabin with windows
        float top = -jitter(rng, 0.18f, 0.2f);
        parts.push_back({{{-0.28f, 0.f}, {0.15f, 0.f}, {0.08f, top}, {-0.22f, top}}, kSecond});
        for (int i = 0; i < 3; ++i) {
            float x = -0.2f + 0.11f * i;
            parts.push_back({rect(x, top * 0.75f, x + 0.07f, top * 0.3f), kLight});
        }
    }
}

void train(std::vector<ObjectPart>& parts, Rng& rng) {
    float top = -jitter(rng, 0.2f, 0.15f);
    bool two_cars = rng.bernoulli(0.5);
    if (two_cars) {
        parts.push_back({rect(-0.5f, top, -0.07f, 0.1f), kBody});
        parts.push_back({rect(-0.03f, top, 0.38f, 0.1f), kBody});
        parts.push_back({rect(-0.08f, -0.02f, -0.02f, 0.04f), kDark});  // coupling
    } else {
        parts.push_back({rect(-0.5f, top, 0.38f, 0.1f), kBody});
    }
    parts.push_back({{{0.38f, top}, {0.43f, top}, {0.5f, -0.02f}, {0.5f, 0.1f}, {0.38f, 0.1f}}, kBody});
    parts.push_back({rect(-0.5f, top - 0.03f, 0.42f, top + 0.02f), kSecond});  // roof
    parts.push_back({rect(-0.5f, 0.0f, 0.5f, 0.035f), kSecond});               // stripe
    int windows = rng.uniform_int(4, 6);
    for (int i = 0; i < windows; ++i) {
        float x = -0.46f + 0.8f * i / windows;
        if (two_cars && x > -0.13f && x < -0.0f) continue;
        parts.push_back({rect(x, top + 0.06f, x + 0.08f, top + 0.14f), kLight});
    }
    parts.push_back({{{0.41f, top + 0.04f}, {0.44f, top + 0.04f}, {0.48f, -0.05f}, {0.41f, -0.05f}}, kLight});
    for (int i = 0; i < 6; ++i) parts.push_back({ellipse(-0.42f + 0.165f * i, 0.13f, 0.045f, 0.045f, 16), kDark});
}

void plane(std::vector<ObjectPart>& parts, Rng& rng) {
    float span = jitter(rng, 0.46f, 0.1f), sweep = jitter(rng, 0.18f, 0.3f);
    parts.push_back({ellipse(0.f, 0.f, 0.5f, jitter(rng, 0.065f, 0.15f), 32), kBody});
    Poly wing = {{0.12f, -0.04f}, {0.12f - sweep, -span}, {0.02f - sweep, -span}, {-0.1f, -0.04f}};
    parts.push_back({wing, kBody});
    parts.push_back({mirror_y(wing), kBody});
    Poly tail = {{-0.36f, -0.03f}, {-0.46f, -0.18f}, {-0.5f, -0.18f}, {-0.46f, -0.03f}};
    parts.push_back({tail, kSecond});
    parts.push_back({mirror_y(tail), kSecond});
    parts.push_back({ellipse(0.36f, 0.f, 0.06f, 0.035f, 16), kLight});
    if (rng.bernoulli(0.5)) {
        parts.push_back({ellipse(0.02f - sweep * 0.4f, -0.2f, 0.07f, 0.03f, 16), kSecond});
        parts.push_back({ellipse(0.02f - sweep * 0.4f, 0.2f, 0.07f, 0.03f, 16), kSecond});
    }
}

void car(std::vector<ObjectPart>& parts, Rng& rng) {
    float roof = -jitter(rng, 0.26f, 0.15f), back = jitter(rng, 0.3f, 0.15f);
    parts.push_back({{{-0.5f, -0.02f}, {-0.46f, -0.09f}, {0.3f, -0.09f}, {0.48f, -0.04f}, {0.5f, 0.1f}, {-0.5f, 0.1f}}, kBody});
    parts.push_back({{{-back, -0.08f}, {0.2f, -0.08f}, {0.08f, roof}, {-back + 0.08f, roof}}, kBody});
    parts.push_back({{{-back + 0.04f, -0.1f}, {-0.06f, -0.1f}, {-0.06f, roof + 0.03f}, {-back + 0.1f, roof + 0.03f}}, kLight});
    parts.push_back({{{-0.03f, -0.1f}, {0.16f, -0.1f}, {0.065f, roof + 0.03f}, {-0.03f, roof + 0.03f}}, kLight});
    parts.push_back({rect(0.44f, -0.04f, 0.5f, 0.f), kLight});
    for (float x : {-0.3f, 0.3f}) {
        parts.push_back({ellipse(x, 0.1f, 0.1f, 0.1f, 24), kDark});
        parts.push_back({ellipse(x, 0.1f, 0.045f, 0.045f, 12), kLight});
    }
}

void cow(std::vector<ObjectPart>& parts, Rng& rng) {
    float belly = jitter(rng, 0.15f, 0.15f), leg = jitter(rng, 0.28f, 0.12f);
    for (float x : {-0.28f, -0.18f, 0.08f, 0.17f}) {
        parts.push_back({rect(x, 0.f, x + 0.06f, leg), kBody});
        parts.push_back({rect(x, leg - 0.03f, x + 0.06f, leg), kDark});  // hooves
    }
    parts.push_back({ellipse(-0.05f, -0.02f, 0.3f, belly, 32), kBody});
    parts.push_back({{{0.2f, -0.1f}, {0.32f, -0.2f}, {0.42f, -0.2f}, {0.48f, -0.05f}, {0.4f, -0.02f}, {0.22f, 0.04f}}, kBody});
    parts.push_back({ellipse(0.45f, -0.06f, 0.05f, 0.045f, 16), kLight});        // muzzle
    parts.push_back({{{0.31f, -0.19f}, {0.29f, -0.27f}, {0.35f, -0.2f}}, kLight});  // horn
    parts.push_back({{{-0.35f, -0.08f}, {-0.33f, -0.08f}, {-0.4f, 0.12f}, {-0.42f, 0.12f}}, kBody});
    int spots = rng.uniform_int(2, 4);
    for (int i = 0; i < spots; ++i) {
        float cx = static_cast<float>(rng.uniform(-0.25, 0.15));
        float cy = static_cast<float>(rng.uniform(-0.06, 0.03));
        parts.push_back({ellipse(cx, cy, static_cast<float>(rng.uniform(0.04, 0.07)),
                                 static_cast<float>(rng.uniform(0.03, 0.05)), 16), kSecond});
    }
}

void fish(std::vector<ObjectPart>& parts, Rng& rng) {
    float height = jitter(rng, 0.17f, 0.2f), fork = jitter(rng, 0.2f, 0.2f);
    parts.push_back({{{-0.22f, 0.f}, {-0.5f, -fork}, {-0.44f, 0.f}, {-0.5f, fork}}, kSecond});
    parts.push_back({{{-0.08f, -height + 0.02f}, {0.12f, -height + 0.02f}, {-0.12f, -height - 0.13f}}, kSecond});
    parts.push_back({{{0.f, height - 0.03f}, {0.1f, height - 0.03f}, {-0.06f, height + 0.07f}}, kSecond});
    parts.push_back({ellipse(0.05f, 0.f, 0.33f, height, 32), kBody});
    parts.push_back({ellipse(0.26f, -0.04f, 0.035f, 0.035f, 12), kDark});
}

cv::Point2f place(const cv::Point2f& p, const ObjectPose& pose) {
    float x = (pose.flip ? -p.x : p.x) * pose.length, y = p.y * pose.aspect * pose.length;
    float c = std::cos(pose.angle), s = std::sin(pose.angle);
    // Counter-clockwise on screen with y pointing down.
    return {pose.centre.x + c * x + s * y, pose.centre.y - s * x + c * y};
}

}  // namespace

std::vector<ObjectPart> object_parts(int cls, Rng& rng) {
    std::vector<ObjectPart> parts;
    switch (cls) {
        case 1: boat(parts, rng); break;
        case 2: train(parts, rng); break;
        case 3: plane(parts, rng); break;
        case 4: car(parts, rng); break;
        case 5: cow(parts, rng); break;
        case 6: fish(parts, rng); break;
        default: throw Error("object_parts: unknown synth class " + std::to_string(cls));
    }
    float x0 = 1e9f, y0 = 1e9f, x1 = -1e9f, y1 = -1e9f;
    for (const auto& part : parts)
        for (const auto& p : part.polygon)
            x0 = std::min(x0, p.x), y0 = std::min(y0, p.y), x1 = std::max(x1, p.x), y1 = std::max(y1, p.y);
    cv::Point2f mid((x0 + x1) / 2, (y0 + y1) / 2);
    for (auto& part : parts)
        for (auto& p : part.polygon) p -= mid;
    return parts;
}

cv::Rect2f object_bounds(const std::vector<ObjectPart>& parts, const ObjectPose& pose) {
    float x0 = 1e9f, y0 = 1e9f, x1 = -1e9f, y1 = -1e9f;
    for (const auto& part : parts)
        for (const auto& p : part.polygon) {
            cv::Point2f q = place(p, pose);
            x0 = std::min(x0, q.x), y0 = std::min(y0, q.y), x1 = std::max(x1, q.x), y1 = std::max(y1, q.y);
        }
    return {x0, y0, x1 - x0, y1 - y0};
}

ObjectLayer draw_object(const std::vector<ObjectPart>& parts, const ObjectPose& pose, cv::Size size,
                        Rng& rng) {
    constexpr int kShift = 4;  // sub-pixel vertices: 1/16 pixel
    // Which tone covers each pixel (0 = none, tone + 1 otherwise); later parts on top. Hard
    // edges (no anti-aliasing), so the mask is exactly the set of pixels that changed.
    cv::Mat tones = cv::Mat::zeros(size, CV_8U);
    for (const auto& part : parts) {
        std::vector<cv::Point> pts;
        for (const auto& p : part.polygon) {
            cv::Point2f q = place(p, pose);
            pts.emplace_back(cvRound(q.x * (1 << kShift)), cvRound(q.y * (1 << kShift)));
        }
        cv::fillPoly(tones, std::vector<std::vector<cv::Point>>{pts}, cv::Scalar(part.tone + 1),
                     cv::LINE_8, kShift);
    }
    // Colours: any hue for the body (the shape, not the colour, tells the class).
    cv::Vec3f colour[4];
    double hue = rng.uniform(0, 360), sat = rng.uniform(0.3, 0.9), val = rng.uniform(0.45, 0.95);
    colour[kBody] = hsv_color(hue, sat, val);
    colour[kSecond] = rng.bernoulli(0.5) ? hsv_color(hue, sat, val * 0.55)
                                         : hsv_color(rng.uniform(0, 360), rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.8));
    colour[kLight] = hsv_color(rng.uniform(0, 360), rng.uniform(0.05, 0.3), rng.uniform(0.85, 1.0));
    colour[kDark] = hsv_color(rng.uniform(0, 360), rng.uniform(0.0, 0.4), rng.uniform(0.06, 0.2));
    // Texture: blotchy noise, sometimes stripes across the object's own axis.
    cv::Mat blotch = fbm_noise(size.height, size.width, rng, 4 + 4 * rng.uniform(), 4 + 4 * rng.uniform(), 3);
    const bool striped = rng.bernoulli(0.35);
    const float period = std::max(3.f, pose.length * static_cast<float>(rng.uniform(0.08, 0.16)));
    const float c = std::cos(pose.angle), s = std::sin(pose.angle);
    ObjectLayer out;
    out.mask = cv::Mat::zeros(size, CV_8U);
    out.rgb = cv::Mat::zeros(size, CV_8UC3);
    for (int y = 0; y < size.height; ++y)
        for (int x = 0; x < size.width; ++x) {
            int t = tones.at<uint8_t>(y, x);
            if (t == 0) continue;
            float f = 0.8f + 0.4f * blotch.at<float>(y, x);
            if (striped && t - 1 == kBody) {
                float u = c * (x - pose.centre.x) - s * (y - pose.centre.y);
                if (std::fmod(u / period + 1000.f, 1.f) < 0.4f) f *= 0.7f;
            }
            cv::Vec3f v = colour[t - 1] * f;
            out.rgb.at<cv::Vec3b>(y, x) = cv::Vec3b(cv::saturate_cast<uint8_t>(v[0]), cv::saturate_cast<uint8_t>(v[1]),
                                                    cv::saturate_cast<uint8_t>(v[2]));
            out.mask.at<uint8_t>(y, x) = 255;
        }
    return out;
}

}  // namespace sightline::detail
