// The table of built-in architectures and the model card (model.json) they are saved with.
#include <nlohmann/json.hpp>
#include <fmt/format.h>

#include "model/architectures/layers.hpp"
#include "sightline/architectures.hpp"

namespace sightline {

using detail::build_resnet;
using detail::build_vgg;

const std::vector<ArchInfo>& architectures() {
    static const std::vector<ArchInfo> table = {
        {"resnet_gap", "ResNet-style backbone, GAP -> Linear head (the CAM architecture)",
         HeadDesign::kGapLinear,
         [](const ArchOptions& o) { return build_resnet(o, 0, "resnet_gap"); }},
        {"resnet_flatten",
         "ResNet-style backbone, flatten -> Linear head (HiResCAM exact; fixed input size)",
         HeadDesign::kFlattenLinear,
         [](const ArchOptions& o) { return build_resnet(o, 1, "resnet_flatten"); }},
        {"resnet_mlp",
         "ResNet-style backbone, GAP -> Linear -> ReLU -> Linear head (no guarantee)",
         HeadDesign::kMlp, [](const ArchOptions& o) { return build_resnet(o, 2, "resnet_mlp"); }},
        {"vgg_gap", "VGG-style plain CNN (no skip connections), GAP -> Linear head",
         HeadDesign::kGapLinear, [](const ArchOptions& o) { return build_vgg(o, 0, "vgg_gap"); }},
    };
    static_assert(static_cast<int>(HeadDesign::kGapLinear) == 0 &&
                  static_cast<int>(HeadDesign::kFlattenLinear) == 1 &&
                  static_cast<int>(HeadDesign::kMlp) == 2);
    return table;
}

std::string architecture_names() {
    std::string names;
    for (const ArchInfo& a : architectures()) names += (names.empty() ? "" : ", ") + a.name;
    return names;
}

std::string architecture_help() {
    std::string help;
    for (const ArchInfo& a : architectures()) help += fmt::format("  {:<16}{}\n", a.name, a.description);
    return help;
}

const ArchInfo& find_architecture(const std::string& name) {
    for (const ArchInfo& a : architectures())
        if (a.name == name) return a;
    throw UsageError(fmt::format("unknown architecture '{}' (choices: {})", name, architecture_names()));
}

int64_t feature_side(const ArchOptions& o) {
    return (o.input_size + o.output_stride - 1) / o.output_stride;
}

torch::jit::Module build_architecture(const std::string& name, const ArchOptions& o) {
    const ArchInfo& arch = find_architecture(name);
    auto check = [](bool ok, const std::string& what) {
        if (!ok) throw UsageError(what);
    };
    check(o.num_classes >= 1, fmt::format("{}: need at least 1 class, got {}", name, o.num_classes));
    check(o.input_size >= 8 && o.input_size <= 4096,
          fmt::format("--input-size must be in [8, 4096], got {}", o.input_size));
    check(o.width >= 1 && o.width <= 512, fmt::format("--width must be in [1, 512], got {}", o.width));
    check(o.output_stride == 4 || o.output_stride == 8 || o.output_stride == 16,
          fmt::format("--output-stride must be 4, 8 or 16, got {}", o.output_stride));
    check(o.depth.size() == 4, fmt::format("--depth needs 4 numbers (blocks per stage), got {}",
                                           o.depth.size()));
    for (int64_t d : o.depth)
        check(d >= 1 && d <= 16, fmt::format("--depth values must be in [1, 16], got {}", d));
    check(o.hidden >= 1, fmt::format("--hidden must be >= 1, got {}", o.hidden));
    return arch.build(o);
}

const std::vector<std::pair<std::string, Norm>>& norm_choices() {
    static const std::vector<std::pair<std::string, Norm>> table = {{"batch", Norm::kBatch}, {"group", Norm::kGroup}};
    return table;
}

std::string to_string(Norm norm) {
    for (const auto& [name, value] : norm_choices())
        if (value == norm) return name;
    return "?";
}

// ---- model card ------------------------------------------------------------------------------

std::string head_design_name(HeadDesign head) {
    switch (head) {
        case HeadDesign::kGapLinear: return "gap_linear";
        case HeadDesign::kFlattenLinear: return "flatten_linear";
        case HeadDesign::kMlp: return "mlp";
    }
    return "?";
}

HeadDesign parse_head_design(const std::string& name) {
    for (HeadDesign h : {HeadDesign::kGapLinear, HeadDesign::kFlattenLinear, HeadDesign::kMlp})
        if (head_design_name(h) == name) return h;
    throw Error(fmt::format("unknown head '{}' (expected gap_linear, flatten_linear or mlp)", name));
}

std::string model_card_json(const ModelCard& card) {
    nlohmann::ordered_json j;
    j["arch"] = card.arch;
    j["head"] = head_design_name(card.head);
    j["input_size"] = card.input_size;
    j["output_stride"] = card.output_stride;
    j["class_names"] = card.class_names;
    j["mean"] = card.mean;
    j["std"] = card.std;
    return j.dump(2) + "\n";
}

ModelCard read_model_card(const fs::path& path) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(read_file(path));
    } catch (const nlohmann::json::exception& e) {
        throw Error(fmt::format("{}: not valid JSON ({})", path.string(), e.what()));
    }
    auto field = [&](const char* key) -> const nlohmann::json& {
        if (!j.is_object() || !j.contains(key))
            throw Error(fmt::format("{}: missing field '{}'", path.string(), key));
        return j.at(key);
    };
    ModelCard card;
    try {
        card.arch = field("arch").get<std::string>();
        card.head = parse_head_design(field("head").get<std::string>());
        card.input_size = field("input_size").get<int64_t>();
        card.output_stride = field("output_stride").get<int64_t>();
        card.class_names = field("class_names").get<std::vector<std::string>>();
        card.mean = field("mean").get<std::vector<double>>();
        card.std = field("std").get<std::vector<double>>();
    } catch (const nlohmann::json::exception& e) {
        throw Error(fmt::format("{}: wrong field type ({})", path.string(), e.what()));
    } catch (const Error& e) {
        if (std::string(e.what()).rfind(path.string(), 0) == 0) throw;
        throw Error(fmt::format("{}: {}", path.string(), e.what()));
    }
    return card;
}

void attach_model_card(torch::jit::Module& module, const ModelCard& card) {
    c10::List<std::string> names;
    for (const auto& n : card.class_names) names.push_back(n);
    c10::List<double> mean(card.mean), std(card.std);
    module.register_attribute("sightline_class_names", c10::ListType::ofStrings(), names);
    module.register_attribute("sightline_mean", c10::ListType::ofFloats(), mean);
    module.register_attribute("sightline_std", c10::ListType::ofFloats(), std);
}

}  // namespace sightline
