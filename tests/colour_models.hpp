// Tiny TorchScript classifiers whose explanations are known exactly, shared by the CLI tests:
// features(x) = relu(x) (the RGB channels at full resolution), head = GAP -> Linear with
// weights w [classes, 3], so class c's HiResCAM map is relu(x) weighted by w[c].
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>

#include <torch/script.h>
#include <torch/torch.h>

namespace sightline::test {

// Stored preprocessing written as the model's attributes (unset: none stored).
struct StoredInput {
    std::optional<std::array<double, 3>> mean, std;
    std::optional<int64_t> size;
};

inline std::filesystem::path colour_model(const std::filesystem::path& dir, const std::string& name, torch::Tensor w,
                                          const StoredInput& stored = {}) {
    torch::jit::Module m("ColourNet");
    m.register_parameter("fc_w", w, false);
    m.register_parameter("fc_b", torch::zeros({w.size(0)}), false);
    m.define(R"(
def features(self, x):
    return torch.relu(x)
def head(self, a):
    return torch.addmm(self.fc_b, torch.mean(a, [2, 3]), self.fc_w.t())
def forward(self, x):
    return self.head(self.features(x))
)");
    auto list = [](const std::array<double, 3>& v) { return c10::List<double>({v[0], v[1], v[2]}); };
    if (stored.mean) m.register_attribute("sightline_mean", c10::ListType::ofFloats(), list(*stored.mean));
    if (stored.std) m.register_attribute("sightline_std", c10::ListType::ofFloats(), list(*stored.std));
    if (stored.size) m.register_attribute("sightline_input_size", c10::IntType::get(), *stored.size);
    std::filesystem::path path = dir / (name + ".pt");
    m.save(path.string());
    return path;
}

}  // namespace sightline::test
