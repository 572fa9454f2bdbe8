// The demo's report: one self-contained index.html (images as files beside it, plots as inline
// SVG, no network) with a section per step, built from summary.json.
#include <array>
#include <cmath>

#include <fmt/format.h>

#include "demo.hpp"
#include "sightline/report_html.hpp"

namespace sightline::cli::demo {

namespace {

std::string img(const std::string& src, const std::string& alt, const std::string& cls = "tile") {
    return fmt::format("<img class=\"{}\" src=\"{}\" alt=\"{}\">", cls, html_escape(src), html_escape(alt));
}

std::string text(const json& j) { return html_escape(j.is_string() ? j.get<std::string>() : j.dump()); }

std::string data_section(const json& s) {
    const json& d = s["data"];
    std::string h = "<h2 id=\"step1\">1. Scenes with a planted shortcut</h2>";
    h += fmt::format(
        "<p>{} training scenes of {}x{} pixels: boat on water, train on tracks, plane in sky, car on road, "
        "cow on grass, fish on reef. In training, {:.0f}% of objects sit on their own class's context, so the "
        "context alone predicts the class. The {} test images show each scene three times: matched "
        "(own context), swapped (another class's context) and context only (object removed).</p>",
        d["scenes"]["train"].get<int>(), d["scenes"]["size"].get<int>(), d["scenes"]["size"].get<int>(),
        100 * d["scenes"]["spurious"].get<double>(), d["scenes"]["test"].get<int>());
    h += "<div class=\"row\">";
    for (const auto& e : d["examples"]) h += img(e.get<std::string>(), "test scene");
    return h + "</div>";
}

std::string classifier_section(const json& s) {
    std::string h = "<h2 id=\"step2\">2. Two classifiers, two heads</h2>";
    h += "<p>Both are the same ResNet-style backbone; only the head differs, and the head decides what an "
         "explanation can guarantee. Accuracy on the three test versions measures behaviour: a model that "
         "learned \"water means boat\" fails on swapped scenes and still answers on context-only ones.</p>";
    std::vector<std::vector<std::string>> rows;
    std::string plots;
    for (const auto& m : s["classifiers"]["models"]) {
        rows.push_back({text(m["name"]), text(m["arch"]), html_number(number(m, "matched_acc")),
                        html_number(number(m, "swapped_acc")), html_number(number(m, "context_acc"))});
        std::vector<PlotSeries> acc(3), loss(1);
        acc[0].name = "matched";
        acc[1].name = "swapped";
        acc[2].name = "context only";
        loss[0].name = "training loss";
        double max_loss = 0.0;
        for (const auto& e : m["curves"]) {
            double epoch = number(e, "epoch");
            const char* keys[] = {"matched_acc", "swapped_acc", "context_acc"};
            for (int k = 0; k < 3; ++k) {
                acc[k].x.push_back(epoch);
                acc[k].y.push_back(number(e, keys[k]));
            }
            loss[0].x.push_back(epoch);
            loss[0].y.push_back(number(e, "loss"));
            if (std::isfinite(number(e, "loss"))) max_loss = std::max(max_loss, number(e, "loss"));
        }
        if (acc[0].x.empty()) continue;
        PlotAxes a{fmt::format("{} model: test accuracy", m["name"].get<std::string>()), "epoch", "accuracy"};
        PlotAxes l{fmt::format("{} model: loss", m["name"].get<std::string>()), "epoch", "loss", 0.0,
                   max_loss > 0 ? max_loss * 1.05 : 1.0, 300};
        plots += "<div class=\"plot\">" + svg_line_plot(acc, a) + "</div><div class=\"plot\">" +
                 svg_line_plot(loss, l) + "</div>";
    }
    h += html_table({"model", "architecture", "matched", "swapped context", "context only"}, rows, "classifiers");
    return h + "<div class=\"row\">" + plots + "</div>";
}

// The ground-truth case: weights zero on a known region, so the right answer there is 0.
std::string planted_section(const json& p) {
    std::string h = "<h3>Ground truth: a model that cannot see the top half</h3>";
    h += fmt::format(
        "<p>The flatten model again, with its Linear weights set to zero wherever they read {} of the "
        "feature map: whatever the image, those locations cannot change the logit, so the right map is 0 there. "
        "HiResCAM's is 0 exactly (its value at a location is that location's contribution); Grad-CAM's "
        "averaged gradient weighs every location of a channel alike and puts mass there.</p>",
        text(p["region"]));
    std::vector<std::vector<std::string>> shares;
    for (const auto& k : p["methods"]) {
        const std::string key = k;
        shares.push_back({html_escape(key), fmt::format("{:.1f}%", 100 * number(p["mass_in_region"], key))});
    }
    h += html_table({"method", "mass on the region the model cannot see (mean over the scenes)"}, shares,
                    "planted-mass");
    std::vector<std::string> header = {"input", "predicted"};
    for (const auto& k : p["methods"]) header.push_back(html_escape(k.get<std::string>()));
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : p["rows"]) {
        std::vector<std::string> row = {img(r["input"], "input") + "<br>" + text(r["stem"]), text(r["predicted"])};
        for (const auto& k : p["methods"]) {
            const std::string key = k;
            std::string cell = r["overlays"].contains(key) ? img(r["overlays"][key], key) : "";
            if (r["mass_in_region"].contains(key))
                cell += fmt::format("<br>{:.0f}% in the blind half", 100 * r["mass_in_region"][key].get<double>());
            row.push_back(cell);
        }
        rows.push_back(row);
    }
    return h + html_table(header, rows, "maps-planted");
}

std::string explain_section(const json& s) {
    std::string h = "<h2 id=\"step3\">3. Where did each model look?</h2>";
    h += "<p>Model explanation shows the locations the model <em>used</em> for its prediction, even outside the "
         "object. Only CAM and HiResCAM carry a proof on these heads; the page says, per model, which "
         "guarantee holds (checked numerically: the raw HiResCAM map sums to the logit minus the bias). On these "
         "linear heads HiResCAM's raw map is each location's exact contribution to the logit; the last column and "
         "the \"unused\" line under each map give the share of a map's mass on locations whose contribution is "
         "&le; 0, which the model did not use for this class: 0 for HiResCAM by construction and for CAM and "
         "Grad-CAM on the GAP head (the three coincide there); Grad-CAM's on the flatten head is the HiResCAM paper's point.</p>";
    for (const auto& m : s["explain"]["models"]) {
        const std::string name = m["name"];
        h += fmt::format("<h3>{} model</h3><p>Head: {}. Completeness residual of HiResCAM: {:.1e}.</p>",
                         html_escape(name), text(m["head"]["description"]),
                         number(m["head"], "completeness_residual"));
        std::vector<std::vector<std::string>> g;
        const json unused = m.contains("mass_on_unused") ? m["mass_on_unused"] : json::object();
        for (const auto& [method, v] : m["guarantees"].items())
            g.push_back({html_escape(method),
                         fmt::format("<span class=\"{}\">{}</span>", v["holds"].get<bool>() ? "yes" : "no",
                                     v["holds"].get<bool>() ? "holds" : "none"),
                         text(v["statement"]),
                         unused.contains(method) ? fmt::format("{:.1f}%", 100 * number(unused[method], "mean"))
                                                 : "&ndash;"});
        h += html_table({"method", "guarantee", "on this model", "mass where the model's contribution is &le; 0"}, g,
                        "guarantees-" + name);
        std::vector<std::string> header = {"input", "predicted"};
        for (const auto& k : m["methods"]) header.push_back(html_escape(k.get<std::string>()));
        std::vector<std::vector<std::string>> rows;
        for (const auto& r : m["rows"]) {
            std::vector<std::string> row = {img(r["input"], "input") + "<br>" + text(r["stem"]), text(r["predicted"])};
            for (const auto& k : m["methods"]) {
                const std::string key = k;
                std::string cell = r["overlays"].contains(key) ? img(r["overlays"][key], key) : "";
                // The share of this map on locations the model did not use (linear heads only).
                if (r.contains("mass_on_unused") && r["mass_on_unused"].contains(key))
                    cell += fmt::format("<br>{:.0f}% unused", 100 * r["mass_on_unused"][key].get<double>());
                row.push_back(cell);
            }
            rows.push_back(row);
        }
        h += html_table(header, rows, "maps-" + name);
    }
    if (s["explain"].contains("planted") && s["explain"]["planted"].is_object()) h += planted_section(s["explain"]["planted"]);
    return h;
}

std::string audit_section(const json& s) {
    std::string h = "<h2 id=\"step4\">4. Audit: does the model use the object?</h2>";
    h += "<p>A faithful map shows what the <em>model</em> used, so comparing it with the object and context masks "
         "audits the model, not the explanation method. Per class: the share of positive HiResCAM mass on the "
         "object and on the context and the ratio of their concentrations (mass share / area share). A coarse map "
         "spreads mass over a small object even when the model ignores it, so the ratio is placed between the "
         "ratios of a pure context user's and a pure object user's map at the same resolution (position 0 to 1; "
         "the object counts as used from 0.6, the context up to 0.4). Next to it, behaviour: accuracy on "
         "matched, swapped-context and context-only scenes.</p>";
    for (const auto& m : s["audit"]["models"]) {
        const std::string name = m["name"];
        h += fmt::format("<h3>{} model ({}{})</h3>", html_escape(name), text(m["method"]),
                         m["trustworthy"].get<bool>() ? ", faithful on this head" : ", NOT trustworthy here");
        std::vector<std::vector<std::string>> rows;
        std::vector<std::string> cats;
        std::vector<std::vector<double>> bars(3);
        auto row = [&](const json& c) {
            const json& b = c["behaviour"];
            auto acc = [&](const char* v) { return b.contains(v) ? number(b[v], "accuracy") : std::nan(""); };
            rows.push_back({text(c["name"]), text(c["verdict"]), html_number(number(c, "object_mass")),
                            html_number(number(c, "context_mass")), html_number(number(c, "ratio"), 2),
                            html_number(number(c, "position"), 2), html_number(acc("matched")), html_number(acc("swapped")), html_number(acc("context"))});
            return std::array<double, 3>{number(c, "context_mass"), acc("swapped"), acc("context")};
        };
        for (const auto& c : m["classes"]) {
            auto v = row(c);
            cats.push_back(c["name"]);
            for (int k = 0; k < 3; ++k) bars[k].push_back(v[k]);
        }
        row(m["overall"]);
        h += html_table({"class", "verdict", "mass on object", "mass on context", "concentration ratio",
                         "position", "acc. matched", "acc. swapped", "acc. context only"},
                        rows, "audit-" + name);
        if (!cats.empty())
            h += "<div class=\"plot\">" +
                 svg_bar_chart(cats, {"HiResCAM mass on context", "accuracy, swapped", "accuracy, context only"}, bars,
                               PlotAxes{fmt::format("{} model: explanation mass on context vs behaviour", name),
                                        "class", "share", 0.0, 1.0, 640, 260}) +
                 "</div>";
    }
    return h;
}

std::string sanity_section(const json& s) {
    const json& r = s["sanity"];
    std::string h = "<h2 id=\"step5\">5. Sanity check: do the maps depend on the model?</h2>";
    h += fmt::format(
        "<p>The {} model's blocks are re-initialised from the logits downward, one more at each step, and the same "
        "{} scenes explained again. A method that explains the model must change: its maps' rank correlation "
        "with the original (mean |Spearman|) falls. A method passes when that value is below {} once the logits "
        "layer alone is random (the first column): the model then computes another function of the same features, "
        "so a map that still looks the same is explained by the image and the architecture, as an edge detector's "
        "would be (the Sobel row is an edge detector, the reference). Two more tests with rules of their own "
        "(docs/sanity.md): the random logit (Sixt et al. 2020; the maps of a random other class must differ, "
        "SSIM below the same threshold) and efficient MPRT (Hedstr&ouml;m et al. 2023; the maps' entropy must "
        "rise once every block is random).</p>",
        text(r["model"]), r["images"].get<int>(), html_number(number(r, "threshold"), 2));
    std::vector<std::string> header = {"method", "verdict", "random logit (SSIM)", "entropy rise"};
    std::vector<double> xs;
    int step_index = 1;
    for (const auto& st : r["steps"]) {
        header.push_back(text(st));
        xs.push_back(step_index++);
    }
    std::vector<std::vector<std::string>> rows;
    std::vector<PlotSeries> curves;
    for (const auto& m : r["methods"]) {
        std::vector<std::string> row = {text(m["method"])};
        if (m.contains("verdict"))
            row.push_back(m["verdict"]["passes"].get<bool>() ? "<span class=\"yes\">passes</span>"
                                                              : "<span class=\"no\">fails</span>");
        else
            row.push_back("reference");
        for (const char* test : {"random_logit", "entropy_rise"}) {
            const char* key = std::string(test) == "entropy_rise" ? "emprt" : "random_logit";
            if (!m.contains(test) || !m[test].is_number()) {
                row.push_back("&ndash;");
                continue;
            }
            std::string cell = html_number(m[test].get<double>(), 2);
            if (m.contains("tests") && m["tests"].contains(key))
                cell += m["tests"][key].get<bool>() ? " <span class=\"yes\">passes</span>"
                                                    : " <span class=\"no\">fails</span>";
            row.push_back(cell);
        }
        PlotSeries curve{m["method"].get<std::string>(), {0.0}, {1.0}};
        for (std::size_t k = 0; k < m["spearman_abs"].size(); ++k) {
            double v = m["spearman_abs"][k].is_number() ? m["spearman_abs"][k].get<double>() : std::nan("");
            row.push_back(html_number(v, 2));
            curve.x.push_back(xs[k]);
            curve.y.push_back(v);
        }
        rows.push_back(row);
        curves.push_back(curve);
    }
    h += html_table(header, rows, "sanity");
    h += "<div class=\"plot\">" +
         svg_line_plot(curves, PlotAxes{"mean |Spearman| with the original maps", "blocks randomised (0 = original)",
                                        "|Spearman|", 0.0, 1.0, 640, 280}) +
         "</div>";
    return h + "<p>" + img(r["grid"], "sanity grid", "grid") + "</p>";
}

// Steps 6 and 7: one mIoU table (weak vs full supervision), IoU per class, and the shown scenes.
std::string segmentation_section(const json& s) {
    std::string h;
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> groups;
    std::vector<std::vector<double>> bars;
    std::vector<std::string> classes;
    auto add_bars = [&](const std::string& group, const json& per_class) {
        if (!per_class.is_object() || per_class.empty()) return;
        if (classes.empty())
            for (const auto& [name, _] : per_class.items()) classes.push_back(name);
        std::vector<double> v;
        for (const auto& name : classes)
            v.push_back(per_class.contains(name) && per_class[name].is_number() ? per_class[name].get<double>()
                                                                                : std::nan(""));
        groups.push_back(group);
        bars.push_back(v);
    };
    if (s.contains("wsss")) {
        const json& w = s["wsss"];
        h += "<h2 id=\"step6\">6. Weakly supervised segmentation: image-level labels only</h2>";
        h += "<p>The goal is now every pixel of each object, judged by mIoU against the true masks. CAMs of a "
             "multi-label classifier give seeds, the dense CRF snaps them to image edges, and a segmenter trained on "
             "the pseudo-masks generalises them.</p>";
        for (const auto& r : w["rows"])
            rows.push_back({text(r["name"]), text(r["supervision"]), text(r["split"]), html_number(number(r, "miou"))});
        add_bars("weak: final segmenter", w.value("per_class", json::object()));
    }
    if (s.contains("unet")) {
        const json& u = s["unet"];
        h += "<h2 id=\"step7\">7. Fully supervised segmentation: pixel masks</h2>";
        h += fmt::format("<p>A U-Net trained on the true masks of the same scenes is the upper bound: val mIoU {} "
                         "(best epoch {}).</p>",
                         html_number(number(u, "val_miou")), u.value("best_epoch", 0));
        rows.push_back({"U-Net", "pixel masks", "val", html_number(number(u, "val_miou"))});
        add_bars("full: U-Net", u["per_class"]);
    }
    if (rows.empty()) return h;
    h += html_table({"method", "supervision", "split", "mIoU"}, rows, "segmentation");
    if (!groups.empty())
        h += "<div class=\"plot\">" +
             svg_bar_chart(classes, groups, bars, PlotAxes{"IoU per class (val)", "class", "IoU", 0.0, 1.0, 720, 260}) +
             "</div>";
    // The shown scenes: input, truth, then each model's prediction.
    std::vector<std::string> header = {"input", "ground truth"};
    std::vector<const json*> sources;
    if (s.contains("wsss") && s["wsss"].contains("examples")) {
        header.push_back("weak (final segmenter)");
        sources.push_back(&s["wsss"]["examples"]);
    }
    if (s.contains("unet")) {
        header.push_back("U-Net");
        sources.push_back(&s["unet"]["examples"]);
    }
    std::vector<std::vector<std::string>> grid;
    const json& base = s.contains("unet") ? s["unet"]["examples"] : s["wsss"]["examples"];
    for (std::size_t i = 0; i < base.size(); ++i) {
        std::vector<std::string> row = {img(base[i]["input"], "input"), img(base[i]["truth"], "truth")};
        for (const json* src : sources)
            row.push_back(i < src->size() ? img((*src)[i]["prediction"], "prediction") : "");
        grid.push_back(row);
    }
    return h + html_table(header, grid, "segmentation-examples");
}

std::string summary_section(const json& s) {
    std::string h = "<h2 id=\"step8\">8. Three tasks, judged differently</h2>";
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : s["tasks"])
        rows.push_back({text(r["task"]), text(r["goal"]), text(r["training_data"]), text(r["methods"]),
                        text(r["judged_by"]), text(r["this_run"])});
    return h + html_table({"task", "goal", "training data", "methods", "judged by", "this run"}, rows, "summary");
}

const char* kStyle = R"(<style>
body{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
img.tile{width:96px;height:96px;image-rendering:pixelated}img.grid{max-width:100%}
.row{display:flex;flex-wrap:wrap;gap:8px}.plot{margin:4px}.yes{color:#070}.no{color:#a00}
#image-check{display:none;background:#fdd;padding:8px}
</style>)";

// Marks the page when an image fails to load (a test reads the attribute; a reader sees a note).
const char* kImageCheck = R"(<script>
window.addEventListener('load', function () {
  var broken = Array.prototype.filter.call(document.images, function (i) { return !(i.complete && i.naturalWidth > 0); });
  document.body.setAttribute('data-images', document.images.length);
  document.body.setAttribute('data-broken-images', broken.length);
  if (broken.length) { var p = document.getElementById('image-check'); p.style.display = 'block';
    p.textContent = broken.length + ' image(s) of this report are missing beside index.html.'; }
});
</script>)";

}  // namespace

void write_report(const fs::path& out, const json& s) {
    std::string html = std::string("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                                   "<title>Sightline demo</title>") +
                       kStyle + "</head><body>";
    html += "<h1>Sightline demo: explanation, weak and full supervision</h1><p id=\"image-check\"></p>";
    html += "<p>Three tasks that are often confused. <b>Model explanation</b> shows where the model looked for one "
            "prediction, even outside the object (a boat recognised by its water); it is judged by the "
            "mathematical properties of model and method and by sanity checks, never by overlap with the object. "
            "<b>Weakly supervised segmentation</b> finds every pixel of each object from image-level labels; "
            "<b>fully supervised segmentation</b> learns it from pixel masks. Both are judged by IoU against "
            "ground-truth masks.</p>";
    if (s.contains("data")) html += data_section(s);
    if (s.contains("classifiers")) html += classifier_section(s);
    if (s.contains("explain")) html += explain_section(s);
    if (s.contains("audit")) html += audit_section(s);
    if (s.contains("sanity")) html += sanity_section(s);
    html += segmentation_section(s);
    if (s.contains("tasks")) html += summary_section(s);
    html += kImageCheck;
    html += "</body></html>\n";
    write_file_atomic(out / "index.html", html);
}

json task_summary(const json& s) {
    json rows = json::array();
    std::string explained = "n/a";
    if (s.contains("classifiers") && !s["classifiers"]["models"].empty()) {
        const json& gap = s["classifiers"]["models"][0];
        explained = fmt::format("GAP model: matched {:.2f}, swapped {:.2f}, context only {:.2f}; HiResCAM "
                                "completeness residual {:.1e}",
                                number(gap, "matched_acc"), number(gap, "swapped_acc"), number(gap, "context_acc"),
                                s.contains("explain")
                                    ? number(s["explain"]["models"][0]["head"], "completeness_residual")
                                    : std::nan(""));
    }
    if (s.contains("audit") && !s["audit"]["models"].empty()) {
        const json& a = s["audit"]["models"][0]["overall"];
        explained += fmt::format("; audit (HiResCAM): {} (concentration ratio object/context {:.2f}, position "
                                 "{:.2f} between a pure context user and a pure object user)",
                                 a.value("verdict", std::string("n/a")), number(a, "ratio"), number(a, "position"));
    }
    if (s.contains("sanity")) {
        std::string passed, failed;
        for (const auto& m : s["sanity"]["methods"]) {
            if (!m.contains("verdict")) continue;
            std::string& list = m["verdict"]["passes"].get<bool>() ? passed : failed;
            list += (list.empty() ? "" : ", ") + m["method"].get<std::string>();
        }
        explained += fmt::format("; sanity check passed by {}, failed by {}", passed.empty() ? "none" : passed,
                                 failed.empty() ? "none" : failed);
    }
    rows.push_back({{"task", "model explanation"},
                    {"goal", "show the locations the model used, even outside the object"},
                    {"training_data", "a trained classifier"},
                    {"methods", "CAM, HiResCAM (faithful here), Grad-CAM family, saliency, Guided Grad-CAM"},
                    {"judged_by", "guarantees and sanity checks, never IoU"},
                    {"this_run", explained}});
    rows.push_back({{"task", "weakly supervised segmentation"},
                    {"goal", "every pixel of each object"},
                    {"training_data", "image-level labels"},
                    {"methods", "CAM seeds, dense CRF, Puzzle-CAM, Mixup-CAM, SC-CAM, segmenter on pseudo-masks"},
                    {"judged_by", "mIoU against masks"},
                    {"this_run", s.contains("wsss") ? s["wsss"].value("headline", "n/a") : "not run"}});
    rows.push_back({{"task", "fully supervised segmentation"},
                    {"goal", "every pixel of each object"},
                    {"training_data", "pixel masks"},
                    {"methods", "U-Net"},
                    {"judged_by", "mIoU against masks"},
                    {"this_run", s.contains("unet") ? s["unet"].value("headline", "n/a") : "not run"}});
    return rows;
}

}  // namespace sightline::cli::demo
