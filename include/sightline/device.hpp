// The device models run on (`--device`): the CPU unless a command is told otherwise. Images,
// masks, loaders and every result stay in host memory; tensors cross to the device at the model's
// edge (its weights, its inputs) and results come back before host code reads them, so the same
// code runs on a CUDA build of LibTorch. Debian's LibTorch is CPU-only: docs/distributed.md says
// what was and was not tested.
#pragma once

#include <string>

#include <torch/torch.h>

namespace sightline {

// The process-wide compute device; kCPU until set_compute_device() is called.
torch::Device compute_device();
void set_compute_device(const torch::Device& device);

// "cpu", "cuda" or "cuda:N" as a device. UsageError with one line for any other text or kind,
// for CUDA when this LibTorch build has none, and for a GPU index this machine does not have.
torch::Device parse_device(const std::string& text);

// x on the compute device (the same tensor when it is there already).
torch::Tensor to_compute(const torch::Tensor& x);

}  // namespace sightline
