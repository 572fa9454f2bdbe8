// Atomic file writes and input listing.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <random>

#include <unistd.h>

#include <fmt/format.h>

#include "sightline/core.hpp"

namespace sightline {

void write_file_atomic(const fs::path& path, const void* data, std::size_t size) {
    fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    std::error_code ec;
    fs::create_directories(dir, ec);
    // A unique temp name in the same folder, so rename() is atomic on the same filesystem.
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    fs::path tmp = dir / fmt::format(".{}.{}.{:x}.tmp", path.filename().string(), ::getpid(), rng());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw Error(fmt::format("{}: cannot write (folder not writable?)", path.string()));
        out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
        out.flush();
        if (!out) {
            fs::remove(tmp, ec);
            throw Error(fmt::format("{}: write failed (disk full?)", path.string()));
        }
    }
    fs::rename(tmp, path, ec);
    if (ec) {
        fs::remove(tmp, ec);
        throw Error(fmt::format("{}: cannot move the finished file into place", path.string()));
    }
}

void write_file_atomic(const fs::path& path, const std::string& bytes) {
    write_file_atomic(path, bytes.data(), bytes.size());
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(fmt::format("{}: cannot open file", path.string()));
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
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
