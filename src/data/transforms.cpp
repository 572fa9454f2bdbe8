// Image + mask transforms on cv::Mat (see data.hpp for the conventions).
#include <cmath>
#include <numeric>

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include "sightline/data.hpp"

namespace sightline {

void resize(Sample& sample, int height, int width) {
    if (height < 1 || width < 1) throw Error(fmt::format("resize: size {}x{} must be positive", width, height));
    if (sample.image.rows == height && sample.image.cols == width) return;
    // Area averaging when shrinking avoids aliasing; bilinear when enlarging.
    bool shrink = height < sample.image.rows && width < sample.image.cols;
    cv::resize(sample.image, sample.image, cv::Size(width, height), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
    if (!sample.mask.empty())
        cv::resize(sample.mask, sample.mask, cv::Size(width, height), 0, 0, cv::INTER_NEAREST);
}

void horizontal_flip(Sample& sample) {
    cv::flip(sample.image, sample.image, 1);
    if (!sample.mask.empty()) cv::flip(sample.mask, sample.mask, 1);
}

void crop(Sample& sample, const cv::Rect& box) {
    if ((box & cv::Rect(0, 0, sample.image.cols, sample.image.rows)) != box || box.area() == 0)
        throw Error(fmt::format("crop: box {}x{} at ({}, {}) is not inside the {}x{} image '{}'", box.width,
                                box.height, box.x, box.y, sample.image.cols, sample.image.rows, sample.id));
    sample.image = sample.image(box).clone();
    if (!sample.mask.empty()) sample.mask = sample.mask(box).clone();
}

void pad_to(Sample& sample, int height, int width) {
    int bottom = std::max(0, height - sample.image.rows), right = std::max(0, width - sample.image.cols);
    if (bottom == 0 && right == 0) return;
    cv::copyMakeBorder(sample.image, sample.image, 0, bottom, 0, right, cv::BORDER_CONSTANT, cv::Scalar::all(0));
    if (!sample.mask.empty())
        cv::copyMakeBorder(sample.mask, sample.mask, 0, bottom, 0, right, cv::BORDER_CONSTANT, cv::Scalar(255));
}

cv::Rect sample_resized_crop(int height, int width, const ResizedCropOptions& o, Rng& rng) {
    const double area = double(height) * width;
    const double log_lo = std::log(o.ratio_min), log_hi = std::log(o.ratio_max);
    for (int attempt = 0; attempt < 10; ++attempt) {
        double target = area * rng.uniform(o.scale_min, o.scale_max);
        double ratio = std::exp(rng.uniform(log_lo, log_hi));
        int w = static_cast<int>(std::lround(std::sqrt(target * ratio)));
        int h = static_cast<int>(std::lround(std::sqrt(target / ratio)));
        if (w > 0 && h > 0 && w <= width && h <= height)
            return {rng.uniform_int(0, width - w), rng.uniform_int(0, height - h), w, h};
    }
    // Fallback: the whole image, cut to the nearest allowed aspect ratio, centred.
    double in_ratio = double(width) / height;
    int w = width, h = height;
    if (in_ratio < o.ratio_min) h = static_cast<int>(std::lround(w / o.ratio_min));
    else if (in_ratio > o.ratio_max) w = static_cast<int>(std::lround(h * o.ratio_max));
    return {(width - w) / 2, (height - h) / 2, w, h};
}

void random_resized_crop(Sample& sample, int height, int width, const ResizedCropOptions& options, Rng& rng) {
    crop(sample, sample_resized_crop(sample.image.rows, sample.image.cols, options, rng));
    resize(sample, height, width);
}

namespace {

// ITU-R 601 luma, as torchvision's rgb_to_grayscale.
cv::Mat grey_of(const cv::Mat& rgb) {
    cv::Mat grey;
    cv::transform(rgb, grey, cv::Matx13f(0.299f, 0.587f, 0.114f));
    return grey;
}

// out = f * img + (1 - f) * other, clamped to [0, 1].
void blend(cv::Mat& img, const cv::Mat& other3, double f) {
    cv::addWeighted(img, f, other3, 1.0 - f, 0.0, img);
    cv::min(cv::max(img, 0.0), 1.0, img);
}

}  // namespace

void color_jitter(cv::Mat& rgb, const ColorJitterOptions& o, Rng& rng) {
    cv::Mat img;
    rgb.convertTo(img, CV_32FC3, 1.0 / 255.0);
    std::vector<int> order = {0, 1, 2, 3};
    rng.shuffle(order);
    for (int op : order) {
        if (op == 0 && o.brightness > 0) {
            blend(img, cv::Mat::zeros(img.size(), img.type()), rng.uniform(std::max(0.0, 1 - o.brightness), 1 + o.brightness));
        } else if (op == 1 && o.contrast > 0) {
            double f = rng.uniform(std::max(0.0, 1 - o.contrast), 1 + o.contrast);
            float mean = static_cast<float>(cv::mean(grey_of(img))[0]);
            blend(img, cv::Mat(img.size(), img.type(), cv::Scalar::all(mean)), f);
        } else if (op == 2 && o.saturation > 0) {
            double f = rng.uniform(std::max(0.0, 1 - o.saturation), 1 + o.saturation);
            cv::Mat grey3;
            cv::cvtColor(grey_of(img), grey3, cv::COLOR_GRAY2RGB);
            blend(img, grey3, f);
        } else if (op == 3 && o.hue > 0) {
            double shift = rng.uniform(-o.hue, o.hue) * 360.0;
            cv::Mat hsv;
            cv::cvtColor(img, hsv, cv::COLOR_RGB2HSV);  // float: H in [0, 360)
            for (auto it = hsv.begin<cv::Vec3f>(); it != hsv.end<cv::Vec3f>(); ++it) {
                float h = static_cast<float>(std::fmod((*it)[0] + shift + 360.0, 360.0));
                (*it)[0] = h;
            }
            cv::cvtColor(hsv, img, cv::COLOR_HSV2RGB);
        }
    }
    img.convertTo(rgb, CV_8UC3, 255.0);
}

void augment(Sample& sample, const AugmentOptions& o, Rng& rng) {
    if (o.crop) random_resized_crop(sample, o.size, o.size, o.crop_options, rng);
    else resize(sample, o.size, o.size);
    if (o.flip && rng.bernoulli(0.5)) horizontal_flip(sample);
    if (o.jitter) color_jitter(sample.image, o.jitter_options, rng);
}

MixupPlan plan_mixup(std::size_t batch, double alpha, Rng& rng) {
    MixupPlan plan;
    plan.lambda = alpha > 0 ? rng.beta(alpha, alpha) : 1.0;
    plan.partner.resize(batch);
    std::iota(plan.partner.begin(), plan.partner.end(), std::size_t{0});
    rng.shuffle(plan.partner);
    return plan;
}

}  // namespace sightline
