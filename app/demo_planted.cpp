// Demo step 3, the ground-truth case: the flatten model with its Linear weights set to zero on
// the top half of the feature map. The model then provably ignores those locations, so a
// faithful map must be exactly 0 there (HiResCAM is), whatever the image; Grad-CAM's averaged
// gradient still puts mass there.
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "demo.hpp"
#include "sightline/explain_job.hpp"
#include "sightline/folders.hpp"
#include "sightline/model.hpp"
#include "sightline/tensor_io.hpp"

namespace sightline::cli::demo {

namespace {

// Copies the flatten model with fc.weight zero wherever it reads the top `rows` rows of the
// feature map. Returns the rows zeroed (half the map's height).
int64_t write_planted_model(const fs::path& flatten, const fs::path& planted, int64_t image_size) {
    const Classifier probe = Classifier::load(flatten);
    const torch::Tensor a = probe.features(torch::zeros({1, 3, image_size, image_size})).activations;
    const int64_t channels = a.size(1), height = a.size(2), width = a.size(3), rows = height / 2;
    torch::jit::Module m = torch::jit::load(flatten.string());
    {
        torch::NoGradGuard no_grad;
        torch::Tensor weight = m.attr("fc").toModule().attr("weight").toTensor();
        if (weight.size(1) != channels * height * width)
            throw Error(fmt::format("{}: fc.weight has {} inputs, the features {}x{}x{}", flatten.string(),
                                    weight.size(1), channels, height, width));
        weight.view({weight.size(0), channels, height, width}).slice(2, 0, rows).zero_();
    }
    std::ostringstream bytes;  // whole or not at all: a killed demo never leaves half a model
    m.save(bytes);
    write_file_atomic(planted, bytes.str());
    return rows;
}

}  // namespace

json planted_model(const Context& c, const fs::path& flatten_model, const fs::path& inputs, const fs::path& labels) {
    const fs::path model = c.out / "models" / "planted" / "model.pt";
    ensure_writable_dir(model.parent_path());
    const int64_t rows = write_planted_model(flatten_model, model, 64);

    ExplainJob job;
    job.model = model;
    job.methods = {"hirescam", "gradcam", "gradcam++"};
    job.labels = labels;
    job.input = inputs;
    job.out = c.out / "maps" / "planted";
    job.raw = true;
    const json ex = run_explain_job(job).summary;

    // Per map: the share of its positive mass on the rows the model cannot see.
    std::map<std::string, std::pair<double, int>> region;
    std::map<std::string, json> shown;
    for (const auto& item : ex["items"]) {
        const std::string stem = item["stem"], method = item["method"];
        const torch::Tensor raw = torch::relu(npy_to_tensor(read_npy(job.out / item["raw"].get<std::string>())));
        const double total = raw.sum().item<double>();
        const double share = total > 0 ? raw.slice(0, 0, rows).sum().item<double>() / total : 0.0;
        auto& [sum, n] = region[method];
        sum += share;
        ++n;
        json& row = shown[stem];
        row["stem"] = stem;
        row["input"] = report_path(item["input"].get<std::string>(), c.out);
        row["predicted"] = item["class_name"];
        row["overlays"][method] = report_path(job.out / item["overlay"].get<std::string>(), c.out);
        row["mass_in_region"][method] = share;
    }
    json mass = json::object();
    for (const auto& [method, sn] : region) mass[method] = sn.first / sn.second;
    json out = {{"name", "planted"},
                {"model", report_path(model, c.out)},
                {"methods", job.methods},
                {"region", fmt::format("the top {} of {} feature rows", rows, 2 * rows)},
                {"mass_in_region", mass},
                {"rows", json::array()}};
    for (auto& [_, row] : shown) out["rows"].push_back(row);
    return out;
}

}  // namespace sightline::cli::demo
