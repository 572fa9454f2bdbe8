// sightline eval: IoU / mIoU / Dice of predicted masks against ground truth, or with --coco
// COCO instance AP / AR as pycocotools' COCOeval.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>

#include <fmt/format.h>

#include "commands.hpp"
#include "sightline/coco.hpp"
#include "sightline/evaluate.hpp"
#include "sightline/folders.hpp"

namespace sightline::cli {

namespace {

struct EvalCommand {
    EvalOptions options;
    fs::path out;                               // --out
    fs::path coco;                              // --coco: COCO ground-truth JSON
    fs::path results;                           // --results: COCO results JSON
    std::vector<std::string> iou_types{"segm"};  // --iou-type
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

std::string format_category_table(const CocoEvalResult& r) {
    std::size_t width = 4;
    for (const CocoCategoryAp& c : r.per_category) width = std::max(width, c.name.size());
    std::string out = fmt::format("{:>6}  {:<{}} {:>7} {:>7} {:>7}\n", "id", "name", width, "AP", "AP50", "AP75");
    for (const CocoCategoryAp& c : r.per_category)
        out += fmt::format("{:>6}  {:<{}} {:>7.3f} {:>7.3f} {:>7.3f}\n", c.id, c.name, width, c.ap, c.ap50, c.ap75);
    return out;
}

void run_coco(const EvalCommand& cmd) {
    CocoDataset gt = read_coco_dataset(cmd.coco);
    CocoResults detections = read_coco_results(cmd.results, gt);
    std::vector<CocoEvalResult> results;
    for (const std::string& type : cmd.iou_types) {
        const CocoIouType t = parse_coco_iou_type(type);
        const bool repeated = std::any_of(results.begin(), results.end(),
                                          [&](const CocoEvalResult& r) { return r.iou_type == t; });
        if (!repeated) results.push_back(evaluate_coco(gt, detections, t));
    }
    if (!cmd.out.empty()) write_coco_eval_json(cmd.out, results, gt, detections);
    for (const CocoEvalResult& r : results) {
        std::cout << fmt::format("Evaluate annotation type *{}*\n", coco_iou_type_name(r.iou_type));
        std::cout << format_coco_summary(r);
        std::cout << "AP per category (area all, maxDets 100; -1: no ground truth)\n" << format_category_table(r);
    }
    std::cout << fmt::format("images {}, annotations {}, detections {}", gt.images.size(),
                             gt.annotations.size(), detections.detections.size());
    if (detections.skipped_unknown_category > 0)
        std::cout << fmt::format(" ({} results of categories not in {} skipped, as pycocotools)",
                                 detections.skipped_unknown_category, cmd.coco.string());
    std::cout << "\n";
    if (!cmd.out.empty()) std::cout << fmt::format("wrote {}\n", (cmd.out / "coco_eval.json").string());
}

void run(const EvalCommand& cmd) {
    if (!cmd.out.empty()) check_writable_dir(cmd.out);
    if (!cmd.coco.empty()) return run_coco(cmd);
    if (cmd.options.pred.empty() || cmd.options.gt.empty())
        throw UsageError(fmt::format("{} is required (or --coco GT.json --results DT.json for COCO AP)",
                                     cmd.options.pred.empty() ? "--pred" : "--gt"));
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
        "eval", "IoU, mIoU, Dice and accuracies of predicted masks against ground truth; with --coco, "
                "COCO mask / box AP and AR as pycocotools");
    CLI::Option* pred = sub->add_option("--pred", o.pred, "Folder of predicted masks (palette or grey PNG, <id>.png)");
    CLI::Option* gt = sub->add_option("--gt", o.gt, "Folder of ground-truth masks, or a VOC root with --split");
    CLI::Option* split = sub->add_option("--split", o.split,
                    "VOC split: read <gt>/ImageSets/Segmentation/<split>.txt and <gt>/SegmentationClass/");
    CLI::Option* classes = sub->add_option("--classes", o.classes,
                    "Class count N, or a classes.txt (line i = class i, background first); "
                    "default <gt>/classes.txt (the 21 VOC names for a VOC root without one)");
    sub->add_option("--ignore", o.ignore, "Ground-truth value that is not counted (-1: none)")
        ->capture_default_str();
    sub->add_flag("--per-image", o.per_image, "Also metrics per image (per_image.csv)");
    sub->add_flag("--allow-missing", o.allow_missing, "Skip ground-truth masks without a prediction");
    sub->add_option("--threads", o.threads, "Worker threads (0 = all cores)")->capture_default_str();
    sub->add_option("--out", cmd->out,
                    "Write metrics.json, metrics.csv, confusion.csv and confusion.png here "
                    "(with --coco: coco_eval.json)");
    CLI::Option* coco = sub->add_option(
        "--coco", cmd->coco, "COCO instance ground truth (JSON): mask / box AP and AR as pycocotools' COCOeval");
    CLI::Option* results = sub->add_option("--results", cmd->results,
                                           "COCO results JSON (list of image_id, category_id, score, bbox, segmentation)");
    CLI::Option* iou_type = sub->add_option("--iou-type", cmd->iou_types, "With --coco: segm, bbox or segm,bbox")
                                ->delimiter(',')
                                ->check(CLI::IsMember({"segm", "bbox"}))
                                ->capture_default_str();
    coco->needs(results)->excludes(pred)->excludes(gt)->excludes(split)->excludes(classes);
    results->needs(coco);
    iou_type->needs(coco);
    sub->callback([cmd] { run(*cmd); });
}

}  // namespace sightline::cli
