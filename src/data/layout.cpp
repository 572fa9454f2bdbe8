#include "layout.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace sightline::detail {

void make_layout_dirs(const fs::path& root, bool instances, bool contexts) {
    ensure_writable_dir(root);
    for (const char* dir : {kImages, kClassMasks, kSplits}) ensure_writable_dir(root / dir);
    if (instances) ensure_writable_dir(root / kInstanceMasks);
    if (contexts) ensure_writable_dir(root / kContextMasks);
}

void write_split_files(const fs::path& root,
                       const std::vector<std::pair<std::string, std::vector<std::string>>>& splits) {
    for (const auto& [name, ids] : splits) {
        std::string text;
        for (const auto& id : ids) text += id + "\n";
        write_file_atomic(root / kSplits / (name + ".txt"), text);
    }
}

void write_labels_csv(const fs::path& root, const std::vector<std::string>& class_names,
                      const std::vector<std::pair<std::string, std::vector<int>>>& rows) {
    std::string text = "image,labels\n";
    for (const auto& [id, labels] : rows) {
        std::vector<std::string> names;
        for (int label : labels) names.push_back(class_names.at(static_cast<std::size_t>(label)));
        text += fmt::format("{},{}\n", id, fmt::join(names, ";"));
    }
    write_file_atomic(root / "labels.csv", text);
}

void write_names(const fs::path& path, const std::vector<std::string>& names) {
    write_file_atomic(path, fmt::format("{}\n", fmt::join(names, "\n")));
}

std::vector<int> labels_in_mask(const cv::Mat& mask) {
    bool present[256] = {false};
    for (int y = 0; y < mask.rows; ++y) {
        const uint8_t* row = mask.ptr<uint8_t>(y);
        for (int x = 0; x < mask.cols; ++x) present[row[x]] = true;
    }
    std::vector<int> labels;
    for (int id = 1; id < 255; ++id)
        if (present[id]) labels.push_back(id);
    return labels;
}

}  // namespace sightline::detail
