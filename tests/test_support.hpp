// Helpers shared by the tests: fixture paths, scratch folders, running the CLI.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace sightline::test {

namespace fs = std::filesystem;

// tests/fixtures in the source tree: small reference outputs of the peer libraries.
fs::path fixtures();
// tests/fixtures/cocoeval: the COCO evaluation cases and pycocotools' results for them.
fs::path coco_fixtures();
// The folder of the full peer fixtures (too large to keep in the repository): the environment
// variable SIGHTLINE_PEER_FIXTURES, else the CMake setting of the same name; empty when neither
// names an existing folder.
fs::path peer_fixtures();
// `relative` under tests/fixtures when it is kept there, else under peer_fixtures(); empty when
// it is in neither (use SIGHTLINE_NEED_FIXTURE to skip the test then).
fs::path find_fixture(const fs::path& relative);
// The fixtures kept out of the repository for their size (tests/fixtures/peer_only.txt).
std::vector<fs::path> peer_only_fixtures();
// Why `relative` cannot be used: "" when it is a peer-only fixture and no peer folder is
// configured at all (the test may skip); else the problem: a fixture that should be vendored
// is missing, or the configured peer folder does not exist or lacks the file (the test must
// fail, as a CI run that configured the fixtures expects them used).
std::string missing_fixture_problem(const fs::path& relative);
// Declares `fs::path var` = find_fixture(relative). When it is missing: skips with a one-line
// reason only for a peer-only fixture without a peer folder; fails the test otherwise.
#define SIGHTLINE_NEED_FIXTURE(var, relative)                                                      \
    const ::sightline::test::fs::path var = ::sightline::test::find_fixture(relative);             \
    if (var.empty()) {                                                                             \
        const std::string problem = ::sightline::test::missing_fixture_problem(relative);          \
        if (!problem.empty()) FAIL() << problem;                                                   \
        GTEST_SKIP() << "needs the peer fixture " << ::sightline::test::fs::path(relative).string() \
                     << " (set SIGHTLINE_PEER_FIXTURES to the folder of the full fixtures)";       \
    }

// A traced torchvision ResNet-18 (10 classes, random weights, seed 103), written once per
// process by tools/make_torchvision_resnet18.py with Debian's python3-torchvision; empty (and
// the reason printed) when that fails.
fs::path torchvision_resnet18();

// tests/data in the source tree.
fs::path test_data();
// A fresh, empty folder under the build tree's temp area, unique per test.
fs::path scratch_dir(const std::string& name);

struct CommandResult {
    int exit_code;
    std::string out;  // stdout
    std::string err;  // stderr
};
// Runs the built `sightline` binary with the given argument string (shell syntax).
CommandResult run_sightline(const std::string& args);

// The message of the sightline::Error that fn throws, or "(no error)".
std::string message_of(const std::function<void()>& fn);

}  // namespace sightline::test
