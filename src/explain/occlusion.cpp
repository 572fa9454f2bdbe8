// Occlusion (Zeiler & Fergus 2014): slide a window of the baseline value (0, the normalised
// mean colour) over the input; each pixel gets the mean drop of the target logit over the
// windows that cover it.
#include "explain/context.hpp"
#include "explain/rules.hpp"
#include "sightline/explain_options.hpp"

namespace sightline::detail {

torch::Tensor occlusion(MethodContext& c) {
    torch::NoGradGuard no_grad;
    const int64_t height = c.input.size(2), width = c.input.size(3), k = c.k();
    validate(c.options);
    const int64_t win = c.options.occlusion_window, stride = c.options.occlusion_stride;
    std::vector<std::pair<int64_t, int64_t>> corners;
    for (int64_t y = 0;; y += stride) {
        int64_t y0 = std::min(y, std::max<int64_t>(0, height - win));
        for (int64_t x = 0;; x += stride) {
            int64_t x0 = std::min(x, std::max<int64_t>(0, width - win));
            corners.emplace_back(y0, x0);
            if (x0 + win >= width) break;
        }
        if (y0 + win >= height) break;
    }
    const int64_t batch = c.input.size(0);
    torch::Tensor out = torch::zeros({batch * k, height, width}, c.input.options());
    torch::Tensor count = torch::zeros({height, width}, c.input.options());
    for (auto [y0, x0] : corners)
        count.slice(0, y0, y0 + win).slice(1, x0, x0 + win) += 1;
    for (int64_t b = 0; b < batch; ++b) {
        torch::Tensor cls = c.targets[b];
        torch::Tensor original = c.logits[b].index_select(0, cls);  // [k]
        for (std::size_t start = 0; start < corners.size(); start += c.options.input_batch) {
            std::size_t end = std::min(corners.size(), start + c.options.input_batch);
            torch::Tensor occluded = c.input[b].unsqueeze(0).repeat({int64_t(end - start), 1, 1, 1});
            for (std::size_t i = start; i < end; ++i) {
                auto [y0, x0] = corners[i];
                occluded[i - start].slice(1, y0, y0 + win).slice(2, x0, x0 + win).zero_();
            }
            torch::Tensor drop = original.unsqueeze(0) - c.model.forward(occluded).index_select(1, cls);
            for (std::size_t i = start; i < end; ++i) {
                auto [y0, x0] = corners[i];
                out.slice(0, b * k, (b + 1) * k).slice(1, y0, y0 + win).slice(2, x0, x0 + win) +=
                    drop[i - start].view({k, 1, 1});
            }
        }
    }
    return out / count;
}

}  // namespace sightline::detail
