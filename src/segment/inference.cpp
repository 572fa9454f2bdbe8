// Segmentation inference: whole image or sliding window, flip and multi-scale test-time
// augmentation (averaged softmax), optional dense CRF, label / overlay / probability files.
#include <chrono>
#include <cmath>

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "sightline/device.hpp"
#include "segment/segment_detail.hpp"
#include "sightline/palette.hpp"
#include "sightline/folders.hpp"
#include "sightline/script_errors.hpp"

namespace sightline {

namespace detail {

torch::Tensor normalise_image(const cv::Mat& rgb, const std::vector<double>& mean, const std::vector<double>& std) {
    const int h = rgb.rows, w = rgb.cols;
    torch::Tensor out = torch::empty({3, h, w});
    float* dst = out.data_ptr<float>();
    for (int c = 0; c < 3; ++c) {
        const float scale = static_cast<float>(1.0 / (255.0 * std[c])), shift = static_cast<float>(-mean[c] / std[c]);
        for (int y = 0; y < h; ++y) {
            const uint8_t* in = rgb.ptr<uint8_t>(y) + c;
            float* row = dst + (static_cast<int64_t>(c) * h + y) * w;
            for (int x = 0; x < w; ++x) row[x] = in[3 * x] * scale + shift;
        }
    }
    return out;
}

torch::Tensor forward_padded(torch::jit::Module& model, const torch::Tensor& x, int64_t multiple,
                             const std::string& name) {
    const int64_t h = x.size(2), w = x.size(3);
    const int64_t ph = (multiple - h % multiple) % multiple, pw = (multiple - w % multiple) % multiple;
    // Padded in host memory, run where the model is, read back in host memory.
    torch::Tensor input = to_compute((ph || pw) ? torch::constant_pad_nd(x, {0, pw, 0, ph}, 0) : x);
    c10::IValue out;
    try {
        out = model.forward({input});
    } catch (const std::exception& e) {  // c10::Error and TorchScript's JITException alike
        throw Error(fmt::format("{}: forward failed on a [{}] input: {}", name, fmt::join(input.sizes(), ","),
                                script_error_line(e)));
    }
    if (!out.isTensor()) throw Error(fmt::format("{}: forward did not return a tensor", name));
    torch::Tensor logits = out.toTensor().cpu();
    if (logits.dim() != 4 || logits.size(0) != x.size(0) || logits.size(2) != h + ph || logits.size(3) != w + pw)
        throw Error(fmt::format("{}: output has shape [{}] for a [{}] input, expected [B,K,H,W] of the input's size",
                                name, fmt::join(logits.sizes(), ","), fmt::join(input.sizes(), ",")));
    if (!torch::isfinite(logits).all().item<bool>())
        throw Error(fmt::format("{}: the model's output contains NaN or Inf for a [{}] input", name,
                                fmt::join(input.sizes(), ",")));
    if (ph || pw) logits = logits.slice(2, 0, h).slice(3, 0, w);
    return logits;
}

cv::Mat argmax_labels(const torch::Tensor& scores) {
    torch::Tensor idx = scores.argmax(0).to(torch::kUInt8).contiguous();
    cv::Mat labels(static_cast<int>(scores.size(1)), static_cast<int>(scores.size(2)), CV_8UC1);
    std::memcpy(labels.data, idx.data_ptr<uint8_t>(), labels.total());
    return labels;
}

}  // namespace detail

namespace {

// Tile origins along one axis so the windows cover [0, n) with the given stride, the last one
// flush with the end.
std::vector<int64_t> tile_starts(int64_t n, int64_t tile, int64_t stride) {
    std::vector<int64_t> starts;
    if (n <= tile) return {0};
    for (int64_t s = 0;; s += stride) {
        if (s + tile >= n) {
            starts.push_back(n - tile);
            break;
        }
        starts.push_back(s);
    }
    return starts;
}

std::vector<std::string> attribute_strings(const torch::jit::Module& m, const char* name) {
    std::vector<std::string> out;
    for (const auto& v : m.attr(name).toListRef()) out.push_back(v.toStringRef());
    return out;
}

std::vector<double> attribute_floats(const torch::jit::Module& m, const char* name) {
    std::vector<double> out;
    for (const auto& v : m.attr(name).toListRef()) out.push_back(v.toDouble());
    return out;
}

void validate(const SegmentOptions& o) {
    auto check = [](bool ok, const std::string& m) {
        if (!ok) throw UsageError(m);
    };
    check(o.tile >= 0, fmt::format("--tile must be >= 0, got {}", o.tile));
    check(o.overlap >= 0 && o.overlap < 1, fmt::format("--overlap must be in [0, 1), got {}", o.overlap));
    check(!o.scales.empty(), "--scales needs at least one value");
    for (double s : o.scales) check(s > 0 && s <= 8, fmt::format("--scales values must be in (0, 8], got {}", s));
    if (o.crf) validate(o.crf_options);
}

}  // namespace

struct Segmenter::Impl {
    mutable torch::jit::Module model;
    SegmentModelCard card;
    std::string name;
    int64_t classes = 0;  // K, 0 = take it from the first output

    // Average logits of the windows of one (scaled, maybe flipped) image x [1,3,H,W].
    torch::Tensor logits(const torch::Tensor& x, const SegmentOptions& o, const std::string& source) const {
        const int64_t h = x.size(2), w = x.size(3);
        torch::Tensor out;
        if (o.tile <= 0 || (h <= o.tile && w <= o.tile)) {
            out = detail::forward_padded(model, x, card.size_multiple, name);
        } else {
            const int64_t t = o.tile;
            const int64_t stride = std::max<int64_t>(1, std::llround(static_cast<double>(t) * (1.0 - o.overlap)));
            torch::Tensor sum, count = torch::zeros({1, 1, h, w});
            for (int64_t y0 : tile_starts(h, t, stride))
                for (int64_t x0 : tile_starts(w, t, stride)) {
                    const int64_t th = std::min(t, h), tw = std::min(t, w);
                    torch::Tensor window = x.slice(2, y0, y0 + th).slice(3, x0, x0 + tw);
                    torch::Tensor l = detail::forward_padded(model, window, card.size_multiple, name);
                    if (!sum.defined()) sum = torch::zeros({1, l.size(1), h, w});
                    sum.slice(2, y0, y0 + th).slice(3, x0, x0 + tw) += l;
                    count.slice(2, y0, y0 + th).slice(3, x0, x0 + tw) += 1;
                }
            out = sum / count;  // mmseg's slide inference: mean logits where windows overlap
        }
        check_channels(out, source);
        return out;
    }

    void check_channels(const torch::Tensor& logits, const std::string& source) const {
        // Label PNGs hold one byte per pixel.
        if (logits.size(1) > 256)
            throw Error(fmt::format("{}: the model outputs {} channels for {}; a label PNG holds at most 256 classes",
                                    name, logits.size(1), source));
        if (classes > 0 && logits.size(1) != classes)
            throw Error(fmt::format("{}: the model outputs {} channels for {}, expected {} (one per class{})", name,
                                    logits.size(1), source, classes,
                                    card.class_names.empty() ? "" : ": " + fmt::format("{}", fmt::join(card.class_names, ", "))));
    }
};

Segmenter::Segmenter(torch::jit::Module model, SegmentModelCard card, std::string name)
    : impl_(std::make_shared<Impl>()) {
    impl_->model = std::move(model);
    impl_->model.eval();
    if (!compute_device().is_cpu()) impl_->model.to(compute_device());
    impl_->card = std::move(card);
    impl_->name = std::move(name);
    impl_->classes = static_cast<int64_t>(impl_->card.class_names.size());
    if (impl_->card.size_multiple < 1) impl_->card.size_multiple = 1;
}

Segmenter::Segmenter(const fs::path& path, const std::string& classes) : impl_(std::make_shared<Impl>()) {
    Impl& s = *impl_;
    s.name = path.string();
    if (!fs::exists(path)) throw Error(fmt::format("{}: no such model file", s.name));
    try {
        s.model = torch::jit::load(path.string(), torch::Device(torch::kCPU));  // a file saved on a GPU loads too
    } catch (const c10::Error& e) {
        std::string what = e.what_without_backtrace();
        throw Error(fmt::format("{}: not a loadable TorchScript model ({})", s.name, what.substr(0, what.find('\n'))));
    }
    s.model.eval();
    if (!compute_device().is_cpu()) s.model.to(compute_device());
    check_single_input(s.model, path);
    SegmentModelCard& c = s.card;
    c.arch = s.model.hasattr("sightline_arch") ? s.model.attr("sightline_arch").toStringRef() : "torchscript";
    c.size_multiple = s.model.hasattr("sightline_size_multiple") ? s.model.attr("sightline_size_multiple").toInt() : 32;
    c.input_size = s.model.hasattr("sightline_input_size") ? s.model.attr("sightline_input_size").toInt() : 0;
    if (s.model.hasattr("sightline_mean")) c.mean = attribute_floats(s.model, "sightline_mean");
    if (s.model.hasattr("sightline_std")) c.std = attribute_floats(s.model, "sightline_std");
    if (c.mean.size() != 3 || c.std.size() != 3)
        throw Error(fmt::format("{}: sightline_mean and sightline_std need 3 values", s.name));
    const bool ours = s.model.hasattr("sightline_task") && s.model.attr("sightline_task").toStringRef() == "segment";
    if (s.model.hasattr("sightline_task") && !ours)
        throw Error(fmt::format("{}: a '{}' model, not a segmentation model (train one with `sightline train segment`)",
                                s.name, s.model.attr("sightline_task").toStringRef()));
    if (!ours && s.model.hasattr("sightline_head"))
        throw Error(fmt::format("{}: a classifier (head '{}'), not a segmentation model", s.name,
                                s.model.attr("sightline_head").toStringRef()));
    if (ours) c.class_names = attribute_strings(s.model, "sightline_class_names");
    if (!classes.empty()) {
        std::vector<std::string> names = resolve_class_names(classes, {}, {});
        if (!c.class_names.empty() && names.size() != c.class_names.size())
            throw Error(fmt::format("{}: the model has {} classes ({}), --classes {} gives {}", s.name,
                                    c.class_names.size(), fmt::join(c.class_names, ", "), classes, names.size()));
        c.class_names = names;
    }
    s.classes = static_cast<int64_t>(c.class_names.size());
}

int64_t Segmenter::num_classes() const { return impl_->classes; }
const SegmentModelCard& Segmenter::card() const { return impl_->card; }

std::vector<float> Segmenter::probabilities(const cv::Mat& rgb, const SegmentOptions& o,
                                            const std::string& source) const {
    if (rgb.type() != CV_8UC3 || rgb.empty())
        throw Error(fmt::format("{}: expected an RGB image (CV_8UC3), got type {}", source, rgb.type()));
    torch::NoGradGuard no_grad;
    const Impl& s = *impl_;
    const int64_t h = rgb.rows, w = rgb.cols;
    torch::Tensor sum;
    int views = 0;
    for (double scale : o.scales) {
        cv::Mat scaled = rgb;
        if (scale != 1.0) {
            const int sh = std::max(1, static_cast<int>(std::lround(h * scale)));
            const int sw = std::max(1, static_cast<int>(std::lround(w * scale)));
            cv::resize(rgb, scaled, cv::Size(sw, sh), 0, 0, scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
        }
        torch::Tensor x = detail::normalise_image(scaled, s.card.mean, s.card.std).unsqueeze(0);
        for (int flip = 0; flip <= (o.flip ? 1 : 0); ++flip) {
            torch::Tensor view = flip ? x.flip({3}) : x;
            torch::Tensor p = torch::softmax(s.logits(view, o, source), 1);
            if (flip) p = p.flip({3});
            if (scale != 1.0)
                p = torch::upsample_bilinear2d(p, {h, w}, /*align_corners=*/false);
            sum = sum.defined() ? sum + p : p;
            ++views;
        }
    }
    torch::Tensor mean = (sum / views).squeeze(0).contiguous();
    if (impl_->classes == 0) impl_->classes = mean.size(0);
    return std::vector<float>(mean.data_ptr<float>(), mean.data_ptr<float>() + mean.numel());
}

cv::Mat Segmenter::segment(const cv::Mat& rgb, const SegmentOptions& o, const std::string& source,
                           std::vector<float>* probabilities_out) const {
    std::vector<float> p = probabilities(rgb, o, source);
    const int k = static_cast<int>(p.size() / rgb.total());
    if (o.crf) {
        DenseCrf crf(o.crf_options);
        crf.set_image(rgb);
        p = crf.infer(unary_from_probabilities(p), k);
    }
    cv::Mat labels = labels_from_q(p.data(), k, rgb.rows, rgb.cols);
    if (probabilities_out) *probabilities_out = std::move(p);
    return labels;
}

SegmentSummary segment_images(const SegmentOptions& o, const std::function<void(std::size_t, std::size_t)>& progress) {
    validate(o);
    if (o.out.empty()) throw UsageError("--out is required");
    if (!fs::exists(o.input)) throw Error(fmt::format("{}: no such image or folder (--input)", o.input.string()));
    const std::vector<fs::path> inputs = list_inputs(o.input, /*accept_npy=*/false);
    if (inputs.empty()) throw Error(fmt::format("{}: no images found", o.input.string()));
    const Segmenter segmenter(o.model, o.classes);
    check_writable_dir(o.out);  // created with its first file: a failed first image leaves nothing
    const auto started = std::chrono::steady_clock::now();
    SegmentSummary summary;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const fs::path& path = inputs[i];
        const cv::Mat rgb = read_image_rgb(path).rgb;
        std::vector<float> probs;
        const cv::Mat labels = segmenter.segment(rgb, o, path.string(), o.probabilities ? &probs : nullptr);
        const std::string stem = path.stem().string();
        write_palette_png(o.out / (stem + ".png"), labels);
        if (o.overlay) {
            cv::Mat colours(labels.size(), CV_8UC3);
            for (int y = 0; y < labels.rows; ++y)
                for (int x = 0; x < labels.cols; ++x) {
                    auto c = voc_color(labels.at<uint8_t>(y, x));
                    colours.at<cv::Vec3b>(y, x) = {c[0], c[1], c[2]};
                }
            cv::Mat blended;
            cv::addWeighted(rgb, 0.5, colours, 0.5, 0.0, blended);
            write_image_rgb(o.out / (stem + "_overlay.png"), blended);
        }
        if (o.probabilities) {
            const int64_t k = static_cast<int64_t>(probs.size() / labels.total());
            write_npy_f32(o.out / (stem + ".npy"), {k, labels.rows, labels.cols}, probs.data());
        }
        summary.written.push_back(o.out / (stem + ".png"));
        ++summary.images;
        if (progress) progress(i + 1, inputs.size());
    }
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return summary;
}

}  // namespace sightline
