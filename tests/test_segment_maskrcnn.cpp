// Mask R-CNN against torchvision: the same random weights (tools/make_maskrcnn_fixtures.py, run at
// build time with Debian's python3-torchvision) and the same two images give the same RPN
// proposals and detections; state_dicts move both ways; bad state_dicts are one clear error.
#include <cstdlib>
#include <fstream>
#include <tuple>
#include <iostream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sightline/core.hpp"
#include "sightline/maskrcnn.hpp"
#include "test_support.hpp"

using namespace sightline;
using sightline::test::message_of;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = SIGHTLINE_MASKRCNN_FIXTURES_DIR;

MaskRCNNConfig fixture_config() {
    std::ifstream in(kFixtures / "config.json");
    const nlohmann::json j = nlohmann::json::parse(in);
    MaskRCNNConfig c;
    c.depth = j.at("depth");
    c.num_classes = j.at("num_classes");
    c.min_size = j.at("min_size");
    c.max_size = j.at("max_size");
    c.box_score_thresh = j.at("box_score_thresh");
    return c;
}

// The fixture model and reference tensors, read once per process (the state_dict is 124 MB). The
// model runs with the reference's thread count: another count splits the float sums differently.
MaskRCNN& fixture_model() {
    static MaskRCNN model = [] {
        std::ifstream in(kFixtures / "config.json");
        torch::set_num_threads(nlohmann::json::parse(in).at("threads").get<int>());
        MaskRCNN m(fixture_config());
        load_state_dict(*m, (kFixtures / "state_dict.pth").string());
        return m;
    }();
    return model;
}

const std::map<std::string, torch::Tensor>& reference() {
    static const auto ref = read_tensor_dict((kFixtures / "reference.pth").string());
    return ref;
}

// The reference's two images and their ground truth, the batch the training losses were computed on.
std::pair<std::vector<torch::Tensor>, std::vector<InstanceTarget>> reference_batch() {
    const auto& ref = reference();
    std::vector<torch::Tensor> images;
    std::vector<InstanceTarget> targets;
    for (const std::string n : {"0", "1"}) {
        images.push_back(ref.at("image" + n));
        targets.push_back({ref.at("target_boxes" + n), ref.at("target_labels" + n), ref.at("target_masks" + n)});
    }
    return {images, targets};
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
    return a.numel() == 0 ? 0.0 : (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

}  // namespace

TEST(MaskRCNN, ForwardMatchesTorchvision) {
    MaskRCNN& model = fixture_model();
    const auto& ref = reference();
    const std::vector<torch::Tensor> images = {ref.at("image0"), ref.at("image1")};
    const MaskRCNNOutput out = model->detect(images);
    ASSERT_EQ(out.detections.size(), 2u);
    for (int i = 0; i < 2; ++i) {
        const std::string n = std::to_string(i);
        const torch::Tensor proposals = ref.at("proposals" + n);
        ASSERT_EQ(out.proposals[i].sizes(), proposals.sizes()) << "image " << i;
        const double d_prop = max_abs_diff(out.proposals[i], proposals);
        EXPECT_LE(d_prop, 1e-4) << "image " << i;

        const InstanceDetections& d = out.detections[i];
        ASSERT_GT(ref.at("boxes" + n).size(0), 10) << "the fixture should keep detections";
        ASSERT_EQ(d.boxes.sizes(), ref.at("boxes" + n).sizes()) << "image " << i;
        EXPECT_TRUE(torch::equal(d.labels, ref.at("labels" + n))) << "image " << i;
        const double d_box = max_abs_diff(d.boxes, ref.at("boxes" + n));
        const double d_score = max_abs_diff(d.scores, ref.at("scores" + n));
        ASSERT_EQ(d.masks.sizes(), ref.at("masks" + n).sizes());
        const double d_mask = max_abs_diff(d.masks, ref.at("masks" + n));
        EXPECT_LE(d_box, 1e-4) << "image " << i;
        EXPECT_LE(d_score, 1e-4) << "image " << i;
        EXPECT_LE(d_mask, 1e-4) << "image " << i;
        // The masks are real probabilities, not a constant: the comparison above can fail.
        EXPECT_GT(ref.at("masks" + n).max().item<double>(), 0.9);
        std::cout << "image " << i << ": " << proposals.size(0) << " proposals (max |diff| " << d_prop << "), "
                  << d.boxes.size(0) << " detections (max |diff| boxes " << d_box << ", scores " << d_score
                  << ", masks " << d_mask << ")\n";
    }
}

TEST(MaskRCNN, TrainingLossesMatchTorchvision) {
    MaskRCNN& model = fixture_model();
    const auto& ref = reference();
    std::vector<torch::Tensor> images;
    std::vector<InstanceTarget> targets;
    std::tie(images, targets) = reference_batch();
    std::ifstream in(kFixtures / "config.json");
    torch::manual_seed(nlohmann::json::parse(in).at("loss_seed").get<uint64_t>());
    const MaskRCNNLosses losses = model->losses(images, targets);
    const std::vector<std::pair<std::string, torch::Tensor>> pairs = {
        {"loss_objectness", losses.objectness}, {"loss_rpn_box_reg", losses.rpn_box_reg},
        {"loss_classifier", losses.classifier}, {"loss_box_reg", losses.box_reg}, {"loss_mask", losses.mask}};
    for (const auto& [name, value] : pairs) {
        const double expected = ref.at(name).item<double>(), got = value.item<double>();
        EXPECT_GT(expected, 1e-3) << name << " should not vanish in the fixture";
        EXPECT_NEAR(got, expected, 1e-4) << name;
        std::cout << name << ": " << got << " (torchvision " << expected << ", |diff| " << std::abs(got - expected)
                  << ")\n";
    }
    // Differentiable in the trained weights only (trainable_layers 3: layer1 and conv1 frozen).
    losses.total().backward();
    auto params = model->named_parameters();
    EXPECT_TRUE(params["roi_heads.mask_predictor.mask_fcn_logits.weight"].grad().defined());
    EXPECT_TRUE(params["backbone.body.layer2.0.conv1.weight"].grad().defined());
    EXPECT_GT(params["backbone.body.layer2.0.conv1.weight"].grad().abs().sum().item<double>(), 0.0);
    EXPECT_FALSE(params["backbone.body.layer1.0.conv1.weight"].grad().defined());

    model->zero_grad();

    // A degenerate box is one clear error.
    targets[1].boxes = torch::tensor({{10.f, 10.f, 10.f, 20.f}, {1.f, 1.f, 5.f, 5.f}});
    EXPECT_EQ(message_of([&] { model->losses(images, targets); }),
              "Mask R-CNN: target 1 has a box of zero or negative width or height (box 0)");
}

namespace {

// config.json of the fixtures (loss_seed, multi_min_sizes, small_samplers).
nlohmann::json fixture_json() {
    std::ifstream in(kFixtures / "config.json");
    return nlohmann::json::parse(in);
}

// The training losses of a model of `config` with the fixture's weights on the reference batch,
// drawn after manual_seed(loss_seed + seed_offset); each is checked against the reference's
// `prefix`<loss> within 1e-4, and the fixture's own model (default configuration) on the same
// draws must give another total.
void expect_torchvision_losses(const MaskRCNNConfig& config, uint64_t seed_offset, const std::string& prefix) {
    const uint64_t seed = fixture_json().at("loss_seed").get<uint64_t>() + seed_offset;
    fixture_model();  // the reference's thread count
    MaskRCNN model(config);
    load_state_dict(*model, (kFixtures / "state_dict.pth").string());
    model->train();
    const auto& ref = reference();
    std::vector<torch::Tensor> images;
    std::vector<InstanceTarget> targets;
    std::tie(images, targets) = reference_batch();
    torch::manual_seed(seed);
    torch::NoGradGuard no_grad;
    const MaskRCNNLosses losses = model->losses(images, targets);
    const std::vector<std::pair<std::string, torch::Tensor>> pairs = {
        {"loss_objectness", losses.objectness}, {"loss_rpn_box_reg", losses.rpn_box_reg},
        {"loss_classifier", losses.classifier}, {"loss_box_reg", losses.box_reg}, {"loss_mask", losses.mask}};
    for (const auto& [name, value] : pairs) EXPECT_NEAR(value.item<double>(), ref.at(prefix + name).item<double>(), 1e-4) << name;
    torch::manual_seed(seed);
    const MaskRCNNLosses defaults = fixture_model()->losses(images, targets);
    EXPECT_GT(std::abs(defaults.total().item<double>() - losses.total().item<double>()), 1e-3);
}

}  // namespace

TEST(MaskRCNN, MultiScaleTrainingLossesMatchTorchvision) {
    // torchvision's min_size tuple: each training image's short side drawn by torch_choice from
    // the global generator; the same draws here give the same sizes, hence the same losses
    // (and ignoring the tuple, every image at min_size, other losses).
    MaskRCNNConfig config = fixture_config();
    config.train_min_sizes = fixture_json().at("multi_min_sizes").get<std::vector<int64_t>>();
    ASSERT_EQ(config.train_min_sizes.size(), 3u);
    expect_torchvision_losses(config, 1, "multi_");
}

// Fewer proposals and sampled anchors / RoIs (train instance's --rpn-*-top-n-train and
// --*-batch-size-per-image; MaskRCNN's keywords of the same names in torchvision).
TEST(MaskRCNN, SmallerSamplersGiveTorchvisionsLosses) {
    const nlohmann::json small = fixture_json().at("small_samplers");
    MaskRCNNConfig config = fixture_config();
    config.rpn_pre_nms_top_n_train = small.at("rpn_pre_nms_top_n_train");
    config.rpn_post_nms_top_n_train = small.at("rpn_post_nms_top_n_train");
    config.rpn_batch_size_per_image = small.at("rpn_batch_size_per_image");
    config.box_batch_size_per_image = small.at("box_batch_size_per_image");
    expect_torchvision_losses(config, 2, "small_");
    config.box_batch_size_per_image = 0;
    EXPECT_EQ(message_of([&] { MaskRCNN bad(config); }),
              "Mask R-CNN: rpn_batch_size_per_image and box_batch_size_per_image should be >= 1");
}

TEST(MaskRCNN, SavedStateDictLoadsInTorchvisionStrict) {
    MaskRCNN& model = fixture_model();
    const fs::path saved = test::scratch_dir("maskrcnn_save") / "saved.pth";
    save_state_dict(*model, saved.string());
    const std::string command = "/usr/bin/python3 " + std::string(SIGHTLINE_SOURCE_DIR) +
                                "/tools/make_maskrcnn_fixtures.py --check-load " + saved.string() + " " +
                                kFixtures.string();
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

TEST(MaskRCNN, BadStateDictIsOneErrorListingEveryProblem) {
    MaskRCNNConfig config = fixture_config();
    MaskRCNN model(config);
    auto state = fixture_model()->named_state();
    state.erase("rpn.head.cls_logits.bias");
    state["extra.weight"] = torch::zeros({2});
    state["roi_heads.box_predictor.cls_score.weight"] = torch::zeros({5, 1024});
    state["backbone.body.bn1.num_batches_tracked"] = torch::zeros({}, torch::kLong);  // ignored, as torchvision does
    const fs::path bad = test::scratch_dir("maskrcnn_bad") / "bad.pth";
    write_tensor_dict(state, bad.string());
    const torch::Tensor before = model->named_state().at("backbone.body.conv1.weight").clone();
    EXPECT_EQ(message_of([&] { load_state_dict(*model, bad.string()); }),
              bad.string() + ": not a state_dict of this Mask R-CNN (ResNet-18, 4 classes): 1 missing "
                             "(rpn.head.cls_logits.bias); 1 unexpected (extra.weight); 1 mismatched "
                             "(roi_heads.box_predictor.cls_score.weight [5,1024] in the file, [4,1024] in the model)");
    EXPECT_TRUE(torch::equal(before, model->named_state().at("backbone.body.conv1.weight"))) << "model changed";

    // A ResNet-50 model lists the first names and counts the rest.
    config.depth = 50;
    MaskRCNN r50(config);
    const std::string message = message_of([&] { load_state_dict(*r50, (kFixtures / "state_dict.pth").string()); });
    EXPECT_NE(message.find("(ResNet-50, 4 classes): "), std::string::npos) << message;
    EXPECT_NE(message.find(" missing (backbone.body.layer1.0.bn3.bias, "), std::string::npos) << message;
    EXPECT_NE(message.find(" more"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(MaskRCNN, ReadTensorDictErrorsNameTheFile) {
    const fs::path dir = test::scratch_dir("maskrcnn_read");
    EXPECT_EQ(message_of([&] { read_tensor_dict((dir / "none.pth").string()); }),
              (dir / "none.pth").string() + ": cannot open the file");
    std::ofstream(dir / "text.pth") << "not a zip";
    EXPECT_EQ(message_of([&] { read_tensor_dict((dir / "text.pth").string()); }),
              (dir / "text.pth").string() +
                  ": not a torch.save zip file (the legacy format of _use_new_zipfile_serialization=False and "
                  "TorchScript files are not read)");
    std::ofstream(dir / "cut.pth") << "PK\x03\x04 truncated";
    const std::string cut = message_of([&] { read_tensor_dict((dir / "cut.pth").string()); });
    EXPECT_EQ(cut.rfind((dir / "cut.pth").string() + ": cannot read the state_dict (", 0), 0u) << cut;
}

TEST(MaskRCNN, StateNamesFollowTorchvisionForEveryDepth) {
    for (int64_t depth : {18, 34, 50}) {
        MaskRCNNConfig c;
        c.depth = depth;
        c.num_classes = 3;
        MaskRCNN model(c);
        const auto state = model->named_state();
        // 142 / 222 / 307 entries in torchvision 0.14's state_dict for these depths.
        const size_t expected = depth == 18 ? 142 : depth == 34 ? 222 : 307;
        EXPECT_EQ(state.size(), expected) << depth;
        EXPECT_EQ(state.at("backbone.fpn.inner_blocks.0.0.weight").size(1), depth == 50 ? 256 : 64);
        EXPECT_EQ(state.at("roi_heads.mask_predictor.mask_fcn_logits.weight").size(0), 3);
        // trainable_layers 3: conv1 and layer1 are frozen, layer2..4 train.
        EXPECT_FALSE(model->named_parameters()["backbone.body.layer1.0.conv1.weight"].requires_grad());
        EXPECT_TRUE(model->named_parameters()["backbone.body.layer2.0.conv1.weight"].requires_grad());
    }
}

TEST(MaskRCNN, PastedMaskFillsItsExpandedBoxOnly) {
    // A 28x28 mask of ones in the box (10, 10)-(20, 20): padding by one zero pixel grows the box
    // by 30/28 about its centre -> integer box (9, 9)-(20, 20), 12x12 pixels.
    const torch::Tensor pasted = paste_masks_in_image(torch::ones({1, 1, 28, 28}), torch::tensor({{10.f, 10.f, 20.f, 20.f}}), 32, 40);
    ASSERT_EQ(pasted.sizes(), (std::vector<int64_t>{1, 1, 32, 40}));
    const torch::Tensor m = pasted[0][0];
    using torch::indexing::Slice;
    EXPECT_EQ(m.index({Slice(0, 9)}).abs().sum().item<float>(), 0.f);
    EXPECT_EQ(m.index({Slice(21)}).abs().sum().item<float>(), 0.f);
    EXPECT_EQ(m.index({Slice(), Slice(21)}).abs().sum().item<float>(), 0.f);
    EXPECT_FLOAT_EQ(m[15][15].item<float>(), 1.f);
    // Corner pixel: the 30 -> 12 resize samples padded (0.75, 0.75), between the zero border
    // and the ones, bilinearly 0.75 * 0.75.
    EXPECT_NEAR(m[9][9].item<float>(), 0.5625f, 1e-6f);
}

// --init: torchvision's Mask R-CNN weights for another class count keep everything but the
// class-specific predictors; a ResNet classifier's weights become the backbone's body.
TEST(MaskRCNNInit, TorchvisionWeightsOfAnotherClassCountSkipOnlyThePredictors) {
    const std::string file = (kFixtures / "state_dict.pth").string();
    const std::map<std::string, torch::Tensor> weights = read_tensor_dict(file);
    MaskRCNNConfig config = fixture_config();
    config.num_classes = 7;  // the file's model has 4
    torch::manual_seed(3);
    MaskRCNN model(config);
    const InitReport report = init_from_state_dict(*model, file);
    const std::vector<std::string> predictors = {
        "roi_heads.box_predictor.bbox_pred.bias",          "roi_heads.box_predictor.bbox_pred.weight",
        "roi_heads.box_predictor.cls_score.bias",          "roi_heads.box_predictor.cls_score.weight",
        "roi_heads.mask_predictor.mask_fcn_logits.bias",   "roi_heads.mask_predictor.mask_fcn_logits.weight"};
    EXPECT_FALSE(report.backbone_only);
    EXPECT_EQ(report.skipped, predictors);
    const auto state = model->named_state();
    EXPECT_EQ(report.loaded, state.size() - predictors.size());
    for (const auto& [name, t] : state) {
        const bool skipped = std::find(predictors.begin(), predictors.end(), name) != predictors.end();
        if (!skipped) {
            EXPECT_TRUE(torch::equal(t, weights.at(name))) << name;
        }
    }
    EXPECT_EQ(state.at("roi_heads.box_predictor.cls_score.weight").size(0), 7);
    // The same class count: everything is taken.
    MaskRCNN same(fixture_config());
    const InitReport all = init_from_state_dict(*same, file);
    EXPECT_TRUE(all.skipped.empty());
    EXPECT_EQ(all.loaded, state.size());
}

TEST(MaskRCNNInit, AResNetClassifiersWeightsBecomeTheBackboneBody) {
    // torchvision.models.resnet18().state_dict()'s layout: the body's names without the
    // detector's prefix, plus fc and BatchNorm's counters.
    const std::map<std::string, torch::Tensor> detector = read_tensor_dict((kFixtures / "state_dict.pth").string());
    std::map<std::string, torch::Tensor> classifier;
    const std::string prefix = "backbone.body.";
    for (const auto& [name, t] : detector)
        if (name.rfind(prefix, 0) == 0) classifier[name.substr(prefix.size())] = t;
    classifier["fc.weight"] = torch::zeros({1000, 512});
    classifier["fc.bias"] = torch::zeros({1000});
    classifier["bn1.num_batches_tracked"] = torch::tensor(int64_t{10});
    const fs::path dir = test::scratch_dir("init");
    write_tensor_dict(classifier, (dir / "resnet18.pth").string());
    torch::manual_seed(3);
    MaskRCNN model(fixture_config());
    torch::manual_seed(3);
    MaskRCNN fresh(fixture_config());
    const InitReport report = init_from_state_dict(*model, (dir / "resnet18.pth").string());
    EXPECT_TRUE(report.backbone_only);
    EXPECT_TRUE(report.skipped.empty());
    std::size_t body = 0;
    const auto state = model->named_state(), initial = fresh->named_state();
    for (const auto& [name, t] : state) {
        if (name.rfind(prefix, 0) == 0) {
            ++body;
            EXPECT_TRUE(torch::equal(t, detector.at(name))) << name;
        } else {
            EXPECT_TRUE(torch::equal(t, initial.at(name))) << name << " changed";  // FPN, RPN, heads
        }
    }
    EXPECT_EQ(report.loaded, body);
    EXPECT_GT(body, 50u);
    // Another network's weights are refused with what does not fit, and change nothing.
    classifier["layer9.weight"] = torch::zeros({3});
    classifier["conv1.weight"] = torch::zeros({64, 3, 3, 3});
    write_tensor_dict(classifier, (dir / "other.pth").string());
    const std::string message = test::message_of([&] { init_from_state_dict(*fresh, (dir / "other.pth").string()); });
    EXPECT_EQ(message, (dir / "other.pth").string() +
                           ": neither a Mask R-CNN state_dict nor a ResNet-18 classifier's for this model: 1 unexpected "
                           "(layer9.weight); 1 mismatched (backbone.body.conv1.weight [64,3,3,3] in the file, "
                           "[64,3,7,7] in the model)");
    EXPECT_TRUE(torch::equal(fresh->named_state().at("backbone.body.conv1.weight"), initial.at("backbone.body.conv1.weight")));
}
