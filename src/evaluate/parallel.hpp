// A minimal work queue for the evaluate area (private header).
#pragma once

#include <cstddef>
#include <functional>

namespace sightline::detail {

// Number of workers for `items` work items: `requested` (0 = all cores), at most `items`, >= 1.
int worker_count(int requested, std::size_t items);

// Calls work(item, worker) for every item in 0..items-1 on worker_count(threads, items)
// threads (worker in 0..workers-1; items taken in increasing order). Stops taking items after
// the first exception and rethrows the exception of the lowest failing item.
void parallel_for_each(std::size_t items, int threads,
                       const std::function<void(std::size_t, int)>& work);

}  // namespace sightline::detail
