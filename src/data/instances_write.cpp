// Any instance dataset as a COCO instance JSON: what `data synth --instances` writes beside its
// VOC folders, so the evaluator and COCO tools read the same ground truth.
#include "layout.hpp"
#include "sightline/coco.hpp"
#include "sightline/instances.hpp"

namespace sightline {

std::size_t write_coco_instances(const InstanceDataset& dataset, const fs::path& path) {
    CocoDataset coco;
    const auto& names = dataset.class_names();
    const auto& ids = dataset.category_ids();
    for (std::size_t c = 1; c < names.size(); ++c) coco.categories.push_back({ids[c], names[c]});
    for (std::size_t i = 0; i < dataset.size(); ++i) {
        const InstanceSample s = dataset.get(i);
        coco.images.push_back({s.image_id, s.image.rows, s.image.cols, s.image_path.filename().string()});
        for (const InstanceObject& object : s.objects) {
            CocoAnnotation a;
            a.id = static_cast<int64_t>(coco.annotations.size()) + 1;
            a.image_id = s.image_id;
            a.category_id = ids[static_cast<std::size_t>(object.label)];
            a.iscrowd = object.crowd;
            a.mask = rle_encode(object.mask);
            a.area = static_cast<double>(rle_area(*a.mask));
            // The mask's own box (rle_to_bbox widens a box whose run wraps to the next column).
            const auto& [x0, y0, x1, y1] = object.box;
            a.bbox = {x0, y0, x1 - x0, y1 - y0};
            coco.annotations.push_back(std::move(a));
        }
    }
    write_coco_dataset(path, coco);
    return coco.annotations.size();
}

namespace detail {

void write_coco_instance_files(const fs::path& root, const std::vector<std::string>& splits) {
    for (const std::string& split : splits)
        write_coco_instances(*open_voc_instances(root, split), root / "annotations" / ("instances_" + split + ".json"));
}

}  // namespace detail

}  // namespace sightline
