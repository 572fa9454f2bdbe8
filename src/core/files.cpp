// Atomic file writes, atomic folder replacement and input listing.
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include <fmt/format.h>

#include "sightline/core.hpp"
#include "sightline/folders.hpp"

namespace sightline {

namespace {

fs::path folder_of(const fs::path& path) { return path.has_parent_path() ? path.parent_path() : fs::path("."); }

// A unique name for a hidden sibling of `path` (same folder, so rename() is atomic).
fs::path hidden_sibling(const fs::path& path, const char* kind) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    return folder_of(path) / fmt::format(".{}.{}.{:x}.{}", path.filename().string(), ::getpid(), rng(), kind);
}

// While a folder is built in staging (build_folder_atomically), its files need not reach the
// disk one by one: the whole staging file system is synced once before the folder is renamed
// into place (per-file syncs cost ~10 ms each here, minutes for a generated dataset).
std::atomic<int> g_deferred_sync{0};

// A rename is durable only once the folder holding the entry is on disk: without this, a power
// loss after the rename can bring back the old file (or no file) although the rename returned.
void sync_folder(const fs::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;  // best effort: the data itself is already renamed into place
    ::fsync(fd);
    ::close(fd);
}

// The folder as a clean path without a trailing slash ("out/" -> "out").
fs::path clean_folder(const fs::path& dir) {
    fs::path d = dir.lexically_normal();
    if (d.filename().empty() && d.has_parent_path()) d = d.parent_path();
    return d;
}

// Whether entries can be created in `dir`, found by creating and removing a hidden folder:
// access(W_OK) says yes to root everywhere, also in /proc where nothing can be created.
bool can_create_entries(const fs::path& dir) {
    const fs::path probe = hidden_sibling(dir / "probe", "probe");
    if (::mkdir(probe.c_str(), 0700) != 0) return false;
    ::rmdir(probe.c_str());
    return true;
}

}  // namespace

DeferredSync::DeferredSync() { ++g_deferred_sync; }
DeferredSync::~DeferredSync() { --g_deferred_sync; }

void sync_file_system(const fs::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::syncfs(fd);
    ::close(fd);
}

void write_file_atomic(const fs::path& path, const void* data, std::size_t size) {
    const fs::path dir = folder_of(path);
    std::error_code ec;
    fs::create_directories(dir, ec);
    const fs::path tmp = hidden_sibling(path, "tmp");
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw Error(fmt::format("{}: cannot write (folder not writable?)", path.string()));
    const char* bytes = static_cast<const char*>(data);
    std::size_t left = size;
    bool ok = true;
    while (ok && left > 0) {
        ssize_t n = ::write(fd, bytes, left);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) bytes += n, left -= static_cast<std::size_t>(n);
    }
    // The data reaches the disk before the rename, so a crash leaves the old or the new file.
    const bool sync = g_deferred_sync.load() == 0;
    ok = ok && (!sync || ::fdatasync(fd) == 0);
    ok = (::close(fd) == 0) && ok;
    if (!ok) {
        fs::remove(tmp, ec);
        throw Error(fmt::format("{}: write failed (disk full?)", path.string()));
    }
    fs::rename(tmp, path, ec);
    if (ec) {
        fs::remove(tmp, ec);
        throw Error(fmt::format("{}: cannot move the finished file into place", path.string()));
    }
    if (sync) sync_folder(dir);
}

void write_file_atomic(const fs::path& path, const std::string& bytes) {
    write_file_atomic(path, bytes.data(), bytes.size());
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(fmt::format("{}: cannot open file", path.string()));
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> read_text_lines(const fs::path& path) {
    std::ifstream in(path);
    if (!in) throw Error(fmt::format("{}: cannot open file", path.string()));
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (!line.empty()) lines.push_back(line);
    }
    return lines;
}

void ensure_writable_dir(const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec || !fs::is_directory(dir))
        throw Error(fmt::format("{}: cannot create output folder ({})", dir.string(),
                                ec ? ec.message() : "not a folder"));
    if (::access(dir.c_str(), W_OK) != 0)
        throw Error(fmt::format("{}: output folder is not writable", dir.string()));
}

void check_writable_dir(const fs::path& dir) {
    std::error_code ec;
    if (fs::exists(dir, ec)) {
        if (!fs::is_directory(dir, ec))
            throw Error(fmt::format("{}: cannot create output folder (a file of that name exists)", dir.string()));
        if (!can_create_entries(dir))
            throw Error(fmt::format("{}: output folder is not writable", dir.string()));
        return;
    }
    // The nearest existing ancestor must be a folder we may create entries in.
    fs::path ancestor = fs::absolute(dir, ec).lexically_normal();
    while (ancestor.has_parent_path() && ancestor != ancestor.parent_path() && !fs::exists(ancestor, ec))
        ancestor = ancestor.parent_path();
    if (!fs::is_directory(ancestor, ec))
        throw Error(fmt::format("{}: cannot create output folder ({} is not a folder)", dir.string(),
                                ancestor.string()));
    if (!can_create_entries(ancestor))
        throw Error(fmt::format("{}: cannot create output folder ({} is not writable)", dir.string(),
                                ancestor.string()));
}

void build_folder_atomically(const fs::path& out, bool replace, const std::function<void(const fs::path&)>& build) {
    const fs::path target = clean_folder(out);
    std::error_code ec;
    const bool exists = fs::exists(target, ec);
    if (exists && !fs::is_directory(target, ec))
        throw Error(fmt::format("{}: exists and is not a folder", target.string()));
    const bool empty = exists && fs::is_empty(target, ec);
    if (exists && !empty && !replace)
        throw Error(fmt::format("{}: folder exists and is not empty; choose another --out or pass --force to "
                                "replace it",
                                target.string()));
    const fs::path parent = folder_of(target);
    check_writable_dir(parent);
    // The parents this call creates, removed again if the build fails.
    std::vector<fs::path> created;
    for (fs::path p = parent; !p.empty() && !fs::exists(p, ec); p = p.parent_path()) created.push_back(p);
    ensure_writable_dir(parent);
    const fs::path staging = hidden_sibling(target, "partial");
    try {
        DeferredSync deferred;
        ensure_writable_dir(staging);
        build(staging);
    } catch (...) {
        fs::remove_all(staging, ec);
        for (const fs::path& p : created) fs::remove(p, ec);  // innermost first; only if empty
        throw;
    }
    sync_file_system(staging);
    if (exists) {
        // Swap the two folders in one step, then drop the old one (now at the staging name).
        if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0) {
            const std::string why = std::strerror(errno);
            fs::remove_all(staging, ec);
            throw Error(fmt::format("{}: cannot replace the folder ({})", target.string(), why));
        }
        sync_folder(parent);
        fs::remove_all(staging, ec);
    } else {
        fs::rename(staging, target, ec);
        if (ec) {
            const std::string why = ec.message();
            fs::remove_all(staging, ec);
            throw Error(fmt::format("{}: cannot move the finished folder into place ({})", target.string(), why));
        }
        sync_folder(parent);
    }
}

bool is_image_file(const fs::path& path) {
    std::string ext = path.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".tif" ||
           ext == ".tiff";
}

std::vector<fs::path> list_inputs(const fs::path& file_or_dir, bool accept_npy) {
    if (!fs::exists(file_or_dir))
        throw Error(fmt::format("{}: no such file or folder", file_or_dir.string()));
    if (!fs::is_directory(file_or_dir)) return {file_or_dir};
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(file_or_dir)) {
        if (!entry.is_regular_file()) continue;
        const fs::path& p = entry.path();
        if (is_image_file(p) || (accept_npy && p.extension() == ".npy")) files.push_back(p);
    }
    std::sort(files.begin(), files.end());
    if (files.empty())
        throw Error(fmt::format("{}: folder holds no image{} files", file_or_dir.string(),
                                accept_npy ? " or .npy" : ""));
    return files;
}

}  // namespace sightline
