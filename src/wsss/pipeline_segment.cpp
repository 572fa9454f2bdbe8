// The second stage: the segmenter of sightline/segment.hpp trained on the pseudo-masks (cross-
// entropy ignoring 255) and scored on val against the true masks.
#include <fmt/format.h>

#include "sightline/data.hpp"
#include "sightline/palette.hpp"
#include "sightline/segment.hpp"
#include "wsss/pipeline_segment.hpp"
#include "wsss/pipeline_staging.hpp"

namespace sightline::detail {

std::string train_segmenter_on_pseudo(const WsssRunOptions& o, const fs::path& pseudo, const fs::path& out,
                                      const StageProgress& progress) {
    SegmentTrainOptions t;
    t.data = o.data;
    t.masks = pseudo;
    t.out = out;
    t.epochs = o.segment_epochs;
    t.train_split = o.train_split;
    t.val_split = "none";  // the val masks are only for the final score, never for choosing a model
    t.seed = o.seed;
    t.resume = fs::exists(out / "checkpoint" / "checkpoint.pt");
    SegmentTrainCallbacks callbacks;
    if (progress)
        callbacks.on_step = [&](int64_t epoch, int64_t step, int64_t steps, double) {
            progress(static_cast<std::size_t>((epoch - 1) * steps + step),
                     static_cast<std::size_t>(o.segment_epochs * steps));
        };
    SegmentTrainResult r = train_segmenter(t, callbacks);
    if (r.interrupted) throw Error(fmt::format("{}: segmenter training stopped early", out.string()));
    return fmt::format("{} epochs ({}) on the pseudo-masks", o.segment_epochs, t.arch);
}

Metrics evaluate_segmenter(const WsssRunOptions& o, const fs::path& model, const fs::path& out,
                           const StageProgress& progress) {
    std::unique_ptr<Dataset> val = open_dataset(o.data, o.val_split);
    Segmenter segmenter(model);
    SegmentOptions options;
    StagingDir staging(out);
    ConfusionMatrix confusion(static_cast<int>(val->class_names().size()), 255);
    EvalResult eval;
    for (std::size_t i = 0; i < val->size(); ++i) {
        Sample s = val->get(i);
        cv::Mat labels = segmenter.segment(s.image, options, s.id);
        write_palette_png(staging.path() / (s.id + ".png"), labels);
        if (!s.mask.empty()) {
            confusion.accumulate(labels, s.mask, MaskNames{(out / (s.id + ".png")).string(), s.id + " ground truth"});
            eval.ids.push_back(s.id);
        }
        if (progress) progress(i + 1, val->size());
    }
    eval.class_names = val->class_names();
    eval.metrics = confusion.metrics(val->class_names());
    eval.confusion = confusion;
    write_eval_outputs(staging.path() / "eval", eval);
    staging.commit();
    return eval.metrics;
}

}  // namespace sightline::detail
