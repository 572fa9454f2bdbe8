// ResNet-style backbone (He et al. 2016, basic blocks) sized for small images on a CPU:
// stem 3x3/2, four stages of width w, 2w, 4w, 8w; output stride 8 (stage 4 keeps the
// resolution) or 16.
#include <fmt/format.h>

#include "model/architectures/layers.hpp"
#include "sightline/architectures.hpp"

namespace sightline::detail {
namespace {

using torch::jit::Module;

Module basic_block(ModuleFactory& f, int64_t in_channels, int64_t out_channels, int64_t stride) {
    Module block = f.make("BasicBlock");
    block.register_module("conv1", f.conv(in_channels, out_channels, 3, stride, 1));
    block.register_module("bn1", f.norm(out_channels));
    block.register_module("conv2", f.conv(out_channels, out_channels, 3, 1, 1));
    block.register_module("bn2", f.norm(out_channels));
    std::string shortcut = "x";
    if (stride != 1 || in_channels != out_channels) {
        // Projection shortcut (option B of the paper) where the shape changes.
        block.register_module("downsample_conv", f.conv(in_channels, out_channels, 1, stride, 0));
        block.register_module("downsample_bn", f.norm(out_channels));
        shortcut = "self.downsample_bn.forward(self.downsample_conv.forward(x))";
    }
    block.define(fmt::format(R"py(
def forward(self, x):
    out = torch.relu(self.bn1.forward(self.conv1.forward(x)))
    out = self.bn2.forward(self.conv2.forward(out))
    return torch.relu(out + {})
)py",
                             shortcut));
    return block;
}

Module stage(ModuleFactory& f, int64_t blocks, int64_t in_channels, int64_t out_channels,
             int64_t stride) {
    Module layer = f.make("Stage");
    std::string body = "def forward(self, x):\n";
    for (int64_t b = 0; b < blocks; ++b) {
        std::string name = fmt::format("block{}", b);
        layer.register_module(name, basic_block(f, b == 0 ? in_channels : out_channels,
                                                out_channels, b == 0 ? stride : 1));
        body += fmt::format("    x = self.{}.forward(x)\n", name);
    }
    layer.define(body + "    return x\n");
    return layer;
}

}  // namespace

Module resnet_stage(ModuleFactory& f, int64_t blocks, int64_t in_channels, int64_t out_channels, int64_t stride) {
    return stage(f, blocks, in_channels, out_channels, stride);
}

Module build_resnet(const ArchOptions& o, int head, const std::string& name) {
    ModuleFactory f(o.seed, o.norm);
    Module model = f.make("ResNet");
    Module stem = f.make("Stem");
    stem.register_module("conv", f.conv(3, o.width, 3, 2, 1));
    stem.register_module("bn", f.norm(o.width));
    stem.define(R"py(
def forward(self, x):
    return torch.relu(self.bn.forward(self.conv.forward(x)))
)py");
    model.register_module("stem", stem);
    // Output stride 4 keeps layer3 and layer4 at a quarter of the input side (finer CAMs for
    // weak supervision, 4x their compute); 16 halves layer4.
    const int64_t strides[4] = {1, 2, o.output_stride == 4 ? 1 : 2, o.output_stride == 16 ? 2 : 1};
    int64_t channels = o.width;
    for (int s = 0; s < 4; ++s) {
        int64_t out = o.width << s;
        model.register_module(fmt::format("layer{}", s + 1),
                              stage(f, o.depth[s], channels, out, strides[s]));
        channels = out;
    }
    model.define(R"py(
def features(self, x):
    return self.layer4.forward(self.layer3.forward(self.layer2.forward(self.layer1.forward(self.stem.forward(x)))))
)py");
    HeadSpec spec{name,          head,           channels, feature_side(o), o.input_size,
                  o.output_stride, o.num_classes, o.hidden};
    add_head(f, model, spec);
    return model;
}

}  // namespace sightline::detail
