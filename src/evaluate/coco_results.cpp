// Reading and writing COCO results files (a list of detections), with the areas and boxes
// pycocotools' COCO.loadRes gives them.
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "evaluate/coco_json_fields.hpp"

namespace sightline {

namespace {

using detail::json;

// loadRes looks at the first result only: if it has a non-empty "bbox", every area is the
// box's width x height (even for mask evaluation); otherwise the mask's area.
bool file_uses_box_areas(const json& list) {
    if (list.empty() || !list[0].is_object() || !list[0].contains("bbox")) return false;
    const json& box = list[0]["bbox"];
    return !(box.is_array() && box.empty());
}

bool has_field(const json& entry, const char* key) {
    if (!entry.contains(key) || entry[key].is_null()) return false;
    return !(entry[key].is_array() && entry[key].empty() && std::string(key) == "bbox");
}

CocoDetection read_detection(const json& entry, const std::string& where, bool box_areas,
                             const std::unordered_map<int64_t, const CocoImage*>& images,
                             const std::string& gt_file) {
    if (!entry.is_object()) throw Error(where + ": not an object");
    CocoDetection det;
    det.image_id = detail::read_id(entry, "image_id", where);
    det.category_id = detail::read_id(entry, "category_id", where);
    det.score = detail::read_number(entry, "score", where);
    const auto image = images.find(det.image_id);
    if (image == images.end())
        throw Error(fmt::format("{}: image_id {} is not an image of {}", where, det.image_id, gt_file));
    if (has_field(entry, "bbox")) det.bbox = detail::read_box(entry["bbox"], where);
    if (has_field(entry, "segmentation"))
        det.mask = detail::read_segmentation(entry["segmentation"], image->second->height,
                                             image->second->width, where);
    if (box_areas) {
        if (!det.bbox)
            throw Error(fmt::format("{}: no \"bbox\" (the first result has one, so every result needs "
                                    "one: its area is the box's, as pycocotools)",
                                    where));
        det.area = (*det.bbox)[2] * (*det.bbox)[3];
    } else {
        if (!det.mask)
            throw Error(fmt::format("{}: no \"segmentation\" (the first result has no bbox, so every result "
                                    "needs one: its area is the mask's, as pycocotools)",
                                    where));
        det.area = static_cast<double>(rle_area(*det.mask));
        if (!det.bbox) det.bbox = rle_to_bbox(*det.mask);
    }
    return det;
}

}  // namespace

CocoResults read_coco_results(const fs::path& path, const CocoDataset& gt) {
    const std::string file = path.string();
    const json list = detail::read_json_file(path);
    if (!list.is_array())
        throw Error(fmt::format("{}: a results file is a JSON list of detections "
                                "({{image_id, category_id, score, bbox, segmentation}}), got {}",
                                file, list.is_object() ? "an object" : "a single value"));
    std::unordered_map<int64_t, const CocoImage*> images;
    for (const CocoImage& image : gt.images) images[image.id] = &image;
    std::unordered_set<int64_t> categories;
    for (const CocoCategory& category : gt.categories) categories.insert(category.id);

    const bool box_areas = file_uses_box_areas(list);
    CocoResults results;
    results.source = path;
    results.detections.reserve(list.size());
    for (std::size_t i = 0; i < list.size(); ++i) {
        CocoDetection det = read_detection(list[i], fmt::format("{}: [{}]", file, i), box_areas, images,
                                           gt.source.string());
        // COCOeval only asks for the GT's categories: others are left out without a word.
        if (!categories.count(det.category_id)) {
            ++results.skipped_unknown_category;
            continue;
        }
        results.detections.push_back(std::move(det));
    }
    return results;
}

void write_coco_results(const fs::path& path, const std::vector<CocoDetection>& detections) {
    json list = json::array();
    for (const CocoDetection& det : detections) {
        json entry{{"image_id", det.image_id}, {"category_id", det.category_id}, {"score", det.score}};
        if (det.bbox) entry["bbox"] = *det.bbox;
        if (det.mask)
            entry["segmentation"] = json{{"size", {det.mask->h, det.mask->w}}, {"counts", rle_to_string(*det.mask)}};
        list.push_back(std::move(entry));
    }
    write_file_atomic(path, list.dump() + "\n");
}

}  // namespace sightline
