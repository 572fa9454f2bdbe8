// Model-parameter randomisation (Adebayo et al. 2018, section 4.1): blocks of a TorchScript
// module and PyTorch's default re-initialisation of their layers, seeded per module path.
#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "sightline/sanity.hpp"

namespace sightline {

namespace {

using torch::jit::Module;

int64_t direct_parameter_count(const Module& m) {
    int64_t n = 0;
    for (const auto& p : m.named_parameters(/*recurse=*/false)) n += p.value.numel();
    return n;
}

bool owns_state(const Module& m) {
    return m.named_parameters(false).size() > 0 || m.named_buffers(false).size() > 0;
}

// Dotted paths of `m` and its descendants that own parameters or buffers.
void collect_owners(const Module& m, const std::string& path, std::vector<std::string>& out) {
    if (owns_state(m)) out.push_back(path);
    for (const auto& child : m.named_children())
        collect_owners(child.value, path.empty() ? child.name : path + "." + child.name, out);
}

int64_t total_parameters(const Module& m) {
    int64_t n = 0;
    for (const auto& p : m.named_parameters(true)) n += p.value.numel();
    return n;
}

void collect_blocks(const Module& m, const std::string& path, int depth,
                    std::vector<ParameterBlock>& out, std::vector<ParameterBlock>& loose) {
    if (depth == 0 || m.named_children().size() == 0) {
        ParameterBlock b{path.empty() ? "(root)" : path, {}, total_parameters(m)};
        collect_owners(m, path, b.modules);
        if (b.parameters > 0) out.push_back(std::move(b));
        return;
    }
    for (const auto& child : m.named_children())
        collect_blocks(child.value, path.empty() ? child.name : path + "." + child.name, depth - 1, out, loose);
    if (direct_parameter_count(m) > 0 || m.named_buffers(false).size() > 0) {
        int64_t n = direct_parameter_count(m);
        if (n > 0) loose.push_back({path.empty() ? "(root)" : path + " (own parameters)", {path}, n});
    }
}

Module find_module(const Module& root, const std::string& path) {
    Module m = root;
    if (path.empty()) return m;
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t dot = path.find('.', start);
        std::string name = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        m = m.attr(name).toModule();
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    return m;
}

// FNV-1a: a stable per-module stream, independent of which other blocks are randomised.
uint64_t mix(uint64_t seed, const std::string& path) {
    uint64_t h = 1469598103934665603ull ^ (seed * 0x9E3779B97F4A7C15ull);
    for (unsigned char c : path) h = (h ^ c) * 1099511628211ull;
    return h;
}

void reinitialise_module(Module m, const std::string& path, uint64_t seed) {
    torch::NoGradGuard no_grad;
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(mix(seed, path));
    bool batch_norm = false;
    for (const auto& b : m.named_buffers(false))
        if (b.name == "running_mean" || b.name == "running_var") batch_norm = true;
    // GroupNorm and LayerNorm keep no statistics; their reset_parameters() is affine 1 / 0 too.
    const std::string type = m.type()->name() ? m.type()->name()->qualifiedName() : "";
    if (type.find("GroupNorm") != std::string::npos || type.find("LayerNorm") != std::string::npos) batch_norm = true;
    if (batch_norm) {
        // torch.nn.BatchNorm's reset_parameters(): affine 1 / 0, statistics of a fresh layer.
        for (const auto& p : m.named_parameters(false)) p.value.fill_(p.name == "weight" ? 1.0 : 0.0);
        for (const auto& b : m.named_buffers(false)) {
            if (b.name == "running_var") b.value.fill_(1);
            else if (b.name == "running_mean" || b.name == "num_batches_tracked") b.value.zero_();
        }
        return;
    }
    // fan_in of the module's weight decides the bias bound, as Conv/Linear.reset_parameters().
    double weight_fan_in = 0;
    for (const auto& p : m.named_parameters(false))
        if (p.value.dim() >= 2) {
            weight_fan_in = static_cast<double>(p.value.numel() / p.value.size(0));
            if (p.name == "weight") break;
        }
    for (const auto& p : m.named_parameters(false)) {
        torch::Tensor t = p.value;
        double fan_in = t.dim() >= 2 ? static_cast<double>(t.numel() / t.size(0))
                                      : (weight_fan_in > 0 ? weight_fan_in : static_cast<double>(t.numel()));
        // kaiming_uniform_(a = sqrt(5)): gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in)
        // = 1 / sqrt(fan_in); the bias uses the same bound.
        double bound = 1.0 / std::sqrt(std::max(1.0, fan_in));
        t.uniform_(-bound, bound, gen);
    }
}

}  // namespace

std::vector<ParameterBlock> parameter_blocks(const Module& model, int depth, const std::string& source) {
    if (depth < 1) throw UsageError(fmt::format("--depth: must be at least 1, or 'layers' (got {})", depth));
    std::vector<ParameterBlock> blocks, loose;
    collect_blocks(model, "", depth, blocks, loose);
    // Parameters held above the block depth (e.g. a model that registers its weights on the
    // root) are randomised first, as the output side.
    blocks.insert(blocks.end(), loose.begin(), loose.end());
    if (blocks.empty())
        throw Error(fmt::format("{}: the model has no parameters to re-initialise", source));
    return blocks;
}

void reinitialise(Module& model, const ParameterBlock& block, uint64_t seed) {
    // Each listed module re-initialises only its own parameters and buffers.
    for (const auto& path : block.modules) reinitialise_module(find_module(model, path), path, seed);
}

}  // namespace sightline
