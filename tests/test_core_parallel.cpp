// The library's work queue (sightline/parallel.hpp): every item once, worker ids in range, and
// the lowest failing item's error whatever the thread count.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sightline/parallel.hpp"

TEST(Parallel, WorkerCountIsRequestedCappedByItemsAndAtLeastOne) {
    EXPECT_EQ(sightline::detail::worker_count(3, 10), 3);
    EXPECT_EQ(sightline::detail::worker_count(8, 2), 2);
    EXPECT_EQ(sightline::detail::worker_count(4, 0), 1);
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    EXPECT_EQ(sightline::detail::worker_count(0, 1000), std::min(cores, 1000));
}

TEST(Parallel, RunsEveryItemOnceWithWorkerIdsInRange) {
    for (int threads : {1, 2, 4}) {
        std::vector<std::atomic<int>> runs(97);
        std::mutex mutex;
        std::set<int> workers;
        sightline::detail::parallel_for_each(runs.size(), threads, [&](std::size_t i, int worker) {
            ++runs[i];
            std::lock_guard<std::mutex> lock(mutex);
            workers.insert(worker);
        });
        for (std::size_t i = 0; i < runs.size(); ++i) EXPECT_EQ(runs[i], 1) << "item " << i << ", " << threads;
        EXPECT_GE(*workers.begin(), 0);
        EXPECT_LT(*workers.rbegin(), threads);
    }
}

TEST(Parallel, NoItemsCallsNothing) {
    sightline::detail::parallel_for_each(0, 4, [](std::size_t, int) { FAIL() << "called without items"; });
}

TEST(Parallel, RethrowsTheLowestFailingItemWhateverTheThreadCount) {
    // Items 5 and 40 fail; 40 may well fail first on another thread, 5 must be reported.
    for (int threads : {1, 2, 3, 8}) {
        try {
            sightline::detail::parallel_for_each(64, threads, [](std::size_t i, int) {
                if (i == 40) throw std::runtime_error("item 40");
                if (i == 5) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(20));
                    throw std::runtime_error("item 5");
                }
            });
            FAIL() << "no exception with " << threads << " threads";
        } catch (const std::runtime_error& e) {
            EXPECT_EQ(std::string(e.what()), "item 5") << threads << " threads";
        }
    }
}

TEST(Parallel, StopsTakingItemsAfterAnError) {
    std::atomic<int> runs{0};
    EXPECT_THROW(sightline::detail::parallel_for_each(100000, 1,
                                           [&](std::size_t i, int) {
                                               ++runs;
                                               if (i == 3) throw std::runtime_error("stop");
                                           }),
                 std::runtime_error);
    EXPECT_EQ(runs, 4);
}
