#include "test_support.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "sightline/core.hpp"

namespace sightline::test {

static std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

fs::path fixtures() { return fs::path(SIGHTLINE_SOURCE_DIR) / "tests" / "fixtures"; }

fs::path coco_fixtures() { return fixtures() / "cocoeval"; }

fs::path peer_fixtures() {
    const char* env = std::getenv("SIGHTLINE_PEER_FIXTURES");
    fs::path dir = env && *env ? fs::path(env) : fs::path(SIGHTLINE_PEER_FIXTURES);
    std::error_code ec;
    return !dir.empty() && fs::is_directory(dir, ec) ? dir : fs::path();
}

std::vector<fs::path> peer_only_fixtures() {
    std::vector<fs::path> out;
    std::istringstream in(read_file(fixtures() / "peer_only.txt"));
    for (std::string line; std::getline(in, line);)
        if (!line.empty() && line[0] != '#') out.emplace_back(line);
    return out;
}

std::string missing_fixture_problem(const fs::path& relative) {
    const char* env = std::getenv("SIGHTLINE_PEER_FIXTURES");
    const fs::path configured = env && *env ? fs::path(env) : fs::path(SIGHTLINE_PEER_FIXTURES);
    std::error_code ec;
    if (!configured.empty() && !fs::is_directory(configured, ec))
        return "SIGHTLINE_PEER_FIXTURES names " + configured.string() + ", which is not a folder";
    const std::vector<fs::path> peer_only = peer_only_fixtures();
    if (std::find(peer_only.begin(), peer_only.end(), relative) == peer_only.end())
        return (fixtures() / relative).string() + " is missing, and it is not a peer-only fixture (" +
               (fixtures() / "peer_only.txt").string() + "): a vendored fixture was lost";
    if (configured.empty()) return "";
    return configured.string() + " has no " + relative.string() + " (SIGHTLINE_PEER_FIXTURES is set, so the "
           "peer fixtures are expected there)";
}

fs::path find_fixture(const fs::path& relative) {
    std::error_code ec;
    if (fs::exists(fixtures() / relative, ec)) return fixtures() / relative;
    fs::path peer = peer_fixtures();
    if (!peer.empty() && fs::exists(peer / relative, ec)) return peer / relative;
    return {};
}

namespace {
// The 45 MB model is removed when the test process ends.
struct MadeFile {
    fs::path path;
    ~MadeFile() {
        std::error_code ec;
        if (!path.empty()) fs::remove(path, ec);
    }
};
}  // namespace

fs::path torchvision_resnet18() {
    static const MadeFile made = [] {
        fs::path dir = fs::temp_directory_path() / ("sightline-test-" + std::to_string(::getpid()));
        fs::create_directories(dir);
        fs::path pt = dir / "torchvision_resnet18.pt", log = dir / "torchvision_resnet18.log";
        std::string cmd = "/usr/bin/python3 " + (fs::path(SIGHTLINE_SOURCE_DIR) / "tools" / "make_torchvision_resnet18.py").string() +
                          " " + pt.string() + " >" + log.string() + " 2>&1";
        if (std::system(cmd.c_str()) != 0 || !fs::exists(pt)) {
            std::fprintf(stderr, "making a torchvision ResNet-18 failed:\n%s\n", slurp(log).c_str());
            return MadeFile{};
        }
        return MadeFile{pt};
    }();
    return made.path;
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
