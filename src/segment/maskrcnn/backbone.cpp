// backbone.body (torchvision's ResNet without avgpool/fc, FrozenBatchNorm2d everywhere) and
// backbone.fpn (FeaturePyramidNetwork + LastLevelMaxPool), as resnet_fpn_backbone builds them.
#include <fmt/format.h>

#include "segment/maskrcnn/parts.hpp"
#include "sightline/core.hpp"

namespace sightline::maskrcnn {

namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

// BatchNorm with constant statistics and affine (buffers, not parameters), torchvision's
// FrozenBatchNorm2d: y = x * (w / sqrt(var + eps)) + (b - mean * w / sqrt(var + eps)).
struct FrozenBatchNorm2dImpl : nn::Module {
    explicit FrozenBatchNorm2dImpl(int64_t channels) {
        weight = register_buffer("weight", torch::ones({channels}));
        bias = register_buffer("bias", torch::zeros({channels}));
        running_mean = register_buffer("running_mean", torch::zeros({channels}));
        running_var = register_buffer("running_var", torch::ones({channels}));
    }
    torch::Tensor forward(const torch::Tensor& x) {
        const torch::Tensor scale = weight.reshape({1, -1, 1, 1}) * (running_var.reshape({1, -1, 1, 1}) + 1e-5).rsqrt();
        const torch::Tensor shift = bias.reshape({1, -1, 1, 1}) - running_mean.reshape({1, -1, 1, 1}) * scale;
        return x * scale + shift;
    }
    torch::Tensor weight, bias, running_mean, running_var;
};
TORCH_MODULE(FrozenBatchNorm2d);

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool bias) {
    return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(bias));
}

// A residual block (BasicBlock or Bottleneck, torchvision's ResNet v1.5: stride on the 3x3 conv).
struct ResidualBlockImpl : nn::Module {
    ResidualBlockImpl(bool bottleneck, int64_t inplanes, int64_t planes, int64_t stride) : bottleneck_(bottleneck) {
        const int64_t out = planes * (bottleneck ? 4 : 1);
        if (bottleneck) {
            conv1 = register_module("conv1", conv(inplanes, planes, 1, 1, 0, false));
            bn1 = register_module("bn1", FrozenBatchNorm2d(planes));
            conv2 = register_module("conv2", conv(planes, planes, 3, stride, 1, false));
            bn2 = register_module("bn2", FrozenBatchNorm2d(planes));
            conv3 = register_module("conv3", conv(planes, out, 1, 1, 0, false));
            bn3 = register_module("bn3", FrozenBatchNorm2d(out));
        } else {
            conv1 = register_module("conv1", conv(inplanes, planes, 3, stride, 1, false));
            bn1 = register_module("bn1", FrozenBatchNorm2d(planes));
            conv2 = register_module("conv2", conv(planes, planes, 3, 1, 1, false));
            bn2 = register_module("bn2", FrozenBatchNorm2d(planes));
        }
        if (stride != 1 || inplanes != out) {
            downsample = register_module("downsample", nn::Sequential(conv(inplanes, out, 1, stride, 0, false),
                                                                      FrozenBatchNorm2d(out)));
        }
    }
    torch::Tensor forward(const torch::Tensor& x) {
        torch::Tensor y = torch::relu(bn1(conv1(x)));
        y = bn2(conv2(y));
        if (bottleneck_) y = bn3(conv3(torch::relu(y)));
        const torch::Tensor identity = downsample.is_empty() ? x : downsample->forward(x);
        return torch::relu(y + identity);
    }
    bool bottleneck_;
    nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
    FrozenBatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
    nn::Sequential downsample{nullptr};
};
TORCH_MODULE(ResidualBlock);

struct ResNetBodyImpl : nn::Module {
    explicit ResNetBodyImpl(int64_t depth) {
        std::vector<int64_t> blocks;
        if (depth == 18) blocks = {2, 2, 2, 2};
        else if (depth == 34 || depth == 50) blocks = {3, 4, 6, 3};
        else throw UsageError(fmt::format("Mask R-CNN: ResNet depth should be 18, 34 or 50, got {}", depth));
        const bool bottleneck = depth == 50;
        conv1 = register_module("conv1", conv(3, 64, 7, 2, 3, false));
        bn1 = register_module("bn1", FrozenBatchNorm2d(64));
        int64_t inplanes = 64;
        for (int stage = 0; stage < 4; ++stage) {
            const int64_t planes = 64 << stage;
            nn::Sequential layer;
            for (int64_t b = 0; b < blocks[stage]; ++b) {
                layer->push_back(ResidualBlock(bottleneck, inplanes, planes, b == 0 && stage > 0 ? 2 : 1));
                inplanes = planes * (bottleneck ? 4 : 1);
            }
            layers.push_back(register_module(fmt::format("layer{}", stage + 1), layer));
            out_channels.push_back(inplanes);
        }
        // torchvision's ResNet init (kaiming_normal_ fan_out for convs; frozen BN is identity).
        for (auto& p : named_parameters())
            if (p.value().dim() == 4) nn::init::kaiming_normal_(p.value(), 0, torch::kFanOut, torch::kReLU);
    }
    // C2..C5 (layer1..layer4 outputs).
    std::vector<torch::Tensor> forward(const torch::Tensor& x) {
        torch::Tensor y = F::max_pool2d(torch::relu(bn1(conv1(x))), F::MaxPool2dFuncOptions(3).stride(2).padding(1));
        std::vector<torch::Tensor> out;
        for (auto& layer : layers) {
            y = layer->forward(y);
            out.push_back(y);
        }
        return out;
    }
    nn::Conv2d conv1{nullptr};
    FrozenBatchNorm2d bn1{nullptr};
    std::vector<nn::Sequential> layers;
    std::vector<int64_t> out_channels;
};

// FeaturePyramidNetwork: inner_blocks.i.0 (1x1 lateral), layer_blocks.i.0 (3x3 output), top-down
// nearest upsampling to each lateral's size; LastLevelMaxPool adds 'pool' = max_pool(P5, 1, 2).
struct FPNImpl : nn::Module {
    explicit FPNImpl(const std::vector<int64_t>& in_channels, int64_t out_channels = 256) {
        inner_blocks = register_module("inner_blocks", nn::ModuleList());
        layer_blocks = register_module("layer_blocks", nn::ModuleList());
        for (int64_t in : in_channels) {
            inner_blocks->push_back(nn::Sequential(conv(in, out_channels, 1, 1, 0, true)));
            layer_blocks->push_back(nn::Sequential(conv(out_channels, out_channels, 3, 1, 1, true)));
        }
        for (auto& p : named_parameters()) {
            if (p.value().dim() == 4) nn::init::kaiming_uniform_(p.value(), 1);
            else nn::init::zeros_(p.value());
        }
    }
    torch::Tensor inner(size_t i, const torch::Tensor& x) { return inner_blocks[i]->as<nn::Sequential>()->forward(x); }
    torch::Tensor layer(size_t i, const torch::Tensor& x) { return layer_blocks[i]->as<nn::Sequential>()->forward(x); }
    std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& c) {
        const size_t n = c.size();
        std::vector<torch::Tensor> results(n);
        torch::Tensor last_inner = inner(n - 1, c[n - 1]);
        results[n - 1] = layer(n - 1, last_inner);
        for (size_t i = n - 1; i-- > 0;) {
            const torch::Tensor lateral = inner(i, c[i]);
            const torch::Tensor top_down = F::interpolate(
                last_inner, F::InterpolateFuncOptions()
                                .size(std::vector<int64_t>{lateral.size(2), lateral.size(3)})
                                .mode(torch::kNearest));
            last_inner = lateral + top_down;
            results[i] = layer(i, last_inner);
        }
        results.push_back(F::max_pool2d(results.back(), F::MaxPool2dFuncOptions(1).stride(2).padding(0)));
        return results;
    }
    nn::ModuleList inner_blocks{nullptr}, layer_blocks{nullptr};
};

}  // namespace

BackboneImpl::BackboneImpl(int64_t depth, int64_t trainable_layers) {
    auto resnet = std::make_shared<ResNetBodyImpl>(depth);
    body = register_module("body", resnet);
    fpn = register_module("fpn", std::make_shared<FPNImpl>(resnet->out_channels));
    // resnet_fpn_backbone's trainable_layers: the last k of layer4, layer3, layer2, layer1, conv1
    // (and bn1 with 5) keep gradients; frozen batch norms have no parameters anyway.
    const std::vector<std::string> order = {"layer4", "layer3", "layer2", "layer1", "conv1", "bn1"};
    std::vector<std::string> trained(order.begin(), order.begin() + std::min<int64_t>(trainable_layers, 5));
    if (trainable_layers == 5) trained.push_back("bn1");
    for (auto& p : body->named_parameters()) {
        bool keep = false;
        for (const auto& prefix : trained) keep = keep || p.key().rfind(prefix, 0) == 0;
        p.value().set_requires_grad(keep);
    }
}

std::vector<torch::Tensor> BackboneImpl::forward(const torch::Tensor& x) {
    return fpn->as<FPNImpl>()->forward(body->as<ResNetBodyImpl>()->forward(x));
}

}  // namespace sightline::maskrcnn
