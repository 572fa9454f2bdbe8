// A tiny in-memory dataset for the training tests: class c (1..3) is a square of colour c on a
// noisy grey background; multi-label samples hold two squares. Images are made from the index,
// so get() is thread-safe and repeatable.
#pragma once

#include <limits>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "sightline/data.hpp"

namespace sightline::test {

class ToyDataset : public Dataset {
public:
    explicit ToyDataset(std::size_t n, int side = 16, bool multi = false,
                        std::size_t fail_at = std::numeric_limits<std::size_t>::max())
        : n_(n), side_(side), multi_(multi), fail_at_(fail_at) {}

    std::size_t size() const override { return n_; }
    const std::vector<std::string>& class_names() const override { return names_; }

    std::vector<int> labels_of(std::size_t i) const {
        int c = static_cast<int>(i % 3) + 1;
        if (!multi_ || i % 2 == 0) return {c};
        int d = c % 3 + 1;
        return c < d ? std::vector<int>{c, d} : std::vector<int>{d, c};
    }

    Sample get(std::size_t i) const override {
        if (i == fail_at_) throw Error("toy/" + std::to_string(i) + ".png: cannot decode image");
        Sample s;
        s.id = "toy_" + std::to_string(i);
        s.image = cv::Mat(side_, side_, CV_8UC3);
        cv::RNG rng(static_cast<uint64_t>(i) + 17);
        rng.fill(s.image, cv::RNG::UNIFORM, 90, 160);
        s.labels = labels_of(i);
        static const cv::Scalar colours[] = {{0, 0, 0}, {230, 30, 30}, {30, 230, 30}, {30, 30, 230}};
        int k = 0;
        for (int c : s.labels) {
            int x = (static_cast<int>(i * 5) + 7 * k) % (side_ / 2), y = (static_cast<int>(i * 3) + 5 * k) % (side_ / 2);
            cv::rectangle(s.image, cv::Rect(x, y, side_ / 2, side_ / 2), colours[c], cv::FILLED);
            ++k;
        }
        return s;
    }

private:
    std::size_t n_;
    int side_;
    bool multi_;
    std::size_t fail_at_;
    std::vector<std::string> names_ = {"background", "red", "green", "blue"};
};

}  // namespace sightline::test
