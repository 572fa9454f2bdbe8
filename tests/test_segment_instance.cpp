// `sightline instance` and its library parts: the model card, the tensors of an instance
// sample, and the CLI on the torchvision parity fixture model (results.json = detect(); eval
// --coco reads it; bad input is one line and no output).
#include <algorithm>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sightline/instance.hpp"
#include "sightline/palette.hpp"
#include "test_support.hpp"

using namespace sightline;
using sightline::test::message_of;

namespace {

const fs::path kMaskRcnnFixtureDir = SIGHTLINE_MASKRCNN_FIXTURES_DIR;

nlohmann::json read_json(const fs::path& path) {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
}

// The parity fixture's configuration as a model card.
std::string fixture_card(int64_t num_classes) {
    const nlohmann::json c = read_json(kMaskRcnnFixtureDir / "config.json");
    nlohmann::json card{{"task", "instance"},         {"depth", c.at("depth")},
                        {"num_classes", num_classes}, {"min_size", c.at("min_size")},
                        {"max_size", c.at("max_size")}, {"box_score_thresh", c.at("box_score_thresh")}};
    return card.dump(1);
}

int fixture_threads() { return read_json(kMaskRcnnFixtureDir / "config.json").at("threads").get<int>(); }

// The fixture's two images as PNGs, and a COCO file listing them (ids 7 and 9) with one
// rectangle each, so `eval --coco` has ground truth.
fs::path fixture_images(const fs::path& dir) {
    const auto ref = read_tensor_dict((kMaskRcnnFixtureDir / "reference.pth").string());
    CocoDataset gt;
    gt.categories = {{1, "a"}, {2, "b"}, {3, "c"}};
    for (int i = 0; i < 2; ++i) {
        const torch::Tensor img = ref.at("image" + std::to_string(i));
        const torch::Tensor hwc = (img * 255).round().clamp(0, 255).to(torch::kUInt8).permute({1, 2, 0}).contiguous();
        cv::Mat rgb(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3, hwc.data_ptr<uint8_t>());
        const std::string name = "img" + std::to_string(i) + ".png";
        write_image_rgb(dir / name, rgb.clone());
        const int64_t id = i == 0 ? 7 : 9;
        gt.images.push_back({id, rgb.rows, rgb.cols, name});
        cv::Mat mask(rgb.rows, rgb.cols, CV_8UC1, cv::Scalar(0));
        mask(cv::Rect(rgb.cols / 4, rgb.rows / 5, rgb.cols / 4, rgb.rows / 4)).setTo(1);
        CocoAnnotation a;
        a.id = i + 1, a.image_id = id, a.category_id = 1, a.mask = rle_encode(mask);
        a.area = static_cast<double>(rle_area(*a.mask)), a.bbox = rle_to_bbox(*a.mask);
        gt.annotations.push_back(a);
    }
    write_coco_dataset(dir / "gt.json", gt);
    return dir / "gt.json";
}

}  // namespace

TEST(InstanceCard, RoundTripsAndDefaults) {
    const fs::path dir = test::scratch_dir("card");
    InstanceModelCard card;
    card.config.depth = 18;
    card.config.num_classes = 3;
    card.config.min_size = 64;
    card.config.box_score_thresh = 0.25;
    card.config.image_mean = {0.5f, 0.25f, 0.125f};
    card.class_names = {"background", "cat", "dog"};
    card.category_ids = {0, 17, 18};
    write_file_atomic(dir / "model.json", instance_model_card_json(card));
    EXPECT_EQ(default_card_path(dir / "model.pth"), dir / "model.json");
    const InstanceModelCard back = read_instance_model_card(dir / "model.json");
    EXPECT_EQ(back.config.depth, 18);
    EXPECT_EQ(back.config.min_size, 64);
    EXPECT_EQ(back.config.max_size, 1333);
    EXPECT_EQ(back.config.box_score_thresh, 0.25);
    EXPECT_EQ(back.config.image_mean, card.config.image_mean);
    EXPECT_EQ(back.class_names, card.class_names);
    EXPECT_EQ(back.category_ids, card.category_ids);

    write_file_atomic(dir / "small.json", R"({"depth": 34, "num_classes": 3})");
    const InstanceModelCard small = read_instance_model_card(dir / "small.json");
    EXPECT_EQ(small.class_names, (std::vector<std::string>{"background", "class_1", "class_2"}));
    EXPECT_EQ(small.category_ids, (std::vector<int64_t>{0, 1, 2}));
}

TEST(InstanceCard, BadCardsNameTheFileAndTheKey) {
    const fs::path dir = test::scratch_dir("bad_card");
    const auto error_for = [&](const std::string& text) {
        write_file_atomic(dir / "m.json", text);
        return message_of([&] { read_instance_model_card(dir / "m.json"); });
    };
    const std::string f = (dir / "m.json").string();
    EXPECT_EQ(error_for(R"({"num_classes": 3})"), f + ": no \"depth\"");
    EXPECT_EQ(error_for(R"({"depth": 18, "num_classes": 3, "min_szie": 3})").substr(0, f.size() + 26),
              f + ": unknown key \"min_szie\" (");
    EXPECT_EQ(error_for(R"({"depth": "18", "num_classes": 3})"), f + ": \"depth\" must be an integer, got \"18\"");
    EXPECT_EQ(error_for(R"({"depth": 19, "num_classes": 3})"), f + ": Mask R-CNN: depth should be 18, 34 or 50, got 19");
    EXPECT_EQ(error_for(R"({"depth": 18, "num_classes": 3, "class_names": ["background", "a"]})"),
              f + ": \"class_names\" must list 3 names (num_classes, background first), got 2");
    EXPECT_EQ(message_of([&] { read_instance_model_card(dir / "none.json"); }),
              (dir / "none.json").string() +
                  ": no such model card (a JSON with depth, num_classes, class_names; docs/mask-rcnn.md)");
}

TEST(InstanceTensors, TargetOfAHandMadeSample) {
    InstanceSample s;
    s.image = cv::Mat(4, 5, CV_8UC3, cv::Scalar(255, 0, 51));
    InstanceObject a, crowd;
    a.label = 2;
    a.mask = cv::Mat(4, 5, CV_8UC1, cv::Scalar(0));
    a.mask(cv::Rect(1, 2, 3, 1)).setTo(1);
    a.box = box_of_mask(a.mask);
    crowd = a;
    crowd.crowd = true;
    s.objects = {crowd, a};
    const InstanceTarget t = instance_target(s);
    EXPECT_TRUE(torch::equal(t.boxes, torch::tensor({{1.f, 2.f, 4.f, 3.f}})));
    EXPECT_TRUE(torch::equal(t.labels, torch::tensor({int64_t{2}})));
    ASSERT_EQ(t.masks.sizes(), (std::vector<int64_t>{1, 4, 5}));
    EXPECT_EQ(t.masks.scalar_type(), torch::kUInt8);
    EXPECT_EQ(t.masks.sum().item<int64_t>(), 3);
    EXPECT_EQ(t.masks[0][2][1].item<int>(), 1);
    EXPECT_EQ(t.masks[0][2][3].item<int>(), 1);
    const torch::Tensor x = rgb_to_tensor(s.image);
    ASSERT_EQ(x.sizes(), (std::vector<int64_t>{3, 4, 5}));
    EXPECT_FLOAT_EQ(x[0][0][0].item<float>(), 1.0f);
    EXPECT_FLOAT_EQ(x[2][3][4].item<float>(), 0.2f);
}

TEST(InstanceOutputs, ClassImageTakesEachKeptInstancesLabelAndTheHigherScoreWins) {
    // Three detections on a 4x6 image: class 2 (score 0.9) over columns 0-3, class 1 (score 0.7)
    // over columns 2-5, class 3 below the threshold everywhere.
    InstanceDetections d;
    d.scores = torch::tensor({0.9f, 0.7f, 0.3f});
    d.labels = torch::tensor({2, 1, 3}, torch::kLong);
    d.boxes = torch::zeros({3, 4});
    d.masks = torch::zeros({3, 1, 4, 6});
    d.masks.index_put_({0, 0, torch::indexing::Slice(), torch::indexing::Slice(0, 4)}, 0.9);
    d.masks.index_put_({1, 0, torch::indexing::Slice(), torch::indexing::Slice(2, 6)}, 0.8);
    d.masks.index_put_({2}, 1.0);
    const cv::Mat classes = class_id_image(d, 0.5);
    ASSERT_EQ(classes.size(), cv::Size(6, 4));
    for (int y = 0; y < 4; ++y) {
        for (int x = 0; x < 4; ++x) EXPECT_EQ(classes.at<uint8_t>(y, x), 2) << x;
        for (int x = 4; x < 6; ++x) EXPECT_EQ(classes.at<uint8_t>(y, x), 1) << x;
    }
    EXPECT_EQ(cv::countNonZero(class_id_image(d, 0.95)), 0);
}

TEST(InstanceCli, ResultsAreDetectsAndEvalReadsThem) {
    const fs::path dir = test::scratch_dir("cli_fixture");
    const fs::path gt = fixture_images(dir / "images");
    write_file_atomic(dir / "card.json", fixture_card(4));
    const fs::path weights = kMaskRcnnFixtureDir / "state_dict.pth";
    const std::string threads = std::to_string(fixture_threads());
    const auto r = test::run_sightline("instance --model " + weights.string() + " --config " + (dir / "card.json").string() +
                                       " --coco " + gt.string() + " --input " + (dir / "images").string() + " --out " +
                                       (dir / "out").string() + " --threads " + threads);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const char* file : {"results.json", "images.json", "img0.png", "img0_overlay.png", "img1.png", "img1_overlay.png"})
        EXPECT_TRUE(fs::exists(dir / "out" / file)) << file;

    // The same model in this process on the same PNGs.
    torch::set_num_threads(std::stoi(threads));
    const InstanceModelCard card = read_instance_model_card(dir / "card.json");
    MaskRCNN model(card.config);
    load_state_dict(*model, weights.string());
    const nlohmann::json results = read_json(dir / "out/results.json");
    std::size_t next = 0;
    for (int i = 0; i < 2; ++i) {
        const cv::Mat rgb = read_image_rgb(dir / "images" / ("img" + std::to_string(i) + ".png")).rgb;
        const InstanceDetections d = model->detect({rgb_to_tensor(rgb)}).detections.at(0);
        ASSERT_GT(d.boxes.size(0), 5);
        const std::vector<CocoDetection> expected = coco_results_of(d, i == 0 ? 7 : 9, card.category_ids);
        for (int64_t k = 0; k < d.boxes.size(0); ++k, ++next) {
            ASSERT_LT(next, results.size());
            const nlohmann::json& got = results[next];
            EXPECT_EQ(got.at("image_id").get<int64_t>(), i == 0 ? 7 : 9);
            EXPECT_EQ(got.at("category_id").get<int64_t>(), d.labels[k].item<int64_t>());
            EXPECT_EQ(got.at("score").get<float>(), d.scores[k].item<float>());
            const auto box = got.at("bbox").get<std::vector<double>>();
            EXPECT_EQ(static_cast<float>(box[0]), d.boxes[k][0].item<float>());
            EXPECT_EQ(static_cast<float>(box[1]), d.boxes[k][1].item<float>());
            EXPECT_NEAR(box[0] + box[2], d.boxes[k][2].item<float>(), 1e-4);
            EXPECT_NEAR(box[1] + box[3], d.boxes[k][3].item<float>(), 1e-4);
            EXPECT_EQ(got.at("segmentation").at("counts").get<std::string>(),
                      rle_to_string(*expected[static_cast<std::size_t>(k)].mask));
        }
        // The PNG's instance 1 is the top detection's mask (nothing scores higher to cover it).
        const cv::Mat ids = read_index_png(dir / "out" / ("img" + std::to_string(i) + ".png"));
        EXPECT_EQ(ids.size(), rgb.size());
        if (d.scores[0].item<float>() >= 0.5f) {
            EXPECT_EQ(cv::countNonZero(ids == 1) > 0, rle_area(*expected[0].mask) > 0);
        }
    }
    EXPECT_EQ(next, results.size());
    const nlohmann::json images = read_json(dir / "out/images.json");
    ASSERT_EQ(images.size(), 2u);
    EXPECT_EQ(images[1].at("id"), 9);
    EXPECT_EQ(images[1].at("file_name"), "img1.png");

    const auto e = test::run_sightline("eval --coco " + gt.string() + " --results " + (dir / "out/results.json").string() +
                                       " --iou-type segm,bbox --out " + (dir / "eval").string());
    ASSERT_EQ(e.exit_code, 0) << e.err;
    EXPECT_NE(e.out.find("Evaluate annotation type *segm*"), std::string::npos) << e.out;
    EXPECT_TRUE(fs::exists(dir / "eval/coco_eval.json"));
}

TEST(InstanceCli, BadInputIsOneLineAndWritesNothing) {
    const fs::path dir = test::scratch_dir("cli_bad");
    fixture_images(dir / "images");
    write_file_atomic(dir / "card.json", fixture_card(4));
    write_file_atomic(dir / "card5.json", fixture_card(5));
    const fs::path weights = kMaskRcnnFixtureDir / "state_dict.pth";
    const auto run = [&](const std::string& model, const std::string& card, const std::string& input,
                         const fs::path& out) {
        return test::run_sightline("instance --model " + model + " --config " + card + " --input " + input +
                                   " --out " + out.string());
    };
    const std::string card = (dir / "card.json").string(), images = (dir / "images").string();
    const auto expect_error = [&](const test::CommandResult& r, const std::string& start, const fs::path& out) {
        EXPECT_EQ(r.exit_code, 1) << r.err;
        EXPECT_EQ(r.err.substr(0, start.size()), start) << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        EXPECT_FALSE(fs::exists(out)) << out;
    };

    expect_error(run((dir / "none.pth").string(), card, images, dir / "out1"),
                 "sightline: error: " + (dir / "none.pth").string() + ": no such model file (--model)\n", dir / "out1");
    expect_error(run(weights.string(), (dir / "card5.json").string(), images, dir / "out2"),
                 "sightline: error: " + weights.string() +
                     ": not a state_dict of this Mask R-CNN (ResNet-18, 5 classes): ",
                 dir / "out2");
    write_file_atomic(dir / "images/broken.png", "not a png");
    expect_error(run(weights.string(), card, images, dir / "out3"),
                 "sightline: error: " + (dir / "images/broken.png").string() + ": ", dir / "out3");
    fs::remove(dir / "images/broken.png");
    write_file_atomic(dir / "file", "x");
    expect_error(run(weights.string(), card, images, dir / "file/out"),
                 "sightline: error: " + (dir / "file/out").string() + ": cannot create output folder", dir / "file/out");
}
