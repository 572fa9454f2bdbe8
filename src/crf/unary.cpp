// Unary energies and the checks of their inputs.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "sightline/crf.hpp"

namespace sightline {

std::vector<float> unary_from_probabilities(const std::vector<float>& probs) {
    std::vector<float> u(probs.size());
    for (size_t i = 0; i < probs.size(); ++i) u[i] = -std::log(std::clamp(probs[i], 1e-5f, 1.f));
    return u;
}

std::vector<float> unary_from_labels(const cv::Mat& labels, int num_labels, float confidence) {
    if (!(confidence > 0 && confidence < 1))
        throw Error(fmt::format("label unary: confidence must be in (0, 1), got {}", confidence));
    check_label_map("label unary", labels, num_labels);
    const int64_t n = int64_t(labels.rows) * labels.cols;
    // In double, then stored as float32, as numpy does in the peer.
    const double c = confidence;
    const float given = static_cast<float>(-std::log(c));
    const float other = static_cast<float>(-std::log((1.0 - c) / (num_labels - 1)));
    const float unknown = static_cast<float>(-std::log(1.0 / num_labels));
    std::vector<float> u(size_t(n) * num_labels);
    for (int y = 0; y < labels.rows; ++y) {
        const uint8_t* row = labels.ptr<uint8_t>(y);
        for (int x = 0; x < labels.cols; ++x) {
            const int64_t i = int64_t(y) * labels.cols + x;
            for (int k = 0; k < num_labels; ++k)
                u[k * n + i] = row[x] == 255 ? unknown : (row[x] == k ? given : other);
        }
    }
    return u;
}

void check_label_map(const std::string& source, const cv::Mat& labels, int num_labels) {
    if (labels.type() != CV_8UC1 || labels.empty())
        throw Error(fmt::format("{}: expected an 8-bit single-channel label map", source));
    if (num_labels < 2)
        throw Error(fmt::format("{}: expected at least 2 labels, got {}", source, num_labels));
    for (int y = 0; y < labels.rows; ++y) {
        const uint8_t* row = labels.ptr<uint8_t>(y);
        for (int x = 0; x < labels.cols; ++x)
            if (row[x] != 255 && row[x] >= num_labels)
                throw Error(fmt::format("{}: label {} at row {}, col {} is not below the {} labels (or 255 = unknown)",
                                        source, row[x], y, x, num_labels));
    }
}

void check_probabilities(const std::string& source, const float* probs, int num_labels, int height, int width) {
    if (num_labels < 2)
        throw Error(fmt::format("{}: expected at least 2 labels (K x H x W), got K = {}", source, num_labels));
    const int64_t n = int64_t(height) * width;
    for (int64_t i = 0; i < n; ++i) {
        double sum = 0;
        for (int k = 0; k < num_labels; ++k) {
            const float p = probs[k * n + i];
            if (!std::isfinite(p) || p < 0 || p > 1)
                throw Error(fmt::format("{}: probability of label {} at row {}, col {} is {}, expected a value in 0..1",
                                        source, k, i / width, i % width, p));
            sum += p;
        }
        if (std::abs(sum - 1) > 1e-3)
            throw Error(fmt::format("{}: probabilities at row {}, col {} sum to {:.6g} over the {} labels, expected 1",
                                    source, i / width, i % width, sum, num_labels));
    }
}

ProbabilityMaps read_probabilities(const fs::path& path, int height, int width) {
    NpyArray array = read_npy(path);
    const auto& s = array.shape;
    auto shape_text = [&] {
        std::string t;
        for (size_t i = 0; i < s.size(); ++i) t += (i ? " x " : "") + std::to_string(s[i]);
        return t.empty() ? std::string("a scalar") : t;
    };
    if (s.size() != 3)
        throw Error(fmt::format("{}: expected probabilities K x H x W, got shape {}", path.string(), shape_text()));
    if (s[1] != height || s[2] != width)
        throw Error(fmt::format("{}: probabilities are {} x {} (H x W) but the image is {} x {}", path.string(), s[1],
                                s[2], height, width));
    if (s[0] < 2 || s[0] > 256)
        throw Error(fmt::format("{}: expected 2..256 labels (K x H x W), got K = {}", path.string(), s[0]));
    ProbabilityMaps maps;
    maps.num_labels = static_cast<int>(s[0]);
    maps.probs = array.to_float();
    check_probabilities(path.string(), maps.probs.data(), maps.num_labels, height, width);
    return maps;
}

}  // namespace sightline
