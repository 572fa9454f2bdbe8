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
#include <pybind11/numpy.h>
#include <torch/extension.h>

#include "bindings.hpp"
#include "explain/context.hpp"
#include "sightline/audit_images.hpp"
#include "sightline/inspect.hpp"
#include "sightline/sanity.hpp"

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
        : module_(script_module(model)), name_(name), options_(explain_options(options)) {
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

    // audit.json's content (`sightline audit`'s statistics and rule) for the batch x with one
    // object mask per image (uint8 class ids: output i is id i + 1, 0 background, 255 ignore)
    // and optional context masks (0 = no context). class_names: one per output, or empty.
    std::string audit(const torch::Tensor& input, const std::vector<py::array_t<uint8_t>>& masks,
                      const std::vector<py::array_t<uint8_t>>& contexts, const std::string& method,
                      const std::string& target, const std::vector<std::string>& class_names,
                      const std::vector<double>& fixed, int pointing_tolerance) {
        torch::Tensor x = engine_input(input);
        AuditThresholds thresholds;
        thresholds.fixed = fixed;
        thresholds.pointing_tolerance = pointing_tolerance;
        for (double t : fixed)
            if (!(t > 0.0 && t < 1.0)) throw BadInput(fmt::format("thresholds: {} is not in (0, 1)", t));
        if (pointing_tolerance < 0)
            throw BadInput(fmt::format("pointing_tolerance: must be >= 0, got {}", pointing_tolerance));
        const auto images = static_cast<std::size_t>(x.size(0));
        if (masks.size() != images)
            throw BadInput(fmt::format("masks: {} masks for {} images; give one per image", masks.size(), images));
        if (!contexts.empty() && contexts.size() != images)
            throw BadInput(fmt::format("context: {} masks for {} images; give one per image, or None", contexts.size(),
                                       images));
        if (target != "label" && target != "predicted")
            throw BadInput(fmt::format("target: '{}'; expected \"label\" or \"predicted\"", target));
        const MethodInfo& info = find_method(method);
        auto as_mat = [](const py::array_t<uint8_t>& a, const std::string& what) {
            if (a.ndim() != 2) throw BadInput(fmt::format("{}: {} dimensions; expected a 2-D uint8 mask [H, W]", what, a.ndim()));
            py::array_t<uint8_t, py::array::c_style> c(a);
            return cv::Mat(static_cast<int>(c.shape(0)), static_cast<int>(c.shape(1)), CV_8UC1,
                           const_cast<uint8_t*>(c.data())).clone();
        };
        std::vector<AuditImage> batch(images);
        std::size_t unlabelled = 0;
        for (std::size_t i = 0; i < images; ++i) {
            AuditImage& it = batch[i];
            it.id = std::to_string(i);
            it.source = fmt::format("image {}", i);
            it.x = x.slice(0, static_cast<int64_t>(i), static_cast<int64_t>(i) + 1);
            it.mask = as_mat(masks[i], fmt::format("masks[{}]", i));
            if (!contexts.empty()) it.context = as_mat(contexts[i], fmt::format("context[{}]", i));
            bool present[256] = {};
            for (int r = 0; r < it.mask.rows; ++r)
                for (int c = 0; c < it.mask.cols; ++c) present[it.mask.at<uint8_t>(r, c)] = true;
            for (int id = 1; id < 255; ++id)
                if (present[id]) it.labels.push_back(id);
            if (it.labels.empty()) ++unlabelled;
        }
        AuditResult result;
        {
            py::gil_scoped_release release;
            EngineScope scope(module_);
            accept(x);
            const HeadAnalysis& head = explainer_->head_analysis(x.slice(0, 0, 1));
            const GuaranteeStatus status = guarantee_status(info, head);
            const int64_t outputs = classifier_->forward(x.slice(0, 0, 1)).size(1);
            if (!class_names.empty() && static_cast<int64_t>(class_names.size()) != outputs)
                throw BadInput(fmt::format("class_names: {} names for {} outputs", class_names.size(), outputs));
            result.class_names.push_back("background");
            for (int64_t c = 0; c < outputs; ++c)
                result.class_names.push_back(class_names.empty() ? std::to_string(c) : class_names[c]);
            std::vector<AuditImage> labelled;
            for (AuditImage& it : batch)
                if (!it.labels.empty()) labelled.push_back(std::move(it));
            result.records = checking_input([&] {
                return audit_images(*explainer_, *classifier_, info.key, target == "predicted", thresholds, labelled);
            });
            result.summary = summarise_audit(result.records, result.class_names, thresholds);
            result.head = head.description;
            result.trustworthy = status.holds;
            result.guarantee = status.statement;
        }
        result.model = name_;
        result.layer = classifier_->layer();
        result.method = info.key;
        result.target = target;
        result.preprocessing.source = "caller";  // x arrives normalised
        result.images = images;
        result.unlabelled = unlabelled;
        result.thresholds = thresholds;
        return audit_json(result).dump();
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
    std::string name_;
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

struct SanityArgs {
    std::string layer;
    std::vector<std::string> methods;
    bool independent = false;
    int depth = 1;
    uint64_t seed = 0;
    int batch = 8;
    std::string verdict_metric, verdict_on;
    double threshold = 0.5;
    bool edges = true;
    bool random_logit = true;
    int smooth_samples = 0;
    double smooth_noise = 0.1;
};

// sanity.json's content (`sightline sanity`) for a module and a batch in memory. images: the
// pictures of x (uint8 [H, W, 3]) for the Sobel row, else x's own min-max picture.
std::string sanity(const py::object& model, const std::string& name, const torch::Tensor& input,
                   const std::vector<py::array_t<uint8_t>>& images, const py::object& random_model,
                   const SanityArgs& a) {
    torch::jit::Module module = script_module(model);
    c10::optional<torch::jit::Module> shuffled;
    if (!random_model.is_none()) shuffled = script_module(random_model);
    torch::Tensor x = engine_input(input);
    if (!images.empty() && images.size() != static_cast<std::size_t>(x.size(0)))
        throw BadInput(fmt::format("images: {} pictures for {} inputs; give one per input, or None", images.size(),
                                   x.size(0)));
    std::vector<InputItem> items(static_cast<std::size_t>(x.size(0)));
    for (std::size_t i = 0; i < items.size(); ++i) {
        const auto row = static_cast<int64_t>(i);
        items[i].path = fmt::format("image {}", i);
        items[i].tensor = x.slice(0, row, row + 1);
        if (images.empty()) {
            items[i].display = tensor_picture(items[i].tensor);
            continue;
        }
        py::array_t<uint8_t, py::array::c_style> picture(images[i]);
        if (picture.ndim() != 3 || picture.shape(2) != 3 || picture.shape(0) != x.size(2) || picture.shape(1) != x.size(3))
            throw BadInput(fmt::format("images[{}]: expected uint8 [{}, {}, 3] (x's height and width)", i, x.size(2),
                                       x.size(3)));
        items[i].display = cv::Mat(static_cast<int>(x.size(2)), static_cast<int>(x.size(3)), CV_8UC3,
                                   const_cast<uint8_t*>(picture.data())).clone();
    }
    SanityOptions o;
    o.layer = a.layer;
    o.methods = a.methods;
    o.independent = a.independent;
    o.depth = a.depth;
    o.seed = a.seed;
    o.batch = a.batch;
    o.verdict_metric = a.verdict_metric;
    o.verdict_on = a.verdict_on;
    o.threshold = a.threshold;
    o.edge_baseline = a.edges;
    o.random_logit = a.random_logit;
    o.smooth_samples = a.smooth_samples;
    o.smooth_noise = a.smooth_noise;
    o.explain.black = checking_input([&] { return resolve_model_input(module, name, {}).black(); });
    if (o.batch < 1) throw BadInput(fmt::format("batch: must be >= 1, got {}", o.batch));
    if (o.depth < 1) throw BadInput(fmt::format("depth: must be >= 1, got {}", o.depth));
    py::gil_scoped_release release;
    SanityReport report = checking_input(
        [&] { return run_sanity(module, name, items, o, shuffled ? &*shuffled : nullptr); });
    return sanity_json(report).dump();
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
        .def("audit", &Engine::audit, py::arg("x"), py::arg("masks"), py::arg("contexts"), py::arg("method"),
             py::arg("target"), py::arg("class_names"), py::arg("thresholds"), py::arg("pointing_tolerance"))
        .def_property_readonly("layer", &Engine::layer);

    py::class_<SanityArgs>(m, "SanityArgs")
        .def(py::init<>())
        .def_readwrite("layer", &SanityArgs::layer)
        .def_readwrite("methods", &SanityArgs::methods)
        .def_readwrite("independent", &SanityArgs::independent)
        .def_readwrite("depth", &SanityArgs::depth)
        .def_readwrite("seed", &SanityArgs::seed)
        .def_readwrite("batch", &SanityArgs::batch)
        .def_readwrite("verdict_metric", &SanityArgs::verdict_metric)
        .def_readwrite("verdict_on", &SanityArgs::verdict_on)
        .def_readwrite("threshold", &SanityArgs::threshold)
        .def_readwrite("edges", &SanityArgs::edges)
        .def_readwrite("random_logit", &SanityArgs::random_logit)
        .def_readwrite("smooth_samples", &SanityArgs::smooth_samples)
        .def_readwrite("smooth_noise", &SanityArgs::smooth_noise);
    m.def("sanity", &sanity, py::arg("model"), py::arg("name"), py::arg("x"), py::arg("images"),
          py::arg("random_model"), py::arg("args"));

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
