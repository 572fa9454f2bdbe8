// What `sightline eval --coco` prints and writes: pycocotools' summary lines and
// coco_eval.json.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sightline/coco.hpp"

namespace sightline {

const char* coco_iou_type_name(CocoIouType type) { return type == CocoIouType::segm ? "segm" : "bbox"; }

CocoIouType parse_coco_iou_type(const std::string& name) {
    if (name == "segm") return CocoIouType::segm;
    if (name == "bbox") return CocoIouType::bbox;
    throw UsageError(fmt::format("--iou-type: '{}' is not segm or bbox", name));
}

std::string format_coco_summary(const CocoEvalResult& result) {
    struct Line {
        bool precision;
        const char* iou;
        const char* area;
        int max_dets;
    };
    // summarize()'s _summarizeDets, in stats order.
    static const Line kLines[12] = {
        {true, "0.50:0.95", "all", 100},    {true, "0.50", "all", 100},
        {true, "0.75", "all", 100},         {true, "0.50:0.95", "small", 100},
        {true, "0.50:0.95", "medium", 100}, {true, "0.50:0.95", "large", 100},
        {false, "0.50:0.95", "all", 1},     {false, "0.50:0.95", "all", 10},
        {false, "0.50:0.95", "all", 100},   {false, "0.50:0.95", "small", 100},
        {false, "0.50:0.95", "medium", 100}, {false, "0.50:0.95", "large", 100}};
    std::string out;
    for (int i = 0; i < 12; ++i) {
        const Line& l = kLines[i];
        // ' {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}'
        out += fmt::format(" {:<18} {} @[ IoU={:<9} | area={:>6} | maxDets={:>3} ] = {:0.3f}\n",
                           l.precision ? "Average Precision" : "Average Recall", l.precision ? "(AP)" : "(AR)",
                           l.iou, l.area, l.max_dets, result.stats[i]);
    }
    return out;
}

void write_coco_eval_json(const fs::path& dir, const std::vector<CocoEvalResult>& results,
                          const CocoDataset& gt, const CocoResults& detections) {
    using json = nlohmann::ordered_json;  // keys in pycocotools' order, not sorted
    json root = json::object();
    json per_category = json::object();
    for (const CocoEvalResult& r : results) {
        json stats = json::object();
        for (std::size_t i = 0; i < kCocoStatNames.size(); ++i) stats[kCocoStatNames[i]] = r.stats[i];
        root[coco_iou_type_name(r.iou_type)] = stats;
        json table = json::array();
        for (const CocoCategoryAp& c : r.per_category)
            table.push_back({{"id", c.id}, {"name", c.name}, {"AP", c.ap}, {"AP50", c.ap50}, {"AP75", c.ap75}});
        per_category[coco_iou_type_name(r.iou_type)] = table;
    }
    root["per_category"] = per_category;
    root["inputs"] = {{"ground_truth", gt.source.string()},
                      {"results", detections.source.string()},
                      {"images", gt.images.size()},
                      {"categories", gt.categories.size()},
                      {"annotations", gt.annotations.size()},
                      {"detections", detections.detections.size()},
                      {"skipped_unknown_category", detections.skipped_unknown_category}};
    write_file_atomic(dir / "coco_eval.json", root.dump(2) + "\n");
}

}  // namespace sightline
