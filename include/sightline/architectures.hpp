// Built-in classifiers, made in C++ as TorchScript modules (torch::jit::Module with
// registered parameters/buffers/submodules and define()d methods), so one object trains in
// C++, is saved with module.save() and opens in Python with torch.jit.load().
//
// Every built-in model has three methods:
//   features(x) -> A        x [B,3,S,S] float32, normalised with the model card's mean/std;
//                           A [B,C,S/os,S/os], the last conv activation (after its ReLU),
//                           os = output stride (4, 8 or 16)
//   head(A)     -> logits   [B,K], K = number of object classes (class id - 1 = output index)
//   forward(x)  =  head(features(x))
// Submodules are named like torchvision's ResNet (stem, layer1..layer4, fc) so `--layer layer4`
// names the same activation as features(). Each module has a `training` attribute: train() and
// eval() switch BatchNorm between batch statistics and running statistics.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/script.h>

#include "sightline/core.hpp"

namespace sightline {

// What the head computes, which decides what an explanation method can guarantee.
enum class HeadDesign {
    kGapLinear,      // global average pooling -> Linear: the CAM architecture
    kFlattenLinear,  // flatten -> Linear: HiResCAM is exact; needs the fixed input size
    kMlp,            // GAP -> Linear -> ReLU -> Linear: no guarantee
};
// The normalisation after each convolution. BatchNorm uses the batch's statistics while
// training, so data-parallel runs depend on how a batch is split; GroupNorm (Wu & He 2018,
// 8 groups or fewer when channels are few) normalises each image alone, so a run gives the same
// weights on any number of processes.
enum class Norm { kBatch, kGroup };
// The --norm choices: "batch", "group".
const std::vector<std::pair<std::string, Norm>>& norm_choices();
std::string to_string(Norm norm);

// "gap_linear", "flatten_linear", "mlp" (the model card's "head" field).
std::string head_design_name(HeadDesign head);
HeadDesign parse_head_design(const std::string& name);

struct ArchOptions {
    int64_t num_classes = 0;                  // outputs (object classes, no background)
    int64_t input_size = 96;                  // square input side; the flatten head needs exactly this
    int64_t width = 16;                       // channels of stage 1; stage s has width * 2^(s-1)
    std::vector<int64_t> depth = {1, 1, 1, 1};  // blocks (ResNet) or convs (VGG) per stage, 4 stages
    int64_t output_stride = 8;                // 4, 8 or 16: input side / feature side
    int64_t hidden = 128;                     // hidden units of the MLP head
    uint64_t seed = 1;                        // weight initialisation
    Norm norm = Norm::kBatch;                 // normalisation after each convolution
};

struct ArchInfo {
    std::string name;
    std::string description;
    HeadDesign head;
    torch::jit::Module (*build)(const ArchOptions&);
};

// The table of built-in architectures: the CLI's --arch choices and its help read it.
const std::vector<ArchInfo>& architectures();
// Throws UsageError "unknown architecture 'x' (choices: a, b, ...)".
const ArchInfo& find_architecture(const std::string& name);
// "resnet_gap, resnet_flatten, ..." in table order.
std::string architecture_names();
// One line per architecture: name and description (for --help and `sightline list`).
std::string architecture_help();

// Validates the options (throws UsageError naming the bad option) and builds the model in
// training mode with freshly initialised weights (deterministic per options.seed).
torch::jit::Module build_architecture(const std::string& name, const ArchOptions& options);
// Side of the square feature map for this input size (input_size / output_stride, rounded up).
int64_t feature_side(const ArchOptions& options);

// What a user of a trained model needs besides the weights: saved as RUN/model.json next to
// RUN/model.pt and as module attributes (sightline_arch, sightline_class_names, ...).
struct ModelCard {
    std::string arch;
    HeadDesign head = HeadDesign::kGapLinear;
    int64_t input_size = 0;
    int64_t output_stride = 0;
    std::vector<std::string> class_names;  // object classes, output order (no background)
    std::vector<double> mean;               // per RGB channel, for pixels scaled to [0,1]
    std::vector<double> std;
};
std::string model_card_json(const ModelCard& card);
// Throws Error naming the file for a missing file or a missing/mistyped field.
ModelCard read_model_card(const fs::path& path);
// Stores the card as module attributes (so the .pt alone also knows its class names).
void attach_model_card(torch::jit::Module& module, const ModelCard& card);

}  // namespace sightline
