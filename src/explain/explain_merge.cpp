// `sightline merge`: the output folders of an explain job's shards joined into the folder a
// single run writes, bit for bit (summary.json, maps, overlays, records).
#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "sightline/explain_job.hpp"
#include "sightline/folders.hpp"

namespace sightline {

namespace {

using json = nlohmann::json;

json read_shard_summary(const fs::path& dir) {
    const fs::path file = dir / "summary.json";
    if (!fs::exists(file)) throw Error(fmt::format("{}: no summary.json (not an explain output folder)", dir.string()));
    json s = json::parse(read_file(file), nullptr, false);
    if (s.is_discarded() || !s.is_object()) throw Error(fmt::format("{}: summary.json is not JSON", file.string()));
    if (!s.contains("shard"))
        throw Error(fmt::format("{}: not a shard (summary.json has no \"shard\"; run explain with --shard I/N)",
                                dir.string()));
    return s;
}

// What every shard of one job shares.
json job_identity(const json& s) {
    json id = json::object();
    for (const char* key : {"model", "layer", "split", "target", "preprocessing"}) id[key] = s.value(key, json());
    id["count"] = s["shard"].value("count", json());
    id["all_inputs"] = s["shard"].value("all_inputs", json());
    id["batch"] = s["shard"].value("batch", json());
    return id;
}

void copy_into(const fs::path& from, const fs::path& to) {
    fs::create_directories(to.parent_path());
    fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

}  // namespace

json merge_explain_shards(const std::vector<fs::path>& shards, const fs::path& out) {
    if (shards.empty()) throw UsageError("merge: give the shards' output folders");
    std::vector<json> summaries;
    for (const auto& dir : shards) summaries.push_back(read_shard_summary(dir));
    const json identity = job_identity(summaries.front());
    const auto count = identity["count"].get<int>();
    std::vector<int> seen(static_cast<std::size_t>(count), -1);
    for (std::size_t k = 0; k < shards.size(); ++k) {
        if (job_identity(summaries[k]) != identity)
            throw Error(fmt::format("{}: a shard of another job than {} (model, layer, target, preprocessing, batch "
                                    "and shard count must match)",
                                    shards[k].string(), shards.front().string()));
        const int index = summaries[k]["shard"]["index"].get<int>();
        if (index < 0 || index >= count) throw Error(fmt::format("{}: shard index {} of {}", shards[k].string(), index, count));
        if (seen[static_cast<std::size_t>(index)] >= 0)
            throw Error(fmt::format("{}: shard {}/{} given twice (also {})", shards[k].string(), index, count,
                                    shards[static_cast<std::size_t>(seen[static_cast<std::size_t>(index)])].string()));
        seen[static_cast<std::size_t>(index)] = static_cast<int>(k);
    }
    for (int i = 0; i < count; ++i)
        if (seen[static_cast<std::size_t>(i)] < 0)
            throw Error(fmt::format("merge: shard {}/{} is missing (give all {} output folders)", i, count, count));

    // Items in input order; within an input they keep their order (methods, then targets).
    std::vector<std::pair<std::size_t, json>> items;
    for (std::size_t k = 0; k < shards.size(); ++k)
        for (const auto& e : summaries[k]["items"]) {
            if (!e.contains("input_index"))
                throw Error(fmt::format("{}: an item without input_index (written by an older Sightline; run the "
                                        "shard again)",
                                        shards[k].string()));
            items.emplace_back(e["input_index"].get<std::size_t>(), e);
        }
    std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::set<std::size_t> inputs;
    for (const auto& [index, _] : items) inputs.insert(index);
    const auto all_inputs = identity["all_inputs"].get<std::size_t>();
    if (inputs.size() != all_inputs)
        throw Error(fmt::format("merge: the shards hold {} of the job's {} inputs (a shard did not finish?)",
                                inputs.size(), all_inputs));

    check_writable_dir(out);
    // The shard with the job's first input analysed the head on it, as a single run does; every
    // shard did, so shard 0's summary is the template.
    json summary = summaries[static_cast<std::size_t>(seen[0])];
    summary.erase("shard");
    summary["inputs"] = all_inputs;
    summary["items"] = json::array();
    for (auto& [_, e] : items) summary["items"].push_back(e);
    json mass = mass_on_unused_summary(summary["items"]);
    if (mass.empty()) summary.erase("mass_on_unused");
    else summary["mass_on_unused"] = mass;

    for (std::size_t k = 0; k < shards.size(); ++k) {
        for (const auto& e : summaries[k]["items"])
            for (const char* key : {"map", "overlay", "raw"})
                if (e.contains(key)) copy_into(shards[k] / e[key].get<std::string>(), out / e[key].get<std::string>());
        const fs::path records = shards[k] / ".sightline" / "explain";
        if (fs::exists(records))
            for (const auto& r : fs::directory_iterator(records))
                copy_into(r.path(), out / ".sightline" / "explain" / r.path().filename());
    }
    write_file_atomic(out / "summary.json", summary.dump(1));  // last: the folder is complete
    return summary;
}

}  // namespace sightline
