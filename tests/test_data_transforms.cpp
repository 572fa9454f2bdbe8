// Transforms, seeded random numbers and the mixup plan.
#include <numeric>
#include <set>

#include <gtest/gtest.h>

#include "sightline/data.hpp"

using namespace sightline;

namespace {

// Image channel 0 = 20 * mask id, in 8x8 blocks, so alignment of image and mask is visible.
Sample blocky(int w, int h) {
    Sample s;
    s.id = "blocky";
    s.mask = cv::Mat(h, w, CV_8U);
    s.image = cv::Mat(h, w, CV_8UC3);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            uint8_t id = static_cast<uint8_t>(((x / 8) * 3 + (y / 8)) % 7);
            s.mask.at<uint8_t>(y, x) = id;
            s.image.at<cv::Vec3b>(y, x) = cv::Vec3b(uint8_t(20 * id), 100, 50);
        }
    return s;
}

// Share of pixels where the image's channel 0 still equals 20 * the mask id (bilinear
// interpolation blends the image at block edges, so not all of them).
double aligned(const Sample& s) {
    int ok = 0;
    for (int y = 0; y < s.mask.rows; ++y)
        for (int x = 0; x < s.mask.cols; ++x)
            ok += std::abs(s.image.at<cv::Vec3b>(y, x)[0] - 20 * s.mask.at<uint8_t>(y, x)) <= 2;
    return double(ok) / s.mask.total();
}

}  // namespace

TEST(Rng, IsDeterministicAndInRange) {
    Rng a(42), b(42), c(43);
    std::vector<uint64_t> va, vb, vc;
    for (int i = 0; i < 100; ++i) va.push_back(a.next()), vb.push_back(b.next()), vc.push_back(c.next());
    EXPECT_EQ(va, vb);
    EXPECT_NE(va, vc);
    Rng r(1);
    std::set<int> seen;
    double sum = 0;
    for (int i = 0; i < 20000; ++i) {
        double u = r.uniform();
        ASSERT_GE(u, 0.0);
        ASSERT_LT(u, 1.0);
        sum += u;
        int k = r.uniform_int(-2, 2);
        ASSERT_GE(k, -2);
        ASSERT_LE(k, 2);
        seen.insert(k);
    }
    EXPECT_NEAR(sum / 20000, 0.5, 0.01);
    EXPECT_EQ(seen.size(), 5u);
}

TEST(Rng, ForkDoesNotAdvanceAndGivesIndependentStreams) {
    Rng base(7);
    Rng f1 = base.fork(1), f1_again = base.fork(1), f2 = base.fork(2);
    EXPECT_EQ(f1.next(), f1_again.next());
    EXPECT_NE(Rng(7).fork(1).next(), f2.next());
    EXPECT_EQ(base.next(), Rng(7).next());
}

TEST(Rng, GammaAndBetaHaveTheirMeans) {
    Rng r(3);
    for (double shape : {0.4, 1.0, 3.5}) {
        double sum = 0;
        for (int i = 0; i < 20000; ++i) sum += r.gamma(shape);
        EXPECT_NEAR(sum / 20000, shape, 0.05 * shape + 0.02) << shape;  // mean of Gamma(k, 1) is k
    }
    double sum = 0, sq = 0;
    for (int i = 0; i < 20000; ++i) {
        double b = r.beta(2.0, 6.0);
        ASSERT_GE(b, 0.0);
        ASSERT_LE(b, 1.0);
        sum += b;
        sq += b * b;
    }
    EXPECT_NEAR(sum / 20000, 0.25, 0.01);                               // a / (a + b)
    EXPECT_NEAR(sq / 20000 - (sum / 20000) * (sum / 20000), 0.0208, 0.003);  // ab/((a+b)^2(a+b+1))
}

TEST(Transforms, ResizeKeepsMaskIdsAndAlignment) {
    Sample s = blocky(32, 24);
    resize(s, 48, 64);
    ASSERT_EQ(s.image.size(), cv::Size(64, 48));
    ASSERT_EQ(s.mask.size(), cv::Size(64, 48));
    std::set<int> ids(s.mask.begin<uint8_t>(), s.mask.end<uint8_t>());
    EXPECT_EQ(ids, (std::set<int>{0, 1, 2, 3, 4, 5, 6}));  // nearest: no new ids in between
    EXPECT_GT(aligned(s), 0.75);
    // The measure notices a mask moved against its image.
    cv::Mat moved;
    cv::flip(s.mask, moved, 1);
    s.mask = moved;
    EXPECT_LT(aligned(s), 0.5);
}

TEST(Transforms, FlipMovesImageAndMaskTogether) {
    Sample s = blocky(16, 8), t = s;
    t.image = s.image.clone();
    t.mask = s.mask.clone();
    horizontal_flip(t);
    EXPECT_EQ(t.mask.at<uint8_t>(3, 0), s.mask.at<uint8_t>(3, 15));
    EXPECT_EQ(t.image.at<cv::Vec3b>(3, 0), s.image.at<cv::Vec3b>(3, 15));
    horizontal_flip(t);
    EXPECT_EQ(cv::countNonZero(t.mask != s.mask), 0);
}

TEST(Transforms, PadFillsMaskWithIgnore) {
    Sample s = blocky(8, 8);
    pad_to(s, 10, 12);
    ASSERT_EQ(s.mask.size(), cv::Size(12, 10));
    EXPECT_EQ(s.mask.at<uint8_t>(9, 11), 255);
    EXPECT_EQ(s.mask.at<uint8_t>(0, 9), 255);
    EXPECT_EQ(s.image.at<cv::Vec3b>(9, 0), cv::Vec3b(0, 0, 0));
    EXPECT_EQ(s.mask.at<uint8_t>(7, 7), blocky(8, 8).mask.at<uint8_t>(7, 7));
}

TEST(Transforms, ResizedCropBoxesRespectScaleAndRatio) {
    Rng rng(5);
    ResizedCropOptions o;
    o.scale_min = 0.3;
    o.scale_max = 0.8;
    for (int i = 0; i < 500; ++i) {
        cv::Rect box = sample_resized_crop(90, 120, o, rng);
        ASSERT_EQ(box & cv::Rect(0, 0, 120, 90), box);
        double area = double(box.area()) / (90 * 120), ratio = double(box.width) / box.height;
        EXPECT_GE(area, 0.3 - 0.03);
        EXPECT_LE(area, 0.8 + 0.03);
        EXPECT_GE(ratio, o.ratio_min - 0.05);
        EXPECT_LE(ratio, o.ratio_max + 0.05);
    }
    // No allowed crop fits (a whole 4:1 image at ratio 1): the centred square fallback.
    o.scale_min = o.scale_max = 1.0;
    o.ratio_min = o.ratio_max = 1.0;
    EXPECT_EQ(sample_resized_crop(20, 80, o, rng), cv::Rect(30, 0, 20, 20));
}

TEST(Transforms, RandomResizedCropIsCropThenResizeAndKeepsAlignment) {
    Sample fast = blocky(64, 48), slow = blocky(64, 48);
    Rng a(11), b(11);
    random_resized_crop(fast, 32, 32, ResizedCropOptions{}, a);
    crop(slow, sample_resized_crop(48, 64, ResizedCropOptions{}, b));
    resize(slow, 32, 32);
    EXPECT_EQ(cv::countNonZero(fast.mask != slow.mask), 0);
    EXPECT_EQ(cv::countNonZero(fast.image.reshape(1) != slow.image.reshape(1)), 0);
    EXPECT_GT(aligned(fast), 0.6);
}

TEST(Transforms, ColorJitterKeepsGreyGreyAndZeroIsIdentity) {
    cv::Mat grey(8, 8, CV_8UC3, cv::Scalar(90, 90, 90)), img = grey.clone();
    Rng rng(2);
    color_jitter(img, ColorJitterOptions{0, 0, 0, 0}, rng);
    EXPECT_EQ(cv::countNonZero(img.reshape(1) != grey.reshape(1)), 0);
    for (int i = 0; i < 20; ++i) {
        img = grey.clone();
        color_jitter(img, ColorJitterOptions{0.0, 0.0, 0.8, 0.3}, rng);  // saturation and hue
        cv::Mat diff;
        cv::absdiff(img.reshape(1), grey.reshape(1), diff);
        double worst;
        cv::minMaxLoc(diff, nullptr, &worst);
        EXPECT_LE(worst, 1.0);
    }
    // Brightness b scales values by a factor in [1 - b, 1 + b].
    for (int i = 0; i < 20; ++i) {
        img = grey.clone();
        color_jitter(img, ColorJitterOptions{0.5, 0, 0, 0}, rng);
        double v = img.at<cv::Vec3b>(0, 0)[0];
        EXPECT_GE(v, 45 - 1);
        EXPECT_LE(v, 135 + 1);
        EXPECT_EQ(img.at<cv::Vec3b>(0, 0)[0], img.at<cv::Vec3b>(7, 7)[2]);
    }
}

TEST(Transforms, AugmentIsDeterministicPerSeed) {
    AugmentOptions o;
    o.size = 24;
    Sample a = blocky(40, 40), b = blocky(40, 40);
    Rng ra(9), rb(9);
    augment(a, o, ra);
    augment(b, o, rb);
    ASSERT_EQ(a.image.size(), cv::Size(24, 24));
    EXPECT_EQ(cv::countNonZero(a.image.reshape(1) != b.image.reshape(1)), 0);
    EXPECT_EQ(cv::countNonZero(a.mask != b.mask), 0);
}

TEST(Mixup, PlanIsAPermutationWithLambdaInRange) {
    Rng rng(4);
    MixupPlan plan = plan_mixup(10, 0.4, rng);
    std::vector<std::size_t> sorted = plan.partner;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::size_t> expected(10);
    std::iota(expected.begin(), expected.end(), std::size_t{0});
    EXPECT_EQ(sorted, expected);
    EXPECT_GE(plan.lambda, 0.0);
    EXPECT_LE(plan.lambda, 1.0);
    EXPECT_EQ(plan_mixup(4, 0.0, rng).lambda, 1.0);
    Rng r1(8), r2(8);
    EXPECT_EQ(plan_mixup(6, 1.0, r1).partner, plan_mixup(6, 1.0, r2).partner);
}
