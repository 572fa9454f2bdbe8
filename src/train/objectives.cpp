// Losses and the metrics reported per epoch.
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>

#include "sightline/train.hpp"

namespace sightline {

std::string objective_name(Objective objective) {
    return objective == Objective::kSingleLabel ? "cross_entropy" : "multilabel_soft_margin";
}

torch::Tensor classification_loss(Objective objective, const torch::Tensor& logits,
                                  const torch::Tensor& targets, double label_smoothing) {
    TORCH_CHECK(logits.dim() == 2 && logits.sizes() == targets.sizes(),
                "classification_loss: logits and targets must both be [B,K], got ", logits.sizes(),
                " and ", targets.sizes());
    const double k = static_cast<double>(logits.size(1));
    if (objective == Objective::kSingleLabel) {
        // Cross-entropy with (possibly soft) targets: -sum_k t_k log softmax(z)_k.
        torch::Tensor t = label_smoothing > 0 ? targets * (1 - label_smoothing) + label_smoothing / k : targets;
        return -(t * torch::log_softmax(logits, 1)).sum(1).mean();
    }
    // Multi-label soft margin: mean over classes of the binary cross-entropy of sigmoid(z).
    torch::Tensor t = label_smoothing > 0 ? targets * (1 - label_smoothing) + label_smoothing / 2 : targets;
    torch::Tensor per_class = -(t * torch::log_sigmoid(logits) + (1 - t) * torch::log_sigmoid(-logits));
    return per_class.mean(1).mean();
}

double average_precision(const torch::Tensor& scores, const torch::Tensor& positives) {
    torch::Tensor s = scores.to(torch::kDouble).contiguous(), p = positives.to(torch::kDouble).contiguous();
    const int64_t n = s.numel();
    const double* sv = s.data_ptr<double>();
    const double* pv = p.data_ptr<double>();
    std::vector<int64_t> rank(n);
    std::iota(rank.begin(), rank.end(), int64_t{0});
    std::stable_sort(rank.begin(), rank.end(), [&](int64_t a, int64_t b) { return sv[a] > sv[b]; });
    double hits = 0.0, sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        if (pv[rank[i]] > 0.5) {
            hits += 1.0;
            sum += hits / static_cast<double>(i + 1);
        }
    }
    return hits > 0 ? sum / hits : std::numeric_limits<double>::quiet_NaN();
}

double mean_average_precision(const torch::Tensor& scores, const torch::Tensor& targets) {
    double sum = 0.0;
    int counted = 0;
    for (int64_t c = 0; c < scores.size(1); ++c) {
        double ap = average_precision(scores.select(1, c), targets.select(1, c));
        if (!std::isnan(ap)) sum += ap, ++counted;
    }
    return counted ? sum / counted : std::numeric_limits<double>::quiet_NaN();
}

double top1_accuracy(const torch::Tensor& logits, const torch::Tensor& targets) {
    torch::Tensor labelled = (targets > 0.5).any(1);
    int64_t n = labelled.sum().item<int64_t>();
    if (n == 0) return std::numeric_limits<double>::quiet_NaN();
    torch::Tensor top = logits.argmax(1, true);
    torch::Tensor hit = (targets.gather(1, top).squeeze(1) > 0.5) & labelled;
    return static_cast<double>(hit.sum().item<int64_t>()) / static_cast<double>(n);
}

}  // namespace sightline
