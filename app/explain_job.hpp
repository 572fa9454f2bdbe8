// `sightline explain` as a function, so `demo` can run it too: inputs -> maps, overlays and
// summary.json, resumable per input file.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sightline/explain.hpp"
#include "sightline/model_input.hpp"

namespace sightline::cli {

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
    int batch = 8;
    bool raw = false;
    bool overlay = true;
    std::string colormap = "jet";
    ExplainOptions options;
    bool quiet = false;                 // no warnings / progress (used by demo)
};

// Runs the job and returns the summary (also written to out/summary.json, with the
// preprocessing used under "preprocessing"). `skipped`, when given, receives the number of
// inputs a previous run had already finished.
nlohmann::json run_explain_job(const ExplainJob& job, std::size_t* skipped = nullptr);

}  // namespace sightline::cli
