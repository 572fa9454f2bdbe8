// Datasets: the synthetic shortcut scenes, Fashion-MNIST composites, PASCAL VOC layout and
// image folder + labels.csv. Samples are OpenCV images; tensors are made in src/train.
//
// Class convention (as PASCAL VOC): classes.txt lists the mask classes one per line, line i
// being class id i, with "background" as id 0. Masks hold class ids, 255 = ignore. An image's
// labels are the ids (>= 1) of the object classes present. A classifier has one output per
// object class: output index = class id - 1.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "sightline/core.hpp"

namespace sightline {

struct Sample {
    std::string id;            // file stem, e.g. "train_000012"
    cv::Mat image;             // CV_8UC3, RGB
    cv::Mat mask;              // CV_8UC1 class ids, 255 = ignore; empty when the set has none
    std::vector<int> labels;   // object class ids present (>= 1), sorted, no duplicates
};

class Dataset {
public:
    virtual ~Dataset() = default;
    virtual std::size_t size() const = 0;
    // Reads sample i from disk (thread-safe: loaders call it from worker threads).
    virtual Sample get(std::size_t index) const = 0;
    // All class names, index = class id, [0] = "background".
    virtual const std::vector<std::string>& class_names() const = 0;
    std::size_t num_object_classes() const { return class_names().size() - 1; }
};

// Opens a dataset root written by `sightline data ...` or laid out as PASCAL VOC
// (JPEGImages/, SegmentationClass/, ImageSets/Segmentation/<split>.txt, classes.txt or the
// 21 VOC names), or an image folder with labels.csv. Throws Error naming the missing file.
std::unique_ptr<Dataset> open_dataset(const fs::path& root, const std::string& split);

}  // namespace sightline
