// sightline audit: does the model use the object or its context? (a property of the model,
// read from a faithful explanation; never a score of the explanation method)
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "commands.hpp"
#include "options.hpp"
#include "progress.hpp"
#include "sightline/audit.hpp"

namespace sightline::cli {

namespace {

struct AuditFlags {
    AuditOptions options;
    fs::path out;
    std::string splits, mean, std, thresholds;
    int threads = 0;
};

void run(AuditFlags& f) {
    AuditOptions& o = f.options;
    if (!f.splits.empty()) o.splits = split_list(f.splits);
    if (!f.mean.empty()) {
        auto t = parse_triple(f.mean, "--mean");
        o.mean.assign(t.begin(), t.end());
    }
    if (!f.std.empty()) {
        auto t = parse_triple(f.std, "--std");
        o.std.assign(t.begin(), t.end());
    }
    if (!f.thresholds.empty()) {
        o.thresholds.fixed.clear();
        for (const std::string& t : split_list(f.thresholds)) {
            try {
                std::size_t used = 0;
                o.thresholds.fixed.push_back(std::stod(t, &used));
                if (used != t.size()) throw std::invalid_argument(t);
            } catch (const std::exception&) {
                throw UsageError(fmt::format("--thresholds: '{}' is not a number", t));
            }
        }
    }
    if (f.threads > 0) torch::set_num_threads(f.threads);
    o.resume_dir = f.out / ".sightline" / "audit";
    std::unique_ptr<ProgressBar> bar;  // silent unless stderr is a terminal
    std::size_t shown = 0;
    AuditResult result = audit_model(o, [&](std::size_t done, std::size_t total) {
        if (!bar) bar = std::make_unique<ProgressBar>(total, "audit");
        bar->advance(done - shown);
        shown = done;
    });
    if (bar) bar->finish();
    write_audit_outputs(f.out, result);
    std::cout << format_audit_table(result);
    std::cout << fmt::format("wrote {}/{{audit.json,audit.csv,audit_records.csv}}\n", f.out.string());
}

}  // namespace

void add_audit_command(CLI::App& app) {
    auto flags = std::make_shared<AuditFlags>();
    AuditOptions& o = flags->options;
    CLI::App* cmd = app.add_subcommand(
        "audit", "Does the model use the object or its context? Explanation mass on object / context masks");
    cmd->add_option("--model", o.model, "TorchScript classifier (.pt)")->required();
    cmd->add_option("--layer", o.layer, "dotted submodule path to explain at (default: the model's "
                                        "features/head methods, else the last 4-D activation)");
    cmd->add_option("--data", o.data, "dataset root with object masks (sightline data synth output, VOC layout)")
        ->required();
    cmd->add_option("--split", flags->splits,
                    "comma-separated splits (default: test_matched,test_swapped,test_context when present, else val)");
    cmd->add_option("--method", o.method, "one faithful method: cam (GAP heads) or hirescam (linear heads)")
        ->capture_default_str();
    cmd->add_flag("--rank-methods", o.rank_methods,
                  "refused: IoU with object masks measures the model, not the explanation method");
    cmd->add_option("--out", flags->out, "output folder: audit.json, audit.csv, audit_records.csv")->required();
    cmd->add_option("--size", o.size, "model input side (default: the model card's, else the image size)");
    cmd->add_option("--mean", flags->mean, "normalisation mean per channel (default: the model card's, else ImageNet)");
    cmd->add_option("--std", flags->std, "normalisation std per channel (default: the model card's, else ImageNet)");
    cmd->add_option("--thresholds", flags->thresholds, "IoU thresholds as fractions of the map's maximum (default 0.3,0.5)");
    cmd->add_option("--pointing-tolerance", o.thresholds.pointing_tolerance,
                    "pointing game: pixels between the map's maximum and the object")
        ->capture_default_str();
    cmd->add_option("--batch", o.batch, "images per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_option("--threads", flags->threads, "LibTorch intra-op threads (default: all cores)");
    cmd->callback([flags] { run(*flags); });
}

}  // namespace sightline::cli
