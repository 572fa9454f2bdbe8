// audit_model: explain every labelled class of a dataset with one method and measure where the
// map's mass lies (the statistics are src/evaluate/audit_stats.cpp; this file runs the model).
#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "sightline/audit.hpp"
#include "audit/audit_detail.hpp"
#include "sightline/audit_images.hpp"
#include "sightline/data.hpp"
#include "sightline/explain.hpp"
#include "sightline/model_input.hpp"
#include "sightline/palette.hpp"
#include "sightline/tensor_io.hpp"

namespace sightline {

namespace {

using nlohmann::json;

const char* kWhyNoRanking =
    "--rank-methods: the audit does not rank explanation methods by IoU. IoU of a map with the object "
    "mask measures what the model uses: a faithful method on a model that relies on the context "
    "scores low, and should. Compare methods by their guarantees for this model (sightline inspect) "
    "and by sanity checks, and audit the model with one faithful method (cam or hirescam).";

std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (true) {
        std::size_t end = s.find(',', start);
        out.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return out;
}

// The synthetic scenes' three test versions when present, else val, else the only split.
std::vector<std::string> default_splits(const fs::path& data) {
    const fs::path sets = data / "ImageSets" / "Segmentation";
    std::vector<std::string> versions = {"test_matched", "test_swapped", "test_context"};
    bool all = true;
    for (const auto& v : versions) all = all && fs::exists(sets / (v + ".txt"));
    if (all) return versions;
    if (fs::exists(sets / "val.txt")) return {"val"};
    std::vector<std::string> found;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(sets, ec))
        if (e.path().extension() == ".txt") found.push_back(e.path().stem().string());
    if (found.size() == 1) return found;
    if (found.empty())  // the data, not the command line, is wrong
        throw Error(fmt::format("{}: no split lists (ImageSets/Segmentation/<split>.txt); audit needs a VOC-layout "
                                "dataset with object masks",
                                data.string()));
    std::sort(found.begin(), found.end());
    throw UsageError(fmt::format("{}: no val split; give --split (one or more of: {})", sets.string(),
                                 fmt::join(found, ", ")));
}

// --context: a folder as given, else under the dataset; empty = SegmentationContext/ when present.
fs::path context_folder(const AuditOptions& o) {
    if (o.context_dir.empty()) {
        const fs::path standard = o.data / "SegmentationContext";
        return fs::is_directory(standard) ? standard : fs::path();
    }
    if (fs::is_directory(o.context_dir)) return o.context_dir;
    if (o.context_dir.is_relative() && fs::is_directory(o.data / o.context_dir)) return o.data / o.context_dir;
    throw Error(fmt::format("{}: no such context mask folder (nor under {})", o.context_dir.string(), o.data.string()));
}

// id -> version ("matched", "swapped", "context") from the synthetic scenes' scenes.csv.
std::map<std::string, std::string> read_versions(const fs::path& data) {
    std::map<std::string, std::string> versions;
    const fs::path csv = data / "scenes.csv";
    if (!fs::exists(csv)) return versions;
    const std::string text = read_file(csv);
    std::size_t start = text.find('\n');  // skip the header
    while (start != std::string::npos && start + 1 < text.size()) {
        std::size_t end = text.find('\n', start + 1);
        std::vector<std::string> f = split_commas(text.substr(start + 1, end == std::string::npos ? std::string::npos
                                                                                                 : end - start - 1));
        if (f.size() >= 4 && f[3] != "train") versions[f[0]] = f[3];
        start = end;
    }
    return versions;
}

fs::path image_file(const fs::path& data, const std::string& id) {
    for (const char* ext : {".png", ".jpg", ".jpeg", ".PNG", ".JPG"}) {
        fs::path p = data / "JPEGImages" / (id + ext);
        if (fs::exists(p)) return p;
    }
    return data / "JPEGImages" / id;
}

AuditPreprocessing describe(const ModelInput& in) {
    AuditPreprocessing p;
    p.mean = in.preprocess.mean;
    p.std = in.preprocess.std;
    p.height = in.preprocess.height;
    p.width = in.preprocess.width;
    p.source = in.source;
    p.size_source = in.size_source;
    p.note = in.note;
    return p;
}

json signature(const AuditOptions& o, const Preprocess& pre, const std::vector<std::string>& splits) {
    std::error_code ec;
    auto bytes = fs::file_size(o.model, ec);
    return {{"model", fs::absolute(o.model).string()},
            {"model_bytes", ec ? 0 : bytes},
            {"layer", o.layer},
            {"data", fs::absolute(o.data).string()},
            {"splits", splits},
            {"context", o.context_dir.string()},
            {"target", o.target},
            {"method", o.method},
            {"size", {pre.height, pre.width}},
            {"mean", pre.mean},
            {"std", pre.std},
            {"batch", o.batch},
            {"fixed", o.thresholds.fixed},
            {"grid_steps", o.thresholds.grid_steps},
            {"pointing_tolerance", o.thresholds.pointing_tolerance},
            {"records", 3}};  // record format: 2 added the ideal users' masses, 3 explained_id
}

}  // namespace

namespace detail {

// Cache format of the records of one finished batch (doubles round-trip; NaN as null).
json audit_record_to_json(const AuditRecord& r) {
    auto num = [](double v) { return std::isnan(v) ? json(nullptr) : json(v); };
    json fixed = json::array(), grid = json::array();
    for (double v : r.iou_fixed) fixed.push_back(num(v));
    for (double v : r.iou_grid) grid.push_back(num(v));
    return {{"id", r.id}, {"version", r.version}, {"class_id", r.class_id}, {"explained_id", r.explained_id},
            {"correct", r.correct},
            {"probability", num(r.probability)}, {"has_context", r.has_context}, {"total_mass", num(r.total_mass)},
            {"areas", {num(r.object_area), num(r.context_area), num(r.elsewhere_area)}},
            {"masses", {num(r.object_mass), num(r.context_mass), num(r.elsewhere_mass)}},
            {"iou_fixed", fixed}, {"iou_grid", grid}, {"pointing", r.pointing},
            {"object_user", {num(r.object_user.object), num(r.object_user.reference)}},
            {"context_user", {num(r.context_user.object), num(r.context_user.reference)}}};
}

AuditRecord audit_record_from_json(const json& j) {
    auto num = [](const json& v) { return v.is_null() ? std::nan("") : v.get<double>(); };
    AuditRecord r;
    r.id = j.at("id");
    r.version = j.at("version");
    r.class_id = j.at("class_id");
    r.explained_id = j.at("explained_id");
    r.correct = j.at("correct");
    r.probability = num(j.at("probability"));
    r.has_context = j.at("has_context");
    r.total_mass = num(j.at("total_mass"));
    r.object_area = num(j.at("areas")[0]);
    r.context_area = num(j.at("areas")[1]);
    r.elsewhere_area = num(j.at("areas")[2]);
    r.object_mass = num(j.at("masses")[0]);
    r.context_mass = num(j.at("masses")[1]);
    r.elsewhere_mass = num(j.at("masses")[2]);
    for (const auto& v : j.at("iou_fixed")) r.iou_fixed.push_back(num(v));
    for (const auto& v : j.at("iou_grid")) r.iou_grid.push_back(num(v));
    r.pointing = j.at("pointing");
    r.object_user = {num(j.at("object_user")[0]), num(j.at("object_user")[1])};
    r.context_user = {num(j.at("context_user")[0]), num(j.at("context_user")[1])};
    return r;
}

}  // namespace detail

fs::path audit_batches_dir(const fs::path& out) { return out / ".sightline" / "audit"; }

std::vector<AuditRecord> audit_images(Explainer& explainer, const Classifier& model, const std::string& method,
                                      bool predicted, const AuditThresholds& th, const std::vector<AuditImage>& items) {
    std::vector<AuditRecord> out;
    if (items.empty()) return out;
    std::vector<torch::Tensor> xs;
    for (const AuditImage& it : items) xs.push_back(it.x);
    const torch::Tensor x = torch::cat(xs);
    torch::Tensor logits;
    {
        torch::NoGradGuard no_grad;
        logits = model.forward(x).to(torch::kCPU, torch::kDouble);
    }
    for (const AuditImage& it : items) {
        for (int c : it.labels)
            if (c < 1 || c > logits.size(1))
                throw Error(fmt::format("{}: class id {} is outside the model's {} outputs (ids 1..{}; output = id - 1)",
                                        it.source, c, logits.size(1), logits.size(1)));
        if (!it.context.empty() && it.context.size() != it.mask.size())
            throw Error(fmt::format("{}: context mask is {}x{} but the object mask is {}x{}", it.source,
                                    it.context.cols, it.context.rows, it.mask.cols, it.mask.rows));
    }
    const torch::Tensor softmax = torch::softmax(logits, 1), sigmoid = torch::sigmoid(logits);
    const torch::Tensor top1 = logits.argmax(1);
    // explained class id -> (item, labelled class id) pairs
    std::map<int, std::vector<std::pair<std::size_t, int>>> by_class;
    for (std::size_t i = 0; i < items.size(); ++i)
        for (int c : items[i].labels) {
            const int explained = predicted ? static_cast<int>(top1[static_cast<int64_t>(i)].item<int64_t>()) + 1 : c;
            by_class[explained].emplace_back(i, c);
        }
    std::map<std::pair<std::size_t, int>, AuditRecord> records;
    for (const auto& [e, pairs] : by_class) {
        std::vector<int64_t> index;
        std::vector<std::string> sources;
        for (const auto& [i, c] : pairs) {
            index.push_back(static_cast<int64_t>(i));
            sources.push_back(items[i].source);
        }
        TargetSpec spec;
        spec.kind = TargetSpec::kIndex;
        spec.index = e - 1;
        Explanation ex = explainer.explain(x.index_select(0, torch::tensor(index)), spec, {method}, sources);
        const torch::Tensor raw = ex.methods.at(0).raw.to(torch::kFloat).contiguous();
        for (std::size_t k = 0; k < pairs.size(); ++k) {
            const auto [row, c] = pairs[k];
            const AuditImage& it = items[row];
            torch::Tensor m = raw[static_cast<int64_t>(k)][0].clamp_min(0).contiguous();
            cv::Mat small(static_cast<int>(m.size(0)), static_cast<int>(m.size(1)), CV_32FC1, m.data_ptr<float>());
            cv::Mat map;
            // Bilinear with half-pixel centres, as the methods' own resize to the input.
            cv::resize(small, map, it.mask.size(), 0, 0, cv::INTER_LINEAR);
            AuditRecord r = audit_map(map, it.mask, it.context, c, th, sources[k]);
            audit_ideal_users(r, it.mask, it.context, c, small.size(), sources[k]);
            r.id = it.id;
            r.version = it.version;
            r.explained_id = e;
            const int64_t i = static_cast<int64_t>(row);
            if (it.labels.size() > 1) {  // multi-label image: the class's own sigmoid
                r.probability = sigmoid[i][c - 1].item<double>();
                r.correct = r.probability > 0.5;
            } else {
                r.probability = softmax[i][c - 1].item<double>();
                r.correct = top1[i].item<int64_t>() == c - 1;
            }
            records.emplace(std::make_pair(row, c), std::move(r));
        }
    }
    for (auto& [key, r] : records) out.push_back(std::move(r));  // image order, then class order
    return out;
}

AuditResult audit_model(const AuditOptions& o, const std::function<void(std::size_t, std::size_t)>& progress) {
    // 1. Everything that can be checked before loading anything.
    if (o.rank_methods) throw UsageError(kWhyNoRanking);
    if (o.method.find(',') != std::string::npos)
        throw UsageError(fmt::format("--method {}: the audit takes one method. {}", o.method,
                                     std::string(kWhyNoRanking).substr(std::string("--rank-methods: ").size())));
    const MethodInfo& method = find_method(o.method);
    for (double t : o.thresholds.fixed)
        if (!(t > 0.0 && t < 1.0)) throw UsageError(fmt::format("--thresholds: {} is not in (0, 1)", t));
    if (o.thresholds.grid_steps < 2) throw UsageError("grid steps: need at least 2");
    if (o.thresholds.pointing_tolerance < 0) throw UsageError("--pointing-tolerance: must be >= 0");
    if (o.batch < 1) throw UsageError(fmt::format("--batch {}: must be >= 1", o.batch));
    if (o.shard_count < 1 || o.shard_index < 0 || o.shard_index >= o.shard_count)
        throw UsageError(fmt::format("--shard {}/{}: give I/N with 0 <= I < N", o.shard_index, o.shard_count));
    if (o.shard_count > 1 && o.resume_dir.empty())
        throw UsageError("a sharded audit keeps its batches for the merge: it needs a resume folder");
    if (!fs::is_directory(o.data)) throw Error(fmt::format("{}: no such dataset folder", o.data.string()));
    if (o.target != "label" && o.target != "predicted")
        throw UsageError(fmt::format("--target {}: expected label or predicted", o.target));

    AuditResult result;
    result.model = o.model.string();
    result.method = o.method;
    result.data = o.data.string();
    result.thresholds = o.thresholds;
    result.target = o.target;
    result.splits = o.splits.empty() ? default_splits(o.data) : o.splits;
    std::vector<std::unique_ptr<Dataset>> sets;
    for (const std::string& split : result.splits) sets.push_back(open_dataset(o.data, split));
    result.class_names = sets.front()->class_names();
    const std::map<std::string, std::string> versions = read_versions(o.data);
    const fs::path context_dir = context_folder(o);
    const bool has_context = !context_dir.empty();

    auto read_item = [&](const Dataset& set, std::size_t i, const Preprocess& pre, const std::string& split) {
        Sample sample = set.get(i);
        AuditImage it;
        const fs::path image = image_file(o.data, sample.id);
        it.id = sample.id;
        it.source = image.string();
        it.labels = sample.labels;
        it.mask = sample.mask;
        if (it.mask.empty())
            throw Error(fmt::format("{}: split {} has no object masks (SegmentationClass/<id>.png); the audit "
                                    "compares maps with them", o.data.string(), split));
        if (has_context) {
            const fs::path ctx = context_dir / (it.id + ".png");
            if (!fs::exists(ctx))
                throw Error(fmt::format("{}: no context mask for {} (the folder has them for other images)",
                                        ctx.string(), image.string()));
            it.context = read_index_png(ctx);
            if (it.context.size() != sample.image.size())
                throw Error(fmt::format("{}: context mask is {}x{} but the image {} is {}x{}", ctx.string(),
                                        it.context.cols, it.context.rows, image.string(), sample.image.cols,
                                        sample.image.rows));
        }
        auto v = versions.find(sample.id);
        it.version = v == versions.end() ? "" : v->second;
        it.x = image_to_tensor(sample.image, pre);
        return it;
    };

    // 2. The model, split at the layer, on the first image.
    Classifier model = Classifier::load(o.model);
    const ModelInput input = resolve_model_input(model.module(), o.model, {o.size, o.mean, o.std});
    const Preprocess& pre = input.preprocess;
    result.preprocessing = describe(input);
    AuditImage first = read_item(*sets.front(), 0, pre, result.splits.front());
    check_model_accepts(model, first.x);
    model.set_layer(o.layer, first.x);
    result.layer = model.layer();
    ExplainOptions explain_options;
    explain_options.black = input.black();
    Explainer explainer(model, explain_options);
    const HeadAnalysis& head = explainer.head_analysis(first.x);
    result.head = head.description;
    const GuaranteeStatus status = guarantee_status(method, head);
    result.trustworthy = status.holds;
    result.guarantee = status.statement;
    {
        torch::NoGradGuard no_grad;
        const int64_t outputs = model.forward(first.x).size(1);
        const int64_t classes = static_cast<int64_t>(result.class_names.size()) - 1;
        if (outputs != classes)
            throw Error(fmt::format("{}: the model has {} outputs but {} lists {} object classes (output i = class "
                                    "id i + 1)", o.model.string(), outputs, (o.data / "classes.txt").string(), classes));
    }

    // 3. Batches, each cached when resume_dir is set; a cache of another configuration is dropped.
    const json sig = signature(o, pre, result.splits);
    if (!o.resume_dir.empty()) {
        const fs::path sig_file = o.resume_dir / "signature.json";
        bool same = false;
        if (fs::exists(sig_file)) {
            json old = json::parse(read_file(sig_file), nullptr, false);
            same = !old.is_discarded() && old == sig;
        }
        if (!same) {
            fs::remove_all(o.resume_dir);
            ensure_writable_dir(o.resume_dir);
            write_file_atomic(sig_file, sig.dump(1));
        }
    }
    // Cache files are named after the splits (a split file's stem), numbered when two stems agree.
    std::vector<std::string> cache_names;
    for (std::size_t s = 0; s < result.splits.size(); ++s) {
        std::string name = fs::path(result.splits[s]).stem().string();
        if (std::count(cache_names.begin(), cache_names.end(), name)) name = fmt::format("{}-{}", name, s);
        cache_names.push_back(name);
    }
    // Batches are numbered over all splits; a shard takes every N-th.
    const auto batch_size = static_cast<std::size_t>(o.batch);
    auto mine = [&](std::size_t global_batch) {
        return static_cast<int>(global_batch % static_cast<std::size_t>(o.shard_count)) == o.shard_index;
    };
    std::size_t total = 0, done = 0;
    for (std::size_t s = 0, g = 0; s < sets.size(); ++s)
        for (std::size_t start = 0; start < sets[s]->size(); start += batch_size, ++g)
            if (mine(g)) total += std::min(sets[s]->size(), start + batch_size) - start;
    if (o.shard_count > 1) {
        result.shard.index = o.shard_index;
        result.shard.count = o.shard_count;
        result.shard.batch = o.batch;
        result.shard.batch_files = cache_names;
        for (const auto& set : sets) result.shard.split_images.push_back(set->size());
    }
    std::size_t global_batch = 0;
    for (std::size_t s = 0; s < sets.size(); ++s) {
        const Dataset& set = *sets[s];
        for (std::size_t start = 0, b = 0; start < set.size(); start += batch_size, ++b) {
            if (!mine(global_batch++)) continue;
            const std::size_t end = std::min(set.size(), start + batch_size);
            const fs::path cache = o.resume_dir / fmt::format("{}.{}.json", cache_names[s], b);
            if (!o.resume_dir.empty() && fs::exists(cache)) {
                json j = json::parse(read_file(cache), nullptr, false);
                if (!j.is_discarded()) {
                    for (const auto& r : j.at("records")) result.records.push_back(detail::audit_record_from_json(r));
                    result.unlabelled += j.at("unlabelled").get<std::size_t>();
                    done += end - start;
                    if (progress) progress(done, total);
                    continue;
                }
            }
            std::vector<AuditRecord> records;
            std::size_t unlabelled = 0;
            std::vector<AuditImage> group;  // consecutive images of one input size
            auto flush = [&] {
                for (AuditRecord& r : audit_images(explainer, model, o.method, o.target == "predicted", o.thresholds, group))
                    records.push_back(std::move(r));
                group.clear();
            };
            for (std::size_t i = start; i < end; ++i) {
                AuditImage it = (s == 0 && i == 0) ? first : read_item(set, i, pre, result.splits[s]);
                if (it.labels.empty()) {
                    ++unlabelled;
                    continue;
                }
                if (!group.empty() && group.front().x.sizes() != it.x.sizes()) flush();
                group.push_back(std::move(it));
            }
            flush();
            if (!o.resume_dir.empty()) {
                json j = {{"records", json::array()}, {"unlabelled", unlabelled}};
                for (const AuditRecord& r : records) j["records"].push_back(detail::audit_record_to_json(r));
                write_file_atomic(cache, j.dump());
            }
            for (AuditRecord& r : records) result.records.push_back(std::move(r));
            result.unlabelled += unlabelled;
            done += end - start;
            if (progress) progress(done, total);
        }
    }
    result.images = total;
    result.summary = summarise_audit(result.records, result.class_names, o.thresholds);
    return result;
}

}  // namespace sightline
