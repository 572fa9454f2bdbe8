// `sightline wsss affinity` and `wsss run --affinity` end to end on a tiny synthetic set: the
// walked CAMs are valid CAM files, the network is reused on a rerun, bad input is one line.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sightline/architectures.hpp"
#include "sightline/data.hpp"
#include "sightline/wsss.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace affinity_cli_test {

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

// Synthetic scenes, their CAMs from an untrained classifier and confident labels from them.
struct AffinitySetup {
    fs::path root, data, cams, labels;
    std::vector<Sample> train;
};

const AffinitySetup& affinity_setup() {
    static AffinitySetup s = [] {
        AffinitySetup s;
        s.root = test::scratch_dir("wsss_affinity_setup");
        s.data = s.root / "data";
        SynthOptions o;
        o.n = 10;
        o.size = 48;
        o.multi = true;
        o.threads = 1;
        generate_synth(s.data, o);
        ArchOptions a;
        a.num_classes = 6;
        a.input_size = 48;
        a.width = 4;
        torch::jit::Module m = build_architecture("resnet_gap", a);
        m.eval();
        m.save((s.root / "gap.pt").string());
        test::CommandResult r = test::run_sightline(fmt::format("wsss seeds --model {} --data {} --scales 1 --out {}",
                                                                q(s.root / "gap.pt"), q(s.data), q(s.root / "seeds")));
        EXPECT_EQ(r.exit_code, 0) << r.err;
        s.cams = s.root / "seeds" / "cams";
        s.labels = s.root / "labels";
        r = test::run_sightline(fmt::format("wsss pseudo --cams {} --data {} --confident 0.3,0.05 --no-crf --out {}",
                                            q(s.cams), q(s.data), q(s.labels)));
        EXPECT_EQ(r.exit_code, 0) << r.err;
        auto train = open_dataset(s.data, "train");
        for (std::size_t i = 0; i < train->size(); ++i) s.train.push_back(train->get(i));
        return s;
    }();
    return s;
}

}  // namespace affinity_cli_test

using affinity_cli_test::q;

TEST(WsssAffinityCli, WalkedCamsAreCamFilesAndTheNetworkIsReused) {
    const auto& s = affinity_cli_test::affinity_setup();
    fs::path out = test::scratch_dir("affinity_run") / "aff";
    const std::string cmd = fmt::format("wsss affinity --data {} --cams {} --labels {} --epochs 1 --batch 4 --out {}",
                                        q(s.data), q(s.cams), q(s.labels), q(out));
    test::CommandResult r = test::run_sightline(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_NE(r.out.find("(trained)"), std::string::npos) << r.out;
    ASSERT_TRUE(fs::exists(out / "net" / "model.pt"));
    nlohmann::json card = nlohmann::json::parse(read_file(out / "net" / "model.json"));
    EXPECT_EQ(card["task"], "affinity");
    for (const Sample& sample : s.train) {
        // read_cam_file checks shape, range and that only the labelled classes have maps.
        torch::Tensor walked = read_cam_file(out / "cams" / (sample.id + ".npy"), sample.labels, 6,
                                             sample.image.rows, sample.image.cols);
        for (int64_t c = 0; c < walked.size(0); ++c) EXPECT_LE(walked[c].max().item<float>(), 1.0f);
    }
    r = test::run_sightline(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("existed, reused"), std::string::npos) << r.out;
    // The walked CAMs feed the next stages like any CAM folder.
    r = test::run_sightline(fmt::format("wsss sweep --cams {} --data {} --thresholds 0.1,0.3", q(out / "cams"), q(s.data)));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    // A segmentation command refuses the embedding network with one clear line.
    r = test::run_sightline(fmt::format("segment --model {} --input {} --out {}", q(out / "net" / "model.pt"),
                                        q(s.data / "JPEGImages"), q(out.parent_path() / "seg")));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("a 'affinity' model, not a segmentation model"), std::string::npos) << r.err;
}

TEST(WsssAffinityCli, BadInputIsOneLineAndWritesNothing) {
    const auto& s = affinity_cli_test::affinity_setup();
    fs::path dir = test::scratch_dir("affinity_bad");
    auto failed = [&](const std::string& args, const fs::path& out, int code) {
        test::CommandResult r = test::run_sightline(args + " --out " + q(out));
        EXPECT_EQ(r.exit_code, code) << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        EXPECT_FALSE(fs::exists(out));
        return r.err;
    };
    // A label file missing.
    fs::path labels = dir / "labels";
    fs::copy(s.labels, labels, fs::copy_options::recursive);
    const fs::path gone = labels / (s.train[0].id + ".png");
    fs::remove(gone);
    std::string e = failed(fmt::format("wsss affinity --data {} --cams {} --labels {} --epochs 1 --batch 4", q(s.data),
                                       q(s.cams), q(labels)), dir / "o1", 1);
    EXPECT_NE(e.find(gone.string()), std::string::npos) << e;
    // A CAM file of the wrong size.
    fs::path cams = dir / "cams";
    fs::copy(s.cams, cams, fs::copy_options::recursive);
    const fs::path bad = cams / (s.train[1].id + ".npy");
    write_cam_file(bad, torch::zeros({1, 8, 8}), {s.train[1].labels.at(0)}, 6);
    e = failed(fmt::format("wsss affinity --data {} --cams {} --labels {} --epochs 1 --batch 4", q(s.data), q(cams),
                           q(s.labels)), dir / "o2", 1);
    EXPECT_NE(e.find(bad.string()), std::string::npos) << e;
    // Options out of range name the flag (exit 2).
    e = failed(fmt::format("wsss affinity --data {} --cams {} --labels {} --radius 1", q(s.data), q(s.cams), q(s.labels)),
               dir / "o3", 2);
    EXPECT_NE(e.find("--radius"), std::string::npos) << e;
    e = failed(fmt::format("wsss run --data {} --affinity --affinity-confident 0.05,0.3", q(s.data)), dir / "o4", 2);
    EXPECT_NE(e.find("--affinity-confident"), std::string::npos) << e;
}

TEST(WsssAffinityCli, RunWithAffinityWalksTheCamsBeforeThePseudoMasks) {
    const auto& s = affinity_cli_test::affinity_setup();
    fs::path out = test::scratch_dir("affinity_pipeline") / "run";
    test::CommandResult r = test::run_sightline(fmt::format(
        "wsss run --data {} --out {} --epochs 1 --batch 4 --segment-epochs 1 --scales 1 --no-flip "
        "--thresholds 0.1,0.2 --bilateral 20,13,10 --iterations 2 --affinity --affinity-epochs 1 --steps 16",
        q(s.data), q(out)));
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    for (const char* stage : {"affinity_labels", "affinity network", "random walk", "affinity_sweep", "pseudo"})
        EXPECT_NE(r.out.find(fmt::format("stage {} ...", stage)), std::string::npos) << stage << "\n" << r.out;
    nlohmann::json j = nlohmann::json::parse(read_file(out / "summary.json"));
    EXPECT_TRUE(j["affinity"].get<bool>());
    EXPECT_TRUE(j["affinity_miou"].is_number()) << j.dump();
    EXPECT_EQ(j["affinity_options"]["steps"], 16);
    // The walked CAMs' own sweep (0.05:0.95:0.05 by default)...
    const double t = j["affinity_threshold"].get<double>();
    EXPECT_NEAR(std::round(t / 0.05) * 0.05, t, 1e-9) << j.dump();
    // ... and the confident labels placed relative to the CAMs' best threshold (IRN's pair).
    const double best = j["best_threshold"].get<double>();
    EXPECT_NEAR(j["affinity_options"]["confident"][0].get<double>(), best + (1 - best) / 6, 1e-12) << j.dump();
    EXPECT_NEAR(j["affinity_options"]["confident"][1].get<double>(), best / 3, 1e-12) << j.dump();
    EXPECT_TRUE(fs::exists(out / "affinity" / "cams" / (s.train[0].id + ".npy")));
    EXPECT_NE(r.out.find("walked seeds (threshold"), std::string::npos) << r.out;
}
