// Proof runs for the WSSS training objectives (docs/wsss-objectives.md): trains
// one classifier per --objective with the same recipe through train_classifier (the code behind
// `sightline train classify`), then measures the CAM seed mIoU of each on the training split.
//
//   wsss_objectives_proof DATA OUT EPOCHS OBJECTIVE[:ROUNDS]...   (ROUNDS: SC-CAM rounds, default 3)
//
// Seeds as in the issue / notes 1.3-1.4: bias-free class maps ReLU(W A) at scales 1, 0.5, 1.5, 2
// and their horizontal flips, resized bilinearly to the image and summed; only the image's
// labelled classes kept, each divided by its max (+1e-5); seed = argmax over [t, CAMs]. The
// background threshold t is swept 0.05..0.80 (step 0.05) and the best mIoU reported, as the
// papers do. mIoU = mean over background + object classes of TP / (TP + FP + FN) from one
// confusion matrix over the split. A run whose RUN/model.pt exists is not retrained.
#include <cstdio>
#include <iostream>

#include <fmt/format.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "sightline/train.hpp"

using namespace sightline;

namespace {

constexpr int kThresholds = 16;  // 0.05 .. 0.80
double threshold(int i) { return 0.05 * (i + 1); }

// CAMs [n,H,W] of the labelled classes (ids ascending) of one image.
torch::Tensor image_cams(torch::jit::Module& model, const torch::Tensor& weight, const Sample& s) {
    const int64_t h = s.image.rows, w = s.image.cols;
    torch::Tensor x = torch::from_blob(s.image.data, {h, w, 3}, torch::kUInt8).permute({2, 0, 1}).to(torch::kFloat) / 255;
    torch::Tensor mean = torch::tensor({0.485, 0.456, 0.406}).view({3, 1, 1}), sd = torch::tensor({0.229, 0.224, 0.225}).view({3, 1, 1});
    x = ((x - mean) / sd).unsqueeze(0).to(torch::kFloat);
    torch::Tensor sum = torch::zeros({weight.size(0), h, w});
    namespace F = torch::nn::functional;
    for (double scale : {1.0, 0.5, 1.5, 2.0}) {
        torch::Tensor xs = scale == 1.0 ? x
                                        : F::interpolate(x, F::InterpolateFuncOptions()
                                                                .size(std::vector<int64_t>{std::llround(h * scale), std::llround(w * scale)})
                                                                .mode(torch::kBilinear)
                                                                .align_corners(false));
        torch::Tensor both = torch::cat({xs, xs.flip({3})});
        torch::Tensor a = model.get_method("features")({both}).toTensor();
        torch::Tensor maps = torch::relu(torch::conv2d(a, weight.unsqueeze(2).unsqueeze(3)));
        maps = maps[0] + maps[1].flip({2});
        sum += F::interpolate(maps.unsqueeze(0), F::InterpolateFuncOptions()
                                                     .size(std::vector<int64_t>{h, w})
                                                     .mode(torch::kBilinear)
                                                     .align_corners(false))[0];
    }
    std::vector<int64_t> keys;
    for (int id : s.labels) keys.push_back(id - 1);
    torch::Tensor kept = sum.index_select(0, torch::tensor(keys, torch::kLong));
    return kept / (kept.amax({1, 2}, true) + 1e-5);
}

struct SeedScore {
    double best_miou = 0.0, best_t = 0.0;
    std::vector<double> miou;  // per threshold
};

SeedScore seed_miou(const fs::path& model_path, const Dataset& data) {
    torch::jit::Module model = torch::jit::load(model_path.string());
    model.eval();
    torch::NoGradGuard no_grad;
    torch::Tensor weight = model.attr("fc").toModule().attr("weight").toTensor();
    const int64_t classes = static_cast<int64_t>(data.num_object_classes()) + 1;
    std::vector<torch::Tensor> confusion;  // one matrix per threshold (not one shared tensor)
    for (int t = 0; t < kThresholds; ++t) confusion.push_back(torch::zeros({classes * classes}, torch::kLong));
    for (std::size_t i = 0; i < data.size(); ++i) {
        Sample s = data.get(i);
        torch::Tensor cams = image_cams(model, weight, s);
        std::vector<int64_t> ids = {0};
        for (int id : s.labels) ids.push_back(id);
        torch::Tensor id_of = torch::tensor(ids, torch::kLong);
        torch::Tensor gt = torch::from_blob(s.mask.data, {s.mask.rows, s.mask.cols}, torch::kUInt8).to(torch::kLong).flatten();
        torch::Tensor valid = gt != 255;
        for (int t = 0; t < kThresholds; ++t) {
            torch::Tensor stack = torch::cat({torch::full({1, cams.size(1), cams.size(2)}, threshold(t)), cams});
            torch::Tensor pred = id_of.index_select(0, stack.argmax(0).flatten());
            confusion[t] += torch::bincount((gt.masked_select(valid) * classes + pred.masked_select(valid)), {},
                                            classes * classes);
        }
    }
    SeedScore score;
    for (int t = 0; t < kThresholds; ++t) {
        torch::Tensor m = confusion[t].view({classes, classes}).to(torch::kDouble);
        torch::Tensor tp = m.diagonal(), denom = m.sum(0) + m.sum(1) - tp;
        torch::Tensor present = denom > 0;
        double miou = (tp.masked_select(present) / denom.masked_select(present)).mean().item<double>();
        score.miou.push_back(miou);
        if (miou > score.best_miou) score.best_miou = miou, score.best_t = threshold(t);
    }
    return score;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: %s DATA OUT EPOCHS OBJECTIVE[:ROUNDS]...\n", argv[0]);
        return 2;
    }
    try {
        const fs::path data = argv[1], out = argv[2];
        const int64_t epochs = std::stoll(argv[3]);
        std::unique_ptr<Dataset> train = open_dataset(data, "train");
        for (int a = 4; a < argc; ++a) {
            const std::string arg = argv[a];
            const std::string objective = arg.substr(0, arg.find(':'));
            TrainOptions o;  // the recipe of `sightline wsss run`'s classifier stage
            o.data = data;
            o.out = out / arg;
            o.arch = "resnet_gap";
            o.epochs = epochs;
            o.batch = 32;
            o.lr = 0.2;
            o.warmup_epochs = 1;
            o.width = 16;
            o.output_stride = 8;
            at::set_num_threads(1);  // a shared, loaded machine: one thread wastes less on barriers
            o.workers = 1;
            bool known = false;
            for (const auto& [name, value] : objective_choices())
                if (name == objective) o.objective = value, known = true;
            if (!known) {
                std::cerr << "unknown objective '" << objective << "' (cam, puzzle, mixup, subcategory)\n";
                return 2;
            }
            if (arg.find(':') != std::string::npos) o.subcategory_rounds = std::stoll(arg.substr(arg.find(':') + 1));
            if (!fs::exists(o.out / "model.pt")) {
                o.resume = fs::exists(o.out / "checkpoint" / "checkpoint.pt");
                TrainCallbacks cb;
                cb.on_epoch = [&](const EpochMetrics& m) {
                    std::cout << fmt::format("{} epoch {}/{} loss {:.4f} train mAP {:.3f} {} {:.3f} {:.1f} s\n", objective,
                                             m.epoch, m.epochs, m.loss, m.train_score,
                                             m.val.empty() ? "" : m.val[0].first, m.val.empty() ? 0.0 : m.val[0].second,
                                             m.seconds)
                              << std::flush;
                };
                train_classifier(o, cb);
            }
            SeedScore s = seed_miou(o.out / "model.pt", *train);
            std::string curve;
            for (int t = 0; t < kThresholds; ++t) curve += fmt::format(" {:.3f}", s.miou[t]);
            std::cout << fmt::format("{}: seed mIoU (train) {:.4f} at t = {:.2f}; by t 0.05..0.80:{}\n", arg,
                                     s.best_miou, s.best_t, curve)
                      << std::flush;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
