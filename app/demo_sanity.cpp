// Demo step 5: sanity checks (Adebayo et al. 2018). Re-initialise the GAP model's blocks from
// the logits down and explain the same scenes after each step: a method whose maps stay the
// same is not explaining this model (Guided Backprop / Guided Grad-CAM behave like edge
// detectors); the Sobel edge map of the image is the reference row.
#include <fmt/format.h>

#include "commands.hpp"
#include "demo.hpp"
#include "model_input_flags.hpp"
#include "options.hpp"
#include "sightline/sanity.hpp"

namespace sightline::cli::demo {

json sanity_checks(const Context& c, const json& classifiers) {
    const json& gap = classifiers["models"][0];
    // The matched test scenes are the inputs.
    const fs::path inputs = c.out / "sanity" / "inputs";
    ensure_writable_dir(inputs);
    int taken = 0;
    for (const auto& id : read_text_lines(c.scenes() / "ImageSets" / "Segmentation" / "test_matched.txt")) {
        if (taken++ == (c.quick ? 4 : 8)) break;
        fs::path src = c.scenes() / "JPEGImages" / (id + ".png");
        if (!fs::exists(inputs / src.filename())) fs::copy_file(src, inputs / src.filename());
    }
    SanityOptions o;
    o.model = c.out / gap["model"].get<std::string>();
    o.input = inputs;
    o.seed = 1;
    const ModelInput input = apply_model_input_flags(ModelInputFlags{}, o.model, o.preprocess, o.explain);
    SanityReport r = run_sanity(o);
    const fs::path dir = c.out / "sanity";
    write_sanity_outputs(r, input.to_json(), dir);

    json steps = json::array();
    for (const auto& st : r.steps)
        if (!st.data && !st.random_logit) steps.push_back(st.name);
    json methods = json::array();
    for (std::size_t m = 0; m < r.methods.size(); ++m) {
        json curve = json::array();  // mean |Spearman| per step, the verdict metric
        json ssim = json::array();
        json random_logit;  // the random-logit test's SSIM between the top-1 and another class's maps
        for (std::size_t s = 0; s < r.steps.size(); ++s) {
            if (r.steps[s].random_logit) random_logit = r.similarity[m][s][2].mean;
            if (r.steps[s].data || r.steps[s].random_logit) continue;
            curve.push_back(r.similarity[m][s][1].mean);
            ssim.push_back(r.similarity[m][s][2].mean);
        }
        json entry = {{"method", r.methods[m]}, {"spearman_abs", curve}, {"ssim", ssim},
                      {"random_logit", random_logit}, {"entropy_rise", r.complexity[m].rise.mean}};
        json tests = json::object();
        for (const TestVerdict& t : r.verdicts[m].tests) tests[t.test] = t.passes;
        entry["tests"] = tests;
        // The Sobel row is the edge-detector reference, not a method under test.
        if (m < r.verdicts.size() && r.methods[m] != "sobel")
            entry["verdict"] = {{"passes", r.verdicts[m].passes}, {"value", r.verdicts[m].value},
                                {"step", r.verdicts[m].step}};
        methods.push_back(entry);
    }
    return {{"model", gap["name"]},      {"images", r.images.size()},
            {"steps", steps},            {"methods", methods},
            {"metric", r.verdict_metric}, {"threshold", r.threshold},
            {"grid", report_path(dir / "sanity.png", c.out)}};
}

}  // namespace sightline::cli::demo
