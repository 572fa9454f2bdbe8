#include <gtest/gtest.h>
#include <torch/torch.h>

#include "sightline/model.hpp"
#include "sightline/model_input.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {
fs::path fixture(const std::string& name) { return test::fixtures() / "gradcam" / name; }

torch::Tensor load_input(const std::string& name) {
    NpyArray a = read_npy(fixture(name));
    std::vector<float> v = a.to_float();
    return torch::from_blob(v.data(), a.shape, torch::kFloat32).clone();
}
}  // namespace

TEST(GraphSplit, HeadOfFeaturesReproducesTheLogits) {
    const fs::path resnet18 = test::torchvision_resnet18();
    ASSERT_FALSE(resnet18.empty()) << "tools/make_torchvision_resnet18.py failed (Debian's python3-torchvision?)";
    torch::manual_seed(5);
    const torch::Tensor x_resnet = torch::randn({2, 3, 64, 64});
    for (auto [model, input, layer] : {std::tuple{fixture("gapnet.pt"), "input_3x64x80.npy", "features"},
                                       std::tuple{fixture("flatnet.pt"), "input_3x48x64.npy", "features"},
                                       std::tuple{resnet18, "", "layer4"}}) {
        Classifier c = Classifier::load(model);
        torch::Tensor x = *input ? load_input(input) : x_resnet;
        c.set_layer(layer, x.slice(0, 0, 1));
        FeatureOutput f = c.features(x);
        torch::Tensor logits = c.head(f.activations, f.extras);
        torch::Tensor reference = c.forward(x);
        EXPECT_TRUE(torch::allclose(logits, reference, 1e-5, 1e-5)) << model;
    }
}

// The two fixture models' heads: GAP -> Linear is the CAM architecture, flatten -> Linear is
// linear in A but not spatially uniform; both are complete (raw HiResCAM sums to logit - bias).
TEST(HeadAnalysis, TellsTheGapHeadFromTheFlattenHead) {
    for (auto [model, input, kind, uniform] :
         {std::tuple{"gapnet.pt", "input_3x64x80.npy", HeadKind::kGapLinear, true},
          std::tuple{"flatnet.pt", "input_3x48x64.npy", HeadKind::kLinear, false}}) {
        Classifier c = Classifier::load(fixture(model));
        const torch::Tensor x = load_input(input);
        c.set_layer("features", x);
        const HeadAnalysis h = analyse_head(c, x);
        EXPECT_EQ(h.kind, kind) << model << ": " << h.description;
        EXPECT_TRUE(h.gradient_constant_in_a) << model;
        EXPECT_EQ(h.gradient_spatially_uniform, uniform) << model;
        EXPECT_LT(h.completeness_residual, 1e-4) << model;
        EXPECT_FALSE(h.guarantees.empty()) << model;
    }
}

// A library call must not reseed or advance the caller's random generator (in Python, torch's).
TEST(HeadAnalysis, LeavesTheGlobalRandomStateAlone) {
    Classifier c = Classifier::load(fixture("gapnet.pt"));
    const torch::Tensor x = load_input("input_3x64x80.npy");
    c.set_layer("features", x);
    torch::manual_seed(11);
    const torch::Tensor expected = torch::rand({8});
    torch::manual_seed(11);
    analyse_head(c, x);
    EXPECT_TRUE(torch::equal(torch::rand({8}), expected));
}

// check_model_accepts then set_layer on the same input size runs the model once, not twice
// (on VGG-16 a forward is 0.3 s); another size is checked again.
TEST(Classifier, SetLayerDoesNotRunTheModelAgainOnTheShapeItJustRan) {
    torch::jit::Module m("CountingNet");
    m.register_attribute("calls", c10::IntType::get(), int64_t{0});
    m.register_parameter("w", torch::ones({2, 3}), false);
    m.define(R"(
def features(self, x):
    return torch.relu(x)
def head(self, a):
    return torch.mm(a.mean([2, 3]), self.w.t())
def forward(self, x):
    self.calls = self.calls + 1
    return self.head(self.features(x))
)");
    const fs::path path = test::scratch_dir("counting") / "counting.pt";
    m.save(path.string());
    Classifier c = Classifier::load(path);
    auto calls = [&] { return c.module().attr("calls").toInt(); };
    const torch::Tensor x = torch::rand({1, 3, 8, 8});
    check_model_accepts(c, x);
    EXPECT_EQ(calls(), 1);
    c.set_layer("", x);
    EXPECT_EQ(calls(), 1);
    c.set_layer("", torch::rand({1, 3, 10, 10}));
    EXPECT_EQ(calls(), 2);
}
