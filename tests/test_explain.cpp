// Properties of the explanation methods proven in the papers, on small models built here.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "sightline/explain.hpp"
#include "test_support.hpp"

using namespace sightline;

TEST(Registry, EveryMethodHasAKeyPaperAndFunction) {
    std::set<std::string> keys;
    for (const auto& m : explanation_methods()) {
        EXPECT_TRUE(keys.insert(m.key).second) << "duplicate key " << m.key;
        EXPECT_NE(std::string(m.paper), "");
        EXPECT_NE(m.function, nullptr);
    }
    for (const char* key : {"cam", "hirescam", "gradcam", "gradcamelementwise", "gradcam++", "xgradcam",
                            "layercam", "eigencam", "eigengradcam", "scorecam", "ablationcam", "saliency",
                            "guidedbackprop", "guidedgradcam", "inputxgradient", "integratedgradients",
                            "smoothgrad", "occlusion"})
        EXPECT_TRUE(keys.count(key)) << key;
}

TEST(Registry, UnknownMethodListsTheChoices) {
    try {
        find_method("gradcamm");
        FAIL();
    } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("unknown method 'gradcamm'; choose from: cam, hirescam"), std::string::npos)
            << e.what();
    }
}

TEST(Targets, ParsesEveryForm) {
    EXPECT_EQ(parse_target("top1", {}).k, 1);
    EXPECT_EQ(parse_target("top5", {}).k, 5);
    EXPECT_EQ(parse_target("all", {}).kind, TargetSpec::kAll);
    EXPECT_EQ(parse_target("7", {}).index, 7);
    EXPECT_EQ(parse_target("boat", {"car", "boat"}).index, 1);
    EXPECT_THROW(parse_target("bote", {"car", "boat"}), UsageError);
}

TEST(Normalise, FollowsScaleCamImage) {
    // relu -> minmax -> resize -> minmax: a 2x2 map upsampled to 4x4.
    torch::Tensor raw = torch::tensor({{-1.f, 1.f}, {2.f, 3.f}}).unsqueeze(0);
    torch::Tensor m = normalise_maps(raw, 4, 4);
    EXPECT_NEAR(m.min().item<float>(), 0.f, 1e-7);
    EXPECT_NEAR(m.max().item<float>(), 1.f, 1e-6);
    // Corner pixels of a half-pixel bilinear upsample equal the source corners.
    EXPECT_NEAR(m[0][0][0].item<float>(), 0.f, 1e-6);
    EXPECT_NEAR(m[0][3][3].item<float>(), 1.f, 1e-6);
    torch::Tensor flat = normalise_maps(torch::zeros({1, 3, 3}), 3, 3);
    EXPECT_EQ(flat.abs().max().item<float>(), 0.f);  // eps keeps an all-zero map at zero
}
