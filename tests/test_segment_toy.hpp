// Tiny segmentation data for the tests: in memory (squares of a class colour on noisy grey,
// with their exact masks) and on disk in the VOC layout open_dataset reads.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "sightline/data.hpp"
#include "sightline/palette.hpp"

namespace sightline::test {

// Class c (1..2) is a filled square of colour c; each image holds one or two squares.
class SquaresDataset : public Dataset {
public:
    explicit SquaresDataset(std::size_t n, int side = 32, std::size_t offset = 0) : n_(n), side_(side), offset_(offset) {}

    std::size_t size() const override { return n_; }
    const std::vector<std::string>& class_names() const override { return names_; }

    Sample get(std::size_t index) const override {
        const std::size_t i = index + offset_;
        Sample s;
        s.id = "sq_" + std::to_string(i);
        s.image = cv::Mat(side_, side_, CV_8UC3);
        cv::RNG rng(static_cast<uint64_t>(i) * 7 + 3);
        rng.fill(s.image, cv::RNG::UNIFORM, 90, 160);
        s.mask = cv::Mat(side_, side_, CV_8UC1, cv::Scalar(0));
        static const cv::Scalar colours[] = {{0, 0, 0}, {230, 40, 40}, {40, 230, 40}};
        const int a = side_ / 3;
        for (int k = 0; k <= static_cast<int>(i % 2); ++k) {
            const int c = static_cast<int>((i + k) % 2) + 1;
            const int x = static_cast<int>((i * 5 + 11 * k) % (side_ - a)), y = static_cast<int>((i * 3 + 13 * k) % (side_ - a));
            cv::rectangle(s.image, cv::Rect(x, y, a, a), colours[c], cv::FILLED);
            cv::rectangle(s.mask, cv::Rect(x, y, a, a), cv::Scalar(c), cv::FILLED);
        }
        for (int c = 1; c <= 2; ++c)
            if (cv::countNonZero(s.mask == c) > 0) s.labels.push_back(c);
        return s;
    }

private:
    std::size_t n_;
    int side_;
    std::size_t offset_;
    std::vector<std::string> names_ = {"background", "red", "green"};
};

// Writes `data` as a VOC root (JPEGImages/, SegmentationClass/, classes.txt,
// ImageSets/Segmentation/<split>.txt); appends to the folders when called for several splits.
inline void write_voc(const fs::path& root, const std::string& split, const Dataset& data) {
    fs::create_directories(root / "JPEGImages");
    fs::create_directories(root / "SegmentationClass");
    fs::create_directories(root / "ImageSets" / "Segmentation");
    std::string ids, classes;
    for (std::size_t i = 0; i < data.size(); ++i) {
        Sample s = data.get(i);
        write_image_rgb(root / "JPEGImages" / (s.id + ".png"), s.image);
        write_palette_png(root / "SegmentationClass" / (s.id + ".png"), s.mask);
        ids += s.id + "\n";
    }
    for (const auto& n : data.class_names()) classes += n + "\n";
    write_file_atomic(root / "classes.txt", classes);
    write_file_atomic(root / "ImageSets" / "Segmentation" / (split + ".txt"), ids);
}

}  // namespace sightline::test
