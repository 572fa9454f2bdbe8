// Parallel accumulation over many mask pairs: one matrix per worker, merged at the end.
#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>

#include "evaluate/parallel.hpp"
#include "sightline/evaluate.hpp"

namespace sightline {

namespace detail {

int worker_count(int requested, std::size_t items) {
    int n = requested > 0 ? requested : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    return static_cast<int>(std::max<std::size_t>(1, std::min<std::size_t>(n, items)));
}

void parallel_for_each(std::size_t items, int threads,
                       const std::function<void(std::size_t, int)>& work) {
    const int n = worker_count(threads, items);
    std::atomic<std::size_t> next{0};
    std::atomic<bool> stop{false};
    // The error of the lowest failing item: every item before it was taken before it (the
    // counter only grows) and is finished before the workers join, so the report is the
    // first bad item in order whatever the thread count.
    std::vector<std::exception_ptr> errors(items);
    auto run = [&](int worker) {
        for (;;) {
            if (stop.load(std::memory_order_relaxed)) return;
            std::size_t i = next.fetch_add(1);
            if (i >= items) return;
            try {
                work(i, worker);
            } catch (...) {
                errors[i] = std::current_exception();
                stop = true;
            }
        }
    };
    if (n == 1) {
        run(0);
    } else {
        std::vector<std::thread> pool;
        for (int t = 0; t < n; ++t) pool.emplace_back(run, t);
        for (auto& t : pool) t.join();
    }
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
}

}  // namespace detail

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
