// Data-parallel training over several processes with LibTorch's c10d: a ProcessGroupGloo
// joined through a TCPStore, with torchrun's launch contract (MASTER_ADDR, MASTER_PORT, RANK,
// WORLD_SIZE, LOCAL_RANK), so the same command runs under torchrun, a SLURM wrapper, Kubernetes
// or `sightline launch`. docs/distributed.md describes the recipes and what is exact.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

namespace sightline {

struct DistributedOptions {
    int rank = 0;
    int world_size = 1;  // LOCAL_RANK is not read: every rank runs on the CPU
    std::string master_addr = "127.0.0.1";
    int master_port = 29500;
    // How long a collective (and the rendezvous) waits for the other ranks before it fails.
    // A rank that dies closes its sockets, and the others fail at once; the timeout is for a
    // rank that hangs or never starts.
    std::chrono::seconds timeout{300};
};

// torchrun's environment: nothing when WORLD_SIZE is unset (one process). Throws UsageError
// naming the variable when one is missing or malformed, or RANK is outside [0, WORLD_SIZE).
// SIGHTLINE_DIST_TIMEOUT (seconds) overrides the timeout.
std::optional<DistributedOptions> distributed_from_environment();

// One process's membership of the group. Collectives block until every rank calls them, in
// the same order; a failure (another rank died, the timeout) throws Error saying so.
class DistributedGroup {
public:
    explicit DistributedGroup(const DistributedOptions& options);
    ~DistributedGroup();
    DistributedGroup(const DistributedGroup&) = delete;
    DistributedGroup& operator=(const DistributedGroup&) = delete;

    int rank() const;
    int size() const;
    bool is_main() const { return rank() == 0; }

    // Gradients of `parameters` summed over the ranks and divided by the number of ranks, in
    // buckets of about 25 MB (one all-reduce per bucket, as PyTorch's DDP). Parameters without
    // a gradient count as zero.
    void average_gradients(const std::vector<torch::Tensor>& parameters);
    // Every rank's tensors get rank `root`'s values (in place; same shapes on every rank).
    void broadcast(const std::vector<torch::Tensor>& tensors, int root = 0);
    // Element-wise sum over the ranks (in place), for small float64 or float32 tensors.
    void all_reduce_sum(torch::Tensor& values);
    // Every rank's `local` ([n, ...], the same shape on every rank) stacked in rank order along
    // dimension 0: [size * n, ...].
    torch::Tensor all_gather_rows(const torch::Tensor& local);
    // Whether any rank says yes (a stop request must stop every rank at the same step).
    bool any(bool flag);

    // The communication volume: bytes of gradients this rank has handed to all-reduces so far,
    // and the number of average_gradients calls (optimisation steps) behind them.
    int64_t gradient_bytes() const;
    int64_t gradient_steps() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sightline
