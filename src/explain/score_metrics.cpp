// Faithfulness scores without object masks: deletion / insertion curves (Petsiuk et al. 2018,
// RISE, arXiv:1806.07421), Average Drop / Increase in Confidence (Chattopadhyay et al. 2018,
// as pytorch-grad-cam's CamMultImageConfidenceChange), and ROAD (Rong et al. 2022).
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include "sightline/sanity.hpp"

namespace sightline {

namespace {

using json = nlohmann::json;

// The target's score in each row of x [B,3,H,W].
std::vector<double> target_scores(const Classifier& model, const torch::Tensor& x, const std::vector<int64_t>& targets,
                                  ScoreOutput output) {
    torch::NoGradGuard no_grad;
    torch::Tensor logits = model.forward(x).cpu();  // the scores are read on the host
    torch::Tensor s = output == ScoreOutput::kProbability ? torch::softmax(logits, 1) : logits;
    torch::Tensor t = torch::tensor(targets, torch::kInt64).unsqueeze(1);
    torch::Tensor picked = s.gather(1, t).squeeze(1).to(torch::kFloat64).contiguous();
    return std::vector<double>(picked.data_ptr<double>(), picked.data_ptr<double>() + picked.numel());
}

void check_map(const torch::Tensor& x, const torch::Tensor& map, const std::string& source) {
    if (map.dim() != 2 || map.size(0) != x.size(-2) || map.size(1) != x.size(-1))
        throw Error(fmt::format("{}: map is {} but the image is {}x{}; maps must have the image's size", source,
                                map.dim() == 2 ? fmt::format("{}x{}", map.size(0), map.size(1))
                                               : fmt::format("{}-D", map.dim()),
                                x.size(-2), x.size(-1)));
}

double mean_of(const std::vector<double>& v) {
    return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

}  // namespace

double curve_auc(const std::vector<double>& y) {
    if (y.size() < 2) throw Error("curve_auc: needs at least 2 points");
    double area = 0;
    for (std::size_t i = 0; i + 1 < y.size(); ++i) area += 0.5 * (y[i] + y[i + 1]);
    return area / static_cast<double>(y.size() - 1);
}

std::vector<int64_t> relevance_order(const torch::Tensor& map) {
    torch::Tensor m = map.to(torch::kFloat32).contiguous().reshape({-1});
    const float* v = m.data_ptr<float>();
    std::vector<int64_t> idx(m.numel());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [v](int64_t a, int64_t b) { return v[a] > v[b]; });
    return idx;
}

torch::Tensor blurred(const torch::Tensor& x) {
    torch::Tensor in = x.to(torch::kFloat32).contiguous();
    torch::Tensor out = torch::empty_like(in);
    for (int64_t c = 0; c < in.size(0); ++c) {
        cv::Mat src(static_cast<int>(in.size(1)), static_cast<int>(in.size(2)), CV_32FC1, in[c].data_ptr<float>());
        cv::Mat dst(static_cast<int>(in.size(1)), static_cast<int>(in.size(2)), CV_32FC1, out[c].data_ptr<float>());
        cv::GaussianBlur(src, dst, cv::Size(11, 11), 5.0, 5.0, cv::BORDER_REFLECT_101);
    }
    return out;
}

std::vector<double> perturbation_curve(const Classifier& model, const torch::Tensor& x, const torch::Tensor& baseline,
                                       const torch::Tensor& map, int64_t target, bool insertion, int steps, int batch,
                                       ScoreOutput output, const std::string& source) {
    check_map(x, map, source);
    if (steps < 1) throw UsageError(fmt::format("--steps: must be at least 1 (got {})", steps));
    const int64_t h = x.size(-2), w = x.size(-1), hw = h * w;
    // rank[p] = position of pixel p in the relevance order; step s changes pixels with rank < count_s.
    std::vector<int64_t> order = relevance_order(map);
    torch::Tensor rank = torch::empty({hw}, torch::kInt64);
    for (int64_t i = 0; i < hw; ++i) rank[order[i]] = i;
    rank = rank.reshape({1, 1, h, w});
    const torch::Tensor from = insertion ? baseline : x, to = insertion ? x : baseline;
    std::vector<double> curve;
    for (int start = 0; start <= steps; start += std::max(1, batch)) {
        const int end = std::min(steps + 1, start + std::max(1, batch));
        std::vector<int64_t> counts;
        for (int s = start; s < end; ++s) counts.push_back(static_cast<int64_t>(s) * hw / steps);
        torch::Tensor changed =
            (rank < torch::tensor(counts, torch::kInt64).reshape({-1, 1, 1, 1})).to(torch::kFloat32);
        torch::Tensor inputs = from.unsqueeze(0) * (1 - changed) + to.unsqueeze(0) * changed;
        std::vector<double> s = target_scores(model, inputs, std::vector<int64_t>(counts.size(), target), output);
        curve.insert(curve.end(), s.begin(), s.end());
    }
    return curve;
}

std::vector<double> confidence_change(const Classifier& model, const torch::Tensor& x, const torch::Tensor& maps,
                                      const std::vector<int64_t>& targets, ScoreOutput output) {
    for (int64_t i = 0; i < x.size(0); ++i) check_map(x[i], maps[i], fmt::format("map {}", i));
    std::vector<double> before = target_scores(model, x, targets, output);
    // The normalised input times the map, broadcast over channels (multiply_tensor_with_cam).
    std::vector<double> after = target_scores(model, x * maps.unsqueeze(1), targets, output);
    for (std::size_t i = 0; i < after.size(); ++i) after[i] -= before[i];
    return after;
}

std::vector<double> road_change(const Classifier& model, const torch::Tensor& x, const torch::Tensor& maps,
                                const std::vector<int64_t>& targets, double p, bool most_relevant_first, double noise,
                                torch::Generator generator, ScoreOutput output) {
    std::vector<torch::Tensor> imputed;
    for (int64_t i = 0; i < x.size(0); ++i) {
        check_map(x[i], maps[i], fmt::format("map {}", i));
        // RemoveMostRelevantFirst keeps cam < percentile(cam, p); the least-relevant variant
        // applies the same rule to 1 - cam.
        torch::Tensor m = most_relevant_first ? maps[i] : 1 - maps[i];
        m = m.to(torch::kFloat32).contiguous();
        std::vector<float> v(m.data_ptr<float>(), m.data_ptr<float>() + m.numel());
        const float threshold = static_cast<float>(percentile(v, p));
        imputed.push_back(road_impute(x[i], (m < threshold).to(torch::kFloat32), noise, generator));
    }
    std::vector<double> before = target_scores(model, x, targets, output);
    std::vector<double> after = target_scores(model, torch::stack(imputed), targets, output);
    for (std::size_t i = 0; i < after.size(); ++i) after[i] -= before[i];
    return after;
}

ScoreReport run_score(const ScoreOptions& o, const Progress& progress) {
    if (o.baseline != "blur" && o.baseline != "constant")
        throw UsageError(fmt::format("--baseline: '{}' is not blur or constant", o.baseline));
    if (o.steps < 1) throw UsageError(fmt::format("--steps: must be at least 1 (got {})", o.steps));
    for (double p : o.road_percentiles)
        if (!(p > 0 && p < 100)) throw UsageError(fmt::format("--road-percentiles: {} is not in (0, 100)", p));
    if (o.maps.empty()) {
        if (o.methods.empty()) throw UsageError("--method: give at least one method");
        for (const auto& key : o.methods) find_method(key);
    }
    std::vector<fs::path> inputs = list_inputs(o.input, true);
    if (o.max_images > 0 && static_cast<int>(inputs.size()) > o.max_images) inputs.resize(o.max_images);

    Classifier model = Classifier::load(o.model);
    std::vector<InputItem> items = read_inputs_of_one_size(inputs, o.preprocess);
    std::vector<torch::Tensor> tensors;
    ScoreReport report;
    for (const auto& item : items) {
        tensors.push_back(item.tensor);
        report.images.push_back(item.path.string());
    }
    const torch::Tensor x = torch::cat(tensors);
    const int64_t n = x.size(0);

    // Maps per method [N,H,W] and the class each map explains.
    std::vector<std::string> methods;
    std::vector<torch::Tensor> maps;
    std::vector<std::vector<int64_t>> targets;
    if (!o.maps.empty()) {
        const fs::path summary_path = o.maps / "summary.json";
        json summary = json::parse(read_file(summary_path), nullptr, false);
        if (summary.is_discarded() || !summary.contains("items"))
            throw Error(fmt::format("{}: not a `sightline explain` summary (no \"items\")", summary_path.string()));
        std::map<std::string, std::map<std::string, json>> found;  // method -> stem -> entry (first target)
        for (const auto& e : summary["items"]) found[e.at("method").get<std::string>()].emplace(e.at("stem").get<std::string>(), e);
        for (const auto& [method, by_stem] : found) {
            std::vector<torch::Tensor> per_image;
            std::vector<int64_t> classes;
            for (const auto& item : items) {
                auto it = by_stem.find(item.path.stem().string());
                if (it == by_stem.end())
                    throw Error(fmt::format("{}: no {} map for {}", summary_path.string(), method, item.path.string()));
                const fs::path file = o.maps / it->second.at("map").get<std::string>();
                torch::Tensor m = npy_to_tensor(read_npy(file)).to(torch::kFloat32);
                check_map(item.tensor, m, fmt::format("{} (for {})", file.string(), item.path.string()));
                per_image.push_back(m);
                classes.push_back(it->second.at("class").get<int64_t>());
            }
            methods.push_back(method);
            maps.push_back(torch::stack(per_image));
            targets.push_back(classes);
        }
    } else {
        model.set_layer(o.layer, items.front().tensor);
        Explainer explainer(model, o.explain);
        Explanation ex = explainer.explain(x, TargetSpec{}, o.methods, report.images);
        std::vector<int64_t> top;
        for (int64_t i = 0; i < n; ++i) top.push_back(ex.targets[i][0].item<int64_t>());
        for (const auto& mm : ex.methods) {
            methods.push_back(mm.key);
            maps.push_back(mm.maps.select(1, 0).contiguous());
            targets.push_back(top);
        }
    }

    torch::Generator generator = at::detail::createCPUGenerator(o.seed);
    const auto start_time = std::chrono::steady_clock::now();
    std::size_t done = 0;
    const std::size_t total = methods.size() * static_cast<std::size_t>(n);
    for (std::size_t m = 0; m < methods.size(); ++m) {
        MethodScores s;
        s.method = methods[m];
        auto& per = s.per_image;
        std::vector<double> del_sum(o.steps + 1, 0.0), ins_sum(o.steps + 1, 0.0);
        for (int64_t i = 0; i < n; ++i) {
            torch::Tensor xi = x[i];
            torch::Tensor base = o.baseline == "blur" ? blurred(xi) : torch::full_like(xi, o.fill);
            const std::string source = fmt::format("{} map of {}", methods[m], report.images[i]);
            std::vector<double> del = perturbation_curve(model, xi, base, maps[m][i], targets[m][i], false, o.steps,
                                                         o.batch, o.output, source);
            std::vector<double> ins = perturbation_curve(model, xi, base, maps[m][i], targets[m][i], true, o.steps,
                                                         o.batch, o.output, source);
            report.forwards += 2 * (o.steps + 1);
            per["deletion_auc"].push_back(curve_auc(del));
            per["insertion_auc"].push_back(curve_auc(ins));
            for (int k = 0; k <= o.steps; ++k) {
                del_sum[k] += del[k] / static_cast<double>(n);
                ins_sum[k] += ins[k] / static_cast<double>(n);
            }
            if (progress) progress(++done, total);
        }
        s.deletion_curve = del_sum;
        s.insertion_curve = ins_sum;
        std::vector<double> change = confidence_change(model, x, maps[m], targets[m], o.output);
        std::vector<double> before = target_scores(model, x, targets[m], o.output);
        report.forwards += 2 * n;
        for (int64_t i = 0; i < n; ++i) {
            per["drop"].push_back(std::max(-change[i], 0.0));
            per["increase"].push_back(change[i] > 0 ? 1.0 : 0.0);
            per["drop_percent"].push_back(100.0 * std::max(-change[i], 0.0) / std::max(before[i], 1e-12));
        }
        if (o.road) {
            std::vector<double> morf(n, 0.0), lerf(n, 0.0);
            const double k = static_cast<double>(o.road_percentiles.size());
            for (double p : o.road_percentiles) {
                std::vector<double> a = road_change(model, x, maps[m], targets[m], p, true, o.noise, generator, o.output);
                std::vector<double> b = road_change(model, x, maps[m], targets[m], p, false, o.noise, generator, o.output);
                report.forwards += 4 * n;
                for (int64_t i = 0; i < n; ++i) {
                    morf[i] += a[i] / k;
                    lerf[i] += b[i] / k;
                }
            }
            per["road_morf"] = morf;
            per["road_lerf"] = lerf;
            for (int64_t i = 0; i < n; ++i) per["road_combined"].push_back((lerf[i] - morf[i]) / 2);
        }
        s.deletion_auc = mean_of(per["deletion_auc"]);
        s.insertion_auc = mean_of(per["insertion_auc"]);
        s.average_drop = mean_of(per["drop"]);
        s.increase = mean_of(per["increase"]);
        s.average_drop_percent = mean_of(per["drop_percent"]);
        s.road_morf = mean_of(per["road_morf"]);
        s.road_lerf = mean_of(per["road_lerf"]);
        s.road_combined = mean_of(per["road_combined"]);
        report.methods.push_back(std::move(s));
    }
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
    report.images_per_second = report.seconds > 0 ? static_cast<double>(report.forwards) / report.seconds : 0.0;
    return report;
}

json score_json(const ScoreReport& r) {
    json methods = json::object();
    for (const auto& s : r.methods)
        methods[s.method] = {{"deletion_auc", s.deletion_auc},
                             {"insertion_auc", s.insertion_auc},
                             {"average_drop", s.average_drop},
                             {"increase_in_confidence", s.increase},
                             {"average_drop_percent", s.average_drop_percent},
                             {"road_morf", s.road_morf},
                             {"road_lerf", s.road_lerf},
                             {"road_combined", s.road_combined},
                             {"deletion_curve", s.deletion_curve},
                             {"insertion_curve", s.insertion_curve},
                             {"per_image", s.per_image}};
    return {{"images", r.images},
            {"methods", methods},
            {"forwards", r.forwards},
            {"seconds", r.seconds},
            {"images_per_second", r.images_per_second}};
}

std::string score_table(const ScoreReport& r) {
    std::string out = fmt::format("{:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "method", "del AUC↓",
                                  "ins AUC↑", "drop↓", "drop %↓", "incr↑", "MoRF↓", "LeRF↑", "ROAD↑");
    for (const auto& s : r.methods)
        out += fmt::format("{:<16} {:>9.4f} {:>9.4f} {:>9.4f} {:>9.2f} {:>9.3f} {:>9.4f} {:>9.4f} {:>9.4f}\n", s.method,
                           s.deletion_auc, s.insertion_auc, s.average_drop, s.average_drop_percent, s.increase,
                           s.road_morf, s.road_lerf, s.road_combined);
    out += fmt::format("{} perturbed inputs in {:.1f} s ({:.1f} images/s)\n", r.forwards, r.seconds,
                       r.images_per_second);
    return out;
}

}  // namespace sightline
