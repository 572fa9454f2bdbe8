// AffinityNet's pair set, cell pooling, pair loss and the random walk (sightline/affinity.hpp).
#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "sightline/affinity.hpp"

namespace sightline {

namespace {

using torch::indexing::Slice;

// The cells of a pair at offset (dy, dx) with dy >= 0: first cells [y0, y1) x [x0, x1), the
// second ones shifted by (dy, dx). Empty when the offset does not fit.
struct PairWindow {
    int64_t y1 = 0, x0 = 0, x1 = 0;
    bool empty() const { return y1 <= 0 || x1 <= x0; }
};
PairWindow pair_window(int64_t h, int64_t w, int64_t dy, int64_t dx) {
    return {h - dy, std::max<int64_t>(0, -dx), w - std::max<int64_t>(0, dx)};
}
torch::Tensor first_of_pair(const torch::Tensor& t, const PairWindow& p) {
    return t.index({"...", Slice(0, p.y1), Slice(p.x0, p.x1)});
}
torch::Tensor second_of_pair(const torch::Tensor& t, const PairWindow& p, int64_t dy, int64_t dx) {
    return t.index({"...", Slice(dy, p.y1 + dy), Slice(p.x0 + dx, p.x1 + dx)});
}

std::string shape(const torch::Tensor& t) { return fmt::format("[{}]", fmt::join(t.sizes().vec(), ",")); }

}  // namespace

void validate(const AffinityOptions& o) {
    auto check = [](bool ok, const std::string& message) {
        if (!ok) throw UsageError(message);
    };
    check(o.radius >= 2 && o.radius <= 32, fmt::format("--radius must be in [2, 32], got {}", o.radius));
    check(o.stride >= 1 && o.stride <= 64, fmt::format("--cell must be in [1, 64], got {}", o.stride));
    check(std::isfinite(o.beta) && o.beta > 0, fmt::format("--beta must be > 0, got {}", o.beta));
    check(o.steps >= 1 && o.steps <= 100000, fmt::format("--steps must be in [1, 100000], got {}", o.steps));
    check(o.embedding >= 1 && o.embedding <= 1024, fmt::format("--embedding must be in [1, 1024], got {}", o.embedding));
}

std::vector<std::array<int64_t, 2>> affinity_offsets(int64_t radius) {
    std::vector<std::array<int64_t, 2>> offsets;
    for (int64_t dx = 1; dx < radius; ++dx) offsets.push_back({0, dx});
    for (int64_t dy = 1; dy < radius; ++dy)
        for (int64_t dx = 1 - radius; dx < radius; ++dx)
            if (dy * dy + dx * dx < radius * radius) offsets.push_back({dy, dx});
    return offsets;
}

torch::Tensor cell_labels(const torch::Tensor& labels, int64_t stride) {
    // A cell is pure when its largest and smallest label agree; padding with 255 makes the
    // cells that reach past the image mixed unless they are unknown anyway.
    const int64_t h = labels.size(-2), w = labels.size(-1);
    const int64_t ph = (h + stride - 1) / stride * stride - h, pw = (w + stride - 1) / stride * stride - w;
    torch::Tensor x = torch::constant_pad_nd(labels.to(torch::kFloat).unsqueeze(1), {0, pw, 0, ph}, 255.0);
    torch::Tensor high = torch::max_pool2d(x, {stride, stride}, {stride, stride});
    torch::Tensor low = -torch::max_pool2d(-x, {stride, stride}, {stride, stride});
    return torch::where(high == low, high, torch::full_like(high, 255.0)).squeeze(1).to(torch::kLong);
}

torch::Tensor cell_embedding(const torch::Tensor& embedding, int64_t stride) {
    if (stride == 1) return embedding;
    // ceil_mode with no padding divides an edge cell by the pixels it has.
    return torch::avg_pool2d(embedding, {stride, stride}, {stride, stride}, {0, 0}, /*ceil_mode=*/true,
                             /*count_include_pad=*/false);
}

torch::Tensor affinity_loss(const torch::Tensor& cells, const torch::Tensor& labels, int64_t radius) {
    const int64_t h = cells.size(2), w = cells.size(3);
    torch::Tensor zero = torch::zeros({}, cells.options());
    torch::Tensor bg_sum = zero, fg_sum = zero, neg_sum = zero;
    double bg_count = 0, fg_count = 0, neg_count = 0;
    for (const auto& [dy, dx] : affinity_offsets(radius)) {
        const PairWindow p = pair_window(h, w, dy, dx);
        if (p.empty()) continue;
        // -log a = the mean absolute difference itself: no exp/log round trip for positives.
        torch::Tensor distance =
            (first_of_pair(cells, p) - second_of_pair(cells, p, dy, dx)).abs().mean(1);  // [B,h',w']
        torch::Tensor li = first_of_pair(labels, p), lj = second_of_pair(labels, p, dy, dx);
        torch::Tensor known = (li != 255) & (lj != 255);
        torch::Tensor same = known & (li == lj);
        torch::Tensor bg = same & (li == 0), fg = same & (li != 0), neg = known & (li != lj);
        bg_sum = bg_sum + distance.masked_select(bg).sum();
        fg_sum = fg_sum + distance.masked_select(fg).sum();
        neg_sum = neg_sum - torch::log(1.0 - torch::exp(-distance.masked_select(neg)) + 1e-5).sum();
        bg_count += static_cast<double>(bg.sum().item<int64_t>());
        fg_count += static_cast<double>(fg.sum().item<int64_t>());
        neg_count += static_cast<double>(neg.sum().item<int64_t>());
    }
    return bg_sum / (bg_count + 1e-5) / 4 + fg_sum / (fg_count + 1e-5) / 4 + neg_sum / (neg_count + 1e-5) / 2;
}

torch::Tensor random_walk(const torch::Tensor& maps, const torch::Tensor& cells, const AffinityOptions& o) {
    validate(o);
    if (maps.dim() != 3 || cells.dim() != 3 || maps.size(1) != cells.size(1) || maps.size(2) != cells.size(2))
        throw Error(fmt::format("random walk: maps [n,h,w] and cells [D,h,w] of one size expected, got {} and {}",
                                shape(maps), shape(cells)));
    torch::NoGradGuard no_grad;
    const int64_t h = cells.size(1), w = cells.size(2), n_cells = h * w;
    // Every neighbour of a cell: itself, then each pair offset in both directions.
    std::vector<std::array<int64_t, 2>> neighbours{{0, 0}};
    for (const auto& [dy, dx] : affinity_offsets(o.radius)) {
        neighbours.push_back({dy, dx});
        neighbours.push_back({-dy, -dx});
    }
    const int64_t k = static_cast<int64_t>(neighbours.size());
    torch::Tensor cell_index = torch::arange(n_cells, torch::kLong).view({h, w});
    torch::Tensor index = cell_index.unsqueeze(-1).repeat({1, 1, k});  // out of bounds: the cell itself
    torch::Tensor weight = torch::zeros({h, w, k}, torch::kFloat);
    torch::Tensor f = cells.to(torch::kFloat);
    for (int64_t j = 0; j < k; ++j) {
        const auto [dy, dx] = neighbours[static_cast<std::size_t>(j)];
        // Cells (y, x) whose neighbour (y + dy, x + dx) is inside.
        const int64_t y0 = std::max<int64_t>(0, -dy), y1 = std::min(h, h - dy);
        const int64_t x0 = std::max<int64_t>(0, -dx), x1 = std::min(w, w - dx);
        if (y1 <= y0 || x1 <= x0) continue;
        const Slice ys(y0, y1), xs(x0, x1), ny(y0 + dy, y1 + dy), nx(x0 + dx, x1 + dx);
        torch::Tensor distance = (f.index({Slice(), ys, xs}) - f.index({Slice(), ny, nx})).abs().mean(0);
        weight.index_put_({ys, xs, j}, torch::exp(-o.beta * distance));  // a^beta = exp(-beta d)
        index.index_put_({ys, xs, j}, cell_index.index({ny, nx}));
    }
    // A is symmetric, so a column sum of A^beta is the row sum of the cell's own weights.
    weight = (weight / weight.sum(-1, true)).view({1, n_cells, k});
    index = index.view({-1});
    torch::Tensor x = maps.to(torch::kFloat).reshape({maps.size(0), n_cells});
    for (int64_t step = 0; step < o.steps; ++step)
        x = (x.index_select(1, index).view({x.size(0), n_cells, k}) * weight).sum(-1);
    return x.view({maps.size(0), h, w});
}

torch::Tensor propagate_cams(const torch::Tensor& cams, const torch::Tensor& embedding, const AffinityOptions& o) {
    validate(o);
    if (cams.dim() != 3 || embedding.dim() != 3 || cams.size(1) != embedding.size(1) ||
        cams.size(2) != embedding.size(2))
        throw Error(fmt::format("affinity: CAMs [n,H,W] and embedding [D,H,W] of one size expected, got {} and {}",
                                shape(cams), shape(embedding)));
    torch::NoGradGuard no_grad;
    const int64_t height = cams.size(1), width = cams.size(2);
    if (cams.size(0) == 0) return torch::zeros({0, height, width}, torch::kFloat);
    torch::Tensor cells = cell_embedding(embedding.unsqueeze(0).to(torch::kFloat), o.stride)[0];
    torch::Tensor pooled = cell_embedding(cams.unsqueeze(0).to(torch::kFloat), o.stride)[0];
    torch::Tensor walked = random_walk(pooled, cells, o);
    // Back to pixels: each cell covers stride x stride pixels of the padded image, then crop.
    torch::Tensor up = torch::upsample_bilinear2d(walked.unsqueeze(0), {walked.size(1) * o.stride, walked.size(2) * o.stride},
                                                  /*align_corners=*/false)[0]
                           .index({Slice(), Slice(0, height), Slice(0, width)});
    torch::Tensor peak = std::get<0>(up.reshape({up.size(0), -1}).max(1)).view({-1, 1, 1});
    return (up / (peak + 1e-5)).clamp_min(0).contiguous();
}

}  // namespace sightline
