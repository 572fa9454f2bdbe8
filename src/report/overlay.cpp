// Heat-map overlays with the conventions of pytorch-grad-cam's show_cam_on_image
// (docs/methods.md, "Conventions"), so pictures are interchangeable.
#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <opencv2/imgproc.hpp>

#include "sightline/core.hpp"
#include "sightline/report.hpp"

namespace sightline {

int colormap_from_name(const std::string& name) {
    static const std::map<std::string, int> kMaps = {
        {"jet", cv::COLORMAP_JET},         {"viridis", cv::COLORMAP_VIRIDIS},
        {"turbo", cv::COLORMAP_TURBO},     {"inferno", cv::COLORMAP_INFERNO},
        {"magma", cv::COLORMAP_MAGMA},     {"plasma", cv::COLORMAP_PLASMA},
        {"hot", cv::COLORMAP_HOT},         {"parula", cv::COLORMAP_PARULA},
        {"cividis", cv::COLORMAP_CIVIDIS}, {"bone", cv::COLORMAP_BONE},
        {"rainbow", cv::COLORMAP_RAINBOW}, {"twilight", cv::COLORMAP_TWILIGHT}};
    auto it = kMaps.find(name);
    if (it == kMaps.end()) {
        std::vector<std::string> names;
        for (const auto& [n, _] : kMaps) names.push_back(n);
        throw UsageError(fmt::format("--colormap '{}': choose from {}", name, fmt::join(names, ", ")));
    }
    return it->second;
}

cv::Mat overlay_heatmap(const cv::Mat& rgb, const cv::Mat& map, int colormap, float image_weight) {
    CV_Assert(rgb.type() == CV_8UC3 && map.type() == CV_32FC1 && rgb.size() == map.size());
    // np.uint8(255 * mask) truncates toward zero (cv::Mat::convertTo would round).
    cv::Mat levels(map.size(), CV_8U);
    for (int y = 0; y < map.rows; ++y)
        for (int x = 0; x < map.cols; ++x)
            levels.at<uint8_t>(y, x) = static_cast<uint8_t>(std::clamp(255.0f * map.at<float>(y, x), 0.0f, 255.0f));
    cv::Mat heat_bgr, heat;
    cv::applyColorMap(levels, heat_bgr, colormap);
    cv::cvtColor(heat_bgr, heat, cv::COLOR_BGR2RGB);
    cv::Mat blend;
    cv::Mat heat_f, image_f;
    heat.convertTo(heat_f, CV_32FC3, 1.0 / 255.0);
    rgb.convertTo(image_f, CV_32FC3, 1.0 / 255.0);
    blend = (1.0f - image_weight) * heat_f + image_weight * image_f;
    double max_value = 0;
    cv::minMaxLoc(blend.reshape(1), nullptr, &max_value);
    blend /= std::max(max_value, 1e-12);
    cv::Mat out(rgb.size(), CV_8UC3);
    // uint8(255 * x) truncates, as numpy does.
    blend.forEach<cv::Vec3f>([&](const cv::Vec3f& v, const int* pos) {
        out.at<cv::Vec3b>(pos[0], pos[1]) = cv::Vec3b(static_cast<uint8_t>(255.0f * v[0]),
                                                      static_cast<uint8_t>(255.0f * v[1]),
                                                      static_cast<uint8_t>(255.0f * v[2]));
    });
    return out;
}

}  // namespace sightline
