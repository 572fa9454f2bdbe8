// sightline wsss seeds|sweep|pseudo|affinity|run: the weakly supervised segmentation pipeline, from a
// classifier trained on image-level labels to pixel masks.
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <torch/torch.h>

#include "commands.hpp"
#include "options.hpp"
#include "validators.hpp"
#include "progress.hpp"
#include "sightline/wsss.hpp"

namespace sightline::cli {

namespace {

// A progress bar made when the first report arrives (the total is known then).
struct LazyBar {
    std::string label;
    std::unique_ptr<ProgressBar> bar;
    std::size_t shown = 0;
    void operator()(std::size_t done, std::size_t total) {
        if (!bar) bar = std::make_unique<ProgressBar>(total, label);
        bar->advance(done - shown);
        shown = done;
    }
};
StageProgress bar(const std::string& label) {
    auto b = std::make_shared<LazyBar>();
    b->label = label;
    return [b](std::size_t done, std::size_t total) { (*b)(done, total); };
}

// One progress bar per stage of a multi-stage command; `announce` also prints "stage X ..."
// when a stage starts.
struct StageBars {
    bool announce = false;
    LazyBar current;
    std::string shown;
    void operator()(const std::string& stage, std::size_t done, std::size_t total) {
        if (stage != shown) {
            current.bar.reset();
            current = LazyBar{};
            current.label = stage;
            shown = stage;
            if (announce) {
                fmt::print("stage {} ...\n", stage);
                std::fflush(stdout);
            }
        }
        if (total) current(done, total);
    }
    void finish() { current.bar.reset(); }
};

// Flags shared by the subcommands, parsed into the library's option structs in apply().
struct Flags {
    fs::path model, cams, data, out;
    std::string split = "train";
    std::vector<double> scales = {1.0, 0.5, 1.5, 2.0};
    bool no_flip = false, via_explain = false;
    std::string bg = "thresh:0.15";
    std::vector<double> confident;
    // CRF
    bool no_crf = false;
    std::string unary = "labels";
    float confidence = 0.7f;
    double min_confidence = 0.0;
    std::vector<double> gaussian = {3, 3}, bilateral = {80, 13, 10};
    int iterations = 10, crf_threads = 0;
    std::string thresholds = "0.05:0.80:0.05";
    int threads = 2;
    std::vector<float> mean, std;

    CamSource source() const {
        CamSource s{model, cams, {}};
        s.options.scales = scales;
        for (double x : s.options.scales)
            if (!(x > 0)) throw UsageError(fmt::format("--scales: every factor must be > 0, got {:g}", x));
        s.options.flip = !no_flip;
        s.options.use_explainer = via_explain;
        if (!mean.empty()) s.options.mean = as_triple(mean);
        if (!std.empty()) s.options.std = as_triple(std);
        return s;
    }
    SeedOptions seeds() const {
        SeedOptions o;
        o.background = BackgroundRule::parse(bg);
        if (!confident.empty()) {
            o.confident_fg = confident[0];
            o.confident_bg = confident[1];
            if (o.confident_fg == 0.0)
                throw UsageError(fmt::format("--confident: expected FG,BG with 0 < BG < FG < 1, got {:g},{:g}",
                                             confident[0], confident[1]));
        }
        validate(o);
        return o;
    }
    PseudoOptions pseudo() const {
        PseudoOptions p;
        p.seeds = seeds();
        p.crf = !no_crf;
        p.unary = unary;
        p.confidence = confidence;
        p.min_confidence = min_confidence;
        const std::vector<double>& g = gaussian;
        const std::vector<double>& b = bilateral;
        DenseCrfOptions& c = p.crf_options;
        c.gaussian_sxy = float(g[0]);
        c.gaussian_compat = float(g[1]);
        c.bilateral_sxy = float(b[0]);
        c.bilateral_srgb = float(b[1]);
        c.bilateral_compat = float(b[2]);
        c.iterations = iterations;
        c.threads = crf_threads;
        validate(p);
        return p;
    }
};

void add_source_flags(CLI::App* c, Flags& f) {
    c->add_option("--model", f.model, "Classifier with class maps (GAP -> Linear head), TorchScript .pt");
    c->add_option("--cams", f.cams, "Instead of --model: folder of CAM files <id>.npy (float32 C x H x W)");
    c->add_option("--data", f.data, "Dataset root (`sightline data ...`, VOC layout)")->required();
    c->add_option("--split", f.split, "Split")->capture_default_str();
    add_number_list(c, "--scales", f.scales, 0, "CAM input scales, summed")->capture_default_str();
    c->add_flag("--no-flip", f.no_flip, "No horizontally flipped pass");
    c->add_flag("--via-explain", f.via_explain, "Class maps from the explain engine even for built-in models");
    add_torch_threads_option(c, f.threads);
    add_number_list(c, "--mean", f.mean, 3, "normalisation mean R,G,B (default: the model's stored one, else ImageNet)");
    add_number_list(c, "--std", f.std, 3, "normalisation std R,G,B (default: the model's stored one, else ImageNet)");
}

void add_seed_flags(CLI::App* c, Flags& f) {
    c->add_option("--bg", f.bg, "Background: thresh:T (constant) or power:ALPHA ((1 - max CAM)^ALPHA)")
        ->capture_default_str();
    add_number_list(c, "--confident", f.confident, 2,
                    "FG,BG thresholds: object where the FG seeds say so, background where the BG seeds do, 255 "
                    "between (IRN 0.30,0.05); replaces --bg");
}

void add_crf_flags(CLI::App* c, Flags& f) {
    c->add_flag("--no-crf", f.no_crf, "Seeds as they are, no dense CRF");
    c->add_option("--unary", f.unary, "CRF unary: labels (seed labels with --confidence) or probs ([bg, CAMs])")
        ->capture_default_str();
    c->add_option("--confidence", f.confidence, "Probability of a pixel's seed label (labels unary)")
        ->capture_default_str();
    c->add_option("--min-confidence", f.min_confidence, "255 where the CRF's marginal is below this (0 = off)")
        ->capture_default_str();
    add_number_list(c, "--gaussian", f.gaussian, 2, "CRF smoothness kernel: SXY,COMPAT")->capture_default_str();
    add_number_list(c, "--bilateral", f.bilateral, 3, "CRF appearance kernel: SXY,SRGB,COMPAT")->capture_default_str();
    c->add_option("--iterations", f.iterations, "CRF mean-field iterations")->capture_default_str();
    c->add_option("--crf-threads", f.crf_threads, "CRF threads (0 = all cores)")->capture_default_str();
}

void print_metrics_line(const char* what, const Metrics& m) {
    fmt::print("{}: mIoU {:.4f} (foreground classes {:.4f}), pixel accuracy {:.4f}\n", what, m.miou, m.fg_miou,
               m.pixel_accuracy);
}

void add_seeds(CLI::App& wsss) {
    auto f = std::make_shared<Flags>();
    auto no_save = std::make_shared<bool>(false);
    CLI::App* c = wsss.add_subcommand("seeds", "CAM seeds of a split: <id>.png labels, cams/<id>.npy, eval/");
    add_source_flags(c, *f);
    add_seed_flags(c, *f);
    c->add_flag("--no-save-cams", *no_save, "Do not write the computed CAMs");
    c->add_option("--out", f->out, "Output folder")->required();
    c->callback([f, no_save] {
        apply_torch_threads(f->threads);
        SeedsRunOptions o;
        o.source = f->source();
        o.data = f->data;
        o.split = f->split;
        o.out = f->out;
        o.seeds = f->seeds();
        o.save_cams = !*no_save;
        SeedsRunResult r = run_seeds(o, bar("seeds"));
        fmt::print("seeds: {} images ({}) -> {}\n", r.images,
                   o.seeds.confident() ? fmt::format("confident {:g},{:g}", o.seeds.confident_fg, o.seeds.confident_bg)
                                       : o.seeds.background.to_string(),
                   o.out.string());
        if (r.evaluated) print_metrics_line("seeds", r.metrics);
    });
}

void add_sweep(CLI::App& wsss) {
    auto f = std::make_shared<Flags>();
    CLI::App* c = wsss.add_subcommand("sweep", "Background threshold sweep of CAM seeds against a split's masks");
    add_source_flags(c, *f);
    c->add_option("--thresholds", f->thresholds, "LO:HI:STEP or a comma list")->capture_default_str();
    c->add_option("--out", f->out, "Optional folder for sweep.json and sweep.csv");
    c->callback([f] {
        apply_torch_threads(f->threads);
        SweepRunOptions o;
        o.source = f->source();
        o.data = f->data;
        o.split = f->split;
        o.thresholds = parse_thresholds(f->thresholds);
        o.out = f->out;
        SweepResult r = run_sweep(o, bar("sweep"));
        std::cout << sweep_table(r);
        fmt::print("best threshold {:.2f}: mIoU {:.4f}\n", r.best_threshold(), r.best_miou());
    });
}

void add_pseudo(CLI::App& wsss) {
    auto f = std::make_shared<Flags>();
    CLI::App* c = wsss.add_subcommand("pseudo", "Pseudo-masks: seeds -> dense CRF -> VOC palette PNGs (255 uncertain)");
    add_source_flags(c, *f);
    add_seed_flags(c, *f);
    add_crf_flags(c, *f);
    c->add_option("--out", f->out, "Output folder: <id>.png, eval/")->required();
    c->callback([f] {
        apply_torch_threads(f->threads);
        PseudoRunOptions o;
        o.source = f->source();
        o.data = f->data;
        o.split = f->split;
        o.out = f->out;
        o.pseudo = f->pseudo();
        PseudoRunResult r = run_pseudo(o, bar("pseudo"));
        fmt::print("pseudo-masks: {} images -> {} ({}; {:.1f}% uncertain)\n", r.images, o.out.string(),
                   o.pseudo.crf ? "dense CRF" : "no CRF", 100.0 * r.ignored_share);
        if (r.evaluated) print_metrics_line("pseudo-masks", r.metrics);
    });
}

void add_affinity_flags(CLI::App* c, AffinityOptions& a) {
    c->add_option("--radius", a.radius, "Affinity pairs: cells closer than this")->capture_default_str();
    c->add_option("--cell", a.stride, "Side of a cell in pixels (the walk's resolution)")->capture_default_str();
    c->add_option("--beta", a.beta, "Affinities raised to this power before the walk")->capture_default_str();
    c->add_option("--steps", a.steps, "Random-walk steps")->capture_default_str();
    c->add_option("--embedding", a.embedding, "Channels of the affinity network's output")->capture_default_str();
}

void add_affinity(CLI::App& wsss) {
    auto o = std::make_shared<AffinityRunOptions>();
    auto threads = std::make_shared<int>(2);
    CLI::App* c = wsss.add_subcommand(
        "affinity", "Affinity propagation: train AffinityNet on confident labels, random-walk the CAMs into OUT/cams");
    c->add_option("--data", o->data, "Dataset root")->required();
    c->add_option("--split", o->split, "Split")->capture_default_str();
    c->add_option("--cams", o->cams, "Folder of the split's CAM files <id>.npy")->required();
    c->add_option("--labels", o->labels, "Folder of confident labels <id>.png (wsss pseudo --confident)")->required();
    c->add_option("--out", o->out, "Output folder: net/ (the network), cams/ (walked CAMs)")->required();
    add_affinity_flags(c, o->affinity);
    c->add_option("--epochs", o->epochs, "Affinity network epochs")->capture_default_str();
    c->add_option("--batch", o->batch, "Affinity network batch")->capture_default_str();
    c->add_option("--lr", o->lr, "Learning rate (0 = the AdamW default of train segment)")->capture_default_str();
    c->add_option("--seed", o->seed, "Seed")->capture_default_str();
    add_torch_threads_option(c, *threads);
    c->callback([o, threads] {
        apply_torch_threads(*threads);
        StageBars bars;
        AffinityRunResult r = run_affinity(*o, [&](const std::string& stage, std::size_t done, std::size_t total) {
            bars(stage, done, total);
        });
        bars.finish();
        fmt::print("affinity network {} ({})\n", r.network.string(), r.trained ? "trained" : "existed, reused");
        fmt::print("walked CAMs: {} images -> {}\n", r.images, r.cams.string());
    });
}

void add_run(CLI::App& wsss) {
    auto f = std::make_shared<Flags>();
    auto o = std::make_shared<WsssRunOptions>();
    CLI::App* c = wsss.add_subcommand(
        "run", "Whole pipeline from a dataset: classifier, CAMs, threshold sweep, seeds, pseudo-masks (+CRF), "
               "segmenter, val mIoU; resumable stage by stage");
    c->add_option("--data", o->data, "Dataset root")->required();
    c->add_option("--out", o->out, "Output folder (one subfolder per stage, summary.json)")->required();
    c->add_option("--train-split", o->train_split, "Split with image labels (its masks only score the seeds)")
        ->capture_default_str();
    c->add_option("--val", o->val_split, "Split scored by the final segmenter")->capture_default_str();
    c->add_option("--arch", o->arch, "Classifier architecture (a gap_linear one)")->capture_default_str();
    add_choice_option(c, "--objective", o->objective, objective_choices(), "Classifier objective");
    c->add_option("--epochs", o->epochs, "Classifier epochs")->capture_default_str();
    c->add_option("--batch", o->batch, "Classifier batch")->capture_default_str();
    c->add_option("--lr", o->lr, "Classifier peak learning rate")->capture_default_str();
    c->add_option("--warmup-epochs", o->warmup_epochs, "Classifier warmup")->capture_default_str();
    c->add_option("--width", o->width, "Classifier width")->capture_default_str();
    c->add_option("--output-stride", o->output_stride, "Classifier output stride (4, 8 or 16)")->capture_default_str();
    c->add_option("--segment-epochs", o->segment_epochs, "Segmenter epochs")->capture_default_str();
    c->add_option("--seed", o->seed, "Seed")->capture_default_str();
    add_torch_threads_option(c, f->threads);
    add_number_list(c, "--scales", f->scales, 0, "CAM input scales")->capture_default_str();
    c->add_flag("--no-flip", f->no_flip, "No flipped CAM pass");
    c->add_option("--thresholds", f->thresholds, "Swept background thresholds")->capture_default_str();
    add_number_list(c, "--confident", f->confident, 2, "FG,BG: confident regions (255 between) instead of the swept threshold");
    add_crf_flags(c, *f);
    auto affinity_confident = std::make_shared<std::vector<double>>(std::vector<double>{0.0, 0.0});
    c->add_flag("--affinity", o->affinity, "Add affinity propagation: AffinityNet + random walk of the CAMs");
    add_affinity_flags(c, o->affinity_options);
    add_number_list(c, "--affinity-confident", *affinity_confident, 2,
                    "FG,BG: the confident labels the affinity network learns from (default: from the sweep's "
                    "best threshold t, FG = t + (1 - t)/6, BG = t/3)");
    c->add_option("--affinity-epochs", o->affinity_epochs, "Affinity network epochs")->capture_default_str();
    auto affinity_thresholds = std::make_shared<std::string>("0.05:0.95:0.05");
    c->add_option("--affinity-thresholds", *affinity_thresholds, "Swept background thresholds of the walked CAMs")
        ->capture_default_str();
    c->callback([f, o, affinity_confident, affinity_thresholds] {
        o->affinity_thresholds = parse_thresholds(*affinity_thresholds);
        apply_torch_threads(f->threads);
        o->affinity_fg = (*affinity_confident)[0];
        o->affinity_bg = (*affinity_confident)[1];
        CamSource s = f->source();
        o->cams = s.options;
        o->thresholds = parse_thresholds(f->thresholds);
        o->pseudo = f->pseudo();
        StageBars bars{true, {}, {}};
        WsssRunResult r = run_wsss(*o, [&](const std::string& stage, std::size_t done, std::size_t total) {
            bars(stage, done, total);
        });
        bars.finish();
        for (const WsssStageReport& s : r.stages)
            fmt::print("{:<11} {:>8}  {}\n", s.stage, s.skipped ? "skipped" : fmt::format("{:.1f} s", s.seconds),
                       s.summary);
        fmt::print("seeds (train, threshold {:.2f}) mIoU {:.4f}; ", r.best_threshold, r.seeds_miou);
        if (o->affinity)
            fmt::print("walked seeds (threshold {:.2f}) {:.4f}; ", r.affinity_threshold, r.affinity_miou);
        fmt::print("pseudo-masks (train) {:.4f}; final ({}) {:.4f}\n", r.pseudo_miou, o->val_split, r.final_miou);
        fmt::print("wrote {}\n", r.summary.string());
    });
}

}  // namespace

void add_wsss_command(CLI::App& app) {
    CLI::App* wsss = app.add_subcommand("wsss", "Weakly supervised segmentation from image-level labels");
    wsss->require_subcommand(1);
    add_seeds(*wsss);
    add_sweep(*wsss);
    add_pseudo(*wsss);
    add_affinity(*wsss);
    add_run(*wsss);
}

}  // namespace sightline::cli
