// Comparing two saved TorchScript models' weights, for the tests of resumed training runs.
#pragma once

#include <filesystem>

#include <torch/script.h>

namespace sightline::test {

// Every parameter (by name) and buffer of the two models, bit for bit.
inline bool same_weights(const std::filesystem::path& a, const std::filesystem::path& b) {
    torch::jit::Module ma = torch::jit::load(a.string()), mb = torch::jit::load(b.string());
    auto pa = ma.named_parameters(true), pb = mb.named_parameters(true);
    if (pa.size() != pb.size()) return false;
    auto ib = pb.begin();
    for (const auto& p : pa) {
        if (p.name != (*ib).name || !torch::equal(p.value, (*ib).value)) return false;
        ++ib;
    }
    auto ba = ma.named_buffers(true), bb = mb.named_buffers(true);
    if (ba.size() != bb.size()) return false;
    auto jb = bb.begin();
    for (const auto& t : ba) {
        if (!torch::equal(t.value, (*jb).value)) return false;
        ++jb;
    }
    return true;
}

}  // namespace sightline::test
