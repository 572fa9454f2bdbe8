// list_inputs_named: the inputs of a split file (explain --list).
#include "sightline/input_list.hpp"

#include <cctype>

#include <fmt/format.h>

namespace sightline {

std::vector<fs::path> list_inputs_named(const fs::path& folder, const fs::path& list, bool accept_npy) {
    if (!fs::is_directory(folder))
        throw Error(fmt::format("{}: no such folder (with --list, --input is the folder the names are in)",
                                folder.string()));
    const std::string text = read_file(list);
    std::vector<fs::path> files;
    std::size_t start = 0;
    for (int line = 1; start < text.size(); ++line) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string name = text.substr(start, end - start);
        start = end + 1;
        while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) name.pop_back();
        while (!name.empty() && std::isspace(static_cast<unsigned char>(name.front()))) name.erase(0, 1);
        if (name.empty()) continue;
        fs::path found;
        if (fs::is_regular_file(folder / name)) found = folder / name;
        for (const char* ext : {".jpg", ".png", ".jpeg", ".JPG", ".PNG", ".JPEG", ".bmp", ".tif", ".tiff", ".npy"}) {
            if (!found.empty() || (!accept_npy && std::string(ext) == ".npy")) continue;
            fs::path p = folder / (name + ext);
            if (fs::is_regular_file(p)) found = p;
        }
        if (found.empty())
            throw Error(fmt::format("{}: line {}: no image named '{}' in {}", list.string(), line, name,
                                    folder.string()));
        files.push_back(found);
    }
    if (files.empty()) throw Error(fmt::format("{}: the list names no images", list.string()));
    return files;
}

}  // namespace sightline
