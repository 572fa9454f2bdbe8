// Pseudo-masks: seeds, optionally refined by the dense CRF (notes/wsss.md 1.5, 5.6).
#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "sightline/wsss.hpp"

namespace sightline {

void validate(const PseudoOptions& o) {
    validate(o.seeds);
    if (o.unary != "labels" && o.unary != "probs")
        throw UsageError(fmt::format("--unary: expected labels or probs, got '{}'", o.unary));
    if (!(o.confidence > 0.f && o.confidence < 1.f))
        throw UsageError(fmt::format("--confidence: must be in (0, 1), got {}", o.confidence));
    if (!(o.min_confidence >= 0.0 && o.min_confidence < 1.0))
        throw UsageError(fmt::format("--min-confidence: must be in [0, 1), got {}", o.min_confidence));
    if (o.crf) validate(o.crf_options);
}

namespace {

// Indices into [bg, keys...] for one background rule, refined by the CRF when asked; 255 where
// the CRF's marginal of the chosen label stays below min_confidence.
cv::Mat label_indices(const cv::Mat& rgb, const torch::Tensor& cams, const BackgroundRule& rule,
                      const PseudoOptions& o, DenseCrf* crf) {
    cv::Mat indices = seed_indices(cams, rule);
    const int labels = static_cast<int>(cams.size(0)) + 1;
    if (!o.crf || labels < 2) return indices;
    std::vector<float> unary;
    if (o.unary == "labels") {
        // IRN / Puzzle-CAM crf_inference_label: the seed label with probability gt_prob.
        unary = unary_from_labels(indices, labels, o.confidence);
    } else {
        // PSA crf_inference: -log of [bg, CAMs], here rescaled to sum 1 per pixel.
        torch::Tensor stack = torch::cat({background_score(cams, rule).unsqueeze(0), cams}, 0);
        stack = (stack / stack.sum(0, true).clamp_min(1e-12)).contiguous();
        std::vector<float> p(stack.data_ptr<float>(), stack.data_ptr<float>() + stack.numel());
        unary = unary_from_probabilities(p);
    }
    std::vector<float> q = crf->infer(unary, labels);
    const int h = rgb.rows, w = rgb.cols;
    cv::Mat refined = labels_from_q(q.data(), labels, h, w);
    if (o.min_confidence > 0.0) {
        const std::size_t plane = static_cast<std::size_t>(h) * w;
        for (int r = 0; r < h; ++r) {
            uint8_t* row = refined.ptr<uint8_t>(r);
            for (int c = 0; c < w; ++c) {
                std::size_t i = static_cast<std::size_t>(r) * w + c;
                if (q[row[c] * plane + i] < o.min_confidence) row[c] = 255;
            }
        }
    }
    return refined;
}

}  // namespace

cv::Mat make_pseudo_mask(const cv::Mat& rgb, const torch::Tensor& cams, const std::vector<int>& keys,
                         const PseudoOptions& o, DenseCrf* crf) {
    if (cams.dim() != 3 || cams.size(1) != rgb.rows || cams.size(2) != rgb.cols)
        throw Error(fmt::format("pseudo-mask: the image is {} x {} (H x W) but the CAMs are {}", rgb.rows, rgb.cols,
                                c10::str(cams.sizes())));
    if (static_cast<int64_t>(keys.size()) != cams.size(0))
        throw Error(fmt::format("pseudo-mask: {} maps for {} labelled classes", cams.size(0), keys.size()));
    if (o.crf && !keys.empty()) {
        if (!crf) throw Error("pseudo-mask: the CRF is on but no DenseCrf was given");
        crf->set_image(rgb);
    }
    cv::Mat indices;
    if (!o.seeds.confident()) {
        indices = label_indices(rgb, cams, o.seeds.background, o, crf);
    } else {
        // IRN cam_to_ir_label: sure foreground from the high threshold, sure background from the low.
        BackgroundRule fg{BackgroundRule::Kind::kThreshold, o.seeds.confident_fg};
        BackgroundRule bg{BackgroundRule::Kind::kThreshold, o.seeds.confident_bg};
        cv::Mat f = label_indices(rgb, cams, fg, o, crf), b = label_indices(rgb, cams, bg, o, crf);
        // A pixel the CRF left uncertain in the background map cannot count as sure background.
        indices = confident_labels(f, b);
    }
    cv::Mat lut(1, 256, CV_8UC1, cv::Scalar(255));
    lut.at<uint8_t>(0) = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) lut.at<uint8_t>(static_cast<int>(i + 1)) = static_cast<uint8_t>(keys[i]);
    cv::Mat out;
    cv::LUT(indices, lut, out);
    return out;
}

}  // namespace sightline
