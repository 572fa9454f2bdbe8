// Seed rules on image CAMs: background score, argmax seeds, confident regions
// (notes/wsss.md 1.4, 1.5).
#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "sightline/wsss.hpp"

namespace sightline {

namespace {

void check_cams(const torch::Tensor& cams) {
    if (cams.dim() != 3 || cams.scalar_type() != torch::kFloat32)
        throw Error(fmt::format("CAMs: expected float32 [n,H,W], got {}-D {}", cams.dim(),
                                std::string(c10::toString(cams.scalar_type()))));
}

// [H,W] int64 -> CV_8UC1, mapping index i to lut[i].
cv::Mat to_mat(const torch::Tensor& index, const std::vector<uint8_t>& lut) {
    torch::Tensor idx = index.contiguous();
    cv::Mat out(static_cast<int>(idx.size(0)), static_cast<int>(idx.size(1)), CV_8UC1);
    const int64_t* p = idx.data_ptr<int64_t>();
    for (int r = 0; r < out.rows; ++r) {
        uint8_t* row = out.ptr<uint8_t>(r);
        for (int c = 0; c < out.cols; ++c) row[c] = lut[static_cast<std::size_t>(p[r * out.cols + c])];
    }
    return out;
}

// [bg, cams] -> argmax index per pixel (first maximum: the background wins ties).
torch::Tensor argmax_with_background(const torch::Tensor& cams, const BackgroundRule& rule) {
    check_cams(cams);
    torch::Tensor stack = torch::cat({background_score(cams, rule).unsqueeze(0), cams}, 0);
    return stack.argmax(0);
}

}  // namespace

BackgroundRule BackgroundRule::parse(const std::string& text) {
    auto fail = [&] {
        return UsageError(fmt::format("--bg: expected thresh:T (0 < T < 1) or power:ALPHA (ALPHA > 0), got '{}'", text));
    };
    std::size_t colon = text.find(':');
    if (colon == std::string::npos) throw fail();
    BackgroundRule rule;
    std::string kind = text.substr(0, colon), number = text.substr(colon + 1);
    if (kind == "thresh") rule.kind = Kind::kThreshold;
    else if (kind == "power") rule.kind = Kind::kPower;
    else throw fail();
    try {
        std::size_t used = 0;
        rule.value = std::stod(number, &used);
        if (used != number.size()) throw fail();
    } catch (const std::logic_error&) {
        throw fail();
    }
    if (!std::isfinite(rule.value) || rule.value <= 0 || (rule.kind == Kind::kThreshold && rule.value >= 1))
        throw fail();
    return rule;
}

std::string BackgroundRule::to_string() const {
    return fmt::format("{}:{:g}", kind == Kind::kThreshold ? "thresh" : "power", value);
}

torch::Tensor background_score(const torch::Tensor& cams, const BackgroundRule& rule) {
    check_cams(cams);
    if (rule.kind == BackgroundRule::Kind::kThreshold)
        return torch::full({cams.size(1), cams.size(2)}, static_cast<float>(rule.value), torch::kFloat32);
    // PSA: bg = (1 - max_c CAM_c)^alpha; without a labelled class the max is 0.
    torch::Tensor top = cams.size(0) > 0 ? std::get<0>(cams.max(0))
                                         : torch::zeros({cams.size(1), cams.size(2)}, torch::kFloat32);
    return (1.0 - top).clamp_min(0.0).pow(rule.value);
}

cv::Mat seed_indices(const torch::Tensor& cams, const BackgroundRule& rule) {
    std::vector<uint8_t> lut(static_cast<std::size_t>(cams.size(0)) + 1);
    for (std::size_t i = 0; i < lut.size(); ++i) lut[i] = static_cast<uint8_t>(i);
    return to_mat(argmax_with_background(cams, rule), lut);
}

cv::Mat seed_labels(const torch::Tensor& cams, const std::vector<int>& keys, const BackgroundRule& rule) {
    check_cams(cams);
    if (static_cast<int64_t>(keys.size()) != cams.size(0))
        throw Error(fmt::format("CAMs: {} maps for {} labelled classes", cams.size(0), keys.size()));
    std::vector<uint8_t> lut{0};
    for (int k : keys) lut.push_back(static_cast<uint8_t>(k));
    return to_mat(argmax_with_background(cams, rule), lut);
}

cv::Mat confident_labels(const cv::Mat& fg, const cv::Mat& bg) {
    if (fg.size() != bg.size() || fg.type() != CV_8UC1 || bg.type() != CV_8UC1)
        throw Error("confident regions: the two label maps differ in size or type");
    cv::Mat out = fg.clone();
    for (int r = 0; r < out.rows; ++r) {
        uint8_t* o = out.ptr<uint8_t>(r);
        const uint8_t* b = bg.ptr<uint8_t>(r);
        for (int c = 0; c < out.cols; ++c)
            if (o[c] == 0 && b[c] != 0) o[c] = 255;  // foreground not sure, background not sure
    }
    return out;
}

void validate(const SeedOptions& o) {
    if (o.confident_fg == 0.0 && o.confident_bg == 0.0) return;
    if (!(o.confident_fg > o.confident_bg && o.confident_bg > 0.0 && o.confident_fg < 1.0))
        throw UsageError(fmt::format("--confident: expected FG,BG with 0 < BG < FG < 1, got {:g},{:g}",
                                     o.confident_fg, o.confident_bg));
}

cv::Mat make_seeds(const torch::Tensor& cams, const std::vector<int>& keys, const SeedOptions& options) {
    if (!options.confident()) return seed_labels(cams, keys, options.background);
    BackgroundRule fg{BackgroundRule::Kind::kThreshold, options.confident_fg};
    BackgroundRule bg{BackgroundRule::Kind::kThreshold, options.confident_bg};
    return confident_labels(seed_labels(cams, keys, fg), seed_labels(cams, keys, bg));
}

}  // namespace sightline
