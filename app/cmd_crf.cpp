// sightline crf: dense CRF refinement of soft label maps (or of a label map with a confidence)
// with the colours of the image; writes the marginals Q and the MAP labels.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "commands.hpp"
#include "options.hpp"
#include "sightline/core.hpp"
#include "sightline/crf.hpp"
#include "sightline/palette.hpp"

namespace sightline::cli {

namespace {

struct CrfCommand {
    DenseCrfOptions options;
    fs::path image, probs, labels, out;  // --image, --probs, --labels, --out
    float confidence = 0.7f;              // --confidence (IRN / Puzzle-CAM gt_prob)
    int classes = 0;                      // --classes: labels of a --labels map (0: max + 1)
    std::vector<float> gaussian = {3, 3}, bilateral = {80, 13, 10};
};

// One image and its soft maps (or label map).
struct Job {
    fs::path image, maps;
    std::string stem;
};

// Pairs images with maps by file stem: a file with a file, or each image of a folder with
// <maps folder>/<stem><extension>.
std::vector<Job> pair_inputs(const fs::path& image, const fs::path& maps, const std::string& flag,
                             const std::string& extension) {
    std::vector<Job> jobs;
    if (!fs::exists(maps)) throw Error(fmt::format("{}: no such file or folder ({})", maps.string(), flag));
    for (const fs::path& img : list_inputs(image, false)) {
        Job job{img, maps, img.stem().string()};
        if (fs::is_directory(maps)) {
            job.maps = maps / (job.stem + extension);
            if (!fs::exists(job.maps))
                throw Error(fmt::format("{}: no such file (the {} for {})", job.maps.string(), flag, img.string()));
        } else if (fs::is_directory(image)) {
            throw UsageError(fmt::format("{}: --image is a folder, so {} must be a folder too", maps.string(), flag));
        }
        jobs.push_back(job);
    }
    std::map<std::string, fs::path> seen;
    for (const Job& job : jobs)
        if (!seen.emplace(job.stem, job.image).second)
            throw Error(fmt::format("{}: same file stem as {} (outputs would collide)", job.image.string(),
                                    seen[job.stem].string()));
    return jobs;
}

// The unary energies of one job and its label count; throws naming the file on bad input.
struct Unary {
    cv::Mat image;
    std::vector<float> energies;
    int num_labels = 0;
};

Unary load_job(const CrfCommand& cmd, const Job& job) {
    Unary u;
    u.image = read_image_rgb(job.image).rgb;
    if (cmd.labels.empty()) {
        ProbabilityMaps maps = read_probabilities(job.maps, u.image.rows, u.image.cols);
        u.num_labels = maps.num_labels;
        u.energies = unary_from_probabilities(maps.probs);
        return u;
    }
    cv::Mat labels = read_index_png(job.maps);
    if (labels.rows != u.image.rows || labels.cols != u.image.cols)
        throw Error(fmt::format("{}: label map is {} x {} (H x W) but the image is {} x {}", job.maps.string(),
                                labels.rows, labels.cols, u.image.rows, u.image.cols));
    u.num_labels = cmd.classes;
    if (u.num_labels == 0) {
        double top = 0;
        cv::Mat known = labels != 255;
        cv::minMaxLoc(labels, nullptr, &top, nullptr, nullptr, known);
        u.num_labels = static_cast<int>(top) + 1;
    }
    if (u.num_labels < 2)
        throw Error(fmt::format("{}: expected at least 2 labels, got {} (all pixels one label or unknown; "
                                "set --classes)", job.maps.string(), u.num_labels));
    check_label_map(job.maps.string(), labels, u.num_labels);
    u.energies = unary_from_labels(labels, u.num_labels, cmd.confidence);
    return u;
}

void run(CrfCommand& cmd) {
    const std::vector<float>& g = cmd.gaussian;
    const std::vector<float>& b = cmd.bilateral;
    DenseCrfOptions& o = cmd.options;
    o.gaussian_sxy = g[0];
    o.gaussian_compat = g[1];
    o.bilateral_sxy = b[0];
    o.bilateral_srgb = b[1];
    o.bilateral_compat = b[2];
    validate(o);
    if (cmd.probs.empty() == cmd.labels.empty())
        throw UsageError("crf: give exactly one of --probs (soft maps) and --labels (a label map)");
    if (!(cmd.confidence > 0 && cmd.confidence < 1))
        throw UsageError(fmt::format("--confidence: must be in (0, 1), got {}", cmd.confidence));
    if (cmd.classes < 0 || cmd.classes == 1 || cmd.classes > 255)
        throw UsageError(fmt::format("--classes: must be 2..255, got {}", cmd.classes));

    const bool soft = cmd.labels.empty();
    std::vector<Job> jobs = soft ? pair_inputs(cmd.image, cmd.probs, "--probs", ".npy")
                                 : pair_inputs(cmd.image, cmd.labels, "--labels", ".png");
    // Every input is checked before anything is written: bad input leaves no partial output.
    for (const Job& job : jobs) load_job(cmd, job);
    ensure_writable_dir(cmd.out);

    const bool bar = ::isatty(2) && jobs.size() > 1;
    DenseCrf crf(o);  // one object: lattices and buffers are reused from image to image
    for (std::size_t j = 0; j < jobs.size(); ++j) {
        Unary u = load_job(cmd, jobs[j]);
        crf.set_image(u.image);
        std::vector<float> q = crf.infer(u.energies, u.num_labels);
        const int h = u.image.rows, w = u.image.cols;
        write_npy_f32(cmd.out / (jobs[j].stem + ".q.npy"), {u.num_labels, h, w}, q.data());
        write_palette_png(cmd.out / (jobs[j].stem + ".png"), labels_from_q(q.data(), u.num_labels, h, w));
        if (bar) {
            const int width = 30, filled = static_cast<int>(width * (j + 1) / jobs.size());
            std::fprintf(stderr, "\rcrf [%s%s] %zu/%zu", std::string(filled, '#').c_str(),
                         std::string(width - filled, ' ').c_str(), j + 1, jobs.size());
            if (j + 1 == jobs.size()) std::fprintf(stderr, "\r%*s\r", width + 40, "");
            std::fflush(stderr);
        }
    }
    std::cout << fmt::format("crf: {} image{}, {} mean-field iterations; wrote {}/<stem>.q.npy and <stem>.png\n",
                             jobs.size(), jobs.size() == 1 ? "" : "s", o.iterations, cmd.out.string());
}

}  // namespace

void add_crf_command(CLI::App& app) {
    auto cmd = std::make_shared<CrfCommand>();
    CLI::App* sub = app.add_subcommand(
        "crf", "Dense CRF (Kraehenbuehl & Koltun 2011) refinement of soft label maps with the image colours");
    sub->add_option("--image", cmd->image, "Image file, or a folder of images")->required();
    sub->add_option("--probs", cmd->probs,
                    "Probabilities, float32 .npy K x H x W summing to 1 over K; a folder of <stem>.npy when "
                    "--image is a folder");
    sub->add_option("--labels", cmd->labels,
                    "Instead of --probs: label map PNG (palette or grey, 255 = unknown); a folder of <stem>.png");
    sub->add_option("--confidence", cmd->confidence,
                    "With --labels: probability of a pixel's own label (IRN / Puzzle-CAM gt_prob)")
        ->capture_default_str();
    sub->add_option("--classes", cmd->classes, "With --labels: number of labels K (default: largest label + 1)");
    sub->add_option("--iterations", cmd->options.iterations, "Mean-field iterations")->capture_default_str();
    add_number_list(sub, "--gaussian", cmd->gaussian, 2, "Smoothness kernel: position std (pixels), Potts weight")
        ->capture_default_str();
    add_number_list(sub, "--bilateral", cmd->bilateral, 3,
                    "Appearance kernel: position std (pixels), colour std (0..255), Potts weight")
        ->capture_default_str();
    sub->add_option("--threads", cmd->options.threads, "Threads (0 = all cores); results do not depend on it")
        ->capture_default_str();
    sub->add_option("--out", cmd->out, "Output folder: <stem>.q.npy (float32 K x H x W) and <stem>.png (labels)")
        ->required();
    sub->callback([cmd] { run(*cmd); });
}

}  // namespace sightline::cli
