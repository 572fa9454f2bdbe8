// `sightline wsss pseudo`: pseudo-masks of a dataset split.
#include <fmt/format.h>
#include <torch/torch.h>

#include "sightline/data.hpp"
#include "sightline/palette.hpp"
#include "sightline/wsss.hpp"
#include "wsss/pipeline_staging.hpp"
#include "wsss/seeds_source.hpp"

namespace sightline {

PseudoRunResult run_pseudo(const PseudoRunOptions& o, const StageProgress& progress) {
    validate(o.pseudo);
    if (o.out.empty()) throw UsageError("--out: an output folder is required");
    std::unique_ptr<Dataset> data = open_dataset(o.data, o.split);
    detail::CamProvider provider(o.source, *data, o.data, o.split);
    PseudoRunResult result;
    result.evaluated = detail::split_has_masks(*data);
    ConfusionMatrix confusion(static_cast<int>(data->class_names().size()), 255);
    EvalResult eval;
    std::unique_ptr<DenseCrf> crf;
    if (o.pseudo.crf) crf = std::make_unique<DenseCrf>(o.pseudo.crf_options);

    detail::StagingDir staging(o.out);
    std::size_t ignored = 0, pixels = 0;
    for (std::size_t i = 0; i < data->size(); ++i) {
        Sample s = data->get(i);
        cv::Mat mask = make_pseudo_mask(s.image, provider.cams(s), s.labels, o.pseudo, crf.get());
        write_palette_png(staging.path() / (s.id + ".png"), mask);
        ignored += static_cast<std::size_t>(cv::countNonZero(mask == 255));
        pixels += mask.total();
        if (result.evaluated) {
            confusion.accumulate(mask, s.mask, MaskNames{(o.out / (s.id + ".png")).string(), s.id + " ground truth"});
            eval.ids.push_back(s.id);
        }
        if (progress) progress(i + 1, data->size());
    }
    result.images = data->size();
    result.ignored_share = pixels ? double(ignored) / double(pixels) : 0.0;
    if (result.evaluated) {
        eval.class_names = data->class_names();
        eval.metrics = result.metrics = confusion.metrics(data->class_names());
        eval.confusion = confusion;
        write_eval_outputs(staging.path() / "eval", eval);
    }
    staging.commit();
    return result;
}

}  // namespace sightline
