// Palette PNG masks: indices survive, VOC colours are right, other PNG kinds are refused.
#include <png.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "sightline/palette.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

cv::Mat all_indices(int rows, int cols) {
    cv::Mat m(rows, cols, CV_8UC1);
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) m.at<uint8_t>(r, c) = static_cast<uint8_t>((r * cols + c) * 7 % 256);
    return m;
}

bool equal(const cv::Mat& a, const cv::Mat& b) {
    return a.size() == b.size() && a.type() == b.type() && cv::countNonZero(a != b) == 0;
}

std::string error_of(const fs::path& path) {
    try {
        read_index_png(path);
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

bool have_pil() {
    return fs::exists("/usr/bin/python3") &&
           std::system("/usr/bin/python3 -c 'import PIL.Image' >/dev/null 2>&1") == 0;
}

// Runs a python snippet with Debian's python3 and returns its stdout.
std::string run_python(const fs::path& dir, const std::string& code) {
    fs::path script = dir / "check.py", out = dir / "py.txt";
    std::ofstream(script) << code;
    std::string cmd = "/usr/bin/python3 " + script.string() + " >" + out.string() + " 2>&1";
    int status = std::system(cmd.c_str());
    std::string text = read_file(out);
    EXPECT_EQ(status, 0) << text;
    return text;
}

}  // namespace

TEST(Palette, VocColoursOfKnownIndices) {
    EXPECT_EQ(voc_color(0), (std::array<uint8_t, 3>{0, 0, 0}));
    EXPECT_EQ(voc_color(1), (std::array<uint8_t, 3>{128, 0, 0}));
    EXPECT_EQ(voc_color(2), (std::array<uint8_t, 3>{0, 128, 0}));
    EXPECT_EQ(voc_color(3), (std::array<uint8_t, 3>{128, 128, 0}));
    EXPECT_EQ(voc_color(15), (std::array<uint8_t, 3>{192, 128, 128}));  // person
    EXPECT_EQ(voc_color(20), (std::array<uint8_t, 3>{0, 64, 128}));
    EXPECT_EQ(voc_color(255), (std::array<uint8_t, 3>{224, 224, 192}));
}

TEST(Palette, VocMapIsInjective) {
    std::set<std::array<uint8_t, 3>> seen;
    for (int i = 0; i < 256; ++i) seen.insert(voc_color(i));
    EXPECT_EQ(seen.size(), 256u);
}

TEST(Palette, RoundTripKeepsEveryIndex) {
    fs::path dir = test::scratch_dir("pal");
    cv::Mat m = all_indices(37, 53);  // odd sizes, all 256 values appear
    write_palette_png(dir / "m.png", m);
    cv::Mat back = read_index_png(dir / "m.png");
    EXPECT_TRUE(equal(m, back));
    // A non-continuous view (a ROI) is written row by row.
    cv::Mat roi = m(cv::Rect(3, 2, 20, 11));
    write_palette_png(dir / "roi.png", roi);
    EXPECT_TRUE(equal(roi.clone(), read_index_png(dir / "roi.png")));
}

TEST(Palette, WrittenFileCarriesVocPaletteForLibpng) {
    fs::path dir = test::scratch_dir("pal");
    write_palette_png(dir / "m.png", all_indices(4, 6));
    // Independent reading with plain libpng: colour type, bit depth and the PLTE entries.
    FILE* f = std::fopen((dir / "m.png").c_str(), "rb");
    ASSERT_NE(f, nullptr);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_read_info(png, info);
    EXPECT_EQ(png_get_color_type(png, info), PNG_COLOR_TYPE_PALETTE);
    EXPECT_EQ(png_get_bit_depth(png, info), 8);
    png_colorp palette = nullptr;
    int count = 0;
    ASSERT_EQ(png_get_PLTE(png, info, &palette, &count), PNG_INFO_PLTE);
    ASSERT_EQ(count, 256);
    for (int i : {0, 1, 2, 3, 255}) {
        auto c = voc_color(i);
        EXPECT_EQ(palette[i].red, c[0]) << i;
        EXPECT_EQ(palette[i].green, c[1]) << i;
        EXPECT_EQ(palette[i].blue, c[2]) << i;
    }
    EXPECT_EQ(palette[255].red, 224);
    EXPECT_EQ(palette[255].blue, 192);
    png_destroy_read_struct(&png, &info, nullptr);
    std::fclose(f);
}

TEST(Palette, WrittenFileOpensInPil) {
    ASSERT_TRUE(have_pil()) << "python3-pil is not installed at /usr/bin/python3 (bash scripts/install-deps.sh)";
    fs::path dir = test::scratch_dir("pal");
    cv::Mat m(2, 3, CV_8UC1);
    const uint8_t values[] = {0, 1, 2, 3, 255, 15};
    std::memcpy(m.data, values, 6);
    write_palette_png(dir / "m.png", m);
    std::string out = run_python(dir, "import PIL.Image\n"
                                      "im = PIL.Image.open('" + (dir / "m.png").string() + "')\n"
                                      "print(im.mode, im.size, list(im.getdata()))\n"
                                      "p = im.getpalette()\n"
                                      "print([tuple(p[3*i:3*i+3]) for i in (0, 1, 2, 3, 15, 255)])\n");
    EXPECT_EQ(out,
              "P (3, 2) [0, 1, 2, 3, 255, 15]\n"
              "[(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (192, 128, 128), (224, 224, 192)]\n");
}

TEST(Palette, ReadsPilPaletteWithShortPaletteAsIndices) {
    ASSERT_TRUE(have_pil()) << "python3-pil is not installed at /usr/bin/python3 (bash scripts/install-deps.sh)";
    fs::path dir = test::scratch_dir("pal");
    // PIL writes the indices with a 4-entry palette (and a bit depth below 8): the index 3 is
    // read as 3, not as its colour.
    run_python(dir, "import PIL.Image\n"
                    "im = PIL.Image.new('P', (5, 2))\n"
                    "im.putpalette([0,0,0, 128,0,0, 0,128,0, 128,128,0])\n"
                    "im.putdata([0,1,2,3,3, 3,2,1,0,1])\n"
                    "im.save('" + (dir / "pil.png").string() + "')\n");
    cv::Mat m = read_index_png(dir / "pil.png");
    ASSERT_EQ(m.size(), cv::Size(5, 2));
    const uint8_t expected[] = {0, 1, 2, 3, 3, 3, 2, 1, 0, 1};
    for (int i = 0; i < 10; ++i) EXPECT_EQ(m.data[i], expected[i]) << i;
}

TEST(Palette, GreyPngReadsValues) {
    fs::path dir = test::scratch_dir("pal");
    cv::Mat m = all_indices(9, 11);
    ASSERT_TRUE(cv::imwrite((dir / "g.png").string(), m));  // OpenCV writes 8-bit grey
    EXPECT_TRUE(equal(m, read_index_png(dir / "g.png")));
}

TEST(Palette, RgbPngIsRejected) {
    fs::path dir = test::scratch_dir("pal");
    cv::imwrite((dir / "c.png").string(), cv::Mat(3, 3, CV_8UC3, cv::Scalar(0, 0, 128)));
    EXPECT_EQ(error_of(dir / "c.png"),
              (dir / "c.png").string() +
                  ": RGB PNG is not an index mask (expected a palette or 8-bit grey PNG whose "
                  "values are class indices)");
    cv::imwrite((dir / "a.png").string(), cv::Mat(3, 3, CV_8UC4, cv::Scalar(0, 0, 128, 255)));
    EXPECT_NE(error_of(dir / "a.png").find("a.png: RGBA PNG is not an index mask"), std::string::npos);
}

TEST(Palette, SixteenBitGreyIsRejected) {
    fs::path dir = test::scratch_dir("pal");
    cv::imwrite((dir / "g16.png").string(), cv::Mat(3, 3, CV_16UC1, cv::Scalar(300)));
    EXPECT_EQ(error_of(dir / "g16.png"),
              (dir / "g16.png").string() + ": 16-bit grey PNG is not an index mask (expected 8 bits)");
}

TEST(Palette, CorruptAndTruncatedFilesNameTheFile) {
    fs::path dir = test::scratch_dir("pal");
    write_palette_png(dir / "good.png", all_indices(40, 40));
    std::string bytes = read_file(dir / "good.png");

    write_file_atomic(dir / "cut.png", bytes.substr(0, bytes.size() / 2));
    EXPECT_EQ(error_of(dir / "cut.png"), (dir / "cut.png").string() + ": corrupt PNG (file is truncated)");

    std::string flipped = bytes;
    flipped[bytes.size() / 2] = static_cast<char>(flipped[bytes.size() / 2] ^ 0x5a);  // inside IDAT
    write_file_atomic(dir / "flip.png", flipped);
    EXPECT_NE(error_of(dir / "flip.png").find((dir / "flip.png").string() + ": corrupt PNG ("),
              std::string::npos)
        << error_of(dir / "flip.png");

    std::string header_only = bytes.substr(0, 20);
    write_file_atomic(dir / "hdr.png", header_only);
    EXPECT_EQ(error_of(dir / "hdr.png"), (dir / "hdr.png").string() + ": corrupt PNG (file is truncated)");

    write_file_atomic(dir / "text.png", std::string("hello, not an image"));
    EXPECT_EQ(error_of(dir / "text.png"),
              (dir / "text.png").string() +
                  ": not a PNG file (masks must be palette or 8-bit grey PNGs)");
    write_file_atomic(dir / "empty.png", std::string());
    EXPECT_EQ(error_of(dir / "empty.png"), (dir / "empty.png").string() + ": mask file is empty");
    EXPECT_EQ(error_of(dir / "missing.png"), (dir / "missing.png").string() + ": no such mask file");
}

TEST(Palette, WriteRejectsWrongType) {
    fs::path dir = test::scratch_dir("pal");
    EXPECT_THROW(write_palette_png(dir / "x.png", cv::Mat(2, 2, CV_8UC3)), Error);
    EXPECT_THROW(write_palette_png(dir / "x.png", cv::Mat()), Error);
    EXPECT_FALSE(fs::exists(dir / "x.png"));
}
