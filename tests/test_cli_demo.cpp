// `sightline demo --quick` end to end: stages, resume, summary.json, and the report rendered
// in headless Chromium (all images load, no console messages, key tables present, a
// screenshot saved as build/tests/demo-report.png).
#include <array>
#include <map>
#include <cstdio>
#include <fstream>
#include <regex>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_support.hpp"

using namespace sightline::test;

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs a shell command, returns its exit code; stdout and stderr go to the given files.
int shell(const std::string& command) { return std::system(command.c_str()); }

const char* kChromiumFlags =
    "--headless --no-sandbox --disable-gpu --disable-background-networking --no-first-run "
    "--enable-logging=stderr --v=0 --virtual-time-budget=5000";

void check_stages_and_resume(const fs::path& out) {
    for (const char* key : {"data", "classifiers", "explain", "audit", "sanity", "wsss", "unet"})
        EXPECT_TRUE(fs::exists(out / "stages" / (std::string(key) + ".json"))) << key;
    auto s = nlohmann::json::parse(slurp(out / "summary.json"));
    ASSERT_EQ(s["tasks"].size(), 3u);
    // The shortcut is planted and learned: the GAP model does much worse on swapped contexts.
    // Reproducible across machines: convolutions capped at AVX2, a fixed thread count.
    EXPECT_EQ(s["numerics"]["onednn_max_cpu_isa"], "AVX2");
    EXPECT_EQ(s["numerics"]["threads"], 2);
    const auto& gap = s["classifiers"]["models"][0];
    EXPECT_EQ(gap["name"], "gap");
    EXPECT_GT(gap["matched_acc"].get<double>(), gap["swapped_acc"].get<double>() + 0.3);
    // CAM, HiResCAM and Grad-CAM have a guarantee on the GAP model; Guided Grad-CAM has none.
    const auto& g = s["explain"]["models"][0]["guarantees"];
    EXPECT_TRUE(g["cam"]["holds"].get<bool>());
    EXPECT_TRUE(g["hirescam"]["holds"].get<bool>());
    EXPECT_FALSE(g["guidedgradcam"]["holds"].get<bool>());
    EXPECT_LT(s["explain"]["models"][0]["head"]["completeness_residual"].get<double>(), 1e-3);
    // Mass on locations the model did not use: none for HiResCAM on either head, none for CAM and
    // Grad-CAM on the GAP head (they equal HiResCAM there, up to rounding).
    for (const auto& m : s["explain"]["models"]) {
        ASSERT_TRUE(m.contains("mass_on_unused")) << m["name"];
        EXPECT_EQ(m["mass_on_unused"]["hirescam"]["mean"].get<double>(), 0.0) << m["name"];
    }
    EXPECT_LT(s["explain"]["models"][0]["mass_on_unused"]["gradcam"]["mean"].get<double>(), 1e-4);
    EXPECT_LT(s["explain"]["models"][0]["mass_on_unused"]["cam"]["mean"].get<double>(), 1e-4);
    // The flatten model learns the task with its own recipe, and there Grad-CAM does put mass
    // where the model's exact contribution is <= 0 (the HiResCAM paper's point).
    const auto& flatten = s["classifiers"]["models"][1];
    EXPECT_EQ(flatten["name"], "flatten");
    EXPECT_GE(flatten["matched_acc"].get<double>(), 0.95);
    EXPECT_GT(s["explain"]["models"][1]["mass_on_unused"]["gradcam"]["mean"].get<double>(), 0.0);
    // The planted model cannot see the top half of its feature map: HiResCAM puts exactly nothing
    // there, Grad-CAM does.
    const auto& planted = s["explain"]["planted"]["mass_in_region"];
    EXPECT_EQ(planted["hirescam"].get<double>(), 0.0);
    EXPECT_GT(planted["gradcam"].get<double>(), 0.01);
    // The random-logit and entropy tests ran and have verdicts beside the MPRT one.
    for (const auto& m : s["sanity"]["methods"]) {
        EXPECT_TRUE(m["tests"].contains("random_logit")) << m["method"];
        EXPECT_TRUE(m["tests"].contains("emprt")) << m["method"];
    }
    // The audit uses a faithful method on both heads.
    for (const auto& m : s["audit"]["models"]) EXPECT_TRUE(m["trustworthy"].get<bool>()) << m["name"];
    // Sanity: Grad-CAM's and HiResCAM's maps change with the weights, Guided Backprop's and Guided
    // Grad-CAM's do not (Adebayo et al. 2018); the Sobel edge map is the reference row without a verdict.
    std::map<std::string, bool> passes;
    for (const auto& m : s["sanity"]["methods"])
        if (m.contains("verdict")) passes[m["method"]] = m["verdict"]["passes"].get<bool>();
    EXPECT_TRUE(passes.at("hirescam"));
    EXPECT_TRUE(passes.at("gradcam"));
    EXPECT_FALSE(passes.at("guidedbackprop"));
    EXPECT_FALSE(passes.at("guidedgradcam"));  // its Guided Backprop factor survives the new logits layer
    EXPECT_EQ(passes.count("sobel"), 0u);
    // Segmentation: the numbers are mIoUs that beat trivial answers. Predicting background
    // everywhere scores 1/K (its own IoU, every object class 0), so the CAM seeds must beat that.
    const auto& unet = s["unet"];
    const std::size_t classes = unet["per_class"].size();
    ASSERT_GE(classes, 3u);
    for (const char* key : {"seeds_miou", "final_miou"}) {
        double v = s["wsss"][key].get<double>();
        EXPECT_TRUE(v > 0.0 && v <= 1.0) << key << " " << v;
    }
    EXPECT_GT(s["wsss"]["seeds_miou"].get<double>(), 1.0 / static_cast<double>(classes));
    // The U-Net learns during its few epochs: its best epoch beats its first by 0.01 or more,
    // it finds the background and sees at least two object classes.
    const auto& curve = unet["curve"];
    ASSERT_GE(curve.size(), 2u);
    EXPECT_GE(unet["val_miou"].get<double>(), curve[0]["val_miou"].get<double>() + 0.01);
    EXPECT_GT(unet["per_class"]["background"].get<double>(), 0.8);
    int seen = 0;
    for (const auto& [name, iou] : unet["per_class"].items())
        if (name != "background" && iou.is_number() && iou.get<double>() > 0.05) ++seen;
    EXPECT_GE(seen, 2) << unet["per_class"].dump();

    // A rerun finds every stage done and only rewrites the report.
    auto again = run_sightline("demo --quick --out " + out.string());
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_NE(again.out.find("(done before)"), std::string::npos);
    EXPECT_NE(again.out.find("report: "), std::string::npos);
    // A full demo into a quick demo's folder is refused, not mixed.
    auto mixed = run_sightline("demo --out " + out.string());
    EXPECT_EQ(mixed.exit_code, 2);
    EXPECT_NE(mixed.err.find("holds a quick demo; use --force"), std::string::npos) << mixed.err;
}

void check_references(const fs::path& out) {
    const std::string html = slurp(out / "index.html");
    ASSERT_FALSE(html.empty());
    std::regex ref("(src|href)=\"([^\"]*)\"");
    int refs = 0;
    for (auto it = std::sregex_iterator(html.begin(), html.end(), ref); it != std::sregex_iterator(); ++it) {
        const std::string target = (*it)[2];
        EXPECT_EQ(target.find("://"), std::string::npos) << "network reference " << target;
        if (target.rfind('#', 0) == 0) continue;
        EXPECT_TRUE(fs::exists(out / target)) << "missing " << target;
        ++refs;
    }
    EXPECT_GT(refs, 20);
    EXPECT_NE(html.find("<svg"), std::string::npos);  // training curves are inline SVG
}

void check_in_chromium(const fs::path& out) {
    ASSERT_EQ(shell("command -v chromium >/dev/null"), 0)
        << "chromium is not installed: scripts/install-deps.sh installs Debian's chromium package";
    const fs::path work = scratch_dir("demo_chromium");
    const std::string page = "file://" + fs::absolute(out / "index.html").string();
    const fs::path dom = work / "dom.html", log = work / "chromium.log";
    const std::string home = "HOME=" + work.string() + " ";  // chromium's profile goes there
    ASSERT_EQ(shell(home + "timeout 120 chromium " + kChromiumFlags + " --dump-dom '" + page + "' >" + dom.string() +
                    " 2>" + log.string()),
              0)
        << slurp(log);
    const std::string body = slurp(dom);
    // The page's own check ran after load: every image decoded.
    std::smatch m;
    ASSERT_TRUE(std::regex_search(body, m, std::regex("data-images=\"([0-9]+)\" data-broken-images=\"([0-9]+)\"")))
        << body.substr(0, 500);
    EXPECT_GT(std::stoi(m[1]), 20);
    EXPECT_EQ(m[2], "0");
    for (const char* id : {"classifiers", "guarantees-gap", "guarantees-flatten", "maps-gap", "planted-mass", "audit-gap", "sanity",
                           "segmentation", "segmentation-examples", "summary"})
        EXPECT_NE(body.find(std::string("id=\"") + id + "\""), std::string::npos) << "table " << id;
    // No console message of any level (errors, warnings, uncaught exceptions) while loading.
    const std::string messages = slurp(log);
    EXPECT_EQ(messages.find(":CONSOLE"), std::string::npos) << messages;

    const fs::path shot = fs::path(SIGHTLINE_BINARY).parent_path() / "tests" / "demo-report.png";
    fs::remove(shot);
    ASSERT_EQ(shell(home + "timeout 120 chromium " + kChromiumFlags + " --window-size=1200,3000 --screenshot='" +
                    shot.string() + "' '" + page + "' >>" + log.string() + " 2>&1"),
              0)
        << slurp(log);
    const std::string png = slurp(shot);
    ASSERT_GT(png.size(), 10000u);
    EXPECT_EQ(png.substr(1, 3), "PNG");
}

}  // namespace

// One test, because the quick demo takes a minute or two and ctest runs each TEST in its own
// process.
TEST(Demo, QuickDemoEndToEnd) {
    const fs::path out = scratch_dir("demo_quick") / "out";
    auto r = run_sightline("demo --quick --out " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    {
        SCOPED_TRACE("stages, summary.json and resume");
        check_stages_and_resume(out);
    }
    {
        SCOPED_TRACE("references of index.html");
        check_references(out);
    }
    {
        SCOPED_TRACE("headless Chromium");
        check_in_chromium(out);
    }
}
