// Segmentation evaluation: exact parity with the numpy reference, the fast counting loop
// against a plain loop, the counting rules, and the error messages for bad input.
#include <cmath>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "sightline/evaluate.hpp"
#include "sightline/palette.hpp"
#include "test_support.hpp"

using namespace sightline;
using nlohmann::json;

namespace {

fs::path fixture() { return test::test_data() / "evaluate"; }

json reference() { return json::parse(read_file(fixture() / "reference.json")); }

// The slow twin of ConfusionMatrix::accumulate: one pixel at a time.
std::vector<int64_t> naive_counts(const uint8_t* pred, const uint8_t* gt, std::size_t n, int k,
                                  int ignore, int64_t* ignored) {
    std::vector<int64_t> counts(static_cast<std::size_t>(k) * (k + 1), 0);
    for (std::size_t i = 0; i < n; ++i) {
        if (gt[i] == ignore) {
            ++*ignored;
            continue;
        }
        int col = pred[i] == ignore ? k : pred[i];
        counts[static_cast<std::size_t>(gt[i]) * (k + 1) + col]++;
    }
    return counts;
}

// Labels in runs (as real masks) with isolated changes, some ignore values.
std::vector<uint8_t> runs_of_labels(std::mt19937& rng, std::size_t n, int k, int ignore, double change) {
    std::vector<uint8_t> v(n);
    std::uniform_real_distribution<double> u(0, 1);
    std::uniform_int_distribution<int> label(0, k - 1);
    int cur = label(rng);
    for (std::size_t i = 0; i < n; ++i) {
        if (u(rng) < change) cur = (ignore >= 0 && u(rng) < 0.1) ? ignore : label(rng);
        v[i] = static_cast<uint8_t>(cur);
    }
    return v;
}

void expect_metric(double actual, const json& expected, const std::string& what) {
    if (expected.is_null()) {
        EXPECT_TRUE(std::isnan(actual)) << what << " = " << actual << ", expected NaN";
    } else {
        EXPECT_NEAR(actual, expected.get<double>(), 1e-12) << what;
    }
}

void expect_matches_reference(const Metrics& m, const json& ref) {
    expect_metric(m.miou, ref["miou"], "miou");
    expect_metric(m.fg_miou, ref["fg_miou"], "fg_miou");
    expect_metric(m.mean_dice, ref["mean_dice"], "mean_dice");
    expect_metric(m.pixel_accuracy, ref["pixel_accuracy"], "pixel_accuracy");
    expect_metric(m.mean_accuracy, ref["mean_accuracy"], "mean_accuracy");
    expect_metric(m.fw_iou, ref["fw_iou"], "fw_iou");
    EXPECT_EQ(m.pixels, ref["pixels"].get<int64_t>());
    EXPECT_EQ(m.ignored_pixels, ref["ignored_pixels"].get<int64_t>());
    ASSERT_EQ(m.per_class.size(), ref["per_class"].size());
    for (std::size_t i = 0; i < m.per_class.size(); ++i) {
        const ClassMetrics& c = m.per_class[i];
        const json& r = ref["per_class"][i];
        std::string at = "class " + std::to_string(i) + " ";
        EXPECT_EQ(c.name, r["name"].get<std::string>());
        EXPECT_EQ(c.tp, r["tp"].get<int64_t>()) << at;
        EXPECT_EQ(c.fp, r["fp"].get<int64_t>()) << at;
        EXPECT_EQ(c.fn, r["fn"].get<int64_t>()) << at;
        EXPECT_EQ(c.gt_pixels, r["gt_pixels"].get<int64_t>()) << at;
        EXPECT_EQ(c.pred_pixels, r["pred_pixels"].get<int64_t>()) << at;
        for (const char* key : {"iou", "dice", "accuracy", "precision", "fp_ratio", "fn_ratio"}) {
            double v = key == std::string("iou") ? c.iou
                     : key == std::string("dice") ? c.dice
                     : key == std::string("accuracy") ? c.accuracy
                     : key == std::string("precision") ? c.precision
                     : key == std::string("fp_ratio") ? c.fp_ratio : c.fn_ratio;
            expect_metric(v, r[key], at + key);
        }
    }
}

std::vector<std::string> fixture_names() { return reference()["names"].get<std::vector<std::string>>(); }

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

EvalOptions fixture_options() {
    EvalOptions o;
    o.pred = fixture() / "pred";
    o.gt = fixture() / "gt";
    o.classes = (fixture() / "classes.txt").string();
    o.threads = 2;
    return o;
}

// A copy of the fixture folders that a test may change.
std::pair<fs::path, fs::path> copy_fixture(const fs::path& dir) {
    fs::copy(fixture() / "pred", dir / "pred");
    fs::copy(fixture() / "gt", dir / "gt");
    return {dir / "pred", dir / "gt"};
}

}  // namespace

// ---- the confusion matrix ------------------------------------------------------------------

TEST(Confusion, SmallKnownAnswer) {
    // gt:   0 0 1 1 2 255      pred: 0 1 1 1 255 2
    const uint8_t gt[] = {0, 0, 1, 1, 2, 255};
    const uint8_t pred[] = {0, 1, 1, 1, 255, 2};
    ConfusionMatrix cm(3);
    cm.accumulate(pred, gt, 6);
    EXPECT_EQ(cm.counts(), (std::vector<int64_t>{1, 1, 0, 0,    //
                                                 0, 2, 0, 0,    //
                                                 0, 0, 0, 1}));  // class 2 predicted "ignore"
    EXPECT_EQ(cm.ignored_pixels(), 1);
    Metrics m = cm.metrics();
    EXPECT_EQ(m.pixels, 5);
    EXPECT_DOUBLE_EQ(m.per_class[0].iou, 1.0 / 2);  // tp 1, fn 1
    EXPECT_DOUBLE_EQ(m.per_class[1].iou, 2.0 / 3);  // tp 2, fp 1
    EXPECT_DOUBLE_EQ(m.per_class[2].iou, 0.0);      // tp 0, fn 1 (the prediction at GT 255 is free)
    EXPECT_EQ(m.per_class[2].fp, 0);
    EXPECT_DOUBLE_EQ(m.per_class[1].dice, 4.0 / 5);
    EXPECT_DOUBLE_EQ(m.per_class[1].fp_ratio, 1.0 / 3);
    EXPECT_DOUBLE_EQ(m.miou, (0.5 + 2.0 / 3) / 3);
    EXPECT_DOUBLE_EQ(m.fg_miou, (2.0 / 3) / 2);
    EXPECT_DOUBLE_EQ(m.pixel_accuracy, 3.0 / 5);
    EXPECT_DOUBLE_EQ(m.mean_accuracy, (0.5 + 1.0 + 0.0) / 3);
    EXPECT_DOUBLE_EQ(m.fw_iou, (2 * 0.5 + 2 * (2.0 / 3) + 1 * 0.0) / 5);
    EXPECT_EQ(m.per_class[0].name, "background");
    EXPECT_EQ(m.per_class[2].name, "class_2");
}

TEST(Confusion, AbsentClassIsNanAndLeftOutOfTheMeans) {
    const uint8_t gt[] = {0, 0, 2, 2};
    const uint8_t pred[] = {0, 2, 2, 2};
    ConfusionMatrix cm(4);
    cm.accumulate(pred, gt, 4);
    Metrics m = cm.metrics();
    EXPECT_TRUE(std::isnan(m.per_class[1].iou));
    EXPECT_TRUE(std::isnan(m.per_class[3].dice));
    EXPECT_TRUE(std::isnan(m.per_class[3].fp_ratio));
    EXPECT_DOUBLE_EQ(m.miou, (0.5 + 2.0 / 3) / 2);
    EXPECT_DOUBLE_EQ(m.fg_miou, 2.0 / 3);
    for (const ClassMetrics& c : m.per_class) {
        if (!std::isnan(c.iou)) {
            EXPECT_DOUBLE_EQ(c.iou + c.fp_ratio + c.fn_ratio, 1.0);
        }
    }
}

TEST(Confusion, FastLoopEqualsPlainLoop) {
    std::mt19937 rng(7);
    for (int k : {1, 2, 6, 21, 255}) {
        const int ignore = k == 255 ? -1 : 255;
        for (double change : {0.0, 0.01, 0.3, 1.0}) {
            for (std::size_t n : {0, 1, 7, 8, 9, 63, 64, 65, 1000, 4099}) {
                auto gt = runs_of_labels(rng, n + 3, k, ignore, change);
                auto pred = runs_of_labels(rng, n + 3, k, ignore, change);
                for (std::size_t offset : {0, 3}) {  // unaligned starts too
                    ConfusionMatrix cm(k, ignore);
                    cm.accumulate(pred.data() + offset, gt.data() + offset, n);
                    int64_t ignored = 0;
                    auto expected = naive_counts(pred.data() + offset, gt.data() + offset, n, k, ignore, &ignored);
                    ASSERT_EQ(cm.counts(), expected) << "k=" << k << " n=" << n << " change=" << change;
                    ASSERT_EQ(cm.ignored_pixels(), ignored);
                }
            }
        }
    }
}

TEST(Confusion, StridedMatEqualsContiguous) {
    std::mt19937 rng(3);
    auto big_gt = runs_of_labels(rng, 40 * 30, 5, 255, 0.05);
    auto big_pred = runs_of_labels(rng, 40 * 30, 5, 255, 0.05);
    cv::Mat gt(30, 40, CV_8UC1, big_gt.data()), pred(30, 40, CV_8UC1, big_pred.data());
    cv::Rect roi(5, 4, 23, 17);
    ConfusionMatrix a(5), b(5);
    a.accumulate(pred(roi), gt(roi));  // non-continuous views
    b.accumulate(pred(roi).clone(), gt(roi).clone());
    EXPECT_EQ(a.counts(), b.counts());
    EXPECT_EQ(a.ignored_pixels(), b.ignored_pixels());
}

TEST(Confusion, ThreadCountDoesNotChangeCountsAndPerPairAddsUp) {
    std::mt19937 rng(11);
    std::vector<std::vector<uint8_t>> gts, preds;
    std::vector<MaskPair> pairs;
    for (int i = 0; i < 9; ++i) {
        std::size_t n = 500 + 37 * i;
        gts.push_back(runs_of_labels(rng, n, 21, 255, 0.02));
        preds.push_back(runs_of_labels(rng, n, 21, 255, 0.02));
    }
    ConfusionMatrix serial(21);
    for (int i = 0; i < 9; ++i) {
        pairs.push_back({preds[i].data(), gts[i].data(), gts[i].size(), {}});
        serial.accumulate(preds[i].data(), gts[i].data(), gts[i].size());
    }
    for (int threads : {1, 2, 3, 16}) {
        std::vector<ConfusionMatrix> per_pair;
        ConfusionMatrix total = accumulate_pairs(pairs, 21, 255, threads, &per_pair);
        EXPECT_EQ(total.counts(), serial.counts()) << threads;
        ConfusionMatrix summed(21);
        for (const auto& m : per_pair) summed.merge(m);
        EXPECT_EQ(summed.counts(), serial.counts());
    }
}

TEST(Confusion, BadLabelNamesTheFileAndLeavesTheMatrixUnchanged) {
    ConfusionMatrix cm(21);
    const uint8_t ok[] = {0, 1, 2, 3};
    cm.accumulate(ok, ok, 4);
    const std::vector<int64_t> before = cm.counts();
    const uint8_t gt[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 40};
    const uint8_t pred[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    MaskNames names{"pred/a.png", "gt/a.png"};
    EXPECT_EQ(error_of([&] { cm.accumulate(pred, gt, 10, names); }),
              "gt/a.png: label 40 at pixel 9 is not a class (0..20) nor the ignore value 255");
    EXPECT_EQ(error_of([&] { cm.accumulate(gt, pred, 10, names); }),
              "pred/a.png: label 40 at pixel 9 is not a class (0..20) nor the ignore value 255");
    EXPECT_EQ(cm.counts(), before);
    cv::Mat g(2, 5, CV_8UC1, const_cast<uint8_t*>(gt));
    cv::Mat p(2, 5, CV_8UC1, const_cast<uint8_t*>(pred));
    EXPECT_EQ(error_of([&] { cm.accumulate(p, g, names); }),
              "gt/a.png: label 40 at x=4 y=1 is not a class (0..20) nor the ignore value 255");
    // Long buffers (the 16-pixel vector blocks): the value K itself, a run of bad labels,
    // and a bad label among varied ones are all caught.
    for (int bad : {21, 22, 200, 254}) {
        for (bool run : {false, true}) {
            std::vector<uint8_t> g(40), q(40);
            for (int i = 0; i < 40; ++i) g[i] = q[i] = run ? 5 : static_cast<uint8_t>(i % 21);
            if (run) std::fill(g.begin() + 16, g.begin() + 32, static_cast<uint8_t>(bad));
            else g[20] = static_cast<uint8_t>(bad);
            EXPECT_EQ(error_of([&] { cm.accumulate(q.data(), g.data(), 40, names); }),
                      fmt::format("gt/a.png: label {} at pixel {} is not a class (0..20) nor the "
                                  "ignore value 255", bad, run ? 16 : 20));
            EXPECT_EQ(error_of([&] { cm.accumulate(g.data(), q.data(), 40, names); }),
                      fmt::format("pred/a.png: label {} at pixel {} is not a class (0..20) nor the "
                                  "ignore value 255", bad, run ? 16 : 20));
        }
    }
    EXPECT_EQ(cm.counts(), before);
    // With ignore = K + 1 the value K is still bad and K + 1 is ignored.
    ConfusionMatrix near(21, 22);
    std::vector<uint8_t> vg(32, 22), vq(32, 3);
    near.accumulate(vq.data(), vg.data(), 32);
    EXPECT_EQ(near.ignored_pixels(), 32);
    vg[17] = 21;
    EXPECT_NE(error_of([&] { near.accumulate(vq.data(), vg.data(), 32); }).find("label 21 at pixel 17"),
              std::string::npos);
    // Without an ignore value, 255 is just another bad label.
    ConfusionMatrix strict(3, -1);
    const uint8_t with_void[] = {0, 255};
    EXPECT_EQ(error_of([&] { strict.accumulate(ok, with_void, 2, names); }),
              "gt/a.png: label 255 at pixel 1 is not a class (0..2; no ignore value)");
}

TEST(Confusion, SizeMismatchNamesBothFiles) {
    ConfusionMatrix cm(3);
    cv::Mat a(4, 5, CV_8UC1, cv::Scalar(0)), b(5, 4, CV_8UC1, cv::Scalar(0));
    EXPECT_EQ(error_of([&] { cm.accumulate(a, b, {"p/x.png", "g/x.png"}); }),
              "p/x.png: prediction is 5x4 (width x height) but the ground truth g/x.png is 4x5");
}

TEST(Confusion, InvalidConstructionAndMerge) {
    EXPECT_THROW(ConfusionMatrix(0), UsageError);
    EXPECT_EQ(error_of([] { ConfusionMatrix(0); }), "the class count must be 1..255 (8-bit masks), got 0");
    EXPECT_EQ(error_of([] { ConfusionMatrix(256); }), "the class count must be 1..255 (8-bit masks), got 256");
    // The ignore value may not be a class.
    EXPECT_EQ(error_of([] { ConfusionMatrix(21, 3); }),
              "the ignore value must be 21..255 (not a class id) or -1 for none, got 3");
    EXPECT_EQ(error_of([] { ConfusionMatrix(3, 256); }),
              "the ignore value must be 3..255 (not a class id) or -1 for none, got 256");
    EXPECT_EQ(error_of([] { ConfusionMatrix(3, -1); }), "(no error)");
    ConfusionMatrix a(3), b(4), c(3, -1);
    // The default ignore value is VOC's 255.
    EXPECT_EQ(error_of([&] { a.merge(b); }), "cannot merge confusion matrices of 3 and 4 classes (ignore 255 and 255)");
    EXPECT_EQ(error_of([&] { a.merge(c); }), "cannot merge confusion matrices of 3 and 3 classes (ignore 255 and -1)");
}

// ---- parity with the numpy reference -------------------------------------------------------

TEST(EvaluateParity, ConfusionAndMetricsEqualNumpy) {
    const json ref = reference();
    const int k = ref["num_classes"];
    ConfusionMatrix cm(k, ref["ignore"]);
    for (const auto& id : ref["ids"]) {
        std::string stem = id;
        cv::Mat gt = read_index_png(fixture() / "gt" / (stem + ".png"));
        cv::Mat pred = read_index_png(fixture() / "pred" / (stem + ".png"));
        cm.accumulate(pred, gt);
    }
    std::vector<int64_t> expected;
    for (const auto& row : ref["confusion"])
        for (const auto& v : row) expected.push_back(v.get<int64_t>());
    EXPECT_EQ(cm.counts(), expected);
    expect_matches_reference(cm.metrics(fixture_names()), ref["metrics"]);
}

TEST(EvaluateParity, FoldersOfMasksPerImageEqualNumpy) {
    EvalOptions o = fixture_options();
    o.per_image = true;
    EvalResult r = evaluate_masks(o);
    const json ref = reference();
    EXPECT_EQ(r.ids, ref["ids"].get<std::vector<std::string>>());
    EXPECT_EQ(r.class_names, fixture_names());
    expect_matches_reference(r.metrics, ref["metrics"]);
    ASSERT_EQ(r.per_image.size(), ref["per_image"].size());
    for (std::size_t i = 0; i < r.per_image.size(); ++i) {
        const json& im = ref["per_image"][i];
        EXPECT_EQ(r.per_image[i].id, im["id"].get<std::string>());
        expect_metric(r.per_image[i].metrics.miou, im["miou"], "per-image miou");
        expect_metric(r.per_image[i].metrics.fg_miou, im["fg_miou"], "per-image fg_miou");
        expect_metric(r.per_image[i].metrics.pixel_accuracy, im["pixel_accuracy"], "per-image acc");
    }
}

TEST(EvaluateParity, VocRootAndSplit) {
    fs::path root = test::scratch_dir("voc");
    fs::create_directories(root / "ImageSets" / "Segmentation");
    fs::copy(fixture() / "gt", root / "SegmentationClass");
    fs::copy(fixture() / "classes.txt", root / "classes.txt");
    std::ofstream(root / "ImageSets" / "Segmentation" / "val.txt") << "img_b\nimg_d\r\n\n";
    EvalOptions o;
    o.pred = fixture() / "pred";
    o.gt = root;
    o.split = "val";
    EvalResult r = evaluate_masks(o);  // classes from <root>/classes.txt
    EXPECT_EQ(r.ids, (std::vector<std::string>{"img_b", "img_d"}));
    ConfusionMatrix expected(6);
    for (const char* id : {"img_b", "img_d"})
        expected.accumulate(read_index_png(fixture() / "pred" / (std::string(id) + ".png")),
                            read_index_png(fixture() / "gt" / (std::string(id) + ".png")));
    EXPECT_EQ(r.confusion.counts(), expected.counts());
    EXPECT_EQ(r.class_names[3], "boat");

    std::ofstream(root / "ImageSets" / "Segmentation" / "bad.txt") << "img_b\nnope\n";
    o.split = "bad";
    EXPECT_EQ(error_of([&] { evaluate_masks(o); }),
              (root / "SegmentationClass").string() +
                  ": no ground-truth mask for 1 of the 2 images of split bad: nope");
}

// ---- class names ---------------------------------------------------------------------------

TEST(EvaluateClasses, CountFileAndVocDefault) {
    EXPECT_EQ(resolve_class_names("3", "", ""), (std::vector<std::string>{"background", "class_1", "class_2"}));
    EXPECT_EQ(resolve_class_names((fixture() / "classes.txt").string(), "", "")[5], "tree");
    fs::path voc = test::scratch_dir("voc");
    EXPECT_EQ(resolve_class_names("", voc, "val").size(), 21u);
    EXPECT_EQ(resolve_class_names("", voc, "val")[15], "person");
    EXPECT_THROW(resolve_class_names("", voc, ""), UsageError);
    EXPECT_THROW(resolve_class_names("0", "", ""), UsageError);
    EXPECT_THROW(resolve_class_names("300", "", ""), UsageError);
    EXPECT_THROW(resolve_class_names("no_such_classes.txt", "", ""), UsageError);
}

// ---- bad input: one line naming the file ---------------------------------------------------

TEST(EvaluateErrors, MissingPredictionsAreListed) {
    fs::path dir = test::scratch_dir("miss");
    auto [pred, gt] = copy_fixture(dir);
    fs::remove(pred / "img_b.png");
    fs::remove(pred / "img_d.png");
    EvalOptions o = fixture_options();
    o.pred = pred;
    o.gt = gt;
    EXPECT_EQ(error_of([&] { evaluate_masks(o); }),
              pred.string() + ": no prediction for 2 of 5 ground-truth masks: img_b, img_d "
                              "(--allow-missing skips them)");
    o.allow_missing = true;
    EvalResult r = evaluate_masks(o);
    EXPECT_EQ(r.ids, (std::vector<std::string>{"img_a", "img_c", "img_e"}));
    EXPECT_EQ(r.skipped, (std::vector<std::string>{"img_b", "img_d"}));
}

TEST(EvaluateErrors, EmptyFolders) {
    fs::path dir = test::scratch_dir("empty");
    fs::create_directories(dir / "none");
    EvalOptions o = fixture_options();
    o.gt = dir / "none";
    EXPECT_EQ(error_of([&] { evaluate_masks(o); }),
              (dir / "none").string() + ": folder holds no PNG ground-truth masks");
    o = fixture_options();
    o.pred = dir / "none";
    EXPECT_EQ(error_of([&] { evaluate_masks(o); }),
              (dir / "none").string() + ": folder holds no PNG predicted masks");
    o.pred = dir / "absent";
    EXPECT_EQ(error_of([&] { evaluate_masks(o); }), (dir / "absent").string() + ": no such prediction folder");
}

TEST(EvaluateErrors, SizeMismatchLabelAndUnreadablePng) {
    fs::path dir = test::scratch_dir("bad");
    auto [pred, gt] = copy_fixture(dir);
    EvalOptions o = fixture_options();
    o.pred = pred;
    o.gt = gt;

    write_palette_png(pred / "img_c.png", cv::Mat(37, 49, CV_8UC1, cv::Scalar(0)));
    EXPECT_EQ(error_of([&] { evaluate_masks(o); }),
              (pred / "img_c.png").string() + ": prediction is 49x37 (width x height) but the ground truth " +
                  (gt / "img_c.png").string() + " is 50x37");

    cv::Mat bad(37, 50, CV_8UC1, cv::Scalar(1));
    bad.at<uint8_t>(3, 7) = 6;  // 6 classes: 0..5
    write_palette_png(pred / "img_c.png", bad);
    EXPECT_EQ(error_of([&] { evaluate_masks(o); }),
              (pred / "img_c.png").string() +
                  ": label 6 at x=7 y=3 is not a class (0..5) nor the ignore value 255");

    // Two bad files: the first in order is reported whatever the thread count.
    write_file_atomic(pred / "img_b.png", std::string("\x89PNG\r\n\x1a\ngarbage"));
    for (int threads : {1, 2, 4})
        EXPECT_EQ(error_of([&] { o.threads = threads; evaluate_masks(o); }),
                  (pred / "img_b.png").string() + ": corrupt PNG (file is truncated)");

    o.ignore = 3;
    EXPECT_THROW(evaluate_masks(o), UsageError);
}

// ---- outputs -------------------------------------------------------------------------------

TEST(EvaluateOutputs, JsonCsvAndHeatmap) {
    EvalOptions o = fixture_options();
    o.per_image = true;
    EvalResult r = evaluate_masks(o);
    fs::path out = test::scratch_dir("out") / "report";
    write_eval_outputs(out, r);

    json doc = json::parse(read_file(out / "metrics.json"));
    const json ref = reference();
    EXPECT_NEAR(doc["miou"].get<double>(), ref["metrics"]["miou"].get<double>(), 1e-12);
    EXPECT_NEAR(doc["fg_miou"].get<double>(), ref["metrics"]["fg_miou"].get<double>(), 1e-12);
    EXPECT_NEAR(doc["pixel_accuracy"].get<double>(), ref["metrics"]["pixel_accuracy"].get<double>(), 1e-12);
    ASSERT_EQ(doc["per_class"].size(), 6u);
    EXPECT_EQ(doc["per_class"][5]["name"], "tree");
    EXPECT_TRUE(doc["per_class"][5]["iou"].is_null());  // absent from GT and prediction
    EXPECT_EQ(doc["per_class"][4]["iou"].get<double>(), 0.0);
    for (int i = 0; i < 6; ++i)
        for (const char* key : {"tp", "fp", "fn"})
            EXPECT_EQ(doc["per_class"][i][key], ref["metrics"]["per_class"][i][key]) << i << key;
    EXPECT_EQ(doc["per_image"].size(), 5u);

    // confusion.csv holds the reference matrix, row by row.
    std::ifstream conf(out / "confusion.csv");
    std::string line;
    std::getline(conf, line);
    EXPECT_EQ(line, "gt\\pred,background,cat,dog,boat,water,tree,ignore");
    for (int i = 0; i < 6; ++i) {
        std::getline(conf, line);
        std::string expected = ref["names"][i].get<std::string>();
        for (const auto& v : ref["confusion"][i]) expected += "," + std::to_string(v.get<int64_t>());
        EXPECT_EQ(line, expected);
    }
    std::string csv = read_file(out / "metrics.csv");
    EXPECT_EQ(csv.substr(0, csv.find('\n')),
              "id,name,iou,dice,accuracy,precision,fp_ratio,fn_ratio,tp,fp,fn,gt_pixels,pred_pixels");
    EXPECT_NE(csv.find("\n5,tree,nan,nan,nan,nan,nan,nan,0,0,0,0,0\n"), std::string::npos) << csv;
    EXPECT_TRUE(fs::exists(out / "per_image.csv"));

    cv::Mat png = cv::imread((out / "confusion.png").string(), cv::IMREAD_COLOR);
    ASSERT_FALSE(png.empty());
    cv::Mat heat = render_confusion_heatmap(r.confusion, r.class_names);
    EXPECT_EQ(png.size(), heat.size());
    EXPECT_GT(heat.cols, 6 * 40);  // labels take room beside the grid
}

namespace {

// The first column of the heat-map grid at row y (3 px below a cell's top edge, where no
// label text reaches), and the number of grid cells in that row.
std::pair<int, int> grid_row(const cv::Mat& a, int y, int cell) {
    int x0 = 0;
    while (x0 < a.cols && a.at<cv::Vec3b>(y, x0) == cv::Vec3b(255, 255, 255)) ++x0;
    int x1 = x0;
    while (x1 < a.cols && a.at<cv::Vec3b>(y, x1) != cv::Vec3b(255, 255, 255)) ++x1;
    return {x0, (x1 - x0) / cell};
}

}  // namespace

TEST(EvaluateOutputs, HeatmapCellsFollowRowShares) {
    // Class 0 all correct, class 1 all predicted as 0, class 2 absent from the GT.
    const uint8_t gt[] = {0, 0, 1, 1};
    const uint8_t pred[] = {0, 0, 0, 0};
    ConfusionMatrix cm(3);
    cm.accumulate(pred, gt, 4);
    cv::Mat a = render_confusion_heatmap(cm, {"background", "thing", "other"});
    const int cell = 40, y0 = a.rows - 8 - 3 * cell;  // the grid ends 8 px above the bottom
    auto [x0, cells] = grid_row(a, y0 + 3, cell);
    EXPECT_EQ(cells, 3);  // no "(ignore)" column: nothing was predicted as ignore
    auto at = [&](int i, int j) { return a.at<cv::Vec3b>(y0 + i * cell + 3, x0 + j * cell + 3); };
    EXPECT_EQ(at(0, 0), at(1, 0));  // 100 %
    EXPECT_EQ(at(0, 1), at(1, 1));  // 0 %
    EXPECT_NE(at(0, 0), at(0, 1));
    EXPECT_GT(at(0, 0)[1], at(0, 1)[1]);  // viridis: 100 % is yellow-green, 0 % dark purple
    EXPECT_EQ(at(2, 0), cv::Vec3b(200, 200, 200));  // grey row: absent from the GT

    // A prediction of the ignore value adds a last column, so rows still add up to 100 %.
    const uint8_t pred2[] = {0, 255, 0, 0};
    ConfusionMatrix cm2(3);
    cm2.accumulate(pred2, gt, 4);
    cv::Mat b = render_confusion_heatmap(cm2, {"background", "thing", "other"});
    const int y1 = b.rows - 8 - 3 * cell;
    EXPECT_EQ(grid_row(b, y1 + 3, cell).second, 4);
    EXPECT_THROW(render_confusion_heatmap(cm2, {"too", "few"}), Error);
}

TEST(EvaluateOutputs, TableListsEveryClassAndTheMeans) {
    EvalResult r = evaluate_masks(fixture_options());
    std::string table = format_metrics_table(r.metrics);
    for (const char* name : {"background", "cat", "dog", "boat", "water", "tree"})
        EXPECT_NE(table.find(name), std::string::npos) << name;
    EXPECT_NE(table.find("mIoU"), std::string::npos);
    EXPECT_NE(table.find(fmt::format("{:.2f}", 100 * reference()["metrics"]["miou"].get<double>())),
              std::string::npos) << table;
    EXPECT_NE(table.find("mean over 5 of 6 classes"), std::string::npos) << table;
}

// ---- the command line ----------------------------------------------------------------------

TEST(EvalCli, WritesReportAndPrintsTable) {
    ASSERT_TRUE(fs::exists(SIGHTLINE_BINARY)) << "sightline binary not built";
    fs::path out = test::scratch_dir("cli-out") / "r";
    auto res = test::run_sightline("eval --pred " + (fixture() / "pred").string() + " --gt " +
                                   (fixture() / "gt").string() + " --classes " +
                                   (fixture() / "classes.txt").string() + " --out " + out.string());
    ASSERT_EQ(res.exit_code, 0) << res.err;
    EXPECT_EQ(res.err, "");
    EXPECT_NE(res.out.find("boat"), std::string::npos);
    json doc = json::parse(read_file(out / "metrics.json"));
    EXPECT_NEAR(doc["miou"].get<double>(), reference()["metrics"]["miou"].get<double>(), 1e-12);
    for (const char* f : {"metrics.csv", "confusion.csv", "confusion.png"}) EXPECT_TRUE(fs::exists(out / f)) << f;
}

TEST(EvalCli, BadInputIsOneLineAndWritesNothing) {
    ASSERT_TRUE(fs::exists(SIGHTLINE_BINARY)) << "sightline binary not built";
    fs::path dir = test::scratch_dir("cli-bad");
    auto [pred, gt] = copy_fixture(dir);
    cv::Mat bad(40, 40, CV_8UC1, cv::Scalar(0));
    bad.at<uint8_t>(0, 0) = 9;
    write_palette_png(pred / "img_e.png", bad);
    auto res = test::run_sightline("eval --pred " + pred.string() + " --gt " + gt.string() +
                                   " --classes 6 --out " + (dir / "out").string());
    EXPECT_EQ(res.exit_code, 1);
    EXPECT_EQ(res.err, "sightline: error: " + (pred / "img_e.png").string() +
                           ": label 9 at x=0 y=0 is not a class (0..5) nor the ignore value 255\n");
    EXPECT_EQ(res.out, "");
    EXPECT_FALSE(fs::exists(dir / "out"));

    res = test::run_sightline("eval --pred " + pred.string() + " --gt " + gt.string());
    EXPECT_EQ(res.exit_code, 2);  // no --classes and no classes.txt: usage error
    EXPECT_NE(res.err.find("--classes is required"), std::string::npos) << res.err;
}
