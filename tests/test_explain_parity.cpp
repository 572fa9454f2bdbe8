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
    // Exactly: ResNet-18's model (remade at build time), its two-image input (the first image
    // is vendored) and its final maps (its raw maps are vendored), and the two large CRF cases.
    const std::vector<fs::path> peer_only = test::peer_only_fixtures();
    std::vector<fs::path> expected{"gradcam/resnet18.pt", "gradcam/input_3x224x224.npy"};
    std::set<std::string> finals{"resnet18__EigenCAM__signflip.npy"};
    for (const Case& c : cases())
        if (c.entry["model"] == "resnet18") {
            finals.insert(c.entry["file"].get<std::string>());
            EXPECT_TRUE(fs::exists(test::fixtures() / "gradcam" / c.entry["raw_file"].get<std::string>()));
        }
    for (const std::string& f : finals) expected.push_back(fs::path("gradcam") / f);
    expected.insert(expected.end(), {"densecrf/ref/astronaut_500x375_K2", "densecrf/ref/chelsea_449x299_K21"});
    EXPECT_EQ(peer_only, expected);
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

// A fixture the case needs: vendored, or from SIGHTLINE_PEER_FIXTURES. Empty only for a
// peer-only file without a peer folder; any other absence fails the test.
fs::path needed(const std::string& name) {
    const fs::path found = file(name);
    if (found.empty()) {
        const std::string problem = test::missing_fixture_problem(fs::path("gradcam") / name);
        EXPECT_EQ(problem, "") << name;
    }
    return found;
}

TEST_P(GradCamParity, FinalAndRawMapsMatchTheReference) {
    torch::set_num_threads(2);
    const auto& e = GetParam().entry;
    const bool resnet18 = e["model"] == "resnet18";
    // ResNet-18's 47 MB file is remade at build time from torchvision's seed and the vendored
    // BatchNorm values (tools/make_gradcam_resnet18.py checks its logits), when no peer copy is there.
    fs::path model_file = needed(e["model_file"].get<std::string>());
    if (model_file.empty() && resnet18) model_file = SIGHTLINE_GRADCAM_RESNET18;
    ASSERT_TRUE(fs::exists(model_file)) << model_file;
    Classifier model = Classifier::load(model_file);
    // Its two-image input is peer-only too; its first image is vendored.
    const fs::path input_file = needed(e["input_file"].get<std::string>());
    ASSERT_TRUE(!input_file.empty() || resnet18);
    torch::Tensor x = npy_to_tensor(
        read_npy(input_file.empty() ? test::fixtures() / "gradcam" / "input_3x224x224_first.npy" : input_file));
    // Score-CAM on ResNet-18 is 512 masked forwards per image: check one image to keep CI short
    // (images are independent; gapnet and flatnet check both).
    const int64_t images = std::min<int64_t>(x.size(0), resnet18 && e["method"] == "ScoreCAM" ? 1 : 2);
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
    // The raw maps (feature resolution) are vendored for every model; ResNet-18's final maps
    // (224 x 224, 8 MB in all) only in the peer folder. The final rule itself is checked on the
    // two vendored models.
    torch::Tensor ref_raw = load(e["raw_file"].get<std::string>()).slice(0, 0, images);
    ASSERT_EQ(raw.sizes(), ref_raw.sizes());
    const fs::path final_file = needed(e["file"].get<std::string>());
    ASSERT_TRUE(!final_file.empty() || resnet18);
    torch::Tensor ref = final_file.empty() ? torch::Tensor() : npy_to_tensor(read_npy(final_file)).slice(0, 0, images);
    if (ref.defined()) {
        ASSERT_EQ(maps.sizes(), ref.sizes());
    }
    const double raw_scale = std::max(1.0, ref_raw.abs().max().item<double>());
    for (int b = 0; b < images; ++b) {
        // EigenCAM's SVD sign is arbitrary: either sign matches.
        const bool eigen = key == "eigencam";
        double r = max_abs(raw[b], ref_raw[b]);
        if (eigen) r = std::min(r, max_abs(raw[b], -ref_raw[b]));
        EXPECT_LE(r / raw_scale, 1e-4) << "raw, image " << b;
        if (!ref.defined()) continue;
        double d = max_abs(maps[b], ref[b]);
        if (eigen) d = std::min(d, max_abs(maps[b], load(e["model"].get<std::string>() + "__EigenCAM__signflip.npy")[b]));
        EXPECT_LE(d, 1e-4) << "image " << b;
    }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GradCamParity, ::testing::ValuesIn(cases()),
                         [](const auto& info) {
                             std::string n = info.param.name();
                             for (char& ch : n) if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             return n;
                         });
