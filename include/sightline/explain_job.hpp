// `sightline explain` as a library call: every input of a file, folder or split list -> maps
// (.npy), overlays, one record per input (the resume marker) and summary.json. A rerun with
// the same settings skips the inputs already finished.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sightline/explain.hpp"
#include "sightline/model_input.hpp"

namespace sightline {

struct ExplainJob {
    fs::path model;
    std::string layer;                  // empty = model methods or automatic
    std::vector<std::string> methods{"hirescam"};
    std::string target = "top1";
    fs::path labels;                    // optional class names, one per line (a leading background
                                        // line is dropped when the model has one output fewer)
    fs::path input;                     // file or folder
    fs::path list;                      // optional split file: names of inputs in the folder `input`
    fs::path out;
    InputRequest preprocessing;         // --size/--mean/--std; resolved against the model's own
    int batch = 8;                      // also the block size of sharding
    // This process's part of the inputs: blocks of `batch` consecutive inputs (sorted), every
    // shards-th block from block `shard` (docs/distributed.md); merge_explain_shards joins them.
    int shard = 0, shards = 1;
    bool raw = false;
    bool overlay = true;
    std::string colormap = "jet";
    ExplainOptions options;
};

struct ExplainJobCallbacks {
    // After each finished input: (inputs done, inputs to do); the skipped ones are not counted.
    std::function<void(std::size_t, std::size_t)> progress;
    // Notes and warnings, one line each without a prefix ("note: ...", "warning: ...", or a
    // file name and what was done to it). Those that depend on the whole run come after the
    // work succeeded, so a failure is never preceded by them.
    std::function<void(const std::string&)> message;
};

struct ExplainJobResult {
    nlohmann::json summary;   // also written to out/summary.json (preprocessing under "preprocessing")
    std::size_t skipped = 0;  // inputs a previous run had already finished
};

// Checks everything that can be checked (methods, options, labels, inputs, the output folder,
// the model on the first input) before writing anything; throws Error / UsageError.
ExplainJobResult run_explain_job(const ExplainJob& job, const ExplainJobCallbacks& callbacks = {});

// Joins the output folders of the N shards of one explain job (every shard 0..N-1 once, the
// same model, layer, target, preprocessing and batch) into `out`: maps, overlays, raw maps and
// records copied, summary.json as a single run writes it (items in input order). Checks
// everything before creating `out`; Error naming the folder otherwise. Returns the summary.
nlohmann::json merge_explain_shards(const std::vector<fs::path>& shards, const fs::path& out);

// summary.json's "mass_on_unused": per method, the mean of the items' values and their count.
nlohmann::json mass_on_unused_summary(const nlohmann::json& items);

}  // namespace sightline
