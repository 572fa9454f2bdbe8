// The method options' valid values, checked once before any work (a zero step count or a
// window that leaves pixels uncovered would otherwise give NaN maps with exit 0).
#include <cmath>

#include <fmt/format.h>

#include "sightline/explain_options.hpp"

namespace sightline {

void validate(const ExplainOptions& o) {
    auto require = [](bool ok, const std::string& message) {
        if (!ok) throw UsageError(message);
    };
    require(o.ig_steps >= 1, fmt::format("--ig-steps: must be at least 1, got {}", o.ig_steps));
    require(o.smooth_samples >= 1, fmt::format("--smooth-samples: must be at least 1, got {}", o.smooth_samples));
    require(std::isfinite(o.smooth_sigma) && o.smooth_sigma >= 0,
            fmt::format("--smooth-sigma: must be at least 0, got {}", o.smooth_sigma));
    require(o.occlusion_window >= 1, fmt::format("--occlusion-window: must be at least 1, got {}", o.occlusion_window));
    require(o.occlusion_stride >= 1, fmt::format("--occlusion-stride: must be at least 1, got {}", o.occlusion_stride));
    // Windows further apart than their side leave pixels that no window covers: no value there.
    require(o.occlusion_stride <= o.occlusion_window,
            fmt::format("--occlusion-stride {} is larger than --occlusion-window {}: the pixels between windows "
                        "would get no value",
                        o.occlusion_stride, o.occlusion_window));
    require(o.score_batch >= 1 && o.ablation_batch >= 1 && o.input_batch >= 1,
            "explain batch sizes must be at least 1");
}

}  // namespace sightline
