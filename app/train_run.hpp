// What `train classify` and `train segment` share on the command line: stop on SIGINT/SIGTERM
// after the current step, a step progress bar on a terminal, and the message of an
// interrupted run.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "sightline/core.hpp"

namespace sightline {
class DistributedGroup;
}

namespace sightline::cli {

// Data-parallel training under torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT; `sightline launch` sets them): the joined group, or null for one process.
std::shared_ptr<DistributedGroup> join_distributed_group();

// Only rank 0 prints progress and results (the others would repeat them); null group: yes.
bool prints_progress(const DistributedGroup* group);

// "data-parallel: N processes, X MB of gradients all-reduced per step by each" (rank 0, after a
// data-parallel run that made at least one step; nothing otherwise).
void print_communication(const DistributedGroup* group);

// While alive, SIGINT / SIGTERM ask the loop to finish its step and save a checkpoint; a second
// signal of the same kind kills as usual (the handler resets itself). Restores the old handlers.
class StopOnSignals {
public:
    StopOnSignals();
    ~StopOnSignals();
    StopOnSignals(const StopOnSignals&) = delete;
    StopOnSignals& operator=(const StopOnSignals&) = delete;
    int signal() const;  // the signal received, 0 if none

private:
    void (*old_int_)(int);
    void (*old_term_)(int);
};

// A one-line progress bar on stderr when it is a terminal; empty (no bar) when piped.
std::function<void(int64_t epoch, int64_t step, int64_t steps, double loss)> step_bar();

// The Error for a run that stopped early: names the checkpoint, why and where, and how to go
// on; exit code 128 + signal (1 for --stop-after-epoch).
Error interrupted_error(const fs::path& checkpoint, int signal, int64_t epochs_done, int64_t step_in_epoch,
                        const char* debug_flag = "--stop-after-epoch");

}  // namespace sightline::cli
