// --device: every command that runs a model takes it; cpu gives the default run's outputs byte for
// byte; a device this LibTorch build cannot use (Debian's is CPU-only) or a wrong name is one
// line and exit 2, before anything is written.
#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>
#include <torch/cuda.h>
#include <torch/script.h>

#include "sightline/architectures.hpp"
#include "sightline/device.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

fs::path device_test_model(const fs::path& dir) {
    ArchOptions ao;
    ao.num_classes = 3;
    ao.input_size = 32;
    ao.width = 8;
    ao.seed = 9;
    torch::jit::Module m = build_architecture("resnet_gap", ao);
    m.eval();
    const fs::path path = dir / "model.pt";
    m.save(path.string());
    return path;
}

fs::path device_test_image(const fs::path& dir) {
    cv::Mat img(32, 32, CV_8UC3, cv::Scalar(90, 140, 60));
    cv::rectangle(img, cv::Rect(8, 10, 12, 9), cv::Scalar(230, 40, 40), cv::FILLED);
    const fs::path path = dir / "scene.png";
    write_image_rgb(path, img);
    return path;
}

}  // namespace

TEST(Device, ParseNamesTheProblem) {
    EXPECT_TRUE(parse_device("cpu").is_cpu());
    EXPECT_EQ(test::message_of([] { parse_device("gpu"); }), "--device gpu: give cpu, cuda or cuda:N");
    EXPECT_EQ(test::message_of([] { parse_device("cuda:"); }), "--device cuda:: give cpu, cuda or cuda:N");
    EXPECT_EQ(test::message_of([] { parse_device("cuda:1x"); }), "--device cuda:1x: give cpu, cuda or cuda:N");
    if (!torch::cuda::is_available()) {
        EXPECT_THROW(parse_device("cuda"), UsageError);
        EXPECT_THROW(parse_device("cuda:0"), UsageError);
    }
    EXPECT_TRUE(compute_device().is_cpu());  // the default
}

TEST(Device, CpuIsTheDefaultRunAndAnUnusableDeviceIsOneLine) {
    const fs::path dir = test::scratch_dir("device");
    const fs::path model = device_test_model(dir), image = device_test_image(dir);
    const std::string explain = "explain --model " + model.string() + " --input " + image.string() +
                                " --method gradcam,saliency --mean 0.5,0.5,0.5 --std 0.25,0.25,0.25 --out ";
    auto plain = test::run_sightline(explain + (dir / "plain").string());
    ASSERT_EQ(plain.exit_code, 0) << plain.err;
    auto cpu = test::run_sightline(explain + (dir / "cpu").string() + " --device cpu");
    ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
    std::size_t compared = 0;
    for (const auto& entry : fs::directory_iterator(dir / "plain")) {
        // summary.json holds timings; .sightline/ the resume records.
        if (!entry.is_regular_file() || entry.path().filename() == "summary.json") continue;
        EXPECT_EQ(read_file(entry.path()), read_file(dir / "cpu" / entry.path().filename())) << entry.path();
        ++compared;
    }
    EXPECT_GE(compared, 4u);  // a map and a picture per method

    if (!torch::cuda::is_available()) {
        auto cuda = test::run_sightline(explain + (dir / "cuda").string() + " --device cuda");
        EXPECT_EQ(cuda.exit_code, 2);
        EXPECT_EQ(cuda.err, "sightline: error: --device cuda: this LibTorch build has no CUDA, or no GPU is visible "
                            "(Debian's libtorch is CPU-only; build against a CUDA LibTorch with -DTorch_DIR=..., "
                            "docs/distributed.md)\n");
        EXPECT_FALSE(fs::exists(dir / "cuda"));
    }
    auto wrong = test::run_sightline("train classify --data " + (dir / "nowhere").string() + " --out " +
                                     (dir / "run").string() + " --device tpu");
    EXPECT_EQ(wrong.exit_code, 2);
    EXPECT_EQ(wrong.err, "sightline: error: --device tpu: give cpu, cuda or cuda:N\n");
    EXPECT_FALSE(fs::exists(dir / "run"));
}

// The commands that run a model take it (add_device_options adds it to each listed command, and
// stops the program at start-up when one is missing): the top-level ones in one --help-all, two
// nested ones by their own help. Commands without a model refuse it.
TEST(Device, TheModelCommandsTakeIt) {
    auto all = test::run_sightline("--help-all");
    ASSERT_EQ(all.exit_code, 0) << all.err;
    std::size_t count = 0;
    for (auto at = all.out.find("--device TEXT=cpu"); at != std::string::npos; at = all.out.find("--device TEXT=cpu", at + 1))
        ++count;
    EXPECT_EQ(count, 8u) << all.out;  // explain inspect audit sanity score segment instance demo
    for (const char* command : {"train instance", "wsss run"}) {
        auto help = test::run_sightline(std::string(command) + " --help");
        EXPECT_EQ(help.exit_code, 0) << command;
        EXPECT_NE(help.out.find("--device"), std::string::npos) << command;
    }
    auto eval = test::run_sightline("eval --device cpu --pred a --gt b");
    EXPECT_EQ(eval.exit_code, 2);
    EXPECT_NE(eval.err.find("--device"), std::string::npos) << eval.err;
}
