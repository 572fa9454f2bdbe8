// Cutting users' models at the layers people pick: torchvision ResNet-18, VGG-11, MobileNet-v2,
// DenseNet-121 and a user-style nested `backbone.layer4` model, traced and scripted, made by
// tools/make_layer_fixtures.py (Debian's python3-torchvision, random weights). The reference is
// a plain autograd hook on the eager model at that layer.
#include <cstdlib>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sightline/explain.hpp"
#include "sightline/model.hpp"
#include "sightline/tensor_io.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

// Made at build time (tests/CMakeLists.txt); SIGHTLINE_LAYER_FIXTURES points elsewhere.
fs::path fixtures() {
    const char* dir = std::getenv("SIGHTLINE_LAYER_FIXTURES");
    return dir ? fs::path(dir) : fs::path(SIGHTLINE_LAYER_FIXTURES_DIR);
}

nlohmann::json manifest() {
    std::ifstream in(fixtures() / "manifest.json");
    if (!in) ADD_FAILURE() << "no " << (fixtures() / "manifest.json") << ": run tools/make_layer_fixtures.py";
    return in ? nlohmann::json::parse(in) : nlohmann::json{{"cases", nlohmann::json::array()}};
}

torch::Tensor load(const fs::path& file) {
    return npy_to_tensor(read_npy(file));
}

// max |a - b| relative to the reference's largest magnitude.
double relative_error(const torch::Tensor& a, const torch::Tensor& reference) {
    return ((a - reference).abs().max() / reference.abs().max().clamp_min(1e-12)).item<double>();
}

struct LayerCase {
    nlohmann::json entry;
    std::string name() const { return entry["case"].get<std::string>(); }
};
void PrintTo(const LayerCase& c, std::ostream* os) { *os << c.name(); }

std::vector<LayerCase> layer_cases() {
    std::vector<LayerCase> out;
    const nlohmann::json m = manifest();  // kept alive: a range-for over a temporary's member dangles
    for (const auto& e : m["cases"]) out.push_back({e});
    return out;
}

class LayerCut : public ::testing::TestWithParam<LayerCase> {};

}  // namespace

TEST_P(LayerCut, HeadOnlyGradientAndMapsMatchAnEagerHook) {
    torch::set_num_threads(2);
    const auto& e = GetParam().entry;
    const fs::path folder = fixtures() / e["case"].get<std::string>();
    Classifier model = Classifier::load(fixtures() / e["model_file"].get<std::string>());
    torch::Tensor x = load(folder / "input.npy");
    model.set_layer(e["layer"], x.slice(0, 0, 1));
    ASSERT_EQ(model.split_kind(), SplitKind::kNamedLayer);

    torch::Tensor a_ref = load(folder / "activations.npy"), g_ref = load(folder / "gradients.npy");
    torch::Tensor targets = load(folder / "targets.npy").to(torch::kInt64);
    FeatureOutput f = model.features(x);
    EXPECT_LT(relative_error(f.activations, a_ref), 1e-4) << "activations";
    torch::Tensor a_before = f.activations.clone();
    torch::Tensor logits = model.head(f.activations, f.extras);
    EXPECT_LT(relative_error(logits, load(folder / "logits.npy")), 1e-4) << "logits";
    // In-place operations after the cut act on copies: A and the extras are left as they were,
    // so a second head pass gives the same logits.
    EXPECT_TRUE(torch::equal(f.activations, a_before)) << "the head wrote into the activations";
    EXPECT_TRUE(torch::equal(model.head(f.activations, f.extras), logits)) << "the head changed its inputs";

    auto [a, g] = layer_gradients(model, x, targets.unsqueeze(1));
    EXPECT_LT(relative_error(g, g_ref), 1e-4) << "head-only gradient";

    Explanation ex = Explainer(model).explain(x, parse_target("top1", {}), {"hirescam", "gradcam"});
    ASSERT_TRUE(torch::equal(ex.targets.squeeze(1), targets));
    torch::Tensor hires_ref = (g_ref * a_ref).sum(1);
    torch::Tensor gradcam_ref = (g_ref.mean({2, 3}, true) * a_ref).sum(1);
    EXPECT_LT(relative_error(ex.methods[0].raw.squeeze(1), hires_ref), 1e-4) << "HiResCAM";
    EXPECT_LT(relative_error(ex.methods[1].raw.squeeze(1), gradcam_ref), 1e-4) << "Grad-CAM";
    const int64_t h = x.size(2), w = x.size(3);
    EXPECT_LT((ex.methods[0].maps.squeeze(1) - normalise_maps(hires_ref, h, w)).abs().max().item<double>(), 1e-4);
    EXPECT_LT((ex.methods[1].maps.squeeze(1) - normalise_maps(gradcam_ref, h, w)).abs().max().item<double>(), 1e-4);

    // Heads that are a chain of pooling / reshape / ReLU / dropout / Linear steps get their
    // gradients from one forward row and a hand-written backward; these cases must take that
    // path (else the comparisons above would only test autograd again).
    static const std::set<std::string> chain_cases = {
        "resnet18_trace_layer4", "resnet18_trace_layer4_1", "resnet18_script_layer4_1",
        "mobilenet_v2_trace_features_18", "densenet121_trace_features_norm5"};
    if (chain_cases.count(GetParam().name())) EXPECT_EQ(ex.head_gradients, "chain");
    // Five targets per image: the same maps as autograd's head backward repeated per target row.
    if (logits.size(1) >= 5) {
        Explanation top5 = Explainer(model).explain(x, parse_target("top5", {}), {"hirescam"});
        auto [a5, g5] = layer_gradients(model, x, top5.targets);
        torch::Tensor hires5 = (g5 * a5).sum(1).reshape(top5.methods[0].raw.sizes());
        EXPECT_LT(relative_error(top5.methods[0].raw, hires5), 1e-4) << "HiResCAM, top-5 (" << top5.head_gradients << ")";
    }
}

INSTANTIATE_TEST_SUITE_P(Torchvision, LayerCut, ::testing::ValuesIn(layer_cases()),
                         [](const auto& info) { return info.param.name(); });

TEST(LayerCutFixtures, EveryCaseIsThere) {
    // The parameterised cases are listed from the manifest: none listed must not pass silently.
    EXPECT_GE(manifest()["cases"].size(), 19u);
}

TEST(LayerCutErrors, CalledTwiceOrInALoopIsSaidPlainly) {
    const auto bad = manifest()["bad_models"];
    Classifier twice = Classifier::load(fixtures() / bad["TwiceNet"].get<std::string>());
    std::string m = test::message_of([&] { twice.set_layer("block", torch::zeros({1, 3, 16, 16})); });
    EXPECT_NE(m.find("layer 'block' is called 2 times in forward"), std::string::npos) << m;
    Classifier loop = Classifier::load(fixtures() / bad["LoopNet"].get<std::string>());
    m = test::message_of([&] { loop.set_layer("block", torch::zeros({1, 3, 16, 16})); });
    EXPECT_NE(m.find("layer 'block' is called inside a loop or branch of forward"), std::string::npos) << m;
    // The loop's neighbours are fine.
    loop.set_layer("stem", torch::zeros({1, 3, 16, 16}));
    EXPECT_EQ(loop.features(torch::zeros({1, 3, 16, 16})).activations.size(1), 8);
}

TEST(LayerCutErrors, UnknownLayerNamesTheClosestOnesOnOneShortLine) {
    Classifier model = Classifier::load(fixtures() / "densenet121_trace.pt");
    std::string m = test::message_of([&] { model.set_layer("features.denseblock5", torch::zeros({1, 3, 64, 64})); });
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_LT(m.size(), 400u) << m;  // DenseNet-121 has over 400 submodules
    const auto closest = m.find("no layer named 'features.denseblock5'; closest: ");
    ASSERT_NE(closest, std::string::npos) << m;
    EXPECT_LT(m.find("features.denseblock4", closest), m.find("; top-level layers")) << m;
    EXPECT_NE(m.find("top-level layers: features, classifier"), std::string::npos) << m;
    EXPECT_NE(m.find("--layers"), std::string::npos) << m;
}

TEST(LayerNames, IndicesAsPytorchGradCamWritesThem) {
    // target_layers=[model.layer4[-1]] and [model.features[-1]] are how users name these layers.
    const torch::Tensor x = torch::randn({1, 3, 64, 64}, torch::Generator(at::detail::createCPUGenerator(5)));
    for (auto [file, indexed, dotted] : {std::tuple{"resnet18_trace.pt", "layer4[-1]", "layer4.1"},
                                         std::tuple{"resnet18_script.pt", "layer3[1].conv2", "layer3.1.conv2"},
                                         std::tuple{"vgg11_trace.pt", "features[-1]", "features.20"},
                                         std::tuple{"vgg11_trace.pt", "features[18]", "features.18"}}) {
        Classifier by_index = Classifier::load(fixtures() / file), by_name = Classifier::load(fixtures() / file);
        by_index.set_layer(indexed, x);
        by_name.set_layer(dotted, x);
        EXPECT_EQ(by_index.layer(), dotted) << indexed;
        EXPECT_TRUE(torch::equal(by_index.features(x).activations, by_name.features(x).activations)) << indexed;
    }
    Classifier model = Classifier::load(fixtures() / "resnet18_trace.pt");
    for (const char* bad : {"layer4[2]", "layer4[-3]", "layer4[x]", "layer4[1", "layer4[1]x", "layer9[0]"}) {
        std::string m = test::message_of([&] { model.set_layer(bad, x); });
        EXPECT_NE(m.find(fmt::format("no layer named '{}'; closest: ", bad)), std::string::npos) << m;
    }
}
