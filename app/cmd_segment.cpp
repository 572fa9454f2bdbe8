// `sightline segment`: run a segmentation model on an image or a folder; VOC palette label
// PNGs, colour overlays and (--probs) probability maps as .npy.
#include <cstdio>

#include <fmt/format.h>

#include "commands.hpp"
#include "options.hpp"
#include "progress.hpp"
#include "sightline/segment.hpp"

namespace sightline::cli {

void add_segment_command(CLI::App& app) {
    auto o = std::make_shared<SegmentOptions>();
    auto model = std::make_shared<std::string>(), input = std::make_shared<std::string>(),
         out = std::make_shared<std::string>();
    auto no_overlay = std::make_shared<bool>(false);
    auto gaussian = std::make_shared<std::vector<float>>(), bilateral = std::make_shared<std::vector<float>>();
    auto* c = app.add_subcommand("segment", "Segment images with a model from `sightline train segment` (or any "
                                            "TorchScript model mapping [B,3,H,W] to [B,K,H,W] logits)");
    c->add_option("--model", *model, "Segmentation model (.pt)")->required();
    c->add_option("--input", *input, "Image or folder of images")->required();
    c->add_option("--out", *out, "Output folder: <stem>.png labels, <stem>_overlay.png, <stem>.npy")->required();
    c->add_option("--classes", o->classes, "Class count or classes.txt; must match the model's output channels");
    c->add_option("--tile", o->tile, "Sliding-window side in pixels (0 = whole image)")->capture_default_str();
    c->add_option("--overlap", o->overlap, "Share of a window overlapping its neighbour")->capture_default_str();
    c->add_flag("--flip", o->flip, "Test-time augmentation: average with the flipped image");
    c->add_option("--scales", o->scales, "Test-time augmentation: image scales to average, e.g. 0.75,1,1.25")
        ->delimiter(',');
    c->add_flag("--crf", o->crf, "Refine the probabilities with the dense CRF");
    c->add_option("--crf-gaussian", *gaussian, "CRF smoothness kernel SXY,COMPAT")->delimiter(',')->expected(2);
    c->add_option("--crf-bilateral", *bilateral, "CRF appearance kernel SXY,SRGB,COMPAT")->delimiter(',')->expected(3);
    c->add_option("--crf-iterations", o->crf_options.iterations, "CRF mean-field iterations")->capture_default_str();
    c->add_flag("--probs", o->probabilities, "Also write probabilities <stem>.npy (K x H x W float32)");
    c->add_flag("--no-overlay", *no_overlay, "Do not write <stem>_overlay.png");
    auto threads = std::make_shared<int>(2);
    add_torch_threads_option(c, *threads, "LibTorch threads (and the CRF's)");
    c->callback([o, model, input, out, no_overlay, gaussian, bilateral, threads] {
        apply_torch_threads(*threads);
        o->model = *model;
        o->input = *input;
        o->out = *out;
        o->overlay = !*no_overlay;
        if (!gaussian->empty()) o->crf_options.gaussian_sxy = (*gaussian)[0], o->crf_options.gaussian_compat = (*gaussian)[1];
        if (!bilateral->empty())
            o->crf_options.bilateral_sxy = (*bilateral)[0], o->crf_options.bilateral_srgb = (*bilateral)[1],
            o->crf_options.bilateral_compat = (*bilateral)[2];
        o->crf_options.threads = *threads;
        std::unique_ptr<ProgressBar> bar;
        SegmentSummary s = segment_images(*o, [&](std::size_t done, std::size_t total) {
            if (!bar) bar = std::make_unique<ProgressBar>(total, "segment");
            bar->advance();
            (void)done;
        });
        if (bar) bar->finish();
        fmt::print("segmented {} image(s) in {:.2f} s ({:.1f} images/s), wrote {}\n", s.images, s.seconds,
                   s.seconds > 0 ? s.images / s.seconds : 0.0, o->out.string());
    });
}

}  // namespace sightline::cli
