#include "sightline/shard_set.hpp"

#include <fmt/format.h>

namespace sightline {

namespace {

using nlohmann::json;

json read_shard_file(const fs::path& dir, const std::string& name, const std::string& command) {
    const fs::path file = dir / name;
    if (!fs::exists(file))
        throw Error(fmt::format("{}: no {} (not an output folder of `sightline {}`)", dir.string(), name, command));
    json j = json::parse(read_file(file), nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw Error(fmt::format("{}: {} is not JSON", file.string(), name));
    if (!j.contains("shard") || !j["shard"].is_object())
        throw Error(fmt::format("{}: not a shard ({} has no \"shard\"; run {} with --shard I/N)", dir.string(), name,
                                command));
    return j;
}

}  // namespace

ShardSet read_shard_set(const std::vector<fs::path>& dirs, const std::string& file, const std::string& command,
                        const std::function<json(const json&)>& identity, const std::string& what_matches) {
    if (dirs.empty()) throw UsageError("merge: give the shards' output folders");
    std::vector<json> files;
    for (const fs::path& dir : dirs) files.push_back(read_shard_file(dir, file, command));
    const json wanted = identity(files.front());
    const int count = files.front()["shard"].value("count", 0);
    if (count < 1) throw Error(fmt::format("{}: {} has no shard count", dirs.front().string(), file));
    std::vector<int> given(static_cast<std::size_t>(count), -1);  // shard index -> position in dirs
    for (std::size_t k = 0; k < dirs.size(); ++k) {
        if (identity(files[k]) != wanted || files[k]["shard"].value("count", 0) != count)
            throw Error(fmt::format("{}: a shard of another job than {} ({} must match)", dirs[k].string(),
                                    dirs.front().string(), what_matches));
        const int index = files[k]["shard"].value("index", -1);
        if (index < 0 || index >= count)
            throw Error(fmt::format("{}: shard index {} outside 0..{}", dirs[k].string(), index, count - 1));
        int& slot = given[static_cast<std::size_t>(index)];
        if (slot >= 0)
            throw Error(fmt::format("merge: shard {}/{} given twice ({} and {})", index, count,
                                    dirs[static_cast<std::size_t>(slot)].string(), dirs[k].string()));
        slot = static_cast<int>(k);
    }
    ShardSet set;
    for (int i = 0; i < count; ++i) {
        const int k = given[static_cast<std::size_t>(i)];
        if (k < 0) throw Error(fmt::format("merge: shard {}/{} is missing (give all {} output folders)", i, count, count));
        set.dirs.push_back(dirs[static_cast<std::size_t>(k)]);
        set.files.push_back(std::move(files[static_cast<std::size_t>(k)]));
    }
    return set;
}

}  // namespace sightline
