// Parity with pytorch-grad-cam 1.5.5: its maps for three TorchScript models, two targets and
// nine methods (tests/fixtures/gradcam/manifest.json). The two small models' files are in
// tests/fixtures; ResNet-18's are read from SIGHTLINE_PEER_FIXTURES, and its cases skip without it.
#include <fstream>
#include <set>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sightline/explain.hpp"
#include "sightline/tensor_io.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

fs::path file(const std::string& name) { return test::find_fixture(fs::path("gradcam") / name); }

const std::map<std::string, std::string> kPeerToKey = {
    {"GradCAM", "gradcam"},     {"HiResCAM", "hirescam"},   {"GradCAMElementWise", "gradcamelementwise"},
    {"GradCAMPlusPlus", "gradcam++"}, {"XGradCAM", "xgradcam"}, {"LayerCAM", "layercam"},
    {"EigenCAM", "eigencam"},   {"ScoreCAM", "scorecam"},   {"AblationCAM", "ablationcam"}};

torch::Tensor load(const std::string& name) { return npy_to_tensor(read_npy(file(name))); }

double max_abs(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

struct Case {
    nlohmann::json entry;
    std::string name() const {
        return entry["model"].get<std::string>() + "_" + entry["method"].get<std::string>() + "_" +
               entry["target"].get<std::string>();
    }
};

// Test names and ctest lines show the case, not the bytes of the parameter.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name(); }

std::vector<Case> cases() {
    std::ifstream in(test::fixtures() / "gradcam" / "manifest.json");
    nlohmann::json manifest = nlohmann::json::parse(in);
    std::vector<Case> out;
    for (const auto& e : manifest["entries"]) out.push_back({e});
    return out;
}

class GradCamParity : public ::testing::TestWithParam<Case> {};

}  // namespace

TEST(Fixtures, OnlyThePeerOnlyListMaySkipAndItNamesNoVendoredFile) {
    // Exactly the large files kept out of the repository may be absent; each is needed by a test
    // (the gradcam manifest's ResNet-18, the two large CRF cases) and none is vendored after all.
    const std::vector<fs::path> peer_only = test::peer_only_fixtures();
    EXPECT_EQ(peer_only, (std::vector<fs::path>{"gradcam/resnet18.pt", "densecrf/ref/astronaut_500x375_K2",
                                                "densecrf/ref/chelsea_449x299_K21"}));
    for (const fs::path& p : peer_only) EXPECT_FALSE(fs::exists(test::fixtures() / p)) << p;
    std::set<std::string> models;
    for (const Case& c : cases()) models.insert(c.entry["model_file"].get<std::string>());
    EXPECT_EQ(models, (std::set<std::string>{"flatnet.pt", "gapnet.pt", "resnet18.pt"}));
    for (const std::string& m : models) {
        if (m != "resnet18.pt") {
            EXPECT_TRUE(fs::exists(test::fixtures() / "gradcam" / m)) << m << " must be vendored";
        }
    }
    // Any other missing fixture is a failure, never a skip.
    EXPECT_NE(test::missing_fixture_problem("gradcam/gapnet_lost.pt").find("a vendored fixture was lost"),
              std::string::npos);
}

TEST_P(GradCamParity, FinalAndRawMapsMatchTheReference) {
    torch::set_num_threads(2);
    const auto& e = GetParam().entry;
    SIGHTLINE_NEED_FIXTURE(model_file, fs::path("gradcam") / e["model_file"].get<std::string>());
    Classifier model = Classifier::load(model_file);
    torch::Tensor x = load(e["input_file"].get<std::string>());
    // Score-CAM on ResNet-18 is 512 masked forwards per image: check one image to keep CI short
    // (images are independent; gapnet and flatnet check both).
    const int64_t images = e["model"] == "resnet18" && e["method"] == "ScoreCAM" ? 1 : 2;
    x = x.slice(0, 0, images);
    model.set_layer(e["target_layer"].get<std::string>(), x.slice(0, 0, 1));
    Explainer explainer(model);
    std::string target = e["target"] == "top1" ? "top1" : "3";
    const std::string key = kPeerToKey.at(e["method"].get<std::string>());
    Explanation ex = explainer.explain(x, parse_target(target, {}), {key});

    std::vector<int64_t> classes = e["classes"].get<std::vector<int64_t>>();
    for (int b = 0; b < images; ++b) EXPECT_EQ(ex.targets[b][0].item<int64_t>(), classes[b]);

    torch::Tensor maps = ex.methods[0].maps.select(1, 0);
    torch::Tensor raw = ex.methods[0].raw.select(1, 0);
    torch::Tensor ref = load(e["file"].get<std::string>()).slice(0, 0, images);
    torch::Tensor ref_raw = load(e["raw_file"].get<std::string>()).slice(0, 0, images);
    ASSERT_EQ(maps.sizes(), ref.sizes());
    ASSERT_EQ(raw.sizes(), ref_raw.sizes());
    double raw_scale = std::max(1.0, ref_raw.abs().max().item<double>());
    if (key == "eigencam") {
        // The SVD sign is arbitrary: match either sign, per image.
        std::string flip = e["model"].get<std::string>() + "__EigenCAM__signflip.npy";
        torch::Tensor ref_flip = load(flip);
        for (int b = 0; b < images; ++b) {
            double d = std::min(max_abs(maps[b], ref[b]), max_abs(maps[b], ref_flip[b]));
            EXPECT_LE(d, 1e-4) << "image " << b;
            double r = std::min(max_abs(raw[b], ref_raw[b]), max_abs(raw[b], -ref_raw[b]));
            EXPECT_LE(r / raw_scale, 1e-4) << "raw, image " << b;
        }
        return;
    }
    EXPECT_LE(max_abs(maps, ref), 1e-4);
    EXPECT_LE(max_abs(raw, ref_raw) / raw_scale, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GradCamParity, ::testing::ValuesIn(cases()),
                         [](const auto& info) {
                             std::string n = info.param.name();
                             for (char& ch : n) if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             return n;
                         });
