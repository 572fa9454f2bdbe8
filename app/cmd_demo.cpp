// sightline demo: the seed's whole argument in one command, on embedded synthetic data.
// Each stage saves its result as out/stages/<key>.json; a rerun skips finished stages (and a
// stage's own work — data, training runs, maps — resumes where it stopped); --force starts over.
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>

#include <fmt/format.h>

#include "commands.hpp"
#include "demo.hpp"
#include "options.hpp"

namespace sightline::cli {

namespace {

using demo::json;

struct DemoFlags {
    fs::path out = "demo-out";
    bool quick = false;
    bool force = false;
    int threads = 2;
};

struct Stage {
    std::string key, title;
    std::function<json(const demo::Context&, const json& summary)> run;
};

const std::vector<Stage>& stages() {
    static const std::vector<Stage> kStages = {
        {"data", "synthetic scenes with a planted shortcut (boat on water, train on tracks, ...)",
         [](const demo::Context& c, const json&) { return demo::make_data(c); }},
        {"classifiers", "train a GAP-head and a flatten-head classifier",
         [](const demo::Context& c, const json&) { return demo::train_classifiers(c); }},
        {"explain", "explain test scenes; inspect which guarantees hold",
         [](const demo::Context& c, const json& s) { return demo::explain_models(c, s["classifiers"]); }},
        {"audit", "audit: explanation mass on object vs context, next to behaviour",
         [](const demo::Context& c, const json& s) { return demo::audit_models(c, s["classifiers"]); }},
        {"sanity", "sanity check: cascading model-parameter randomisation",
         [](const demo::Context& c, const json& s) { return demo::sanity_checks(c, s["classifiers"]); }},
        {"wsss", "weakly supervised segmentation: CAM seeds, CRF, pseudo-masks, segmenter",
         [](const demo::Context& c, const json&) { return demo::weak_segmentation(c); }},
        {"unet", "fully supervised U-Net on the pixel masks of multi-object scenes",
         [](const demo::Context& c, const json&) { return demo::full_segmentation(c); }},
    };
    return kStages;
}

// The demo's numbers depend on the float summation order, which LibTorch's convolutions
// (oneDNN) choose by CPU: AVX-512 and AVX2 kernels give other WSSS and U-Net numbers after a
// few epochs. Unless the user chose, oneDNN is capped at AVX2, which every x86-64 machine of
// the last decade has, so that two machines give the same numbers (docs/demo.md). It must be
// set before the first convolution; oneDNN reads it once.
std::string pin_convolution_isa() {
    for (const char* name : {"ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"})
        if (const char* set = std::getenv(name)) return set;
    setenv("ONEDNN_MAX_CPU_ISA", "AVX2", 0);
    setenv("DNNL_MAX_CPU_ISA", "AVX2", 0);  // the name older oneDNN releases read
    return "AVX2";
}

void run(const DemoFlags& f) {
    const std::string isa = pin_convolution_isa();
    apply_torch_threads(f.threads);
    if (f.force) fs::remove_all(f.out);
    ensure_writable_dir(f.out / "stages");
    const demo::Context context{f.out, f.quick};
    // A finished demo of the other size would mix data; say so instead of guessing.
    const fs::path mode_file = f.out / "stages" / "mode.txt";
    const std::string mode = f.quick ? "quick" : "full";
    if (fs::exists(mode_file) && read_file(mode_file) != mode)
        throw UsageError(fmt::format("{}: this folder holds a {} demo; use --force to start a {} one, or another --out",
                                     f.out.string(), read_file(mode_file), mode));
    write_file_atomic(mode_file, mode);

    json summary = json::object();
    const auto& all = stages();
    const std::size_t total = all.size() + 1;
    auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < all.size(); ++i) {
        const Stage& st = all[i];
        const fs::path saved = f.out / "stages" / (st.key + ".json");
        if (fs::exists(saved)) {
            summary[st.key] = json::parse(read_file(saved));
            std::cout << fmt::format("[{}/{}] {} (done before)\n", i + 1, total, st.title) << std::flush;
            continue;
        }
        std::cout << fmt::format("[{}/{}] {}\n", i + 1, total, st.title) << std::flush;
        auto t0 = std::chrono::steady_clock::now();
        json result = st.run(context, summary);
        result["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        write_file_atomic(saved, result.dump(1));
        summary[st.key] = result;
    }
    std::cout << fmt::format("[{}/{}] summary and report\n", total, total) << std::flush;
    summary["tasks"] = demo::task_summary(summary);
    summary["mode"] = mode;
    summary["numerics"] = {{"threads", f.threads}, {"onednn_max_cpu_isa", isa}};
    summary["seconds_this_run"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    write_file_atomic(f.out / "summary.json", summary.dump(1));
    demo::write_report(f.out, summary);

    std::cout << fmt::format("report: {}\n", (f.out / "index.html").string());
    for (const auto& t : summary["tasks"])
        std::cout << fmt::format("  {}: {}\n", t["task"].get<std::string>(), t["this_run"].get<std::string>());
}

}  // namespace

void add_demo_command(CLI::App& app) {
    auto flags = std::make_shared<DemoFlags>();
    CLI::App* cmd = app.add_subcommand(
        "demo", "Run explanation, weakly and fully supervised segmentation on embedded synthetic data; write a report");
    cmd->add_option("--out", flags->out, "output folder (index.html, summary.json)")->capture_default_str();
    cmd->add_flag("--quick", flags->quick, "smaller data and shorter training (about a minute)");
    cmd->add_flag("--force", flags->force, "start over instead of resuming");
    add_torch_threads_option(cmd, flags->threads);
    cmd->callback([flags] { run(*flags); });
}

}  // namespace sightline::cli
