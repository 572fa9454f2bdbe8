// The CAMs of a dataset split, computed by a classifier or read from a folder of CAM files.
#pragma once

#include <memory>
#include <optional>

#include "sightline/data.hpp"
#include "sightline/wsss.hpp"

namespace sightline::detail {

class CamProvider {
public:
    // Loads the model (checking its head and that it has one output per object class of the
    // data) or checks every CAM file of the split. Throws Error before anything is written.
    CamProvider(const CamSource& source, const Dataset& data, const fs::path& data_root,
                const std::string& split);
    // [n,H,W] for the sample's labels.
    torch::Tensor cams(const Sample& sample) const;
    bool computed() const { return model_.has_value(); }
    int64_t num_classes() const { return num_classes_; }

private:
    CamSource source_;
    std::optional<CamModel> model_;
    int64_t num_classes_ = 0;
};

// The split's first sample has a mask: the whole split is evaluated.
bool split_has_masks(const Dataset& data);

}  // namespace sightline::detail
