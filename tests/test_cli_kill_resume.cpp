// kill -9 in the middle of the long commands -- `train segment`, `wsss run`, `audit` -- then the
// same command again (with --resume where the command takes it): the outputs equal an
// uninterrupted run's. (`train classify` and `explain` have theirs in test_train_cli.cpp and
// test_cli.cpp.)
#include <sys/wait.h>

#include <cstdlib>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "saved_weights.hpp"
#include "sightline/core.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace kill_resume {

// Starts `sightline <args>` in the background, waits until the shell pipeline `count` prints a
// number >= at_least (or the command ends), sends SIGKILL and returns the exit status the shell
// saw (137 when the kill landed).
int kill_when(const std::string& args, const std::string& count, int at_least, const fs::path& scratch) {
    const std::string script = std::string(SIGHTLINE_BINARY) + " " + args + " >/dev/null 2>&1 </dev/null & pid=$!\n" +
                               "for i in $(seq 1 12000); do\n"
                               "  n=$(" + count + " 2>/dev/null)\n"
                               "  [ \"${n:-0}\" -ge " + std::to_string(at_least) + " ] && break\n"
                               "  kill -0 $pid 2>/dev/null || break\n"
                               "  sleep 0.01\n"
                               "done\n"
                               "kill -KILL $pid\n"
                               "wait $pid\n"
                               "exit $?\n";
    const fs::path sh = scratch / "kill.sh";
    write_file_atomic(sh, script);
    const int status = std::system(("bash " + sh.string()).c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string lines_of(const fs::path& file) { return "cat '" + file.string() + "' | wc -l"; }
std::string files_in(const fs::path& dir, const std::string& pattern) {
    return "find '" + dir.string() + "' -name '" + pattern + "' | wc -l";
}

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(read_file(p)); }

// RUN/metrics.jsonl's lines without the fields that time the run.
std::vector<nlohmann::json> epochs(const fs::path& run) {
    std::vector<nlohmann::json> lines;
    std::istringstream in(read_file(run / "metrics.jsonl"));
    for (std::string line; std::getline(in, line);) {
        nlohmann::json j = nlohmann::json::parse(line);
        for (auto it = j.begin(); it != j.end();)
            it = it.key().find("second") != std::string::npos || it.key().find("wait") != std::string::npos
                     ? j.erase(it)
                     : std::next(it);
        lines.push_back(j);
    }
    return lines;
}

// 24 synthetic multi-object scenes of 32x32, made once.
const fs::path& scenes() {
    static const fs::path data = [] {
        fs::path d = test::scratch_dir("kill_resume_data") / "scenes";
        auto r = test::run_sightline("data synth --out " + d.string() + " --n 24 --size 32 --multi --seed 5");
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return d;
    }();
    return data;
}

}  // namespace kill_resume


TEST(KillResume, TrainSegmentKilledThenResumedIsBitIdentical) {
    const fs::path root = test::scratch_dir("segment");
    const std::string base = "train segment --data " + kill_resume::scenes().string() +
                             " --base 4 --depth 2 --epochs 5 --batch 4 --threads 1 --workers 1 --out ";
    auto whole = test::run_sightline(base + (root / "whole").string());
    ASSERT_EQ(whole.exit_code, 0) << whole.err;
    EXPECT_EQ(kill_resume::kill_when(base + (root / "killed").string(), kill_resume::lines_of(root / "killed" / "metrics.jsonl"), 1, root), 137);
    ASSERT_FALSE(fs::exists(root / "killed" / "model.pt"));
    auto resumed = test::run_sightline(base + (root / "killed").string() + " --resume");
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_TRUE(test::same_weights(root / "whole" / "model.pt", root / "killed" / "model.pt"));
    // Every epoch's numbers, timings aside.
    const std::vector<nlohmann::json> a = kill_resume::epochs(root / "whole"), b = kill_resume::epochs(root / "killed");
    ASSERT_EQ(a.size(), 5u);
    EXPECT_EQ(a, b);
}

TEST(KillResume, WsssRunKilledInTwoStagesThenRerunGivesTheSameResult) {
    const fs::path root = test::scratch_dir("wsss");
    const std::string base = "wsss run --data " + kill_resume::scenes().string() +
                             " --epochs 3 --batch 4 --width 4 --segment-epochs 3 --scales 1 --no-flip --threads 1"
                             " --thresholds 0.1,0.2 --bilateral 20,13,10 --iterations 2 --out ";
    auto whole = test::run_sightline(base + (root / "whole").string());
    ASSERT_EQ(whole.exit_code, 0) << whole.err;
    const fs::path killed = root / "killed";
    // Inside the classifier's training, then inside the segmenter's.
    EXPECT_EQ(kill_resume::kill_when(base + killed.string(), kill_resume::lines_of(killed / "classifier" / "metrics.jsonl"), 1, root), 137);
    EXPECT_EQ(kill_resume::kill_when(base + killed.string(), kill_resume::lines_of(killed / "segmenter" / "metrics.jsonl"), 1, root), 137);
    ASSERT_FALSE(fs::exists(killed / "summary.json"));
    auto rerun = test::run_sightline(base + killed.string());
    ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
    const nlohmann::json a = kill_resume::read_json(root / "whole" / "summary.json"), b = kill_resume::read_json(killed / "summary.json");
    for (const char* key : {"seeds_miou", "pseudo_miou", "final_miou", "best_threshold"}) EXPECT_EQ(a[key], b[key]) << key;
    EXPECT_TRUE(test::same_weights(root / "whole" / "classifier" / "model.pt", killed / "classifier" / "model.pt"));
    EXPECT_TRUE(test::same_weights(root / "whole" / "segmenter" / "model.pt", killed / "segmenter" / "model.pt"));
}

TEST(KillResume, AuditKilledThenRerunWritesTheSameReport) {
    const fs::path root = test::scratch_dir("audit");
    const fs::path model = root / "classifier";
    auto trained = test::run_sightline("train classify --data " + kill_resume::scenes().string() + " --out " + model.string() +
                                       " --width 4 --epochs 1 --batch 8 --threads 1 --multilabel");
    ASSERT_EQ(trained.exit_code, 0) << trained.err;
    const std::string base = "audit --model " + (model / "model.pt").string() + " --data " + kill_resume::scenes().string() +
                             " --split train --batch 1 --threads 1 --out ";
    auto whole = test::run_sightline(base + (root / "whole").string());
    ASSERT_EQ(whole.exit_code, 0) << whole.err;
    const fs::path killed = root / "killed";
    EXPECT_EQ(kill_resume::kill_when(base + killed.string(), kill_resume::files_in(killed / ".sightline" / "audit", "train.*.json"), 3, root), 137);
    ASSERT_FALSE(fs::exists(killed / "audit.json"));
    auto rerun = test::run_sightline(base + killed.string());
    ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
    nlohmann::json a = kill_resume::read_json(root / "whole" / "audit.json"), b = kill_resume::read_json(killed / "audit.json");
    a.erase("model"), b.erase("model");
    EXPECT_EQ(a, b);
    EXPECT_EQ(read_file(root / "whole" / "audit_records.csv"), read_file(killed / "audit_records.csv"));
}
