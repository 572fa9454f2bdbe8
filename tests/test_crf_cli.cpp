// `sightline crf` end to end: outputs, folder pairing, the label-map variant, and bad input
// (one error line naming the file, non-zero exit, nothing written).
#include <cmath>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "sightline/core.hpp"
#include "sightline/crf.hpp"
#include "sightline/palette.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

fs::path fixtures() { return test::fixtures() / "densecrf"; }

// A small two-colour image and matching soft maps (K x H x W) favouring the colour regions.
void write_small_case(const fs::path& image, const fs::path& probs, int width, int height, int k_count) {
    cv::Mat rgb(height, width, CV_8UC3);
    std::vector<float> p(size_t(k_count) * width * height);
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x) {
            const int region = x < width / 2 ? 0 : 1;
            rgb.at<cv::Vec3b>(y, x) = region ? cv::Vec3b(220, 40, 30) : cv::Vec3b(30, 60, 200);
            const int i = y * width + x;
            const bool noisy = (x * 7 + y * 3) % 11 == 0;
            for (int k = 0; k < k_count; ++k) p[size_t(k) * width * height + i] = 0.1f / (k_count - 1);
            p[size_t(noisy ? 1 - region : region) * width * height + i] = 0.9f;
        }
    write_image_rgb(image, rgb);
    write_npy_f32(probs, {k_count, height, width}, p.data());
}

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

// The error of a failed run: exit code 1, exactly one line on stderr, no output folder.
std::string failed_run(const std::string& args, const fs::path& out, int exit_code = 1) {
    test::CommandResult r = test::run_sightline("crf " + args + " --out " + quoted(out));
    EXPECT_EQ(r.exit_code, exit_code) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(out)) << "bad input must not leave output";
    return r.err;
}

}  // namespace

TEST(CrfCli, OneImageMatchesPydensecrf) {
    fs::path out = test::scratch_dir("out");
    test::CommandResult r = test::run_sightline(
        fmt::format("crf --image {} --probs {} --iterations 5 --gaussian 3,3 --bilateral 80,13,10 --out {}",
                    quoted(fixtures() / "images" / "chelsea_449x299.png"),
                    quoted(fixtures() / "probs" / "chelsea_449x299_K2.npy"), quoted(out)));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    NpyArray q = read_npy(out / "chelsea_449x299.q.npy");
    ASSERT_EQ(q.shape, (std::vector<int64_t>{2, 299, 449}));
    std::vector<float> got = q.to_float(), ref = read_npy(fixtures() / "ref" / "chelsea_449x299_K2" / "Q_it5.npy").to_float();
    double max_diff = 0;
    for (size_t i = 0; i < got.size(); ++i) max_diff = std::max(max_diff, double(std::abs(got[i] - ref[i])));
    EXPECT_LE(max_diff, 1e-4);
    cv::Mat labels = read_index_png(out / "chelsea_449x299.png");
    NpyArray labels_ref = read_npy(fixtures() / "ref" / "chelsea_449x299_K2" / "labels_it5.npy");
    int64_t same = 0;
    for (int64_t i = 0; i < 299 * 449; ++i) same += labels.data[i] == uint8_t(labels_ref.bytes[i]);
    EXPECT_GE(same, int64_t(0.999 * 299 * 449));
}

TEST(CrfCli, FolderPairsImagesWithMapsByStem) {
    fs::path dir = test::scratch_dir("folder"), out = dir / "out";
    fs::create_directories(dir / "images");
    fs::create_directories(dir / "probs");
    write_small_case(dir / "images" / "a.png", dir / "probs" / "a.npy", 24, 16, 2);
    write_small_case(dir / "images" / "b.png", dir / "probs" / "b.npy", 20, 12, 3);
    test::CommandResult r = test::run_sightline(fmt::format("crf --image {} --probs {} --iterations 3 --out {}",
                                                            quoted(dir / "images"), quoted(dir / "probs"), quoted(out)));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_npy(out / "a.q.npy").shape, (std::vector<int64_t>{2, 16, 24}));
    EXPECT_EQ(read_npy(out / "b.q.npy").shape, (std::vector<int64_t>{3, 12, 20}));
    // The CRF removed the isolated noisy pixels: labels follow the colour regions.
    cv::Mat labels = read_index_png(out / "a.png");
    for (int y = 0; y < 16; ++y)
        for (int x = 0; x < 24; ++x) EXPECT_EQ(labels.at<uint8_t>(y, x), x < 12 ? 0 : 1) << x << "," << y;
}

TEST(CrfCli, LabelMapWithConfidenceFillsUnknownPixels) {
    fs::path dir = test::scratch_dir("labels"), out = dir / "out";
    write_small_case(dir / "img.png", dir / "unused.npy", 24, 16, 2);
    cv::Mat seeds(16, 24, CV_8UC1, cv::Scalar(255));  // unknown except two confident blocks
    seeds(cv::Rect(0, 0, 6, 16)).setTo(0);
    seeds(cv::Rect(18, 0, 6, 16)).setTo(1);
    write_palette_png(dir / "img_seeds.png", seeds);
    test::CommandResult r = test::run_sightline(fmt::format("crf --image {} --labels {} --confidence 0.7 --out {}",
                                                            quoted(dir / "img.png"), quoted(dir / "img_seeds.png"),
                                                            quoted(out)));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_npy(out / "img.q.npy").shape, (std::vector<int64_t>{2, 16, 24}));
    cv::Mat labels = read_index_png(out / "img.png");
    for (int y = 0; y < 16; ++y)
        for (int x = 0; x < 24; ++x) EXPECT_EQ(labels.at<uint8_t>(y, x), x < 12 ? 0 : 1) << x << "," << y;
}

TEST(CrfCli, BadProbabilitiesAreOneLineNamingTheFile) {
    fs::path dir = test::scratch_dir("bad");
    write_small_case(dir / "img.png", dir / "good.npy", 24, 16, 2);
    const std::string image = "--image " + quoted(dir / "img.png");
    std::vector<float> p = read_npy(dir / "good.npy").to_float();

    write_npy_f32(dir / "small.npy", {2, 12, 24}, p.data());
    EXPECT_EQ(failed_run(image + " --probs " + quoted(dir / "small.npy"), dir / "o1"),
              fmt::format("sightline: error: {}: probabilities are 12 x 24 (H x W) but the image is 16 x 24\n",
                          (dir / "small.npy").string()));

    std::vector<float> bad = p;
    bad[5] = 0.3f;  // label 0 at pixel 5 no longer sums to 1 with label 1
    write_npy_f32(dir / "sum.npy", {2, 16, 24}, bad.data());
    EXPECT_NE(failed_run(image + " --probs " + quoted(dir / "sum.npy"), dir / "o2")
                  .find((dir / "sum.npy").string() + ": probabilities at row 0, col 5 sum to"),
              std::string::npos);

    bad = p;
    bad[16 * 24 + 30] = -0.5f;
    write_npy_f32(dir / "neg.npy", {2, 16, 24}, bad.data());
    EXPECT_EQ(failed_run(image + " --probs " + quoted(dir / "neg.npy"), dir / "o3"),
              fmt::format("sightline: error: {}: probability of label 1 at row 1, col 6 is -0.5, expected a value in 0..1\n",
                          (dir / "neg.npy").string()));

    bad = p;
    bad[40] = std::nanf("");
    write_npy_f32(dir / "nan.npy", {2, 16, 24}, bad.data());
    EXPECT_EQ(failed_run(image + " --probs " + quoted(dir / "nan.npy"), dir / "o4"),
              fmt::format("sightline: error: {}: probability of label 0 at row 1, col 16 is nan, expected a value in 0..1\n",
                          (dir / "nan.npy").string()));

    std::vector<float> ones(16 * 24, 1.f);
    write_npy_f32(dir / "k1.npy", {1, 16, 24}, ones.data());
    EXPECT_EQ(failed_run(image + " --probs " + quoted(dir / "k1.npy"), dir / "o5"),
              fmt::format("sightline: error: {}: expected 2..256 labels (K x H x W), got K = 1\n",
                          (dir / "k1.npy").string()));

    EXPECT_EQ(failed_run(image + " --probs " + quoted(dir / "missing.npy"), dir / "o6"),
              fmt::format("sightline: error: {}: no such file or folder (--probs)\n", (dir / "missing.npy").string()));
}

TEST(CrfCli, FolderWithAMissingMapWritesNothing) {
    fs::path dir = test::scratch_dir("missing");
    fs::create_directories(dir / "images");
    fs::create_directories(dir / "probs");
    write_small_case(dir / "images" / "a.png", dir / "probs" / "a.npy", 24, 16, 2);
    write_small_case(dir / "images" / "b.png", dir / "b_elsewhere.npy", 24, 16, 2);
    EXPECT_EQ(failed_run("--image " + quoted(dir / "images") + " --probs " + quoted(dir / "probs"), dir / "out"),
              fmt::format("sightline: error: {}: no such file (the --probs for {})\n", (dir / "probs" / "b.npy").string(),
                          (dir / "images" / "b.png").string()));
}

TEST(CrfCli, BadParametersAreUsageErrors) {
    fs::path dir = test::scratch_dir("usage");
    write_small_case(dir / "img.png", dir / "p.npy", 24, 16, 2);
    const std::string inputs = "--image " + quoted(dir / "img.png") + " --probs " + quoted(dir / "p.npy");
    EXPECT_EQ(failed_run(inputs + " --gaussian 3", dir / "o1", 2),
              "sightline: error: --gaussian: expected 2 comma-separated values, got 1\n");
    EXPECT_EQ(failed_run(inputs + " --gaussian 3,y", dir / "o3", 2), "sightline: error: --gaussian: 'y' is not a number\n");
    EXPECT_EQ(failed_run(inputs + " --bilateral 80,0,10", dir / "o2", 2),
              "sightline: error: --bilateral: SRGB must be > 0, got 0\n");
}
