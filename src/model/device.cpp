#include "sightline/device.hpp"

#include <atomic>

#include <fmt/format.h>

#include "sightline/core.hpp"

namespace sightline {

namespace {

// Type and index: set once per process while the command line is parsed, before any model loads.
std::atomic<int> current_type{static_cast<int>(torch::kCPU)};
std::atomic<int> current_index{-1};

}  // namespace

torch::Device compute_device() {
    return {static_cast<torch::DeviceType>(current_type.load()), static_cast<torch::DeviceIndex>(current_index.load())};
}

void set_compute_device(const torch::Device& device) {
    current_type = static_cast<int>(device.type());
    current_index = device.index();
}

torch::Device parse_device(const std::string& text) {
    const bool cuda = text == "cuda" || text.rfind("cuda:", 0) == 0;
    if (text != "cpu" && !cuda)
        throw UsageError(fmt::format("--device {}: give cpu, cuda or cuda:N", text));
    if (text == "cpu") return torch::kCPU;
    int index = -1;
    if (text != "cuda") {  // cuda:N
        const std::string digits = text.substr(5);
        if (digits.empty() || digits.size() > 3 || digits.find_first_not_of("0123456789") != std::string::npos)
            throw UsageError(fmt::format("--device {}: give cpu, cuda or cuda:N", text));
        index = std::stoi(digits);
    }
    if (!torch::cuda::is_available())
        throw UsageError(fmt::format("--device {}: this LibTorch build has no CUDA, or no GPU is visible (Debian's "
                                     "libtorch is CPU-only; build against a CUDA LibTorch with -DTorch_DIR=..., "
                                     "docs/distributed.md)",
                                     text));
    const int count = static_cast<int>(torch::cuda::device_count());
    if (index >= count)
        throw UsageError(fmt::format("--device {}: this machine has {} GPU(s), cuda:0..cuda:{}", text, count, count - 1));
    return {torch::kCUDA, static_cast<torch::DeviceIndex>(index)};
}

torch::Tensor to_compute(const torch::Tensor& x) { return x.to(compute_device()); }

}  // namespace sightline
