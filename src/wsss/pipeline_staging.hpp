// Stage outputs are written into a hidden sibling folder and moved into place at the end, so a
// failed or killed stage leaves no partial output and a stage folder that exists is complete.
#pragma once

#include <memory>

#include "sightline/folders.hpp"

namespace sightline::detail {

class StagingDir {
public:
    // Creates <parent>/.<name>.partial (emptied first) and checks that it can be written.
    explicit StagingDir(const fs::path& final_dir);
    ~StagingDir();  // removes the staging folder unless committed
    StagingDir(const StagingDir&) = delete;
    StagingDir& operator=(const StagingDir&) = delete;

    const fs::path& path() const { return staging_; }
    // Moves everything into the final folder (renamed as a whole when it does not exist yet,
    // otherwise entry by entry, replacing files of the same name).
    void commit();

private:
    fs::path final_, staging_;
    bool committed_ = false;
    std::unique_ptr<DeferredSync> deferred_ = std::make_unique<DeferredSync>();  // synced once at commit
};

}  // namespace sightline::detail
