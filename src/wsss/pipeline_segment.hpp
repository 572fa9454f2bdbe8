// The second stage of `wsss run`: the segmenter of sightline/segment.hpp on the pseudo-masks.
#pragma once

#include "sightline/wsss.hpp"

namespace sightline::detail {

// Trains RUN = `out` (resuming an interrupted run) on the training split with the masks of
// `pseudo`; returns a one-line summary.
std::string train_segmenter_on_pseudo(const WsssRunOptions& options, const fs::path& pseudo, const fs::path& out,
                                      const StageProgress& progress);
// Segments the val split with `model` into `out`/<id>.png and scores it against the true masks
// (`out`/eval/metrics.json ...).
Metrics evaluate_segmenter(const WsssRunOptions& options, const fs::path& model, const fs::path& out,
                           const StageProgress& progress);

}  // namespace sightline::detail
