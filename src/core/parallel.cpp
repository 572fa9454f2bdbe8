#include "sightline/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>
#include <vector>

namespace sightline::detail {

int worker_count(int requested, std::size_t items) {
    int n = requested > 0 ? requested : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    return static_cast<int>(std::max<std::size_t>(1, std::min<std::size_t>(n, items)));
}

void parallel_for_each(std::size_t items, int threads, const std::function<void(std::size_t, int)>& work) {
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
            const std::size_t i = next.fetch_add(1);
            if (i >= items) return;
            try {
                work(i, worker);
            } catch (...) {
                errors[i] = std::current_exception();
                stop = true;
            }
        }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < n; ++t) pool.emplace_back(run, t);
    run(0);
    for (auto& t : pool) t.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
}

}  // namespace sightline::detail
