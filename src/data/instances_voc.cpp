// Instances from the PASCAL VOC layout: SegmentationObject/ ids, classes by majority vote in
// SegmentationClass/ (VOC's object and class PNGs agree pixel for pixel, save for 255 bands).
#include <fmt/format.h>

#include "layout.hpp"
#include "sightline/data.hpp"
#include "sightline/instances.hpp"
#include "sightline/palette.hpp"

namespace sightline {

namespace {

class VocInstances : public InstanceDataset {
public:
    VocInstances(fs::path root, std::unique_ptr<Dataset> semantic)
        : root_(std::move(root)), semantic_(std::move(semantic)) {
        for (std::size_t c = 0; c < semantic_->class_names().size(); ++c) categories_.push_back(static_cast<int64_t>(c));
    }

    std::size_t size() const override { return semantic_->size(); }
    const std::vector<std::string>& class_names() const override { return semantic_->class_names(); }
    const std::vector<int64_t>& category_ids() const override { return categories_; }

    InstanceSample get(std::size_t index) const override {
        Sample s = semantic_->get(index);  // image + class mask, checked by the semantic reader
        InstanceSample out;
        out.id = s.id;
        out.image_id = static_cast<int64_t>(index) + 1;
        out.image_path = s.image_path;
        out.image = s.image;
        const fs::path object_file = root_ / detail::kInstanceMasks / (s.id + ".png");
        const cv::Mat objects = read_index_png(object_file);
        if (objects.size() != s.image.size())
            throw Error(fmt::format("{}: instance mask is {}x{} but its image is {}x{}", object_file.string(),
                                    objects.cols, objects.rows, s.image.cols, s.image.rows));
        // votes[id][class]: the class mask's ids under each instance id.
        std::vector<std::array<uint32_t, 256>> votes(256);
        std::array<bool, 256> present{};
        for (int y = 0; y < objects.rows; ++y) {
            const uint8_t* o = objects.ptr<uint8_t>(y);
            const uint8_t* c = s.mask.ptr<uint8_t>(y);
            for (int x = 0; x < objects.cols; ++x) {
                present[o[x]] = true;
                ++votes[o[x]][c[x]];
            }
        }
        for (int id = 1; id < 255; ++id) {
            if (!present[static_cast<std::size_t>(id)]) continue;
            const auto& v = votes[static_cast<std::size_t>(id)];
            int best = 0;  // ignore (255) never votes; a tie keeps the smaller class id
            for (int c = 1; c < 255; ++c)
                if (v[static_cast<std::size_t>(c)] > v[static_cast<std::size_t>(best)]) best = c;
            if (best == 0) {
                ++out.skipped_unlabelled;
                continue;
            }
            InstanceObject object;
            object.label = best;
            object.mask = objects == id;
            object.mask /= 255;
            object.box = box_of_mask(object.mask);
            out.objects.push_back(std::move(object));
        }
        return out;
    }

private:
    fs::path root_;
    std::unique_ptr<Dataset> semantic_;
    std::vector<int64_t> categories_;
};

}  // namespace

std::unique_ptr<InstanceDataset> open_voc_instances(const fs::path& root, const std::string& split) {
    if (!fs::is_directory(root)) throw Error(fmt::format("{}: no such dataset folder", root.string()));
    for (const char* dir : {detail::kInstanceMasks, detail::kClassMasks})
        if (!fs::is_directory(root / dir))
            throw Error(fmt::format("{}: no such folder (instance data needs {}/ and {}/; `sightline data synth "
                                    "--instances` writes both)",
                                    (root / dir).string(), detail::kInstanceMasks, detail::kClassMasks));
    auto semantic = open_dataset(root, split);
    return std::make_unique<VocInstances>(root, std::move(semantic));
}

}  // namespace sightline
