#include <cstdlib>
#include <fstream>

#include <unistd.h>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "sightline/core.hpp"
#include "sightline/folders.hpp"
#include "sightline/image_limits.hpp"
#include "test_support.hpp"

using namespace sightline;

TEST(Npy, RoundTripFloat32KeepsShapeAndValues) {
    fs::path dir = test::scratch_dir("npy");
    std::vector<float> values = {0.f, 1.5f, -2.f, 3.25f, 4.f, 5.f};
    write_npy_f32(dir / "a.npy", {2, 3}, values.data());
    NpyArray a = read_npy(dir / "a.npy");
    EXPECT_EQ(a.dtype, "f4");
    EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(a.to_float(), values);
}

TEST(Npy, ReadsNumpyWrittenFixture) {
    // Written by numpy.save (tests/fixtures): float32 [2, 3, 64, 80].
    NpyArray a = read_npy(test::fixtures() / "gradcam" / "input_3x64x80.npy");
    EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3, 64, 80}));
    EXPECT_EQ(a.dtype, "f4");
}

TEST(Npy, HeaderIsAlignedTo64Bytes) {
    fs::path dir = test::scratch_dir("npy");
    float v = 1.f;
    write_npy_f32(dir / "one.npy", {1}, &v);
    std::string bytes = read_file(dir / "one.npy");
    EXPECT_EQ((bytes.size() - 4) % 64, 0u);
    EXPECT_NE(bytes.find("'shape': (1,)"), std::string::npos);
}

TEST(Npy, TruncatedFileNamesTheFile) {
    fs::path dir = test::scratch_dir("npy");
    std::vector<float> values(100, 1.f);
    write_npy_f32(dir / "full.npy", {100}, values.data());
    std::string bytes = read_file(dir / "full.npy");
    write_file_atomic(dir / "cut.npy", bytes.substr(0, bytes.size() - 10));
    try {
        read_npy(dir / "cut.npy");
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("cut.npy: truncated .npy data"), std::string::npos) << e.what();
    }
}

TEST(Image, CorruptFileNamesTheFile) {
    fs::path dir = test::scratch_dir("img");
    write_file_atomic(dir / "bad.png", std::string("\x89PNG\r\n\x1a\nnot really a png"));
    try {
        read_image_rgb(dir / "bad.png");
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("bad.png: cannot decode image"), std::string::npos) << e.what();
    }
}

TEST(Image, GreyAndRgbaBecomeRgbAndSaySo) {
    fs::path dir = test::scratch_dir("img");
    cv::Mat grey(4, 5, CV_8UC1, cv::Scalar(77));
    cv::imwrite((dir / "g.png").string(), grey);
    LoadedImage g = read_image_rgb(dir / "g.png");
    EXPECT_EQ(g.source_channels, 1);
    EXPECT_EQ(g.rgb.type(), CV_8UC3);
    EXPECT_EQ(g.rgb.at<cv::Vec3b>(2, 3), cv::Vec3b(77, 77, 77));
    cv::Mat bgra(4, 5, CV_8UC4, cv::Scalar(10, 20, 30, 255));
    cv::imwrite((dir / "c.png").string(), bgra);
    LoadedImage c = read_image_rgb(dir / "c.png");
    EXPECT_EQ(c.source_channels, 4);
    EXPECT_EQ(c.rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(30, 20, 10));  // RGB order
}

TEST(Image, JpegDecodesAsOpenCvAndDataDamagedInTheMiddleIsRefused) {
    fs::path dir = test::scratch_dir("jpeg");
    cv::Mat bgr(48, 64, CV_8UC3);
    cv::RNG(5).fill(bgr, cv::RNG::UNIFORM, 0, 256);
    cv::GaussianBlur(bgr, bgr, cv::Size(5, 5), 0);
    std::vector<uchar> encoded;
    ASSERT_TRUE(cv::imencode(".jpg", bgr, encoded));
    const std::string bytes(encoded.begin(), encoded.end());
    write_file_atomic(dir / "good.jpg", bytes);
    // The same pixels as OpenCV's own decoder (both are libjpeg-turbo's default IDCT).
    cv::Mat expected;
    cv::cvtColor(cv::imread((dir / "good.jpg").string(), cv::IMREAD_COLOR), expected, cv::COLOR_BGR2RGB);
    LoadedImage good = read_image_rgb(dir / "good.jpg");
    EXPECT_EQ(good.source_channels, 3);
    EXPECT_EQ(cv::norm(good.rgb, expected, cv::NORM_INF), 0.0);
    cv::Mat grey;
    cv::cvtColor(bgr, grey, cv::COLOR_BGR2GRAY);
    cv::imwrite((dir / "grey.jpg").string(), grey);
    EXPECT_EQ(read_image_rgb(dir / "grey.jpg").source_channels, 1);
    // Damaged: the scan data cut at a third and the end-of-image marker put right after it.
    // The file still ends like a JPEG; libjpeg only warns and fills the rest with grey.
    const std::size_t scan = bytes.find("\xFF\xDA");
    ASSERT_NE(scan, std::string::npos);
    const std::size_t cut = scan + (bytes.size() - scan) / 3;
    write_file_atomic(dir / "damaged.jpg", bytes.substr(0, cut) + "\xFF\xD9");
    try {
        read_image_rgb(dir / "damaged.jpg");
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  (dir / "damaged.jpg").string() + ": corrupt JPEG (Corrupt JPEG data: premature end of data segment)");
    }
}

TEST(Files, AtomicWriteLeavesNoTempFiles) {
    fs::path dir = test::scratch_dir("atomic");
    write_file_atomic(dir / "x.txt", std::string("hello"));
    int count = 0;
    for (auto& e : fs::directory_iterator(dir)) { (void)e; ++count; }
    EXPECT_EQ(count, 1);
    EXPECT_EQ(read_file(dir / "x.txt"), "hello");
}

TEST(Files, UnwritableFolderIsReported) {
    // /proc refuses new entries; the line names the folder and the system's reason.
    const std::string message = test::message_of([] { ensure_writable_dir("/proc/sightline-cannot-exist"); });
    EXPECT_EQ(message.rfind("/proc/sightline-cannot-exist: cannot create output folder (", 0), 0u) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    // A regular file where the folder should be is "not a folder" or the system's equivalent.
    const fs::path file = test::scratch_dir("unwritable") / "plain.txt";
    write_file_atomic(file, std::string("x"));
    const std::string on_file = test::message_of([&] { ensure_writable_dir(file); });
    EXPECT_EQ(on_file.rfind(file.string() + ": cannot create output folder (", 0), 0u) << on_file;
    if (::geteuid() != 0) {  // root may write anywhere, so only an ordinary user sees the second check
        const fs::path locked = test::scratch_dir("locked");
        fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
        EXPECT_EQ(test::message_of([&] { ensure_writable_dir(locked); }),
                  locked.string() + ": output folder is not writable");
        fs::permissions(locked, fs::perms::owner_all);
    }
}

// check_writable_dir decides before any work and creates nothing (its probe is removed again).
TEST(Files, WritableCheckCreatesNothing) {
    const fs::path dir = test::scratch_dir("check-writable");
    check_writable_dir(dir / "a" / "b");
    check_writable_dir(dir);
    EXPECT_TRUE(fs::is_empty(dir));
    write_file_atomic(dir / "file", std::string("x"));
    EXPECT_THROW(check_writable_dir(dir / "file" / "out"), Error);
    EXPECT_THROW(check_writable_dir(dir / "file"), Error);
    // access(W_OK) says yes to root in /proc; creating there fails for everyone.
    try {
        check_writable_dir("/proc/sightline-cannot-exist");
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "/proc/sightline-cannot-exist: cannot create output folder (/proc is not writable)");
    }
}

// A folder built atomically is complete or absent: a failed build leaves neither it, its
// staging folder nor the parents it created; --force swaps a complete one in.
TEST(Files, FolderBuiltAtomicallyIsCompleteOrAbsent) {
    const fs::path dir = test::scratch_dir("atomic-folder");
    EXPECT_THROW(build_folder_atomically(dir / "new" / "ds", false,
                                         [](const fs::path& d) {
                                             write_file_atomic(d / "half", std::string("x"));
                                             throw Error("build failed");
                                         }),
                 Error);
    EXPECT_TRUE(fs::is_empty(dir));
    write_file_atomic(dir / "ds" / "old", std::string("old"));
    EXPECT_THROW(build_folder_atomically(dir / "ds", false, [](const fs::path&) {}), Error);
    build_folder_atomically(dir / "ds", true, [](const fs::path& d) { write_file_atomic(d / "new", std::string("n")); });
    EXPECT_FALSE(fs::exists(dir / "ds" / "old"));
    EXPECT_EQ(read_file(dir / "ds" / "new"), "n");
    int entries = 0;
    for (const auto& e : fs::directory_iterator(dir)) entries += e.path().filename() == "ds" ? 0 : 1;
    EXPECT_EQ(entries, 0) << "staging left behind";
}

// A .npy header may declare far more data than the file holds: refused before allocating.
TEST(Npy, DeclaredSizeIsCheckedAgainstTheFile) {
    const fs::path p = test::scratch_dir("npy-declared") / "huge.npy";
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 100000, 100000), }";
    header.append(117 - header.size(), ' ');  // 10 + 118 bytes: 64-aligned
    header.push_back('\n');
    std::string bytes("\x93NUMPY\x01\x00", 8);
    bytes.push_back(static_cast<char>(header.size()));
    bytes.push_back(0);
    write_file_atomic(p, bytes + header + std::string(64, '\0'));
    try {
        (void)read_npy(p);
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("the header declares shape [3,100000,100000], more than the 64 bytes"),
                  std::string::npos)
            << e.what();
    }
}

// Sizes whose product overflows 64 bits are still refused.
TEST(ImageLimits, HugeDeclaredSizesAreRefusedWithoutOverflow) {
    EXPECT_NO_THROW(check_image_pixels("a.png", 8192, 8192));
    EXPECT_NO_THROW(check_image_pixels("a.png", 0, 0));  // not declared
    EXPECT_THROW(check_image_pixels("a.png", 8193, 8192), Error);
    EXPECT_THROW(check_image_pixels("a.png", int64_t{1} << 40, int64_t{1} << 40), Error);
}

// The peer-fixture rule of SIGHTLINE_NEED_FIXTURE: a configured folder that lacks a file is a
// failure, never a silent skip; only an unconfigured one lets the test skip.
TEST(TestSupport, ConfiguredPeerFixturesThatLackAFileAreAProblem) {
    const char* before = std::getenv("SIGHTLINE_PEER_FIXTURES");
    const std::string saved = before ? before : "";
    const fs::path empty = test::scratch_dir("peer");
    setenv("SIGHTLINE_PEER_FIXTURES", empty.c_str(), 1);
    EXPECT_EQ(test::missing_fixture_problem("gradcam/resnet18.pt"),
              empty.string() + " has no gradcam/resnet18.pt (SIGHTLINE_PEER_FIXTURES is set, so the peer "
                               "fixtures are expected there)");
    EXPECT_TRUE(test::find_fixture("gradcam/resnet18.pt").empty());
    setenv("SIGHTLINE_PEER_FIXTURES", (empty / "nope").c_str(), 1);
    EXPECT_EQ(test::missing_fixture_problem("x"),
              "SIGHTLINE_PEER_FIXTURES names " + (empty / "nope").string() + ", which is not a folder");
    std::ofstream(empty / "here.bin") << "x";
    setenv("SIGHTLINE_PEER_FIXTURES", empty.c_str(), 1);
    EXPECT_EQ(test::find_fixture("here.bin"), empty / "here.bin");
    if (before) setenv("SIGHTLINE_PEER_FIXTURES", saved.c_str(), 1);
    else unsetenv("SIGHTLINE_PEER_FIXTURES");
}
