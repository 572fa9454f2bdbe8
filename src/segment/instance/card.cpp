// The Mask R-CNN model card: the configuration a torchvision state_dict does not hold.
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "sightline/instance.hpp"

namespace sightline {

namespace {

using json = nlohmann::ordered_json;

constexpr const char* kTask = "instance";
constexpr const char* kArch = "maskrcnn_resnet_fpn";

// Integer and float fields of MaskRCNNConfig under their C++ (and torchvision keyword) names.
std::map<std::string, int64_t MaskRCNNConfig::*> integer_fields() {
    return {{"depth", &MaskRCNNConfig::depth},
            {"num_classes", &MaskRCNNConfig::num_classes},
            {"trainable_layers", &MaskRCNNConfig::trainable_layers},
            {"min_size", &MaskRCNNConfig::min_size},
            {"max_size", &MaskRCNNConfig::max_size},
            {"rpn_pre_nms_top_n", &MaskRCNNConfig::rpn_pre_nms_top_n},
            {"rpn_post_nms_top_n", &MaskRCNNConfig::rpn_post_nms_top_n},
            {"rpn_pre_nms_top_n_train", &MaskRCNNConfig::rpn_pre_nms_top_n_train},
            {"rpn_post_nms_top_n_train", &MaskRCNNConfig::rpn_post_nms_top_n_train},
            {"box_detections_per_img", &MaskRCNNConfig::box_detections_per_img},
            {"rpn_batch_size_per_image", &MaskRCNNConfig::rpn_batch_size_per_image},
            {"box_batch_size_per_image", &MaskRCNNConfig::box_batch_size_per_image}};
}

std::map<std::string, double MaskRCNNConfig::*> real_fields() {
    return {{"rpn_nms_thresh", &MaskRCNNConfig::rpn_nms_thresh},
            {"rpn_score_thresh", &MaskRCNNConfig::rpn_score_thresh},
            {"box_score_thresh", &MaskRCNNConfig::box_score_thresh},
            {"box_nms_thresh", &MaskRCNNConfig::box_nms_thresh}};
}

const std::vector<std::string>& other_keys() {
    static const std::vector<std::string> keys = {"task", "arch", "class_names", "category_ids", "image_mean",
                                                  "image_std"};
    return keys;
}

}  // namespace

fs::path default_card_path(const fs::path& weights) {
    fs::path card = weights;
    return card.replace_extension(".json");
}

InstanceModelCard read_instance_model_card(const fs::path& path) {
    const std::string file = path.string();
    if (!fs::is_regular_file(path))
        throw Error(fmt::format("{}: no such model card (a JSON with depth, num_classes, class_names; "
                                "docs/mask-rcnn.md)",
                                file));
    json j;
    try {
        j = json::parse(read_file(path));
    } catch (const json::exception& e) {  // syntax, or a number out of double's range
        std::string message = e.what();
        if (message.size() > 160) message = message.substr(0, 157) + "...";
        throw Error(fmt::format("{}: not valid JSON ({})", file, message));
    }
    if (!j.is_object()) throw Error(fmt::format("{}: a model card is a JSON object", file));
    const auto integers = integer_fields();
    const auto reals = real_fields();
    std::set<std::string> known(other_keys().begin(), other_keys().end());
    for (const auto& [key, _] : integers) known.insert(key);
    for (const auto& [key, _] : reals) known.insert(key);
    for (const auto& [key, _] : j.items())
        if (!known.count(key))
            throw Error(fmt::format("{}: unknown key \"{}\" (known: {})", file, key, fmt::join(known, ", ")));
    for (const char* key : {"depth", "num_classes"})
        if (!j.contains(key)) throw Error(fmt::format("{}: no \"{}\"", file, key));
    if (j.contains("task") && j["task"] != kTask)
        throw Error(fmt::format("{}: \"task\" is {}, not \"{}\"", file, j["task"].dump(), kTask));
    if (j.contains("arch") && j["arch"] != kArch)
        throw Error(fmt::format("{}: \"arch\" is {}; only \"{}\" is known", file, j["arch"].dump(), kArch));

    InstanceModelCard card;
    MaskRCNNConfig& c = card.config;
    for (const auto& [key, field] : integers)
        if (j.contains(key)) {
            if (!j[key].is_number_integer())
                throw Error(fmt::format("{}: \"{}\" must be an integer, got {}", file, key, j[key].dump()));
            c.*field = j[key].get<int64_t>();
        }
    for (const auto& [key, field] : reals)
        if (j.contains(key)) {
            if (!j[key].is_number()) throw Error(fmt::format("{}: \"{}\" must be a number, got {}", file, key, j[key].dump()));
            c.*field = j[key].get<double>();
        }
    for (const auto& [key, field] : {std::pair{"image_mean", &c.image_mean}, std::pair{"image_std", &c.image_std}})
        if (j.contains(key)) {
            const json& v = j[key];
            if (!v.is_array() || v.size() != 3 || !v[0].is_number() || !v[1].is_number() || !v[2].is_number())
                throw Error(fmt::format("{}: \"{}\" must be 3 numbers, got {}", file, key, v.dump()));
            for (int i = 0; i < 3; ++i) (*field)[static_cast<std::size_t>(i)] = v[static_cast<std::size_t>(i)].get<float>();
        }
    try {
        validate(c);
    } catch (const Error& e) {
        throw Error(fmt::format("{}: {}", file, e.what()));
    }
    const auto k = static_cast<std::size_t>(c.num_classes);
    if (j.contains("class_names")) {
        const json& v = j["class_names"];
        if (!v.is_array() || v.size() != k)
            throw Error(fmt::format("{}: \"class_names\" must list {} names (num_classes, background first), got {}",
                                    file, k, v.is_array() ? std::to_string(v.size()) : v.dump()));
        for (const json& name : v) {
            if (!name.is_string()) throw Error(fmt::format("{}: \"class_names\" must be strings, got {}", file, name.dump()));
            card.class_names.push_back(name.get<std::string>());
        }
    } else {
        card.class_names = {"background"};
        for (std::size_t i = 1; i < k; ++i) card.class_names.push_back(fmt::format("class_{}", i));
    }
    if (j.contains("category_ids")) {
        const json& v = j["category_ids"];
        if (!v.is_array() || v.size() != k)
            throw Error(fmt::format("{}: \"category_ids\" must list {} ids (num_classes, 0 for background), got {}",
                                    file, k, v.is_array() ? std::to_string(v.size()) : v.dump()));
        for (const json& id : v) {
            if (!id.is_number_integer())
                throw Error(fmt::format("{}: \"category_ids\" must be integers, got {}", file, id.dump()));
            card.category_ids.push_back(id.get<int64_t>());
        }
    } else {
        for (std::size_t i = 0; i < k; ++i) card.category_ids.push_back(static_cast<int64_t>(i));
    }
    return card;
}

std::string instance_model_card_json(const InstanceModelCard& card) {
    const MaskRCNNConfig& c = card.config;
    json j;
    j["task"] = kTask;
    j["arch"] = kArch;
    j["depth"] = c.depth;
    j["num_classes"] = c.num_classes;
    j["class_names"] = card.class_names;
    j["category_ids"] = card.category_ids;
    for (const auto& [key, field] : integer_fields())
        if (key != "depth" && key != "num_classes") j[key] = c.*field;
    for (const auto& [key, field] : real_fields()) j[key] = c.*field;
    j["image_mean"] = c.image_mean;
    j["image_std"] = c.image_std;
    return j.dump(2) + "\n";
}

InstanceModelCard card_for_dataset(const MaskRCNNConfig& config, const InstanceDataset& data) {
    InstanceModelCard card;
    card.config = config;
    card.config.num_classes = static_cast<int64_t>(data.class_names().size());
    card.class_names = data.class_names();
    card.category_ids = data.category_ids();
    return card;
}

}  // namespace sightline
