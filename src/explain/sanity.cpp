// `sightline sanity`: explain the same inputs with the trained model, with the model after each
// randomisation step, and with a model trained on shuffled labels; compare the maps.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include <ATen/CPUGeneratorImpl.h>
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

// Explains every image for its fixed target class, in blocks of `batch` consecutive images (the
// blocks a shard takes whole), one explain() call per block with a class per image.
MapSet explain_all(const Classifier& model, const ExplainOptions& options, const torch::Tensor& x,
                   const std::vector<int64_t>& targets, const std::vector<std::string>& methods,
                   const std::vector<std::string>& sources, int batch) {
    const int64_t n = x.size(0), height = x.size(2), width = x.size(3), step = std::max(1, batch);
    MapSet out;
    out.final_maps.assign(methods.size(), std::vector<cv::Mat>(n));
    out.raw_maps.assign(methods.size(), std::vector<cv::Mat>(n));
    Explainer explainer(model, options);
    for (int64_t start = 0; start < n; start += step) {
        const int64_t end = std::min(n, start + step);
        TargetSpec spec;
        spec.kind = TargetSpec::kPerImage;
        spec.indices.assign(targets.begin() + start, targets.begin() + end);
        const std::vector<std::string> names(sources.begin() + start, sources.begin() + end);
        Explanation ex = explainer.explain(x.slice(0, start, end), spec, methods, names);
        for (std::size_t m = 0; m < methods.size(); ++m) {
            torch::Tensor raw = ex.methods[m].raw.select(1, 0).unsqueeze(1).to(torch::kFloat32);
            if (raw.size(2) != height || raw.size(3) != width)
                raw = torch::nn::functional::interpolate(
                    raw, torch::nn::functional::InterpolateFuncOptions()
                             .size(std::vector<int64_t>{height, width})
                             .mode(torch::kBilinear)
                             .align_corners(false));
            for (int64_t j = 0; j < end - start; ++j) {
                out.final_maps[m][start + j] = to_mat(ex.methods[m].maps[j][0]);
                out.raw_maps[m][start + j] = to_mat(raw[j][0]);
            }
        }
    }
    return out;
}

// Where this run's images sit in the whole run's list, and how long that list is: a shard draws
// the whole run's random values and keeps its own.
struct Positions {
    std::vector<std::size_t> global;
    std::size_t total = 0;
    torch::Tensor index() const {
        std::vector<int64_t> idx(global.begin(), global.end());
        return torch::tensor(idx, torch::kInt64);
    }
};

// The maps of one model state: `plain` of the inputs as they are and, for smooth MPRT, `smooth`,
// the mean over o.smooth_samples copies: the inputs themselves plus noisy ones whose draws depend
// only on (seed, copy), so every step sees the same noise.
struct StateMaps {
    MapSet plain, smooth;
};

StateMaps explain_state(const Classifier& model, const SanityOptions& o, const torch::Tensor& x,
                        const std::vector<int64_t>& targets, const std::vector<std::string>& sources,
                        const Positions& at) {
    StateMaps s;
    s.plain = explain_all(model, o.explain, x, targets, o.methods, sources, o.batch);
    if (o.smooth_samples < 2) return s;
    s.smooth = s.plain;
    for (auto* set : {&s.smooth.final_maps, &s.smooth.raw_maps})
        for (auto& row : *set)
            for (auto& m : row) m = m.clone();
    const torch::Tensor range = x.amax({1, 2, 3}, true) - x.amin({1, 2, 3}, true);
    for (int k = 0; k + 1 < o.smooth_samples; ++k) {
        at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed * 1000003ull + static_cast<uint64_t>(k) + 17);
        std::vector<int64_t> whole = x.sizes().vec();
        whole[0] = static_cast<int64_t>(at.total);
        const torch::Tensor noise = torch::randn(whole, gen, x.options()).index_select(0, at.index());
        const torch::Tensor noisy = x + noise * (o.smooth_noise * range);
        const MapSet m = explain_all(model, o.explain, noisy, targets, o.methods, sources, o.batch);
        for (std::size_t a = 0; a < m.final_maps.size(); ++a)
            for (std::size_t i = 0; i < m.final_maps[a].size(); ++i) {
                s.smooth.final_maps[a][i] += m.final_maps[a][i];
                s.smooth.raw_maps[a][i] += m.raw_maps[a][i];
            }
    }
    for (auto* set : {&s.smooth.final_maps, &s.smooth.raw_maps})
        for (auto& row : *set)
            for (auto& m : row) m /= static_cast<double>(o.smooth_samples);
    return s;
}

// A uniformly drawn class other than each image's target (Sixt et al.'s random logit): one draw
// per image of the whole run, in its order.
std::vector<int64_t> other_classes(const std::vector<int64_t>& targets, int64_t classes, uint64_t seed,
                                   const Positions& at) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed * 2654435761ull + 42);
    std::vector<int64_t> draws;
    for (std::size_t i = 0; i < at.total; ++i)
        draws.push_back(torch::randint(classes - 1, {1}, gen, torch::kInt64).item<int64_t>());
    std::vector<int64_t> out;
    for (std::size_t i = 0; i < targets.size(); ++i) {
        const int64_t draw = draws.at(at.global[i]), t = targets[i];
        out.push_back(draw >= t ? draw + 1 : draw);  // skip the target itself
    }
    return out;
}

}  // namespace

SimilarityStats similarity_stats(std::vector<double> v) {
    SimilarityStats s;
    s.per_image = std::move(v);
    const double n = static_cast<double>(s.per_image.size());
    for (double x : s.per_image) s.mean += x / n;
    for (double x : s.per_image) s.std += (x - s.mean) * (x - s.mean);
    s.std = n > 1 ? std::sqrt(s.std / (n - 1)) : 0.0;
    return s;
}

ComplexityRise complexity_from_entropies(const std::vector<double>& h0, const std::vector<double>& h1) {
    ComplexityRise c;
    std::vector<double> rise;
    for (std::size_t i = 0; i < h0.size(); ++i) {
        if (h0[i] > 0) rise.push_back((h1[i] - h0[i]) / h0[i]);
        else ++c.constant_maps;
    }
    c.original = similarity_stats(h0);
    c.randomised = similarity_stats(h1);
    c.rise = similarity_stats(rise);
    if (rise.empty()) c.rise.mean = std::numeric_limits<double>::quiet_NaN();
    return c;
}

namespace {

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
    return {similarity_stats(v[0]), similarity_stats(v[1]), similarity_stats(v[2]), similarity_stats(v[3])};
}

// Efficient MPRT of one method from the raw maps of the original and the fully randomised model.
ComplexityRise complexity_rise(const std::vector<cv::Mat>& original, const std::vector<cv::Mat>& randomised,
                               int bins) {
    std::vector<double> h0, h1;
    for (std::size_t i = 0; i < original.size(); ++i) {
        h0.push_back(discrete_entropy(original[i], bins));
        h1.push_back(discrete_entropy(randomised[i], bins));
    }
    return complexity_from_entropies(h0, h1);
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
    if (o.smooth_samples == 1 || o.smooth_samples < 0)
        throw UsageError(fmt::format("--smooth-mprt: give 0 (off) or at least 2 copies (got {})", o.smooth_samples));
    if (!(o.smooth_noise >= 0) || !std::isfinite(o.smooth_noise))
        throw UsageError(fmt::format("--smooth-noise: must be a finite number >= 0 (got {})", o.smooth_noise));
    if (o.entropy_bins < 1) throw UsageError(fmt::format("--entropy-bins: must be at least 1 (got {})", o.entropy_bins));
    if (o.shard_count < 1 || o.shard_index < 0 || o.shard_index >= o.shard_count)
        throw UsageError(fmt::format("--shard {}/{}: give I/N with 0 <= I < N", o.shard_index, o.shard_count));
    for (const auto& key : o.methods) find_method(key);
    check_verdict_rule(o.verdict_metric, o.verdict_on);
}

// The checks proper, on a loaded model (randomised in place and restored) and its inputs.
SanityReport sanity_checks(Classifier& model, const std::string& model_name, const std::vector<InputItem>& items,
                           Classifier* shuffled, const std::string& shuffled_name, const SanityOptions& o,
                           const Positions& at, const Progress& progress,
                           std::chrono::steady_clock::time_point start_time) {
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
    r.shard.inputs = at.total;
    r.shard.image_indices = at.global;
    r.shard.batch = o.batch;
    r.shard.shape = items.front().tensor.sizes().vec();
    int64_t classes = 0;
    {
        // In the blocks of every later model call, so a shard's top-1 classes are the single run's.
        torch::NoGradGuard no_grad;
        const int64_t step = std::max(1, o.batch);
        for (int64_t start = 0; start < x.size(0); start += step) {
            torch::Tensor logits = model.forward(x.slice(0, start, std::min(x.size(0), start + step)));
            classes = logits.size(1);
            torch::Tensor top = logits.argmax(1);
            for (int64_t i = 0; i < top.size(0); ++i) r.targets.push_back(top[i].item<int64_t>());
        }
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
    // A one-logit model has no other class to explain.
    if (o.random_logit && classes >= 2) {
        r.random_targets = other_classes(r.targets, classes, o.seed, at);
        r.steps.push_back({"random logit", {}, false, true});
    }
    r.smooth_samples = o.smooth_samples >= 2 ? o.smooth_samples : 0;
    r.smooth_noise = r.smooth_samples ? o.smooth_noise : 0.0;
    r.entropy_bins = o.entropy_bins;

    // Independent randomisation never reaches the fully random model: one more pass for eMPRT.
    const std::size_t total = 1 + r.steps.size() + (o.independent ? 1 : 0);
    std::size_t done = 0;
    auto tick = [&] {
        if (progress) progress(++done, total);
    };
    const StateMaps original = explain_state(model, o, x, r.targets, sources, at);
    tick();

    const std::size_t n_methods = o.methods.size();
    r.similarity.assign(n_methods, {});
    if (r.smooth_samples) r.smooth_similarity.assign(n_methods, {});
    r.first_maps.assign(n_methods, {});
    for (std::size_t m = 0; m < n_methods; ++m) r.first_maps[m].push_back(original.plain.final_maps[m][0]);

    const Snapshot snapshot(model.module());
    MapSet fully_random;  // raw maps of the model with every block re-initialised
    for (std::size_t s = 0; s < r.steps.size(); ++s) {
        const SanityStep& step = r.steps[s];
        StateMaps maps;
        if (step.data) {
            maps = explain_state(*shuffled, o, x, r.targets, sources, at);
        } else if (step.random_logit) {
            snapshot.restore();
            maps = explain_state(model, o, x, r.random_targets, sources, at);
        } else {
            if (o.independent) snapshot.restore();
            // Cascading: the blocks randomised at earlier steps keep their (seeded) values.
            const std::string& newest = step.randomised.back();
            for (const auto& b : blocks)
                if (b.name == newest) reinitialise(model.module(), b, o.seed);
            maps = explain_state(model, o, x, r.targets, sources, at);
            if (!o.independent) fully_random = maps.plain;  // the last model step has every block
        }
        for (std::size_t m = 0; m < n_methods; ++m) {
            r.similarity[m].push_back(compare(original.plain.final_maps[m], original.plain.raw_maps[m],
                                              maps.plain.final_maps[m], maps.plain.raw_maps[m]));
            if (r.smooth_samples)
                r.smooth_similarity[m].push_back(compare(original.smooth.final_maps[m], original.smooth.raw_maps[m],
                                                         maps.smooth.final_maps[m], maps.smooth.raw_maps[m]));
            r.first_maps[m].push_back(maps.plain.final_maps[m][0]);
        }
        tick();
    }
    if (o.independent) {
        snapshot.restore();
        for (const auto& b : blocks) reinitialise(model.module(), b, o.seed);
        fully_random = explain_all(model, o.explain, x, r.targets, o.methods, sources, o.batch);
        tick();
    }
    snapshot.restore();
    for (std::size_t m = 0; m < n_methods; ++m)
        r.complexity.push_back(complexity_rise(original.plain.raw_maps[m], fully_random.raw_maps[m], o.entropy_bins));

    if (o.edge_baseline) {
        // The edge detector ignores the model: its maps are the same at every step.
        std::vector<cv::Mat> edges;
        for (const auto& item : items) edges.push_back(sobel_map(item.display));
        r.methods.push_back("sobel");
        r.similarity.emplace_back();
        r.first_maps.emplace_back();
        for (std::size_t s = 0; s < r.steps.size(); ++s) r.similarity.back().push_back(compare(edges, edges, edges, edges));
        if (r.smooth_samples) r.smooth_similarity.push_back(r.similarity.back());
        r.first_maps.back().assign(1 + r.steps.size(), edges.front());
        r.complexity.push_back(complexity_rise(edges, edges, o.entropy_bins));
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

    // This shard's blocks of --batch inputs: every N-th from block I.
    Positions at;
    at.total = inputs.size();
    const std::size_t block = static_cast<std::size_t>(std::max(1, o.batch));
    for (std::size_t i = 0; i < inputs.size(); ++i)
        if (static_cast<int>((i / block) % static_cast<std::size_t>(o.shard_count)) == o.shard_index) at.global.push_back(i);
    if (at.global.empty())
        throw UsageError(fmt::format("--shard {}/{}: this shard gets no images: the {} inputs make only {} block(s) "
                                     "of --batch {}; use fewer shards or a smaller --batch",
                                     o.shard_index, o.shard_count, inputs.size(), (inputs.size() + block - 1) / block,
                                     block));
    std::vector<fs::path> mine;
    for (std::size_t i : at.global) mine.push_back(inputs[i]);

    Classifier model = Classifier::load(o.model);
    std::vector<InputItem> items = read_inputs_of_one_size(mine, o.preprocess);
    std::optional<Classifier> shuffled;
    std::string shuffled_name;
    if (!o.random_model.empty()) {
        shuffled.emplace(Classifier::load(o.random_model));
        // The folder too: `train classify` names every model model.pt.
        const fs::path& m = o.random_model;
        shuffled_name = m.has_parent_path() ? (m.parent_path().filename() / m.filename()).string()
                                            : m.filename().string();
    }
    SanityReport r = sanity_checks(model, o.model.string(), items, shuffled ? &*shuffled : nullptr, shuffled_name, o,
                                   at, progress, start_time);
    r.shard.index = o.shard_index;
    r.shard.count = o.shard_count;
    r.shard.model = o.model.string();
    r.shard.input = o.input.string();
    r.shard.seed = o.seed;
    r.shard.random_model = o.random_model.string();
    return r;
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
    if (o.shard_count != 1) throw UsageError("sanity on modules in memory runs whole: shard_count must be 1");
    Positions at;
    at.total = items.size();
    for (std::size_t i = 0; i < items.size(); ++i) at.global.push_back(i);
    return sanity_checks(copy, name, items, shuffled ? &*shuffled : nullptr, "random_model", o, at, progress,
                         start_time);
}

// "top" reads the first model step: once the logits layer is random the model computes another
// function of the same features, so a map that explains the model's decision must change
// there; a map that stays the same is explained by the input and the architecture (an edge
// detector's behaviour). "curve" averages every model step (a method that only changes once
// the first layers are re-initialised keeps a high mean, as Guided Backprop in the paper).
std::vector<SanityVerdict> sanity_verdicts(const SanityReport& r, const std::string& verdict_metric,
                                           const std::string& verdict_on, double threshold) {
    const int k = check_verdict_rule(verdict_metric, verdict_on);
    // The model-randomisation number of one similarity table: its first model step, or the mean
    // over every model step; NaN when there is none.
    auto model_value = [&](const std::vector<std::array<SimilarityStats, 4>>& table, std::string* step_name) {
        double sum = 0;
        std::size_t model_steps = 0;
        for (std::size_t s = 0; s < r.steps.size(); ++s) {
            if (r.steps[s].data || r.steps[s].random_logit) continue;
            if (verdict_on == "top" && model_steps > 0) break;
            if (model_steps == 0 && step_name) *step_name = r.steps[s].name;
            sum += table[s][k].mean;
            ++model_steps;
        }
        if (verdict_on == "curve" && step_name) *step_name = fmt::format("mean over {} steps", model_steps);
        return model_steps ? sum / static_cast<double>(model_steps) : std::numeric_limits<double>::quiet_NaN();
    };
    std::vector<SanityVerdict> verdicts;
    for (std::size_t m = 0; m < r.methods.size(); ++m) {
        SanityVerdict v;
        v.value = model_value(r.similarity[m], &v.step);
        v.passes = v.value < threshold;  // false for NaN
        v.tests.push_back({"mprt", v.value, v.passes});
        for (std::size_t s = 0; s < r.steps.size(); ++s) {
            const double value = r.similarity[m][s][k].mean;
            if (r.steps[s].data) {
                v.data_value = value;
                v.data_passes = value < threshold;
                v.tests.push_back({"data", value, v.data_passes});
            } else if (r.steps[s].random_logit) {
                // Signed by design: another class's map is often close to this one's negative,
                // which a metric of absolute values cannot tell from the same map.
                const double ssim_value = r.similarity[m][s][metric_index(kRandomLogitMetric)].mean;
                v.tests.push_back({"random_logit", ssim_value, ssim_value < threshold});
            }
        }
        if (m < r.smooth_similarity.size() && !r.smooth_similarity[m].empty()) {
            const double value = model_value(r.smooth_similarity[m], nullptr);
            v.tests.push_back({"smooth_mprt", value, value < threshold});
        }
        // eMPRT: the maps of the fully random model must be more complex than the original's.
        if (m < r.complexity.size()) v.tests.push_back({"emprt", r.complexity[m].rise.mean, r.complexity[m].rise.mean > 0});
        verdicts.push_back(v);
    }
    return verdicts;
}

namespace {

json stats_json(const SimilarityStats& st) { return {{"mean", st.mean}, {"std", st.std}, {"per_image", st.per_image}}; }

json steps_json(const SanityReport& r, const std::vector<std::array<SimilarityStats, 4>>& table) {
    json per_step = json::array();
    for (std::size_t s = 0; s < r.steps.size(); ++s) {
        json metrics = json::object();
        for (std::size_t k = 0; k < kSimilarityMetrics.size(); ++k) metrics[kSimilarityMetrics[k]] = stats_json(table[s][k]);
        per_step.push_back({{"step", r.steps[s].name}, {"metrics", metrics}});
    }
    return per_step;
}

bool has_data_step(const SanityReport& r) {
    return std::any_of(r.steps.begin(), r.steps.end(), [](const SanityStep& s) { return s.data; });
}

}  // namespace

std::map<std::string, std::string> sanity_test_rules(const SanityReport& r) {
    const std::string below = fmt::format("{} below {}", r.verdict_metric, r.threshold);
    return {
        {"mprt", verdict_rule(r)},
        {"data", "passes when the " + below + " against the model trained on shuffled labels"},
        {"random_logit", fmt::format("passes when the {} of the final maps of the top-1 class and of a random other "
                                     "class (the original model) is below {}",
                                     kRandomLogitMetric, r.threshold)},
        {"smooth_mprt", "the mprt rule on maps averaged over " + std::to_string(r.smooth_samples) +
                            " copies of each input (noise " + fmt::format("{}", r.smooth_noise) + " of its range)"},
        {"emprt", fmt::format("passes when the entropy of the raw maps ({} bins) rises after every block is "
                              "re-initialised: mean relative rise (H_random - H_original) / H_original above 0",
                              r.entropy_bins)}};
}

json sanity_json(const SanityReport& r) {
    json steps = json::array();
    for (const auto& s : r.steps)
        steps.push_back({{"name", s.name}, {"randomised", s.randomised}, {"data", s.data}, {"random_logit", s.random_logit}});
    json methods = json::object();
    const bool has_data = has_data_step(r);
    for (std::size_t m = 0; m < r.methods.size(); ++m) {
        const SanityVerdict& v = r.verdicts[m];
        json verdict = {{"passes", v.passes}, {"value", v.value}, {"step", v.step}};
        if (has_data) verdict["data"] = {{"passes", v.data_passes}, {"value", v.data_value}};
        json tests = json::object();
        for (const TestVerdict& t : v.tests) tests[t.test] = {{"passes", t.passes}, {"value", t.value}};
        verdict["tests"] = tests;
        json entry = {{"steps", steps_json(r, r.similarity[m])}, {"verdict", verdict}};
        if (m < r.smooth_similarity.size()) entry["smooth_steps"] = steps_json(r, r.smooth_similarity[m]);
        if (m < r.complexity.size()) {
            const ComplexityRise& c = r.complexity[m];
            entry["complexity"] = {{"original_entropy", stats_json(c.original)},
                                   {"randomised_entropy", stats_json(c.randomised)},
                                   {"relative_rise", stats_json(c.rise)},
                                   {"constant_original_maps", c.constant_maps}};
        }
        methods[r.methods[m]] = entry;
    }
    json out = {{"mode", r.independent ? "independent" : "cascading"},
                {"images", r.images},
                {"targets", r.targets},
                {"steps", steps},
                {"metrics", kSimilarityMetrics},
                {"verdict_rule", verdict_rule(r)},
                {"test_rules", sanity_test_rules(r)},
                {"verdict_on", r.verdict_on},
                {"threshold", r.threshold},
                {"verdict_metric", r.verdict_metric},
                {"entropy_bins", r.entropy_bins},
                {"methods", methods},
                {"seconds", r.seconds}};
    if (!r.random_targets.empty()) out["random_targets"] = r.random_targets;
    if (r.smooth_samples) out["smooth"] = {{"samples", r.smooth_samples}, {"noise", r.smooth_noise}};
    if (r.shard.count > 1)
        // What `sightline merge` needs beyond the numbers: where each image goes, the method order
        // (the "methods" object is keyed by name), and what must match across shards.
        out["shard"] = {{"index", r.shard.index}, {"count", r.shard.count},     {"inputs", r.shard.inputs},
                        {"image_indices", r.shard.image_indices},           {"batch", r.shard.batch},
                        {"model", r.shard.model},  {"input", r.shard.input}, {"shape", r.shard.shape},
                        {"seed", r.shard.seed},    {"random_model", r.shard.random_model},
                        {"method_order", r.methods}};
    return out;
}

std::string sanity_table(const SanityReport& r) {
    auto table = [&](const std::vector<std::vector<std::array<SimilarityStats, 4>>>& sim) {
        std::string out = fmt::format("{:<16} {:<24}", "method", "step");
        for (const char* k : kSimilarityMetrics) out += fmt::format(" {:>15}", k);
        out += "\n";
        for (std::size_t m = 0; m < r.methods.size(); ++m)
            for (std::size_t s = 0; s < r.steps.size(); ++s) {
                out += fmt::format("{:<16} {:<24}", s == 0 ? r.methods[m] : "", r.steps[s].name);
                for (const auto& st : sim[m][s]) out += fmt::format(" {:>7.3f} ± {:<5.3f}", st.mean, st.std);
                out += "\n";
            }
        return out;
    };
    std::string out = table(r.similarity);
    if (!r.smooth_similarity.empty())
        out += fmt::format("\nsmooth MPRT: maps averaged over {} copies of each input (noise {})\n", r.smooth_samples,
                           r.smooth_noise) +
               table(r.smooth_similarity);
    if (!r.complexity.empty()) {
        out += fmt::format("\nefficient MPRT: entropy of the raw maps ({} bins), original -> every block random\n",
                           r.entropy_bins);
        for (std::size_t m = 0; m < r.complexity.size(); ++m) {
            const ComplexityRise& c = r.complexity[m];
            out += fmt::format("{:<16} {:.3f} -> {:.3f}   relative rise {:+.3f} ± {:.3f}", r.methods[m], c.original.mean,
                               c.randomised.mean, c.rise.mean, c.rise.std);
            if (c.constant_maps) out += fmt::format(" ({} constant original map(s) left out)", c.constant_maps);
            out += "\n";
        }
    }
    out += "\nverdicts (rules fixed in docs/sanity.md):\n";
    const auto rules = sanity_test_rules(r);
    for (const auto& [test, rule] : rules) {
        const bool ran = !r.verdicts.empty() &&
                         std::any_of(r.verdicts[0].tests.begin(), r.verdicts[0].tests.end(),
                                     [&](const TestVerdict& t) { return t.test == test; });
        if (ran) out += fmt::format("  {}: {}\n", test, rule);
    }
    for (std::size_t m = 0; m < r.methods.size(); ++m) {
        out += fmt::format("{:<16}", r.methods[m]);
        for (const TestVerdict& t : r.verdicts[m].tests)
            out += fmt::format(" {} {} ({:.3f})", t.test, t.passes ? "PASSES" : "FAILS", t.value);
        out += "\n";
    }
    return out;
}

}  // namespace sightline
