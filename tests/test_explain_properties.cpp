// Properties proven in the papers, on small models built here with known weights:
// CAM = Grad-CAM = HiResCAM on GAP heads, completeness on linear heads, zero weight -> zero
// HiResCAM, and the head-only gradient equals the full backward.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "sightline/explain.hpp"
#include "sightline/tensor_io.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

// conv(3->8, 3x3) + ReLU as features; `head_src` defines head(a).
fs::path save_model(const std::string& name, const std::string& head_src, int64_t fc_in, int64_t classes,
                    const std::function<void(torch::Tensor&)>& edit_fc = {}) {
    torch::manual_seed(7);
    torch::jit::Module m("TinyNet");
    m.register_parameter("conv_w", torch::randn({8, 3, 3, 3}) * 0.4, false);
    m.register_parameter("conv_b", torch::randn({8}) * 0.1, false);
    torch::Tensor fc_w = torch::randn({classes, fc_in}) * 0.2;
    if (edit_fc) edit_fc(fc_w);
    m.register_parameter("fc_w", fc_w, false);
    m.register_parameter("fc_b", torch::randn({classes}), false);
    m.define(R"(
def features(self, x):
    return torch.relu(torch.conv2d(x, self.conv_w, self.conv_b, [1, 1], [1, 1]))
)" + head_src + R"(
def forward(self, x):
    return self.head(self.features(x))
)");
    fs::path path = test::scratch_dir("models") / (name + ".pt");
    m.save(path.string());
    return path;
}

const char* kGapHead = R"(
def head(self, a):
    return torch.addmm(self.fc_b, torch.flatten(torch.adaptive_avg_pool2d(a, [1, 1]), 1), self.fc_w.t())
)";
const char* kFlatHead = R"(
def head(self, a):
    return torch.addmm(self.fc_b, torch.flatten(a, 1), self.fc_w.t())
)";
const char* kMlpHead = R"(
def head(self, a):
    h = torch.relu(torch.flatten(torch.adaptive_avg_pool2d(a, [1, 1]), 1) - 0.05)
    return torch.addmm(self.fc_b, h, self.fc_w.t())
)";

torch::Tensor input(int64_t b = 2) {
    torch::manual_seed(3);
    return torch::randn({b, 3, 12, 10});
}

}  // namespace

TEST(Properties, CamGradCamAndHiResCamAreEqualOnAGapHead) {
    Classifier model = Classifier::load(save_model("gap", kGapHead, 8, 5));
    torch::Tensor x = input();
    model.set_layer("", x.slice(0, 0, 1));
    Explainer explainer(model);
    EXPECT_EQ(explainer.head_analysis(x).kind, HeadKind::kGapLinear);
    Explanation ex = explainer.explain(x, parse_target("top2", {}), {"cam", "gradcam", "hirescam"});
    EXPECT_LE((ex.methods[0].maps - ex.methods[1].maps).abs().max().item<double>(), 1e-5);
    EXPECT_LE((ex.methods[0].maps - ex.methods[2].maps).abs().max().item<double>(), 1e-5);
    // Raw maps differ only by the scale h*w: CAM = (h w) HiResCAM.
    EXPECT_TRUE(torch::allclose(ex.methods[0].raw, ex.methods[2].raw * 120.0, 1e-4, 1e-5));
    EXPECT_LE(ex.completeness_residual.abs().max().item<double>(), 1e-4);
    // So none of them puts mass where the model's contribution is <= 0 (up to rounding).
    for (const auto& m : ex.methods) {
        ASSERT_EQ(m.mass_on_unused.sizes(), (std::vector<int64_t>{2, 2}));
        EXPECT_LE(m.mass_on_unused.max().item<double>(), 1e-6) << m.key;
    }
}

TEST(Properties, HiResCamPlusBiasSumsToTheLogitOnAFlattenLinearHead) {
    Classifier model = Classifier::load(save_model("flat", kFlatHead, 8 * 12 * 10, 4));
    torch::Tensor x = input();
    model.set_layer("", x.slice(0, 0, 1));
    Explainer explainer(model);
    EXPECT_EQ(explainer.head_analysis(x).kind, HeadKind::kLinear);
    Explanation ex = explainer.explain(x, parse_target("all", {}), {"hirescam"});
    torch::Tensor bias = model.module().attr("fc_b").toTensor();
    for (int64_t b = 0; b < 2; ++b)
        for (int64_t c = 0; c < 4; ++c) {
            double sum = ex.methods[0].raw[b][c].sum().item<double>();
            double expected = ex.logits[b][c].item<double>() - bias[c].item<double>();
            EXPECT_NEAR(sum, expected, 1e-4 * std::max(1.0, std::abs(expected)));
        }
}

TEST(Properties, ZeroWeightsGiveExactlyZeroHiResCamWhileGradCamHighlightsThere) {
    // The class-0 weights ignore the left half of the feature map (columns 0..4).
    auto ignore_left = [](torch::Tensor& w) {
        auto view = w.view({w.size(0), 8, 12, 10});
        view[0].slice(2, 0, 5).zero_();
        view[0].slice(2, 5, 10).abs_();  // class 0 uses the right half only, positively
    };
    Classifier model = Classifier::load(save_model("zeroed", kFlatHead, 8 * 12 * 10, 3, ignore_left));
    torch::Tensor x = input(1);
    model.set_layer("", x);
    Explainer explainer(model);
    Explanation ex = explainer.explain(x, parse_target("0", {}), {"hirescam", "gradcam"});
    torch::Tensor hires = ex.methods[0].raw[0][0], grad = ex.methods[1].raw[0][0];
    EXPECT_EQ(hires.slice(1, 0, 5).abs().max().item<float>(), 0.f);
    EXPECT_GT(hires.slice(1, 5, 10).abs().max().item<float>(), 0.f);
    EXPECT_GT(torch::relu(grad.slice(1, 0, 5)).max().item<float>(), 0.f);  // Grad-CAM: unused pixels lit
    // The share of Grad-CAM's mass there, as the explainer reports it: its ReLU'd map summed
    // where HiResCAM is <= 0 (the whole left half, and used pixels that lower the logit).
    const torch::Tensor mass = torch::relu(grad).to(torch::kFloat64);
    const double expected = ((mass * (hires <= 0)).sum() / mass.sum()).item<double>();
    EXPECT_GT(expected, 0.2);
    EXPECT_NEAR(ex.methods[1].mass_on_unused[0][0].item<double>(), expected, 1e-9);
    EXPECT_LE(ex.methods[0].mass_on_unused[0][0].item<double>(), 1e-12);  // HiResCAM: never
}

TEST(Properties, WithoutExactContributionsNoMassOnUnusedIsReported) {
    Classifier model = Classifier::load(save_model("mlp_unused", kMlpHead, 8, 3));
    torch::Tensor x = input(1);
    model.set_layer("", x);
    Explainer explainer(model);
    Explanation ex = explainer.explain(x, parse_target("0", {}), {"gradcam", "hirescam"});
    EXPECT_TRUE(std::isnan(ex.methods[0].mass_on_unused[0][0].item<double>()));
    EXPECT_TRUE(std::isnan(ex.methods[1].mass_on_unused[0][0].item<double>()));
}

TEST(Properties, NonLinearHeadHasNoGuaranteeAndCamIsRefused) {
    Classifier model = Classifier::load(save_model("mlp", kMlpHead, 8, 3));
    torch::Tensor x = input();
    model.set_layer("", x.slice(0, 0, 1));
    Explainer explainer(model);
    const HeadAnalysis& head = explainer.head_analysis(x);
    EXPECT_EQ(head.kind, HeadKind::kNonLinear);
    EXPECT_FALSE(guarantee_status(find_method("hirescam"), head).holds);
    try {
        explainer.explain(x, parse_target("top1", {}), {"cam"});
        FAIL() << "cam on a non-GAP head must be refused";
    } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("method 'cam' needs a global-average-pooling -> Linear head"),
                  std::string::npos) << e.what();
    }
}

TEST(Properties, HeadOnlyGradientEqualsTheFullBackward) {
    // On ResNet-18 cut at layer4 (skip connections inside): chaining the head-only dS/dA
    // through the backbone must give the full-backward dS/dx.
    const fs::path resnet18 = test::torchvision_resnet18();
    ASSERT_FALSE(resnet18.empty()) << "tools/make_torchvision_resnet18.py failed (Debian's python3-torchvision?)";
    Classifier model = Classifier::load(resnet18);
    torch::manual_seed(5);
    torch::Tensor x = torch::randn({2, 3, 64, 64});
    model.set_layer("layer4", x.slice(0, 0, 1));
    torch::Tensor targets = torch::tensor({{3, 9}, {7, 2}});
    auto [a_rows, g] = layer_gradients(model, x, targets);
    EXPECT_TRUE(torch::equal(a_rows, model.features(x).activations.repeat_interleave(2, 0)));
    torch::Tensor leaf = x.repeat_interleave(2, 0).detach().requires_grad_(true);
    torch::Tensor a = model.features(leaf, true).activations;
    torch::Tensor chained = torch::autograd::grad({a}, {leaf}, {g})[0];
    torch::Tensor leaf2 = x.repeat_interleave(2, 0).detach().requires_grad_(true);
    torch::Tensor score = model.forward(leaf2).gather(1, targets.reshape({-1, 1})).sum();
    torch::Tensor full = torch::autograd::grad({score}, {leaf2})[0];
    double scale = full.abs().max().item<double>();
    EXPECT_LE((chained - full).abs().max().item<double>(), 1e-4 * scale);
}

namespace {
// A model linear in its input: logits = W . flatten(x) + b, with features = x itself.
fs::path save_linear_model(int64_t classes) {
    torch::manual_seed(11);
    torch::jit::Module m("LinearNet");
    m.register_parameter("fc_w", torch::randn({classes, 3 * 12 * 10}), false);
    m.register_parameter("fc_b", torch::randn({classes}), false);
    m.define(R"(
def features(self, x):
    return x * 1.0
def head(self, a):
    return torch.addmm(self.fc_b, torch.flatten(a, 1), self.fc_w.t())
def forward(self, x):
    return self.head(self.features(x))
)");
    fs::path path = test::scratch_dir("models") / "linear.pt";
    m.save(path.string());
    return path;
}
}  // namespace

TEST(InputMethods, SaliencyAndIntegratedGradientsHaveKnownAnswersOnALinearModel) {
    Classifier model = Classifier::load(save_linear_model(3));
    torch::Tensor x = input(1);
    model.set_layer("", x);
    Explainer explainer(model);
    Explanation ex = explainer.explain(x, parse_target("1", {}), {"saliency", "integratedgradients", "inputxgradient",
                                                                  "guidedbackprop"});
    torch::Tensor w = model.module().attr("fc_w").toTensor()[1].view({3, 12, 10});
    // Saliency: |dy/dx| = |W|, max over channels.
    EXPECT_TRUE(torch::allclose(ex.methods[0].raw[0][0], w.abs().amax(0), 1e-6, 1e-6));
    // Integrated gradients from the zero baseline equal input x gradient on a linear model,
    // and their signed sum is y(x) - y(0) (completeness).
    torch::Tensor expected = (x[0] * w).sum(0).abs();
    EXPECT_TRUE(torch::allclose(ex.methods[1].raw[0][0], expected, 1e-4, 1e-5));
    EXPECT_TRUE(torch::allclose(ex.methods[2].raw[0][0], expected, 1e-4, 1e-5));
    double signed_sum = (x[0] * w).sum().item<double>();
    torch::Tensor bias = model.module().attr("fc_b").toTensor();
    EXPECT_NEAR(signed_sum, ex.logits[0][1].item<double>() - bias[1].item<double>(), 1e-3);
    // No ReLU in the model: guided backprop is the plain gradient.
    EXPECT_TRUE(torch::allclose(ex.methods[3].raw[0][0], ex.methods[0].raw[0][0], 1e-6, 1e-6));
}

TEST(InputMethods, GuidedBackpropDropsNegativeGradientsThroughReLU) {
    // y = W relu(x) with W mixed in sign and x > 0: the plain gradient is W; guided backprop
    // passes only its positive part through the ReLU.
    torch::jit::Module m("ReluNet");
    torch::Tensor w = torch::linspace(-1, 1, 3 * 12 * 10).view({1, -1});
    m.register_parameter("fc_w", torch::cat({w, -w}), false);
    m.define(R"(
def features(self, x):
    return x * 1.0
def head(self, a):
    return torch.matmul(torch.flatten(torch.relu(a), 1), self.fc_w.t())
def forward(self, x):
    return self.head(self.features(x))
)");
    fs::path path = test::scratch_dir("models") / "relu.pt";
    m.save(path.string());
    Classifier model = Classifier::load(path);
    torch::Tensor x = torch::ones({1, 3, 12, 10});
    model.set_layer("", x);
    Explainer explainer(model);
    Explanation ex = explainer.explain(x, parse_target("0", {}), {"saliency", "guidedbackprop"});
    torch::Tensor w0 = w.view({3, 12, 10});
    EXPECT_TRUE(torch::allclose(ex.methods[0].raw[0][0], w0.abs().amax(0)));
    EXPECT_TRUE(torch::allclose(ex.methods[1].raw[0][0], torch::relu(w0).amax(0)));
    EXPECT_FALSE(torch::allclose(ex.methods[0].raw[0][0], ex.methods[1].raw[0][0]));
}

TEST(Registry, EveryMethodRunsAndGivesMapsInTheUnitRange) {
    Classifier model = Classifier::load(save_model("sweep", kGapHead, 8, 5));
    torch::Tensor x = input();
    model.set_layer("", x.slice(0, 0, 1));
    ExplainOptions options;
    options.ig_steps = 4;
    options.smooth_samples = 3;
    options.occlusion_window = 4;
    options.occlusion_stride = 4;
    Explainer explainer(model, options);
    for (const auto& m : explanation_methods()) {
        Explanation ex = explainer.explain(x, parse_target("top2", {}), {m.key});
        const torch::Tensor& maps = ex.methods[0].maps;
        ASSERT_EQ(maps.sizes(), (std::vector<int64_t>{2, 2, 12, 10})) << m.key;
        EXPECT_TRUE(torch::isfinite(maps).all().item<bool>()) << m.key;
        EXPECT_GE(maps.min().item<float>(), 0.f) << m.key;
        EXPECT_LE(maps.max().item<float>(), 1.f) << m.key;
        EXPECT_GT(maps.max().item<float>(), 0.5f) << m.key << " gave an empty map";
    }
}
