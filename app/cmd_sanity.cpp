// sightline sanity: model- and data-randomisation checks (Adebayo et al. 2018) for any method.
#include <iostream>

#include <fmt/format.h>

#include "commands.hpp"
#include "model_input_flags.hpp"
#include "options.hpp"
#include "progress.hpp"
#include "shard_flags.hpp"
#include "validators.hpp"
#include "sightline/report.hpp"
#include "sightline/report_html.hpp"
#include "sightline/sanity.hpp"
#include "sightline/folders.hpp"

namespace sightline::cli {

namespace {

struct SanityFlags {
    SanityOptions options;
    fs::path out;
    std::string methods = "saliency,gradcam,hirescam,guidedbackprop,guidedgradcam";
    ModelInputFlags input;
    std::string shard;
    bool independent = false, no_edges = false, no_random_logit = false;
};

void run(SanityFlags& f) {
    SanityOptions& o = f.options;
    o.methods = split_list(f.methods);
    o.independent = f.independent;
    o.edge_baseline = !f.no_edges;
    o.random_logit = !f.no_random_logit;
    std::tie(o.shard_index, o.shard_count) = resolve_shard(f.shard);
    const ModelInput input = apply_model_input_flags(f.input, o.model, o.preprocess, o.explain);
    check_writable_dir(f.out);  // created with the results: a failed run leaves nothing

    std::unique_ptr<ProgressBar> bar;
    SanityReport report = run_sanity(o, [&](std::size_t done, std::size_t total) {
        if (!bar) bar = std::make_unique<ProgressBar>(total, "sanity");
        bar->advance();
        if (done == total) bar->finish();
    });
    write_sanity_outputs(report, input.to_json(), f.out);
    print_input_note(input);
    if (o.shard_count > 1) {
        // A shard's numbers cover its images only: the table and verdicts come from the merge.
        std::cout << fmt::format("shard {}/{}: {} of {} image(s) -> {}; join the {} shards with `sightline merge`\n",
                                 o.shard_index, o.shard_count, report.images.size(), report.shard.inputs,
                                 (f.out / "sanity.json").string(), o.shard_count);
        return;
    }
    std::cout << sanity_table(report);
    std::cout << fmt::format("wrote {}/{{sanity.json,sanity.png,sanity_curves.svg}} ({} images, {:.1f} s)\n", f.out.string(),
                             report.images.size(), report.seconds);
}

}  // namespace

void write_sanity_outputs(const SanityReport& report, const nlohmann::json& preprocessing, const fs::path& dir,
                          const fs::path& picture) {
    ensure_writable_dir(dir);
    nlohmann::json j = sanity_json(report);
    j["preprocessing"] = preprocessing;  // what the maps were computed on: mean, std, size and their source
    write_file_atomic(dir / "sanity.json", j.dump(1));
    write_file_atomic(dir / "sanity_curves.svg", sanity_curves_svg(report));
    if (!picture.empty()) {
        write_file_atomic(dir / "sanity.png", read_file(picture));
        return;
    }
    // Rows: methods; columns: the original model, then each randomisation step. Each tile is the
    // first image's map over the image (pytorch-grad-cam's overlay).
    const int jet = colormap_from_name("jet");
    std::vector<std::vector<cv::Mat>> cells;
    for (const auto& row : report.first_maps) {
        cells.emplace_back();
        for (const auto& map : row) cells.back().push_back(overlay_heatmap(report.display, map, jet));
    }
    std::vector<std::string> columns{"original"};
    for (const auto& s : report.steps) columns.push_back(s.name);
    write_image_rgb(dir / "sanity.png", picture_grid(cells, report.methods, columns));
}

// The randomisation curves as in Adebayo et al.'s figures: one panel per similarity metric (and
// smooth MPRT's |Spearman| when it ran), a line per method over the model steps (0 = the
// original model, similarity 1), with a band of +- one standard deviation over the images.
std::string sanity_curves_svg(const SanityReport& report) {
    std::vector<std::size_t> model_steps;
    for (std::size_t s = 0; s < report.steps.size(); ++s)
        if (!report.steps[s].data && !report.steps[s].random_logit) model_steps.push_back(s);
    struct Panel {
        std::string title;
        const std::vector<std::vector<std::array<SimilarityStats, 4>>>* table;
        std::size_t metric;
    };
    std::vector<Panel> panels;
    for (std::size_t k = 0; k < kSimilarityMetrics.size(); ++k)
        panels.push_back({std::string(kSimilarityMetrics[k]) + " with the original maps", &report.similarity, k});
    if (!report.smooth_similarity.empty())
        panels.push_back({fmt::format("smooth MPRT ({} copies): spearman_abs", report.smooth_samples),
                          &report.smooth_similarity, 1});
    const int width = 720, height = 280;
    std::string body;
    for (std::size_t p = 0; p < panels.size(); ++p) {
        std::vector<PlotSeries> series;
        for (std::size_t m = 0; m < report.methods.size(); ++m) {
            PlotSeries line{report.methods[m], {0.0}, {1.0}, {0.0}};
            for (std::size_t i = 0; i < model_steps.size(); ++i) {
                const SimilarityStats& st = (*panels[p].table)[m][model_steps[i]][panels[p].metric];
                line.x.push_back(static_cast<double>(i + 1));
                line.y.push_back(st.mean);
                line.spread.push_back(st.std);
            }
            series.push_back(std::move(line));
        }
        PlotAxes axes{panels[p].title, "model steps randomised, from the logits (0 = original; names in sanity.json)",
                      "similarity", -1.0, 1.0, width, height};
        std::string plot = svg_line_plot(series, axes);
        // Nested pictures, one below the other.
        body += "<svg x=\"0\" y=\"" + std::to_string(static_cast<int>(p) * height) + "\"" + plot.substr(4);
    }
    return fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\">\n",
                       width, height * static_cast<int>(panels.size())) +
           body + "</svg>\n";
}

void add_sanity_command(CLI::App& app) {
    auto f = std::make_shared<SanityFlags>();
    SanityOptions& o = f->options;
    CLI::App* cmd = app.add_subcommand(
        "sanity", "Model/data randomisation sanity checks of explanation methods (Adebayo et al. 2018)");
    cmd->add_option("--model", o.model, "TorchScript classifier (.pt)")->required();
    cmd->add_option("--input", o.input, "folder of images (or .npy [3,H,W] tensors); at least 2")->required();
    cmd->add_option("--out", f->out, "output folder: sanity.json, sanity.png")->required();
    cmd->add_option("--method", f->methods, "comma-separated method keys (see `sightline list`)")->capture_default_str();
    cmd->add_option("--layer", o.layer, "dotted submodule path for the CAM methods (default: automatic)");
    cmd->add_option("--random-model", o.random_model,
                    "same architecture trained on shuffled labels (`train classify --shuffle-labels`): "
                    "the data-randomisation test");
    cmd->add_flag("--independent", f->independent,
                  "randomise one block at a time (default: cascading from the logits down)");
    cmd->add_option("--depth", o.depth,
                    "module depth of a randomisation block (1 = the model's children); 'layers' = every "
                    "parameterised layer (Conv, BatchNorm, Linear) on its own, as Adebayo et al.")
        ->capture_default_str()
        ->transform(CLI::Validator(
            [](std::string& text) {
                if (text == "layers") text = std::to_string(kEveryLayer);
                const bool whole = !text.empty() && text.find_first_not_of("0123456789-") == std::string::npos;
                return whole ? std::string() : fmt::format("'{}' is neither a whole number nor 'layers'", text);
            },
            ""));
    cmd->add_option("--seed", o.seed, "re-initialisation seed")->capture_default_str();
    cmd->add_option("--max-images", o.max_images, "use the first N inputs (0 = all)")->capture_default_str();
    cmd->add_option("--batch", o.batch, "images per forward pass")->capture_default_str();
    cmd->add_option("--verdict-metric", o.verdict_metric, "spearman | spearman_abs | ssim | hog")
        ->capture_default_str();
    cmd->add_option("--verdict-on", o.verdict_on,
                    "top: the similarity once the logits layer is re-initialised; curve: its mean over every step")
        ->capture_default_str();
    cmd->add_option("--threshold", o.threshold,
                    "a method passes when its similarity falls below this after randomisation")
        ->capture_default_str();
    cmd->add_flag("--no-edges", f->no_edges, "leave out the Sobel edge-detector reference row");
    cmd->add_flag("--no-random-logit", f->no_random_logit,
                  "skip the random-logit test (Sixt et al. 2020: explain a random other class)");
    cmd->add_option("--smooth-mprt", o.smooth_samples,
                    "smooth MPRT (Hedstroem et al. 2023): also compare maps averaged over N noisy copies of each "
                    "input (0 = off; the paper uses 50)")
        ->capture_default_str()
        ->check(at_least(0))
        ->check(CLI::Validator(
            [](std::string& text) {
                return text == "1" ? std::string("give 0 (off) or at least 2 copies") : std::string();
            },
            ""));
    cmd->add_option("--smooth-noise", o.smooth_noise, "smooth MPRT noise std as a share of each input's range")
        ->capture_default_str()
        ->check(at_least(0));
    cmd->add_option("--entropy-bins", o.entropy_bins, "efficient MPRT: histogram bins of the map entropy")
        ->capture_default_str()
        ->check(at_least(1));
    add_model_input_flags(cmd, f->input);
    add_shard_option(cmd, f->shard, "check only this process's part of the images");
    cmd->callback([f] { run(*f); });
}

}  // namespace sightline::cli
