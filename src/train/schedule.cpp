#include <cmath>

#include <fmt/format.h>

#include "sightline/train.hpp"

namespace sightline {

double learning_rate(const ScheduleOptions& s, int64_t step) {
    if (step < s.warmup_steps)  // Goyal et al. 2017: linear warmup
        return s.base_lr * static_cast<double>(step + 1) / static_cast<double>(s.warmup_steps);
    const double span = static_cast<double>(std::max<int64_t>(1, s.total_steps - s.warmup_steps));
    const double t = std::min(1.0, static_cast<double>(step - s.warmup_steps) / span);
    if (s.kind == ScheduleKind::kCosine) return s.min_lr + (s.base_lr - s.min_lr) * 0.5 * (1.0 + std::cos(M_PI * t));
    return s.base_lr * std::pow(1.0 - t, s.poly_power);
}

}  // namespace sightline
