// `sightline merge` of `sanity --shard I/N` outputs: every per-image number put back at its place in
// the whole run's input list, then the means, spreads and verdicts computed as a single run does.
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "sightline/sanity.hpp"
#include "sightline/shard_set.hpp"

namespace sightline {

namespace {

using json = nlohmann::json;

// What must be equal across the shards of one job.
json job_identity(const json& j) {
    json id = json::object();
    for (const char* key : {"mode", "steps", "metrics", "verdict_rule", "test_rules", "verdict_on", "threshold",
                            "verdict_metric", "entropy_bins", "smooth", "preprocessing"})
        id[key] = j.value(key, json());
    const json& shard = j.at("shard");
    for (const char* key : {"count", "inputs", "batch", "model", "input", "shape", "method_order", "seed", "random_model"})
        id[std::string("shard.") + key] = shard.value(key, json());
    return id;
}

// The whole run's per-image values of one statistic, filled shard by shard.
class Column {
public:
    explicit Column(std::size_t total) : values_(total, std::numeric_limits<double>::quiet_NaN()), set_(total) {}

    void place(const json& stats, const std::vector<std::size_t>& positions, const fs::path& file) {
        const json& per_image = stats.at("per_image");
        if (!per_image.is_array() || per_image.size() != positions.size())
            throw Error(fmt::format("{}: {} per-image values for {} images", file.string(), per_image.size(),
                                    positions.size()));
        for (std::size_t i = 0; i < positions.size(); ++i) {
            // nlohmann writes NaN as null.
            values_.at(positions[i]) =
                per_image[i].is_null() ? std::numeric_limits<double>::quiet_NaN() : per_image[i].get<double>();
            set_.at(positions[i]) = true;
        }
    }
    std::vector<double> values(const std::string& what) const {
        for (std::size_t i = 0; i < set_.size(); ++i)
            if (!set_[i]) throw Error(fmt::format("merge: no shard gave image {} ({})", i, what));
        return values_;
    }

private:
    std::vector<double> values_;
    std::vector<bool> set_;
};

// similarity[method][step][metric] from each shard's "steps" (or "smooth_steps") lists.
std::vector<std::vector<std::array<SimilarityStats, 4>>> merge_table(const ShardSet& set,
                                                                     const std::vector<std::vector<std::size_t>>& at,
                                                                     const SanityReport& r, const char* key) {
    std::vector<std::vector<std::array<SimilarityStats, 4>>> table(r.methods.size());
    for (std::size_t m = 0; m < r.methods.size(); ++m)
        for (std::size_t s = 0; s < r.steps.size(); ++s) {
            std::array<SimilarityStats, 4> cell;
            for (std::size_t k = 0; k < kSimilarityMetrics.size(); ++k) {
                Column column(r.shard.inputs);
                for (std::size_t d = 0; d < set.dirs.size(); ++d)
                    column.place(set.files[d].at("methods").at(r.methods[m]).at(key).at(s).at("metrics").at(
                                     kSimilarityMetrics[k]),
                                 at[d], set.dirs[d] / "sanity.json");
                cell[k] = similarity_stats(column.values(r.methods[m] + ", " + r.steps[s].name));
            }
            table[m].push_back(cell);
        }
    return table;
}

SanityReport merge(const ShardSet& set) {
    const json& first = set.files.front();
    SanityReport r;
    r.shard.inputs = first["shard"].at("inputs").get<std::size_t>();
    std::vector<std::vector<std::size_t>> at;
    for (std::size_t d = 0; d < set.dirs.size(); ++d) {
        at.push_back(set.files[d]["shard"].at("image_indices").get<std::vector<std::size_t>>());
        for (std::size_t i : at.back())
            if (i >= r.shard.inputs)
                throw Error(fmt::format("{}: image index {} outside the run's {} images",
                                        (set.dirs[d] / "sanity.json").string(), i, r.shard.inputs));
    }
    r.methods = first["shard"].at("method_order").get<std::vector<std::string>>();
    for (const json& s : first.at("steps"))
        r.steps.push_back({s.at("name").get<std::string>(), s.at("randomised").get<std::vector<std::string>>(),
                           s.at("data").get<bool>(), s.at("random_logit").get<bool>()});
    r.independent = first.at("mode") == "independent";
    r.verdict_metric = first.at("verdict_metric");
    r.verdict_on = first.at("verdict_on");
    r.threshold = first.at("threshold");
    r.entropy_bins = first.at("entropy_bins");
    if (first.contains("smooth")) {
        r.smooth_samples = first["smooth"].at("samples");
        r.smooth_noise = first["smooth"].at("noise");
    }

    // Images and their classes.
    const bool random_logit = first.contains("random_targets");
    r.images.resize(r.shard.inputs);
    r.targets.resize(r.shard.inputs);
    if (random_logit) r.random_targets.resize(r.shard.inputs);
    for (std::size_t d = 0; d < set.dirs.size(); ++d) {
        const json& f = set.files[d];
        if (f.at("images").size() != at[d].size() || f.at("targets").size() != at[d].size())
            throw Error(fmt::format("{}: image and target lists do not match its image_indices",
                                    (set.dirs[d] / "sanity.json").string()));
        for (std::size_t i = 0; i < at[d].size(); ++i) {
            r.images[at[d][i]] = f["images"][i].get<std::string>();
            r.targets[at[d][i]] = f["targets"][i].get<int64_t>();
            if (random_logit) r.random_targets[at[d][i]] = f.at("random_targets").at(i).get<int64_t>();
        }
        r.seconds += f.value("seconds", 0.0);
    }

    r.similarity = merge_table(set, at, r, "steps");
    if (r.smooth_samples) r.smooth_similarity = merge_table(set, at, r, "smooth_steps");
    for (const std::string& method : r.methods) {
        Column original(r.shard.inputs), randomised(r.shard.inputs);
        for (std::size_t d = 0; d < set.dirs.size(); ++d) {
            const json& c = set.files[d].at("methods").at(method).at("complexity");
            original.place(c.at("original_entropy"), at[d], set.dirs[d] / "sanity.json");
            randomised.place(c.at("randomised_entropy"), at[d], set.dirs[d] / "sanity.json");
        }
        r.complexity.push_back(complexity_from_entropies(original.values(method + " entropy"),
                                                         randomised.values(method + " entropy")));
    }
    r.verdicts = sanity_verdicts(r, r.verdict_metric, r.verdict_on, r.threshold);
    return r;
}

}  // namespace

SanityReport merge_sanity_shards(const std::vector<fs::path>& shard_dirs, fs::path* first_shard) {
    const ShardSet set = read_shard_set(shard_dirs, "sanity.json", "sanity", job_identity,
                                        "model, inputs, methods, steps, rule and options");
    if (first_shard) *first_shard = set.dirs.front();
    try {
        return merge(set);
    } catch (const json::exception& e) {
        // A hand-edited or truncated shard: name the first folder; the JSON library says what.
        throw Error(fmt::format("{}: a shard's sanity.json lacks what the merge needs ({})", set.dirs.front().string(),
                                e.what()));
    }
}

}  // namespace sightline
