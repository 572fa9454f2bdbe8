// Generators: synthetic shortcut scenes and Fashion-MNIST composites.
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "sightline/data.hpp"
#include "sightline/palette.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

// Relative path -> bytes of every file under root.
std::map<std::string, std::string> all_files(const fs::path& root) {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(root))
        if (e.is_regular_file()) files[fs::relative(e.path(), root).string()] = read_file(e.path());
    return files;
}

std::vector<std::string> lines_of(const fs::path& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) lines.push_back(line);
    return lines;
}

std::vector<std::string> split_ids(const fs::path& root, const std::string& split) {
    return lines_of(root / "ImageSets" / "Segmentation" / (split + ".txt"));
}

cv::Mat mask_of(const fs::path& root, const std::string& folder, const std::string& id) {
    return read_index_png(root / folder / (id + ".png"));
}

std::set<int> ids_in(const cv::Mat& mask) {
    std::set<int> ids;
    for (auto it = mask.begin<uint8_t>(); it != mask.end<uint8_t>(); ++it) ids.insert(*it);
    return ids;
}

// scenes.csv rows by image id: {split, scene, version, objects, contexts}.
std::map<std::string, std::vector<std::string>> scenes_csv(const fs::path& root) {
    std::map<std::string, std::vector<std::string>> rows;
    auto lines = lines_of(root / "scenes.csv");
    EXPECT_EQ(lines.at(0), "image,split,scene,version,objects,contexts");
    for (std::size_t i = 1; i < lines.size(); ++i) {
        std::stringstream ss(lines[i]);
        std::vector<std::string> cols;
        for (std::string c; std::getline(ss, c, ',');) cols.push_back(c);
        rows[cols.at(0)] = std::vector<std::string>(cols.begin() + 1, cols.end());
    }
    return rows;
}

fs::path make_synth(const std::string& name, SynthOptions o) {
    fs::path dir = test::scratch_dir(name);
    generate_synth(dir, o);
    return dir;
}

SynthOptions small_synth(int n = 20) {
    SynthOptions o;
    o.n = n;
    o.size = 48;
    return o;
}

}  // namespace

TEST(Synth, SameSeedGivesByteIdenticalFilesForAnyThreadCount) {
    SynthOptions a = small_synth(15);
    a.multi = true;
    a.instances = true;
    a.threads = 1;
    SynthOptions b = a;
    b.threads = 3;
    auto first = all_files(make_synth("a", a)), second = all_files(make_synth("b", b));
    ASSERT_GT(first.size(), 15u * 3);
    EXPECT_EQ(first.size(), second.size());
    for (const auto& [name, bytes] : first) {
        ASSERT_TRUE(second.count(name)) << name;
        EXPECT_TRUE(second[name] == bytes) << name << " differs between runs with the same seed";
    }
}

TEST(Synth, DifferentSeedGivesDifferentImages) {
    SynthOptions a = small_synth(10), b = a;
    b.seed = 2;
    fs::path da = make_synth("a", a), db = make_synth("b", b);
    int differing = 0;
    for (const auto& id : split_ids(da, "train"))
        differing += read_file(da / "JPEGImages" / (id + ".png")) != read_file(db / "JPEGImages" / (id + ".png"));
    EXPECT_EQ(differing, 10);
}

TEST(Synth, CounterfactualVersionsShareTheObjectExactly) {
    fs::path root = make_synth("cf", small_synth(30));  // 6 val + 6 test scenes
    auto scenes = scenes_csv(root);
    for (const std::string split : {"val", "test"}) {
        auto matched = split_ids(root, split + "_matched"), swapped = split_ids(root, split + "_swapped"),
             context = split_ids(root, split + "_context");
        ASSERT_EQ(matched.size(), 6u);
        ASSERT_EQ(swapped.size(), 6u);
        ASSERT_EQ(context.size(), 6u);
        EXPECT_EQ(split_ids(root, split).size(), 18u);
        for (std::size_t i = 0; i < matched.size(); ++i) {
            SCOPED_TRACE(matched[i]);
            cv::Mat m = mask_of(root, "SegmentationClass", matched[i]);
            cv::Mat s = mask_of(root, "SegmentationClass", swapped[i]);
            cv::Mat c = mask_of(root, "SegmentationClass", context[i]);
            EXPECT_EQ(cv::countNonZero(m != s), 0) << "object mask differs between matched and swapped";
            EXPECT_EQ(cv::countNonZero(c), 0) << "context-only image still has object pixels";
            ASSERT_GT(cv::countNonZero(m), 0);
            // The object's pixels are the same, and context-only is matched minus the object.
            cv::Mat im = read_image_rgb(root / "JPEGImages" / (matched[i] + ".png")).rgb;
            cv::Mat is = read_image_rgb(root / "JPEGImages" / (swapped[i] + ".png")).rgb;
            cv::Mat ic = read_image_rgb(root / "JPEGImages" / (context[i] + ".png")).rgb;
            cv::Mat object = m > 0, diff;
            cv::absdiff(im, is, diff);
            cv::cvtColor(diff, diff, cv::COLOR_RGB2GRAY);
            EXPECT_EQ(cv::countNonZero(diff & object), 0);
            cv::absdiff(im, ic, diff);
            cv::cvtColor(diff, diff, cv::COLOR_RGB2GRAY);
            EXPECT_EQ(cv::countNonZero(diff & ~object), 0);
            // Contexts: own class when matched, another class when swapped, none under objects.
            std::set<int> labels = ids_in(m);
            labels.erase(0);
            ASSERT_EQ(labels.size(), 1u);
            const int cls = *labels.begin();
            std::set<int> own = ids_in(mask_of(root, "SegmentationContext", matched[i]));
            own.erase(0);
            EXPECT_EQ(own, std::set<int>{cls});
            cv::Mat sc = mask_of(root, "SegmentationContext", swapped[i]);
            std::set<int> other = ids_in(sc);
            other.erase(0);
            ASSERT_EQ(other.size(), 1u);
            EXPECT_NE(*other.begin(), cls);
            EXPECT_EQ(cv::countNonZero(sc & object), 0) << "context mask marks object pixels";
            EXPECT_EQ(scenes.at(swapped[i]).at(2), "swapped");
            EXPECT_EQ(scenes.at(swapped[i]).at(4), synth_context_names()[static_cast<std::size_t>(*other.begin())]);
        }
    }
}

TEST(Synth, TrainSpuriousRateIsCloseToP) {
    SynthOptions o = small_synth(300);
    o.size = 32;
    o.spurious = 0.8;
    fs::path root = make_synth("p", o);
    int own = 0, total = 0;
    for (const auto& id : split_ids(root, "train")) {
        std::set<int> labels = ids_in(mask_of(root, "SegmentationClass", id));
        std::set<int> contexts = ids_in(mask_of(root, "SegmentationContext", id));
        labels.erase(0);
        contexts.erase(0);
        ASSERT_EQ(labels.size(), 1u) << id;
        ASSERT_EQ(contexts.size(), 1u) << id;
        own += *labels.begin() == *contexts.begin();
        ++total;
    }
    ASSERT_EQ(total, 300);
    // Binomial(300, 0.8): sd 0.023; 0.07 is three sd.
    EXPECT_NEAR(double(own) / total, 0.8, 0.07);
    auto meta = nlohmann::json::parse(read_file(root / "dataset.json"));
    EXPECT_DOUBLE_EQ(meta["train_on_own_context"].get<double>(), double(own) / total);
}

TEST(Synth, SpuriousZeroAndOneAreExact) {
    for (double p : {0.0, 1.0}) {
        SynthOptions o = small_synth(25);
        o.spurious = p;
        o.multi = true;
        GenerationSummary s = generate_synth(test::scratch_dir("p" + std::to_string(p)), o);
        EXPECT_EQ(s.train_on_own_context, p);
    }
}

TEST(Synth, ContextCoversMostOfTheImageAndObjectsAreSizeable) {
    fs::path root = make_synth("cover", small_synth(40));
    for (const auto& id : split_ids(root, "train")) {
        cv::Mat object = mask_of(root, "SegmentationClass", id), context = mask_of(root, "SegmentationContext", id);
        double area = object.total();
        double object_share = cv::countNonZero(object) / area;
        EXPECT_GT(object_share, 0.03) << id;
        EXPECT_LT(object_share, 0.5) << id;
        // Context pixels plus the pixels the object hides: at least 60 % of the image.
        EXPECT_GE((cv::countNonZero(context) + cv::countNonZero(object)) / area, 0.6) << id;
    }
}

TEST(Synth, MasksMatchImagesAndLabelsAgreeWithMasks) {
    SynthOptions o = small_synth(20);
    o.multi = true;
    fs::path root = make_synth("agree", o);
    for (const std::string split : {"train", "val_matched", "val_swapped", "test_matched"}) {
        auto data = open_dataset(root, split);
        ASSERT_EQ(data->class_names(), synth_class_names());
        for (std::size_t i = 0; i < data->size(); ++i) {
            Sample s = data->get(i);
            ASSERT_EQ(s.image.size(), cv::Size(48, 48)) << s.id;
            ASSERT_EQ(s.mask.size(), s.image.size()) << s.id;
            std::set<int> present = ids_in(s.mask);
            present.erase(0);
            EXPECT_EQ(std::vector<int>(present.begin(), present.end()), s.labels) << s.id;
            EXPECT_GE(s.labels.size(), 1u);
        }
    }
    // Context-only twins: empty masks, the scene's labels kept for bookkeeping.
    auto matched = open_dataset(root, "val_matched"), context = open_dataset(root, "val_context");
    ASSERT_EQ(matched->size(), context->size());
    for (std::size_t i = 0; i < context->size(); ++i) {
        Sample c = context->get(i);
        EXPECT_EQ(cv::countNonZero(c.mask), 0) << c.id;
        EXPECT_EQ(c.labels, matched->get(i).labels) << c.id;
    }
}

TEST(Synth, MultiPlacesOneToThreeObjectsWithInstances) {
    SynthOptions o = small_synth(40);
    o.multi = true;
    o.instances = true;
    fs::path root = make_synth("multi", o);
    auto scenes = scenes_csv(root);
    std::map<std::size_t, int> counts;
    for (const std::string split : {"train", "val_swapped"})
        for (const auto& id : split_ids(root, split)) {
            SCOPED_TRACE(id);
            const auto& row = scenes.at(id);
            std::size_t objects = std::count(row[3].begin(), row[3].end(), ';') + 1;
            ASSERT_GE(objects, 1u);
            ASSERT_LE(objects, 3u);
            ++counts[objects];
            cv::Mat cls = mask_of(root, "SegmentationClass", id), inst = mask_of(root, "SegmentationObject", id);
            // Each instance id covers pixels of one class; ids run 1..objects.
            std::map<int, std::set<int>> classes_of;
            for (int y = 0; y < inst.rows; ++y)
                for (int x = 0; x < inst.cols; ++x) {
                    int k = inst.at<uint8_t>(y, x), c = cls.at<uint8_t>(y, x);
                    EXPECT_EQ(k == 0, c == 0);
                    if (k) classes_of[k].insert(c);
                }
            EXPECT_EQ(classes_of.size(), objects);
            for (const auto& [k, cs] : classes_of) {
                EXPECT_EQ(cs.size(), 1u);
                EXPECT_LE(k, static_cast<int>(objects));
            }
            if (split == "val_swapped") {  // no band shows the context of a class in the image
                std::set<int> contexts = ids_in(mask_of(root, "SegmentationContext", id));
                for (const auto& [k, cs] : classes_of) EXPECT_EQ(contexts.count(*cs.begin()), 0u);
            }
        }
    EXPECT_GT(counts[1], 0);
    EXPECT_GT(counts[2], 0);
    EXPECT_GT(counts[3], 0);
}

TEST(Synth, WritesTheLayoutFiles) {
    fs::path root = make_synth("layout", small_synth(10));
    EXPECT_EQ(lines_of(root / "classes.txt"), synth_class_names());
    EXPECT_EQ(lines_of(root / "contexts.txt"), synth_context_names());
    auto labels = lines_of(root / "labels.csv");
    ASSERT_EQ(labels.size(), 1u + 10 + 2 * 2 * 3);
    EXPECT_EQ(labels[0], "image,labels");
    EXPECT_EQ(labels[1].rfind("train_000000,", 0), 0u);
    for (const char* split : {"train", "val", "test", "val_matched", "val_swapped", "val_context", "test_matched",
                              "test_swapped", "test_context"})
        EXPECT_TRUE(fs::exists(root / "ImageSets/Segmentation" / (std::string(split) + ".txt"))) << split;
    EXPECT_EQ(split_ids(root, "test_context"),
              (std::vector<std::string>{"test_000000_context", "test_000001_context"}));
    EXPECT_FALSE(fs::exists(root / "SegmentationObject"));
    auto meta = nlohmann::json::parse(read_file(root / "dataset.json"));
    EXPECT_EQ(meta["parameters"]["n"], 10);
    EXPECT_EQ(meta["parameters"]["spurious"], 0.95);
    EXPECT_EQ(meta["splits"]["val_swapped"], 2);
}

TEST(Synth, RejectsBadOptions) {
    SynthOptions o = small_synth(10);
    o.spurious = 1.5;
    try {
        generate_synth(test::scratch_dir("bad"), o);
        FAIL() << "expected an error";
    } catch (const UsageError& e) {
        EXPECT_STREQ(e.what(), "--spurious must be a probability in [0, 1], got 1.5");
    }
    o = small_synth(10);
    o.size = 16;
    EXPECT_THROW(generate_synth(test::scratch_dir("bad"), o), UsageError);
}

// ---- Fashion-MNIST --------------------------------------------------------------------------

namespace {

const fs::path kFashion = "/usr/share/datasets/fashion-mnist";

bool fashion_installed() { return fs::exists(kFashion / "t10k-images-idx3-ubyte.gz"); }

}  // namespace

TEST(Fashion, CompositesHaveSilhouetteMasksAndAgreeingLabels) {
    ASSERT_TRUE(fashion_installed()) << "Debian's dataset-fashion-mnist is not installed (bash scripts/install-deps.sh)";
    FashionOptions o;
    o.n = 30;
    o.size = 64;
    o.instances = true;
    fs::path root = test::scratch_dir("fashion");
    GenerationSummary s = generate_fashion(root, o);
    EXPECT_EQ(s.images, 30u + 6 + 6);
    EXPECT_EQ(lines_of(root / "classes.txt").size(), 11u);
    std::map<std::size_t, int> counts;
    for (const std::string split : {"train", "val", "test"}) {
        auto data = open_dataset(root, split);
        for (std::size_t i = 0; i < data->size(); ++i) {
            Sample smp = data->get(i);
            SCOPED_TRACE(smp.id);
            ASSERT_EQ(smp.image.size(), cv::Size(64, 64));
            std::set<int> present = ids_in(smp.mask);
            present.erase(0);
            EXPECT_EQ(std::vector<int>(present.begin(), present.end()), smp.labels);
            ASSERT_GE(smp.labels.size(), 1u);
            EXPECT_LE(*present.rbegin(), 10);
            std::set<int> instances = ids_in(mask_of(root, "SegmentationObject", smp.id));
            instances.erase(0);
            ASSERT_GE(instances.size(), 1u);
            ASSERT_LE(instances.size(), 3u);
            ++counts[instances.size()];
            EXPECT_GT(cv::countNonZero(smp.mask), 40);
        }
    }
    EXPECT_GT(counts[1], 0);
    EXPECT_GT(counts[3], 0);
    // val and test items come from the t10k file, train items from the train file.
    for (const auto& line : lines_of(root / "items.csv"))
        if (line.rfind("val_", 0) == 0 || line.rfind("test_", 0) == 0) {
            EXPECT_EQ(line.find("train:"), std::string::npos) << line;
        } else if (line.rfind("train_", 0) == 0) {
            EXPECT_EQ(line.find("t10k:"), std::string::npos) << line;
        }
}

TEST(Fashion, SameSeedSameFiles) {
    ASSERT_TRUE(fashion_installed()) << "Debian's dataset-fashion-mnist is not installed (bash scripts/install-deps.sh)";
    FashionOptions o;
    o.n = 8;
    o.size = 48;
    fs::path a = test::scratch_dir("a"), b = test::scratch_dir("b"), c = test::scratch_dir("c");
    generate_fashion(a, o);
    o.threads = 1;
    generate_fashion(b, o);
    o.seed = 7;
    generate_fashion(c, o);
    EXPECT_EQ(all_files(a), all_files(b));
    EXPECT_NE(read_file(a / "JPEGImages/train_000000.png"), read_file(c / "JPEGImages/train_000000.png"));
}

TEST(Fashion, MissingSourceNamesTheFile) {
    FashionOptions o;
    o.source = test::scratch_dir("empty");
    try {
        generate_fashion(test::scratch_dir("out"), o);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  (o.source / "train-images-idx3-ubyte.gz").string() +
                      ": no such file (install Debian's dataset-fashion-mnist package)");
    }
}

// ---- IDX ----------------------------------------------------------------------------------

TEST(Idx, ReadsAPlainIdxFile) {
    fs::path dir = test::scratch_dir("idx");
    std::string bytes = {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6};
    write_file_atomic(dir / "a-idx2-ubyte", bytes);
    IdxArray a = read_idx(dir / "a-idx2-ubyte");
    EXPECT_EQ(a.shape, (std::vector<int>{2, 3}));
    EXPECT_EQ(a.data, (std::vector<uint8_t>{1, 2, 3, 4, 5, 6}));
}

TEST(Idx, ReadsTheDebianGzipFiles) {
    ASSERT_TRUE(fashion_installed()) << "Debian's dataset-fashion-mnist is not installed (bash scripts/install-deps.sh)";
    IdxArray labels = read_idx(kFashion / "t10k-labels-idx1-ubyte.gz");
    EXPECT_EQ(labels.shape, std::vector<int>{10000});
    // The t10k labels are balanced: 1000 per class.
    std::vector<int> count(10, 0);
    for (uint8_t l : labels.data) ++count.at(l);
    EXPECT_EQ(count, std::vector<int>(10, 1000));
}

TEST(Idx, TruncatedAndForeignFilesNameTheFile) {
    fs::path dir = test::scratch_dir("idx");
    write_file_atomic(dir / "short", std::string{0, 0, 8, 1, 0, 0, 0, 9, 1, 2});
    write_file_atomic(dir / "float", std::string{0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0});
    write_file_atomic(dir / "text", std::string("hello"));
    auto message = [](const fs::path& p) {
        try {
            read_idx(p);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_EQ(message(dir / "short"), (dir / "short").string() + ": IDX data holds 2 bytes, the header promises 9");
    EXPECT_EQ(message(dir / "float"),
              (dir / "float").string() + ": IDX element type 0x0d is not unsigned byte (0x08)");
    EXPECT_EQ(message(dir / "text"), (dir / "text").string() + ": not an IDX file (bad magic)");
    EXPECT_EQ(message(dir / "none"), (dir / "none").string() + ": no such IDX file");
}
