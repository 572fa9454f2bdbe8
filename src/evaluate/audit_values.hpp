// Values the audit's statistics share (audit_stats.cpp, audit_ideal.cpp, audit_summary.cpp).
#pragma once

#include <cstdint>
#include <limits>

namespace sightline::audit_detail {

inline constexpr std::uint8_t kIgnore = 255;  // mask pixels that count nowhere
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();  // a statistic without value

}  // namespace sightline::audit_detail
