// GeneralizedRCNNTransform (normalise, resize, batch) and its post-processing half: boxes back to
// the input size and paste_masks_in_image, following torchvision's transform.py / roi_heads.py.
#include <cmath>

#include <fmt/format.h>

#include "segment/maskrcnn/parts.hpp"
#include "sightline/core.hpp"

namespace sightline::maskrcnn {

namespace F = torch::nn::functional;

namespace {

torch::Tensor normalise(const torch::Tensor& image, const MaskRCNNConfig& config) {
    const torch::Tensor mean = torch::tensor({config.image_mean[0], config.image_mean[1], config.image_mean[2]});
    const torch::Tensor std = torch::tensor({config.image_std[0], config.image_std[1], config.image_std[2]});
    return (image - mean.view({3, 1, 1})) / std.view({3, 1, 1});
}

// The output size: the short side to min_size unless the long side would pass max_size. The
// scale is computed in float32 as torchvision does (a Python number divided by a float32 tensor
// is reciprocal() times the number), and the size is floor(size * scale) in double, as
// interpolate's recompute_scale_factor=True computes it.
std::pair<int64_t, int64_t> resized_size(int64_t h, int64_t w, int64_t min_size, const MaskRCNNConfig& config) {
    const torch::Tensor short_side = torch::tensor(static_cast<float>(std::min(h, w)));
    const torch::Tensor long_side = torch::tensor(static_cast<float>(std::max(h, w)));
    const torch::Tensor scale = torch::min(short_side.reciprocal() * static_cast<double>(min_size),
                                           long_side.reciprocal() * static_cast<double>(config.max_size));
    const double s = scale.item<double>();
    const auto out_h = static_cast<int64_t>(std::floor(static_cast<double>(h) * s));
    const auto out_w = static_cast<int64_t>(std::floor(static_cast<double>(w) * s));
    if (out_h < 1 || out_w < 1)
        throw Error(fmt::format("Mask R-CNN: a {}x{} image resizes to {}x{} pixels (min_size {}, max_size {})", h, w,
                                out_h, out_w, min_size, config.max_size));
    return {out_h, out_w};
}

torch::Tensor interpolate_to(const torch::Tensor& x, std::pair<int64_t, int64_t> size, bool bilinear) {
    auto options = F::InterpolateFuncOptions().size(std::vector<int64_t>{size.first, size.second});
    if (bilinear) options.mode(torch::kBilinear).align_corners(false);
    else options.mode(torch::kNearest);
    return F::interpolate(x, options);
}

// The target's boxes and masks follow its image (masks by nearest neighbour, as torchvision).
InstanceTarget resize_target(const InstanceTarget& t, size_t i, std::pair<int64_t, int64_t> from,
                             std::pair<int64_t, int64_t> to) {
    const int64_t g = t.boxes.defined() ? t.boxes.size(0) : -1;
    if (g < 0 || t.boxes.dim() != 2 || t.boxes.size(1) != 4 || !t.labels.defined() || t.labels.dim() != 1 ||
        t.labels.size(0) != g || !t.masks.defined() || t.masks.dim() != 3 || t.masks.size(0) != g ||
        t.masks.size(1) != from.first || t.masks.size(2) != from.second)
        throw Error(fmt::format("Mask R-CNN: target {} should have boxes [G,4], labels [G] and masks [G,{},{}] (its "
                                "image's size)",
                                i, from.first, from.second));
    const torch::Tensor boxes = t.boxes.to(torch::kFloat);
    const torch::Tensor bad = (boxes.select(1, 2) <= boxes.select(1, 0)) | (boxes.select(1, 3) <= boxes.select(1, 1));
    if (bad.any().item<bool>())
        throw Error(fmt::format("Mask R-CNN: target {} has a box of zero or negative width or height (box {})", i,
                                torch::where(bad)[0][0].item<int64_t>()));
    InstanceTarget out;
    out.boxes = resize_boxes(boxes, from, to);
    out.labels = t.labels.to(torch::kLong);
    out.masks = g == 0 ? torch::zeros({0, to.first, to.second}, torch::kByte)
                       : interpolate_to(t.masks.unsqueeze(1).to(torch::kFloat), to, false).select(1, 0).to(torch::kByte);
    return out;
}

}  // namespace

ImageBatch transform_images(const std::vector<torch::Tensor>& images, const MaskRCNNConfig& config,
                            const std::vector<InstanceTarget>* targets) {
    if (images.empty()) throw Error("Mask R-CNN: no images to detect in");
    if (targets && targets->size() != images.size())
        throw Error(fmt::format("Mask R-CNN: {} targets for {} images", targets->size(), images.size()));
    std::vector<torch::Tensor> resized;
    ImageBatch batch;
    int64_t max_h = 0, max_w = 0;
    for (size_t i = 0; i < images.size(); ++i) {
        const torch::Tensor& image = images[i];
        if (!image.defined() || image.dim() != 3 || image.size(0) != 3 || !image.is_floating_point())
            throw Error(fmt::format("Mask R-CNN: image {} should be a [3,H,W] floating-point tensor, got {}", i,
                                    image.defined() ? fmt::format("[{}]", fmt::join(image.sizes(), ",")) : "none"));
        // torchvision draws a random min_size in training even when there is only one:
        // k[int(uniform(0, len(k)))].
        int64_t min_size = config.min_size;
        if (targets) {
            const std::vector<int64_t>& choices =
                config.train_min_sizes.empty() ? std::vector<int64_t>{config.min_size} : config.train_min_sizes;
            const double draw = torch::empty({1}).uniform_(0.0, static_cast<double>(choices.size())).item<double>();
            min_size = choices[std::min(choices.size() - 1, static_cast<std::size_t>(draw))];
        }
        const std::pair<int64_t, int64_t> original{image.size(1), image.size(2)};
        const std::pair<int64_t, int64_t> size = resized_size(original.first, original.second, min_size, config);
        resized.push_back(interpolate_to(normalise(image.to(torch::kFloat), config).unsqueeze(0), size, true)[0]);
        if (targets) batch.targets.push_back(resize_target((*targets)[i], i, original, size));
        batch.sizes.push_back(size);
        max_h = std::max(max_h, resized.back().size(1));
        max_w = std::max(max_w, resized.back().size(2));
    }
    const auto round_up = [](int64_t v) { return (v + 31) / 32 * 32; };
    batch.tensors = torch::zeros({static_cast<int64_t>(images.size()), 3, round_up(max_h), round_up(max_w)});
    for (size_t i = 0; i < resized.size(); ++i) {
        using torch::indexing::Slice;
        batch.tensors[static_cast<int64_t>(i)]
            .index({Slice(), Slice(0, resized[i].size(1)), Slice(0, resized[i].size(2))})
            .copy_(resized[i]);
    }
    return batch;
}

torch::Tensor resize_boxes(const torch::Tensor& boxes, std::pair<int64_t, int64_t> from, std::pair<int64_t, int64_t> to) {
    const torch::Tensor ratio_h = torch::tensor(static_cast<float>(to.first)) / torch::tensor(static_cast<float>(from.first));
    const torch::Tensor ratio_w = torch::tensor(static_cast<float>(to.second)) / torch::tensor(static_cast<float>(from.second));
    return torch::stack({boxes.select(1, 0) * ratio_w, boxes.select(1, 1) * ratio_h, boxes.select(1, 2) * ratio_w,
                         boxes.select(1, 3) * ratio_h},
                        1);
}

}  // namespace sightline::maskrcnn

namespace sightline {

namespace F = torch::nn::functional;

torch::Tensor paste_masks_in_image(const torch::Tensor& masks, const torch::Tensor& boxes, int64_t height,
                                   int64_t width, int64_t padding) {
    if (masks.dim() != 4 || masks.size(1) != 1 || masks.size(2) != masks.size(3) || boxes.dim() != 2 ||
        boxes.size(1) != 4 || boxes.size(0) != masks.size(0))
        throw Error(fmt::format("paste_masks_in_image: masks should be [K,1,M,M] and boxes [K,4], got [{}] and [{}]",
                                fmt::join(masks.sizes(), ","), fmt::join(boxes.sizes(), ",")));
    const int64_t m = masks.size(3);
    const torch::Tensor padded = F::pad(masks, F::PadFuncOptions({padding, padding, padding, padding}));
    // expand_boxes: about the centre by (M + 2 padding) / M, then truncated to integers.
    const double scale = static_cast<double>(m + 2 * padding) / static_cast<double>(m);
    torch::Tensor w_half = (boxes.select(1, 2) - boxes.select(1, 0)) * 0.5;
    torch::Tensor h_half = (boxes.select(1, 3) - boxes.select(1, 1)) * 0.5;
    const torch::Tensor x_c = (boxes.select(1, 2) + boxes.select(1, 0)) * 0.5;
    const torch::Tensor y_c = (boxes.select(1, 3) + boxes.select(1, 1)) * 0.5;
    w_half = w_half * scale;
    h_half = h_half * scale;
    const torch::Tensor expanded = torch::stack({x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half}, 1).to(torch::kLong);

    torch::Tensor out = torch::zeros({masks.size(0), 1, height, width}, masks.options());
    const auto box = expanded.accessor<int64_t, 2>();
    for (int64_t k = 0; k < masks.size(0); ++k) {
        const int64_t x0 = box[k][0], y0 = box[k][1], x1 = box[k][2], y1 = box[k][3];
        const int64_t w = std::max<int64_t>(x1 - x0 + 1, 1), h = std::max<int64_t>(y1 - y0 + 1, 1);
        const torch::Tensor resized = F::interpolate(padded.slice(0, k, k + 1), F::InterpolateFuncOptions()
                                                                                   .size(std::vector<int64_t>{h, w})
                                                                                   .mode(torch::kBilinear)
                                                                                   .align_corners(false))[0][0];
        const int64_t left = std::max<int64_t>(x0, 0), right = std::min<int64_t>(x1 + 1, width);
        const int64_t top = std::max<int64_t>(y0, 0), bottom = std::min<int64_t>(y1 + 1, height);
        if (right <= left || bottom <= top) continue;
        using torch::indexing::Slice;
        out[k][0].index({Slice(top, bottom), Slice(left, right)})
            .copy_(resized.index({Slice(top - y0, bottom - y0), Slice(left - x0, right - x0)}));
    }
    return out;
}

}  // namespace sightline
