// The shards of one audit joined: the batches' records in the single run's order, then the
// same summary a single run computes from them. Batch g of the job (numbered over all splits)
// belongs to shard g % N, and its records are in that shard's batch files.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "audit/audit_detail.hpp"
#include "sightline/audit.hpp"
#include "sightline/shard_set.hpp"

namespace sightline {

namespace {

using nlohmann::json;

// What every shard of one job shares.
json job_identity(const json& j) {
    json id = json::object();
    for (const char* key : {"model", "layer", "method", "data", "splits", "target", "preprocessing", "head",
                            "trustworthy", "guarantee", "thresholds"})
        id[key] = j.value(key, json());
    for (const char* key : {"batch", "batch_files", "split_images", "class_names", "grid_steps"})
        id[key] = j["shard"].value(key, json());
    return id;
}

AuditPreprocessing preprocessing_from(const json& p, const std::string& note) {
    AuditPreprocessing out;
    out.mean = p.at("mean").get<std::array<float, 3>>();
    out.std = p.at("std").get<std::array<float, 3>>();
    if (!p.at("size").is_null()) out.height = p["size"][0], out.width = p["size"][1];
    out.source = p.at("source");
    out.size_source = p.at("size_source");
    out.note = note;
    return out;
}

}  // namespace

AuditResult merge_audit_shards(const std::vector<fs::path>& shard_dirs) {
    const ShardSet set = read_shard_set(shard_dirs, "audit.json", "audit", job_identity,
                                        "model, data, splits, method, target, preprocessing and options");
    const json& first = set.files.front();
    AuditResult result;
    result.model = first["model"];
    result.layer = first["layer"];
    result.method = first["method"];
    result.data = first["data"];
    result.splits = first["splits"].get<std::vector<std::string>>();
    result.target = first["target"];
    result.preprocessing = preprocessing_from(first["preprocessing"], first["shard"].value("preprocessing_note", ""));
    result.head = first["head"];
    result.trustworthy = first["trustworthy"];
    result.guarantee = first["guarantee"];
    result.class_names = first["shard"]["class_names"].get<std::vector<std::string>>();
    result.thresholds.fixed = first["thresholds"]["fixed"].get<std::vector<double>>();
    result.thresholds.pointing_tolerance = first["thresholds"]["pointing_tolerance"];
    result.thresholds.grid_steps = first["shard"]["grid_steps"];

    const auto files = first["shard"]["batch_files"].get<std::vector<std::string>>();
    const auto images = first["shard"]["split_images"].get<std::vector<std::size_t>>();
    const auto batch = first["shard"]["batch"].get<std::size_t>();
    const std::size_t count = set.dirs.size();
    for (std::size_t s = 0, g = 0; s < files.size(); ++s) {
        for (std::size_t start = 0, b = 0; start < images.at(s); start += batch, ++b, ++g) {
            const fs::path file = audit_batches_dir(set.dirs[g % count]) / fmt::format("{}.{}.json", files[s], b);
            json j = fs::exists(file) ? json::parse(read_file(file), nullptr, false) : json();
            if (j.is_discarded() || !j.is_object() || !j.contains("records"))
                throw Error(fmt::format("{}: batch {} of split {} is missing or unreadable (did shard {}/{} finish?)",
                                        file.string(), b, result.splits.at(s), g % count, count));
            for (const auto& r : j.at("records")) result.records.push_back(detail::audit_record_from_json(r));
            result.unlabelled += j.at("unlabelled").get<std::size_t>();
        }
        result.images += images[s];
    }
    result.summary = summarise_audit(result.records, result.class_names, result.thresholds);
    return result;
}

}  // namespace sightline
