#include <fmt/format.h>

#include "model/architectures/layers.hpp"
#include "sightline/architectures.hpp"

namespace sightline::detail {

void add_head(ModuleFactory& factory, torch::jit::Module& model, const HeadSpec& spec) {
    auto design = static_cast<HeadDesign>(spec.head);
    std::string head_source;
    switch (design) {
        case HeadDesign::kGapLinear:
            // Zhou et al. 2016: logits are a linear map of the channel means, so the class
            // activation map sum_k w_ck A_k is exact.
            model.register_module("fc", factory.linear(spec.channels, spec.num_classes));
            head_source = R"py(
def head(self, a):
    return self.fc.forward(torch.mean(a, [2, 3]))
)py";
            break;
        case HeadDesign::kFlattenLinear:
            // Draelos & Carin 2020: a single linear layer on the flattened activations makes
            // HiResCAM's map sum exactly to the logit minus the bias, at this one input size.
            model.register_module(
                "fc", factory.linear(spec.channels * spec.side * spec.side, spec.num_classes));
            head_source = fmt::format(R"py(
def head(self, a):
    assert a.size(2) == {0} and a.size(3) == {0}, "{1}: the flatten head needs {0}x{0} features (a {2}x{2} input)"
    return self.fc.forward(torch.flatten(a, 1))
)py",
                                      spec.side, spec.arch, spec.input_size);
            break;
        case HeadDesign::kMlp:
            model.register_module("fc1", factory.linear(spec.channels, spec.hidden));
            model.register_module("fc2", factory.linear(spec.hidden, spec.num_classes));
            head_source = R"py(
def head(self, a):
    return self.fc2.forward(torch.relu(self.fc1.forward(torch.mean(a, [2, 3]))))
)py";
            break;
    }
    model.define(head_source + R"py(
def forward(self, x):
    return self.head(self.features(x))
)py");
    model.register_attribute("sightline_arch", c10::StringType::get(), spec.arch);
    model.register_attribute("sightline_head", c10::StringType::get(), head_design_name(design));
    model.register_attribute("sightline_input_size", c10::IntType::get(), spec.input_size);
    model.register_attribute("sightline_output_stride", c10::IntType::get(), spec.output_stride);
}

}  // namespace sightline::detail
