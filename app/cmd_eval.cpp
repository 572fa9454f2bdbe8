// sightline eval: IoU / mIoU / Dice of predicted masks against ground truth.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>

#include <fmt/format.h>

#include "commands.hpp"
#include "sightline/evaluate.hpp"

namespace sightline::cli {

namespace {

struct EvalCommand {
    EvalOptions options;
    fs::path out;  // --out
};

// A one-line progress bar on a terminal; nothing when stderr is piped.
std::function<void(std::size_t, std::size_t)> progress_bar() {
    if (!::isatty(2)) return {};
    auto mutex = std::make_shared<std::mutex>();
    return [mutex](std::size_t done, std::size_t total) {
        std::lock_guard<std::mutex> lock(*mutex);
        const int width = 30;
        int filled = static_cast<int>(width * done / total);
        std::fprintf(stderr, "\reval [%s%s] %zu/%zu", std::string(filled, '#').c_str(),
                     std::string(width - filled, ' ').c_str(), done, total);
        if (done == total) std::fprintf(stderr, "\r%*s\r", width + 40, "");
        std::fflush(stderr);
    };
}

void run(const EvalCommand& cmd) {
    EvalResult result = evaluate_masks(cmd.options, progress_bar());
    if (!cmd.out.empty()) write_eval_outputs(cmd.out, result);
    std::cout << format_metrics_table(result.metrics);
    std::cout << fmt::format("images         {}", result.ids.size());
    if (!result.skipped.empty())
        std::cout << fmt::format(" ({} without a prediction skipped)", result.skipped.size());
    std::cout << "\n";
    if (!cmd.out.empty())
        std::cout << fmt::format("wrote          {}/{{metrics.json,metrics.csv,confusion.csv,confusion.png{}}}\n",
                                 cmd.out.string(), result.per_image.empty() ? "" : ",per_image.csv");
}

}  // namespace

void add_eval_command(CLI::App& app) {
    auto cmd = std::make_shared<EvalCommand>();
    EvalOptions& o = cmd->options;
    CLI::App* sub = app.add_subcommand(
        "eval", "IoU, mIoU, Dice and accuracies of predicted masks against ground truth");
    sub->add_option("--pred", o.pred, "Folder of predicted masks (palette or grey PNG, <id>.png)")
        ->required();
    sub->add_option("--gt", o.gt, "Folder of ground-truth masks, or a VOC root with --split")->required();
    sub->add_option("--split", o.split,
                    "VOC split: read <gt>/ImageSets/Segmentation/<split>.txt and <gt>/SegmentationClass/");
    sub->add_option("--classes", o.classes,
                    "Class count N, or a classes.txt (line i = class i, background first); "
                    "default <gt>/classes.txt (the 21 VOC names for a VOC root without one)");
    sub->add_option("--ignore", o.ignore, "Ground-truth value that is not counted (-1: none)")
        ->capture_default_str();
    sub->add_flag("--per-image", o.per_image, "Also metrics per image (per_image.csv)");
    sub->add_flag("--allow-missing", o.allow_missing, "Skip ground-truth masks without a prediction");
    sub->add_option("--threads", o.threads, "Worker threads (0 = all cores)")->capture_default_str();
    sub->add_option("--out", cmd->out,
                    "Write metrics.json, metrics.csv, confusion.csv and confusion.png here");
    sub->callback([cmd] { run(*cmd); });
}

}  // namespace sightline::cli
