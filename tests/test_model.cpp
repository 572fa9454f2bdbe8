#include <gtest/gtest.h>
#include <torch/torch.h>

#include "sightline/model.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {
fs::path fixture(const std::string& name) { return test::shared_fixtures() / "gradcam" / name; }

torch::Tensor load_input(const std::string& name) {
    NpyArray a = read_npy(fixture(name));
    std::vector<float> v = a.to_float();
    return torch::from_blob(v.data(), a.shape, torch::kFloat32).clone();
}
}  // namespace

TEST(GraphSplit, HeadOfFeaturesReproducesTheLogits) {
    for (auto [model, input, layer] : {std::tuple{"gapnet.pt", "input_3x64x80.npy", "features"},
                                       std::tuple{"flatnet.pt", "input_3x48x64.npy", "features"},
                                       std::tuple{"resnet18.pt", "input_3x224x224.npy", "layer4"}}) {
        Classifier c = Classifier::load(fixture(model));
        torch::Tensor x = load_input(input);
        c.set_layer(layer, x.slice(0, 0, 1));
        FeatureOutput f = c.features(x);
        torch::Tensor logits = c.head(f.activations, f.extras);
        torch::Tensor reference = c.forward(x);
        EXPECT_TRUE(torch::allclose(logits, reference, 1e-5, 1e-5)) << model;
    }
}
