#include "options.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <ATen/Parallel.h>

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

std::array<float, 3> parse_triple(const std::string& text, const std::string& option) {
    std::vector<std::string> parts = split_list(text);
    std::array<float, 3> out{};
    if (parts.size() != 3)
        throw UsageError(fmt::format("{} '{}': expected three comma-separated numbers", option, text));
    for (int i = 0; i < 3; ++i) {
        try {
            std::size_t used = 0;
            out[i] = std::stof(parts[i], &used);
            if (used != parts[i].size() || !std::isfinite(out[i])) throw std::invalid_argument("not finite");
        } catch (const std::exception&) {
            throw UsageError(fmt::format("{} '{}': '{}' is not a number", option, text, parts[i]));
        }
    }
    return out;
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

}  // namespace sightline::cli
