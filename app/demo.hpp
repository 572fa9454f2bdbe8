// `sightline demo`: the seed's argument on embedded synthetic data, as resumable stages whose
// results (JSON) make up summary.json and the HTML report. One file per part of the story.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sightline/core.hpp"

namespace sightline::cli::demo {

using json = nlohmann::json;

struct Context {
    fs::path out;
    bool quick = false;

    fs::path scenes() const { return out / "data" / "scenes"; }  // single object, 95 % shortcut
    fs::path multi() const { return out / "data" / "multi"; }    // 1-3 objects, for segmentation
};

// Stage results; each is saved as out/stages/<key>.json and skipped when that file exists.
json make_data(const Context& c);                                  // "data"
json train_classifiers(const Context& c);                          // "classifiers"
json explain_models(const Context& c, const json& classifiers);   // "explain"
// Part of "explain": the flatten model with its weights zero on the top half of the feature
// map, explained on `inputs`; the share of each method's mass there (demo_planted.cpp).
json planted_model(const Context& c, const fs::path& flatten_model, const fs::path& inputs, const fs::path& labels);
json audit_models(const Context& c, const json& classifiers);     // "audit"
json sanity_checks(const Context& c, const json& classifiers);    // "sanity"
json weak_segmentation(const Context& c);                          // "wsss"
json full_segmentation(const Context& c);                          // "unet"

// Segmentation helpers: the val scenes shown, the best epoch of a segmentation run
// ({epoch, miou, per_class, curve}), and a model's predictions on the shown scenes.
std::vector<std::string> shown_val_images(const Context& c);
json best_epoch_metrics(const fs::path& run);
json segment_examples(const Context& c, const fs::path& model, const fs::path& out);

// The summary table of the three tasks with this run's numbers (step 8).
json task_summary(const json& summary);
void write_report(const fs::path& out, const json& summary);

// Every line of a metrics.jsonl as JSON (training curves).
std::vector<json> read_metrics(const fs::path& jsonl);
// A number from JSON, NaN when absent or null.
double number(const json& j, const std::string& key);
// Path of `file` relative to the report folder, with '/' separators.
std::string report_path(const fs::path& file, const fs::path& out);

}  // namespace sightline::cli::demo
