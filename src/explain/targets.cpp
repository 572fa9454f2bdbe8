// Parsing --target and choosing the classes to explain.
#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "sightline/explain.hpp"

namespace sightline {

TargetSpec parse_target(const std::string& text, const std::vector<std::string>& class_names) {
    TargetSpec spec;
    auto all_digits = [](const std::string& s) {
        return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
    };
    if (text == "all") {
        spec.kind = TargetSpec::kAll;
    } else if (text.rfind("top", 0) == 0 && all_digits(text.substr(3))) {
        spec.kind = TargetSpec::kTopK;
        spec.k = std::stoll(text.substr(3));
        if (spec.k < 1) throw UsageError("--target top0: K must be at least 1");
    } else if (all_digits(text)) {
        spec.kind = TargetSpec::kIndex;
        spec.index = std::stoll(text);
    } else {
        auto it = std::find(class_names.begin(), class_names.end(), text);
        if (it == class_names.end())
            throw UsageError(fmt::format("--target '{}': not top1|topK|<index>|all{}", text,
                                         class_names.empty() ? " (give --labels to use class names)"
                                                             : " or a class name from --labels"));
        spec.kind = TargetSpec::kIndex;
        spec.index = it - class_names.begin();
    }
    return spec;
}

namespace detail {

torch::Tensor choose_targets(const TargetSpec& spec, const torch::Tensor& logits) {
    const int64_t batch = logits.size(0), classes = logits.size(1);
    switch (spec.kind) {
        case TargetSpec::kAll:
            return torch::arange(classes, logits.options().dtype(torch::kLong)).unsqueeze(0).repeat({batch, 1});
        case TargetSpec::kIndex:
            if (spec.index < 0 || spec.index >= classes)
                throw UsageError(fmt::format("--target {}: class index out of range; the model has "
                                             "{} classes (0..{})", spec.index, classes, classes - 1));
            return torch::full({batch, 1}, spec.index, logits.options().dtype(torch::kLong));
        case TargetSpec::kPerImage: {
            if (static_cast<int64_t>(spec.indices.size()) != batch)
                throw UsageError(fmt::format("targets: {} given for a batch of {} images; give one per image",
                                             spec.indices.size(), batch));
            for (int64_t index : spec.indices)
                if (index < 0 || index >= classes)
                    throw UsageError(fmt::format("target {}: class index out of range; the model has "
                                                 "{} classes (0..{})", index, classes, classes - 1));
            return torch::tensor(spec.indices, torch::kLong).unsqueeze(1).to(logits.device());
        }
        case TargetSpec::kTopK:
            if (spec.k > classes)
                throw UsageError(fmt::format("--target top{}: the model has only {} classes", spec.k, classes));
            return std::get<1>(logits.topk(spec.k, 1, true, true));
    }
    return {};
}

}  // namespace detail
}  // namespace sightline
