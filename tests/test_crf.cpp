// Dense CRF: parity with pydensecrf's outputs (tests/fixtures/densecrf, and the larger peer cases
// when SIGHTLINE_PEER_FIXTURES is set), unaries, exact properties of the inference, determinism
// across thread counts, and input checks.
#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "sightline/core.hpp"
#include "sightline/crf.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

struct Loaded {
    cv::Mat image;
    ProbabilityMaps maps;
};

Loaded load_case(const fs::path& image, const fs::path& probs) {
    Loaded l;
    l.image = read_image_rgb(image).rgb;
    l.maps = read_probabilities(probs, l.image.rows, l.image.cols);
    return l;
}

// The vendored case: chelsea, 449 x 299, two labels.
Loaded chelsea_k2() {
    fs::path dir = test::fixtures() / "densecrf";
    return load_case(dir / "images" / "chelsea_449x299.png", dir / "probs" / "chelsea_449x299_K2.npy");
}

// 21 labels on the chelsea photograph, cropped to width x height: the vendored foreground
// probability split among 20 object labels by vertical bands that blend into each other
// (a K=21 case like VOC's without the 11 MB peer file).
Loaded chelsea_k21(int width, int height) {
    Loaded two = chelsea_k2();
    const int w0 = two.image.cols, n0 = two.image.rows * w0, n = width * height, k_count = 21;
    Loaded l;
    l.image = two.image(cv::Rect(0, 0, width, height)).clone();
    l.maps.num_labels = k_count;
    l.maps.probs.assign(size_t(k_count) * n, 0.f);
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x) {
            const int i = y * width + x, i0 = y * w0 + x;
            const float background = two.maps.probs[size_t(i0)], object = two.maps.probs[size_t(n0) + i0];
            float weights[20], sum = 0;
            for (int k = 0; k < 20; ++k) {
                const float centre = (k + 0.5f) * width / 20.f, d = (x - centre) / (width / 20.f);
                sum += weights[k] = std::exp(-d * d);
            }
            l.maps.probs[size_t(i)] = background;
            for (int k = 0; k < 20; ++k) l.maps.probs[size_t(k + 1) * n + i] = object * weights[k] / sum;
        }
    return l;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    double m = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, double(std::abs(a[i] - b[i])));
    return m;
}

std::string expect_error(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected sightline::Error";
    return "";
}

// The acceptance rule: Q within 1e-4 and >= 99.9 % identical labels after 5 and 10 iterations.
void expect_parity(const std::string& id, const Loaded& l, const fs::path& ref) {
    const int k = l.maps.num_labels, h = l.image.rows, w = l.image.cols;
    DenseCrfOptions options;
    options.threads = 2;
    DenseCrf crf(options);
    crf.set_image(l.image);
    std::vector<float> unary = unary_from_probabilities(l.maps.probs);
    for (int iterations : {5, 10}) {
        SCOPED_TRACE(iterations);
        std::vector<float> q = crf.infer(unary, k, iterations);
        NpyArray q_ref = read_npy(ref / fmt::format("Q_it{}.npy", iterations));
        ASSERT_EQ(q_ref.shape, (std::vector<int64_t>{k, h, w}));
        const double diff = max_abs_diff(q, q_ref.to_float());
        EXPECT_LE(diff, 1e-4);
        NpyArray labels_ref = read_npy(ref / fmt::format("labels_it{}.npy", iterations));
        ASSERT_EQ(labels_ref.dtype, "u1");
        cv::Mat labels = labels_from_q(q.data(), k, h, w);
        int64_t same = 0;
        for (int64_t i = 0; i < int64_t(h) * w; ++i) same += labels.data[i] == uint8_t(labels_ref.bytes[i]);
        const double agreement = double(same) / (double(h) * w);
        EXPECT_GE(agreement, 0.999);
        std::printf("[ parity ] %s it%d: max|dQ| = %.3g, labels agree on %.5f %%\n", id.c_str(), iterations, diff,
                    100 * agreement);
    }
}

// A case of the full peer set: image, maps and references under SIGHTLINE_PEER_FIXTURES.
#define SIGHTLINE_PEER_CRF_CASE(id, image)                                                        \
    SIGHTLINE_NEED_FIXTURE(ref, fs::path("densecrf") / "ref" / id);                              \
    const fs::path root = ref.parent_path().parent_path();                                       \
    expect_parity(id, load_case(root / "images" / (std::string(image) + ".png"), root / "probs" / (std::string(id) + ".npy")), ref)

}  // namespace

TEST(DenseCrfParity, ChelseaTwoLabelsMatchesPydensecrf) {
    expect_parity("chelsea_449x299_K2", chelsea_k2(), test::fixtures() / "densecrf" / "ref" / "chelsea_449x299_K2");
}

TEST(DenseCrfParity, PeerAstronautTwoLabelsMatchesPydensecrf) {
    SIGHTLINE_PEER_CRF_CASE("astronaut_500x375_K2", "astronaut_500x375");
}

TEST(DenseCrfParity, PeerChelsea21LabelsMatchesPydensecrf) {
    SIGHTLINE_PEER_CRF_CASE("chelsea_449x299_K21", "chelsea_449x299");
}

TEST(DenseCrf, ZeroIterationsIsSoftmaxOfMinusUnary) {
    Loaded l = chelsea_k21(449, 299);
    const int k = l.maps.num_labels, n = l.image.rows * l.image.cols;
    DenseCrf crf;
    crf.set_image(l.image);
    std::vector<float> unary = unary_from_probabilities(l.maps.probs);
    std::vector<float> q = crf.infer(unary, k, 0);
    double max_diff = 0;
    for (int i = 0; i < n; ++i) {
        double sum = 0;
        for (int c = 0; c < k; ++c) sum += std::exp(-double(unary[size_t(c) * n + i]));
        for (int c = 0; c < k; ++c)
            max_diff = std::max(max_diff, std::abs(q[size_t(c) * n + i] - std::exp(-double(unary[size_t(c) * n + i])) / sum));
    }
    EXPECT_LT(max_diff, 5e-7);  // float32: a few ulps of 1 (exp has 2 ulp error)
}

// The lattice build and every iteration run on a thread pool; the results must not depend
// on how the work was split.
TEST(DenseCrf, OneTwoAndThreeThreadsGiveBitwiseIdenticalQ) {
    Loaded l = chelsea_k21(449, 299);
    std::vector<float> unary = unary_from_probabilities(l.maps.probs);
    std::vector<std::vector<float>> results;
    for (int threads : {1, 2, 3}) {
        DenseCrfOptions options;
        options.threads = threads;
        DenseCrf crf(options);
        crf.set_image(l.image);
        results.push_back(crf.infer(unary, l.maps.num_labels, 5));
    }
    ASSERT_EQ(results[0].size(), results[1].size());
    EXPECT_EQ(0, std::memcmp(results[0].data(), results[1].data(), results[0].size() * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(results[0].data(), results[2].data(), results[0].size() * sizeof(float)));
}

// Buffers are reused across images of other sizes and across calls: no stale state.
TEST(DenseCrf, ReusedObjectGivesTheSameResultsAsAFreshOne) {
    Loaded a = chelsea_k2(), b = chelsea_k21(300, 200);
    std::vector<float> ua = unary_from_probabilities(a.maps.probs), ub = unary_from_probabilities(b.maps.probs);
    DenseCrf reused;
    reused.set_image(a.image);
    std::vector<float> first = reused.infer(ua, 2, 3);
    reused.set_image(b.image);
    std::vector<float> other = reused.infer(ub, 21, 3);
    reused.set_image(a.image);
    std::vector<float> again = reused.infer(ua, 2, 3);
    DenseCrf fresh;
    fresh.set_image(b.image);
    EXPECT_EQ(first, again);
    EXPECT_EQ(other, fresh.infer(ub, 21, 3));
}

TEST(DenseCrf, SingleLabelGivesCertainty) {
    cv::Mat image(9, 12, CV_8UC3, cv::Scalar(10, 200, 30));
    DenseCrf crf;
    crf.set_image(image);
    std::vector<float> q = crf.infer(std::vector<float>(9 * 12, 3.f), 1);
    for (float v : q) EXPECT_EQ(v, 1.f);
}

// A confident unary (-log 1e-5 against 0) is not overturned by weak smoothing, while the
// default smoothing does remove isolated noisy pixels.
TEST(DenseCrf, WeakSmoothingKeepsConfidentPixelsDefaultRemovesSpeckles) {
    const int w = 40, h = 30, n = w * h;
    cv::Mat image(h, w, CV_8UC3, cv::Scalar(120, 120, 120));
    std::vector<float> probs(size_t(2) * n);
    for (int i = 0; i < n; ++i) {
        const bool speckle = (i % 97) == 5;
        probs[i] = speckle ? 0.f : 1.f;
        probs[n + i] = 1.f - probs[i];
    }
    std::vector<float> unary = unary_from_probabilities(probs);
    DenseCrfOptions weak;
    weak.gaussian_compat = weak.bilateral_compat = 0.01f;
    DenseCrf weak_crf(weak), default_crf;
    weak_crf.set_image(image);
    default_crf.set_image(image);
    std::vector<float> qw = weak_crf.infer(unary, 2), qd = default_crf.infer(unary, 2);
    cv::Mat lw = labels_from_q(qw.data(), 2, h, w), ld = labels_from_q(qd.data(), 2, h, w);
    int speckles = 0;
    for (int i = 0; i < n; ++i) {
        const uint8_t given = probs[i] > 0.5f ? 0 : 1;
        EXPECT_EQ(lw.data[i], given) << "pixel " << i;
        speckles += given == 1;
        EXPECT_EQ(ld.data[i], 0) << "pixel " << i;
    }
    EXPECT_GT(speckles, 10);
}

TEST(Unary, FromProbabilitiesIsMinusLogClippedAt1e5) {
    std::vector<float> u = unary_from_probabilities({0.f, 1e-7f, 0.5f, 1.f, 1.5f});
    EXPECT_FLOAT_EQ(u[0], 11.512925f);
    EXPECT_FLOAT_EQ(u[1], 11.512925f);
    EXPECT_FLOAT_EQ(u[2], 0.6931472f);
    EXPECT_EQ(u[3], 0.f);
    EXPECT_EQ(u[4], 0.f);
}

// pydensecrf's unary_from_labels(labels, 3, gt_prob=0.7, zero_unsure=False), 255 unknown.
TEST(Unary, FromLabelsGivesConfidenceToTheLabelAndShareToOthers) {
    cv::Mat labels = (cv::Mat_<uint8_t>(1, 3) << 1, 255, 0);
    std::vector<float> u = unary_from_labels(labels, 3, 0.7f);
    const float given = -std::log(0.7f), other = -std::log(0.15f), unknown = -std::log(1.f / 3);
    const std::vector<float> expected = {other, unknown, given, given, unknown, other, other, unknown, other};
    ASSERT_EQ(u.size(), expected.size());
    for (size_t i = 0; i < u.size(); ++i) EXPECT_NEAR(u[i], expected[i], 1e-6) << i;
    EXPECT_NE(expect_error([&] { unary_from_labels(labels, 3, 1.f); }).find("confidence must be in (0, 1), got 1"),
              std::string::npos);
    cv::Mat bad = (cv::Mat_<uint8_t>(2, 2) << 0, 1, 2, 7);
    EXPECT_EQ(expect_error([&] { check_label_map("seeds.png", bad, 3); }),
              "seeds.png: label 7 at row 1, col 1 is not below the 3 labels (or 255 = unknown)");
}

TEST(CrfInput, ProbabilityChecksNameTheFileAndTheValue) {
    const int h = 2, w = 3, n = h * w;
    std::vector<float> p(size_t(2) * n, 0.5f);
    EXPECT_NO_THROW(check_probabilities("p.npy", p.data(), 2, h, w));
    p[n + 4] = std::nanf("");
    EXPECT_EQ(expect_error([&] { check_probabilities("p.npy", p.data(), 2, h, w); }),
              "p.npy: probability of label 1 at row 1, col 1 is nan, expected a value in 0..1");
    p[n + 4] = 0.5f;
    p[2] = -0.25f;
    EXPECT_EQ(expect_error([&] { check_probabilities("p.npy", p.data(), 2, h, w); }),
              "p.npy: probability of label 0 at row 0, col 2 is -0.25, expected a value in 0..1");
    p[2] = 0.1f;
    EXPECT_EQ(expect_error([&] { check_probabilities("p.npy", p.data(), 2, h, w); }),
              "p.npy: probabilities at row 0, col 2 sum to 0.6 over the 2 labels, expected 1");
    EXPECT_EQ(expect_error([&] { check_probabilities("p.npy", p.data(), 1, h, w); }),
              "p.npy: expected at least 2 labels (K x H x W), got K = 1");
}

TEST(CrfInput, ReadProbabilitiesChecksTheShape) {
    fs::path dir = test::scratch_dir("probs");
    std::vector<float> v(size_t(2) * 4 * 5, 0.5f);
    write_npy_f32(dir / "ok.npy", {2, 4, 5}, v.data());
    EXPECT_EQ(read_probabilities(dir / "ok.npy", 4, 5).num_labels, 2);
    const std::string path = (dir / "ok.npy").string();
    EXPECT_EQ(expect_error([&] { read_probabilities(dir / "ok.npy", 5, 4); }),
              path + ": probabilities are 4 x 5 (H x W) but the image is 5 x 4");
    write_npy_f32(dir / "flat.npy", {8, 5}, v.data());
    EXPECT_EQ(expect_error([&] { read_probabilities(dir / "flat.npy", 8, 5); }),
              (dir / "flat.npy").string() + ": expected probabilities K x H x W, got shape 8 x 5");
    write_npy_f32(dir / "one.npy", {1, 8, 5}, v.data());
    EXPECT_EQ(expect_error([&] { read_probabilities(dir / "one.npy", 8, 5); }),
              (dir / "one.npy").string() + ": expected 2..256 labels (K x H x W), got K = 1");
}

TEST(CrfInput, OptionsMustBePositive) {
    DenseCrfOptions o;
    o.bilateral_srgb = 0;
    try {
        validate(o);
        FAIL() << "expected UsageError";
    } catch (const UsageError& e) {
        EXPECT_STREQ(e.what(), "--bilateral: SRGB must be > 0, got 0");
    }
    o = {};
    o.iterations = -1;
    EXPECT_THROW(DenseCrf{o}, UsageError);
}

TEST(CrfInput, NanUnaryIsRefused) {
    cv::Mat image(3, 4, CV_8UC3, cv::Scalar(1, 2, 3));
    DenseCrf crf;
    crf.set_image(image);
    std::vector<float> u(24, 1.f);
    u[7] = std::nanf("");
    EXPECT_EQ(expect_error([&] { crf.infer(u, 2); }), "dense CRF: unary energies contain NaN");
    // 21 labels take the 8 x 8 block transpose (with AVX2) for the first 8 pixels of 12, and
    // the pixel-by-pixel loop for the rest: a NaN in either is found.
    for (size_t at : {size_t(5 * 12 + 3), size_t(20 * 12 + 10)}) {
        std::vector<float> u21(21 * 12, 1.f);
        u21[at] = std::nanf("");
        EXPECT_EQ(expect_error([&] { crf.infer(u21, 21); }), "dense CRF: unary energies contain NaN") << at;
    }
}
