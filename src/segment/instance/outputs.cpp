// What `sightline instance` writes per image: COCO results, the instance-id PNG, the overlay.
#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include "sightline/instance.hpp"
#include "sightline/palette.hpp"

namespace sightline {

namespace {

// Detection k's mask > 0.5 as CV_8UC1 0/1.
cv::Mat binary_mask(const InstanceDetections& d, int64_t k) {
    const torch::Tensor m = (d.masks[k][0] > 0.5).to(torch::kUInt8).contiguous();
    cv::Mat out(static_cast<int>(m.size(0)), static_cast<int>(m.size(1)), CV_8UC1);
    std::memcpy(out.data, m.data_ptr<uint8_t>(), out.total());
    return out;
}

}  // namespace

std::vector<CocoDetection> coco_results_of(const InstanceDetections& d, int64_t image_id,
                                           const std::vector<int64_t>& category_ids) {
    std::vector<CocoDetection> out;
    const torch::Tensor boxes = d.boxes.to(torch::kFloat32).contiguous();
    for (int64_t k = 0; k < d.boxes.size(0); ++k) {
        const int64_t label = d.labels[k].item<int64_t>();
        if (label < 0 || label >= static_cast<int64_t>(category_ids.size()))
            throw Error(fmt::format("detection label {} has no category id ({} classes)", label, category_ids.size()));
        CocoDetection det;
        det.image_id = image_id;
        det.category_id = category_ids[static_cast<std::size_t>(label)];
        det.score = d.scores[k].item<float>();
        const float* b = boxes.data_ptr<float>() + 4 * k;
        det.bbox = CocoBox{b[0], b[1], double(b[2]) - double(b[0]), double(b[3]) - double(b[1])};
        det.mask = rle_encode(binary_mask(d, k));
        det.area = static_cast<double>(rle_area(*det.mask));
        out.push_back(std::move(det));
    }
    return out;
}

cv::Mat instance_id_image(const InstanceDetections& d, double min_score) {
    const int height = static_cast<int>(d.masks.size(2)), width = static_cast<int>(d.masks.size(3));
    cv::Mat ids(height, width, CV_8UC1, cv::Scalar(0));
    std::vector<int64_t> kept;
    for (int64_t k = 0; k < d.scores.size(0) && kept.size() < 254; ++k)
        if (d.scores[k].item<float>() >= min_score) kept.push_back(k);
    // Painted from the lowest score up, so the higher score wins where masks overlap.
    for (std::size_t i = kept.size(); i-- > 0;) ids.setTo(static_cast<int>(i + 1), binary_mask(d, kept[i]));
    return ids;
}

cv::Mat class_id_image(const InstanceDetections& d, double min_score) {
    const cv::Mat ids = instance_id_image(d, min_score);
    // Instance id i + 1 is detection i (instance_id_image numbers the kept ones in score order).
    std::vector<uint8_t> class_of(256, 0);
    for (int64_t k = 0, kept = 0; k < d.scores.size(0) && kept < 254; ++k)
        if (d.scores[k].item<float>() >= min_score)
            class_of[static_cast<std::size_t>(++kept)] = static_cast<uint8_t>(d.labels[k].item<int64_t>());
    cv::Mat classes(ids.size(), CV_8UC1);
    for (int y = 0; y < ids.rows; ++y)
        for (int x = 0; x < ids.cols; ++x) classes.at<uint8_t>(y, x) = class_of[ids.at<uint8_t>(y, x)];
    return classes;
}

cv::Mat instance_overlay(const cv::Mat& rgb, const cv::Mat& ids, const InstanceDetections& d,
                         const std::vector<std::string>& class_names, double min_score) {
    cv::Mat out = rgb.clone();
    for (int y = 0; y < ids.rows; ++y)
        for (int x = 0; x < ids.cols; ++x) {
            const int id = ids.at<uint8_t>(y, x);
            if (!id) continue;
            const auto c = voc_color(id);
            cv::Vec3b& p = out.at<cv::Vec3b>(y, x);
            for (int ch = 0; ch < 3; ++ch) p[ch] = static_cast<uint8_t>((p[ch] + c[static_cast<std::size_t>(ch)]) / 2);
        }
    const torch::Tensor boxes = d.boxes.to(torch::kFloat32).contiguous();
    // Scores decrease, so instance_id_image gave ids 1..n to detections 0..n-1.
    const int n = std::min<int>(254, static_cast<int>((d.scores >= min_score).sum().item<int64_t>()));
    for (int id = n; id >= 1; --id) {
        const int64_t k = id - 1;
        const auto c = voc_color(id);
        const cv::Scalar colour(c[0], c[1], c[2]);
        const float* b = boxes.data_ptr<float>() + 4 * k;
        const cv::Point top_left(static_cast<int>(b[0]), static_cast<int>(b[1]));
        cv::rectangle(out, top_left, cv::Point(static_cast<int>(b[2]) - 1, static_cast<int>(b[3]) - 1), colour, 1);
        const int64_t label = d.labels[k].item<int64_t>();
        const std::string text =
            fmt::format("{} {:.2f}",
                        label >= 0 && label < static_cast<int64_t>(class_names.size()) ? class_names[static_cast<std::size_t>(label)]
                                                                                       : fmt::format("class_{}", label),
                        d.scores[k].item<float>());
        int baseline = 0;
        const double scale = 0.3;
        const cv::Size size = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, 1, &baseline);
        // The label sits inside the image even for a box at its edge.
        const int x = std::clamp(top_left.x, 0, std::max(0, out.cols - size.width));
        const int y = std::clamp(top_left.y, 0, std::max(0, out.rows - size.height - baseline));
        cv::rectangle(out, cv::Rect(x, y, size.width, size.height + baseline), colour, cv::FILLED);
        cv::putText(out, text, cv::Point(x, y + size.height), cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(255, 255, 255), 1,
                    cv::LINE_AA);
    }
    return out;
}

}  // namespace sightline
