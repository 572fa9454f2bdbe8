// `sightline sanity`: explain the same inputs with the trained model, with the model after each
// randomisation step, and with a model trained on shuffled labels; compare the maps.
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <opencv2/imgproc.hpp>

#include "sightline/sanity.hpp"

namespace sightline {

namespace {

using json = nlohmann::json;

// Per method and image: the final map and the signed raw map at input resolution.
struct MapSet {
    std::vector<std::vector<cv::Mat>> final_maps, raw_maps;  // [method][image]
};

cv::Mat to_mat(const torch::Tensor& map) {
    torch::Tensor m = map.to(torch::kFloat32).contiguous();
    return cv::Mat(static_cast<int>(m.size(0)), static_cast<int>(m.size(1)), CV_32FC1, m.data_ptr<float>()).clone();
}

// Explains every image for its fixed target class: images are grouped by class so that one
// explain() call (kIndex target) covers a batch.
MapSet explain_all(const Classifier& model, const ExplainOptions& options, const torch::Tensor& x,
                   const std::vector<int64_t>& targets, const std::vector<std::string>& methods,
                   const std::vector<std::string>& sources, int batch) {
    const int64_t n = x.size(0), height = x.size(2), width = x.size(3);
    MapSet out;
    out.final_maps.assign(methods.size(), std::vector<cv::Mat>(n));
    out.raw_maps.assign(methods.size(), std::vector<cv::Mat>(n));
    std::map<int64_t, std::vector<int64_t>> by_class;
    for (int64_t i = 0; i < n; ++i) by_class[targets[i]].push_back(i);
    Explainer explainer(model, options);
    for (const auto& [cls, members] : by_class) {
        for (std::size_t start = 0; start < members.size(); start += std::max(1, batch)) {
            std::size_t end = std::min(members.size(), start + std::max(1, batch));
            std::vector<int64_t> idx(members.begin() + start, members.begin() + end);
            std::vector<std::string> names;
            for (int64_t i : idx) names.push_back(sources[i]);
            torch::Tensor xb = x.index_select(0, torch::tensor(idx));
            TargetSpec spec;
            spec.kind = TargetSpec::kIndex;
            spec.index = cls;
            Explanation ex = explainer.explain(xb, spec, methods, names);
            for (std::size_t m = 0; m < methods.size(); ++m) {
                torch::Tensor raw = ex.methods[m].raw.select(1, 0).unsqueeze(1).to(torch::kFloat32);
                if (raw.size(2) != height || raw.size(3) != width)
                    raw = torch::nn::functional::interpolate(
                        raw, torch::nn::functional::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{height, width})
                                 .mode(torch::kBilinear)
                                 .align_corners(false));
                for (std::size_t j = 0; j < idx.size(); ++j) {
                    out.final_maps[m][idx[j]] = to_mat(ex.methods[m].maps[j][0]);
                    out.raw_maps[m][idx[j]] = to_mat(raw[j][0]);
                }
            }
        }
    }
    return out;
}

SimilarityStats summarise(std::vector<double> v) {
    SimilarityStats s;
    s.per_image = std::move(v);
    const double n = static_cast<double>(s.per_image.size());
    for (double x : s.per_image) s.mean += x / n;
    for (double x : s.per_image) s.std += (x - s.mean) * (x - s.mean);
    s.std = n > 1 ? std::sqrt(s.std / (n - 1)) : 0.0;
    return s;
}

// The four metrics of one method between two map sets, per image.
std::array<SimilarityStats, 4> compare(const std::vector<cv::Mat>& final_a, const std::vector<cv::Mat>& raw_a,
                                       const std::vector<cv::Mat>& final_b, const std::vector<cv::Mat>& raw_b) {
    std::array<std::vector<double>, 4> v;
    for (std::size_t i = 0; i < final_a.size(); ++i) {
        v[0].push_back(spearman(raw_a[i], raw_b[i]));                     // diverging (signed) maps
        v[1].push_back(spearman(cv::abs(raw_a[i]), cv::abs(raw_b[i])));  // magnitudes
        v[2].push_back(ssim(final_a[i], final_b[i]));
        v[3].push_back(hog_pearson(final_a[i], final_b[i]));
    }
    return {summarise(v[0]), summarise(v[1]), summarise(v[2]), summarise(v[3])};
}

int metric_index(const std::string& name) {
    for (std::size_t i = 0; i < kSimilarityMetrics.size(); ++i)
        if (name == kSimilarityMetrics[i]) return static_cast<int>(i);
    throw UsageError(fmt::format("--verdict-metric: unknown metric '{}'; choose from: spearman, spearman_abs, "
                                 "ssim, hog",
                                 name));
}

// The model's parameters and buffers, to undo a randomisation.
struct Snapshot {
    std::vector<std::pair<torch::Tensor, torch::Tensor>> saved;  // live tensor, copy
    explicit Snapshot(const torch::jit::Module& m) {
        for (const auto& p : m.named_parameters(true)) saved.emplace_back(p.value, p.value.detach().clone());
        for (const auto& b : m.named_buffers(true)) saved.emplace_back(b.value, b.value.detach().clone());
    }
    void restore() const {
        torch::NoGradGuard no_grad;
        for (const auto& [live, copy] : saved) live.copy_(copy);
    }
};

// The verdict metric's column; UsageError for an unknown metric or verdict_on.
int check_verdict_rule(const std::string& verdict_metric, const std::string& verdict_on) {
    const int k = metric_index(verdict_metric);
    if (verdict_on != "top" && verdict_on != "curve")
        throw UsageError(fmt::format("--verdict-on: '{}' is not top or curve", verdict_on));
    return k;
}

std::string verdict_rule(const SanityReport& r) {
    if (r.verdict_on == "curve")
        return fmt::format("passes when the {} similarity to the original maps, averaged over images and over the "
                           "model-randomisation steps, is below {}; fails when it stays at or above",
                           r.verdict_metric, r.threshold);
    return fmt::format("passes when the {} similarity to the original maps, averaged over images, is below {} once "
                       "the top block (the logits layer) is re-initialised; fails when it stays at or above",
                       r.verdict_metric, r.threshold);
}

}  // namespace

namespace {

void check_sanity_options(const SanityOptions& o) {
    if (o.methods.empty()) throw UsageError("--method: give at least one method");
    for (const auto& key : o.methods) find_method(key);
    check_verdict_rule(o.verdict_metric, o.verdict_on);
}

// The checks proper, on a loaded model (randomised in place and restored) and its inputs.
SanityReport sanity_checks(Classifier& model, const std::string& model_name, const std::vector<InputItem>& items,
                           Classifier* shuffled, const std::string& shuffled_name, const SanityOptions& o,
                           const Progress& progress, std::chrono::steady_clock::time_point start_time) {
    const std::vector<ParameterBlock> blocks = parameter_blocks(model.module(), o.depth, model_name);
    model.set_layer(o.layer, items.front().tensor);
    if (shuffled) shuffled->set_layer(o.layer, items.front().tensor);

    SanityReport r;
    r.methods = o.methods;
    r.verdict_metric = o.verdict_metric;
    r.verdict_on = o.verdict_on;
    r.threshold = o.threshold;
    r.independent = o.independent;
    r.display = items.front().display.clone();
    std::vector<std::string> sources;
    std::vector<torch::Tensor> tensors;
    for (const auto& item : items) {
        r.images.push_back(item.path.string());
        sources.push_back(item.path.string());
        tensors.push_back(item.tensor);
    }
    torch::Tensor x = torch::cat(tensors);
    {
        torch::NoGradGuard no_grad;
        torch::Tensor top = model.forward(x).argmax(1);
        for (int64_t i = 0; i < x.size(0); ++i) r.targets.push_back(top[i].item<int64_t>());
    }

    // Output side first: cascading adds one more block per step, independent takes one each.
    for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
        SanityStep step;
        step.name = (o.independent || it == blocks.rbegin()) ? it->name : "+" + it->name;
        if (!o.independent && !r.steps.empty()) step.randomised = r.steps.back().randomised;
        step.randomised.push_back(it->name);
        r.steps.push_back(step);
    }
    if (shuffled) r.steps.push_back({"data: " + shuffled_name, {}, true});

    const std::size_t total = 1 + r.steps.size();
    std::size_t done = 0;
    auto tick = [&] {
        if (progress) progress(++done, total);
    };
    const MapSet original = explain_all(model, o.explain, x, r.targets, o.methods, sources, o.batch);
    tick();

    const std::size_t n_methods = o.methods.size();
    r.similarity.assign(n_methods, {});
    r.first_maps.assign(n_methods, {});
    for (std::size_t m = 0; m < n_methods; ++m) r.first_maps[m].push_back(original.final_maps[m][0]);

    const Snapshot snapshot(model.module());
    for (std::size_t s = 0; s < r.steps.size(); ++s) {
        const SanityStep& step = r.steps[s];
        MapSet maps;
        if (step.data) {
            maps = explain_all(*shuffled, o.explain, x, r.targets, o.methods, sources, o.batch);
        } else {
            if (o.independent) snapshot.restore();
            // Cascading: the blocks randomised at earlier steps keep their (seeded) values.
            const std::string& newest = step.randomised.back();
            for (const auto& b : blocks)
                if (b.name == newest) reinitialise(model.module(), b, o.seed);
            maps = explain_all(model, o.explain, x, r.targets, o.methods, sources, o.batch);
        }
        for (std::size_t m = 0; m < n_methods; ++m) {
            r.similarity[m].push_back(
                compare(original.final_maps[m], original.raw_maps[m], maps.final_maps[m], maps.raw_maps[m]));
            r.first_maps[m].push_back(maps.final_maps[m][0]);
        }
        tick();
    }
    snapshot.restore();

    if (o.edge_baseline) {
        // The edge detector ignores the model: its maps are the same at every step.
        std::vector<cv::Mat> edges;
        for (const auto& item : items) edges.push_back(sobel_map(item.display));
        r.methods.push_back("sobel");
        r.similarity.emplace_back();
        r.first_maps.emplace_back();
        for (std::size_t s = 0; s < r.steps.size(); ++s) r.similarity.back().push_back(compare(edges, edges, edges, edges));
        r.first_maps.back().assign(1 + r.steps.size(), edges.front());
    }

    r.verdicts = sanity_verdicts(r, o.verdict_metric, o.verdict_on, o.threshold);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
    return r;
}

}  // namespace

SanityReport run_sanity(const SanityOptions& o, const Progress& progress) {
    const auto start_time = std::chrono::steady_clock::now();
    // Everything that can be checked is checked before any model runs.
    check_sanity_options(o);
    std::vector<fs::path> inputs = list_inputs(o.input, true);
    if (o.max_images > 0 && static_cast<int>(inputs.size()) > o.max_images) inputs.resize(o.max_images);
    if (inputs.size() < 2)
        throw Error(fmt::format("{}: the sanity checks need at least 2 images for their correlation "
                                "statistics (found {})",
                                o.input.string(), inputs.size()));

    Classifier model = Classifier::load(o.model);
    std::vector<InputItem> items = read_inputs_of_one_size(inputs, o.preprocess);
    std::optional<Classifier> shuffled;
    std::string shuffled_name;
    if (!o.random_model.empty()) {
        shuffled.emplace(Classifier::load(o.random_model));
        // The folder too: `train classify` names every model model.pt.
        const fs::path& m = o.random_model;
        shuffled_name = m.has_parent_path() ? (m.parent_path().filename() / m.filename()).string()
                                            : m.filename().string();
    }
    return sanity_checks(model, o.model.string(), items, shuffled ? &*shuffled : nullptr, shuffled_name, o, progress,
                         start_time);
}


SanityReport run_sanity(const torch::jit::Module& model, const std::string& name, const std::vector<InputItem>& items,
                        const SanityOptions& o, const torch::jit::Module* random_model, const Progress& progress) {
    const auto start_time = std::chrono::steady_clock::now();
    check_sanity_options(o);
    if (items.size() < 2)
        throw Error(fmt::format("{}: the sanity checks need at least 2 images for their correlation statistics "
                                "(got {})", name, items.size()));
    for (const InputItem& item : items)
        if (item.tensor.sizes() != items.front().tensor.sizes())
            throw Error(fmt::format("{}: input of shape {} among inputs of shape {}; give inputs of one size",
                                    item.path.string(), fmt::join(item.tensor.sizes(), "x"),
                                    fmt::join(items.front().tensor.sizes(), "x")));
    // Copies: randomisation works on the copy and the caller's modules stay as they are.
    Classifier copy = Classifier::from_module(model.clone(), name);
    std::optional<Classifier> shuffled;
    if (random_model) shuffled.emplace(Classifier::from_module(random_model->clone(), name + " (random_model)"));
    return sanity_checks(copy, name, items, shuffled ? &*shuffled : nullptr, "random_model", o, progress, start_time);
}

// "top" reads the first model step: once the logits layer is random the model computes another
// function of the same features, so a map that explains the model's decision must change
// there; a map that stays the same is explained by the input and the architecture (an edge
// detector's behaviour). "curve" averages every model step (a method that only changes once
// the first layers are re-initialised keeps a high mean, as Guided Backprop in the paper).
std::vector<SanityVerdict> sanity_verdicts(const SanityReport& r, const std::string& verdict_metric,
                                           const std::string& verdict_on, double threshold) {
    const int k = check_verdict_rule(verdict_metric, verdict_on);
    std::vector<SanityVerdict> verdicts;
    for (std::size_t m = 0; m < r.methods.size(); ++m) {
        SanityVerdict v;
        std::size_t model_steps = 0;
        for (std::size_t s = 0; s < r.steps.size(); ++s) {
            const double value = r.similarity[m][s][k].mean;
            if (r.steps[s].data) {
                v.data_value = value;
                v.data_passes = value < threshold;
            } else if (verdict_on == "curve" || model_steps == 0) {
                v.value += value;
                if (model_steps == 0) v.step = r.steps[s].name;
                ++model_steps;
            }
        }
        if (model_steps > 0) v.value /= static_cast<double>(model_steps);
        if (verdict_on == "curve") v.step = fmt::format("mean over {} steps", model_steps);
        v.passes = model_steps > 0 && v.value < threshold;
        verdicts.push_back(v);
    }
    return verdicts;
}

json sanity_json(const SanityReport& r) {
    json steps = json::array();
    for (const auto& s : r.steps) steps.push_back({{"name", s.name}, {"randomised", s.randomised}, {"data", s.data}});
    json methods = json::object();
    const bool has_data = !r.steps.empty() && r.steps.back().data;
    for (std::size_t m = 0; m < r.methods.size(); ++m) {
        json per_step = json::array();
        for (std::size_t s = 0; s < r.steps.size(); ++s) {
            json metrics = json::object();
            for (std::size_t k = 0; k < kSimilarityMetrics.size(); ++k) {
                const SimilarityStats& st = r.similarity[m][s][k];
                metrics[kSimilarityMetrics[k]] = {{"mean", st.mean}, {"std", st.std}, {"per_image", st.per_image}};
            }
            per_step.push_back({{"step", r.steps[s].name}, {"metrics", metrics}});
        }
        const SanityVerdict& v = r.verdicts[m];
        json verdict = {{"passes", v.passes}, {"value", v.value}, {"step", v.step}};
        if (has_data) verdict["data"] = {{"passes", v.data_passes}, {"value", v.data_value}};
        methods[r.methods[m]] = {{"steps", per_step}, {"verdict", verdict}};
    }
    return {{"mode", r.independent ? "independent" : "cascading"},
            {"images", r.images},
            {"targets", r.targets},
            {"steps", steps},
            {"metrics", kSimilarityMetrics},
            {"verdict_rule", verdict_rule(r)},
            {"verdict_on", r.verdict_on},
            {"threshold", r.threshold},
            {"verdict_metric", r.verdict_metric},
            {"methods", methods},
            {"seconds", r.seconds}};
}

std::string sanity_table(const SanityReport& r) {
    std::string out = fmt::format("{:<16} {:<24}", "method", "step");
    for (const char* k : kSimilarityMetrics) out += fmt::format(" {:>15}", k);
    out += "\n";
    for (std::size_t m = 0; m < r.methods.size(); ++m)
        for (std::size_t s = 0; s < r.steps.size(); ++s) {
            out += fmt::format("{:<16} {:<24}", s == 0 ? r.methods[m] : "", r.steps[s].name);
            for (const auto& st : r.similarity[m][s]) out += fmt::format(" {:>7.3f} ± {:<5.3f}", st.mean, st.std);
            out += "\n";
        }
    out += "\nverdict: " + verdict_rule(r) + "\n";
    const bool has_data = !r.steps.empty() && r.steps.back().data;
    for (std::size_t m = 0; m < r.methods.size(); ++m) {
        const SanityVerdict& v = r.verdicts[m];
        out += fmt::format("{:<16} model randomisation: {} ({:.3f}, {})", r.methods[m], v.passes ? "PASSES" : "FAILS",
                           v.value, v.step);
        if (has_data)
            out += fmt::format("; data randomisation: {} ({:.3f})", v.data_passes ? "PASSES" : "FAILS", v.data_value);
        out += "\n";
    }
    return out;
}

}  // namespace sightline
