// The pictures people look at: overlays follow pytorch-grad-cam's show_cam_on_image exactly
// (known answers worked out by hand from its formula), and the labelled grid places every
// picture where its row and column say.
#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "sightline/core.hpp"
#include "sightline/report.hpp"
#include "test_support.hpp"

using namespace sightline;
using sightline::test::message_of;

namespace {

cv::Vec3b pixel(const cv::Mat& m, int y, int x) { return m.at<cv::Vec3b>(y, x); }

}  // namespace

// image_weight 1 leaves only the image, divided by its largest channel value and truncated:
// 255 * v / 200 for the values below.
TEST(Overlay, ImageWeightOneIsTheImageScaledToItsMaximum) {
    cv::Mat rgb(1, 2, CV_8UC3);
    rgb.at<cv::Vec3b>(0, 0) = {200, 100, 7};
    rgb.at<cv::Vec3b>(0, 1) = {0, 50, 199};
    const cv::Mat map = cv::Mat::zeros(1, 2, CV_32FC1);
    const cv::Mat out = overlay_heatmap(rgb, map, cv::COLORMAP_JET, 1.0f);
    EXPECT_EQ(pixel(out, 0, 0), cv::Vec3b(255, 127, 8));   // 127.5 -> 127, 8.925 -> 8
    EXPECT_EQ(pixel(out, 0, 1), cv::Vec3b(0, 63, 253));    // 63.75 -> 63, 253.725 -> 253
}

// image_weight 0 leaves only the heat map. Jet is dark blue at 0 and dark red at 1 (OpenCV's
// table: BGR (128,0,0) and (0,0,128)); the overlay is RGB, so blue is the third channel. The
// blend's maximum (128/255) scales to 255. A swapped channel order fails here.
TEST(Overlay, HeatOnlyIsJetInRgbOrderScaledToItsMaximum) {
    const cv::Mat rgb(1, 2, CV_8UC3, cv::Scalar(9, 9, 9));
    cv::Mat map(1, 2, CV_32FC1);
    map.at<float>(0, 0) = 0.0f;
    map.at<float>(0, 1) = 1.0f;
    const cv::Mat out = overlay_heatmap(rgb, map, cv::COLORMAP_JET, 0.0f);
    EXPECT_EQ(pixel(out, 0, 0), cv::Vec3b(0, 0, 255));
    EXPECT_EQ(pixel(out, 0, 1), cv::Vec3b(255, 0, 0));
}

// Half and half, worked through show_cam_on_image's steps: heat(1) = (128,0,0), image (255,255,255)
// -> blend (0.5*128+0.5*255, 127.5, 127.5)/255 = (0.75098, 0.5, 0.5); max 0.75098 -> (255, 169, 169)
// after truncation (255 * 0.5 / 0.75098 = 169.77).
TEST(Overlay, EqualWeightsKnownAnswer) {
    const cv::Mat rgb(1, 1, CV_8UC3, cv::Scalar(255, 255, 255));
    const cv::Mat map(1, 1, CV_32FC1, cv::Scalar(1.0f));
    const cv::Mat out = overlay_heatmap(rgb, map, cv::COLORMAP_JET, 0.5f);
    EXPECT_EQ(pixel(out, 0, 0), cv::Vec3b(255, 169, 169));
}

// np.uint8(255 * map) truncates: 0.999 gives jet's level 254, not 255. On a white image at equal
// weights the red channels differ (jet's table), so green/blue = 255 * 0.5 / (0.5 * red / 255 + 0.5)
// tell the two levels apart (169 for level 255, whose red is 128).
TEST(Overlay, MapLevelsTruncateAsNumpyDoes) {
    const cv::Mat white(1, 1, CV_8UC3, cv::Scalar(255, 255, 255));
    cv::Mat levels(1, 1, CV_8UC1, cv::Scalar(254)), jet_bgr;
    cv::applyColorMap(levels, jet_bgr, cv::COLORMAP_JET);
    const int red254 = jet_bgr.at<cv::Vec3b>(0, 0)[2];
    ASSERT_GT(red254, 128) << "jet's red rises towards level 254 from 128 at 255";
    const cv::Mat almost(1, 1, CV_32FC1, cv::Scalar(0.999f)), one(1, 1, CV_32FC1, cv::Scalar(1.0f));
    const cv::Vec3b a = pixel(overlay_heatmap(white, almost, cv::COLORMAP_JET, 0.5f), 0, 0);
    const cv::Vec3b b = pixel(overlay_heatmap(white, one, cv::COLORMAP_JET, 0.5f), 0, 0);
    EXPECT_EQ(b, cv::Vec3b(255, 169, 169));
    const int expected = static_cast<int>(255.0 * 0.5 / (0.5 * red254 / 255.0 + 0.5));
    EXPECT_EQ(a, cv::Vec3b(255, static_cast<uint8_t>(expected), static_cast<uint8_t>(expected)));
    EXPECT_LT(expected, 169);
}

TEST(Overlay, MismatchedSizesAreRefused) {
    const cv::Mat rgb(2, 2, CV_8UC3, cv::Scalar(0, 0, 0));
    const cv::Mat map = cv::Mat::zeros(3, 2, CV_32FC1);
    EXPECT_THROW(overlay_heatmap(rgb, map, cv::COLORMAP_JET), cv::Exception);
}

// Each cell lands at label_w + c * (tile + gap), label_h + r * (tile + gap) (120, 22 and 4 in
// grid.cpp), scaled to tile x tile; the rest is white.
TEST(PictureGrid, CellsLandInTheirRowAndColumn) {
    const int tile = 10;
    const cv::Mat red(5, 7, CV_8UC3, cv::Scalar(255, 0, 0)), green(20, 20, CV_8UC3, cv::Scalar(0, 255, 0));
    const cv::Mat blue(3, 3, CV_8UC3, cv::Scalar(0, 0, 255)), grey(10, 10, CV_8UC3, cv::Scalar(90, 90, 90));
    const cv::Mat grid = picture_grid({{red, green}, {blue, grey}}, {"", ""}, {"", ""}, tile);
    ASSERT_EQ(grid.type(), CV_8UC3);
    EXPECT_EQ(grid.cols, 120 + 2 * (tile + 4));
    EXPECT_EQ(grid.rows, 22 + 2 * (tile + 4));
    const auto cell_centre = [&](int r, int c) { return pixel(grid, 22 + r * (tile + 4) + tile / 2, 120 + c * (tile + 4) + tile / 2); };
    EXPECT_EQ(cell_centre(0, 0), cv::Vec3b(255, 0, 0));
    EXPECT_EQ(cell_centre(0, 1), cv::Vec3b(0, 255, 0));
    EXPECT_EQ(cell_centre(1, 0), cv::Vec3b(0, 0, 255));
    EXPECT_EQ(cell_centre(1, 1), cv::Vec3b(90, 90, 90));
    // The whole tile is filled (a cell smaller than the tile is scaled up, not pasted small).
    EXPECT_EQ(pixel(grid, 22, 120), cv::Vec3b(255, 0, 0));
    EXPECT_EQ(pixel(grid, 22 + tile - 1, 120 + tile - 1), cv::Vec3b(255, 0, 0));
    // The gap between cells and the empty label column stay white.
    EXPECT_EQ(pixel(grid, 22 + tile + 1, 120 + 2), cv::Vec3b(255, 255, 255));
    EXPECT_EQ(pixel(grid, 30, 5), cv::Vec3b(255, 255, 255));
}

TEST(PictureGrid, LabelsAreDrawnInTheirMargins) {
    const cv::Mat cell(8, 8, CV_8UC3, cv::Scalar(255, 255, 255));
    const cv::Mat bare = picture_grid({{cell}}, {""}, {""}, 40);
    const cv::Mat labelled = picture_grid({{cell}}, {"HiResCAM"}, {"boat"}, 40);
    cv::Mat diff;
    cv::absdiff(bare, labelled, diff);
    cv::Mat grey;
    cv::cvtColor(diff, grey, cv::COLOR_RGB2GRAY);
    // Ink in the row-label margin (x < 120) and in the column-label band (y < 22), nowhere else.
    EXPECT_GT(cv::countNonZero(grey(cv::Rect(0, 22, 120, 40))), 10);
    EXPECT_GT(cv::countNonZero(grey(cv::Rect(120, 0, 40, 22))), 10);
    EXPECT_EQ(cv::countNonZero(grey(cv::Rect(120, 22, 40, 40))), 0);
}

TEST(PictureGrid, ShapeErrorsSayWhatIsWrong) {
    const cv::Mat cell(4, 4, CV_8UC3, cv::Scalar(0, 0, 0));
    EXPECT_EQ(message_of([&] { picture_grid({{cell, cell}, {cell}}, {"a", "b"}, {"x", "y"}); }),
              "picture grid: row 1 has 1 pictures, expected 2");
    EXPECT_EQ(message_of([&] { picture_grid({{cell}}, {"a", "b"}, {"x"}); }), "picture grid: 2 row labels for 1 rows");
    EXPECT_EQ(message_of([&] { picture_grid({{cell}}, {"a"}, {"x", "y"}); }),
              "picture grid: 2 column labels for 1 columns");
    EXPECT_EQ(message_of([&] { picture_grid({}, {}, {}); }), "picture grid: no pictures");
    const cv::Mat grey(4, 4, CV_8UC1, cv::Scalar(0));
    EXPECT_EQ(message_of([&] { picture_grid({{grey}}, {"a"}, {"x"}); }), "picture grid: cell (0, 0) is not 8-bit RGB");
}
