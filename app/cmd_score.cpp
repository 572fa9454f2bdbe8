// sightline score: faithfulness of explanation maps without object masks (deletion / insertion,
// Average Drop / Increase in Confidence, ROAD).
#include <iostream>

#include <fmt/format.h>

#include "commands.hpp"
#include "model_input_flags.hpp"
#include "options.hpp"
#include "progress.hpp"
#include "sightline/sanity.hpp"
#include "sightline/folders.hpp"

namespace sightline::cli {

namespace {

struct ScoreFlags {
    ScoreOptions options;
    fs::path out;
    std::string methods = "gradcam,hirescam";
    ModelInputFlags input;
    std::string output = "prob";
    std::vector<double> percentiles;
    bool no_road = false;
};

void run(ScoreFlags& f) {
    ScoreOptions& o = f.options;
    o.methods = split_list(f.methods);
    o.road = !f.no_road;
    if (f.output == "prob") o.output = ScoreOutput::kProbability;
    else if (f.output == "logit") o.output = ScoreOutput::kLogit;
    else throw UsageError(fmt::format("--score: '{}' is not prob or logit", f.output));
    if (!f.percentiles.empty()) o.road_percentiles = f.percentiles;
    const ModelInput input = apply_model_input_flags(f.input, o.model, o.preprocess, o.explain);
    if (!f.out.empty()) check_writable_dir(f.out);  // created with score.json: a failed run leaves nothing

    std::unique_ptr<ProgressBar> bar;
    ScoreReport report = run_score(o, [&](std::size_t done, std::size_t total) {
        if (!bar) bar = std::make_unique<ProgressBar>(total, "score");
        bar->advance();
        if (done == total) bar->finish();
    });
    print_input_note(input);
    std::cout << score_table(report);
    if (!f.out.empty()) {
        nlohmann::json j = score_json(report);
        j["preprocessing"] = input.to_json();
        write_file_atomic(f.out / "score.json", j.dump(1));
        std::cout << fmt::format("wrote {}\n", (f.out / "score.json").string());
    }
}

}  // namespace

void add_score_command(CLI::App& app) {
    auto f = std::make_shared<ScoreFlags>();
    ScoreOptions& o = f->options;
    CLI::App* cmd = app.add_subcommand(
        "score", "Faithfulness scores without masks: deletion/insertion AUC, Average Drop/Increase, ROAD");
    cmd->add_option("--model", o.model, "TorchScript classifier (.pt)")->required();
    cmd->add_option("--input", o.input, "image or folder of images (or .npy [3,H,W] tensors)")->required();
    cmd->add_option("--out", f->out, "write score.json here");
    cmd->add_option("--method", f->methods, "methods to compute and score (see `sightline list`)")->capture_default_str();
    cmd->add_option("--maps", o.maps, "score the maps of a `sightline explain --out` folder instead (its summary.json)");
    cmd->add_option("--layer", o.layer, "dotted submodule path for the CAM methods (default: automatic)");
    cmd->add_option("--baseline", o.baseline, "deletion/insertion baseline: blur (RISE) | constant")->capture_default_str();
    cmd->add_option("--fill", o.fill, "constant baseline value in normalised input units (0 = the mean colour)")
        ->capture_default_str();
    cmd->add_option("--steps", o.steps, "deletion/insertion curve steps")->capture_default_str();
    cmd->add_option("--batch", o.batch, "perturbed inputs per forward pass")->capture_default_str();
    cmd->add_option("--score", f->output, "prob (softmax of the target) | logit")->capture_default_str();
    add_number_list(cmd, "--road-percentiles", f->percentiles, 0, "ROAD percentiles (default 10,20,...,90)");
    cmd->add_option("--noise", o.noise, "ROAD imputer noise (0 = deterministic)")->capture_default_str();
    cmd->add_option("--seed", o.seed, "seed of the ROAD noise")->capture_default_str();
    cmd->add_flag("--no-road", f->no_road, "skip ROAD (the slowest metric)");
    cmd->add_option("--max-images", o.max_images, "use the first N inputs (0 = all)")->capture_default_str();
    add_model_input_flags(cmd, f->input);
    cmd->callback([f] { run(*f); });
}

}  // namespace sightline::cli
