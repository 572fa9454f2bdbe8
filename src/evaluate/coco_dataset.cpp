// Reading a COCO instance ground-truth file (images, categories, annotations).
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "evaluate/coco_json_fields.hpp"

namespace sightline {

namespace {

using detail::json;

// RLE counts are 32-bit, as in maskApi.c.
constexpr int64_t kMaxPixels = int64_t{1} << 31;

const json& required_list(const json& root, const char* key, const std::string& file) {
    if (!root.contains(key)) throw Error(fmt::format("{}: no \"{}\" list", file, key));
    const json& list = root[key];
    if (!list.is_array()) throw Error(fmt::format("{}: \"{}\" must be a list", file, key));
    if (list.empty()) throw Error(fmt::format("{}: \"{}\" is empty: nothing to evaluate", file, key));
    return list;
}

std::vector<CocoImage> read_images(const json& list, const std::string& file) {
    std::vector<CocoImage> images;
    std::unordered_set<int64_t> seen;
    for (std::size_t i = 0; i < list.size(); ++i) {
        const std::string where = fmt::format("{}: images[{}]", file, i);
        const json& entry = list[i];
        if (!entry.is_object()) throw Error(where + ": not an object");
        CocoImage image;
        image.id = detail::read_id(entry, "id", where);
        const int64_t height = detail::read_id(entry, "height", where);
        const int64_t width = detail::read_id(entry, "width", where);
        if (height <= 0 || width <= 0 || height * width >= kMaxPixels)
            throw Error(fmt::format("{} (id {}): size {}x{} (width x height) is not a valid image size",
                                    where, image.id, width, height));
        image.height = static_cast<int>(height);
        image.width = static_cast<int>(width);
        if (entry.contains("file_name") && entry["file_name"].is_string())
            image.file_name = entry["file_name"].get<std::string>();
        if (!seen.insert(image.id).second)
            throw Error(fmt::format("{}: image id {} appears twice", where, image.id));
        images.push_back(image);
    }
    return images;
}

std::vector<CocoCategory> read_categories(const json& list, const std::string& file) {
    std::vector<CocoCategory> categories;
    std::unordered_set<int64_t> seen;
    for (std::size_t i = 0; i < list.size(); ++i) {
        const std::string where = fmt::format("{}: categories[{}]", file, i);
        if (!list[i].is_object()) throw Error(where + ": not an object");
        CocoCategory category;
        category.id = detail::read_id(list[i], "id", where);
        if (list[i].contains("name") && list[i]["name"].is_string())
            category.name = list[i]["name"].get<std::string>();
        if (!seen.insert(category.id).second)
            throw Error(fmt::format("{}: category id {} appears twice", where, category.id));
        categories.push_back(category);
    }
    return categories;
}

CocoAnnotation read_annotation(const json& entry, const std::string& where_index,
                               const std::unordered_map<int64_t, const CocoImage*>& images,
                               const std::unordered_set<int64_t>& categories) {
    if (!entry.is_object()) throw Error(where_index + ": not an object");
    CocoAnnotation ann;
    ann.id = detail::read_id(entry, "id", where_index);
    const std::string where = fmt::format("{} (id {})", where_index, ann.id);
    ann.image_id = detail::read_id(entry, "image_id", where);
    ann.category_id = detail::read_id(entry, "category_id", where);
    const auto image = images.find(ann.image_id);
    if (image == images.end())
        throw Error(fmt::format("{}: image_id {} is not in \"images\"", where, ann.image_id));
    if (!categories.count(ann.category_id))
        throw Error(fmt::format("{}: category_id {} is not in \"categories\"", where, ann.category_id));
    if (entry.contains("iscrowd")) {
        const json& crowd = entry["iscrowd"];
        if (crowd.is_boolean()) {
            ann.iscrowd = crowd.get<bool>();
        } else {
            const int64_t flag = detail::read_id(entry, "iscrowd", where);
            if (flag != 0 && flag != 1) throw Error(fmt::format("{}: \"iscrowd\" must be 0 or 1, got {}", where, flag));
            ann.iscrowd = flag == 1;
        }
    }
    ann.area = detail::read_number(entry, "area", where);
    if (ann.area < 0) throw Error(fmt::format("{}: \"area\" is negative ({})", where, ann.area));
    if (!entry.contains("bbox")) throw Error(fmt::format("{}: no \"bbox\"", where));
    ann.bbox = detail::read_box(entry["bbox"], where);
    if (entry.contains("segmentation") && !entry["segmentation"].is_null())
        ann.mask = detail::read_segmentation(entry["segmentation"], image->second->height,
                                             image->second->width, where);
    return ann;
}

}  // namespace

CocoDataset read_coco_dataset(const fs::path& path) {
    const std::string file = path.string();
    const json root = detail::read_json_file(path);
    if (!root.is_object())
        throw Error(fmt::format("{}: a COCO ground-truth file is a JSON object with \"images\", "
                                "\"annotations\" and \"categories\"",
                                file));
    CocoDataset dataset;
    dataset.source = path;
    dataset.images = read_images(required_list(root, "images", file), file);
    dataset.categories = read_categories(required_list(root, "categories", file), file);
    const json& annotations = required_list(root, "annotations", file);

    std::unordered_map<int64_t, const CocoImage*> images;
    for (const CocoImage& image : dataset.images) images[image.id] = &image;
    std::unordered_set<int64_t> categories, ids;
    for (const CocoCategory& category : dataset.categories) categories.insert(category.id);
    dataset.annotations.reserve(annotations.size());
    for (std::size_t i = 0; i < annotations.size(); ++i) {
        const std::string where = fmt::format("{}: annotations[{}]", file, i);
        dataset.annotations.push_back(read_annotation(annotations[i], where, images, categories));
        if (!ids.insert(dataset.annotations.back().id).second)
            throw Error(fmt::format("{} (id {}): annotation id {} appears twice", where,
                                    dataset.annotations.back().id, dataset.annotations.back().id));
    }
    return dataset;
}

}  // namespace sightline
