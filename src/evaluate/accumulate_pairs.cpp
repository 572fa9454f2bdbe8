// Parallel accumulation over many mask pairs: one matrix per worker, merged at the end.
#include "sightline/evaluate.hpp"
#include "sightline/parallel.hpp"

namespace sightline {

ConfusionMatrix accumulate_pairs(const std::vector<MaskPair>& pairs, int num_classes, int ignore,
                                 int threads, std::vector<ConfusionMatrix>* per_pair) {
    ConfusionMatrix total(num_classes, ignore);
    if (per_pair) per_pair->assign(pairs.size(), total);
    const int n = detail::worker_count(threads, pairs.size());
    std::vector<ConfusionMatrix> partial(static_cast<std::size_t>(n), total);
    detail::parallel_for_each(pairs.size(), n, [&](std::size_t i, int slot) {
        const MaskPair& p = pairs[i];
        if (per_pair) {
            (*per_pair)[i].accumulate(p.pred, p.gt, p.n, p.names);
            partial[slot].merge((*per_pair)[i]);
        } else {
            partial[slot].accumulate(p.pred, p.gt, p.n, p.names);
        }
    });
    for (const ConfusionMatrix& m : partial) total.merge(m);
    return total;
}

}  // namespace sightline
