// sightline demo: the explanation story on embedded synthetic data, one command, resumable.
// Stages: scenes with a planted shortcut -> GAP and flatten classifiers -> explain matched,
// swapped-context and context-only test images -> inspect guarantees -> report.
#include <fstream>
#include <map>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "explain_job.hpp"
#include "options.hpp"
#include "sightline/data.hpp"
#include "sightline/train.hpp"

namespace sightline::cli {

namespace {

using json = nlohmann::json;

struct DemoFlags {
    fs::path out = "demo-out";
    bool quick = false;
    bool force = false;
    int threads = 2;
};

struct DemoModel {
    std::string name, arch, story;
};

const std::vector<DemoModel> kModels = {
    {"gap", "resnet_gap", "GAP -> Linear head: CAM, Grad-CAM and HiResCAM coincide and are exact"},
    {"flatten", "resnet_flatten", "flatten -> Linear head: HiResCAM is exact, Grad-CAM is not"},
};

const std::vector<std::string> kMethods = {"hirescam", "gradcam", "gradcam++", "saliency", "guidedgradcam"};

void stage(int n, const std::string& what) { std::cout << fmt::format("[{}/5] {}\n", n, what) << std::flush; }

double last_metric(const fs::path& metrics, const std::string& key) {
    std::ifstream in(metrics);
    std::string line, last;
    while (std::getline(in, line))
        if (!line.empty()) last = line;
    if (last.empty()) return std::nan("");
    json j = json::parse(last, nullptr, false);
    if (j.is_discarded()) return std::nan("");
    return j.contains(key) && j[key].is_number() ? j[key].get<double>() : std::nan("");
}

std::string html_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else if (c == '&') out += "&amp;";
        else out += c;
    }
    return out;
}

void write_report(const fs::path& out, const json& summary) {
    std::string html = R"(<!doctype html><html><head><meta charset="utf-8"><title>Sightline demo</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
img{width:96px;height:96px;image-rendering:pixelated}.yes{color:#070}.no{color:#a00}</style></head><body>
<h1>Sightline demo: where did the model look?</h1>
<p>Model explanation shows the locations a model <em>used</em> for one prediction, even outside the
object: a boat recognised by its water. The classifiers below were trained on scenes where 95% of
objects sit on their own context, so they can learn the context as a shortcut. Only a method with a
proven guarantee on the model's head (CAM, HiResCAM) shows faithfully what the model used; IoU with the
object mask would measure the <em>model</em>, not the method.</p>
)";
    for (const auto& m : summary["models"]) {
        html += fmt::format("<h2>{} model</h2><p>{}</p>", html_escape(m["name"].get<std::string>()),
                            html_escape(m["story"].get<std::string>()));
        html += "<table><tr><th>validation accuracy</th><th>matched context</th><th>swapped context</th><th>context only</th></tr>";
        html += fmt::format("<tr><td>top-1</td><td>{:.3f}</td><td>{:.3f}</td><td>{:.3f}</td></tr></table>",
                            m["matched_acc"].get<double>(), m["swapped_acc"].get<double>(),
                            m["context_acc"].get<double>());
        html += fmt::format("<p>Head: {} (completeness residual {:.1e}).</p>",
                            html_escape(m["head"]["description"].get<std::string>()),
                            m["head"]["completeness_residual"].get<double>());
        html += "<table><tr><th>method</th><th>guarantee on this model</th></tr>";
        for (const auto& [key, g] : m["guarantees"].items())
            html += fmt::format("<tr><td>{}</td><td class=\"{}\">{}</td></tr>", key, g["holds"].get<bool>() ? "yes" : "no",
                                html_escape(g["statement"].get<std::string>()));
        html += "</table><table><tr><th>input</th><th>predicted</th>";
        for (const auto& k : kMethods) html += "<th>" + k + "</th>";
        html += "</tr>";
        for (const auto& row : m["rows"]) {
            html += fmt::format("<tr><td><img src=\"{}\" alt=\"input\"><br>{}</td><td>{}</td>", row["input"].get<std::string>(),
                                html_escape(row["stem"].get<std::string>()), html_escape(row["predicted"].get<std::string>()));
            for (const auto& k : kMethods)
                html += fmt::format("<td><img src=\"{}\" alt=\"{}\"></td>", row["overlays"][k].get<std::string>(), k);
            html += "</tr>";
        }
        html += "</table>";
    }
    html += "</body></html>\n";
    write_file_atomic(out / "index.html", html);
}

void run(const DemoFlags& f) {
    torch::set_num_threads(f.threads);
    if (f.force) fs::remove_all(f.out);
    ensure_writable_dir(f.out);
    const fs::path data = f.out / "data";

    stage(1, "synthetic scenes with a planted shortcut (boat on water, train on tracks, ...)");
    if (!fs::exists(data / "dataset.json")) {
        SynthOptions synth;
        synth.n = f.quick ? 240 : 600;
        synth.size = 64;
        synth.spurious = 0.95;
        generate_synth(data, synth);
    }

    json summary = {{"models", json::array()}};
    const auto& names = synth_class_names();
    std::vector<std::string> labels(names.begin() + 1, names.end());
    {
        std::string text;
        for (const auto& l : labels) text += l + "\n";
        write_file_atomic(f.out / "labels.txt", text);
    }
    // The first scenes of the test split in their three versions.
    const fs::path inputs = f.out / "inputs";
    ensure_writable_dir(inputs);
    std::vector<std::string> test = read_lines(data / "ImageSets" / "Segmentation" / "test.txt");
    for (std::size_t i = 0; i < std::min<std::size_t>(test.size(), 9); ++i) {
        fs::path src = data / "JPEGImages" / (test[i] + ".png");
        if (!fs::exists(inputs / src.filename())) fs::copy_file(src, inputs / src.filename());
    }

    int step = 2;
    for (const auto& m : kModels) {
        const fs::path run_dir = f.out / "models" / m.name;
        stage(step++, fmt::format("train the {} classifier ({})", m.name, m.arch));
        if (!fs::exists(run_dir / "model.pt")) {
            TrainOptions t;
            t.data = data;
            t.out = run_dir;
            t.arch = m.arch;
            t.epochs = f.quick ? 3 : 6;
            t.batch = 32;
            t.threads = f.threads;
            t.resume = fs::exists(run_dir / "checkpoint");
            train_classifier(t);
        }
        ExplainJob job;
        job.model = run_dir / "model.pt";
        job.methods = kMethods;
        job.labels = f.out / "labels.txt";
        job.input = inputs;
        job.out = f.out / "maps" / m.name;
        job.preprocess.mean = {0.5f, 0.5f, 0.5f};
        job.preprocess.std = {0.5f, 0.5f, 0.5f};
        // The model card says how the model was trained; use its normalisation when present.
        json card = json::parse(read_file(run_dir / "model.json"), nullptr, false);
        if (!card.is_discarded() && card.contains("mean") && card.contains("std")) {
            for (int c = 0; c < 3; ++c) {
                job.preprocess.mean[c] = card["mean"][c].get<float>();
                job.preprocess.std[c] = card["std"][c].get<float>();
            }
        }
        job.quiet = true;
        json ex = run_explain_job(job);
        json model_json = {{"name", m.name}, {"arch", m.arch}, {"story", m.story}, {"head", ex["head"]},
                           {"matched_acc", last_metric(run_dir / "metrics.jsonl", "matched_acc")},
                           {"swapped_acc", last_metric(run_dir / "metrics.jsonl", "swapped_acc")},
                           {"context_acc", last_metric(run_dir / "metrics.jsonl", "context_acc")},
                           {"guarantees", json::object()}, {"rows", json::array()}};
        std::map<std::string, json> rows;
        for (const auto& item : ex["items"]) {
            std::string stem = item["stem"];
            json& row = rows[stem];
            row["stem"] = stem;
            row["input"] = fs::relative(item["input"].get<std::string>(), f.out).string();
            row["predicted"] = item["class_name"];
            row["overlays"][item["method"].get<std::string>()] =
                (fs::path("maps") / m.name / item["overlay"].get<std::string>()).string();
            model_json["guarantees"][item["method"].get<std::string>()] = item["guarantee"];
        }
        for (auto& [_, row] : rows) model_json["rows"].push_back(row);
        summary["models"].push_back(model_json);
    }

    stage(5, "report");
    write_file_atomic(f.out / "summary.json", summary.dump(1));
    write_report(f.out, summary);
    std::cout << fmt::format("report: {}\n", (f.out / "index.html").string());
    for (const auto& m : summary["models"])
        std::cout << fmt::format("  {:<8} val accuracy matched {:.3f}, swapped context {:.3f}, context only {:.3f}; "
                                 "HiResCAM completeness residual {:.1e}\n",
                                 m["name"].get<std::string>(), m["matched_acc"].get<double>(),
                                 m["swapped_acc"].get<double>(), m["context_acc"].get<double>(),
                                 m["head"]["completeness_residual"].get<double>());
}

}  // namespace

void add_demo_command(CLI::App& app) {
    auto flags = std::make_shared<DemoFlags>();
    CLI::App* cmd = app.add_subcommand("demo", "Run the explanation story on embedded synthetic data and write a report");
    cmd->add_option("--out", flags->out, "output folder")->capture_default_str();
    cmd->add_flag("--quick", flags->quick, "smaller data and shorter training (about a minute)");
    cmd->add_flag("--force", flags->force, "start over instead of resuming");
    cmd->add_option("--threads", flags->threads, "LibTorch threads")->capture_default_str();
    cmd->callback([flags] { run(*flags); });
}

}  // namespace sightline::cli
