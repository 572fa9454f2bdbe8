// Segmentation data: the mask-folder override (pseudo-masks) and the training augmentation.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "data/layout.hpp"
#include "segment/segment_detail.hpp"
#include "sightline/palette.hpp"

namespace sightline {

namespace {

// A dataset whose masks are read from another folder (same ids), checked like the reader
// checks SegmentationClass/.
class MaskOverride : public Dataset {
public:
    MaskOverride(std::unique_ptr<Dataset> inner, fs::path masks) : inner_(std::move(inner)), masks_(std::move(masks)) {}

    std::size_t size() const override { return inner_->size(); }
    const std::vector<std::string>& class_names() const override { return inner_->class_names(); }

    Sample get(std::size_t index) const override {
        Sample s = inner_->get(index);
        const fs::path path = masks_ / (s.id + ".png");
        if (!fs::exists(path)) throw Error(fmt::format("{}: no such mask file (image '{}')", path.string(), s.id));
        s.mask = read_index_png(path);
        if (s.mask.size() != s.image.size())
            throw Error(fmt::format("{}: mask is {}x{} but its image '{}' is {}x{}", path.string(), s.mask.cols,
                                    s.mask.rows, s.id, s.image.cols, s.image.rows));
        const int classes = static_cast<int>(class_names().size());
        s.labels = detail::labels_in_mask(s.mask);
        for (int id : s.labels)
            if (id >= classes)
                throw Error(fmt::format("{}: label {} is not a class (0..{}) nor 255 (ignore)", path.string(), id,
                                        classes - 1));
        return s;
    }

private:
    std::unique_ptr<Dataset> inner_;
    fs::path masks_;
};

}  // namespace

std::unique_ptr<Dataset> open_segmentation_dataset(const fs::path& root, const std::string& split,
                                                   const fs::path& masks) {
    std::unique_ptr<Dataset> data = open_dataset(root, split);
    if (masks.empty()) return data;
    if (!fs::is_directory(masks)) throw Error(fmt::format("{}: no such mask folder (--masks)", masks.string()));
    return std::make_unique<MaskOverride>(std::move(data), masks);
}

namespace detail {

void segmentation_augment(Sample& sample, const SegAugmentOptions& o, Rng& rng) {
    const int s = o.size;
    const double f = rng.uniform(o.scale_min, o.scale_max);
    const int short_side = std::min(sample.image.rows, sample.image.cols);
    const double k = s * f / short_side;
    resize(sample, std::max(1, static_cast<int>(std::lround(sample.image.rows * k))),
           std::max(1, static_cast<int>(std::lround(sample.image.cols * k))));
    pad_to(sample, s, s);
    const int x = rng.uniform_int(0, sample.image.cols - s), y = rng.uniform_int(0, sample.image.rows - s);
    crop(sample, cv::Rect(x, y, s, s));
    if (o.flip && rng.bernoulli(0.5)) horizontal_flip(sample);
    if (o.jitter) color_jitter(sample.image, ColorJitterOptions{}, rng);
}

}  // namespace detail

}  // namespace sightline
