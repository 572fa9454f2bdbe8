// The valid values of ExplainOptions.
#pragma once

#include "sightline/explain.hpp"

namespace sightline {

// Throws UsageError naming the flag for a value no method can use (zero steps or samples,
// negative noise, an occlusion stride larger than its window, which leaves pixels uncovered).
void validate(const ExplainOptions& options);

}  // namespace sightline
