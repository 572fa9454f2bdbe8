// Building blocks for the built-in architectures: each is a small TorchScript module with its
// parameters registered as leaf tensors (requires_grad) and a define()d forward.
#pragma once

#include <memory>
#include <string>

#include <torch/script.h>

#include "sightline/architectures.hpp"

namespace sightline::detail {

class ModuleFactory {
public:
    explicit ModuleFactory(uint64_t seed, Norm norm = Norm::kBatch);

    // An empty module of a new class type (names are mangled in the shared compilation unit)
    // with the `training` attribute that Module::train()/eval() sets.
    torch::jit::Module make(const std::string& type_name);

    // 3x3 or 1x1 convolution without bias (BatchNorm follows); Kaiming-normal (fan_out, ReLU)
    // initialisation as in He et al. 2015 and torchvision's ResNet.
    torch::jit::Module conv(int64_t in_channels, int64_t out_channels, int64_t kernel,
                            int64_t stride, int64_t padding);
    // The factory's normalisation: BatchNorm2d (momentum 0.1, eps 1e-5; batch statistics while
    // `training`, running ones after) or GroupNorm (min(8, channels) groups, eps 1e-5).
    torch::jit::Module norm(int64_t channels);
    // y = x W^T + b, PyTorch's default uniform(+-1/sqrt(in)) initialisation.
    torch::jit::Module linear(int64_t in_features, int64_t out_features);

private:
    std::shared_ptr<torch::jit::CompilationUnit> unit_;
    at::Generator generator_;
    Norm norm_;
};

// Registers the classifier head on `model` (submodules fc, or fc1 + fc2) and defines its
// head(a), forward(x) = head(features(x)) and the sightline_* metadata attributes. `channels`
// and `side` describe A; `features(x)` must already be defined.
struct HeadSpec {
    std::string arch;
    int head = 0;  // HeadDesign
    int64_t channels = 0, side = 0, input_size = 0, output_stride = 0;
    int64_t num_classes = 0, hidden = 0;
};
void add_head(ModuleFactory& factory, torch::jit::Module& model, const HeadSpec& spec);

// Registers a parameter that trains: a leaf tensor with requires_grad.
void add_parameter(torch::jit::Module& module, const std::string& name, torch::Tensor value);

}  // namespace sightline::detail

namespace sightline {
struct ArchOptions;
}
namespace sightline::detail {
// The two backbones; `head` is a HeadDesign, `name` the registry name stored in the model.
torch::jit::Module build_resnet(const ArchOptions& options, int head, const std::string& name);
torch::jit::Module build_vgg(const ArchOptions& options, int head, const std::string& name);
// One ResNet stage of `blocks` basic blocks (the first with `stride` and a projection
// shortcut where the shape changes), as the classifiers' layer1..layer4; forward(x).
torch::jit::Module resnet_stage(ModuleFactory& f, int64_t blocks, int64_t in_channels, int64_t out_channels,
                                int64_t stride);
}  // namespace sightline::detail
