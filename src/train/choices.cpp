// The tables of the training choices (train.hpp): each enum's flag value, in help order.
#include <fmt/format.h>

#include "sightline/train.hpp"

namespace sightline {

namespace {

template <typename Enum>
std::string name_of(const std::vector<std::pair<std::string, Enum>>& table, Enum value) {
    for (const auto& [name, v] : table)
        if (v == value) return name;
    throw Error(fmt::format("internal: choice {} has no name", static_cast<int>(value)));
}

}  // namespace

const std::vector<std::pair<std::string, OptimizerKind>>& optimizer_choices() {
    static const std::vector<std::pair<std::string, OptimizerKind>> table = {{"sgd", OptimizerKind::kSgd},
                                                                             {"adamw", OptimizerKind::kAdamW}};
    return table;
}

const std::vector<std::pair<std::string, ScheduleKind>>& schedule_choices() {
    static const std::vector<std::pair<std::string, ScheduleKind>> table = {{"cosine", ScheduleKind::kCosine},
                                                                            {"poly", ScheduleKind::kPoly}};
    return table;
}

const std::vector<std::pair<std::string, WsssObjective>>& objective_choices() {
    static const std::vector<std::pair<std::string, WsssObjective>> table = {
        {"cam", WsssObjective::kCam},
        {"puzzle", WsssObjective::kPuzzle},
        {"mixup", WsssObjective::kMixup},
        {"subcategory", WsssObjective::kSubcategory}};
    return table;
}

std::string to_string(OptimizerKind kind) { return name_of(optimizer_choices(), kind); }
std::string to_string(ScheduleKind kind) { return name_of(schedule_choices(), kind); }
std::string to_string(WsssObjective objective) { return name_of(objective_choices(), objective); }

}  // namespace sightline
