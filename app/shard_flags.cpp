#include "shard_flags.hpp"

#include <cstdlib>
#include <iostream>
#include <sstream>

#include <fmt/format.h>

#include "sightline/core.hpp"

namespace sightline::cli {

void add_shard_option(CLI::App* cmd, std::string& text, const std::string& what) {
    cmd->add_option("--shard", text,
                    fmt::format("I/N: {} (blocks of --batch inputs, every N-th from block I); `sightline merge` "
                                "joins the N outputs. Default: torchrun's RANK/WORLD_SIZE when set, else all",
                                what))
        ->check(CLI::Validator(
            [](std::string& value) -> std::string {
                int i = -1, n = 0;
                char slash = 0;
                std::istringstream in(value);
                in >> i >> slash >> n;
                if (!in || !in.eof() || slash != '/' || n < 1 || i < 0 || i >= n)
                    return fmt::format("'{}' is not a shard; give I/N with 0 <= I < N, e.g. 0/4", value);
                return {};
            },
            "I/N"));
}

std::pair<int, int> resolve_shard(const std::string& text) {
    if (!text.empty()) {
        const auto slash = text.find('/');
        return {std::stoi(text.substr(0, slash)), std::stoi(text.substr(slash + 1))};
    }
    const char* rank = std::getenv("RANK");
    const char* world = std::getenv("WORLD_SIZE");
    if (!rank || !world) return {0, 1};
    std::pair<int, int> shard;
    try {
        shard = {std::stoi(rank), std::stoi(world)};
    } catch (const std::exception&) {
        throw UsageError(fmt::format("RANK={} WORLD_SIZE={}: not whole numbers (torchrun's environment)", rank, world));
    }
    if (shard.second < 1 || shard.first < 0 || shard.first >= shard.second)
        throw UsageError(fmt::format("RANK={} is outside 0..{} (WORLD_SIZE={})", shard.first, shard.second - 1,
                                     shard.second));
    if (shard.second > 1)
        std::cerr << fmt::format("sightline: note: shard {}/{} from torchrun's RANK and WORLD_SIZE\n", shard.first,
                                 shard.second);
    return shard;
}

}  // namespace sightline::cli
