// Writing a COCO instance ground-truth file (the inverse of coco_dataset.cpp).
#include <nlohmann/json.hpp>

#include "sightline/coco.hpp"

namespace sightline {

void write_coco_dataset(const fs::path& path, const CocoDataset& dataset) {
    using json = nlohmann::ordered_json;
    json images = json::array(), categories = json::array(), annotations = json::array();
    for (const CocoImage& image : dataset.images)
        images.push_back({{"id", image.id}, {"file_name", image.file_name}, {"height", image.height},
                          {"width", image.width}});
    for (const CocoCategory& category : dataset.categories)
        categories.push_back({{"id", category.id}, {"name", category.name}});
    for (const CocoAnnotation& a : dataset.annotations) {
        json entry{{"id", a.id},         {"image_id", a.image_id}, {"category_id", a.category_id},
                   {"iscrowd", a.iscrowd ? 1 : 0}, {"area", a.area}, {"bbox", a.bbox}};
        if (a.mask)
            entry["segmentation"] = json{{"size", {a.mask->h, a.mask->w}}, {"counts", rle_to_string(*a.mask)}};
        annotations.push_back(std::move(entry));
    }
    // One entry per line: small diffs, and a file that a person can skim.
    std::string text = "{\"images\": [\n";
    auto append_list = [&text](const json& list) {
        for (std::size_t i = 0; i < list.size(); ++i) text += list[i].dump() + (i + 1 < list.size() ? ",\n" : "\n");
    };
    append_list(images);
    text += "],\n\"categories\": [\n";
    append_list(categories);
    text += "],\n\"annotations\": [\n";
    append_list(annotations);
    text += "]}\n";
    write_file_atomic(path, text);
}

}  // namespace sightline
