// Background-threshold sweep of CAM seeds against ground truth: one dataset-level confusion
// matrix per threshold (the reference code sweeps 0.05..0.80 on VOC train, notes/wsss.md 1.4).
#include <cmath>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sightline/wsss.hpp"
#include "evaluate/output_fields.hpp"

namespace sightline {

ThresholdSweep::ThresholdSweep(int num_classes, std::vector<double> thresholds)
    : num_classes_(num_classes), thresholds_(std::move(thresholds)) {
    if (thresholds_.empty()) throw UsageError("--thresholds: no threshold given");
    for (std::size_t i = 0; i < thresholds_.size(); ++i) confusions_.emplace_back(num_classes_, 255);
}

void ThresholdSweep::add(const torch::Tensor& cams, const std::vector<int>& keys, const cv::Mat& gt,
                         const MaskNames& names) {
    for (std::size_t i = 0; i < thresholds_.size(); ++i) {
        cv::Mat seeds = seed_labels(cams, keys, BackgroundRule{BackgroundRule::Kind::kThreshold, thresholds_[i]});
        confusions_[i].accumulate(seeds, gt, names);
    }
}

void ThresholdSweep::merge(const ThresholdSweep& other) {
    if (other.thresholds_ != thresholds_) throw Error("threshold sweep: merging sweeps of different thresholds");
    for (std::size_t i = 0; i < confusions_.size(); ++i) confusions_[i].merge(other.confusions_[i]);
}

SweepResult sweep_result(const ThresholdSweep& sweep, const std::vector<std::string>& class_names) {
    SweepResult r;
    r.thresholds = sweep.thresholds();
    for (const ConfusionMatrix& m : sweep.confusions()) r.metrics.push_back(m.metrics(class_names));
    for (std::size_t i = 1; i < r.metrics.size(); ++i)
        if (r.metrics[i].miou > r.metrics[r.best].miou || std::isnan(r.metrics[r.best].miou)) r.best = i;
    return r;
}

namespace {
using output_fields::number;
}  // namespace

std::string sweep_json(const SweepResult& r) {
    nlohmann::json j;
    j["best_threshold"] = r.best_threshold();
    j["best_miou"] = number(r.best_miou());
    j["rows"] = nlohmann::json::array();
    for (std::size_t i = 0; i < r.thresholds.size(); ++i) {
        nlohmann::json row{{"threshold", r.thresholds[i]},
                           {"miou", number(r.metrics[i].miou)},
                           {"fg_miou", number(r.metrics[i].fg_miou)},
                           {"pixel_accuracy", number(r.metrics[i].pixel_accuracy)}};
        nlohmann::json iou = nlohmann::json::object();
        for (const ClassMetrics& c : r.metrics[i].per_class) iou[c.name] = number(c.iou);
        row["iou"] = iou;
        j["rows"].push_back(row);
    }
    return j.dump(2) + "\n";
}

std::string sweep_table(const SweepResult& r) {
    std::ostringstream out;
    out << "threshold   mIoU    fg mIoU\n";
    for (std::size_t i = 0; i < r.thresholds.size(); ++i)
        out << fmt::format("{:9.2f}   {:.4f}  {:.4f}{}\n", r.thresholds[i], r.metrics[i].miou, r.metrics[i].fg_miou,
                           i == r.best ? "   <- best" : "");
    return out.str();
}

}  // namespace sightline
