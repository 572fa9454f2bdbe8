// The bad-input matrix: the real binary on bad files, bad flags and bad models, every
// subcommand. Each case checks the exit code, that stderr is exactly one line
// "sightline: error: <file or flag>: <problem>" (the exact text), and that the output folder is
// exactly as before (absent stays absent, an existing one keeps every file and byte).
#include <algorithm>
#include <fstream>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <torch/script.h>

#include "sightline/core.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

// ---- fixtures: tiny files and models, made once per test process --------------------------

void write_text(const fs::path& p, const std::string& text) { write_file_atomic(p, text); }

// A .npy whose header declares `shape` (float32) followed by `data_bytes` zero bytes.
void write_npy_declaring(const fs::path& p, const std::string& shape, std::size_t data_bytes) {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
    header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
    header.push_back('\n');
    std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
    bytes.push_back(static_cast<char>(header.size() & 0xff));
    bytes.push_back(static_cast<char>(header.size() >> 8));
    write_text(p, bytes + header + std::string(data_bytes, '\0'));
}

void write_float_npy(const fs::path& p, const torch::Tensor& t) {
    torch::Tensor c = t.contiguous();
    std::vector<int64_t> shape(c.sizes().begin(), c.sizes().end());
    write_npy_f32(p, shape, c.data_ptr<float>());
}

torch::jit::Module conv_module(int64_t in, int64_t out) {
    torch::jit::Module conv("Conv");
    conv.register_parameter("weight", torch::randn({out, in, 3, 3}) * 0.3, false);
    conv.define("def forward(self, x):\n    return torch.conv2d(x, self.weight, None, [1, 1], [1, 1])\n");
    return conv;
}

// A classifier with a convolution submodule; `forward_body` is the code after `a = ...`.
void save_classifier(const fs::path& p, const std::string& forward_body, const std::string& signature = "x") {
    torch::jit::Module m("Net");
    m.register_module("conv", conv_module(3, 4));
    m.register_parameter("fc", torch::randn({3, 4}), false);
    m.define("def forward(self, " + signature + "):\n    a = torch.relu(self.conv.forward(x))\n" + forward_body);
    m.save(p.string());
}

// A segmenter [B,3,H,W] -> [B,K,H,W] without parameters.
void save_segmenter(const fs::path& p, const std::string& forward_body, const std::string& signature = "x") {
    torch::jit::Module m("Seg");
    m.define("def forward(self, " + signature + "):\n" + forward_body);
    m.save(p.string());
}

// A PNG whose header declares width x height; the pixel data is that of a 2x2 image, so the
// file is small and only a decoder that trusts the header would allocate the picture.
void write_png_declaring(const fs::path& p, uint32_t width, uint32_t height) {
    std::vector<uchar> png;
    cv::imencode(".png", cv::Mat(2, 2, CV_8UC3, cv::Scalar(1, 2, 3)), png);
    for (int i = 0; i < 4; ++i) {
        png[16 + i] = static_cast<uchar>(width >> (24 - 8 * i));
        png[20 + i] = static_cast<uchar>(height >> (24 - 8 * i));
    }
    write_file_atomic(p, png.data(), png.size());
}

// The same for a TIFF: its first directory's ImageWidth / ImageLength entries rewritten.
void write_tiff_declaring(const fs::path& p, uint16_t width, uint16_t height) {
    std::vector<uchar> tiff;
    cv::imencode(".tiff", cv::Mat(2, 2, CV_8UC3, cv::Scalar(1, 2, 3)), tiff);
    ASSERT_TRUE(tiff[0] == 'I' && tiff[1] == 'I');  // OpenCV writes little-endian TIFFs
    auto u16 = [&](std::size_t at) { return static_cast<uint32_t>(tiff[at] | tiff[at + 1] << 8); };
    const std::size_t directory = u16(4) | u16(6) << 16;
    for (uint32_t i = 0; i < u16(directory); ++i) {
        const std::size_t e = directory + 2 + 12 * i;
        const uint32_t tag = u16(e), value = tag == 256 ? width : tag == 257 ? height : 0;
        if (!value) continue;
        tiff[e + 8] = static_cast<uchar>(value & 0xff);
        tiff[e + 9] = static_cast<uchar>(value >> 8);
        if (u16(e + 2) == 4) tiff[e + 10] = tiff[e + 11] = 0;  // LONG
    }
    write_file_atomic(p, tiff.data(), tiff.size());
}

struct MatrixFixtures {
    fs::path in;
    MatrixFixtures() {
        in = test::scratch_dir("fixtures");
        torch::manual_seed(0);
        // Images.
        cv::Mat rgb(24, 32, CV_8UC3);
        cv::randu(rgb, 0, 255);
        cv::imwrite((in / "img.png").string(), rgb);
        std::vector<uchar> jpeg;
        cv::imencode(".jpg", rgb, jpeg);
        write_file_atomic(in / "truncated.jpg", jpeg.data(), jpeg.size() * 2 / 3);
        // Damaged in the middle: the scan cut at a third, the end-of-image marker right after.
        const std::string whole(jpeg.begin(), jpeg.end());
        const std::size_t scan = whole.find("\xFF\xDA");
        write_file_atomic(in / "damaged.jpg", whole.substr(0, scan + (whole.size() - scan) / 3) + "\xFF\xD9");
        std::vector<uchar> png;
        cv::imencode(".png", rgb, png);
        write_file_atomic(in / "truncated.png", png.data(), png.size() / 2);
        write_text(in / "corrupt.png", std::string("\x89PNG\r\n\x1a\n garbage", 17));
        write_text(in / "empty.png", "");
        write_png_declaring(in / "huge.png", 30000, 30000);
        write_png_declaring(in / "wide.png", 60000, 60000);
        write_tiff_declaring(in / "huge.tif", 30000, 30000);
        fs::create_directories(in / "no_images");
        write_text(in / "no_images" / "notes.txt", "no pictures here\n");
        fs::create_directories(in / "one");
        fs::copy_file(in / "img.png", in / "one" / "img.png");
        // Tensors.
        write_float_npy(in / "x.npy", torch::rand({3, 24, 32}));
        write_npy_declaring(in / "huge.npy", "3, 100000, 100000", 64);
        write_npy_declaring(in / "zero.npy", "3, 0, 80", 0);
        write_npy_declaring(in / "short.npy", "3, 24, 32", 100);
        write_float_npy(in / "nan.npy", torch::full({3, 24, 32}, std::nan("")));
        write_float_npy(in / "rank2.npy", torch::rand({24, 32}));
        write_text(in / "not.npy", "this is not numpy");
        // Models.
        const std::string logits = "    return torch.matmul(torch.mean(a, [2, 3]), self.fc.t())\n";
        save_classifier(in / "good.pt", logits);
        save_classifier(in / "raise.pt",
                        "    assert a.size(2) < 0, \"this model refuses every input\"\n" + logits);
        save_classifier(in / "two.pt", logits, "x, y");
        save_classifier(in / "nanout.pt", "    return torch.matmul(torch.mean(a, [2, 3]), self.fc.t()) * float('nan')\n");
        std::string model = read_file(in / "good.pt");
        write_text(in / "truncated.pt", model.substr(0, model.size() / 2));
        write_text(in / "text.pt", "not a model\n");
        save_segmenter(in / "seg.pt", "    return torch.cat([x[:, :1], -x[:, :1]], 1)\n");
        save_segmenter(in / "segraise.pt", "    assert x.size(2) < 0, \"segmenter refuses\"\n"
                                           "    return x\n");
        save_segmenter(in / "segnan.pt", "    return torch.cat([x[:, :1], -x[:, :1]], 1) * float('nan')\n");
        save_segmenter(in / "seg300.pt", "    return x[:, :1].repeat(1, 300, 1, 1)\n");
        save_segmenter(in / "segtwo.pt", "    return torch.cat([x[:, :1], y[:, :1]], 1)\n", "x, y");
        // Text files.
        write_text(in / "empty.txt", "");
        write_text(in / "labels2.txt", "cat\ndog\n");
        // Masks for eval: gt 24x32 grey with classes 0..2, predictions of several kinds.
        cv::Mat mask(24, 32, CV_8UC1, cv::Scalar(0));
        mask(cv::Rect(4, 4, 8, 8)).setTo(1);
        mask(cv::Rect(16, 8, 8, 8)).setTo(2);
        fs::create_directories(in / "gt");
        fs::create_directories(in / "pred_ok");
        fs::create_directories(in / "pred_size");
        fs::create_directories(in / "pred_range");
        fs::create_directories(in / "pred_rgb");
        cv::imwrite((in / "gt" / "a.png").string(), mask);
        cv::imwrite((in / "pred_ok" / "a.png").string(), mask);
        cv::imwrite((in / "pred_size" / "a.png").string(), cv::Mat(12, 16, CV_8UC1, cv::Scalar(0)));
        cv::Mat out_of_range = mask.clone();
        out_of_range(cv::Rect(0, 0, 2, 2)).setTo(7);
        cv::imwrite((in / "pred_range" / "a.png").string(), out_of_range);
        cv::imwrite((in / "pred_rgb" / "a.png").string(), rgb);
        // An existing dataset and an existing explain output to keep intact.
        fs::create_directories(in / "dataset" / "JPEGImages");
        write_text(in / "dataset" / "JPEGImages" / "old.png", "old bytes");
        write_text(in / "dataset" / "labels.csv", "image,labels\nold,cat\n");
    }
};

const MatrixFixtures& matrix_fixtures() {
    static const MatrixFixtures f;
    return f;
}

// ---- the check ------------------------------------------------------------------------------

// Every file under `dir` with its bytes; {"<absent>"} when there is no such folder.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
    std::map<std::string, std::string> files;
    if (!fs::exists(dir)) return {{"<absent>", ""}};
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        std::string rel = fs::relative(e.path(), dir).string();
        files[rel] = e.is_regular_file() ? read_file(e.path()) : "<folder>";
    }
    return files;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    return s;
}

// The --threads rule's message on this machine (4 x its cores is the most).
std::string threads_refused(const std::string& got) {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    return "--threads: must be 0 (all cores) or 1.." + std::to_string(4 * cores) + " (4 x the " +
           std::to_string(cores) + " cores), got " + got;
}

struct MatrixCase {
    std::string args;     // {in}: the fixtures folder, {out}: this case's output folder
    int exit_code;
    std::string message;  // the whole line after "sightline: error: "
    std::string watched = "{out}";  // the folder that must be left exactly as before
};

// Runs each case; `out` is a fresh path (absent) per case unless the case watches another folder.
void run_matrix(const std::vector<MatrixCase>& cases) {
    const fs::path in = matrix_fixtures().in;
    int index = 0;
    for (const MatrixCase& c : cases) {
        const fs::path out = test::scratch_dir("out" + std::to_string(index++)) / "out";
        auto expand = [&](const std::string& s) {
            return replace_all(replace_all(s, "{in}", in.string()), "{out}", out.string());
        };
        const std::string args = expand(c.args);
        const fs::path watched = expand(c.watched);
        const auto before = snapshot(watched);
        const auto r = test::run_sightline(args);
        SCOPED_TRACE(args);
        EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
        EXPECT_EQ(r.err, "sightline: error: " + expand(c.message) + "\n");
        EXPECT_EQ(snapshot(watched), before) << "the output folder changed";
        EXPECT_TRUE(snapshot(in).count("<absent>") == 0);
    }
}

}  // namespace

// Classes 1-5 and their neighbours: bad models and bad files, through explain.
TEST(BadInputMatrix, ExplainModelsAndFiles) {
    const std::string x = " --input {in}/x.npy --out {out}";
    run_matrix({
        {"explain --model {in}/raise.pt" + x, 1,
         "{in}/raise.pt: the forward pass failed: RuntimeError: AssertionError: this model refuses every input"},
        {"explain --model {in}/two.pt" + x, 1,
         "{in}/two.pt: forward takes 2 input(s) (x, y); Sightline gives a model one image batch [B,3,H,W]"},
        {"explain --model {in}/nanout.pt --method gradcam" + x, 1,
         "{in}/x.npy: logits contain NaN or Inf"},
        {"explain --model {in}/missing.pt" + x, 1, "{in}/missing.pt: no such model file"},
        {"explain --model {in}/truncated.pt" + x, 1, "{in}/truncated.pt: cannot load TorchScript model (truncated or not a torch.jit.save file): PytorchStreamReader failed reading zip archive: failed finding central directory"},
        {"explain --model {in}/text.pt" + x, 1, "{in}/text.pt: cannot load TorchScript model (truncated or not a torch.jit.save file): PytorchStreamReader failed reading zip archive: not a ZIP archive"},
        {"explain --model {in}/good.pt --input {in}/huge.npy --out {out}", 1,
         "{in}/huge.npy: truncated .npy data (the header declares shape [3,100000,100000], more than the 64 bytes "
         "after the header)"},
        {"explain --model {in}/good.pt --input {in}/zero.npy --out {out}", 1,
         "{in}/zero.npy: input .npy has shape [3,0,80]: an image needs at least one pixel"},
        {"explain --model {in}/good.pt --input {in}/short.npy --out {out}", 1, "{in}/short.npy: truncated .npy data (the header declares shape [3,24,32], more than the 100 bytes after the header)"},
        {"explain --model {in}/good.pt --input {in}/nan.npy --out {out}", 1,
         "{in}/nan.npy: input tensor contains NaN or Inf"},
        {"explain --model {in}/good.pt --input {in}/rank2.npy --out {out}", 1,
         "{in}/rank2.npy: input .npy has shape [24,32]; expected [3,H,W] or [1,3,H,W]"},
        {"explain --model {in}/good.pt --input {in}/not.npy --out {out}", 1, "{in}/not.npy: not a .npy file (bad magic)"},
        {"explain --model {in}/good.pt --input {in}/truncated.jpg --out {out}", 1,
         "{in}/truncated.jpg: truncated JPEG (the data ends before the end-of-image marker)"},
        {"explain --model {in}/good.pt --input {in}/damaged.jpg --out {out}", 1,
         "{in}/damaged.jpg: corrupt JPEG (Corrupt JPEG data: premature end of data segment)"},
        {"explain --model {in}/good.pt --input {in}/truncated.png --out {out}", 1, "{in}/truncated.png: cannot decode image (corrupt PNG: file is truncated)"},
        {"explain --model {in}/good.pt --input {in}/corrupt.png --out {out}", 1, "{in}/corrupt.png: cannot decode image (corrupt PNG: file is truncated)"},
        {"explain --model {in}/good.pt --input {in}/empty.png --out {out}", 1, "{in}/empty.png: image file is empty"},
        {"explain --model {in}/good.pt --input {in}/huge.png --out {out}", 1,
         "{in}/huge.png: image too large (30000 x 30000 > 67108864 pixels; raise the limit with SIGHTLINE_MAX_PIXELS)"},
        {"explain --model {in}/good.pt --input {in}/wide.png --out {out}", 1,
         "{in}/wide.png: image too large (60000 x 60000 > 67108864 pixels; raise the limit with SIGHTLINE_MAX_PIXELS)"},
        {"explain --model {in}/good.pt --input {in}/huge.tif --out {out}", 1,
         "{in}/huge.tif: image too large (30000 x 30000 > 67108864 pixels; raise the limit with SIGHTLINE_MAX_PIXELS)"},
        {"explain --model {in}/good.pt --input {in}/no_images --out {out}", 1,
         "{in}/no_images: folder holds no image or .npy files"},
        {"explain --model {in}/good.pt --input {in}/nothing.png --out {out}", 1, "{in}/nothing.png: no such file or folder"},
        {"explain --model {in}/good.pt --layer conv9" + x, 2, "{in}/good.pt: no layer named 'conv9'; closest: conv; top-level layers: conv (all: sightline inspect --model {in}/good.pt --layers)"},
        {"explain --model {in}/good.pt --labels {in}/empty.txt" + x, 1, "{in}/empty.txt: no class names (the file is empty)"},
        {"explain --model {in}/good.pt --labels {in}/labels2.txt" + x, 1,
         "{in}/labels2.txt: has 2 class names but the model has 3 classes (give one name per output, optionally after a background line)"},
        {"explain --model {in}/good.pt --target 7" + x, 2, "--target 7: class index out of range; the model has 3 classes (0..2)"},
        {"explain --model {in}/good.pt --method gradcan" + x, 2, "unknown method 'gradcan'; choose from: cam, hirescam, gradcam, gradcamelementwise, gradcam++, xgradcam, layercam, eigencam, eigengradcam, scorecam, ablationcam, saliency, guidedbackprop, guidedgradcam, inputxgradient, integratedgradients, smoothgrad, occlusion"},
        {"explain --model {in}/good.pt --input {in}/x.npy --out /proc/sightline-out", 1, "/proc/sightline-out: cannot create output folder (/proc is not writable)", "/proc/sightline-out"},
    });
}

// Classes 6-8: flags, through explain.
TEST(BadInputMatrix, ExplainFlags) {
    const std::string x = "explain --model {in}/good.pt --input {in}/x.npy --out {out}";
    run_matrix({
        {x + " --batch 0", 2, "--batch: must be at least 1, got 0"},
        {x + " --batch many", 2, "--batch: 'many' is not a number"},
        {x + " --method occlusion --occlusion-window 0", 2, "--occlusion-window: must be at least 1, got 0"},
        {x + " --method occlusion --occlusion-stride 0", 2, "--occlusion-stride: must be at least 1, got 0"},
        {x + " --method occlusion --occlusion-window 4 --occlusion-stride 8", 2,
         "--occlusion-stride 8 is larger than --occlusion-window 4: the pixels between windows would get no value"},
        {x + " --method integratedgradients --ig-steps 0", 2, "--ig-steps: must be at least 1, got 0"},
        {x + " --method smoothgrad --smooth-samples 0", 2, "--smooth-samples: must be at least 1, got 0"},
        {x + " --method smoothgrad --smooth-sigma -1", 2, "--smooth-sigma: must be at least 0, got -1"},
        {x + " --method smoothgrad --smooth-sigma nan", 2, "--smooth-sigma: must be a finite number, got nan"},
        {x + " --seed -1", 2, "--seed: must be at least 0, got -1"},
        {x + " --threads -1", 2, threads_refused("-1")},
        {x + " --threads 100000", 2, threads_refused("100000")},
        {x + " --mean nan,0,0", 2, "--mean: must be a finite number, got nan"},
        {x + " --mean 0.5,0.5", 2, "--mean: expected 3 comma-separated values, got 2"},
        {x + " --std 1,x,1", 2, "--std: 'x' is not a number"},
        {x + " --std 0,1,1", 2, "--std: values must be positive"},
        {x + " --size 0x10", 2, "--size '0x10': expected HxW, e.g. 224x224"},
        {x + " --frobnicate", 2, "The following argument was not expected: --frobnicate"},
        {"explain --input {in}/x.npy --out {out}", 2, "--model is required"},
        {x + " --shard 2/2", 2, "--shard: '2/2' is not a shard; give I/N with 0 <= I < N, e.g. 0/4"},
        {x + " --shard 1", 2, "--shard: '1' is not a shard; give I/N with 0 <= I < N, e.g. 0/4"},
        {"merge {in}/x.npy --out {out}", 1, "{in}/x.npy: no summary.json (not an output folder of `sightline explain`)"},
        {"merge --out {out}", 2, "shards is required"},
    });
}

TEST(BadInputMatrix, InspectScoreSanity) {
    run_matrix({
        {"inspect --model {in}/raise.pt --size 8", 1, "{in}/raise.pt: the forward pass failed: RuntimeError: AssertionError: this model refuses every input"},
        {"inspect --model {in}/two.pt --size 8", 1,
         "{in}/two.pt: forward takes 2 input(s) (x, y); Sightline gives a model one image batch [B,3,H,W]"},
        {"score --model {in}/raise.pt --input {in}/x.npy --out {out}", 1, "{in}/raise.pt: the forward pass failed: RuntimeError: AssertionError: this model refuses every input"},
        {"score --model {in}/good.pt --input {in}/x.npy --out {out} --fill nan", 2, "--fill: must be a finite number, got nan"},
        {"score --model {in}/good.pt --input {in}/x.npy --out {out} --noise -1", 2, "--noise: must be at least 0, got -1"},
        {"score --model {in}/good.pt --input {in}/x.npy --out {out} --max-images -1", 2,
         "--max-images: must be at least 0, got -1"},
        {"score --model {in}/good.pt --input {in}/x.npy --out {out} --steps 0", 2, "--steps: must be at least 1, got 0"},
        {"score --model {in}/good.pt --input {in}/zero.npy --out {out}", 1,
         "{in}/zero.npy: input .npy has shape [3,0,80]: an image needs at least one pixel"},
        {"sanity --model {in}/raise.pt --input {in}/one --out {out}", 1, "{in}/one: the sanity checks need at least 2 images for their correlation statistics (found 1)"},
        {"sanity --model {in}/good.pt --input {in}/one --out {out} --threshold nan", 2,
         "--threshold: must be a finite number, got nan"},
        {"sanity --model {in}/good.pt --input {in}/one --out {out} --threads 100000", 2, threads_refused("100000")},
        {"sanity --model {in}/good.pt --input {in}/one --out {out} --smooth-mprt 1", 2,
         "--smooth-mprt: give 0 (off) or at least 2 copies"},
        {"sanity --model {in}/good.pt --input {in}/one --out {out} --smooth-noise -0.1", 2,
         "--smooth-noise: must be at least 0, got -0.1"},
        {"sanity --model {in}/good.pt --input {in}/one --out {out} --depth blocks", 2,
         "--depth: 'blocks' is neither a whole number nor 'layers'"},
        {"sanity --model {in}/good.pt --input {in}/one --out {out} --entropy-bins 0", 2,
         "--entropy-bins: must be at least 1, got 0"},
    });
}

TEST(BadInputMatrix, Segment) {
    const std::string x = " --input {in}/img.png --out {out}";
    run_matrix({
        {"segment --model {in}/segraise.pt" + x, 1, "{in}/segraise.pt: forward failed on a [1,3,32,32] input: RuntimeError: AssertionError: segmenter refuses"},
        {"segment --model {in}/segnan.pt" + x, 1, "{in}/segnan.pt: the model's output contains NaN or Inf for a [1,3,32,32] input"},
        {"segment --model {in}/seg300.pt" + x, 1, "{in}/seg300.pt: the model outputs 300 channels for {in}/img.png; a label PNG holds at most 256 classes"},
        {"segment --model {in}/segtwo.pt" + x, 1,
         "{in}/segtwo.pt: forward takes 2 input(s) (x, y); Sightline gives a model one image batch [B,3,H,W]"},
        {"segment --model {in}/seg.pt --input {in}/truncated.jpg --out {out}", 1,
         "{in}/truncated.jpg: truncated JPEG (the data ends before the end-of-image marker)"},
        {"segment --model {in}/seg.pt --input {in}/huge.png --out {out}", 1,
         "{in}/huge.png: image too large (30000 x 30000 > 67108864 pixels; raise the limit with SIGHTLINE_MAX_PIXELS)"},
        {"segment --model {in}/seg.pt --input {in}/missing --out {out}", 1, "{in}/missing: no such image or folder (--input)"},
        {"segment --model {in}/seg.pt --tile -1" + x, 2, "--tile: must be at least 0, got -1"},
        {"segment --model {in}/seg.pt --overlap 1.5" + x, 2, "--overlap must be in [0, 1), got 1.5"},
        {"segment --model {in}/seg.pt --threads 0.5" + x, 2, threads_refused("0.5")},
        {"segment --model {in}/truncated.pt" + x, 1, "{in}/truncated.pt: not a loadable TorchScript model (PytorchStreamReader failed reading zip archive: failed finding central directory)"},
    });
}

TEST(BadInputMatrix, Eval) {
    run_matrix({
        {"eval --pred {in}/pred_ok --gt {in}/missing_gt --classes 3 --out {out}", 1,
         "{in}/missing_gt: no such ground-truth folder (--gt)"},
        {"eval --pred {in}/pred_ok --gt {in}/missing_gt --out {out}", 1,
         "{in}/missing_gt: no such ground-truth folder (--gt)"},
        {"eval --pred {in}/missing_pred --gt {in}/gt --classes 3 --out {out}", 1,
         "{in}/missing_pred: no such prediction folder"},
        {"eval --pred {in}/pred_size --gt {in}/gt --classes 3 --out {out}", 1, "{in}/pred_size/a.png: prediction is 16x12 (width x height) but the ground truth {in}/gt/a.png is 32x24"},
        {"eval --pred {in}/pred_range --gt {in}/gt --classes 3 --out {out}", 1, "{in}/pred_range/a.png: label 7 at x=0 y=0 is not a class (0..2) nor the ignore value 255"},
        {"eval --pred {in}/pred_rgb --gt {in}/gt --classes 3 --out {out}", 1, "{in}/pred_rgb/a.png: RGB PNG is not an index mask (expected a palette or 8-bit grey PNG whose values are class indices)"},
        {"eval --pred {in}/pred_ok --gt {in}/gt --classes 3 --ignore 300 --out {out}", 2, "--ignore: must be between -1 and 255, got 300"},
        {"eval --pred {in}/pred_ok --gt {in}/gt --classes 3 --threads -2 --out {out}", 2, threads_refused("-2")},
        {"eval --pred {in}/pred_ok --gt {in}/gt --classes {in}/empty.txt --out {out}", 1, "{in}/empty.txt: classes file is empty"},
    });
}

TEST(BadInputMatrix, TrainDataAndOthers) {
    run_matrix({
        {"train classify --data {in}/dataset --out {out} --width 0", 2, "--width: must be at least 1, got 0"},
        {"train classify --data {in}/dataset --out {out} --output-stride 5", 2, "--output-stride: 5 not in {4,8,16}"},
        {"train classify --data {in}/dataset --out {out} --lr nan", 2, "--lr: must be a finite number, got nan"},
        {"train classify --data {in}/dataset --out {out} --epochs 0", 2, "--epochs: must be at least 1, got 0"},
        {"train classify --data {in}/missing --out {out}", 1, "{in}/missing: no such dataset folder"},
        {"train classify --data {in}/dataset --out {out} --threads -1", 2, threads_refused("-1")},
        {"train classify --data {in}/dataset --out {out} --objective gradcam", 2,
         "--objective: 'gradcam' is not one of cam, puzzle, mixup, subcategory"},
        {"train segment --data {in}/dataset --out {out} --optimizer adam", 2,
         "--optimizer: 'adam' is not one of sgd, adamw"},
        {"train classify --data {in}/dataset --out {out} --schedule step", 2,
         "--schedule: 'step' is not one of cosine, poly"},
        {"data synth --out {in}/dataset --n 2 --size 32", 1,
         "{in}/dataset: folder exists and is not empty; choose another --out or pass --force to replace it",
         "{in}/dataset"},
        {"data synth --out {out} --n 0", 2, "--n: must be at least 1, got 0"},
        {"data synth --out {out} --spurious 2", 2, "--spurious: must be between 0 and 1, got 2"},
        {"data synth --out {out}/deeper/ds --size 8", 2, "--size must be in 32..1024, got 8", "{out}"},
        {"crf --image {in}/missing.png --out {out}", 2, "crf: give exactly one of --probs (soft maps) and --labels (a label map)"},
        {"audit --model {in}/missing.pt --data {in}/dataset --out {out}", 1, "{in}/dataset: no split lists (ImageSets/Segmentation/<split>.txt); audit needs a VOC-layout dataset with object masks"},
        {"wsss run --data {in}/missing --out {out}", 1, "{in}/missing: no such dataset folder"},
        {"", 2, "give a command: list, explain, inspect, bench, demo, data, eval, audit, crf, train, wsss, segment, instance, sanity, score, merge, launch"},
        {"wsss", 2, "wsss: give a command: seeds, sweep, pseudo, affinity, run"},
        {"wsss cams --data {in}", 2, "wsss cams: unknown command; choose from seeds, sweep, pseudo, affinity, run"},
        {"train clasify --data {in}", 2, "train clasify: unknown command; choose from classify, segment, instance"},
        {"explain --model {in}/good.pt --input {in}/img.png --out {out} --ig-steps 3.5", 2,
         "--ig-steps: '3.5' is not a whole number"},
        {"score --model {in}/good.pt --input {in}/img.png --steps 5x", 2, "--steps: '5x' is not a number"},
        {"frobnicate", 2, "frobnicate: unknown command; choose from list, explain, inspect, bench, demo, data, eval, audit, crf, train, wsss, segment, instance, sanity, score, merge, launch"},
    });
}

// Class 11: --force replaces a dataset in one step, and class 12: a rerun says what it skipped.
TEST(BadInputMatrix, DataForceReplacesAndExplainRerunCountsSkipped) {
    fs::path root = test::scratch_dir("force") / "ds";
    fs::create_directories(root);
    write_text(root / "stale.txt", "stale");
    auto r = test::run_sightline("data synth --out " + root.string() + " --n 2 --size 32 --force");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_FALSE(fs::exists(root / "stale.txt"));
    EXPECT_TRUE(fs::exists(root / "ImageSets" / "Segmentation" / "train.txt"));
    for (const auto& e : fs::directory_iterator(root.parent_path()))
        EXPECT_EQ(e.path().filename(), "ds") << "left behind: " << e.path();

    const fs::path in = matrix_fixtures().in, out = test::scratch_dir("rerun") / "out";
    const std::string cmd = "explain --model " + (in / "good.pt").string() + " --input " + (in / "one").string() +
                            " --out " + out.string();
    r = test::run_sightline(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("explained 1 input(s), skipped 0 finished by an earlier run"), std::string::npos) << r.out;
    r = test::run_sightline(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("explained 0 input(s), skipped 1 finished by an earlier run; 1 map(s)"), std::string::npos)
        << r.out;
}

// Class 3: the pixel limit is documented and can be lowered or raised.
TEST(BadInputMatrix, PixelLimitCanBeOverridden) {
    const std::string cmd = "explain --model {in}/good.pt --input {in}/img.png --out {out}";
    setenv("SIGHTLINE_MAX_PIXELS", "100", 1);
    run_matrix({{cmd, 1, "{in}/img.png: image too large (32 x 24 > 100 pixels; raise the limit with SIGHTLINE_MAX_PIXELS)"}});
    setenv("SIGHTLINE_MAX_PIXELS", "lots", 1);
    run_matrix({{cmd, 2, "SIGHTLINE_MAX_PIXELS=lots: expected a positive whole number of pixels"}});
    setenv("SIGHTLINE_MAX_PIXELS", "768", 1);  // exactly 32 x 24: accepted
    const fs::path in = matrix_fixtures().in, out = test::scratch_dir("limit") / "out";
    auto r = test::run_sightline("explain --model " + (in / "good.pt").string() + " --input " + (in / "img.png").string() +
                                 " --out " + out.string());
    unsetenv("SIGHTLINE_MAX_PIXELS");
    EXPECT_EQ(r.exit_code, 0) << r.err;
}
