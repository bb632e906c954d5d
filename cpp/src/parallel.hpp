// The one way the kernels split work over threads (internal header): contiguous chunks, the
// first on the calling thread; every thread is joined before returning, and an exception in any
// chunk reaches the caller instead of terminating the process. Inputs too small to pay for a
// thread (starting one costs tens of microseconds) run on the calling thread alone. Kernels keep
// their results independent of the split: each item's result depends only on the item, or
// per-chunk partials merge in chunk order.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <system_error>
#include <thread>
#include <vector>

namespace trafficsplit::detail {

// [0, n) cut into `count` chunks of `size` items, the last one possibly shorter, none empty
// (one chunk of n items when n is 0).
struct Chunks {
  size_t count = 1;
  size_t size = 0;
};

// One chunk per thread worth starting: `threads` of them (0: every hardware thread), but no more
// than leave each at least `min_per_thread` items. Sizes are rounded up to a multiple of `align`
// (a kernel's block), which may leave fewer chunks than threads.
inline Chunks plan_chunks(size_t n, unsigned threads, size_t min_per_thread, size_t align = 1) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  const size_t useful = n / std::max<size_t>(1, min_per_thread);
  const size_t workers = std::min<size_t>(threads, useful);
  if (workers <= 1) return {1, n};
  align = std::max<size_t>(1, align);
  size_t size = (n + workers - 1) / workers;
  size = (size + align - 1) / align * align;
  return {(n + size - 1) / size, size};
}

// Calls body(chunk, begin, end) once for every chunk of [0, n): chunk 0 on the calling thread,
// the others on threads of their own (a thread that cannot be started leaves its chunk to the
// calling thread). Returns when every chunk has finished; if some threw, rethrows the exception
// of the lowest such chunk.
template <typename Body>
void run_chunks(size_t n, const Chunks& chunks, Body&& body) {
  if (chunks.count <= 1) {
    body(size_t{0}, size_t{0}, n);
    return;
  }
  std::vector<std::exception_ptr> failed(chunks.count);
  auto run = [&](size_t c) noexcept {
    const size_t begin = std::min(n, c * chunks.size);
    const size_t end = std::min(n, begin + chunks.size);
    try {
      body(c, begin, end);
    } catch (...) {
      failed[c] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(chunks.count - 1);
  size_t started = 1;
  for (; started < chunks.count; ++started) {
    try {
      pool.emplace_back(run, started);
    } catch (const std::system_error&) {
      break;
    }
  }
  run(0);
  for (size_t c = started; c < chunks.count; ++c) run(c);
  for (auto& t : pool) t.join();
  for (const auto& e : failed) {
    if (e) std::rethrow_exception(e);
  }
}

// body(begin, end) over the chunks of plan_chunks(n, threads, min_per_thread, align).
template <typename Body>
void parallel_for(size_t n, unsigned threads, size_t min_per_thread, Body&& body,
                  size_t align = 1) {
  run_chunks(n, plan_chunks(n, threads, min_per_thread, align),
             [&](size_t, size_t begin, size_t end) { body(begin, end); });
}

}  // namespace trafficsplit::detail
