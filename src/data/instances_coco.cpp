// Instances from a COCO instance JSON (training data): the evaluator's reader does the parsing
// and validation; this maps categories to class ids and annotations to masks and boxes.
#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "sightline/coco.hpp"
#include "sightline/instances.hpp"

namespace sightline {

namespace {

class CocoInstances : public InstanceDataset {
public:
    CocoInstances(CocoDataset coco, fs::path images_dir) : coco_(std::move(coco)), images_dir_(std::move(images_dir)) {
        std::vector<CocoCategory> sorted = coco_.categories;
        std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
        names_ = {"background"};
        categories_ = {0};
        for (const CocoCategory& c : sorted) {
            label_of_[c.id] = static_cast<int>(names_.size());
            names_.push_back(c.name.empty() ? fmt::format("category_{}", c.id) : c.name);
            categories_.push_back(c.id);
        }
        for (std::size_t i = 0; i < coco_.images.size(); ++i) index_of_[coco_.images[i].id] = i;
        annotations_of_.resize(coco_.images.size());
        for (const CocoAnnotation& a : coco_.annotations) annotations_of_[index_of_.at(a.image_id)].push_back(&a);
        for (const CocoImage& image : coco_.images) {
            const fs::path file = images_dir_ / image.file_name;
            if (image.file_name.empty() || !fs::is_regular_file(file))
                throw Error(fmt::format("{}: no such image file (image id {} of {})", file.string(), image.id,
                                        coco_.source.string()));
        }
    }

    std::size_t size() const override { return coco_.images.size(); }
    const std::vector<std::string>& class_names() const override { return names_; }
    const std::vector<int64_t>& category_ids() const override { return categories_; }

    InstanceSample get(std::size_t index) const override {
        if (index >= size()) throw Error(fmt::format("sample {} requested from a dataset of {}", index, size()));
        const CocoImage& meta = coco_.images[index];
        InstanceSample out;
        out.image_path = images_dir_ / meta.file_name;
        out.id = out.image_path.stem().string();
        out.image_id = meta.id;
        out.image = read_image_rgb(out.image_path).rgb;
        if (out.image.cols != meta.width || out.image.rows != meta.height)
            throw Error(fmt::format("{}: image is {}x{} but {} gives image id {} as {}x{}", out.image_path.string(),
                                    out.image.cols, out.image.rows, coco_.source.string(), meta.id, meta.width,
                                    meta.height));
        for (const CocoAnnotation* a : annotations_of_[index]) {
            if (!a->mask)
                throw Error(fmt::format("{}: annotation id {} has no \"segmentation\" (instance training needs masks)",
                                        coco_.source.string(), a->id));
            InstanceObject object;
            object.label = label_of_.at(a->category_id);
            object.crowd = a->iscrowd;
            object.mask = rle_decode(*a->mask);
            const auto& [x, y, w, h] = a->bbox;
            const double W = meta.width, H = meta.height;
            object.box = {static_cast<float>(std::clamp(x, 0.0, W)), static_cast<float>(std::clamp(y, 0.0, H)),
                          static_cast<float>(std::clamp(x + w, 0.0, W)), static_cast<float>(std::clamp(y + h, 0.0, H))};
            if (rle_area(*a->mask) == 0 || !(object.box[2] > object.box[0] && object.box[3] > object.box[1])) {
                ++out.skipped_empty;
                continue;
            }
            out.objects.push_back(std::move(object));
        }
        return out;
    }

private:
    CocoDataset coco_;
    fs::path images_dir_;
    std::vector<std::string> names_;
    std::vector<int64_t> categories_;
    std::map<int64_t, int> label_of_;
    std::map<int64_t, std::size_t> index_of_;
    std::vector<std::vector<const CocoAnnotation*>> annotations_of_;
};

// COCO keeps annotations/instances_val2017.json beside val2017/; `data synth` beside JPEGImages/.
fs::path default_images_dir(const fs::path& json) {
    const fs::path parent = fs::absolute(json).parent_path().parent_path();
    const std::string stem = json.stem().string(), prefix = "instances_";
    if (stem.rfind(prefix, 0) == 0 && fs::is_directory(parent / stem.substr(prefix.size())))
        return parent / stem.substr(prefix.size());
    return parent / "JPEGImages";
}

}  // namespace

std::unique_ptr<InstanceDataset> open_coco_instances(const fs::path& json, const fs::path& images_dir) {
    if (!fs::is_regular_file(json)) throw Error(fmt::format("{}: no such COCO instance file", json.string()));
    const fs::path dir = images_dir.empty() ? default_images_dir(json) : images_dir;
    if (!fs::is_directory(dir))
        throw Error(fmt::format("{}: no such image folder (for {})", dir.string(), json.string()));
    return std::make_unique<CocoInstances>(read_coco_dataset(json), dir);
}

}  // namespace sightline
