// Instance samples (OpenCV) as the tensors Mask R-CNN takes.
#include <cstring>

#include "sightline/instance.hpp"

namespace sightline {

torch::Tensor rgb_to_tensor(const cv::Mat& rgb) {
    CV_Assert(rgb.type() == CV_8UC3);
    const cv::Mat contiguous = rgb.isContinuous() ? rgb : rgb.clone();
    torch::Tensor hwc = torch::from_blob(contiguous.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8);
    return hwc.permute({2, 0, 1}).to(torch::kFloat32).div(255.0f).contiguous();
}

InstanceTarget instance_target(const InstanceSample& sample) {
    const int64_t h = sample.image.rows, w = sample.image.cols;
    std::vector<const InstanceObject*> kept;
    for (const InstanceObject& object : sample.objects)
        if (!object.crowd) kept.push_back(&object);
    const auto n = static_cast<int64_t>(kept.size());
    InstanceTarget target{torch::empty({n, 4}, torch::kFloat32), torch::empty({n}, torch::kInt64),
                          torch::zeros({n, h, w}, torch::kUInt8)};
    for (int64_t i = 0; i < n; ++i) {
        const InstanceObject& object = *kept[static_cast<std::size_t>(i)];
        for (int64_t c = 0; c < 4; ++c) target.boxes[i][c] = object.box[static_cast<std::size_t>(c)];
        target.labels[i] = object.label;
        const cv::Mat mask = object.mask.isContinuous() ? object.mask : object.mask.clone();
        std::memcpy(target.masks[i].data_ptr<uint8_t>(), mask.data, static_cast<std::size_t>(h * w));
    }
    return target;
}

}  // namespace sightline
