// `sightline explain` as a function, so `demo` can run it too: inputs -> maps, overlays and
// summary.json, resumable per input file.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sightline/explain.hpp"
#include "sightline/tensor_io.hpp"

namespace sightline::cli {

struct ExplainJob {
    fs::path model;
    std::string layer;                  // empty = model methods or automatic
    std::vector<std::string> methods{"hirescam"};
    std::string target = "top1";
    fs::path labels;                    // optional class names, one per line
    fs::path input;                     // file or folder
    fs::path out;
    Preprocess preprocess;
    int batch = 8;
    bool raw = false;
    bool overlay = true;
    std::string colormap = "jet";
    ExplainOptions options;
    bool quiet = false;                 // no warnings / progress (used by demo)
};

// The head analysis as JSON (summary.json, `inspect --json`).
nlohmann::json head_analysis_json(const HeadAnalysis& head);

// Runs the job and returns the summary (also written to out/summary.json).
nlohmann::json run_explain_job(const ExplainJob& job);

}  // namespace sightline::cli
