// `sightline wsss seeds` and `sightline wsss sweep` over a dataset split.
#include <fmt/format.h>
#include <torch/torch.h>

#include "sightline/data.hpp"
#include "sightline/palette.hpp"
#include "sightline/wsss.hpp"
#include "wsss/pipeline_staging.hpp"
#include "wsss/seeds_source.hpp"

namespace sightline {

namespace {

std::string csv_of(const SweepResult& r) {
    std::string out = "threshold,miou,fg_miou,pixel_accuracy\n";
    for (std::size_t i = 0; i < r.thresholds.size(); ++i)
        out += fmt::format("{},{},{},{}\n", r.thresholds[i], r.metrics[i].miou, r.metrics[i].fg_miou,
                           r.metrics[i].pixel_accuracy);
    return out;
}

}  // namespace

SeedsRunResult run_seeds(const SeedsRunOptions& o, const StageProgress& progress) {
    validate(o.seeds);
    if (o.out.empty()) throw UsageError("--out: an output folder is required");
    std::unique_ptr<Dataset> data = open_dataset(o.data, o.split);
    detail::CamProvider provider(o.source, *data, o.data, o.split);
    SeedsRunResult result;
    result.evaluated = detail::split_has_masks(*data);
    const int classes = static_cast<int>(data->class_names().size());
    ConfusionMatrix confusion(classes, 255);
    EvalResult eval;

    detail::StagingDir staging(o.out);
    const bool save_cams = provider.computed() && o.save_cams;
    if (save_cams) ensure_writable_dir(staging.path() / "cams");
    for (std::size_t i = 0; i < data->size(); ++i) {
        Sample s = data->get(i);
        torch::Tensor cams = provider.cams(s);
        cv::Mat seeds = make_seeds(cams, s.labels, o.seeds);
        write_palette_png(staging.path() / (s.id + ".png"), seeds);
        if (save_cams) write_cam_file(staging.path() / "cams" / (s.id + ".npy"), cams, s.labels, provider.num_classes());
        if (result.evaluated) {
            confusion.accumulate(seeds, s.mask, MaskNames{(o.out / (s.id + ".png")).string(), s.id + " ground truth"});
            eval.ids.push_back(s.id);
        }
        if (progress) progress(i + 1, data->size());
    }
    result.images = data->size();
    if (result.evaluated) {
        eval.class_names = data->class_names();
        eval.metrics = result.metrics = confusion.metrics(data->class_names());
        eval.confusion = confusion;
        write_eval_outputs(staging.path() / "eval", eval);
    }
    staging.commit();
    return result;
}

SweepResult run_sweep(const SweepRunOptions& o, const StageProgress& progress) {
    std::unique_ptr<Dataset> data = open_dataset(o.data, o.split);
    if (!detail::split_has_masks(*data))
        throw Error(fmt::format("{}: split '{}' has no masks (SegmentationClass) to sweep the threshold against",
                                o.data.string(), o.split));
    detail::CamProvider provider(o.source, *data, o.data, o.split);
    if (!o.out.empty()) ensure_writable_dir(o.out);
    ThresholdSweep sweep(static_cast<int>(data->class_names().size()), o.thresholds);
    for (std::size_t i = 0; i < data->size(); ++i) {
        Sample s = data->get(i);
        sweep.add(provider.cams(s), s.labels, s.mask, MaskNames{"seeds of " + s.id, s.id + " ground truth"});
        if (progress) progress(i + 1, data->size());
    }
    SweepResult r = sweep_result(sweep, data->class_names());
    if (!o.out.empty()) {
        write_file_atomic(o.out / "sweep.json", sweep_json(r));
        write_file_atomic(o.out / "sweep.csv", csv_of(r));
    }
    return r;
}

}  // namespace sightline
