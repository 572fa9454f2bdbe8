// Helpers shared by the tests: fixture paths, scratch folders, running the CLI.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace sightline::test {

namespace fs = std::filesystem;

// ../shared/fixtures beside the checkout (read-only reference outputs of the peer libraries).
fs::path shared_fixtures();
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
