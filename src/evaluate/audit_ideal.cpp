// The two ideal users of the audit's verdict rule (sightline/audit.hpp): what the map of a model
// that used only the object, or only the reference region, looks like at the explanation's own
// resolution. Measured as audit_map measures a real map, so the two are comparable.
#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include "sightline/audit.hpp"
#include "evaluate/audit_values.hpp"

namespace sightline {

namespace {

using audit_detail::kIgnore;

// Area-average onto the grid, then bilinear (half-pixel centres) back to the full size: the
// resize every CAM goes through after the layer's own pooling of the pixels into cells.
cv::Mat at_resolution(const cv::Mat& indicator, cv::Size grid) {
    cv::Mat small, back;
    cv::resize(indicator, small, grid, 0, 0, cv::INTER_AREA);
    cv::resize(small, back, indicator.size(), 0, 0, cv::INTER_LINEAR);
    return back;
}

// Mass fractions of the map on the object and the reference region, over the labelled pixels.
IdealMasses masses(const cv::Mat& map, const cv::Mat& object, const cv::Mat& reference, const cv::Mat& labelled) {
    double total = 0, on_object = 0, on_reference = 0;
    for (int y = 0; y < map.rows; ++y) {
        const float* m = map.ptr<float>(y);
        const uint8_t* o = object.ptr<uint8_t>(y);
        const uint8_t* r = reference.ptr<uint8_t>(y);
        const uint8_t* l = labelled.ptr<uint8_t>(y);
        for (int x = 0; x < map.cols; ++x) {
            if (!l[x] || m[x] <= 0) continue;
            total += m[x];
            if (o[x]) on_object += m[x];
            if (r[x]) on_reference += m[x];
        }
    }
    IdealMasses out;
    if (total > 0) {
        out.object = on_object / total;
        out.reference = on_reference / total;
    }
    return out;
}

}  // namespace

void audit_ideal_users(AuditRecord& r, const cv::Mat& mask, const cv::Mat& context, int class_id, cv::Size grid,
                       const std::string& name) {
    if (mask.type() != CV_8UC1 || mask.empty())
        throw Error(fmt::format("{}: the object mask must be 8-bit class ids (CV_8UC1), got type {}", name,
                                mask.type()));
    if (!context.empty() && (context.type() != CV_8UC1 || context.size() != mask.size()))
        throw Error(fmt::format("{}: context mask is {}x{} (type {}) but the object mask is {}x{} (8-bit)", name,
                                context.cols, context.rows, context.type(), mask.cols, mask.rows));
    if (class_id < 1 || class_id >= kIgnore)
        throw Error(fmt::format("{}: class id {} is not an object class (1..254)", name, class_id));
    if (grid.width < 1 || grid.height < 1 || grid.width > mask.cols || grid.height > mask.rows)
        throw Error(fmt::format("{}: map grid {}x{} is not between 1x1 and the mask's {}x{}", name, grid.width,
                                grid.height, mask.cols, mask.rows));
    const cv::Mat labelled = mask != kIgnore;
    const cv::Mat object = (mask == class_id) & labelled;
    const cv::Mat reference = (context.empty() ? labelled : (context != 0) & labelled) & ~object;
    cv::Mat object_f, reference_f;
    object.convertTo(object_f, CV_32F, 1.0 / 255);
    reference.convertTo(reference_f, CV_32F, 1.0 / 255);
    r.object_user = masses(at_resolution(object_f, grid), object, reference, labelled);
    r.context_user = masses(at_resolution(reference_f, grid), object, reference, labelled);
}

}  // namespace sightline
