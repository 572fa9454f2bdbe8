// The output folders of one job run as N shards (`explain --shard I/N`, `audit --shard I/N`),
// read and checked before `sightline merge` joins them.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sightline/core.hpp"

namespace sightline {

struct ShardSet {
    std::vector<fs::path> dirs;         // in shard order: dirs[i] holds shard i
    std::vector<nlohmann::json> files;  // their `file`, same order
};

// Each folder's `file` (e.g. "summary.json", written by `command`, e.g. "explain") must be JSON
// with "shard": {"index", "count"}; identity(file) must be equal for all of them (`what_matches`
// says which options, for the message), and every shard 0..count-1 must be given exactly once.
// Throws Error with one line naming the folder and the problem otherwise.
ShardSet read_shard_set(const std::vector<fs::path>& dirs, const std::string& file, const std::string& command,
                        const std::function<nlohmann::json(const nlohmann::json&)>& identity,
                        const std::string& what_matches);

}  // namespace sightline
