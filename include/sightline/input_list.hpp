// The inputs a split file names, for commands that take --list.
#pragma once

#include <vector>

#include "sightline/core.hpp"

namespace sightline {

// The inputs a split file names (one per line, as ImageSets/Segmentation/<split>.txt), in its
// order, relative to `folder`; a name without an extension takes the first existing image (or
// .npy) file. Error naming the list and line for a name with no file.
std::vector<fs::path> list_inputs_named(const fs::path& folder, const fs::path& list, bool accept_npy);

}  // namespace sightline
