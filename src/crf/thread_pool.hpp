// A small persistent thread pool for the dense CRF. Mean-field inference runs about ten
// parallel regions per iteration; starting threads for each one would cost more than the
// work in a small region, so the workers are started once and wait between regions
// (spinning briefly first: see thread_pool.cpp).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sightline::detail {

class ThreadPool {
public:
    // threads: total threads including the caller; <= 0 means all hardware threads.
    explicit ThreadPool(int threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Calls fn(t) once for every t in [0, size()), each on its own thread; the caller runs
    // t = 0. Returns when all are done and rethrows the first exception thrown.
    void run_each(const std::function<void(int)>& fn);

    // Calls fn(begin, end) on blocks of at most `grain` items covering [0, n), handed out
    // dynamically. Which thread runs a block varies, so fn must compute each item
    // independently of the others: then results do not depend on the thread count.
    template <class F>
    void parallel_for(int64_t n, int64_t grain, F&& fn) {
        if (n <= 0) return;
        if (grain < 1) grain = 1;
        if (size() == 1 || n <= grain) {
            fn(int64_t{0}, n);
            return;
        }
        std::atomic<int64_t> next{0};
        run_each([&](int) {
            for (int64_t begin; (begin = next.fetch_add(grain)) < n;)
                fn(begin, std::min(n, begin + grain));
        });
    }

private:
    void worker_loop(int index);

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable start_cv_, done_cv_;
    const std::function<void(int)>* job_ = nullptr;  // published by generation_ (release)
    std::atomic<uint64_t> generation_{0};             // bumped once per region
    std::atomic<int> pending_{0};                     // workers still running the region
    bool stop_ = false;
    std::exception_ptr error_;
};

}  // namespace sightline::detail
