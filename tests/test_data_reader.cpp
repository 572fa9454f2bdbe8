// open_dataset: PASCAL VOC layout, image folder + labels.csv, and every bad-input message.
#include <thread>

#include <gtest/gtest.h>

#include "sightline/data.hpp"
#include "sightline/palette.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

// An image whose pixels encode their position, so a mix-up of files would show.
cv::Mat pattern(int w, int h, int seed) {
    cv::Mat img(h, w, CV_8UC3);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) img.at<cv::Vec3b>(y, x) = cv::Vec3b(uint8_t(x * 7 + seed), uint8_t(y * 5), uint8_t(seed * 30));
    return img;
}

cv::Mat blocks(int w, int h, std::vector<uint8_t> ids) {
    cv::Mat m(h, w, CV_8U, cv::Scalar(0));
    for (std::size_t i = 0; i < ids.size(); ++i)
        m(cv::Rect(static_cast<int>(i) * 2, 0, 2, 2)).setTo(ids[i]);
    return m;
}

// A three-image VOC root: a (cat + ignore band), b (dog), c (cat, dog); split "train" = a, b
// and "val" = c.
fs::path make_voc(const std::string& name, bool classes_txt = true, bool labels_csv = true) {
    fs::path root = test::scratch_dir(name);
    write_image_rgb(root / "JPEGImages/a.png", pattern(12, 8, 1));
    write_image_rgb(root / "JPEGImages/b.png", pattern(12, 8, 2));
    write_image_rgb(root / "JPEGImages/c.png", pattern(12, 8, 3));
    write_palette_png(root / "SegmentationClass/a.png", blocks(12, 8, {1, 255}));
    write_palette_png(root / "SegmentationClass/b.png", blocks(12, 8, {2}));
    write_palette_png(root / "SegmentationClass/c.png", blocks(12, 8, {1, 0, 2}));
    write_file_atomic(root / "ImageSets/Segmentation/train.txt", "a\nb\n");
    write_file_atomic(root / "ImageSets/Segmentation/val.txt", "c\n");
    if (classes_txt) write_file_atomic(root / "classes.txt", "background\ncat\ndog\n");
    if (labels_csv) write_file_atomic(root / "labels.csv", "image,labels\na,cat\nb,dog\nc,cat;dog\n");
    return root;
}

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST(VocReader, RoundTripsImagesMasksAndLabels) {
    fs::path root = make_voc("voc");
    auto data = open_dataset(root, "train");
    ASSERT_EQ(data->size(), 2u);
    EXPECT_EQ(data->class_names(), (std::vector<std::string>{"background", "cat", "dog"}));
    EXPECT_EQ(data->num_object_classes(), 2u);
    Sample a = data->get(0);
    EXPECT_EQ(a.id, "a");
    EXPECT_EQ(cv::countNonZero(a.image.reshape(1) != pattern(12, 8, 1).reshape(1)), 0);
    EXPECT_EQ(cv::countNonZero(a.mask != blocks(12, 8, {1, 255})), 0);
    EXPECT_EQ(a.labels, std::vector<int>{1});
    EXPECT_EQ(data->get(1).labels, std::vector<int>{2});
    EXPECT_EQ(open_dataset(root, "val")->get(0).labels, (std::vector<int>{1, 2}));
}

TEST(VocReader, DerivesLabelsFromMasksIgnoringBackgroundAndVoid) {
    fs::path root = make_voc("voc", true, false);
    auto data = open_dataset(root, "val");
    EXPECT_EQ(data->get(0).labels, (std::vector<int>{1, 2}));
    EXPECT_EQ(open_dataset(root, "train")->get(0).labels, std::vector<int>{1});  // 255 is not a label
}

TEST(VocReader, UsesTheTwentyOneVocNamesWithoutClassesTxt) {
    fs::path root = make_voc("voc", false, false);
    auto data = open_dataset(root, "train");
    ASSERT_EQ(data->class_names().size(), 21u);
    EXPECT_EQ(data->class_names()[4], "boat");
    EXPECT_EQ(data->class_names()[20], "tvmonitor");
}

TEST(VocReader, AcceptsJpegImages) {
    fs::path root = make_voc("voc");
    fs::remove(root / "JPEGImages/a.png");
    write_image_rgb(root / "JPEGImages/a.jpg", pattern(12, 8, 1));
    Sample a = open_dataset(root, "train")->get(0);
    EXPECT_EQ(a.image.size(), cv::Size(12, 8));
    EXPECT_EQ(a.mask.size(), cv::Size(12, 8));
}

TEST(VocReader, IsSafeToReadFromSeveralThreads) {
    fs::path root = make_voc("voc");
    auto data = open_dataset(root, "train");
    std::vector<Sample> got(8);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < got.size(); ++t) threads.emplace_back([&, t] { got[t] = data->get(t % 2); });
    for (auto& t : threads) t.join();
    for (std::size_t t = 0; t < got.size(); ++t) {
        EXPECT_EQ(got[t].id, t % 2 ? "b" : "a");
        EXPECT_EQ(cv::countNonZero(got[t].mask != got[t % 2].mask), 0);
    }
}

TEST(FolderReader, ReadsMultiLabelCsvWithClassesTxt) {
    fs::path root = test::scratch_dir("folder");
    write_image_rgb(root / "train/x.png", pattern(10, 10, 1));
    write_image_rgb(root / "train/sub/y.jpg", pattern(10, 10, 2));
    write_file_atomic(root / "classes.txt", "background\nzebra\nant\n");
    write_file_atomic(root / "train/labels.csv", "image,labels\nx.png,zebra;ant\nsub/y.jpg,\n");
    auto data = open_dataset(root, "train");
    ASSERT_EQ(data->size(), 2u);
    Sample x = data->get(0);
    EXPECT_EQ(x.id, "x");
    EXPECT_EQ(x.labels, (std::vector<int>{1, 2}));
    EXPECT_TRUE(x.mask.empty());
    EXPECT_EQ(data->get(1).id, "sub/y");
    EXPECT_TRUE(data->get(1).labels.empty());
}

TEST(FolderReader, SortsClassNamesWithoutClassesTxt) {
    fs::path root = test::scratch_dir("folder");
    write_image_rgb(root / "p.png", pattern(6, 6, 1));
    write_image_rgb(root / "q.png", pattern(6, 6, 2));
    write_file_atomic(root / "labels.csv", "image,labels\np,zebra\nq,ant;zebra\n");
    auto data = open_dataset(root, "all");
    EXPECT_EQ(data->class_names(), (std::vector<std::string>{"background", "ant", "zebra"}));
    EXPECT_EQ(data->get(0).labels, std::vector<int>{2});
    EXPECT_EQ(data->get(1).labels, (std::vector<int>{1, 2}));
}

// ---- bad input: one line naming the file ------------------------------------------------------

TEST(ReaderErrors, ImageListedButMissing) {
    fs::path root = make_voc("voc");
    fs::remove(root / "JPEGImages/b.png");
    EXPECT_EQ(error_of([&] { open_dataset(root, "train"); }),
              (root / "JPEGImages/b.jpg").string() + ": no such image file (nor .png or .jpeg; listed in " +
                  (root / "ImageSets/Segmentation/train.txt").string() + " line 2)");
}

TEST(ReaderErrors, MaskOfAnotherSize) {
    fs::path root = make_voc("voc");
    write_palette_png(root / "SegmentationClass/b.png", cv::Mat::zeros(7, 12, CV_8U));
    auto data = open_dataset(root, "train");
    EXPECT_EQ(error_of([&] { data->get(1); }),
              (root / "SegmentationClass/b.png").string() + ": mask is 12x7 but its image " +
                  (root / "JPEGImages/b.png").string() + " is 12x8");
}

TEST(ReaderErrors, MaskIdOutsideTheClassList) {
    fs::path root = make_voc("voc");
    write_palette_png(root / "SegmentationClass/c.png", blocks(12, 8, {1, 3, 255}));
    auto data = open_dataset(root, "val");
    EXPECT_EQ(error_of([&] { data->get(0); }),
              (root / "SegmentationClass/c.png").string() + ": label id 3 outside the class list (0..2 from " +
                  (root / "classes.txt").string() + "; 255 = ignore)");
}

TEST(ReaderErrors, CorruptPngImageAndMask) {
    fs::path root = make_voc("voc");
    write_file_atomic(root / "JPEGImages/a.png", std::string("\x89PNG\r\n\x1a\ngarbage"));
    auto data = open_dataset(root, "train");
    std::string message = error_of([&] { data->get(0); });
    EXPECT_EQ(message.rfind((root / "JPEGImages/a.png").string() + ": cannot decode image", 0), 0u) << message;
    write_file_atomic(root / "SegmentationClass/b.png", std::string("\x89PNG\r\n\x1a\ngarbage"));
    message = error_of([&] { data->get(1); });
    EXPECT_EQ(message.rfind((root / "SegmentationClass/b.png").string() + ": ", 0), 0u) << message;
}

TEST(ReaderErrors, EmptySplit) {
    fs::path root = make_voc("voc");
    write_file_atomic(root / "ImageSets/Segmentation/empty.txt", "\n\n");
    EXPECT_EQ(error_of([&] { open_dataset(root, "empty"); }),
              (root / "ImageSets/Segmentation/empty.txt").string() + ": split lists no images");
}

TEST(ReaderErrors, MissingSplitListsTheSplitsThere) {
    fs::path root = make_voc("voc");
    EXPECT_EQ(error_of([&] { open_dataset(root, "trian"); }),
              (root / "ImageSets/Segmentation/trian.txt").string() + ": no such split file (splits here: train, val)");
}

TEST(ReaderErrors, UnknownClassNameInLabelsCsv) {
    fs::path root = make_voc("voc");
    write_file_atomic(root / "labels.csv", "image,labels\na,cat\nb,dgo\n");
    EXPECT_EQ(error_of([&] { open_dataset(root, "train"); }),
              (root / "labels.csv").string() + ": line 3: unknown class 'dgo' (object classes from " +
                  (root / "classes.txt").string() + ": cat, dog)");
}

TEST(ReaderErrors, MalformedLabelsCsvAndClassesTxt) {
    fs::path root = make_voc("voc");
    write_file_atomic(root / "labels.csv", "file,classes\n");
    EXPECT_EQ(error_of([&] { open_dataset(root, "train"); }),
              (root / "labels.csv").string() + ": the first line must be the header 'image,class' or 'image,labels' (columns: image = "
                                                 "file name or id; class/labels = one class name, or several separated "
                                                 "by spaces or ';'), got 'file,classes'");
    write_file_atomic(root / "labels.csv", "image,labels\na,cat,dog\n");
    EXPECT_EQ(error_of([&] { open_dataset(root, "train"); }),
              (root / "labels.csv").string() + ": line 2: expected 2 columns 'image,labels', got 'a,cat,dog'");
    write_file_atomic(root / "classes.txt", "background\ncat\ncat\n");
    EXPECT_EQ(error_of([&] { open_dataset(root, "train"); }),
              (root / "classes.txt").string() + ": line 3: class 'cat' already listed on line 2");
}

TEST(ReaderErrors, NotADataset) {
    fs::path root = test::scratch_dir("nothing");
    EXPECT_EQ(error_of([&] { open_dataset(root, "train"); }),
              (root / "train/labels.csv").string() +
                  ": no such file (a dataset root holds ImageSets/Segmentation/ or an image folder with labels.csv)");
    EXPECT_EQ(error_of([&] { open_dataset(root / "missing", "train"); }),
              (root / "missing").string() + ": no such dataset folder");
}

TEST(ReaderErrors, FolderImageMissing) {
    fs::path root = test::scratch_dir("folder");
    write_file_atomic(root / "labels.csv", "image,labels\nghost.png,cat\n");
    EXPECT_EQ(error_of([&] { open_dataset(root, ""); }),
              (root / "ghost.png").string() + ": no such image file (listed in " + (root / "labels.csv").string() + ")");
}
