// The extension module sightline._sightline: the explanation engine over TorchScript modules
// and torch tensors. Tensors cross through torch's own pybind11 casters, which share the
// storage (no copy); a torch.jit.ScriptModule is used in place. The pure-Python package
// (python/sightline/) gives the user-facing API on top.
#include <set>
#include <utility>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/jit/python/module_python.h>
#include <torch/extension.h>

#include "bindings.hpp"
#include "explain/context.hpp"
#include "sightline/inspect.hpp"

namespace py = pybind11;

namespace sightline::python {

namespace {

torch::jit::Module script_module(const py::handle& model) {
    c10::optional<torch::jit::Module> module = torch::jit::as_module(model);
    if (!module) throw BadInput("model: expected a torch.jit.ScriptModule (or an nn.Module, which sightline traces)");
    return *module;
}

// What every engine call needs around it: the engine sets the parameters' requires_grad to
// false while it runs (it differentiates with respect to activations and inputs only), and
// they are the caller's tensors, so the flags are restored; gradients are recorded even
// inside the caller's torch.no_grad() / inference_mode().
class EngineScope {
public:
    explicit EngineScope(const torch::jit::Module& module) : grad_(true), inference_(false) {
        for (const torch::Tensor& p : module.parameters()) {
            saved_.emplace_back(p, p.requires_grad());
            saved_.back().first.set_requires_grad(false);
        }
    }
    ~EngineScope() {
        for (auto& [p, flag] : saved_) p.set_requires_grad(flag);
    }
    EngineScope(const EngineScope&) = delete;
    EngineScope& operator=(const EngineScope&) = delete;

private:
    torch::AutoGradMode grad_;
    c10::InferenceMode inference_;
    std::vector<std::pair<torch::Tensor, bool>> saved_;
};

// The model input as the engine takes it: the caller's tensor itself when it is a contiguous
// float32 CPU tensor (zero copy), else a float32 contiguous copy. Bad shapes or values are a
// ValueError with the engine's own message.
torch::Tensor engine_input(const torch::Tensor& x) {
    if (x.dim() != 4 || x.size(1) != 3 || x.size(0) == 0)
        throw BadInput(fmt::format("input: input tensor has shape {}; expected [batch, 3, height, width]",
                                   fmt::join(x.sizes(), "x")));
    if (!x.device().is_cpu()) throw BadInput(fmt::format("input: tensor on {}; Sightline runs on the CPU", x.device().str()));
    if (!x.is_floating_point())
        throw BadInput(fmt::format("input: dtype {}; expected a float tensor (the normalised image)",
                                   c10::toString(x.scalar_type())));
    torch::Tensor out = x.detach();
    if (out.scalar_type() != torch::kFloat) out = out.to(torch::kFloat);
    out = out.contiguous();
    checking_input([&] { detail::check_finite(out, {}, "input values"); });
    return out;
}

// check_model_accepts: a size the model cannot take is the caller's input (ValueError); the
// model's own failures (a `raise` in forward) stay RuntimeErrors.
void check_runs_on(const Classifier& model, const torch::Tensor& example) {
    try {
        check_model_accepts(model, example);
    } catch (const Error& e) {
        if (std::string(e.what()).find(": the model does not run on ") != std::string::npos) throw BadInput(e.what());
        throw;
    }
}

ExplainOptions explain_options(const py::dict& given) {
    ExplainOptions o;
    for (const auto& [key_handle, value] : given) {
        const std::string key = py::cast<std::string>(key_handle);
        if (key == "score_batch") o.score_batch = py::cast<int>(value);
        else if (key == "ablation_batch") o.ablation_batch = py::cast<int>(value);
        else if (key == "ig_steps") o.ig_steps = py::cast<int>(value);
        else if (key == "smooth_samples") o.smooth_samples = py::cast<int>(value);
        else if (key == "smooth_sigma") o.smooth_sigma = py::cast<double>(value);
        else if (key == "smooth_base") o.smooth_base = py::cast<std::string>(value);
        else if (key == "occlusion_window") o.occlusion_window = py::cast<int>(value);
        else if (key == "occlusion_stride") o.occlusion_stride = py::cast<int>(value);
        else if (key == "input_batch") o.input_batch = py::cast<int>(value);
        else if (key == "seed") o.seed = py::cast<uint64_t>(value);
        else
            throw BadInput(fmt::format("{}: unknown option (score_batch, ablation_batch, ig_steps, smooth_samples, "
                                       "smooth_sigma, smooth_base, occlusion_window, occlusion_stride, "
                                       "input_batch, seed)", key));
    }
    return o;
}

// One model split at one layer, kept between calls (the split graphs are built once and the
// TorchScript executor optimises them on the first runs, as in one CLI run).
class Engine {
public:
    Engine(const py::object& model, const std::string& name, const std::string& layer, const torch::Tensor& example,
           const py::dict& options)
        : module_(script_module(model)), options_(explain_options(options)) {
        torch::Tensor x = engine_input(example);
        py::gil_scoped_release release;
        EngineScope scope(module_);
        classifier_ = std::make_unique<Classifier>(checking_input([&] { return Classifier::from_module(module_, name); }));
        options_.black = checking_input([&] { return resolve_model_input(module_, name, {}).black(); });
        accept(x);
        checking_input([&] { classifier_->set_layer(layer, x.slice(0, 0, 1)); });
        explainer_ = std::make_unique<Explainer>(*classifier_, options_);
    }

    // {"maps": {key: [B,k,H,W]}, "raw": {key: [B,k,h,w]}, "logits": [B,C], "targets": [B,k],
    //  "completeness_residual": [B,k]}. `per_image` (one class per image) wins over `target`.
    py::dict explain(const torch::Tensor& input, const std::vector<std::string>& methods, const std::string& target,
                     const std::vector<int64_t>& per_image) {
        torch::Tensor x = engine_input(input);
        if (methods.empty()) throw BadInput("method: give at least one method");
        for (const auto& key : methods) find_method(key);
        TargetSpec spec;
        if (!per_image.empty()) {
            spec.kind = TargetSpec::kPerImage;
            spec.indices = per_image;
        } else {
            spec = parse_target(target, {});
        }
        Explanation ex;
        {
            py::gil_scoped_release release;
            EngineScope scope(module_);
            accept(x);
            ex = explainer_->explain(x, spec, methods);
        }
        py::dict maps, raw;
        for (const MethodMaps& m : ex.methods) {
            maps[py::str(m.key)] = m.maps;
            raw[py::str(m.key)] = m.raw;
        }
        py::dict out;
        out["maps"] = maps;
        out["raw"] = raw;
        out["logits"] = ex.logits;
        out["targets"] = ex.targets;
        out["completeness_residual"] = ex.completeness_residual;
        return out;
    }

    std::string layer() const { return classifier_->layer(); }

private:
    // The model runs on this input size (checked once per size: a clear message for a size a
    // flatten head cannot take, instead of LibTorch's matrix-shape error).
    void accept(const torch::Tensor& x) {
        std::pair<int64_t, int64_t> size{x.size(2), x.size(3)};
        if (accepted_.count(size)) return;
        check_runs_on(*classifier_, x.slice(0, 0, 1));
        accepted_.insert(size);
    }

    torch::jit::Module module_;
    ExplainOptions options_;
    std::unique_ptr<Classifier> classifier_;  // the Explainer keeps a reference: never moved
    std::unique_ptr<Explainer> explainer_;
    std::set<std::pair<int64_t, int64_t>> accepted_;
};

constexpr int kNoiseSide = 224;  // as `sightline inspect` without --input, --size or a stored size

// `sightline inspect --json` for a module in memory, as a JSON string. Without `input`, the
// CLI's noise (seed 0, from its own generator: torch's global one is untouched).
std::string inspect(const py::object& model, const std::string& name, const std::string& layer,
                    const c10::optional<torch::Tensor>& input, const c10::optional<std::pair<int, int>>& size) {
    torch::jit::Module module = script_module(model);
    torch::Tensor x = input ? engine_input(*input) : torch::Tensor();
    py::gil_scoped_release release;
    EngineScope scope(module);
    Classifier classifier = checking_input([&] { return Classifier::from_module(module, name); });
    InputRequest request;
    if (size) request.size = *size;
    const ModelInput model_input = checking_input([&] { return resolve_model_input(module, name, request); });
    if (!x.defined()) {
        const bool sized = model_input.preprocess.height > 0;
        const int h = sized ? model_input.preprocess.height : kNoiseSide;
        const int w = sized ? model_input.preprocess.width : kNoiseSide;
        auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
        x = at::randn({1, 3, h, w}, generator);
    }
    check_runs_on(classifier, x);
    checking_input([&] { classifier.set_layer(layer, x); });
    const HeadAnalysis head = analyse_head(classifier, x);
    return inspect_json(classifier, name, x, head, model_input).dump();
}

// The library's messages are single lines already; LibTorch's carry a C++ backtrace.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

}  // namespace sightline::python

PYBIND11_MODULE(_sightline, m) {
    using namespace sightline;
    using namespace sightline::python;
    m.doc() = "Sightline's engine (C++/LibTorch); use the `sightline` package, not this module";

    py::register_local_exception_translator([](std::exception_ptr error) {
        try {
            if (error) std::rethrow_exception(error);
        } catch (const UsageError& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        } catch (const BadInput& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        } catch (const Error& e) {
            PyErr_SetString(PyExc_RuntimeError, e.what());
        } catch (const c10::Error& e) {
            PyErr_SetString(PyExc_RuntimeError, first_line(e.what_without_backtrace()).c_str());
        }
    });

    py::class_<Engine>(m, "Engine")
        .def(py::init<const py::object&, const std::string&, const std::string&, const torch::Tensor&,
                      const py::dict&>(),
             py::arg("model"), py::arg("name"), py::arg("layer"), py::arg("example"), py::arg("options"))
        .def("explain", &Engine::explain, py::arg("x"), py::arg("methods"), py::arg("target"), py::arg("per_image"))
        .def_property_readonly("layer", &Engine::layer);

    m.def("inspect", &inspect, py::arg("model"), py::arg("name"), py::arg("layer"), py::arg("input"), py::arg("size"));

    // The engine's view of an input: the same storage for a contiguous float32 CPU tensor (the
    // zero-copy promise the tests check), a converted copy otherwise.
    m.def("engine_input", &engine_input, py::arg("x"));

    m.def("methods", [] {
        py::list out;
        for (const MethodInfo& info : explanation_methods()) {
            py::dict d;
            d["key"] = info.key;
            d["title"] = info.title;
            d["paper"] = info.paper;
            d["needs_gradient"] = info.needs_gradient;
            d["class_specific"] = info.class_specific;
            d["guarantee"] = to_string(info.guarantee);
            d["space"] = info.space == MapSpace::kFeature ? "feature" : "input";
            out.append(d);
        }
        return out;
    });

    bind_measures(m);
}
