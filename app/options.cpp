#include "options.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <ATen/Parallel.h>

#include "sightline/device.hpp"

namespace sightline::cli {

std::pair<int, int> parse_size(const std::string& text, const std::string& option) {
    int h = 0, w = 0;
    char x = 0;
    std::istringstream in(text);
    if (text.find('x') != std::string::npos) {
        in >> h >> x >> w;
    } else {
        in >> h;
        w = h;
    }
    if (!in || !in.eof() || h <= 0 || w <= 0)
        throw UsageError(fmt::format("{} '{}': expected HxW, e.g. 224x224", option, text));
    return {h, w};
}

std::array<float, 3> as_triple(const std::vector<float>& values) {
    if (values.size() != 3) throw UsageError(fmt::format("expected three values, got {}", values.size()));
    return {values[0], values[1], values[2]};
}

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> parts;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ','))
        if (!item.empty()) parts.push_back(item);
    return parts;
}


CLI::Option* add_torch_threads_option(CLI::App* cmd, int& threads, const std::string& help) {
    // add_common_checks gives it the thread_count() rule (0 = all cores, else 1..4 x cores).
    return cmd->add_option("--threads", threads, help)->capture_default_str();
}

void apply_torch_threads(int threads) {
    if (threads > 0) at::set_num_threads(threads);
}

const std::vector<std::string>& model_commands() {
    static const std::vector<std::string> paths = {
        "explain",        "inspect",       "audit",          "sanity",    "score",     "segment",     "instance",
        "demo",           "bench explain", "train classify", "train segment", "train instance", "wsss seeds",
        "wsss sweep",     "wsss run"};
    return paths;
}

void add_device_options(CLI::App& app) {
    for (const std::string& path : model_commands()) {
        CLI::App* cmd = &app;
        std::istringstream words(path);
        for (std::string name; words >> name;) cmd = cmd->get_subcommand(name);  // throws when missing
        cmd->add_option_function<std::string>(
               "--device", [](const std::string& text) { set_compute_device(parse_device(text)); },
               "Where the model runs: cpu, cuda or cuda:N (a CUDA build of LibTorch; Debian's is CPU-only). "
               "Images and results stay in host memory")
            ->default_str("cpu");
    }
}

}  // namespace sightline::cli
