// The module's functions over NumPy arrays: dense CRF, segmentation metrics and COCO AP. The
// arrays are read in place when they already have the engine's dtype and C order
// (py::array::forcecast converts others once).
#include <cmath>

#include <fmt/format.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "sightline/coco.hpp"
#include "sightline/crf.hpp"
#include "sightline/evaluate.hpp"

namespace py = pybind11;

namespace sightline::python {

namespace {

using Bytes = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;
using Floats = py::array_t<float, py::array::c_style | py::array::forcecast>;

std::string shape_text(const py::array& a) {
    std::string s;
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? "x" : "") + std::to_string(a.shape(i));
    return s;
}

// An H x W x 3 uint8 image as a cv::Mat over the array's memory (no copy).
cv::Mat image_view(const Bytes& image) {
    if (image.ndim() != 3 || image.shape(2) != 3)
        throw BadInput(fmt::format("image: shape {}; expected [height, width, 3] uint8", shape_text(image)));
    return cv::Mat(static_cast<int>(image.shape(0)), static_cast<int>(image.shape(1)), CV_8UC3,
                   const_cast<uint8_t*>(image.data()));
}

// Dense CRF on soft maps (probs K x H x W) or on a label map (labels H x W, 255 = unknown);
// returns the marginals Q, float32 K x H x W.
py::array_t<float> crf(const Bytes& image, const py::object& probs_object, const py::object& labels_object,
                       int num_labels, float confidence, const DenseCrfOptions& options) {
    checking_input([&] { validate(options); });
    const cv::Mat rgb = image_view(image);
    const int h = rgb.rows, w = rgb.cols;
    if (probs_object.is_none() == labels_object.is_none())
        throw BadInput("crf: give exactly one of probs (soft maps) and labels (a label map)");
    std::vector<float> unary;
    if (!probs_object.is_none()) {
        const Floats probs = py::cast<Floats>(probs_object);
        if (probs.ndim() != 3 || probs.shape(1) != h || probs.shape(2) != w || probs.shape(0) < 2)
            throw BadInput(fmt::format("probs: shape {}; expected [K >= 2, {}, {}] for the image", shape_text(probs), h, w));
        num_labels = static_cast<int>(probs.shape(0));
        checking_input([&] { check_probabilities("probs", probs.data(), num_labels, h, w); });
        unary = unary_from_probabilities(std::vector<float>(probs.data(), probs.data() + probs.size()));
    } else {
        const Bytes labels = py::cast<Bytes>(labels_object);
        if (labels.ndim() != 2 || labels.shape(0) != h || labels.shape(1) != w)
            throw BadInput(fmt::format("labels: shape {}; expected [{}, {}] for the image", shape_text(labels), h, w));
        if (num_labels < 2 || num_labels > 255)
            throw BadInput(fmt::format("num_labels: must be 2..255 with labels, got {}", num_labels));
        if (!(confidence > 0 && confidence < 1))
            throw BadInput(fmt::format("confidence: must be in (0, 1), got {}", confidence));
        const cv::Mat map(h, w, CV_8UC1, const_cast<uint8_t*>(labels.data()));
        checking_input([&] {
            check_label_map("labels", map, num_labels);
            unary = unary_from_labels(map, num_labels, confidence);
        });
    }
    py::array_t<float> q({num_labels, h, w});
    {
        py::gil_scoped_release release;
        DenseCrf dense(options);
        dense.set_image(rgb);
        dense.infer(unary.data(), num_labels, q.mutable_data());
    }
    return q;
}

py::dict metrics_dict(const Metrics& m) {
    py::dict d;
    d["miou"] = m.miou;
    d["fg_miou"] = m.fg_miou;
    d["mean_dice"] = m.mean_dice;
    d["pixel_accuracy"] = m.pixel_accuracy;
    d["mean_accuracy"] = m.mean_accuracy;
    d["fw_iou"] = m.fw_iou;
    d["pixels"] = m.pixels;
    d["ignored_pixels"] = m.ignored_pixels;
    py::list per_class;
    for (const ClassMetrics& c : m.per_class) {
        py::dict e;
        e["name"] = c.name;
        e["tp"] = c.tp;
        e["fp"] = c.fp;
        e["fn"] = c.fn;
        e["gt_pixels"] = c.gt_pixels;
        e["pred_pixels"] = c.pred_pixels;
        e["iou"] = c.iou;
        e["dice"] = c.dice;
        e["accuracy"] = c.accuracy;
        e["precision"] = c.precision;
        e["fp_ratio"] = c.fp_ratio;
        e["fn_ratio"] = c.fn_ratio;
        per_class.append(e);
    }
    d["per_class"] = per_class;
    return d;
}

// Confusion matrix and metrics of mask pairs (uint8 arrays of one shape per pair).
py::dict evaluate(const std::vector<Bytes>& preds, const std::vector<Bytes>& gts, int num_classes, int ignore,
                  const std::vector<std::string>& names) {
    if (preds.size() != gts.size())
        throw BadInput(fmt::format("evaluate: {} predictions for {} ground-truth masks", preds.size(), gts.size()));
    if (preds.empty()) throw BadInput("evaluate: no masks");
    if (!names.empty() && static_cast<int>(names.size()) != num_classes)
        throw BadInput(fmt::format("names: {} names for {} classes", names.size(), num_classes));
    std::vector<MaskPair> pairs;
    for (std::size_t i = 0; i < preds.size(); ++i) {
        const std::string pred_name = preds.size() == 1 ? "pred" : fmt::format("pred[{}]", i);
        const std::string gt_name = preds.size() == 1 ? "gt" : fmt::format("gt[{}]", i);
        if (preds[i].ndim() != gts[i].ndim() || !std::equal(preds[i].shape(), preds[i].shape() + preds[i].ndim(), gts[i].shape()))
            throw BadInput(fmt::format("{}: shape {} but {} has shape {}", pred_name, shape_text(preds[i]), gt_name,
                                       shape_text(gts[i])));
        pairs.push_back({preds[i].data(), gts[i].data(), static_cast<std::size_t>(preds[i].size()), {pred_name, gt_name}});
    }
    ConfusionMatrix matrix{1, -1};
    {
        py::gil_scoped_release release;
        matrix = checking_input([&] { return accumulate_pairs(pairs, num_classes, ignore); });
    }
    const int k = matrix.num_classes();
    py::array_t<int64_t> confusion({k, k + 1});
    std::copy(matrix.counts().begin(), matrix.counts().end(), confusion.mutable_data());
    const Metrics metrics = matrix.metrics(names);
    py::array_t<double> iou(k);
    for (int i = 0; i < k; ++i) iou.mutable_data()[i] = metrics.per_class[i].iou;
    py::dict out = metrics_dict(metrics);
    out["confusion"] = confusion;
    out["iou"] = iou;
    return out;
}

// COCOeval on a ground-truth file and a results file; per IoU type the 12 stats by name, the
// per-category APs and pycocotools' summary text.
py::dict coco_eval(const std::string& gt_path, const std::string& results_path, const std::string& iou_type) {
    const CocoIouType type = parse_coco_iou_type(iou_type);
    const CocoDataset gt = checking_input([&] { return read_coco_dataset(gt_path); });
    const CocoResults results = checking_input([&] { return read_coco_results(results_path, gt); });
    CocoEvalResult r;
    {
        py::gil_scoped_release release;
        r = checking_input([&] { return evaluate_coco(gt, results, type); });
    }
    py::dict stats;
    for (std::size_t i = 0; i < kCocoStatNames.size(); ++i) stats[kCocoStatNames[i]] = r.stats[i];
    py::list per_category;
    for (const CocoCategoryAp& c : r.per_category) {
        py::dict e;
        e["id"] = c.id;
        e["name"] = c.name;
        e["AP"] = c.ap;
        e["AP50"] = c.ap50;
        e["AP75"] = c.ap75;
        per_category.append(e);
    }
    py::dict out;
    out["iou_type"] = coco_iou_type_name(r.iou_type);
    out["stats"] = stats;
    out["per_category"] = per_category;
    out["summary"] = format_coco_summary(r);
    out["skipped_unknown_category"] = results.skipped_unknown_category;
    return out;
}

}  // namespace

void bind_measures(py::module_& m) {
    py::class_<DenseCrfOptions>(m, "DenseCrfOptions")
        .def(py::init<>())
        .def_readwrite("gaussian_sxy", &DenseCrfOptions::gaussian_sxy)
        .def_readwrite("gaussian_compat", &DenseCrfOptions::gaussian_compat)
        .def_readwrite("bilateral_sxy", &DenseCrfOptions::bilateral_sxy)
        .def_readwrite("bilateral_srgb", &DenseCrfOptions::bilateral_srgb)
        .def_readwrite("bilateral_compat", &DenseCrfOptions::bilateral_compat)
        .def_readwrite("iterations", &DenseCrfOptions::iterations)
        .def_readwrite("threads", &DenseCrfOptions::threads);
    m.def("crf", &crf, py::arg("image"), py::arg("probs"), py::arg("labels"), py::arg("num_labels"),
          py::arg("confidence"), py::arg("options"));
    m.def("evaluate", &evaluate, py::arg("preds"), py::arg("gts"), py::arg("num_classes"), py::arg("ignore"),
          py::arg("names"));
    m.def("coco_eval", &coco_eval, py::arg("gt"), py::arg("results"), py::arg("iou_type"));
}

}  // namespace sightline::python
