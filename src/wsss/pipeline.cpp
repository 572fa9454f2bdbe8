// `sightline wsss run`: classifier -> CAMs -> threshold sweep -> seeds -> pseudo-masks (+ CRF)
// -> segmenter on the pseudo-masks -> val evaluation. Each stage writes one folder of OUT
// through a staging folder; a folder that exists is a finished stage and is skipped.
#include <chrono>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sightline/data.hpp"
#include "sightline/train.hpp"
#include "sightline/wsss.hpp"
#include "evaluate/output_fields.hpp"
#include "wsss/pipeline_segment.hpp"
#include "wsss/pipeline_staging.hpp"
#include "wsss/seeds_source.hpp"
#include "sightline/folders.hpp"

namespace sightline {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

using output_fields::number;
double read_number(const json& j) { return j.is_number() ? j.get<double>() : kUndefinedMetric; }

double read_miou(const fs::path& metrics_json) {
    if (!fs::exists(metrics_json)) return kUndefinedMetric;
    json j = json::parse(read_file(metrics_json), nullptr, false);
    return j.is_object() && j.contains("miou") ? read_number(j["miou"]) : kUndefinedMetric;
}

StageProgress stage_progress(const WsssProgress& progress, const std::string& stage) {
    if (!progress) return {};
    return [progress, stage](std::size_t done, std::size_t total) { progress(stage, done, total); };
}

void check_options(const WsssRunOptions& o) {
    if (o.data.empty()) throw UsageError("--data: a dataset folder is required");
    if (o.out.empty()) throw UsageError("--out: an output folder is required");
    if (o.epochs < 1) throw UsageError(fmt::format("--epochs: must be >= 1, got {}", o.epochs));
    if (o.segment_epochs < 1) throw UsageError(fmt::format("--segment-epochs: must be >= 1, got {}", o.segment_epochs));
    if (o.thresholds.empty()) throw UsageError("--thresholds: no threshold given");
    validate(o.pseudo);
    if (o.affinity) {
        validate(o.affinity_options);
        const bool from_sweep = o.affinity_fg == 0 && o.affinity_bg == 0;
        if (!from_sweep && !(o.affinity_bg > 0 && o.affinity_bg < o.affinity_fg && o.affinity_fg < 1))
            throw UsageError(fmt::format("--affinity-confident: expected FG,BG with 0 < BG < FG < 1, got {:g},{:g}",
                                         o.affinity_fg, o.affinity_bg));
        if (o.affinity_epochs < 1)
            throw UsageError(fmt::format("--affinity-epochs: must be >= 1, got {}", o.affinity_epochs));
    }
}

}  // namespace

WsssRunResult run_wsss(const WsssRunOptions& o, const WsssProgress& progress) {
    check_options(o);
    // The data is opened (and its splits checked) before any stage writes.
    std::unique_ptr<Dataset> train = open_dataset(o.data, o.train_split);
    check_writable_dir(o.out);  // each stage creates its folder when it writes
    WsssRunResult result;
    auto stage = [&](const std::string& name, const fs::path& done_marker, const std::function<std::string()>& work,
                     const std::function<std::string()>& summary_of_existing) {
        WsssStageReport r;
        r.stage = name;
        auto start = Clock::now();
        if (fs::exists(done_marker)) {
            r.skipped = true;
            r.summary = summary_of_existing();
        } else {
            if (progress) progress(name, 0, 0);
            r.summary = work();
        }
        r.seconds = seconds_since(start);
        result.stages.push_back(r);
    };

    // 1. The multi-label classifier (train.hpp); an interrupted run resumes from its checkpoint.
    const fs::path classifier = o.out / "classifier";
    stage("classifier", classifier / "model.pt", [&] {
        TrainOptions t;
        t.data = o.data;
        t.out = classifier;
        t.arch = o.arch;
        t.objective = o.objective;
        t.epochs = o.epochs;
        t.batch = o.batch;
        t.lr = o.lr;
        t.warmup_epochs = o.warmup_epochs;
        t.width = o.width;
        t.output_stride = o.output_stride;
        t.multilabel = true;
        t.train_split = o.train_split;
        t.seed = o.seed;
        t.resume = fs::exists(classifier / "checkpoint" / "checkpoint.pt");
        TrainCallbacks callbacks;
        if (progress)
            callbacks.on_step = [&](int64_t epoch, int64_t step, int64_t steps, double) {
                progress("classifier", static_cast<std::size_t>((epoch - 1) * steps + step),
                         static_cast<std::size_t>(o.epochs * steps));
            };
        TrainResult r = train_classifier(t, callbacks);
        if (r.interrupted) throw Error(fmt::format("{}: classifier training stopped early", classifier.string()));
        return fmt::format("{} epochs ({}, objective {})", o.epochs, o.arch, to_string(o.objective));
    }, [&] { return std::string("model.pt exists"); });

    // 2. CAMs of the training split (multi-scale + flip), one file per image.
    const fs::path cams = o.out / "cams";
    stage("cams", cams, [&] {
        CamSource source{classifier / "model.pt", {}, o.cams};
        detail::CamProvider provider(source, *train, o.data, o.train_split);
        detail::StagingDir staging(cams);
        for (std::size_t i = 0; i < train->size(); ++i) {
            Sample s = train->get(i);
            write_cam_file(staging.path() / (s.id + ".npy"), provider.cams(s), s.labels, provider.num_classes());
            if (progress) progress("cams", i + 1, train->size());
        }
        staging.commit();
        return fmt::format("{} images", train->size());
    }, [&] { return std::string("folder exists"); });
    const CamSource from_files{{}, cams, o.cams};

    // 3. Background threshold sweep against the training masks (as the papers report seeds).
    const bool has_masks = detail::split_has_masks(*train);
    // Runs the sweep of a CAM folder into `dir` once; returns its best threshold and mIoU (the
    // --bg value and no mIoU when the split has no masks).
    auto sweep_stage = [&](const std::string& name, const CamSource& source, const fs::path& dir,
                           const std::vector<double>& thresholds) -> std::pair<double, double> {
        if (!has_masks) return {o.pseudo.seeds.background.value, kUndefinedMetric};
        stage(name, dir / "sweep.json", [&] {
            detail::StagingDir staging(dir);
            SweepRunOptions s;
            s.source = source;
            s.data = o.data;
            s.split = o.train_split;
            s.thresholds = thresholds;
            s.out = staging.path();
            SweepResult r = run_sweep(s, stage_progress(progress, name));
            staging.commit();
            return fmt::format("best threshold {:.2f}, seed mIoU {:.4f}", r.best_threshold(), r.best_miou());
        }, [&] { return std::string("sweep.json exists"); });
        const json j = json::parse(read_file(dir / "sweep.json"));
        return {j.at("best_threshold").get<double>(), read_number(j.at("best_miou"))};
    };
    const double threshold = sweep_stage("sweep", from_files, o.out / "sweep", o.thresholds).first;
    result.best_threshold = threshold;
    SeedOptions seed_options = o.pseudo.seeds;
    if (!seed_options.confident()) seed_options.background = {BackgroundRule::Kind::kThreshold, threshold};

    // 4. Seeds at the chosen threshold.
    const fs::path seeds = o.out / "seeds";
    stage("seeds", seeds, [&] {
        SeedsRunOptions s;
        s.source = from_files;
        s.data = o.data;
        s.split = o.train_split;
        s.out = seeds;
        s.seeds = seed_options;
        SeedsRunResult r = run_seeds(s, stage_progress(progress, "seeds"));
        return r.evaluated ? fmt::format("train mIoU {:.4f}", r.metrics.miou) : std::string("no masks to evaluate");
    }, [&] { return std::string("folder exists"); });
    result.seeds_miou = read_miou(seeds / "eval" / "metrics.json");

    // 4b. Affinity propagation (--affinity): the network learns from the confident regions of
    // the CAMs, the walked CAMs get their own sweep and replace the CAMs for the pseudo-masks.
    CamSource pseudo_source = from_files;
    SeedOptions pseudo_seeds = seed_options;
    // Pseudo-masks of the training split from a CAM folder with the run's CRF settings.
    auto pseudo_masks = [&](const CamSource& source, const SeedOptions& seeds, const fs::path& out,
                            const std::string& name) {
        PseudoRunOptions p;
        p.source = source;
        p.data = o.data;
        p.split = o.train_split;
        p.out = out;
        p.pseudo = o.pseudo;
        p.pseudo.seeds = seeds;
        return run_pseudo(p, stage_progress(progress, name));
    };
    if (o.affinity) {
        const fs::path labels = o.out / "affinity_labels", walked = o.out / "affinity";
        const bool from_sweep = o.affinity_fg == 0 && o.affinity_bg == 0;
        const double fg = from_sweep ? threshold + (1 - threshold) / 6 : o.affinity_fg;
        const double bg = from_sweep ? threshold / 3 : o.affinity_bg;
        result.affinity_fg = fg;
        result.affinity_bg = bg;
        stage("affinity_labels", labels, [&] {
            SeedOptions confident = o.pseudo.seeds;
            confident.confident_fg = fg;
            confident.confident_bg = bg;
            PseudoRunResult r = pseudo_masks(from_files, confident, labels, "affinity_labels");
            return fmt::format("confident {:.3f},{:.3f}: {:.1f}% unknown", fg, bg, 100.0 * r.ignored_share);
        }, [&] { return std::string("folder exists"); });
        stage("affinity", walked / "cams", [&] {
            AffinityRunOptions a;
            a.data = o.data;
            a.split = o.train_split;
            a.cams = cams;
            a.labels = labels;
            a.out = walked;
            a.affinity = o.affinity_options;
            a.epochs = o.affinity_epochs;
            a.seed = o.seed;
            run_affinity(a, progress);
            return fmt::format("{} epochs, radius {}, beta {:g}, {} steps", o.affinity_epochs,
                               o.affinity_options.radius, o.affinity_options.beta, o.affinity_options.steps);
        }, [&] { return std::string("cams exist"); });
        pseudo_source = CamSource{{}, walked / "cams", o.cams};
        std::tie(result.affinity_threshold, result.affinity_miou) =
            sweep_stage("affinity_sweep", pseudo_source, o.out / "affinity_sweep", o.affinity_thresholds);
        if (!pseudo_seeds.confident())
            pseudo_seeds.background = {BackgroundRule::Kind::kThreshold, result.affinity_threshold};
    }

    // 5. Pseudo-masks: seeds refined by the dense CRF (when on), 255 where uncertain.
    const fs::path pseudo = o.out / "pseudo";
    stage("pseudo", pseudo, [&] {
        PseudoRunResult r = pseudo_masks(pseudo_source, pseudo_seeds, pseudo, "pseudo");
        return fmt::format("{}train mIoU {:.4f}, {:.1f}% uncertain", o.pseudo.crf ? "CRF, " : "", r.metrics.miou,
                           100.0 * r.ignored_share);
    }, [&] { return std::string("folder exists"); });
    result.pseudo_miou = read_miou(pseudo / "eval" / "metrics.json");

    // 6-7. The segmenter trained on the pseudo-masks, then scored on val against true masks.
    const fs::path segmenter = o.out / "segmenter", final_dir = o.out / "final";
    stage("segmenter", segmenter / "model.pt", [&] {
        return detail::train_segmenter_on_pseudo(o, pseudo, segmenter, stage_progress(progress, "segmenter"));
    }, [&] { return std::string("model.pt exists"); });
    bool has_val = !o.val_split.empty() && fs::exists(o.data / "ImageSets" / "Segmentation" / (o.val_split + ".txt"));
    if (has_val) {
        stage("final", final_dir, [&] {
            Metrics m = detail::evaluate_segmenter(o, segmenter / "model.pt", final_dir, stage_progress(progress, "final"));
            return fmt::format("{} mIoU {:.4f}", o.val_split, m.miou);
        }, [&] { return std::string("folder exists"); });
        result.final_miou = read_miou(final_dir / "eval" / "metrics.json");
    }

    json summary;
    summary["data"] = o.data.string();
    summary["train_split"] = o.train_split;
    summary["val_split"] = has_val ? json(o.val_split) : json(nullptr);
    summary["objective"] = to_string(o.objective);
    summary["best_threshold"] = result.best_threshold;
    summary["seeds_miou"] = number(result.seeds_miou);
    summary["affinity"] = o.affinity;
    if (o.affinity) {
        summary["affinity_threshold"] = result.affinity_threshold;
        summary["affinity_miou"] = number(result.affinity_miou);
        summary["affinity_options"] = {{"radius", o.affinity_options.radius}, {"cell", o.affinity_options.stride},
                                       {"beta", o.affinity_options.beta}, {"steps", o.affinity_options.steps},
                                       {"embedding", o.affinity_options.embedding},
                                       {"confident", {result.affinity_fg, result.affinity_bg}},
                                       {"epochs", o.affinity_epochs}};
    }
    summary["pseudo_miou"] = number(result.pseudo_miou);
    summary["pseudo_crf"] = o.pseudo.crf;
    summary["final_miou"] = number(result.final_miou);
    summary["stages"] = json::array();
    for (const WsssStageReport& r : result.stages)
        summary["stages"].push_back({{"stage", r.stage}, {"skipped", r.skipped}, {"seconds", r.seconds},
                                     {"summary", r.summary}});
    result.summary = o.out / "summary.json";
    write_file_atomic(result.summary, summary.dump(2) + "\n");
    return result;
}

}  // namespace sightline
