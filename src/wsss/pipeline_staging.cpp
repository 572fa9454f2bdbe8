#include "wsss/pipeline_staging.hpp"

#include <fmt/format.h>

namespace sightline::detail {

StagingDir::StagingDir(const fs::path& final_dir) : final_(final_dir) {
    fs::path dir = final_dir.lexically_normal();
    if (dir.filename().empty()) dir = dir.parent_path();
    final_ = dir;
    staging_ = dir.parent_path() / ("." + dir.filename().string() + ".partial");
    std::error_code ec;
    fs::remove_all(staging_, ec);
    ensure_writable_dir(staging_);
}

StagingDir::~StagingDir() {
    if (committed_) return;
    std::error_code ec;
    fs::remove_all(staging_, ec);
}

void StagingDir::commit() {
    deferred_.reset();
    sync_file_system(staging_);
    std::error_code ec;
    if (!fs::exists(final_)) {
        fs::create_directories(final_.parent_path().empty() ? fs::path(".") : final_.parent_path(), ec);
        fs::rename(staging_, final_, ec);
        if (ec) throw Error(fmt::format("{}: cannot move the finished output into place ({})", final_.string(), ec.message()));
    } else {
        for (const auto& entry : fs::directory_iterator(staging_)) {
            fs::path target = final_ / entry.path().filename();
            if (fs::is_directory(target) && entry.is_directory()) {
                for (const auto& inner : fs::directory_iterator(entry.path())) {
                    fs::rename(inner.path(), target / inner.path().filename(), ec);
                    if (ec) throw Error(fmt::format("{}: cannot move output into place ({})", target.string(), ec.message()));
                }
                continue;
            }
            if (fs::is_directory(target)) fs::remove_all(target, ec);
            fs::rename(entry.path(), target, ec);
            if (ec) throw Error(fmt::format("{}: cannot move output into place ({})", target.string(), ec.message()));
        }
        fs::remove_all(staging_, ec);
    }
    committed_ = true;
}

}  // namespace sightline::detail
