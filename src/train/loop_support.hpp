// What the classifier trainer and the U-Net trainer share around their loss: option checks,
// the optimiser and its schedule, the plain interpreter, the epoch's optimisation steps and
// the finished model's bytes. Each trainer keeps only its model, loss and metrics.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "sightline/distributed.hpp"
#include "sightline/train.hpp"
#include "train/run_folder.hpp"

namespace sightline::detail {

// --epochs, --batch and --lr; throws UsageError naming the flag.
void check_optimisation_options(int64_t epochs, int64_t batch, double lr);

// SGD with momentum or AdamW over the model's parameters followed by `extra`.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(OptimizerKind kind, double momentum,
                                                        torch::jit::Module& model, double lr, double weight_decay,
                                                        const std::vector<torch::Tensor>& extra = {});

// A schedule over `epochs` epochs of `steps` steps with `warmup_epochs` (rounded to steps) of warm-up.
ScheduleOptions make_schedule(ScheduleKind kind, double base_lr, int64_t steps, int64_t epochs,
                              double warmup_epochs);

// Training runs the plain interpreter for its scope: the profiling executor would swap graphs
// after its first runs, and a resumed run would then not repeat the uninterrupted one. The
// flag is global, so the old value is restored after.
class GraphOptimizeOff {
public:
    GraphOptimizeOff();
    ~GraphOptimizeOff();
    GraphOptimizeOff(const GraphOptimizeOff&) = delete;
    GraphOptimizeOff& operator=(const GraphOptimizeOff&) = delete;

private:
    bool old_;
};

// Training draws from (and a resume restores) LibTorch's global generator, the one Python's
// torch.manual_seed seeds, so that runs match PyTorch's recipes. The caller's generator state
// is given back when the scope ends: a library call leaves process-wide state as it found it.
class KeepGlobalRandomState {
public:
    KeepGlobalRandomState();
    ~KeepGlobalRandomState();
    KeepGlobalRandomState(const KeepGlobalRandomState&) = delete;
    KeepGlobalRandomState& operator=(const KeepGlobalRandomState&) = delete;

private:
    torch::Tensor state_;
};

// The TorchScript bytes of the model in eval mode (the mode it is loaded in); leaves it training.
std::string module_bytes(torch::jit::Module& model);

// One epoch's running totals. A resumed epoch (progress.step_in_epoch > 0) starts from the
// loss, seconds and data wait saved at the interruption.
class EpochTotals {
public:
    explicit EpochTotals(const RunProgress& progress);
    double loss_sum = 0.0;
    double lr = 0.0;  // at the latest step
    double seconds() const;
    double wait(const BatchLoader& loader) const;  // seconds spent waiting for batches

private:
    std::chrono::steady_clock::time_point started_;
    double carried_seconds_ = 0.0, carried_wait_ = 0.0;
};

// The loss of one batch at step `stage_step` of the schedule (the model's forward is inside).
using LossOfBatch = std::function<torch::Tensor(const Batch& batch, int64_t stage_step)>;
using OnStep = std::function<void(int64_t epoch, int64_t step, int64_t steps, double loss)>;

// Data-parallel training: what each step shares with the other ranks. Before the forward,
// every rank takes rank 0's buffers (BatchNorm's running statistics, as PyTorch's DDP with
// broadcast_buffers); after the backward, the optimiser's gradients are averaged; the loss
// shown is the mean over the ranks, and a stop request on any rank stops them all.
struct StepSync {
    DistributedGroup* group = nullptr;  // null: one process, nothing to share
    std::vector<torch::Tensor> buffers;
};

// The StepSync of `model` in `group` (null: one process).
StepSync step_sync(DistributedGroup* group, const torch::jit::Module& model);

// Every rank takes rank 0's parameters and buffers, as PyTorch's DDP does at the start (the
// ranks built them from the same seed or checkpoint; this makes sure). Nothing without a group.
void start_from_rank_zero(DistributedGroup* group, const torch::jit::Module& model);

// Runs the rest of epoch progress.epoch from progress.step_in_epoch: per step the scheduled
// learning rate (at global_step - stage_start), the loss, backward and the optimiser step,
// then on_step (1-based epoch and step). Returns false when stop_requested() said stop before
// the epoch's last step; `progress` and `totals` then hold where it stopped.
bool run_epoch_steps(BatchLoader& loader, torch::optim::Optimizer& optimizer, const ScheduleOptions& schedule,
                     int64_t stage_start, const LossOfBatch& loss_of, const OnStep& on_step,
                     const std::function<bool()>& stop_requested, RunProgress& progress, EpochTotals& totals,
                     const StepSync& sync = {});

// The optimiser's parameters, in its order (the tensors whose gradients a step averages).
std::vector<torch::Tensor> optimiser_parameters(torch::optim::Optimizer& optimizer);

// Whether to stop: asked to on this rank, or (data-parallel) on any rank.
bool stop_agreed(const std::function<bool()>& stop_requested, DistributedGroup* group);

// After epoch `epochs_done`: stop when asked to (on any rank) or when --stop-after-epoch says so.
bool stop_after_epoch(const std::function<bool()>& stop_requested, int64_t stop_after, int64_t epochs_done,
                      DistributedGroup* group = nullptr);

}  // namespace sightline::detail
