// Signals, progress bar and interruption message shared by the training subcommands.
#include "train_run.hpp"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "sightline/device.hpp"
#include "sightline/distributed.hpp"

namespace sightline::cli {

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void request_stop(int signal) {
    g_stop_signal = signal;
    std::signal(signal, SIG_DFL);
}

}  // namespace

StopOnSignals::StopOnSignals() {
    g_stop_signal = 0;
    old_int_ = std::signal(SIGINT, request_stop);
    old_term_ = std::signal(SIGTERM, request_stop);
}

StopOnSignals::~StopOnSignals() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
}

int StopOnSignals::signal() const { return g_stop_signal; }

std::function<void(int64_t, int64_t, int64_t, double)> step_bar() {
    if (!::isatty(2)) return {};
    return [](int64_t epoch, int64_t step, int64_t steps, double loss) {
        const int width = 30, filled = static_cast<int>(width * step / std::max<int64_t>(steps, 1));
        std::fprintf(stderr, "\repoch %lld [%s%s] %lld/%lld loss %.4f", static_cast<long long>(epoch),
                     std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                     static_cast<long long>(step), static_cast<long long>(steps), loss);
        if (step == steps) std::fprintf(stderr, "\r%*s\r", 80, "");
        std::fflush(stderr);
    };
}

std::shared_ptr<DistributedGroup> join_distributed_group() {
    const std::optional<DistributedOptions> options = distributed_from_environment();
    if (!options || options->world_size == 1) return nullptr;
    // The gradients are all-reduced by Gloo in host memory; a GPU per rank is not wired yet.
    if (!compute_device().is_cpu())
        throw UsageError(fmt::format("--device {}: data-parallel training ({} processes) runs on the CPU only; drop "
                                     "--device or run one process",
                                     compute_device().str(), options->world_size));
    return std::make_shared<DistributedGroup>(*options);
}

bool prints_progress(const DistributedGroup* group) { return !group || group->is_main(); }

void print_communication(const DistributedGroup* group) {
    if (!group || !group->is_main() || group->gradient_steps() == 0) return;
    fmt::print("data-parallel: {} processes, {:.3f} MB of gradients all-reduced per step by each\n", group->size(),
               static_cast<double>(group->gradient_bytes()) / static_cast<double>(group->gradient_steps()) / 1e6);
}

Error interrupted_error(const fs::path& checkpoint, int signal, int64_t epochs_done, int64_t step_in_epoch,
                        const char* debug_flag) {
    const std::string why = signal == SIGINT    ? "interrupted (SIGINT)"
                            : signal == SIGTERM ? "terminated (SIGTERM)"
                                                : fmt::format("stopped ({})", debug_flag);
    const std::string where = step_in_epoch > 0 ? fmt::format("in epoch {} after step {}", epochs_done + 1, step_in_epoch)
                                                : fmt::format("after epoch {}", epochs_done);
    return Error(fmt::format("{}: {} {}; checkpoint saved, continue with --resume", checkpoint.string(), why, where),
                 signal ? 128 + signal : 1);
}

}  // namespace sightline::cli
