// sightline bench explain: time per image of each method against a plain no-grad forward of
// the same model in the same run (ratios are what we report; absolute times vary).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "options.hpp"
#include "validators.hpp"
#include "sightline/explain.hpp"

namespace sightline::cli {

namespace {

struct BenchFlags {
    std::vector<fs::path> models;
    std::string layer;  // empty: layer4 where the model has one (ResNets), else features
    std::string methods = "gradcam,hirescam,gradcam++,xgradcam,layercam,gradcamelementwise,eigencam";
    std::vector<int64_t> batches = {1, 8};
    int size = 224;
    int repeat = 9;
    int threads = 2;
    fs::path fixtures;
};

template <typename F>
double seconds(F&& f) {
    auto start = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Times `work` and a plain forward alternately, so that a load change on the machine hits
// both; reports the median time of each and the median of the paired ratios.
template <typename F, typename G>
std::tuple<double, double, double> paired(int repeat, F&& forward, G&& work) {
    forward();
    work();  // warm-up: first-call allocations and lazy initialisation
    std::vector<double> tf, tw, ratio;
    for (int i = 0; i < repeat; ++i) {
        tf.push_back(seconds(forward));
        tw.push_back(seconds(work));
        ratio.push_back(tw.back() / tf.back());
    }
    return {median(tf), median(tw), median(ratio)};
}

void bench_model(const BenchFlags& f, const fs::path& path) {
    Classifier model = Classifier::load(path);
    torch::manual_seed(0);
    torch::Tensor probe = torch::randn({1, 3, f.size, f.size});
    std::string layer = f.layer;
    if (layer.empty()) layer = model.module().hasattr("layer4") ? "layer4" : "features";
    model.set_layer(layer, probe);
    std::vector<std::string> methods = split_list(f.methods);
    for (const auto& m : methods) find_method(m);
    for (const int64_t batch : f.batches) {
        torch::Tensor x = torch::randn({batch, 3, f.size, f.size});
        Explainer explainer(model);
        explainer.head_analysis(x.slice(0, 0, 1));
        auto forward = [&] {
            torch::NoGradGuard no_grad;
            model.forward(x);
        };
        std::cout << fmt::format("\n{} at {} batch {} ({}x{}, {} threads)\n", path.filename().string(), layer, batch,
                                 f.size, f.size, torch::get_num_threads());
        std::cout << fmt::format("  {:<22} {:>12} {:>14} {:>10}\n", "method", "ms/image", "forward ms/img", "x forward");
        auto row = [&](const std::string& label, const std::string& target, const std::string& method) {
            TargetSpec spec = parse_target(target, {});
            auto [tf, tw, r] = paired(f.repeat, forward, [&] { explainer.explain(x, spec, {method}); });
            std::cout << fmt::format("  {:<22} {:>12.1f} {:>14.1f} {:>10.3f}\n", label, 1e3 * tw / batch,
                                     1e3 * tf / batch, r);
        };
        for (const auto& m : methods) row(m, "top1", m);
        row("gradcam top-5", "top5", "gradcam");
        row("hirescam top-5", "top5", "hirescam");
    }
}

// Score-CAM and Ablation-CAM on the parity fixture (ResNet-18, 2 images) against the peer's
// time recorded in the fixture manifest on this machine.
void bench_fixture(const BenchFlags& f) {
    std::ifstream in(f.fixtures / "manifest.json");
    if (!in) throw Error(fmt::format("{}: cannot open manifest.json", f.fixtures.string()));
    nlohmann::json manifest = nlohmann::json::parse(in);
    Classifier model = Classifier::load(f.fixtures / "resnet18.pt");
    NpyArray a = read_npy(f.fixtures / "input_3x224x224.npy");
    std::vector<float> values = a.to_float();
    torch::Tensor x = torch::from_blob(values.data(), a.shape, torch::kFloat32).clone();
    model.set_layer("layer4", x.slice(0, 0, 1));
    Explainer explainer(model);
    std::cout << "\nresnet18 fixture, 2 images, top-1 (peer: pytorch-grad-cam 1.5.5, seconds from manifest.json)\n";
    std::cout << fmt::format("  {:<14} {:>10} {:>10} {:>8}\n", "method", "sightline", "peer", "ratio");
    for (auto [key, peer] : {std::pair{"scorecam", "ScoreCAM"}, std::pair{"ablationcam", "AblationCAM"}}) {
        double peer_seconds = 0;
        for (const auto& e : manifest["entries"])
            if (e["model"] == "resnet18" && e["method"] == peer && e["target"] == "top1") peer_seconds = e["seconds"];
        auto start = std::chrono::steady_clock::now();
        explainer.explain(x, parse_target("top1", {}), {key});
        double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::cout << fmt::format("  {:<14} {:>9.2f}s {:>9.2f}s {:>8.3f}\n", key, t, peer_seconds, t / peer_seconds);
    }
}

}  // namespace

void add_bench_command(CLI::App& app) {
    CLI::App* bench = app.add_subcommand("bench", "Benchmarks (ratios against a baseline measured in the same run)");
    bench->require_subcommand(1);
    auto flags = std::make_shared<BenchFlags>();
    CLI::App* cmd = bench->add_subcommand("explain", "Explanation time per method / plain forward time");
    cmd->add_option("--model", flags->models, "TorchScript classifiers (tools/make_bench_models.py makes ResNet-18/50, VGG-16, DenseNet-121, MobileNet-v2)");
    cmd->add_option("--layer", flags->layer, "target layer (default: layer4 where the model has one, else features)");
    cmd->add_option("--methods", flags->methods, "methods to time")->capture_default_str();
    add_number_list(cmd, "--batch", flags->batches, 0, "batch sizes")->check(at_least(1))->capture_default_str();
    cmd->add_option("--size", flags->size, "input side")->capture_default_str();
    cmd->add_option("--repeat", flags->repeat, "timed repetitions (medians of paired forward/method runs)")->capture_default_str();
    cmd->add_option("--threads", flags->threads, "LibTorch threads")->capture_default_str();
    cmd->add_option("--fixtures", flags->fixtures, "pytorch-grad-cam fixture folder: also time Score-CAM and "
                                                   "Ablation-CAM against the peer's recorded time");
    cmd->callback([flags] {
        torch::set_num_threads(flags->threads);
        std::cout << fmt::format("allocator: {}\n", std::getenv("SIGHTLINE_GLIBC_MALLOC")
                                                        ? "glibc defaults (SIGHTLINE_GLIBC_MALLOC set)"
                                                        : "large blocks kept (mallopt at start-up)");
        for (const auto& m : flags->models) bench_model(*flags, m);
        if (!flags->fixtures.empty()) bench_fixture(*flags);
    });
}

}  // namespace sightline::cli
