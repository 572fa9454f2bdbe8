#include "model/architectures/layers.hpp"

#include <algorithm>
#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

namespace sightline::detail {

ModuleFactory::ModuleFactory(uint64_t seed, Norm norm)
    : unit_(std::make_shared<torch::jit::CompilationUnit>()),
      generator_(at::make_generator<at::CPUGeneratorImpl>(seed)),
      norm_(norm) {}

torch::jit::Module ModuleFactory::make(const std::string& type_name) {
    torch::jit::Module m(c10::QualifiedName("__torch__.sightline." + type_name), unit_,
                         /*shouldMangle=*/true);
    m.register_attribute("training", c10::BoolType::get(), true);
    return m;
}

void add_parameter(torch::jit::Module& module, const std::string& name, torch::Tensor value) {
    value.set_requires_grad(true);
    module.register_parameter(name, value, /*is_buffer=*/false);
}

torch::jit::Module ModuleFactory::conv(int64_t in_channels, int64_t out_channels, int64_t kernel,
                                       int64_t stride, int64_t padding) {
    torch::jit::Module m = make("Conv2d");
    double std = std::sqrt(2.0 / static_cast<double>(out_channels * kernel * kernel));
    add_parameter(m, "weight",
                  at::normal(0.0, std, {out_channels, in_channels, kernel, kernel}, generator_));
    m.define(fmt::format(R"py(
def forward(self, x):
    return torch.conv2d(x, self.weight, None, [{0}, {0}], [{1}, {1}], [1, 1], 1)
)py",
                         stride, padding));
    return m;
}

torch::jit::Module ModuleFactory::norm(int64_t channels) {
    if (norm_ == Norm::kGroup) {
        torch::jit::Module m = make("GroupNorm");
        add_parameter(m, "weight", torch::ones({channels}));
        add_parameter(m, "bias", torch::zeros({channels}));
        int64_t groups = std::min<int64_t>(8, channels);
        while (channels % groups != 0) --groups;
        m.define(fmt::format(R"py(
def forward(self, x):
    return torch.group_norm(x, {}, self.weight, self.bias, 1e-05, True)
)py",
                             groups));
        return m;
    }
    torch::jit::Module m = make("BatchNorm2d");
    add_parameter(m, "weight", torch::ones({channels}));
    add_parameter(m, "bias", torch::zeros({channels}));
    m.register_buffer("running_mean", torch::zeros({channels}));
    m.register_buffer("running_var", torch::ones({channels}));
    m.define(R"py(
def forward(self, x):
    return torch.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
                            self.training, 0.1, 1e-05, True)
)py");
    return m;
}

torch::jit::Module ModuleFactory::linear(int64_t in_features, int64_t out_features) {
    torch::jit::Module m = make("Linear");
    double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    add_parameter(m, "weight",
                  torch::empty({out_features, in_features}).uniform_(-bound, bound, generator_));
    add_parameter(m, "bias", torch::empty({out_features}).uniform_(-bound, bound, generator_));
    m.define(R"py(
def forward(self, x):
    return torch.linear(x, self.weight, self.bias)
)py");
    return m;
}

}  // namespace sightline::detail
