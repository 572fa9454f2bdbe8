#include "crf/kernels.hpp"

#include <cmath>

#include "crf/thread_pool.hpp"

namespace sightline::detail {

void position_features(int height, int width, float sxy, std::vector<float>& out) {
    out.resize(size_t(height) * width * 2);
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x) {
            float* f = out.data() + (size_t(y) * width + x) * 2;
            f[0] = x / sxy;  // float division, as the peer
            f[1] = y / sxy;
        }
}

void bilateral_features(const cv::Mat& image, float sxy, float srgb, std::vector<float>& out) {
    const int height = image.rows, width = image.cols;
    out.resize(size_t(height) * width * 5);
    for (int y = 0; y < height; ++y) {
        const uint8_t* row = image.ptr<uint8_t>(y);
        for (int x = 0; x < width; ++x) {
            float* f = out.data() + (size_t(y) * width + x) * 5;
            f[0] = x / sxy;
            f[1] = y / sxy;
            for (int c = 0; c < 3; ++c) f[2 + c] = row[x * 3 + c] / srgb;
        }
    }
}

void PairwiseKernel::build(const float* features, int pixels, int dim, float compat, ThreadPool& pool) {
    weight = compat;
    lattice.build(features, pixels, dim, pool);
    ones_.assign(pixels, 1.f);
    norm.resize(pixels);
    lattice.filter(ones_.data(), norm.data(), 1, pool);
    pool.parallel_for(pixels, 16384, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
            norm[i] = static_cast<float>(1.0 / std::sqrt(norm[i] + 1e-20));  // in double, as the peer
    });
}

void PairwiseKernel::apply(const float* in, float* out, int channels, ThreadPool& pool) {
    const int pixels = lattice.pixels();
    scaled_.resize(size_t(pixels) * channels);
    for (int i = 0; i < pixels; ++i)
        for (int k = 0; k < channels; ++k) scaled_[size_t(i) * channels + k] = in[size_t(i) * channels + k] * norm[i];
    lattice.filter(scaled_.data(), out, channels, pool);
    for (int i = 0; i < pixels; ++i)
        for (int k = 0; k < channels; ++k) out[size_t(i) * channels + k] *= norm[i];
}

}  // namespace sightline::detail
