// Orchestration of `sightline explain`: read inputs in batches, explain, write maps, overlays
// and a per-input record (the resume marker), then summary.json.
#include "sightline/explain_job.hpp"

#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <opencv2/imgproc.hpp>

#include "sightline/input_list.hpp"
#include "sightline/inspect.hpp"
#include "sightline/report.hpp"
#include "sightline/folders.hpp"
#include "sightline/explain_options.hpp"

namespace sightline {

namespace {

using json = nlohmann::json;

std::string file_safe(std::string name) {
    for (char& c : name)
        if (c == '/' || c == '\\' || c == ' ' || c == ':' || c == '*' || c == '?') c = '_';
    return name;
}

json job_signature(const ExplainJob& job, const Preprocess& pre) {
    std::error_code ec;
    auto model_size = fs::file_size(job.model, ec);
    return {{"model", fs::absolute(job.model).string()},
            {"model_bytes", ec ? 0 : model_size},
            {"layer", job.layer},
            {"methods", job.methods},
            {"target", job.target},
            {"size", {pre.height, pre.width}},
            {"mean", pre.mean},
            {"std", pre.std},
            {"raw", job.raw},
            {"overlay", job.overlay},
            {"colormap", job.colormap}};
}

// A class list with one name more than the model has outputs whose first line is the
// background (a dataset's classes.txt): the outputs are the rest. Any other count is an error.
void drop_background_label(std::vector<std::string>& labels, int64_t outputs, const fs::path& file,
                           const std::function<void(const std::string&)>& say) {
    const auto count = static_cast<int64_t>(labels.size());
    if (count == outputs) return;
    if (count == outputs + 1) {
        say(fmt::format("note: {} has {} names for {} outputs; its first line '{}' is taken as the background "
                        "and the rest as the outputs' names",
                        file.string(), count, outputs, labels.front()));
        labels.erase(labels.begin());
        return;
    }
    throw Error(fmt::format("{}: has {} class names but the model has {} classes (give one name per output, "
                            "optionally after a background line)", file.string(), count, outputs));
}

}  // namespace

nlohmann::json mass_on_unused_summary(const nlohmann::json& items) {
    // Summed in item order, so that a merge of shards adds in the order of a single run.
    std::map<std::string, std::pair<double, int>> unused;
    for (const auto& e : items)
        if (e.contains("mass_on_unused")) {
            auto& [sum, n] = unused[e["method"].get<std::string>()];
            sum += e["mass_on_unused"].get<double>();
            ++n;
        }
    json mass = json::object();
    for (const auto& [key, sn] : unused) mass[key] = {{"mean", sn.first / sn.second}, {"maps", sn.second}};
    return mass;
}

namespace {

cv::Mat map_to_mat(const torch::Tensor& map) {
    torch::Tensor m = map.contiguous();
    return cv::Mat(static_cast<int>(m.size(0)), static_cast<int>(m.size(1)), CV_32FC1, m.data_ptr<float>()).clone();
}

}  // namespace

ExplainJobResult run_explain_job(const ExplainJob& job, const ExplainJobCallbacks& callbacks) {
    auto say = [&](const std::string& line) {
        if (callbacks.message) callbacks.message(line);
    };
    // Check everything that can be checked before any work; nothing is created until the
    // first map is written.
    for (const auto& key : job.methods) find_method(key);
    if (job.methods.empty()) throw UsageError("--method: give at least one method");
    validate(job.options);
    if (job.shards < 1 || job.shard < 0 || job.shard >= job.shards)
        throw UsageError(fmt::format("--shard: {}/{} is not a shard (give I/N with 0 <= I < N)", job.shard, job.shards));
    if (job.batch < 1) throw UsageError(fmt::format("--batch: must be at least 1, got {}", job.batch));
    const int colormap = colormap_from_name(job.colormap);
    std::vector<std::string> labels;
    if (!job.labels.empty()) {
        labels = read_text_lines(job.labels);
        if (labels.empty()) throw Error(fmt::format("{}: no class names (the file is empty)", job.labels.string()));
    }
    TargetSpec spec = parse_target(job.target, labels);
    std::vector<fs::path> inputs =
        job.list.empty() ? list_inputs(job.input, true) : list_inputs_named(job.input, job.list, true);
    std::map<std::string, fs::path> stems;
    for (const auto& p : inputs) {
        auto [it, fresh] = stems.emplace(p.stem().string(), p);
        if (!fresh)
            throw UsageError(fmt::format("{}: same file stem as {}; outputs would collide", p.string(),
                                         it->second.string()));
    }
    check_writable_dir(job.out);
    const fs::path records = job.out / ".sightline" / "explain";

    Classifier model = Classifier::load(job.model);
    const ModelInput input = resolve_model_input(model.module(), job.model, job.preprocessing);
    const Preprocess& pre = input.preprocess;
    InputItem first = read_input(inputs.front(), pre);
    const int64_t classes = check_model_accepts(model, first.tensor).size(1);
    model.set_layer(job.layer, first.tensor);
    ExplainOptions options = job.options;
    options.black = input.black();
    Explainer explainer(model, options);
    const HeadAnalysis& head = explainer.head_analysis(first.tensor);
    if (!labels.empty()) {
        drop_background_label(labels, classes, job.labels, say);
        // The target may name a class; look it up in the list as it is now.
        spec = parse_target(job.target, labels);
    }

    const json signature = job_signature(job, pre);
    auto record_path = [&](const fs::path& input) { return records / (input.stem().string() + ".json"); };
    // Batches never cross a block of `batch` consecutive inputs, and a shard takes every N-th
    // block: each map is computed in the same batch as in a single run, so shards merge into
    // a single run's output bit for bit (the head is always analysed on the first input).
    std::map<fs::path, std::size_t> input_index;
    for (std::size_t i = 0; i < inputs.size(); ++i) input_index[inputs[i]] = i;
    const auto block_of = [&](const fs::path& p) { return input_index.at(p) / static_cast<std::size_t>(job.batch); };
    const std::size_t all_inputs = inputs.size();
    if (job.shards > 1) {
        std::vector<fs::path> mine;
        for (const auto& p : inputs)
            if (block_of(p) % static_cast<std::size_t>(job.shards) == static_cast<std::size_t>(job.shard))
                mine.push_back(p);
        inputs = std::move(mine);
    }
    std::vector<fs::path> pending;
    for (const auto& p : inputs) {
        fs::path r = record_path(p);
        if (fs::exists(r)) {
            json rec = json::parse(read_file(r), nullptr, false);
            if (!rec.is_discarded() && rec.value("signature", json()) == signature) continue;
        }
        pending.push_back(p);
    }
    ExplainJobResult result;
    result.skipped = inputs.size() - pending.size();

    std::size_t done = 0;
    for (std::size_t start = 0; start < pending.size();) {
        // A batch: consecutive inputs of the same shape, at most job.batch of them.
        std::vector<InputItem> items;
        while (start < pending.size() && static_cast<int>(items.size()) < std::max(1, job.batch)) {
            if (!items.empty() && block_of(pending[start]) != block_of(items.front().path)) break;
            InputItem item = pending[start] == first.path ? first : read_input(pending[start], pre);
            if (!items.empty() && item.tensor.sizes() != items.front().tensor.sizes()) break;
            if (!item.note.empty()) say(fmt::format("{}: {}", item.path.string(), item.note));
            items.push_back(std::move(item));
            ++start;
        }
        std::vector<torch::Tensor> tensors;
        std::vector<std::string> sources;
        for (const auto& item : items) {
            tensors.push_back(item.tensor);
            sources.push_back(item.path.string());
        }
        Explanation ex = explainer.explain(torch::cat(tensors), spec, job.methods, sources);
        torch::Tensor probs = torch::softmax(ex.logits, 1);
        for (std::size_t b = 0; b < items.size(); ++b) {
            const std::string stem = items[b].path.stem().string();
            json entries = json::array();
            for (const MethodMaps& mm : ex.methods) {
                GuaranteeStatus status = guarantee_status(find_method(mm.key), head);
                for (int64_t j = 0; j < ex.targets.size(1); ++j) {
                    int64_t cls = ex.targets[b][j].item<int64_t>();
                    std::string cls_name = labels.empty() ? std::to_string(cls) : labels[cls];
                    std::string base = fmt::format("{}.{}.{}", stem, file_safe(mm.key), file_safe(cls_name));
                    torch::Tensor map = mm.maps[b][j];
                    write_npy(job.out / (base + ".npy"), tensor_to_npy(map));
                    json entry = {{"input", items[b].path.string()},
                                  {"input_index", input_index.at(items[b].path)},
                                  {"stem", stem},
                                  {"method", mm.key},
                                  {"class", cls},
                                  {"class_name", cls_name},
                                  {"logit", ex.logits[b][cls].item<double>()},
                                  {"probability", probs[b][cls].item<double>()},
                                  {"guarantee", {{"holds", status.holds}, {"statement", status.statement}}},
                                  {"completeness_residual", nullptr},
                                  {"seconds_per_image", mm.seconds / items.size()},
                                  {"map", base + ".npy"}};
                    double residual = ex.completeness_residual[b][j].item<double>();
                    if (!std::isnan(residual)) entry["completeness_residual"] = residual;
                    const double unused = mm.mass_on_unused[b][j].item<double>();
                    if (!std::isnan(unused)) entry["mass_on_unused"] = unused;
                    if (job.raw) {
                        write_npy(job.out / (base + ".raw.npy"), tensor_to_npy(mm.raw[b][j]));
                        entry["raw"] = base + ".raw.npy";
                    }
                    if (job.overlay) {
                        cv::Mat picture = overlay_heatmap(items[b].display, map_to_mat(map), colormap);
                        write_image_rgb(job.out / (base + ".png"), picture);
                        entry["overlay"] = base + ".png";
                    }
                    entries.push_back(entry);
                }
            }
            // The record is written last: it marks this input as finished for a rerun.
            write_file_atomic(record_path(items[b].path),
                              json{{"signature", signature}, {"entries", entries}}.dump(1));
            if (callbacks.progress) callbacks.progress(++done, pending.size());
        }
    }
    // Said once, after the work succeeded, so that a failure stays a single line.
    if (!input.note.empty()) say("note: " + input.note);
    if (model.split_kind() == SplitKind::kAutoLayer)
        say(fmt::format("used layer '{}' (the last submodule with a 4-D output); choose another with --layer",
                        model.layer()));
    for (const auto& key : job.methods) {
        GuaranteeStatus status = guarantee_status(find_method(key), head);
        if (!status.holds) say(fmt::format("warning: {}: {}", key, status.statement));
    }

    json summary = {{"model", job.model.string()},
                    {"layer", model.layer()},
                    {"split", model.split_description()},
                    {"head", head_analysis_json(head)},
                    {"target", job.target},
                    {"preprocessing", input.to_json()},
                    {"inputs", inputs.size()},
                    {"items", json::array()}};
    for (const auto& p : inputs) {
        json rec = json::parse(read_file(record_path(p)));
        for (auto& e : rec["entries"]) summary["items"].push_back(e);
    }
    // Per method: the mean share of its mass where the model's exact contribution is <= 0.
    json mass = mass_on_unused_summary(summary["items"]);
    if (!mass.empty()) summary["mass_on_unused"] = mass;
    if (job.shards > 1)
        summary["shard"] = {{"index", job.shard}, {"count", job.shards}, {"all_inputs", all_inputs},
                            {"batch", job.batch}};
    write_file_atomic(job.out / "summary.json", summary.dump(1));
    result.summary = std::move(summary);
    return result;
}

}  // namespace sightline
