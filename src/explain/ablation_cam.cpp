// Ablation-CAM (Desai & Ramaswamy 2020): a channel's weight is the relative drop of the
// target score when that channel is removed. Only the head is re-run: the split gives A.
#include "explain/context.hpp"
#include "explain/rules.hpp"

namespace sightline::detail {

torch::Tensor ablation_cam(MethodContext& c) {
    torch::NoGradGuard no_grad;
    const torch::Tensor& a = c.features.activations;  // [B,K,h,w]
    const int64_t batch = a.size(0), channels = a.size(1), k = c.k();
    torch::Tensor weights = torch::empty({batch * k, channels}, a.options());
    for (int64_t b = 0; b < batch; ++b) {
        torch::Tensor image_a = a.slice(0, b, b + 1);
        std::vector<c10::IValue> extras_b;
        for (const auto& v : c.features.extras)
            extras_b.push_back(v.isTensor() && v.toTensor().dim() > 0 ? c10::IValue(v.toTensor().slice(0, b, b + 1)) : v);
        // Zero when activations are non-negative (after ReLU); otherwise far below the minimum
        // (the reference library's rule, applied per image without its compounding).
        double minimum = image_a.min().item<double>();
        double ablated = minimum == 0.0 ? 0.0 : minimum - 1e7;
        torch::Tensor cls = c.targets[b];
        torch::Tensor original = c.logits[b].index_select(0, cls);  // [k]
        torch::Tensor scores = torch::empty({channels, k}, a.options());
        for (int64_t start = 0; start < channels; start += c.options.ablation_batch) {
            int64_t n = std::min(channels, start + c.options.ablation_batch) - start;
            torch::Tensor batch_a = image_a.repeat({n, 1, 1, 1});
            for (int64_t i = 0; i < n; ++i) batch_a[i][start + i].fill_(ablated);
            scores.slice(0, start, start + n) =
                c.model.head(batch_a, repeat_extras(extras_b, n)).index_select(1, cls);
        }
        weights.slice(0, b * k, (b + 1) * k) = ((original.unsqueeze(0) - scores) / original.unsqueeze(0)).t();
    }
    return c.weighted_activation_sum(weights);
}

}  // namespace sightline::detail
