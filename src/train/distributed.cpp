// The process group behind data-parallel training: c10d's TCPStore for the rendezvous and
// ProcessGroupGloo for the collectives (Debian's LibTorch is built with Gloo; the headers come
// from libgloo-dev). Every c10d failure becomes one Error line that says which rank saw it.
#ifndef USE_C10D_GLOO  // TorchConfig.cmake defines it for LibTorch builds with Gloo, as Debian's
#define USE_C10D_GLOO
#endif
#include "sightline/distributed.hpp"

#include <cstdlib>
#include <string>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#include "sightline/core.hpp"

namespace sightline {

namespace {

// PyTorch DDP's default bucket size: large enough that the per-message cost is small, small
// enough that a model's gradients do not need a second full-size copy.
constexpr int64_t kBucketBytes = 25 << 20;

int int_from_environment(const char* name, std::optional<int> fallback) {
    const char* text = std::getenv(name);
    if (!text || !*text) {
        if (fallback) return *fallback;
        throw UsageError(fmt::format("{} is not set: WORLD_SIZE is, so every rank needs MASTER_ADDR, MASTER_PORT, "
                                     "RANK and WORLD_SIZE (torchrun's variables; `sightline launch` sets them)",
                                     name));
    }
    char* end = nullptr;
    const long value = std::strtol(text, &end, 10);
    if (*end != '\0' || value < 0 || value > 1'000'000)
        throw UsageError(fmt::format("{}='{}' is not a whole number >= 0", name, text));
    return static_cast<int>(value);
}

bool is_loopback(const std::string& address) {
    return address == "localhost" || address.rfind("127.", 0) == 0 || address == "::1";
}

}  // namespace

std::optional<DistributedOptions> distributed_from_environment() {
    if (!std::getenv("WORLD_SIZE")) return std::nullopt;
    DistributedOptions o;
    o.world_size = int_from_environment("WORLD_SIZE", std::nullopt);
    if (o.world_size < 1) throw UsageError("WORLD_SIZE must be >= 1, got 0");
    o.rank = int_from_environment("RANK", std::nullopt);
    if (o.rank >= o.world_size)
        throw UsageError(fmt::format("RANK={} is outside 0..{} (WORLD_SIZE={})", o.rank, o.world_size - 1,
                                     o.world_size));
    if (o.world_size == 1) return o;
    const char* addr = std::getenv("MASTER_ADDR");
    if (!addr || !*addr) int_from_environment("MASTER_ADDR", std::nullopt);  // throws the message
    o.master_addr = addr;
    o.master_port = int_from_environment("MASTER_PORT", std::nullopt);
    if (o.master_port < 1 || o.master_port > 65535)
        throw UsageError(fmt::format("MASTER_PORT={} is not a port (1..65535)", o.master_port));
    const int timeout = int_from_environment("SIGHTLINE_DIST_TIMEOUT", 300);
    if (timeout < 1) throw UsageError("SIGHTLINE_DIST_TIMEOUT must be >= 1 second");
    o.timeout = std::chrono::seconds(timeout);
    return o;
}

struct DistributedGroup::Impl {
    DistributedOptions options;
    c10::intrusive_ptr<c10d::Store> store;
    c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
    int64_t gradient_bytes = 0, gradient_steps = 0;

    // Runs one collective, turning c10d's and Gloo's exceptions into one line.
    template <typename F>
    void run(const char* what, F&& collective) {
        try {
            collective()->wait();
        } catch (const std::exception& e) {
            std::string reason = e.what();
            if (auto line = reason.find('\n'); line != std::string::npos) reason.resize(line);
            throw Error(fmt::format("rank {} of {}: {} failed, another rank has probably stopped or died (see its "
                                    "output): {}",
                                    options.rank, options.world_size, what, reason));
        }
    }
};

DistributedGroup::DistributedGroup(const DistributedOptions& o) : impl_(std::make_unique<Impl>()) {
    impl_->options = o;
    if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size)
        throw UsageError(fmt::format("rank {} is outside 0..{}", o.rank, o.world_size - 1));
    try {
        c10d::TCPStoreOptions store_options;
        store_options.port = static_cast<std::uint16_t>(o.master_port);
        store_options.isServer = o.rank == 0;
        store_options.numWorkers = static_cast<std::size_t>(o.world_size);
        store_options.waitWorkers = true;
        store_options.timeout = o.timeout;
        impl_->store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, store_options);
        auto gloo_options = c10d::ProcessGroupGloo::Options::create(o.timeout);
        // GLOO_SOCKET_IFNAME picks the interface, as in PyTorch; on one machine the loopback.
        if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME"); interface && *interface)
            gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
        else if (is_loopback(o.master_addr))
            gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
        else
            gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        gloo_options->threads = 2;
        impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, o.rank, o.world_size, gloo_options);
    } catch (const std::exception& e) {
        std::string reason = e.what();
        if (auto line = reason.find('\n'); line != std::string::npos) reason.resize(line);
        throw Error(fmt::format("rank {} of {}: could not join the group at {}:{} within {} s: {}", o.rank,
                                o.world_size, o.master_addr, o.master_port, o.timeout.count(), reason));
    }
}

DistributedGroup::~DistributedGroup() = default;

int DistributedGroup::rank() const { return impl_->options.rank; }
int DistributedGroup::size() const { return impl_->options.world_size; }
int64_t DistributedGroup::gradient_bytes() const { return impl_->gradient_bytes; }
int64_t DistributedGroup::gradient_steps() const { return impl_->gradient_steps; }

void DistributedGroup::average_gradients(const std::vector<torch::Tensor>& parameters) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> grads;
    for (const torch::Tensor& p : parameters) {
        if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
        grads.push_back(p.grad());
    }
    const float scale = 1.0f / static_cast<float>(size());
    ++impl_->gradient_steps;
    std::size_t first = 0;
    while (first < grads.size()) {
        // One bucket: consecutive gradients of one dtype up to kBucketBytes (at least one).
        std::size_t last = first;
        int64_t bytes = 0;
        while (last < grads.size() && grads[last].scalar_type() == grads[first].scalar_type() &&
               (last == first || bytes + grads[last].nbytes() <= static_cast<std::size_t>(kBucketBytes)))
            bytes += static_cast<int64_t>(grads[last++].nbytes());
        std::vector<torch::Tensor> flat_parts;
        for (std::size_t i = first; i < last; ++i) flat_parts.push_back(grads[i].reshape({-1}));
        std::vector<torch::Tensor> bucket{torch::cat(flat_parts)};
        impl_->run("the gradient all-reduce", [&] { return impl_->group->allreduce(bucket); });
        impl_->gradient_bytes += bytes;
        bucket[0].mul_(scale);
        int64_t offset = 0;
        for (std::size_t i = first; i < last; ++i) {
            const int64_t n = grads[i].numel();
            grads[i].copy_(bucket[0].narrow(0, offset, n).view_as(grads[i]));
            offset += n;
        }
        first = last;
    }
}

void DistributedGroup::broadcast(const std::vector<torch::Tensor>& tensors, int root) {
    if (tensors.empty()) return;
    torch::NoGradGuard no_grad;
    c10d::BroadcastOptions options;
    options.rootRank = root;
    for (const torch::Tensor& t : tensors) {
        // Gloo needs contiguous dense tensors; parameters and buffers are.
        std::vector<torch::Tensor> one{t.detach()};
        impl_->run("a broadcast", [&] { return impl_->group->broadcast(one, options); });
    }
}

void DistributedGroup::all_reduce_sum(torch::Tensor& values) {
    std::vector<torch::Tensor> one{values};
    impl_->run("an all-reduce", [&] { return impl_->group->allreduce(one); });
}

torch::Tensor DistributedGroup::all_gather_rows(const torch::Tensor& local) {
    torch::Tensor input = local.contiguous();
    std::vector<std::vector<torch::Tensor>> outputs(1);
    for (int r = 0; r < size(); ++r) outputs[0].push_back(torch::empty_like(input));
    std::vector<torch::Tensor> inputs{input};
    impl_->run("an all-gather", [&] { return impl_->group->allgather(outputs, inputs); });
    return torch::cat(outputs[0]);
}

bool DistributedGroup::any(bool flag) {
    torch::Tensor value = torch::full({1}, flag ? 1.0 : 0.0, torch::kFloat64);
    all_reduce_sum(value);
    return value.item<double>() > 0;
}

}  // namespace sightline
