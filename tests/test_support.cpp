#include "test_support.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "sightline/core.hpp"

namespace sightline::test {

fs::path shared_fixtures() {
    return fs::path(SIGHTLINE_SOURCE_DIR).parent_path() / "shared" / "fixtures";
}

fs::path test_data() { return fs::path(SIGHTLINE_SOURCE_DIR) / "tests" / "data"; }

fs::path scratch_dir(const std::string& name) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string test = info ? std::string(info->test_suite_name()) + "." + info->name() : "global";
    fs::path dir = fs::temp_directory_path() / ("sightline-test-" + std::to_string(::getpid())) /
                   (test + "." + name);
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

static std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

CommandResult run_sightline(const std::string& args) {
    fs::path dir = scratch_dir("cli");
    fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
    std::string cmd = std::string(SIGHTLINE_BINARY) + " " + args + " >" + out.string() + " 2>" +
                      err.string() + " </dev/null";
    int status = std::system(cmd.c_str());
    CommandResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

std::string message_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace sightline::test
