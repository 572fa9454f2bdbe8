// The library's one work queue: a loop body run on a few threads, for work whose items are
// independent (generating images, counting mask pairs, reading every training sample once).
#pragma once

#include <cstddef>
#include <functional>

namespace sightline::detail {

// Number of workers for `items` work items: `requested` (0 = all cores), at most `items`, >= 1.
int worker_count(int requested, std::size_t items);

// Calls work(item, worker) for every item in 0..items-1 on worker_count(threads, items)
// threads, the calling thread being worker 0 (worker in 0..workers-1; items are taken in
// increasing order). Stops taking items after the first exception and rethrows the exception
// of the lowest failing item, so the error reported does not depend on the thread count.
void parallel_for_each(std::size_t items, int threads, const std::function<void(std::size_t, int)>& work);

}  // namespace sightline::detail
