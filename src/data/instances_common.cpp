// What every instance reader shares: boxes of masks and the left-right flip.
#include <opencv2/core.hpp>

#include "sightline/instances.hpp"

namespace sightline {

std::array<float, 4> box_of_mask(const cv::Mat& mask) {
    int x0 = mask.cols, y0 = mask.rows, x1 = -1, y1 = -1;
    for (int y = 0; y < mask.rows; ++y) {
        const uint8_t* row = mask.ptr<uint8_t>(y);
        for (int x = 0; x < mask.cols; ++x)
            if (row[x]) {
                x0 = std::min(x0, x), x1 = std::max(x1, x);
                y0 = std::min(y0, y), y1 = std::max(y1, y);
            }
    }
    if (x1 < 0) return {0, 0, 0, 0};
    // Pixel edges: the last column's right edge is x1 + 1.
    return {float(x0), float(y0), float(x1 + 1), float(y1 + 1)};
}

void horizontal_flip(InstanceSample& sample) {
    const float width = static_cast<float>(sample.image.cols);
    cv::Mat flipped;
    cv::flip(sample.image, flipped, 1);
    sample.image = flipped;
    for (InstanceObject& object : sample.objects) {
        cv::Mat mask;
        cv::flip(object.mask, mask, 1);
        object.mask = mask;
        const float x0 = object.box[0], x1 = object.box[2];
        object.box[0] = width - x1;
        object.box[2] = width - x0;
    }
}

std::unique_ptr<InstanceDataset> open_instance_dataset(const fs::path& path, const std::string& split) {
    if (path.extension() == ".json") return open_coco_instances(path);
    return open_voc_instances(path, split);
}

}  // namespace sightline
