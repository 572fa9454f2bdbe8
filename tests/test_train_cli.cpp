// `sightline train classify` end to end on tiny synthetic scenes (`sightline data synth`):
// outputs and counterfactual metrics, real SIGKILL / SIGTERM and exact resume, bad input.
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>

#include "sightline/architectures.hpp"
#include "sightline/core.hpp"
#include "test_support.hpp"
#include "saved_weights.hpp"

using namespace sightline;

namespace {

const std::string kBin = SIGHTLINE_BINARY;

class TrainCli : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        root_ = fs::temp_directory_path() / ("sightline-train-cli-" + std::to_string(::getpid()));
        fs::remove_all(root_);
        fs::create_directories(root_);
        auto r = test::run_sightline("data synth --out " + scenes().string() + " --n 16 --size 32 --seed 4");
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    static void TearDownTestSuite() { fs::remove_all(root_); }
    static fs::path scenes() { return root_ / "scenes"; }
    // The tiny run every test uses: 16 images, batch 4, 3 epochs of 4 steps.
    static std::string train_args(const fs::path& out, const std::string& extra = "", int epochs = 3) {
        return "train classify --data " + scenes().string() + " --out " + out.string() +
               " --width 4 --batch 4 --threads 1 --epochs " + std::to_string(epochs) + " " + extra;
    }
    static fs::path root_;
};
fs::path TrainCli::root_;

int line_count(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

using test::same_weights;

// Starts the command in the background, waits until RUN/metrics.jsonl has `lines` lines,
// sends `signal`, waits; returns the exit status the shell saw.
int run_and_signal(const std::string& args, const fs::path& run, int lines, const std::string& signal,
                   const fs::path& err) {
    std::string script = kBin + " " + args + " >/dev/null 2>" + err.string() + " </dev/null & pid=$!\n" +
                         "for i in $(seq 1 6000); do\n"
                         "  n=$(cat " + (run / "metrics.jsonl").string() + " 2>/dev/null | wc -l)\n"
                         "  [ \"$n\" -ge " + std::to_string(lines) + " ] && break\n"
                         "  kill -0 $pid 2>/dev/null || break\n"
                         "  sleep 0.02\n"
                         "done\n"
                         "kill -" + signal + " $pid\n"
                         "wait $pid\n"
                         "exit $?\n";
    fs::path sh = run.parent_path() / (run.filename().string() + ".sh");
    write_file_atomic(sh, script);
    int status = std::system(("bash " + sh.string()).c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_F(TrainCli, WritesTheRunWithCounterfactualMetrics) {
    fs::path run = test::scratch_dir("run");
    auto r = test::run_sightline(train_args(run));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");  // no progress bar when stderr is not a terminal
    EXPECT_NE(r.out.find("resnet_gap ("), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("on 16 images, cross_entropy; 4 steps per epoch; validation: val_matched=3 val_swapped=3 "
                         "val_context=3"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("epoch 3/3  loss "), std::string::npos) << r.out;
    for (const char* key : {"matched_acc", "swapped_acc", "context_acc", "data wait"})
        EXPECT_NE(r.out.find(key), std::string::npos) << key;
    std::istringstream lines(read_file(run / "metrics.jsonl"));
    int n = 0;
    for (std::string line; std::getline(lines, line); ++n) {
        auto j = nlohmann::json::parse(line);
        EXPECT_EQ(j["epoch"], n + 1);
        for (const char* key : {"loss", "train_score", "matched_acc", "swapped_acc", "context_acc", "data_wait_share"})
            EXPECT_TRUE(j.contains(key)) << key;
    }
    EXPECT_EQ(n, 3);
    ModelCard card = read_model_card(run / "model.json");
    EXPECT_EQ(card.input_size, 32);
    EXPECT_EQ(card.class_names, (std::vector<std::string>{"boat", "train", "plane", "car", "cow", "fish"}));
    EXPECT_TRUE(fs::exists(run / "checkpoint" / "checkpoint.pt"));
}

TEST_F(TrainCli, StopAfterEpochThenResumeIsBitIdentical) {
    fs::path whole = test::scratch_dir("whole"), parts = test::scratch_dir("parts");
    ASSERT_EQ(test::run_sightline(train_args(whole)).exit_code, 0);
    auto stopped = test::run_sightline(train_args(parts, "--stop-after-epoch 1"));
    EXPECT_EQ(stopped.exit_code, 1);
    EXPECT_EQ(stopped.err, "sightline: error: " + (parts / "checkpoint" / "checkpoint.pt").string() +
                               ": stopped (--stop-after-epoch) after epoch 1; checkpoint saved, continue with --resume\n");
    EXPECT_FALSE(fs::exists(parts / "model.pt"));
    auto resumed = test::run_sightline(train_args(parts, "--resume"));
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_NE(resumed.out.find("resuming after epoch 1 step 0"), std::string::npos) << resumed.out;
    EXPECT_TRUE(same_weights(whole / "model.pt", parts / "model.pt"));
}

TEST_F(TrainCli, KilledWithSigkillAndResumedIsBitIdentical) {
    fs::path whole = test::scratch_dir("whole"), killed = test::scratch_dir("killed");
    ASSERT_EQ(test::run_sightline(train_args(whole)).exit_code, 0);
    int status = run_and_signal(train_args(killed), killed, 1, "KILL", killed.parent_path() / "killed.err");
    EXPECT_EQ(status, 128 + 9);
    ASSERT_TRUE(fs::exists(killed / "checkpoint" / "checkpoint.pt"));
    auto resumed = test::run_sightline(train_args(killed, "--resume"));
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_TRUE(same_weights(whole / "model.pt", killed / "model.pt"));
}

TEST_F(TrainCli, SigtermFinishesTheStepSavesAndExitsNonZero) {
    fs::path run = test::scratch_dir("run");
    fs::path err = run.parent_path() / "term.err";
    int status = run_and_signal(train_args(run, "", 30), run, 1, "TERM", err);
    EXPECT_EQ(status, 128 + 15);
    std::string message = read_file(err);
    EXPECT_EQ(line_count(message), 1) << message;
    EXPECT_EQ(message.rfind("sightline: error: " + (run / "checkpoint" / "checkpoint.pt").string() +
                                ": terminated (SIGTERM) ",
                            0),
              0u)
        << message;
    EXPECT_NE(message.find("; checkpoint saved, continue with --resume"), std::string::npos) << message;
    EXPECT_FALSE(fs::exists(run / "model.pt"));
}

// ---- bad input: one line, non-zero exit, nothing written or overwritten -----------------------

TEST_F(TrainCli, UnknownArchitectureListsTheChoices) {
    fs::path run = test::scratch_dir("run") / "out";
    auto r = test::run_sightline(train_args(run, "--arch resnet9000"));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err,
              "sightline: error: unknown architecture 'resnet9000' (choices: resnet_gap, resnet_flatten, resnet_mlp, "
              "vgg_gap)\n");
    EXPECT_FALSE(fs::exists(run));
}

TEST_F(TrainCli, EmptySplitNamesTheFile) {
    fs::path data = test::scratch_dir("data") / "scenes";
    fs::copy(scenes(), data, fs::copy_options::recursive);
    write_file_atomic(data / "ImageSets" / "Segmentation" / "train.txt", std::string());
    fs::path run = test::scratch_dir("run") / "out";
    auto r = test::run_sightline("train classify --data " + data.string() + " --out " + run.string());
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(line_count(r.err), 1) << r.err;
    EXPECT_NE(r.err.find((data / "ImageSets" / "Segmentation" / "train.txt").string()), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(run));
}

TEST_F(TrainCli, OutputFolderThatCannotBeWritten) {
    fs::path dir = test::scratch_dir("run");
    write_file_atomic(dir / "plain-file", std::string("keep"));
    auto r = test::run_sightline(train_args(dir / "plain-file" / "run"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(line_count(r.err), 1) << r.err;
    EXPECT_EQ(r.err.rfind("sightline: error: " + (dir / "plain-file" / "run").string() + ": cannot create output folder", 0),
              0u)
        << r.err;
    EXPECT_EQ(read_file(dir / "plain-file"), "keep");
}

TEST_F(TrainCli, CheckpointOfAnotherArchitectureOnResume) {
    fs::path run = test::scratch_dir("run");
    ASSERT_EQ(test::run_sightline(train_args(run, "--stop-after-epoch 1")).exit_code, 1);
    std::string checkpoint = read_file(run / "checkpoint" / "checkpoint.pt"), metrics = read_file(run / "metrics.jsonl");
    auto r = test::run_sightline(train_args(run, "--resume --arch vgg_gap"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "sightline: error: " + (run / "checkpoint" / "checkpoint.pt").string() +
                         ": the checkpoint is of architecture 'resnet_gap', not 'vgg_gap' (--arch)\n");
    EXPECT_EQ(read_file(run / "checkpoint" / "checkpoint.pt"), checkpoint);
    EXPECT_EQ(read_file(run / "metrics.jsonl"), metrics);
    EXPECT_FALSE(fs::exists(run / "model.pt"));
}

TEST_F(TrainCli, ExistingRunWithoutResumeIsLeftAlone) {
    fs::path run = test::scratch_dir("run");
    ASSERT_EQ(test::run_sightline(train_args(run, "--stop-after-epoch 1")).exit_code, 1);
    std::string checkpoint = read_file(run / "checkpoint" / "checkpoint.pt");
    auto r = test::run_sightline(train_args(run));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "sightline: error: " + (run / "checkpoint" / "checkpoint.pt").string() +
                         ": a run exists here; pass --resume to continue it or choose another --out\n");
    EXPECT_EQ(read_file(run / "checkpoint" / "checkpoint.pt"), checkpoint);
}

TEST_F(TrainCli, ProgressBarOnATerminalOnly) {
    // util-linux `script` gives the command a pseudo-terminal and records what it shows.
    ASSERT_EQ(std::system("command -v script >/dev/null 2>&1"), 0) << "no `script` to make a terminal";
    fs::path run = test::scratch_dir("run");
    fs::path typescript = run.parent_path() / "bar.typescript";
    std::string cmd = "script -qec \"" + kBin + " " + train_args(run / "out", "", 1) + " >/dev/null\" " +
                      typescript.string() + " </dev/null >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    std::string shown = read_file(typescript);
    EXPECT_NE(shown.find("\repoch 1 [#######......................."), std::string::npos) << shown;
    EXPECT_NE(shown.find("] 4/4 loss "), std::string::npos) << shown;
}
