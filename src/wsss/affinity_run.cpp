// `sightline wsss affinity`: the affinity network trained on confident labels, then every CAM
// of the split random-walked over its affinities (sightline/affinity.hpp).
#include <fmt/format.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "sightline/affinity.hpp"
#include "sightline/data.hpp"
#include "sightline/segment.hpp"
#include "segment/segment_detail.hpp"
#include "wsss/pipeline_staging.hpp"
#include "wsss/seeds_source.hpp"

namespace sightline {

namespace {

void check_run_options(const AffinityRunOptions& o) {
    validate(o.affinity);
    if (o.data.empty()) throw UsageError("--data: a dataset folder is required");
    if (o.cams.empty()) throw UsageError("--cams: a folder of CAM files is required");
    if (o.labels.empty()) throw UsageError("--labels: a folder of confident labels is required");
    if (o.out.empty()) throw UsageError("--out: an output folder is required");
    if (!fs::is_directory(o.labels)) throw Error(fmt::format("{}: no such folder (--labels)", o.labels.string()));
}

std::vector<double> double_list(const torch::jit::Module& m, const std::string& name) {
    std::vector<double> values;
    for (const c10::IValue& v : m.attr(name).toListRef()) values.push_back(v.toDouble());
    return values;
}

// The trained network: its output for an image, [D,H,W].
class EmbeddingNet {
public:
    explicit EmbeddingNet(const fs::path& path) : name_(path.string()) {
        try {
            model_ = torch::jit::load(path.string(), torch::Device(torch::kCPU));
        } catch (const c10::Error& e) {
            std::string what = e.what_without_backtrace();
            throw Error(fmt::format("{}: not a loadable TorchScript model ({})", name_, what.substr(0, what.find('\n'))));
        }
        if (!model_.hasattr("sightline_task") || model_.attr("sightline_task").toStringRef() != "affinity")
            throw Error(fmt::format("{}: not an affinity network of `sightline wsss affinity`", name_));
        model_.eval();
        multiple_ = model_.attr("sightline_size_multiple").toInt();
        mean_ = double_list(model_, "sightline_mean");
        std_ = double_list(model_, "sightline_std");
    }
    torch::Tensor embed(const cv::Mat& rgb) {
        torch::NoGradGuard no_grad;
        torch::Tensor x = detail::normalise_image(rgb, mean_, std_).unsqueeze(0);
        return detail::forward_padded(model_, x, multiple_, name_)[0];
    }

private:
    std::string name_;
    torch::jit::Module model_;
    int64_t multiple_ = 1;
    std::vector<double> mean_, std_;
};

void train_network(const AffinityRunOptions& o, const fs::path& net, const AffinityProgress& progress) {
    SegmentTrainOptions t;
    t.data = o.data;
    t.masks = o.labels;
    t.out = net;
    t.epochs = o.epochs;
    t.batch = o.batch;
    t.lr = o.lr;
    t.train_split = o.split;
    t.val_split = "none";
    t.seed = o.seed;
    t.output_channels = o.affinity.embedding;
    t.task = "affinity";
    const AffinityOptions a = o.affinity;
    t.loss_name = fmt::format("affinity radius {} cell {}", a.radius, a.stride);
    t.loss = [a](const torch::Tensor& output, const torch::Tensor& masks) {
        return affinity_loss(cell_embedding(output, a.stride), cell_labels(masks, a.stride), a.radius);
    };
    t.resume = fs::exists(net / "checkpoint" / "checkpoint.pt");
    SegmentTrainCallbacks callbacks;
    if (progress)
        callbacks.on_step = [&](int64_t epoch, int64_t step, int64_t steps, double) {
            progress("affinity network", static_cast<std::size_t>((epoch - 1) * steps + step),
                     static_cast<std::size_t>(o.epochs * steps));
        };
    SegmentTrainResult r = train_segmenter(t, callbacks);
    if (r.interrupted) throw Error(fmt::format("{}: affinity network training stopped early", net.string()));
}

}  // namespace

AffinityRunResult run_affinity(const AffinityRunOptions& o, const AffinityProgress& progress) {
    check_run_options(o);
    // Everything is read and checked before the first write: the split and every CAM file
    // here, every label file by the training loop (it checks its masks before it writes).
    std::unique_ptr<Dataset> data = open_dataset(o.data, o.split);
    detail::CamProvider cams(CamSource{{}, o.cams, {}}, *data, o.data, o.split);
    check_writable_dir(o.out);

    AffinityRunResult result;
    result.network = o.out / "net" / "model.pt";
    result.cams = o.out / "cams";
    result.images = data->size();
    if (!fs::exists(result.network)) {
        train_network(o, o.out / "net", progress);
        result.trained = true;
    }
    EmbeddingNet net(result.network);
    detail::StagingDir staging(result.cams);
    for (std::size_t i = 0; i < data->size(); ++i) {
        Sample s = data->get(i);
        torch::Tensor walked = propagate_cams(cams.cams(s), net.embed(s.image), o.affinity);
        write_cam_file(staging.path() / (s.id + ".npy"), walked, s.labels, cams.num_classes());
        if (progress) progress("random walk", i + 1, data->size());
    }
    staging.commit();
    return result;
}

}  // namespace sightline
