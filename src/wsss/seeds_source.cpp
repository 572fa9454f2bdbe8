#include "wsss/seeds_source.hpp"

#include <fmt/format.h>
#include <torch/torch.h>

namespace sightline::detail {

CamProvider::CamProvider(const CamSource& source, const Dataset& data, const fs::path& data_root,
                         const std::string& split)
    : source_(source), num_classes_(static_cast<int64_t>(data.num_object_classes())) {
    if (source.model.empty() == source.cams.empty())
        throw UsageError("give exactly one of --model (a classifier) and --cams (a folder of CAM files)");
    if (!source.model.empty()) {
        model_.emplace(CamModel::load(source.model, source.options));
        if (model_->num_classes() != num_classes_)
            throw Error(fmt::format("{}: the classifier has {} outputs but {} (split {}) has {} object classes",
                                    source.model.string(), model_->num_classes(), data_root.string(), split,
                                    num_classes_));
        return;
    }
    if (!fs::is_directory(source.cams)) throw Error(fmt::format("{}: no such folder (--cams)", source.cams.string()));
    for (std::size_t i = 0; i < data.size(); ++i) cams(data.get(i));  // every file checked up front
}

torch::Tensor CamProvider::cams(const Sample& s) const {
    if (model_) return model_->image_cams(s.image, s.labels, source_.options);
    fs::path file = source_.cams / (s.id + ".npy");
    if (!fs::exists(file)) throw Error(fmt::format("{}: no such file (the CAMs of image {})", file.string(), s.id));
    return read_cam_file(file, s.labels, num_classes_, s.image.rows, s.image.cols);
}

bool split_has_masks(const Dataset& data) { return data.size() > 0 && !data.get(0).mask.empty(); }

}  // namespace sightline::detail
