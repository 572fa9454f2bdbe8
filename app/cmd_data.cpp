// `sightline data synth|fashion`: write a dataset in the PASCAL VOC layout (see data.hpp).
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "commands.hpp"
#include "sightline/data.hpp"
#include "sightline/folders.hpp"

namespace sightline::cli {

namespace {

// A one-line progress bar on a terminal, nothing when stderr is piped.
ProgressFn progress_bar(const std::string& what) {
    if (!::isatty(2)) return {};
    return [what](std::size_t done, std::size_t total) {
        const int width = 30, filled = static_cast<int>(width * done / std::max<std::size_t>(total, 1));
        std::fprintf(stderr, "\r%s [%s%s] %zu/%zu", what.c_str(), std::string(filled, '#').c_str(),
                     std::string(width - filled, '.').c_str(), done, total);
        if (done == total) std::fprintf(stderr, "\n");
        std::fflush(stderr);
    };
}

void report(const fs::path& out, const GenerationSummary& s, double seconds) {
    std::string splits;
    for (const auto& [name, count] : s.split_sizes) splits += fmt::format(" {}={}", name, count);
    fmt::print("wrote {} images to {} in {:.1f} s;{}\n", s.images, out.string(), seconds, splits);
}

}  // namespace

void add_data_command(CLI::App& app) {
    auto* data = app.add_subcommand("data", "Generate datasets with masks (PASCAL VOC layout)");
    data->require_subcommand(1);

    auto synth_options = std::make_shared<SynthOptions>();
    auto synth_out = std::make_shared<std::string>();
    auto* synth = data->add_subcommand(
        "synth", "Synthetic shortcut scenes: objects on their class's context (boat/water, train/tracks, "
                 "plane/sky, car/road, cow/grass, fish/reef), counterfactual val/test twins");
    synth->add_option("--out", *synth_out, "Output folder")->required();
    synth->add_option("--n", synth_options->n, "Training images (val and test: n/5 scenes each, x3 versions)")
        ->capture_default_str();
    synth->add_option("--size", synth_options->size, "Image height and width in pixels")->capture_default_str();
    synth->add_option("--spurious", synth_options->spurious,
                      "Train: probability that an object sits on its own class's context")
        ->capture_default_str();
    synth->add_flag("--multi", synth_options->multi, "1-3 objects per image, each in its own band (multi-label)");
    synth->add_flag("--instances", synth_options->instances, "Also write instance masks (SegmentationObject/)");
    synth->add_option("--seed", synth_options->seed, "Random seed (same seed, same files)")->capture_default_str();
    synth->add_option("--threads", synth_options->threads, "Worker threads (0 = all cores; output unchanged)")
        ->capture_default_str();
    auto synth_force = std::make_shared<bool>(false);
    synth->add_flag("--force", *synth_force, "Replace an existing dataset in --out (atomically, when complete)");
    synth->callback([synth_options, synth_out, synth_force] {
        auto start = std::chrono::steady_clock::now();
        GenerationSummary s;
        build_folder_atomically(*synth_out, *synth_force, [&](const fs::path& staging) {
            s = generate_synth(staging, *synth_options, progress_bar("synth"));
        });
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        report(*synth_out, s, seconds);
        fmt::print("train objects on their own context: {:.3f} (--spurious {})\n", s.train_on_own_context,
                   synth_options->spurious);
    });

    auto fashion_options = std::make_shared<FashionOptions>();
    auto fashion_out = std::make_shared<std::string>();
    auto fashion_source = std::make_shared<std::string>(fashion_options->source.string());
    auto* fashion = data->add_subcommand(
        "fashion", "Fashion-MNIST composites: 1-3 items per image on textured backgrounds, with masks");
    fashion->add_option("--out", *fashion_out, "Output folder")->required();
    fashion->add_option("--n", fashion_options->n, "Training images (val and test: n/5 each)")->capture_default_str();
    fashion->add_option("--size", fashion_options->size, "Image height and width in pixels")->capture_default_str();
    fashion->add_flag("--instances", fashion_options->instances, "Also write instance masks (SegmentationObject/)");
    fashion->add_option("--seed", fashion_options->seed, "Random seed (same seed, same files)")->capture_default_str();
    fashion->add_option("--source", *fashion_source, "Folder with the Fashion-MNIST IDX files")->capture_default_str();
    fashion->add_option("--threads", fashion_options->threads, "Worker threads (0 = all cores; output unchanged)")
        ->capture_default_str();
    auto fashion_force = std::make_shared<bool>(false);
    fashion->add_flag("--force", *fashion_force, "Replace an existing dataset in --out (atomically, when complete)");
    fashion->callback([fashion_options, fashion_out, fashion_source, fashion_force] {
        fashion_options->source = *fashion_source;
        auto start = std::chrono::steady_clock::now();
        GenerationSummary s;
        build_folder_atomically(*fashion_out, *fashion_force, [&](const fs::path& staging) {
            s = generate_fashion(staging, *fashion_options, progress_bar("fashion"));
        });
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        report(*fashion_out, s, seconds);
    });
}

}  // namespace sightline::cli
