// SC-CAM's clustering step: k-means per parent class on image features, and the sub-category
// targets built from it (Chang et al. 2020, create_pseudo_label.py: K = 10 per class).
#include <limits>

#include <fmt/format.h>
#include <torch/torch.h>

#include "sightline/core.hpp"
#include "sightline/data.hpp"
#include "sightline/wsss_objectives.hpp"

namespace sightline {

namespace {

// Squared distances [N,k] between points [N,D] and centres [k,D] (float64).
torch::Tensor squared_distances(const torch::Tensor& x, const torch::Tensor& centres) {
    return ((x.unsqueeze(1) - centres.unsqueeze(0)).pow(2)).sum(2);
}

// k-means++: the first centre uniformly, each next one with probability proportional to the
// squared distance to the nearest centre chosen so far.
torch::Tensor seed_centres(const torch::Tensor& x, int k, Rng& rng) {
    const int64_t n = x.size(0);
    std::vector<int64_t> chosen{static_cast<int64_t>(rng.next() % static_cast<uint64_t>(n))};
    torch::Tensor nearest = squared_distances(x, x[chosen[0]].unsqueeze(0)).squeeze(1);
    while (static_cast<int>(chosen.size()) < k) {
        const double total = nearest.sum().item<double>();
        int64_t pick = 0;
        if (total <= 0) {
            pick = static_cast<int64_t>(rng.next() % static_cast<uint64_t>(n));  // duplicates only
        } else {
            const double target = rng.uniform() * total;
            auto d = nearest.accessor<double, 1>();
            double run = 0.0;
            pick = n - 1;
            for (int64_t i = 0; i < n; ++i) {
                run += d[i];
                if (run > target) {
                    pick = i;
                    break;
                }
            }
        }
        chosen.push_back(pick);
        nearest = torch::minimum(nearest, squared_distances(x, x[pick].unsqueeze(0)).squeeze(1));
    }
    return x.index_select(0, torch::tensor(chosen, torch::kLong));
}

KMeansResult lloyd(const torch::Tensor& x, torch::Tensor centres, int max_iterations) {
    const int64_t k = centres.size(0);
    torch::Tensor assign;
    for (int it = 0; it < max_iterations; ++it) {
        torch::Tensor next = squared_distances(x, centres).argmin(1);
        if (assign.defined() && torch::equal(next, assign)) break;
        assign = next;
        for (int64_t c = 0; c < k; ++c) {
            torch::Tensor members = (assign == c).nonzero().squeeze(1);
            if (members.numel() > 0) centres[c] = x.index_select(0, members).mean(0);  // an empty cluster keeps its centre
        }
    }
    torch::Tensor d = squared_distances(x, centres);
    assign = d.argmin(1);
    KMeansResult r;
    r.inertia = d.gather(1, assign.unsqueeze(1)).sum().item<double>();
    r.centres = centres;
    auto a = assign.accessor<int64_t, 1>();
    for (int64_t i = 0; i < assign.size(0); ++i) r.assignment.push_back(static_cast<int>(a[i]));
    return r;
}

}  // namespace

KMeansResult kmeans(const torch::Tensor& points, const KMeansOptions& o) {
    TORCH_CHECK(points.dim() == 2 && points.size(0) >= 1, "kmeans: expected points [N,D] with N >= 1, got ",
                points.sizes());
    TORCH_CHECK(o.k >= 1 && o.max_iterations >= 1 && o.restarts >= 1, "kmeans: k, max_iterations and restarts must be >= 1");
    torch::NoGradGuard no_grad;
    torch::Tensor x = points.detach().to(torch::kDouble).contiguous();
    const int k = static_cast<int>(std::min<int64_t>(o.k, x.size(0)));
    Rng rng(mix_seed(o.seed, 0x6b6d65616e73));
    KMeansResult best;
    best.inertia = std::numeric_limits<double>::infinity();
    for (int r = 0; r < o.restarts; ++r) {
        Rng stream = rng.fork(static_cast<uint64_t>(r));
        KMeansResult run = lloyd(x, seed_centres(x, k, stream), o.max_iterations);
        if (run.inertia < best.inertia) best = std::move(run);
    }
    return best;
}

std::vector<std::vector<int>> subcategory_assignments(const torch::Tensor& features,
                                                      const std::vector<std::vector<int>>& labels,
                                                      int64_t num_classes, const KMeansOptions& options) {
    TORCH_CHECK(features.dim() == 2 && features.size(0) == static_cast<int64_t>(labels.size()),
                "subcategory_assignments: features [N,D] must have one row per label list, got ", features.sizes(),
                " for ", labels.size(), " images");
    std::vector<std::vector<int>> out(labels.size(), std::vector<int>(static_cast<std::size_t>(num_classes), -1));
    for (int64_t c = 1; c <= num_classes; ++c) {
        std::vector<int64_t> rows;
        for (std::size_t i = 0; i < labels.size(); ++i)
            for (int id : labels[i])
                if (id == c) rows.push_back(static_cast<int64_t>(i));
        if (rows.empty()) continue;
        KMeansOptions per_class = options;
        per_class.seed = mix_seed(options.seed, static_cast<uint64_t>(c));
        KMeansResult r = kmeans(features.index_select(0, torch::tensor(rows, torch::kLong)), per_class);
        for (std::size_t j = 0; j < rows.size(); ++j)
            out[static_cast<std::size_t>(rows[j])][static_cast<std::size_t>(c - 1)] = r.assignment[j];
    }
    return out;
}

torch::Tensor subcategory_targets(const std::vector<std::vector<int>>& assignments, int64_t num_classes, int k) {
    torch::Tensor t = torch::zeros({static_cast<int64_t>(assignments.size()), num_classes * k});
    auto a = t.accessor<float, 2>();
    for (std::size_t i = 0; i < assignments.size(); ++i) {
        if (static_cast<int64_t>(assignments[i].size()) != num_classes)
            throw Error(fmt::format("subcategory_targets: image {} has {} class entries, expected {}", i,
                                    assignments[i].size(), num_classes));
        for (int64_t c = 0; c < num_classes; ++c) {
            int cluster = assignments[i][static_cast<std::size_t>(c)];
            if (cluster < -1 || cluster >= k)
                throw Error(fmt::format("subcategory_targets: image {} class {} has cluster {}, expected -1 .. {}", i,
                                        c + 1, cluster, k - 1));
            if (cluster >= 0) a[static_cast<int64_t>(i)][c * k + cluster] = 1.0f;
        }
    }
    return t;
}

}  // namespace sightline
