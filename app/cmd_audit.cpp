// sightline audit: does the model use the object or its context? (a property of the model,
// read from a faithful explanation; never a score of the explanation method)
#include <iostream>
#include <memory>
#include <tuple>

#include <fmt/format.h>

#include "commands.hpp"
#include "shard_flags.hpp"
#include "model_input_flags.hpp"
#include "options.hpp"
#include "progress.hpp"
#include "sightline/audit.hpp"

namespace sightline::cli {

namespace {

struct AuditFlags {
    AuditOptions options;
    fs::path out;
    std::string splits;
    std::vector<double> thresholds;
    ModelInputFlags input;
    std::string shard;
};

void run(AuditFlags& f) {
    AuditOptions& o = f.options;
    if (!f.splits.empty()) o.splits = split_list(f.splits);
    const InputRequest input = input_request(f.input);
    o.size = input.size;
    o.mean = input.mean;
    o.std = input.std;
    if (!f.thresholds.empty()) o.thresholds.fixed = f.thresholds;
    o.resume_dir = audit_batches_dir(f.out);
    std::tie(o.shard_index, o.shard_count) = resolve_shard(f.shard);
    std::unique_ptr<ProgressBar> bar;  // silent unless stderr is a terminal
    std::size_t shown = 0;
    AuditResult result = audit_model(o, [&](std::size_t done, std::size_t total) {
        if (!bar) bar = std::make_unique<ProgressBar>(total, "audit");
        bar->advance(done - shown);
        shown = done;
    });
    if (bar) bar->finish();
    if (!result.preprocessing.note.empty()) std::cerr << "sightline: note: " << result.preprocessing.note << "\n";
    write_audit_outputs(f.out, result);
    if (o.shard_count > 1) {
        // A shard's summary covers its batches only: the verdicts come from the merge.
        std::cout << fmt::format("shard {}/{}: {} image(s), {} record(s) -> {}; join the {} shards with `sightline "
                                 "merge`\n",
                                 o.shard_index, o.shard_count, result.images, result.records.size(),
                                 (f.out / "audit.json").string(), o.shard_count);
        return;
    }
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
                    "comma-separated split names (ImageSets/Segmentation/<name>.txt) or split files (default: "
                    "test_matched,test_swapped,test_context when present, else val, else the only split)");
    cmd->add_option("--context", o.context_dir,
                    "folder of context masks <id>.png, non-zero = context (default: SegmentationContext/ when present; "
                    "a relative path is also looked up under --data)");
    cmd->add_option("--target", o.target,
                    "label: explain each labelled class; predicted: explain the model's top-1 class, measured "
                    "against the labelled object")
        ->capture_default_str();
    cmd->add_option("--method", o.method, "one faithful method: cam (GAP heads) or hirescam (linear heads)")
        ->capture_default_str();
    cmd->add_flag("--rank-methods", o.rank_methods,
                  "refused: IoU with object masks measures the model, not the explanation method");
    cmd->add_option("--out", flags->out, "output folder: audit.json, audit.csv, audit_records.csv")->required();
    add_number_list(cmd, "--thresholds", flags->thresholds, 0,
                    "IoU thresholds as fractions of the map's maximum (default 0.3,0.5)");
    cmd->add_option("--pointing-tolerance", o.thresholds.pointing_tolerance,
                    "pointing game: pixels between the map's maximum and the object")
        ->capture_default_str();
    cmd->add_option("--batch", o.batch, "images per forward pass")->capture_default_str();
    add_shard_option(cmd, flags->shard, "audit only this process's part of the images");
    add_model_input_flags(cmd, flags->input);
    cmd->callback([flags] { run(*flags); });
}

}  // namespace sightline::cli
