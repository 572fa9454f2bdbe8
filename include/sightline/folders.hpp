// Output folders that appear complete or not at all.
#pragma once

#include <functional>

#include "sightline/core.hpp"

namespace sightline {

// Checks, without creating anything, that `dir` is a writable folder or could be created
// (its nearest existing ancestor is a writable folder). Commands call it before any work and
// create their output folder only when the first file is written (write_file_atomic creates
// the parents), so a failed run leaves nothing behind.
void check_writable_dir(const fs::path& dir);

// Builds a folder with `build(staging)` in a hidden sibling and moves it into place at the end,
// so `out` is either as before or complete. An existing non-empty `out` is refused unless
// `replace`, in which case the two folders are swapped in one rename (renameat2 EXCHANGE).
void build_folder_atomically(const fs::path& out, bool replace, const std::function<void(const fs::path&)>& build);

// While one is alive, write_file_atomic skips its per-file syncs (process-wide): for folders
// built in staging, whose owner calls sync_file_system once before renaming them into place.
class DeferredSync {
public:
    DeferredSync();
    ~DeferredSync();
    DeferredSync(const DeferredSync&) = delete;
    DeferredSync& operator=(const DeferredSync&) = delete;
};
// Flushes the file system holding `dir` (syncfs).
void sync_file_system(const fs::path& dir);

}  // namespace sightline
