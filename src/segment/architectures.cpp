// The segmentation architectures as TorchScript modules built in C++ (layer helpers shared
// with the classifiers in src/model/architectures), their table and the model card.
//
// unet: Ronneberger et al. 2015 with the modern changes (notes/seg.md 1.2): padded 3x3 convs
// so output size = input size, BatchNorm after every conv, `depth` 2x2 max-poolings, channels
// doubling per level; upsampling by a learned 2x2 stride-2 transposed conv (halving the
// channels, as the paper's up-conv) or by bilinear interpolation; skip concatenated before the
// two decoder convs; 1x1 conv to K logits.
// resnet_unet: the classifiers' ResNet stages as encoder (stem 3x3/2, four stages at strides
// 2, 4, 8, 16) with a U-Net decoder in the style of segmentation_models_pytorch: nearest 2x
// upsampling, concatenated skip, two Conv-BN-ReLU per level.
#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/architectures/layers.hpp"
#include "sightline/segment.hpp"

namespace sightline {

namespace {

using detail::add_parameter;
using detail::ModuleFactory;
using torch::jit::Module;

// Parameters the classifier factory does not make (biased convs, transposed convs) draw from
// their own generator so the factory's stream stays as the classifiers use it.
struct Builder {
    ModuleFactory f;
    at::Generator gen;
    Builder(uint64_t seed, Norm norm)
        : f(seed, norm), gen(at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, 0x5e9u))) {}

    Module conv_bn_relu(int64_t in, int64_t out) {
        Module m = f.make("ConvBnReLU");
        m.register_module("conv", f.conv(in, out, 3, 1, 1));
        m.register_module("bn", f.norm(out));
        m.define("def forward(self, x):\n    return torch.relu(self.bn.forward(self.conv.forward(x)))\n");
        return m;
    }
    // (Conv3x3 -> BN -> ReLU) x 2.
    Module double_conv(int64_t in, int64_t out) {
        Module m = f.make("DoubleConv");
        m.register_module("block1", conv_bn_relu(in, out));
        m.register_module("block2", conv_bn_relu(out, out));
        m.define("def forward(self, x):\n    return self.block2.forward(self.block1.forward(x))\n");
        return m;
    }
    // 1x1 conv with bias to the logits; Xavier-uniform weight, zero bias (smp's head init).
    Module head(int64_t in, int64_t classes) {
        Module m = f.make("SegmentationHead");
        const double bound = std::sqrt(6.0 / static_cast<double>(in + classes));
        add_parameter(m, "weight", torch::empty({classes, in, 1, 1}).uniform_(-bound, bound, gen));
        add_parameter(m, "bias", torch::zeros({classes}));
        m.define(R"py(
def forward(self, x):
    return torch.conv2d(x, self.weight, self.bias, [1, 1], [0, 0], [1, 1], 1)
)py");
        return m;
    }
    // U-Net decoder level: upsample x to the skip's size, concatenate [skip, up], two convs.
    Module up(int64_t in, int64_t skip, int64_t out, const std::string& mode) {
        Module m = f.make("Up");
        std::string upsample;
        int64_t up_channels = in;
        if (mode == "transposed") {
            // ConvTranspose2d(in, in/2, 2, stride 2): weight [in, in/2, 2, 2], PyTorch's default
            // uniform(+-1/sqrt(fan_in)) with fan_in = (in/2)*2*2 as torch computes it.
            up_channels = in / 2;
            const double bound = 1.0 / std::sqrt(static_cast<double>(up_channels * 4));
            add_parameter(m, "up_weight", torch::empty({in, up_channels, 2, 2}).uniform_(-bound, bound, gen));
            add_parameter(m, "up_bias", torch::empty({up_channels}).uniform_(-bound, bound, gen));
            upsample = "torch.conv_transpose2d(x, self.up_weight, self.up_bias, [2, 2], [0, 0], [0, 0], 1, [1, 1])";
        } else if (mode == "bilinear") {
            upsample = "torch.upsample_bilinear2d(x, [skip.size(2), skip.size(3)], False, None, None)";
        } else {
            upsample = "torch.upsample_nearest2d(x, [skip.size(2), skip.size(3)], None, None)";
        }
        m.register_module("conv", double_conv(up_channels + skip, out));
        m.define(fmt::format(R"py(
def forward(self, x, skip):
    u = {}
    return self.conv.forward(torch.cat([skip, u], 1))
)py",
                             upsample));
        return m;
    }
};

void check(bool ok, const std::string& message) {
    if (!ok) throw UsageError(message);
}

Module build_unet(const SegArchOptions& o) {
    Builder b(o.seed, o.norm);
    Module model = b.f.make("UNet");
    model.register_module("inc", b.double_conv(3, o.base));
    std::string body = "def forward(self, x):\n    x0 = self.inc.forward(x)\n";
    for (int64_t l = 1; l <= o.depth; ++l) {
        model.register_module(fmt::format("down{}", l), b.double_conv(o.base << (l - 1), o.base << l));
        body += fmt::format("    x{0} = self.down{0}.forward(torch.max_pool2d(x{1}, [2, 2], [2, 2], [0, 0], [1, 1], False))\n",
                            l, l - 1);
    }
    body += fmt::format("    y = x{}\n", o.depth);
    for (int64_t l = o.depth; l >= 1; --l) {
        const int64_t in = o.base << l, skip = o.base << (l - 1);
        model.register_module(fmt::format("up{}", l), b.up(in, skip, skip, o.upsample));
        body += fmt::format("    y = self.up{}.forward(y, x{})\n", l, l - 1);
    }
    model.register_module("outc", b.head(o.base, o.num_classes));
    model.define(body + "    return self.outc.forward(y)\n");
    return model;
}

int64_t unet_multiple(const SegArchOptions& o) { return int64_t{1} << o.depth; }

Module build_resnet_unet(const SegArchOptions& o) {
    Builder b(o.seed, o.norm);
    Module model = b.f.make("ResNetUNet");
    const int64_t w = o.base;
    Module stem = b.f.make("Stem");
    stem.register_module("conv", b.f.conv(3, w, 3, 2, 1));
    stem.register_module("bn", b.f.norm(w));
    stem.define("def forward(self, x):\n    return torch.relu(self.bn.forward(self.conv.forward(x)))\n");
    model.register_module("stem", stem);
    const int64_t strides[4] = {1, 2, 2, 2};
    int64_t channels = w;
    for (int s = 0; s < 4; ++s) {
        model.register_module(fmt::format("layer{}", s + 1),
                              detail::resnet_stage(b.f, o.blocks[s], channels, w << s, strides[s]));
        channels = w << s;
    }
    // Decoder: 1/16 -> 1/8 (skip layer3) -> 1/4 (layer2) -> 1/2 (layer1) -> 1/1 (the input's
    // own first features, a DoubleConv on x, as U-Net's level 0).
    model.register_module("up3", b.up(8 * w, 4 * w, 4 * w, "nearest"));
    model.register_module("up2", b.up(4 * w, 2 * w, 2 * w, "nearest"));
    model.register_module("up1", b.up(2 * w, w, w, "nearest"));
    model.register_module("full", b.double_conv(3, std::max<int64_t>(w / 2, 4)));
    model.register_module("up0", b.up(w, std::max<int64_t>(w / 2, 4), w, "nearest"));
    model.register_module("outc", b.head(w, o.num_classes));
    model.define(R"py(
def forward(self, x):
    s1 = self.layer1.forward(self.stem.forward(x))
    s2 = self.layer2.forward(s1)
    s3 = self.layer3.forward(s2)
    s4 = self.layer4.forward(s3)
    y = self.up3.forward(s4, s3)
    y = self.up2.forward(y, s2)
    y = self.up1.forward(y, s1)
    y = self.up0.forward(y, self.full.forward(x))
    return self.outc.forward(y)
)py");
    return model;
}

int64_t resnet_unet_multiple(const SegArchOptions&) { return 16; }

}  // namespace

const std::vector<SegArchInfo>& segmentation_architectures() {
    static const std::vector<SegArchInfo> table = {
        {"unet", "U-Net: padded convs + BatchNorm, --depth poolings, --base channels, --upsample", build_unet,
         unet_multiple},
        {"resnet_unet", "ResNet encoder (--blocks per stage, --base width) + U-Net decoder, nearest upsampling",
         build_resnet_unet, resnet_unet_multiple},
    };
    return table;
}

std::string segmentation_architecture_names() {
    std::string names;
    for (const SegArchInfo& a : segmentation_architectures()) names += (names.empty() ? "" : ", ") + a.name;
    return names;
}

const SegArchInfo& find_segmentation_architecture(const std::string& name) {
    for (const SegArchInfo& a : segmentation_architectures())
        if (a.name == name) return a;
    throw UsageError(fmt::format("unknown segmentation architecture '{}' (choices: {})", name,
                                 segmentation_architecture_names()));
}

torch::jit::Module build_segmentation_model(const std::string& name, const SegArchOptions& o) {
    const SegArchInfo& arch = find_segmentation_architecture(name);
    check(o.num_classes >= 2 && o.num_classes <= 255,
          fmt::format("{}: need 2..255 classes (background included), got {}", name, o.num_classes));
    check(o.base >= 2 && o.base <= 256, fmt::format("--base must be in [2, 256], got {}", o.base));
    check(o.depth >= 1 && o.depth <= 6, fmt::format("--depth must be in [1, 6], got {}", o.depth));
    check(o.upsample == "transposed" || o.upsample == "bilinear",
          fmt::format("unknown --upsample '{}' (choices: transposed, bilinear)", o.upsample));
    check(o.blocks.size() == 4, fmt::format("--blocks needs 4 numbers (blocks per stage), got {}", o.blocks.size()));
    for (int64_t n : o.blocks) check(n >= 1 && n <= 16, fmt::format("--blocks values must be in [1, 16], got {}", n));
    torch::jit::Module model = arch.build(o);
    model.train();
    return model;
}

std::string segment_model_card_json(const SegmentModelCard& card) {
    nlohmann::ordered_json j;
    j["task"] = card.task;
    j["arch"] = card.arch;
    j["input_size"] = card.input_size;
    j["size_multiple"] = card.size_multiple;
    j["class_names"] = card.class_names;
    j["mean"] = card.mean;
    j["std"] = card.std;
    return j.dump(2) + "\n";
}

void attach_segment_model_card(torch::jit::Module& module, const SegmentModelCard& card) {
    auto set = [&](const std::string& name, const c10::TypePtr& type, const c10::IValue& value) {
        if (module.hasattr(name)) module.setattr(name, value);
        else module.register_attribute(name, type, value);
    };
    c10::List<std::string> names;
    for (const auto& n : card.class_names) names.push_back(n);
    set("sightline_task", c10::StringType::get(), card.task);
    set("sightline_arch", c10::StringType::get(), card.arch);
    set("sightline_input_size", c10::IntType::get(), card.input_size);
    set("sightline_size_multiple", c10::IntType::get(), card.size_multiple);
    set("sightline_class_names", c10::ListType::ofStrings(), names);
    set("sightline_mean", c10::ListType::ofFloats(), c10::List<double>(card.mean));
    set("sightline_std", c10::ListType::ofFloats(), c10::List<double>(card.std));
}

}  // namespace sightline
