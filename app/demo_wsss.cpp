// Demo step 6: weakly supervised segmentation of the multi-object scenes from image-level
// labels only — CAM seeds of a multi-label classifier, the dense CRF, pseudo-masks, and a
// U-Net trained on them — judged by mIoU against the true masks.
#include <fmt/format.h>

#include "demo.hpp"
#include "sightline/wsss.hpp"

namespace sightline::cli::demo {

json weak_segmentation(const Context& c) {
    WsssRunOptions o;
    o.data = c.multi();
    o.out = c.out / "wsss";
    // The classifier's budget decides what its CAMs find: at 10 epochs it reads the contexts
    // (swapped-scene mAP 0.23) and the seeds score 0.16; at 80 epochs with output stride 4 it
    // reads the objects (0.66) and they score 0.43 (docs/wsss.md, "Why the seeds were poor").
    o.epochs = c.quick ? 4 : 80;
    o.output_stride = c.quick ? 8 : 4;
    o.segment_epochs = c.quick ? 4 : 10;
    o.cams.scales = c.quick ? std::vector<double>{1.0} : std::vector<double>{1.0, 0.5, 1.5};
    WsssRunResult r = run_wsss(o);
    json stages = json::array();
    for (const auto& s : r.stages) stages.push_back({{"stage", s.stage}, {"summary", s.summary}});
    // Per-class IoU of the final segmenter on val (the pipeline's `eval` output).
    json per_class = json::object();
    const fs::path metrics = o.out / "final" / "eval" / "metrics.json";
    if (fs::exists(metrics)) {
        // Parsed into a variable first: a range-for over a member of the temporary parse result
        // iterates freed memory (AddressSanitizer found it).
        const json eval = json::parse(read_file(metrics));
        for (const auto& k : eval["per_class"]) per_class[k["name"].get<std::string>()] = k["iou"];
    }
    const fs::path model = fs::exists(o.out / "segmenter" / "best.pt") ? o.out / "segmenter" / "best.pt"
                                                                         : o.out / "segmenter" / "model.pt";
    json rows = json::array();
    rows.push_back({{"name", fmt::format("CAM seeds (background threshold {:.2f})", r.best_threshold)},
                    {"supervision", "image labels"}, {"split", "train"}, {"miou", r.seeds_miou}});
    rows.push_back({{"name", o.pseudo.crf ? "pseudo-masks: seeds + dense CRF" : "pseudo-masks"},
                    {"supervision", "image labels"}, {"split", "train"}, {"miou", r.pseudo_miou}});
    rows.push_back({{"name", "U-Net trained on the pseudo-masks"}, {"supervision", "image labels"},
                    {"split", "val"}, {"miou", r.final_miou}});
    json result = {{"rows", rows},
                   {"best_threshold", r.best_threshold},
                   {"seeds_miou", r.seeds_miou},
                   {"pseudo_miou", r.pseudo_miou},
                   {"final_miou", r.final_miou},
                   {"per_class", per_class},
                   {"stages", stages},
                   {"examples", segment_examples(c, model, c.out / "segmentation" / "wsss")}};
    result["headline"] = fmt::format("CAM seeds mIoU {:.3f} (train), + CRF {:.3f}, final segmenter {:.3f} (val)",
                                     r.seeds_miou, r.pseudo_miou, r.final_miou);
    return result;
}

}  // namespace sightline::cli::demo
