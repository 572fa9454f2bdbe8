// `sightline instance`: Mask R-CNN instance segmentation of an image or a folder; COCO results
// (for `sightline eval --coco`), instance-id PNGs and overlays.
#include <fmt/format.h>

#include "commands.hpp"
#include "options.hpp"
#include "progress.hpp"
#include "sightline/instance.hpp"

namespace sightline::cli {

void add_instance_command(CLI::App& app) {
    auto o = std::make_shared<InstanceOptions>();
    auto model = std::make_shared<std::string>(), config = std::make_shared<std::string>(),
         input = std::make_shared<std::string>(), coco = std::make_shared<std::string>(),
         out = std::make_shared<std::string>();
    auto no_overlay = std::make_shared<bool>(false);
    auto* c = app.add_subcommand("instance", "Instance segmentation with Mask R-CNN (torchvision-compatible "
                                             "state_dict + model card): COCO results, instance PNGs, overlays");
    c->add_option("--model", *model, "Mask R-CNN state_dict (.pth, torchvision's names)")->required();
    c->add_option("--config", *config, "Model card JSON (default: the model's path with .json)");
    c->add_option("--input", *input, "Image or folder of images")->required();
    c->add_option("--coco", *coco, "COCO instance file: run its images (file_name under --input) with its image ids");
    c->add_option("--out", *out, "Output folder: results.json, images.json, <stem>.png, <stem>_overlay.png")->required();
    c->add_option("--score-threshold", o->score_threshold, "Lowest score drawn in the PNGs (results.json keeps all)")
        ->capture_default_str();
    c->add_flag("--no-overlay", *no_overlay, "Do not write <stem>_overlay.png");
    c->add_option("--semantic", o->semantic,
                  "Also write <stem>.png of class ids (semantic masks) into this folder, for `sightline eval`");
    auto threads = std::make_shared<int>(2);
    add_torch_threads_option(c, *threads);
    c->callback([o, model, config, input, coco, out, no_overlay, threads] {
        apply_torch_threads(*threads);
        o->model = *model;
        o->config = *config;
        o->input = *input;
        o->coco = *coco;
        o->out = *out;
        o->overlay = !*no_overlay;
        std::unique_ptr<ProgressBar> bar;
        const InstanceSummary s = segment_instances(*o, [&](std::size_t, std::size_t total) {
            if (!bar) bar = std::make_unique<ProgressBar>(total, "instance");
            bar->advance();
        });
        if (bar) bar->finish();
        fmt::print("{} image(s), {} detection(s) in {:.2f} s, wrote {}\n", s.images, s.detections, s.seconds,
                   (o->out / "results.json").string());
    });
}

}  // namespace sightline::cli
