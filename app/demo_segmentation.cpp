// Demo steps 6-7 share this file's helpers; step 7 here: the fully supervised U-Net trained on
// the pixel masks of the multi-object scenes, the upper bound for weak supervision.
#include <fmt/format.h>

#include "demo.hpp"
#include "options.hpp"
#include "sightline/segment.hpp"

namespace sightline::cli::demo {

std::vector<std::string> shown_val_images(const Context& c) {
    std::vector<std::string> ids = read_text_lines(c.multi() / "ImageSets" / "Segmentation" / "val_matched.txt");
    ids.resize(std::min<std::size_t>(ids.size(), 6));
    return ids;
}

json best_epoch_metrics(const fs::path& run) {
    json best = json::object();
    double best_miou = -1.0;
    json curve = json::array();
    for (const auto& e : read_metrics(run / "metrics.jsonl")) {
        curve.push_back({{"epoch", e["epoch"]}, {"loss", e["loss"]}, {"val_miou", e["val_miou"]}});
        double m = number(e, "val_miou");
        if (m > best_miou) {
            best_miou = m;
            best = e;
        }
    }
    return {{"epoch", best.value("epoch", 0)}, {"miou", number(best, "val_miou")},
            {"per_class", best.value("val_iou", json::object())}, {"curve", curve}};
}

json segment_examples(const Context& c, const fs::path& model, const fs::path& out) {
    const fs::path inputs = c.out / "segmentation" / "inputs";
    ensure_writable_dir(inputs);
    json rows = json::array();
    for (const auto& id : shown_val_images(c)) {
        fs::path src = c.multi() / "JPEGImages" / (id + ".png");
        if (!fs::exists(inputs / src.filename())) fs::copy_file(src, inputs / src.filename());
    }
    SegmentOptions o;
    o.model = model;
    o.input = inputs;
    o.out = out;
    segment_images(o);
    for (const auto& id : shown_val_images(c))
        rows.push_back({{"id", id},
                        {"input", report_path(inputs / (id + ".png"), c.out)},
                        {"truth", report_path(c.multi() / "SegmentationClass" / (id + ".png"), c.out)},
                        {"prediction", report_path(out / (id + ".png"), c.out)}});
    return rows;
}

json full_segmentation(const Context& c) {
    const fs::path run = c.out / "models" / "unet";
    if (!fs::exists(run / "model.pt")) {
        SegmentTrainOptions o;
        o.data = c.multi();
        o.out = run;
        o.epochs = c.quick ? 4 : 10;
        o.resume = fs::exists(run / "checkpoint" / "checkpoint.pt");
        train_segmenter(o);
    }
    json best = best_epoch_metrics(run);
    const fs::path model = fs::exists(run / "best.pt") ? run / "best.pt" : run / "model.pt";
    json result = {{"model", report_path(model, c.out)},
                   {"val_miou", best["miou"]},
                   {"best_epoch", best["epoch"]},
                   {"per_class", best["per_class"]},
                   {"curve", best["curve"]},
                   {"examples", segment_examples(c, model, c.out / "segmentation" / "unet")}};
    result["headline"] = fmt::format("U-Net val mIoU {:.3f}", number(result, "val_miou"));
    return result;
}

}  // namespace sightline::cli::demo
