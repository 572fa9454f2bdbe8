// Demo steps 1-3: scenes with a planted shortcut, the GAP and flatten classifiers, and their
// explanations with the guarantee that holds for each head.
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "demo.hpp"
#include "sightline/explain_job.hpp"
#include "options.hpp"
#include "sightline/data.hpp"
#include "sightline/folders.hpp"
#include "sightline/train.hpp"

namespace sightline::cli::demo {

namespace {

// Each head has its own recipe. The flatten head's Linear layer sees every location (fan-in 64x
// the GAP head's): SGD at the GAP model's lr 0.05 diverges to 0.43 matched accuracy, lr 0.01 or
// AdamW reach 1.00 (docs/demo.md has the measurements).
struct DemoModel {
    std::string name, arch, story;
    OptimizerKind optimizer;
    int64_t quick_epochs, full_epochs;
};

const std::vector<DemoModel> kModels = {
    {"gap", "resnet_gap", "GAP -> Linear head: CAM, Grad-CAM and HiResCAM coincide and are exact.",
     OptimizerKind::kSgd, 3, 6},
    {"flatten", "resnet_flatten",
     "flatten -> Linear head: HiResCAM is exact, Grad-CAM averages the gradient over locations and is not.",
     OptimizerKind::kAdamW, 6, 6},
};

// CAM exists only for GAP heads; the other methods run on both models.
std::vector<std::string> methods_for(const std::string& arch) {
    std::vector<std::string> m = {"hirescam", "gradcam", "gradcam++", "saliency", "guidedgradcam"};
    if (arch == "resnet_gap") m.insert(m.begin(), "cam");
    return m;
}

// The test scenes shown: the first three scenes in their three versions.
std::vector<std::string> shown_test_images(const fs::path& data) {
    std::vector<std::string> ids = read_text_lines(data / "ImageSets" / "Segmentation" / "test.txt");
    ids.resize(std::min<std::size_t>(ids.size(), 9));
    return ids;
}

}  // namespace

std::vector<json> read_metrics(const fs::path& jsonl) {
    std::vector<json> out;
    std::ifstream in(jsonl);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        json j = json::parse(line, nullptr, false);
        if (!j.is_discarded()) out.push_back(j);
    }
    return out;
}

double number(const json& j, const std::string& key) {
    return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : std::nan("");
}

std::string report_path(const fs::path& file, const fs::path& out) {
    return fs::relative(file, out).generic_string();
}

json make_data(const Context& c) {
    SynthOptions scenes;
    scenes.n = c.quick ? 240 : 600;
    scenes.size = 64;
    scenes.spurious = 0.95;
    // Built in staging and swapped in: complete or absent, synced once (not file by file).
    if (!fs::exists(c.scenes() / "dataset.json"))
        build_folder_atomically(c.scenes(), true, [&](const fs::path& dir) { generate_synth(dir, scenes); });
    SynthOptions multi;
    multi.n = c.quick ? 200 : 480;
    multi.size = 64;
    multi.spurious = 0.5;
    multi.multi = true;
    multi.seed = 2;
    if (!fs::exists(c.multi() / "dataset.json"))
        build_folder_atomically(c.multi(), true, [&](const fs::path& dir) { generate_synth(dir, multi); });
    auto count = [](const fs::path& root, const std::string& split) {
        return read_text_lines(root / "ImageSets" / "Segmentation" / (split + ".txt")).size();
    };
    json shown = json::array();
    for (const auto& id : shown_test_images(c.scenes()))
        shown.push_back(report_path(c.scenes() / "JPEGImages" / (id + ".png"), c.out));
    return {{"scenes", {{"train", count(c.scenes(), "train")}, {"test", count(c.scenes(), "test")},
                        {"spurious", scenes.spurious}, {"size", scenes.size}}},
            {"multi", {{"train", count(c.multi(), "train")}, {"val", count(c.multi(), "val")}, {"size", multi.size}}},
            {"examples", shown}};
}

json train_classifiers(const Context& c) {
    json models = json::array();
    for (const auto& m : kModels) {
        const fs::path run = c.out / "models" / m.name;
        if (!fs::exists(run / "model.pt")) {
            TrainOptions t;
            t.data = c.scenes();
            t.out = run;
            t.arch = m.arch;
            t.epochs = c.quick ? m.quick_epochs : m.full_epochs;
            t.optimizer = m.optimizer;
            t.batch = 32;
            t.resume = fs::exists(run / "checkpoint" / "checkpoint.pt");
            train_classifier(t);
        }
        json curves = json::array();
        for (const auto& e : read_metrics(run / "metrics.jsonl"))
            curves.push_back({{"epoch", e["epoch"]}, {"loss", e["loss"]}, {"matched_acc", e["matched_acc"]},
                              {"swapped_acc", e["swapped_acc"]}, {"context_acc", e["context_acc"]}});
        const json& last = curves.empty() ? json::object() : curves.back();
        models.push_back(json{{"name", m.name}, {"arch", m.arch}, {"story", m.story},
                          {"model", report_path(run / "model.pt", c.out)},
                          {"matched_acc", number(last, "matched_acc")}, {"swapped_acc", number(last, "swapped_acc")},
                          {"context_acc", number(last, "context_acc")}, {"curves", curves}});
    }
    return {{"models", models}};
}

json explain_models(const Context& c, const json& classifiers) {
    const fs::path inputs = c.out / "inputs";
    ensure_writable_dir(inputs);
    for (const auto& id : shown_test_images(c.scenes())) {
        fs::path src = c.scenes() / "JPEGImages" / (id + ".png");
        if (!fs::exists(inputs / src.filename())) fs::copy_file(src, inputs / src.filename());
    }
    const auto& names = synth_class_names();
    std::string label_text;
    for (std::size_t i = 1; i < names.size(); ++i) label_text += names[i] + "\n";
    write_file_atomic(c.out / "labels.txt", label_text);

    json models = json::array();
    for (const auto& m : classifiers["models"]) {
        const std::string name = m["name"];
        ExplainJob job;
        job.model = c.out / m["model"].get<std::string>();
        job.methods = methods_for(m["arch"]);
        job.labels = c.out / "labels.txt";
        job.input = inputs;
        job.out = c.out / "maps" / name;
        json ex = run_explain_job(job).summary;
        json model = {{"name", name}, {"methods", job.methods}, {"head", ex["head"]},
                      {"guarantees", json::object()}, {"rows", json::array()}};
        std::map<std::string, json> rows;
        for (const auto& item : ex["items"]) {
            const std::string stem = item["stem"], method = item["method"];
            json& row = rows[stem];
            row["stem"] = stem;
            row["input"] = report_path(item["input"].get<std::string>(), c.out);
            row["predicted"] = item["class_name"];
            row["overlays"][method] = report_path(job.out / item["overlay"].get<std::string>(), c.out);
            if (item.contains("mass_on_unused")) row["mass_on_unused"][method] = item["mass_on_unused"];
            model["guarantees"][method] = item["guarantee"];
        }
        for (auto& [_, row] : rows) model["rows"].push_back(row);
        if (ex.contains("mass_on_unused")) model["mass_on_unused"] = ex["mass_on_unused"];
        models.push_back(model);
    }
    json planted;
    for (const auto& m : classifiers["models"])
        if (m["arch"] == "resnet_flatten")
            planted = planted_model(c, c.out / m["model"].get<std::string>(), inputs, c.out / "labels.txt");
    return {{"models", models}, {"planted", planted}};
}

}  // namespace sightline::cli::demo
