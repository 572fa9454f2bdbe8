// `sightline train instance`: torchvision's learning-rate schedule, a tiny run that writes its
// files and feeds `sightline instance`, and an exact resume.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sightline/data.hpp"
#include "sightline/instance.hpp"
#include "sightline/maskrcnn.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

// `n` synthetic 64x64 scenes with several instances each, in a fresh scratch folder.
fs::path instance_scenes(int n) {
    const fs::path root = test::scratch_dir("data");
    SynthOptions s;
    s.n = n;
    s.size = 64;
    s.multi = true;
    s.instances = true;
    s.threads = 1;
    generate_synth(root, s);
    return root;
}

std::string slurp_text(const fs::path& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST(InstanceTrain, LearningRateIsTorchvisionsWarmupThenSteps) {
    InstanceTrainOptions o;  // lr 0.02, warm-up 1000 from 0.001, x0.1 at epochs 16 and 22
    const int64_t steps = 11;  // warm-up over min(1000, 11 - 1) = 10 steps
    EXPECT_DOUBLE_EQ(instance_learning_rate(o, 0, 0, steps), 0.02 * 0.001);
    EXPECT_DOUBLE_EQ(instance_learning_rate(o, 0, 5, steps), 0.02 * (0.001 + 0.999 * 0.5));
    EXPECT_DOUBLE_EQ(instance_learning_rate(o, 0, 10, steps), 0.02);
    EXPECT_DOUBLE_EQ(instance_learning_rate(o, 1, 0, steps), 0.02);
    EXPECT_DOUBLE_EQ(instance_learning_rate(o, 15, 3, steps), 0.02);
    EXPECT_NEAR(instance_learning_rate(o, 16, 0, steps), 0.002, 1e-15);
    EXPECT_NEAR(instance_learning_rate(o, 22, 0, steps), 0.0002, 1e-15);
}

TEST(InstanceTrain, TinyRunResumesExactlyAndFeedsInstance) {
    const fs::path root = instance_scenes(4);
    const fs::path dir = test::scratch_dir("runs");
    const std::string flags = " --data " + root.string() +
                              " --depth 18 --min-size 64 --max-size 64 --epochs 2 --batch 2 --lr 0.005 --threads 2";
    const auto a = test::run_sightline("train instance" + flags + " --out " + (dir / "a").string());
    ASSERT_EQ(a.exit_code, 0) << a.err;
    EXPECT_NE(a.out.find("epoch 2/2"), std::string::npos) << a.out;
    for (const char* file : {"model.pth", "model.json", "best.pth", "best.json", "metrics.jsonl", "checkpoint/checkpoint.pt"})
        EXPECT_TRUE(fs::exists(dir / "a" / file)) << file;
    const InstanceModelCard card = read_instance_model_card(dir / "a/model.json");
    EXPECT_EQ(card.class_names, synth_class_names());
    EXPECT_EQ(card.config.min_size, 64);

    // Killed after epoch 1, resumed: the same weights and metrics as the run in one go.
    const auto b1 = test::run_sightline("train instance" + flags + " --out " + (dir / "b").string() + " --stop-after-epoch 1");
    EXPECT_EQ(b1.exit_code, 1);
    EXPECT_EQ(b1.err, "sightline: error: " + (dir / "b/checkpoint/checkpoint.pt").string() +
                          ": stopped (--stop-after-epoch) after epoch 1; checkpoint saved, continue with --resume\n");
    EXPECT_FALSE(fs::exists(dir / "b/model.pth"));
    const auto again = test::run_sightline("train instance" + flags + " --out " + (dir / "b").string());
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_EQ(again.err, "sightline: error: " + (dir / "b").string() + ": already holds a run (--resume continues it)\n");
    const auto b2 = test::run_sightline("train instance" + flags + " --out " + (dir / "b").string() + " --resume");
    ASSERT_EQ(b2.exit_code, 0) << b2.err;
    const auto wa = read_tensor_dict((dir / "a/model.pth").string()), wb = read_tensor_dict((dir / "b/model.pth").string());
    ASSERT_EQ(wa.size(), wb.size());
    for (const auto& [name, t] : wa) EXPECT_TRUE(torch::equal(t, wb.at(name))) << name;
    EXPECT_EQ(slurp_text(dir / "a/metrics.jsonl"), slurp_text(dir / "b/metrics.jsonl"));

    // The trained model runs with its card found beside it.
    const auto p = test::run_sightline("instance --model " + (dir / "a/model.pth").string() + " --coco " +
                                       (root / "annotations/instances_val.json").string() + " --input " +
                                       (root / "JPEGImages").string() + " --out " + (dir / "pred").string());
    ASSERT_EQ(p.exit_code, 0) << p.err;
    EXPECT_TRUE(fs::exists(dir / "pred/results.json"));
}

TEST(InstanceTrain, InitStartsFromTorchvisionWeights) {
    const fs::path root = instance_scenes(2);
    // torchvision's Mask R-CNN, ResNet-18, 4 classes (tools/make_maskrcnn_fixtures.py); the
    // synthetic data has 7: the class-specific predictors start fresh, the rest from the file.
    const fs::path weights = fs::path(SIGHTLINE_MASKRCNN_FIXTURES_DIR) / "state_dict.pth";
    const fs::path out = test::scratch_dir("run") / "run";
    const std::string flags = " --data " + root.string() +
                              " --depth 18 --min-size 64 --max-size 64 --epochs 1 --batch 2 --val none --threads 2";
    const auto r = test::run_sightline("train instance" + flags + " --init " + weights.string() + " --out " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string said = " tensors from " + weights.string() +
                             "; 6 class-specific tensors of another class count left as initialised\n";
    EXPECT_EQ(r.out.rfind("init: ", 0), 0u) << r.out;
    EXPECT_NE(r.out.find(said), std::string::npos) << r.out;
    const auto missing = test::run_sightline("train instance" + flags + " --init " + (root / "none.pth").string() +
                                             " --out " + (out.parent_path() / "other").string());
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_EQ(missing.err, "sightline: error: " + (root / "none.pth").string() + ": no such weights file (--init)\n");
    EXPECT_FALSE(fs::exists(out.parent_path() / "other"));
}

TEST(InstanceTrain, MultiScaleListTrainsAtItsSizesAndEvaluatesAtTheLast) {
    const fs::path root = instance_scenes(4);
    const fs::path dir = test::scratch_dir("runs");
    const std::string flags = " --data " + root.string() +
                              " --depth 18 --min-size 48,56,64 --max-size 96 --epochs 1 --batch 2 --lr 0.005 --threads 1";
    const auto r = test::run_sightline("train instance" + flags + " --out " + (dir / "a").string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_instance_model_card(dir / "a/model.json").config.min_size, 64);
    // The list is one of the run's options: a resume with another list is refused.
    std::string other = flags;
    other.replace(other.find("48,56,64"), 8, "64");
    const auto resumed = test::run_sightline("train instance" + other + " --out " + (dir / "a").string() + " --resume");
    EXPECT_NE(resumed.exit_code, 0);
    EXPECT_NE(resumed.err.find("other options"), std::string::npos) << resumed.err;
    const auto zero = test::run_sightline("train instance" + flags + ",0 --out " + (dir / "b").string());
    EXPECT_EQ(zero.exit_code, 2) << zero.err;
}

// The proposal counts and samplers are options of the run; the test-time counts go into the card,
// so `sightline instance` predicts with them.
TEST(InstanceTrain, ProposalAndSamplerCountsAreRunOptionsAndTheCardKeepsTheTestOnes) {
    const fs::path root = instance_scenes(4);
    const fs::path dir = test::scratch_dir("runs");
    const std::string flags = " --data " + root.string() +
                              " --depth 18 --min-size 64 --max-size 64 --epochs 1 --batch 2 --lr 0.005 --threads 1"
                              " --val none --rpn-pre-nms-top-n-train 200 --rpn-post-nms-top-n-train 100"
                              " --rpn-pre-nms-top-n-test 150 --rpn-post-nms-top-n-test 50 --box-batch-size-per-image 64"
                              " --rpn-batch-size-per-image 32";
    const auto r = test::run_sightline("train instance" + flags + " --out " + (dir / "small").string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const MaskRCNNConfig card = read_instance_model_card(dir / "small/model.json").config;
    EXPECT_EQ(card.rpn_pre_nms_top_n, 150);
    EXPECT_EQ(card.rpn_post_nms_top_n, 50);
    EXPECT_EQ(card.rpn_pre_nms_top_n_train, 200);
    EXPECT_EQ(card.rpn_post_nms_top_n_train, 100);
    EXPECT_EQ(card.box_batch_size_per_image, 64);
    EXPECT_EQ(card.rpn_batch_size_per_image, 32);
    std::string other = flags;
    other.replace(other.find("--box-batch-size-per-image 64"), 29, "--box-batch-size-per-image 65");
    const auto resumed = test::run_sightline("train instance" + other + " --out " + (dir / "small").string() + " --resume");
    EXPECT_NE(resumed.err.find("other options"), std::string::npos) << resumed.err;
    const auto zero = test::run_sightline("train instance --data " + root.string() + " --out " + (dir / "zero").string() +
                                          " --box-batch-size-per-image 0");
    EXPECT_EQ(zero.exit_code, 2);
    EXPECT_NE(zero.err.find("--box-batch-size-per-image"), std::string::npos) << zero.err;
    EXPECT_FALSE(fs::exists(dir / "zero"));
}

TEST(InstanceTrain, StoppedWithinAnEpochThenResumedIsBitIdentical) {
    // Stopped after step 3 of 4 (epoch 2, step 1 of 2, as a Ctrl-C there would), then resumed:
    // the weights and metrics of a run that was never stopped.
    const fs::path root = instance_scenes(4);
    const fs::path dir = test::scratch_dir("runs");
    const std::string flags = " --data " + root.string() +
                              " --depth 18 --min-size 64 --max-size 64 --epochs 2 --batch 2 --lr 0.005 --threads 1 --val none";
    const auto whole = test::run_sightline("train instance" + flags + " --out " + (dir / "whole").string());
    ASSERT_EQ(whole.exit_code, 0) << whole.err;
    const auto stopped = test::run_sightline("train instance" + flags + " --out " + (dir / "b").string() +
                                             " --stop-after-step 3");
    EXPECT_EQ(stopped.exit_code, 1);
    EXPECT_EQ(stopped.err, "sightline: error: " + (dir / "b/checkpoint/checkpoint.pt").string() +
                               ": stopped (--stop-after-step) in epoch 2 after step 1; checkpoint saved, continue "
                               "with --resume\n");
    EXPECT_FALSE(fs::exists(dir / "b" / "model.pth"));
    const auto resumed = test::run_sightline("train instance" + flags + " --out " + (dir / "b").string() + " --resume");
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    const auto a = read_tensor_dict((dir / "whole" / "model.pth").string());
    const auto b = read_tensor_dict((dir / "b" / "model.pth").string());
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
    auto losses = [](const fs::path& run) {
        std::vector<double> out;
        std::istringstream in(read_file(run / "metrics.jsonl"));
        for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line).at("loss"));
        return out;
    };
    EXPECT_EQ(losses(dir / "whole"), losses(dir / "b"));
}
