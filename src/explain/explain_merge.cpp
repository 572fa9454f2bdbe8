// `sightline merge`: the output folders of an explain job's shards joined into the folder a
// single run writes, bit for bit (summary.json, maps, overlays, records).
#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "sightline/explain_job.hpp"
#include "sightline/folders.hpp"
#include "sightline/shard_set.hpp"

namespace sightline {

namespace {

using json = nlohmann::json;

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
    const ShardSet set = read_shard_set(shards, "summary.json", "explain", job_identity,
                                        "model, layer, target, preprocessing, batch and shard count");
    const json identity = job_identity(set.files.front());

    // Items in input order; within an input they keep their order (methods, then targets).
    std::vector<std::pair<std::size_t, json>> items;
    for (std::size_t k = 0; k < set.dirs.size(); ++k)
        for (const auto& e : set.files[k]["items"]) {
            if (!e.contains("input_index"))
                throw Error(fmt::format("{}: an item without input_index (written by an older Sightline; run the "
                                        "shard again)",
                                        set.dirs[k].string()));
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
    json summary = set.files.front();
    summary.erase("shard");
    summary["inputs"] = all_inputs;
    summary["items"] = json::array();
    for (auto& [_, e] : items) summary["items"].push_back(e);
    json mass = mass_on_unused_summary(summary["items"]);
    if (mass.empty()) summary.erase("mass_on_unused");
    else summary["mass_on_unused"] = mass;

    for (std::size_t k = 0; k < set.dirs.size(); ++k) {
        for (const auto& e : set.files[k]["items"])
            for (const char* key : {"map", "overlay", "raw"})
                if (e.contains(key)) copy_into(set.dirs[k] / e[key].get<std::string>(), out / e[key].get<std::string>());
        const fs::path records = set.dirs[k] / ".sightline" / "explain";
        if (fs::exists(records))
            for (const auto& r : fs::directory_iterator(records))
                copy_into(r.path(), out / ".sightline" / "explain" / r.path().filename());
    }
    write_file_atomic(out / "summary.json", summary.dump(1));  // last: the folder is complete
    return summary;
}

}  // namespace sightline
