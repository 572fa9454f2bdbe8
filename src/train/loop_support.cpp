#include "sightline/device.hpp"
#include "train/loop_support.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <mutex>
#include <sstream>

#include <fmt/format.h>

namespace sightline::detail {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

void check_optimisation_options(int64_t epochs, int64_t batch, double lr) {
    auto check = [](bool ok, const std::string& message) {
        if (!ok) throw UsageError(message);
    };
    check(epochs >= 1, fmt::format("--epochs must be >= 1, got {}", epochs));
    check(batch >= 2, fmt::format("--batch must be >= 2 (BatchNorm needs two images), got {}", batch));
    check(lr >= 0, fmt::format("--lr must be >= 0, got {}", lr));
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(OptimizerKind kind, double momentum,
                                                        torch::jit::Module& model, double lr, double weight_decay,
                                                        const std::vector<torch::Tensor>& extra) {
    std::vector<torch::Tensor> params;
    for (const auto& p : model.parameters(true)) params.push_back(p);
    params.insert(params.end(), extra.begin(), extra.end());
    if (kind == OptimizerKind::kSgd)
        return std::make_unique<torch::optim::SGD>(
            params, torch::optim::SGDOptions(lr).momentum(momentum).weight_decay(weight_decay));
    // Loshchilov & Hutter 2019: decoupled weight decay.
    return std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(lr).weight_decay(weight_decay));
}

ScheduleOptions make_schedule(ScheduleKind kind, double base_lr, int64_t steps, int64_t epochs,
                              double warmup_epochs) {
    ScheduleOptions schedule;
    schedule.kind = kind;
    schedule.base_lr = base_lr;
    schedule.total_steps = steps * epochs;
    schedule.warmup_steps = static_cast<int64_t>(std::llround(warmup_epochs * static_cast<double>(steps)));
    return schedule;
}

GraphOptimizeOff::GraphOptimizeOff() : old_(torch::jit::getGraphExecutorOptimize()) {
    torch::jit::setGraphExecutorOptimize(false);
}

GraphOptimizeOff::~GraphOptimizeOff() { torch::jit::setGraphExecutorOptimize(old_); }

KeepGlobalRandomState::KeepGlobalRandomState() : state_(at::detail::getDefaultCPUGenerator().get_state()) {}

KeepGlobalRandomState::~KeepGlobalRandomState() {
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state_);
}

std::string module_bytes(torch::jit::Module& model) {
    model.eval();
    std::ostringstream bytes;
    if (compute_device().is_cpu()) {
        model.save(bytes);
    } else {
        // Saved from a host copy: the file loads on any machine, with or without a GPU.
        torch::jit::Module host = model.clone();
        host.to(torch::kCPU);
        host.save(bytes);
    }
    model.train();
    return bytes.str();
}

EpochTotals::EpochTotals(const RunProgress& progress) : started_(std::chrono::steady_clock::now()) {
    if (progress.step_in_epoch > 0) {
        loss_sum = progress.partial_loss;
        carried_seconds_ = progress.partial_seconds;
        carried_wait_ = progress.partial_wait;
    }
}

double EpochTotals::seconds() const { return carried_seconds_ + seconds_since(started_); }

double EpochTotals::wait(const BatchLoader& loader) const { return carried_wait_ + loader.wait_seconds(); }

bool run_epoch_steps(BatchLoader& loader, torch::optim::Optimizer& optimizer, const ScheduleOptions& schedule,
                     int64_t stage_start, const LossOfBatch& loss_of, const OnStep& on_step,
                     const std::function<bool()>& stop_requested, RunProgress& progress, EpochTotals& totals,
                     const StepSync& sync) {
    const int64_t steps = loader.batches_per_epoch();
    DistributedGroup* group = sync.group;
    const std::vector<torch::Tensor> parameters = group ? optimiser_parameters(optimizer) : std::vector<torch::Tensor>{};
    totals.lr = learning_rate(schedule, progress.global_step - stage_start);
    loader.start_epoch(progress.epoch, progress.step_in_epoch);
    while (auto batch = loader.next()) {
        totals.lr = learning_rate(schedule, progress.global_step - stage_start);
        for (auto& param_group : optimizer.param_groups()) param_group.options().set_lr(totals.lr);
        optimizer.zero_grad();
        if (group) group->broadcast(sync.buffers);
        torch::Tensor loss = loss_of(*batch, progress.global_step - stage_start);
        loss.backward();
        if (group) group->average_gradients(parameters);
        optimizer.step();
        ++progress.global_step, ++progress.step_in_epoch;
        double value = loss.item<double>();
        if (group) {
            // The loss shown is the mean over the ranks.
            torch::Tensor shared = torch::tensor({value}, torch::kFloat64);
            group->all_reduce_sum(shared);
            value = shared[0].item<double>() / group->size();
        }
        totals.loss_sum += value;
        if (on_step) on_step(progress.epoch + 1, progress.step_in_epoch, steps, value);
        // Asked only before the epoch's last step (a stop after it is the epoch's own end), and
        // data-parallel, every rank stops when any rank was asked to.
        bool stop = progress.step_in_epoch < steps && stop_requested && stop_requested();
        if (group && progress.step_in_epoch < steps) stop = group->any(stop);
        if (stop) return false;
    }
    return true;
}

StepSync step_sync(DistributedGroup* group, const torch::jit::Module& model) {
    StepSync sync;
    if (!group) return sync;
    sync.group = group;
    for (const auto& b : model.buffers(true)) sync.buffers.push_back(b);
    return sync;
}

void start_from_rank_zero(DistributedGroup* group, const torch::jit::Module& model) {
    if (!group) return;
    std::vector<torch::Tensor> state;
    for (const auto& p : model.parameters(true)) state.push_back(p);
    for (const auto& b : model.buffers(true)) state.push_back(b);
    group->broadcast(state);
}

std::vector<torch::Tensor> optimiser_parameters(torch::optim::Optimizer& optimizer) {
    std::vector<torch::Tensor> parameters;
    for (auto& param_group : optimizer.param_groups())
        for (const torch::Tensor& p : param_group.params()) parameters.push_back(p);
    return parameters;
}

bool stop_agreed(const std::function<bool()>& stop_requested, DistributedGroup* group) {
    const bool stop = stop_requested && stop_requested();
    return group ? group->any(stop) : stop;
}

bool stop_after_epoch(const std::function<bool()>& stop_requested, int64_t stop_after, int64_t epochs_done,
                      DistributedGroup* group) {
    return stop_agreed(stop_requested, group) || (stop_after > 0 && epochs_done == stop_after);
}

}  // namespace sightline::detail
