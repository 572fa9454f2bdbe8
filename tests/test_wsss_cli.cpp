// `sightline wsss seeds|sweep|pseudo|run` end to end on a tiny multi-object synthetic set:
// outputs, CAM files read back give the same seeds, resumable run, and bad input (one line,
// non-zero exit, nothing written).
#include <algorithm>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sightline/architectures.hpp"
#include "sightline/core.hpp"
#include "sightline/data.hpp"
#include "sightline/palette.hpp"
#include "sightline/wsss.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

// One tiny dataset and two untrained models for the whole suite.
struct CliSetup {
    fs::path root, data, gap, mlp, gap4;
    std::vector<std::string> train_ids;
};

fs::path save_model(const fs::path& dir, const std::string& arch, int64_t classes) {
    ArchOptions a;
    a.num_classes = classes;
    a.input_size = 48;
    a.width = 4;
    a.seed = 2;
    torch::jit::Module m = build_architecture(arch, a);
    ModelCard card{arch, parse_head_design(arch == "resnet_mlp" ? "mlp" : "gap_linear"), 48, 8, {}, {0.5, 0.5, 0.5},
                   {0.25, 0.25, 0.25}};
    for (int64_t i = 0; i < classes; ++i) card.class_names.push_back(fmt::format("c{}", i));
    attach_model_card(m, card);
    m.eval();
    fs::path p = dir / fmt::format("{}_{}.pt", arch, classes);
    m.save(p.string());
    return p;
}

const CliSetup& setup() {
    static CliSetup s = [] {
        CliSetup s;
        s.root = test::scratch_dir("wsss_cli_setup");
        s.data = s.root / "data";
        SynthOptions o;
        o.n = 10;
        o.size = 48;
        o.multi = true;
        o.spurious = 0.5;
        o.threads = 1;
        generate_synth(s.data, o);
        s.gap = save_model(s.root, "resnet_gap", 6);
        s.mlp = save_model(s.root, "resnet_mlp", 6);
        s.gap4 = save_model(s.root, "resnet_gap", 4);
        auto train = open_dataset(s.data, "train");
        for (std::size_t i = 0; i < train->size(); ++i) s.train_ids.push_back(train->get(i).id);
        return s;
    }();
    return s;
}

// A failed run: the exit code, exactly one line on stderr, no output folder; returns the line.
std::string failed(const std::string& args, const fs::path& out, int exit_code = 1) {
    test::CommandResult r = test::run_sightline(args + " --out " + quoted(out));
    EXPECT_EQ(r.exit_code, exit_code) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(out)) << "bad input must not leave output";
    EXPECT_FALSE(fs::exists(out.parent_path() / ("." + out.filename().string() + ".partial")));
    return r.err;
}

bool same_mask(const fs::path& a, const fs::path& b) {
    cv::Mat x = read_index_png(a), y = read_index_png(b);
    return x.size() == y.size() && cv::countNonZero(x != y) == 0;
}

}  // namespace

TEST(WsssCli, SeedsFromAModelAndFromItsCamFilesAgree) {
    const CliSetup& s = setup();
    fs::path out = test::scratch_dir("seeds") / "seeds";
    test::CommandResult r = test::run_sightline(fmt::format("wsss seeds --model {} --data {} --scales 1,0.5 --out {}",
                                                            quoted(s.gap), quoted(s.data), quoted(out)));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(fmt::format("seeds: {} images (thresh:0.15)", s.train_ids.size())), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("seeds: mIoU "), std::string::npos) << r.out;
    for (const std::string& id : s.train_ids) {
        EXPECT_TRUE(fs::exists(out / (id + ".png"))) << id;
        EXPECT_TRUE(fs::exists(out / "cams" / (id + ".npy"))) << id;
    }
    EXPECT_TRUE(fs::exists(out / "eval" / "metrics.json"));
    fs::path again = test::scratch_dir("seeds2") / "seeds";
    r = test::run_sightline(fmt::format("wsss seeds --cams {} --data {} --out {}", quoted(out / "cams"), quoted(s.data),
                                        quoted(again)));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const std::string& id : s.train_ids) EXPECT_TRUE(same_mask(out / (id + ".png"), again / (id + ".png"))) << id;
    EXPECT_FALSE(fs::exists(again / "cams"));  // read, not computed: nothing to save
}

TEST(WsssCli, SweepAndPseudoMasks) {
    const CliSetup& s = setup();
    fs::path seeds = test::scratch_dir("sp") / "seeds";
    ASSERT_EQ(test::run_sightline(fmt::format("wsss seeds --model {} --data {} --scales 1 --out {}", quoted(s.gap),
                                              quoted(s.data), quoted(seeds))).exit_code, 0);
    fs::path sweep = seeds.parent_path() / "sweep";
    test::CommandResult r = test::run_sightline(fmt::format("wsss sweep --cams {} --data {} --thresholds 0.1:0.3:0.1 --out {}",
                                                            quoted(seeds / "cams"), quoted(s.data), quoted(sweep)));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("best threshold"), std::string::npos) << r.out;
    nlohmann::json j = nlohmann::json::parse(read_file(sweep / "sweep.json"));
    EXPECT_EQ(j["rows"].size(), 3u);
    fs::path pseudo = seeds.parent_path() / "pseudo";
    r = test::run_sightline(fmt::format("wsss pseudo --cams {} --data {} --confident 0.3,0.05 --bilateral 20,13,10 --out {}",
                                        quoted(seeds / "cams"), quoted(s.data), quoted(pseudo)));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("pseudo-masks: mIoU"), std::string::npos) << r.out;
    for (const std::string& id : s.train_ids) EXPECT_TRUE(fs::exists(pseudo / (id + ".png"))) << id;
}

TEST(WsssCli, BadInputIsOneLineAndWritesNothing) {
    const CliSetup& s = setup();
    fs::path dir = test::scratch_dir("bad");
    // A classifier without class maps.
    std::string e = failed(fmt::format("wsss seeds --model {} --data {}", quoted(s.mlp), quoted(s.data)), dir / "o1");
    EXPECT_NE(e.find(s.mlp.string() + ": seeds need class maps"), std::string::npos) << e;
    // A classifier of another class count.
    e = failed(fmt::format("wsss seeds --model {} --data {}", quoted(s.gap4), quoted(s.data)), dir / "o2");
    EXPECT_NE(e.find("the classifier has 4 outputs but"), std::string::npos) << e;
    // A CRF parameter <= 0 (usage error, exit 2).
    e = failed(fmt::format("wsss pseudo --model {} --data {} --bilateral 80,0,10", quoted(s.gap), quoted(s.data)),
               dir / "o3", 2);
    EXPECT_NE(e.find("--bilateral"), std::string::npos) << e;

    // CAM files: good ones first, then one broken at a time.
    fs::path cams = dir / "cams";
    fs::create_directories(cams);
    auto train = open_dataset(s.data, "train");
    Sample first;
    for (std::size_t i = 0; i < train->size(); ++i) {
        Sample x = train->get(i);
        torch::Tensor c = torch::rand({int64_t(x.labels.size()), x.image.rows, x.image.cols});
        write_cam_file(cams / (x.id + ".npy"), c, x.labels, 6);
        if (i == 0) first = x;
    }
    const fs::path victim = cams / (first.id + ".npy");
    const std::string cmd = fmt::format("wsss seeds --cams {} --data {}", quoted(cams), quoted(s.data));
    std::vector<float> v(size_t(6) * first.image.rows * first.image.cols, 0.f);
    v[static_cast<std::size_t>(first.labels[0] - 1) * first.image.rows * first.image.cols + 3] = std::nanf("");
    write_npy_f32(victim, {6, first.image.rows, first.image.cols}, v.data());
    e = failed(cmd, dir / "o4");
    EXPECT_NE(e.find(victim.string() + ": CAM value nan"), std::string::npos) << e;
    write_npy_f32(victim, {6, first.image.rows, first.image.cols - 1}, v.data());
    e = failed(cmd, dir / "o5");
    EXPECT_NE(e.find(victim.string() + fmt::format(": CAMs are {} x {} (H x W) but the image is {} x {}",
                                                   first.image.rows, first.image.cols - 1, first.image.rows,
                                                   first.image.cols)),
              std::string::npos) << e;
    int absent = 1;
    while (std::find(first.labels.begin(), first.labels.end(), absent) != first.labels.end()) ++absent;
    std::fill(v.begin(), v.end(), 0.f);
    v[static_cast<std::size_t>(absent - 1) * first.image.rows * first.image.cols] = 0.5f;
    write_npy_f32(victim, {6, first.image.rows, first.image.cols}, v.data());
    e = failed(cmd, dir / "o6");
    EXPECT_NE(e.find(victim.string() + fmt::format(": non-zero map for class {}, which the image is not labelled with",
                                                   absent)),
              std::string::npos) << e;
    // Bad option values.
    e = failed(cmd + " --bg power:0", dir / "o7", 2);
    EXPECT_NE(e.find("--bg: expected thresh:T"), std::string::npos) << e;
    e = failed(cmd + " --confident 0.1,0.3", dir / "o8", 2);
    EXPECT_NE(e.find("--confident: expected FG,BG with 0 < BG < FG < 1"), std::string::npos) << e;
}

// The whole pipeline on the tiny set, then again: every stage is skipped.
TEST(WsssCli, RunIsResumableStageByStage) {
    const CliSetup& s = setup();
    fs::path out = test::scratch_dir("run") / "run";
    const std::string cmd = fmt::format(
        "wsss run --data {} --out {} --epochs 1 --batch 4 --segment-epochs 1 --scales 1 --no-flip "
        "--thresholds 0.1,0.2 --bilateral 20,13,10 --iterations 2",
        quoted(s.data), quoted(out));
    test::CommandResult r = test::run_sightline(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    for (const char* stage : {"classifier", "cams", "sweep", "seeds", "pseudo", "segmenter", "final"})
        EXPECT_NE(r.out.find(fmt::format("stage {} ...", stage)), std::string::npos) << stage << "\n" << r.out;
    nlohmann::json j = nlohmann::json::parse(read_file(out / "summary.json"));
    ASSERT_EQ(j["stages"].size(), 7u);
    for (const auto& st : j["stages"]) EXPECT_FALSE(st["skipped"].get<bool>()) << st.dump();
    EXPECT_TRUE(j["seeds_miou"].is_number());
    EXPECT_TRUE(j["final_miou"].is_number());
    EXPECT_TRUE(j["best_threshold"] == 0.1 || j["best_threshold"] == 0.2) << j.dump();
    for (const std::string& id : s.train_ids) EXPECT_TRUE(fs::exists(out / "pseudo" / (id + ".png")));

    r = test::run_sightline(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    j = nlohmann::json::parse(read_file(out / "summary.json"));
    for (const auto& st : j["stages"]) EXPECT_TRUE(st["skipped"].get<bool>()) << st.dump();
    EXPECT_EQ(r.out.find("stage "), std::string::npos) << r.out;
}
