// VGG-style plain CNN (Simonyan & Zisserman 2015): stages of conv3x3-BN-ReLU, 2x2 max pooling
// between stages, no skip connections; widths w, 2w, 4w, 8w. Output stride 8 (three pools) or
// 16 (the first conv also strides by 2).
#include <fmt/format.h>

#include "model/architectures/layers.hpp"
#include "sightline/architectures.hpp"

namespace sightline::detail {
namespace {

using torch::jit::Module;

// `depth` pairs of conv-BN-ReLU, as many convs as the same number of ResNet basic blocks.
Module vgg_stage(ModuleFactory& f, int64_t depth, int64_t in_channels, int64_t out_channels,
                 bool pool_first, int64_t first_stride) {
    Module layer = f.make("VggStage");
    std::string body = "def forward(self, x):\n";
    if (pool_first) body += "    x = torch.max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], True)\n";
    for (int64_t i = 0; i < 2 * depth; ++i) {
        layer.register_module(fmt::format("conv{}", i),
                              f.conv(i == 0 ? in_channels : out_channels, out_channels, 3,
                                     i == 0 ? first_stride : 1, 1));
        layer.register_module(fmt::format("bn{}", i), f.norm(out_channels));
        body += fmt::format("    x = torch.relu(self.bn{0}.forward(self.conv{0}.forward(x)))\n", i);
    }
    layer.define(body + "    return x\n");
    return layer;
}

}  // namespace

Module build_vgg(const ArchOptions& o, int head, const std::string& name) {
    ModuleFactory f(o.seed, o.norm);
    Module model = f.make("Vgg");
    int64_t channels = 3;
    for (int s = 0; s < 4; ++s) {
        int64_t out = o.width << s;
        int64_t first_stride = (s == 0 && o.output_stride == 16) ? 2 : 1;
        const bool pooled = s > 0 && !(s == 3 && o.output_stride == 4);  // stride 4: layer4 keeps layer3's size
        model.register_module(fmt::format("layer{}", s + 1),
                              vgg_stage(f, o.depth[s], channels, out, pooled, first_stride));
        channels = out;
    }
    model.define(R"py(
def features(self, x):
    return self.layer4.forward(self.layer3.forward(self.layer2.forward(self.layer1.forward(x))))
)py");
    HeadSpec spec{name,          head,           channels, feature_side(o), o.input_size,
                  o.output_stride, o.num_classes, o.hidden};
    add_head(f, model, spec);
    return model;
}

}  // namespace sightline::detail
