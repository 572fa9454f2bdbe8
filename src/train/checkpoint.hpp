// RUN/checkpoint/checkpoint.pt: one torch archive written atomically (temp file + rename)
// holding everything a resume needs: the run's meta data as JSON (options, epoch, step,
// data order, metrics so far), model parameters and buffers, optimiser state, the partial
// epoch's outputs and LibTorch's CPU generator state.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sightline/core.hpp"

namespace sightline::detail {

struct PartialEpoch {
    torch::Tensor logits;   // [n,K] training outputs of the steps done in the epoch
    torch::Tensor targets;  // [n,K]
};

// `extra`: named tensors trained beside the model (e.g. SC-CAM's sub-category head).
void save_checkpoint(const fs::path& path, const nlohmann::json& meta, const torch::jit::Module& model,
                     torch::optim::Optimizer& optimizer, const PartialEpoch& partial,
                     const std::vector<std::pair<std::string, torch::Tensor>>& extra = {});

// A tensor saved in `extra`; throws Error naming the file when it is missing.
torch::Tensor read_checkpoint_extra(const fs::path& path, const std::string& name);

// The meta data alone (to check that a resume matches before building anything).
nlohmann::json read_checkpoint_meta(const fs::path& path);

// Copies the saved parameters and buffers into `model` (same names and shapes required),
// restores the optimiser and the generator, returns the partial epoch.
PartialEpoch load_checkpoint_state(const fs::path& path, torch::jit::Module& model,
                                   torch::optim::Optimizer& optimizer);

}  // namespace sightline::detail
