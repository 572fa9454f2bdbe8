// sightline explain: maps, overlays and summary.json for images or preprocessed tensors.
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <tuple>

#include <fmt/format.h>

#include "commands.hpp"
#include "shard_flags.hpp"
#include "model_input_flags.hpp"
#include "options.hpp"
#include "progress.hpp"
#include "sightline/explain_job.hpp"

namespace sightline::cli {

namespace {

struct ExplainFlags {
    ExplainJob job;
    std::string methods = "hirescam";
    std::string shard;
    ModelInputFlags input;
};

void run(ExplainFlags& f) {
    ExplainJob& job = f.job;
    job.methods = split_list(f.methods);
    job.preprocessing = input_request(f.input);
    std::tie(job.shard, job.shards) = resolve_shard(f.shard);
    std::unique_ptr<ProgressBar> bar;
    ExplainJobCallbacks callbacks;
    callbacks.progress = [&](std::size_t done, std::size_t total) {
        if (!bar) bar = std::make_unique<ProgressBar>(total, "explain");
        bar->advance();
        if (done == total) bar->finish();
    };
    callbacks.message = [&](const std::string& line) {
        if (bar) bar->break_line();  // a message starts on its own line
        std::cerr << "sightline: " << line << "\n";
    };
    const ExplainJobResult result = run_explain_job(job, callbacks);
    const nlohmann::json& summary = result.summary;
    const std::size_t inputs = summary["inputs"].get<std::size_t>(), skipped = result.skipped;
    std::cout << fmt::format("explained {} input(s), skipped {} finished by an earlier run; {} map(s) -> {}\n",
                             inputs - skipped, skipped, summary["items"].size(), (job.out / "summary.json").string());
    // Where the model's exact contributions exist (linear heads): how much of each map lies where
    // the model did not raise the score.
    if (summary.contains("mass_on_unused"))
        for (const auto& [key, m] : summary["mass_on_unused"].items())
            std::cout << fmt::format("{}: {:.1f}% of its mass on locations whose exact contribution to the logit is "
                                     "<= 0 (HiResCAM's raw map), mean over {} map(s)\n",
                                     key, 100.0 * m["mean"].get<double>(), m["maps"].get<int>());
}

}  // namespace

void add_explain_command(CLI::App& app) {
    auto flags = std::make_shared<ExplainFlags>();
    CLI::App* cmd = app.add_subcommand("explain", "Explain a classifier's predictions (maps, overlays, summary.json)");
    ExplainJob& j = flags->job;
    cmd->add_option("--model", j.model, "TorchScript classifier (.pt)")->required();
    cmd->add_option("--layer", j.layer, "dotted submodule path to explain at (default: the model's "
                                        "features/head methods, else the last 4-D activation)");
    cmd->add_option("--method", flags->methods, "comma-separated method keys (see `sightline list`)")
        ->capture_default_str();
    cmd->add_option("--target", j.target, "top1 | topK | <class index> | <class name> | all")->capture_default_str();
    cmd->add_option("--labels", j.labels,
                    "class names, one per line, in output order (a classes.txt whose first line is the "
                    "background is taken when the model has one output fewer)");
    cmd->add_option("--input", j.input, "image (PNG/JPEG/BMP/TIFF) or .npy [3,H,W] tensor, or a folder")->required();
    cmd->add_option("--list", j.list,
                    "split file (e.g. ImageSets/Segmentation/val.txt): explain only the images it names, "
                    "relative to the --input folder, with or without extension");
    cmd->add_option("--out", j.out, "output folder")->required();
    cmd->add_option("--batch", j.batch, "images per forward pass")->capture_default_str();
    cmd->add_flag("--raw", j.raw, "also write the raw map (before ReLU/normalisation/resize) as .raw.npy");
    cmd->add_flag("--overlay,!--no-overlay", j.overlay, "write PNG heat-map overlays (default on)");
    cmd->add_option("--colormap", j.colormap, "overlay colour map")->capture_default_str();
    cmd->add_option("--ig-steps", j.options.ig_steps, "integrated gradients steps")->capture_default_str();
    cmd->add_option("--smooth-samples", j.options.smooth_samples, "SmoothGrad samples")->capture_default_str();
    cmd->add_option("--smooth-sigma", j.options.smooth_sigma, "SmoothGrad noise (fraction of the input range)")->capture_default_str();
    cmd->add_option("--smooth-base", j.options.smooth_base, "SmoothGrad base: saliency|inputxgradient|guidedbackprop")->capture_default_str();
    cmd->add_option("--occlusion-window", j.options.occlusion_window, "occlusion window (pixels)")->capture_default_str();
    cmd->add_option("--occlusion-stride", j.options.occlusion_stride, "occlusion stride (pixels)")->capture_default_str();
    cmd->add_option("--seed", j.options.seed, "seed for SmoothGrad noise")->capture_default_str();
    add_shard_option(cmd, flags->shard, "explain only this process's part of the inputs");
    add_model_input_flags(cmd, flags->input);
    cmd->callback([flags] { run(*flags); });
}

}  // namespace sightline::cli
