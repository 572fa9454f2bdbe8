// Instance data: the VOC reader (instance ids + majority class), the COCO reader (polygons,
// RLE, crowd, category ids), the COCO file `data synth --instances` writes (same objects as its
// PNGs, and AP 1.0 when scored against itself).
#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "sightline/coco.hpp"
#include "sightline/data.hpp"
#include "sightline/instances.hpp"
#include "sightline/palette.hpp"
#include "test_support.hpp"

using namespace sightline;
using sightline::test::message_of;

namespace {

bool same_mask(const cv::Mat& a, const cv::Mat& b) {
    return a.size() == b.size() && a.type() == b.type() && cv::countNonZero(a != b) == 0;
}

cv::Mat rect_mask(int w, int h, const cv::Rect& r) {
    cv::Mat m(h, w, CV_8U, cv::Scalar(0));
    m(r).setTo(1);
    return m;
}

// A 10x8 image with four instance ids: 1 (class 2 by 9 votes to 2, one ignore pixel), 3 (class
// 1), 2 (only ignore pixels under it) and 4 (background under it): two objects, two skipped.
fs::path make_two_instances(const std::string& name) {
    const fs::path root = test::scratch_dir(name);
    cv::Mat image(8, 10, CV_8UC3, cv::Scalar(40, 80, 120));
    cv::Mat classes(8, 10, CV_8U, cv::Scalar(0)), objects(8, 10, CV_8U, cv::Scalar(0));
    objects(cv::Rect(2, 1, 4, 3)).setTo(1);
    classes(cv::Rect(2, 1, 4, 3)).setTo(2);
    classes.at<uint8_t>(1, 2) = 1, classes.at<uint8_t>(1, 3) = 1, classes.at<uint8_t>(3, 5) = 255;
    objects(cv::Rect(7, 5, 3, 2)).setTo(3);
    classes(cv::Rect(7, 5, 3, 2)).setTo(1);
    objects(cv::Rect(0, 7, 2, 1)).setTo(2);
    classes(cv::Rect(0, 7, 2, 1)).setTo(255);
    objects.at<uint8_t>(0, 9) = 4;
    write_image_rgb(root / "JPEGImages/a.png", image);
    write_palette_png(root / "SegmentationClass/a.png", classes);
    write_palette_png(root / "SegmentationObject/a.png", objects);
    write_file_atomic(root / "ImageSets/Segmentation/train.txt", "a\n");
    write_file_atomic(root / "classes.txt", "background\ncat\ndog\n");
    return root;
}

fs::path make_instance_synth(const std::string& name) {
    const fs::path root = test::scratch_dir(name);
    SynthOptions o;
    o.n = 6;
    o.size = 48;
    o.multi = true;
    o.instances = true;
    o.threads = 1;
    generate_synth(root, o);
    return root;
}

}  // namespace

TEST(VocInstances, TwoInstancesKnownBoxesLabelsMasks) {
    const auto data = open_voc_instances(make_two_instances("voc_two"), "train");
    ASSERT_EQ(data->size(), 1u);
    EXPECT_EQ(data->class_names(), (std::vector<std::string>{"background", "cat", "dog"}));
    EXPECT_EQ(data->category_ids(), (std::vector<int64_t>{0, 1, 2}));
    const InstanceSample s = data->get(0);
    EXPECT_EQ(s.id, "a");
    EXPECT_EQ(s.image_id, 1);
    ASSERT_EQ(s.objects.size(), 2u);
    EXPECT_EQ(s.skipped_unlabelled, 2u);  // id 2 (all ignore) and id 4 (background)
    EXPECT_EQ(s.skipped_empty, 0u);
    EXPECT_EQ(s.objects[0].label, 2);  // 9 dog pixels outvote 2 cat pixels; the 255 pixel does not vote
    EXPECT_EQ(s.objects[0].box, (std::array<float, 4>{2, 1, 6, 4}));
    EXPECT_TRUE(same_mask(s.objects[0].mask, rect_mask(10, 8, cv::Rect(2, 1, 4, 3))));
    EXPECT_EQ(s.objects[1].label, 1);
    EXPECT_EQ(s.objects[1].box, (std::array<float, 4>{7, 5, 10, 7}));
    EXPECT_TRUE(same_mask(s.objects[1].mask, rect_mask(10, 8, cv::Rect(7, 5, 3, 2))));
    EXPECT_FALSE(s.objects[0].crowd);
}

TEST(VocInstances, BadInputNamesTheFile) {
    const fs::path root = make_two_instances("voc_bad");
    write_palette_png(root / "SegmentationObject/a.png", cv::Mat(4, 10, CV_8U, cv::Scalar(0)));
    const auto data = open_voc_instances(root, "train");
    EXPECT_EQ(message_of([&] { data->get(0); }),
              (root / "SegmentationObject/a.png").string() + ": instance mask is 10x4 but its image is 10x8");
    fs::remove_all(root / "SegmentationObject");
    EXPECT_EQ(message_of([&] { open_voc_instances(root, "train"); }),
              (root / "SegmentationObject").string() +
                  ": no such folder (instance data needs SegmentationObject/ and SegmentationClass/; `sightline "
                  "data synth --instances` writes both)");
}

TEST(InstanceFlip, MirrorsImageMasksAndBoxes) {
    InstanceSample s = open_voc_instances(make_two_instances("voc_flip"), "train")->get(0);
    horizontal_flip(s);
    EXPECT_EQ(s.objects[0].box, (std::array<float, 4>{4, 1, 8, 4}));
    EXPECT_EQ(s.objects[0].box, box_of_mask(s.objects[0].mask));
    EXPECT_EQ(s.objects[1].box, (std::array<float, 4>{0, 5, 3, 7}));
    EXPECT_EQ(s.objects[1].box, box_of_mask(s.objects[1].mask));
}

TEST(CocoInstances, PolygonsRleCrowdAndCategoryIds) {
    const fs::path root = test::scratch_dir("coco_reader");
    write_image_rgb(root / "images/a.png", cv::Mat(8, 10, CV_8UC3, cv::Scalar(1, 2, 3)));
    const std::string compressed = rle_to_string(rle_encode(rect_mask(10, 8, cv::Rect(0, 0, 2, 2))));
    write_file_atomic(root / "gt.json", R"({"images": [{"id": 42, "file_name": "a.png", "height": 8, "width": 10}],
        "categories": [{"id": 9, "name": "dog"}, {"id": 5, "name": "cat"}],
        "annotations": [
          {"id": 1, "image_id": 42, "category_id": 9, "area": 12, "bbox": [2, 1, 4, 3],
           "segmentation": [[2, 1, 6, 1, 6, 4, 2, 4]]},
          {"id": 2, "image_id": 42, "category_id": 5, "area": 6, "bbox": [7, 5, 3, 2], "iscrowd": 1,
           "segmentation": {"size": [8, 10], "counts": [61, 2, 6, 2, 6, 2, 1]}},
          {"id": 3, "image_id": 42, "category_id": 5, "area": 4, "bbox": [0, 0, 2, 2],
           "segmentation": {"size": [8, 10], "counts": ")" + compressed + R"("}},
          {"id": 4, "image_id": 42, "category_id": 9, "area": 0, "bbox": [0, 0, 0, 0],
           "segmentation": {"size": [8, 10], "counts": [80]}}]})");
    const auto data = open_coco_instances(root / "gt.json", root / "images");
    EXPECT_EQ(data->class_names(), (std::vector<std::string>{"background", "cat", "dog"}));
    EXPECT_EQ(data->category_ids(), (std::vector<int64_t>{0, 5, 9}));
    const InstanceSample s = data->get(0);
    EXPECT_EQ(s.image_id, 42);
    EXPECT_EQ(s.id, "a");
    ASSERT_EQ(s.objects.size(), 3u);
    EXPECT_EQ(s.skipped_empty, 1u);
    EXPECT_EQ(s.objects[0].label, 2);
    EXPECT_EQ(s.objects[0].box, (std::array<float, 4>{2, 1, 6, 4}));
    EXPECT_TRUE(same_mask(s.objects[0].mask, rle_decode(rle_from_polygon({2, 1, 6, 1, 6, 4, 2, 4}, 8, 10))));
    EXPECT_EQ(s.objects[1].label, 1);
    EXPECT_TRUE(s.objects[1].crowd);
    EXPECT_EQ(s.objects[1].box, (std::array<float, 4>{7, 5, 10, 7}));
    EXPECT_TRUE(same_mask(s.objects[1].mask, rect_mask(10, 8, cv::Rect(7, 5, 3, 2))));
    EXPECT_FALSE(s.objects[2].crowd);
    EXPECT_TRUE(same_mask(s.objects[2].mask, rect_mask(10, 8, cv::Rect(0, 0, 2, 2))));

    write_image_rgb(root / "images/a.png", cv::Mat(9, 10, CV_8UC3, cv::Scalar(1, 2, 3)));
    EXPECT_EQ(message_of([&] { data->get(0); }),
              (root / "images/a.png").string() + ": image is 10x9 but " + (root / "gt.json").string() +
                  " gives image id 42 as 10x8");
    fs::remove(root / "images/a.png");
    EXPECT_EQ(message_of([&] { open_coco_instances(root / "gt.json", root / "images"); }),
              (root / "images/a.png").string() + ": no such image file (image id 42 of " +
                  (root / "gt.json").string() + ")");
}

TEST(SynthInstances, CocoFileHasTheSameObjectsAsThePngs) {
    const fs::path root = make_instance_synth("synth_coco");
    std::size_t objects = 0;
    for (const std::string split : {"train", "val", "test"}) {
        const auto voc = open_voc_instances(root, split);
        const auto coco = open_instance_dataset(root / "annotations" / ("instances_" + split + ".json"), "");
        EXPECT_EQ(coco->class_names(), synth_class_names());
        ASSERT_EQ(voc->size(), coco->size()) << split;
        for (std::size_t i = 0; i < voc->size(); ++i) {
            const InstanceSample a = voc->get(i), b = coco->get(i);
            EXPECT_EQ(a.id, b.id);
            EXPECT_EQ(a.image_id, b.image_id);
            EXPECT_EQ(a.skipped_unlabelled, 0u);
            EXPECT_TRUE(same_mask(a.image.reshape(1), b.image.reshape(1)));
            ASSERT_EQ(a.objects.size(), b.objects.size()) << a.id;
            for (std::size_t k = 0; k < a.objects.size(); ++k, ++objects) {
                EXPECT_EQ(a.objects[k].label, b.objects[k].label) << a.id;
                EXPECT_EQ(a.objects[k].box, b.objects[k].box) << a.id;
                EXPECT_TRUE(same_mask(a.objects[k].mask, b.objects[k].mask)) << a.id;
            }
        }
    }
    EXPECT_GE(objects, 12u);  // 6 train scenes, 2 val and 2 test scenes x 2 versions with objects
}

TEST(SynthInstances, GroundTruthScoredAgainstItselfHasApOne) {
    const fs::path root = make_instance_synth("synth_ap");
    const fs::path gt_file = root / "annotations/instances_val.json";
    const CocoDataset gt = read_coco_dataset(gt_file);
    ASSERT_FALSE(gt.annotations.empty());
    std::vector<CocoDetection> as_results;
    for (const CocoAnnotation& a : gt.annotations)
        as_results.push_back({a.image_id, a.category_id, 1.0, a.bbox, a.mask, 0.0});
    write_coco_results(root / "results.json", as_results);
    const CocoResults results = read_coco_results(root / "results.json", gt);
    for (CocoIouType type : {CocoIouType::segm, CocoIouType::bbox}) {
        const CocoEvalResult r = evaluate_coco(gt, results, type);
        EXPECT_DOUBLE_EQ(r.stats[0], 1.0) << coco_iou_type_name(type);
        EXPECT_DOUBLE_EQ(r.stats[1], 1.0) << coco_iou_type_name(type);
        EXPECT_DOUBLE_EQ(r.stats[8], 1.0) << coco_iou_type_name(type);
    }
}
