#include "crf/thread_pool.hpp"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace sightline::detail {
namespace {

// Regions follow each other within microseconds, and a thread that sleeps on a condition
// variable may wait a whole scheduler time slice to run again on a busy machine. So a waiting
// thread first spins (with a pause instruction) for up to this long, then sleeps.
constexpr auto kSpin = std::chrono::microseconds(200);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
}

// Spins until ready() or kSpin has passed; returns ready().
template <class Ready>
bool spin_until(Ready&& ready) {
    const auto deadline = std::chrono::steady_clock::now() + kSpin;
    for (int i = 0;; ++i) {
        if (ready()) return true;
        cpu_relax();
        if ((i & 255) == 255 && std::chrono::steady_clock::now() > deadline) return ready();
    }
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
        generation_.fetch_add(1, std::memory_order_release);
    }
    start_cv_.notify_all();
    for (auto& w : workers_) w.join();
}

void ThreadPool::run_each(const std::function<void(int)>& fn) {
    if (workers_.empty()) {
        fn(0);
        return;
    }
    job_ = &fn;
    error_ = nullptr;
    pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    {
        // Under the mutex, so a worker about to sleep cannot miss the new generation.
        std::lock_guard<std::mutex> lock(mutex_);
        generation_.fetch_add(1, std::memory_order_release);
    }
    start_cv_.notify_all();
    std::exception_ptr own_error;
    try {
        fn(0);
    } catch (...) {
        own_error = std::current_exception();
    }
    auto done = [this] { return pending_.load(std::memory_order_acquire) == 0; };
    if (!spin_until(done)) {
        std::unique_lock<std::mutex> lock(mutex_);
        done_cv_.wait(lock, done);
    }
    job_ = nullptr;
    if (own_error) std::rethrow_exception(own_error);
    if (error_) std::rethrow_exception(error_);
}

void ThreadPool::worker_loop(int index) {
    uint64_t seen = 0;
    for (;;) {
        auto started = [&] { return generation_.load(std::memory_order_acquire) != seen; };
        if (!spin_until(started)) {
            std::unique_lock<std::mutex> lock(mutex_);
            start_cv_.wait(lock, started);
        }
        seen = generation_.load(std::memory_order_acquire);
        if (stop_) return;
        std::exception_ptr error;
        try {
            (*job_)(index);
        } catch (...) {
            error = std::current_exception();
        }
        if (error) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!error_) error_ = error;
        }
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::lock_guard<std::mutex> lock(mutex_);  // pairs with the waiter's predicate check
            done_cv_.notify_one();
        }
    }
}

}  // namespace sightline::detail
