// The thread splitter every kernel uses (cpp/src/parallel.hpp).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "parallel.hpp"

namespace {

using trafficsplit::detail::Chunks;
using trafficsplit::detail::parallel_for;
using trafficsplit::detail::plan_chunks;
using trafficsplit::detail::run_chunks;

TEST(Parallel, EveryIndexOnceInContiguousChunks) {
  for (size_t n : {0, 1, 2, 3, 5, 7, 64, 100, 1000, 1023, 1024, 1025, 4099}) {
    for (unsigned threads : {0u, 1u, 2u, 3u, 4u, 7u, 16u}) {
      for (size_t min_per_thread : {1, 3, 100}) {
        for (size_t align : {1, 8, 1024}) {
          std::vector<std::atomic<int>> seen(n);
          std::mutex m;
          std::vector<std::pair<size_t, size_t>> ranges;
          parallel_for(
              n, threads, min_per_thread,
              [&](size_t begin, size_t end) {
                for (size_t i = begin; i < end; ++i) seen[i].fetch_add(1);
                std::lock_guard<std::mutex> lock(m);
                ranges.emplace_back(begin, end);
              },
              align);
          for (size_t i = 0; i < n; ++i) {
            ASSERT_EQ(seen[i].load(), 1) << "n=" << n << " threads=" << threads << " i=" << i;
          }
          const Chunks plan = plan_chunks(n, threads, min_per_thread, align);
          ASSERT_EQ(ranges.size(), plan.count);
          if (threads > 0) EXPECT_LE(plan.count, threads);
          for (const auto& [begin, end] : ranges) {
            if (plan.count > 1) {
              EXPECT_LT(begin, end) << "an empty chunk, n=" << n;
              EXPECT_EQ(begin % align, 0u);
            }
          }
        }
      }
    }
  }
}

TEST(Parallel, ChunkIndexMatchesItsRange) {
  const Chunks plan = plan_chunks(10'000, 4, 100);
  ASSERT_EQ(plan.count, 4u);
  std::vector<std::pair<size_t, size_t>> got(plan.count);
  run_chunks(10'000, plan, [&](size_t c, size_t begin, size_t end) { got[c] = {begin, end}; });
  size_t next = 0;
  for (const auto& [begin, end] : got) {  // in chunk order, the chunks tile [0, n)
    EXPECT_EQ(begin, next);
    next = end;
  }
  EXPECT_EQ(next, 10'000u);
}

TEST(Parallel, SmallInputsRunInlineOnTheCallingThread) {
  const auto caller = std::this_thread::get_id();
  for (size_t n : {0, 1, 99, 199}) {  // fewer than two threads' minimum of 100
    std::vector<std::thread::id> ids;
    std::vector<std::pair<size_t, size_t>> ranges;
    parallel_for(n, 8, 100, [&](size_t begin, size_t end) {
      ids.push_back(std::this_thread::get_id());  // unsynchronised: one call expected
      ranges.emplace_back(begin, end);
    });
    ASSERT_EQ(ids.size(), 1u) << n;
    EXPECT_EQ(ids[0], caller);
    EXPECT_EQ(ranges[0], std::make_pair(size_t{0}, n));
  }
  // One thread asked for: inline whatever the size.
  std::vector<std::thread::id> ids;
  parallel_for(1'000'000, 1, 1, [&](size_t, size_t) { ids.push_back(std::this_thread::get_id()); });
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0], caller);
}

TEST(Parallel, LargeInputsUseThreadsBesideTheCaller) {
  const auto caller = std::this_thread::get_id();
  std::mutex m;
  std::vector<std::thread::id> ids;
  parallel_for(4000, 4, 1000, [&](size_t, size_t) {
    std::lock_guard<std::mutex> lock(m);
    ids.push_back(std::this_thread::get_id());
  });
  ASSERT_EQ(ids.size(), 4u);
  size_t on_caller = 0;
  for (const auto& id : ids) on_caller += id == caller;
  EXPECT_EQ(on_caller, 1u);
}

TEST(Parallel, AnExceptionIsRethrownAfterEveryThreadJoined) {
  for (size_t thrower : {0, 1, 3}) {
    const Chunks plan = plan_chunks(4000, 4, 1000);
    ASSERT_EQ(plan.count, 4u);
    std::vector<std::atomic<bool>> finished(plan.count);
    try {
      run_chunks(4000, plan, [&](size_t c, size_t, size_t) {
        if (c == thrower) throw std::runtime_error("chunk " + std::to_string(c));
        // The others outlast the thrower: the call must still wait for them.
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        finished[c] = true;
      });
      FAIL() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()), "chunk " + std::to_string(thrower));
    }
    for (size_t c = 0; c < plan.count; ++c) {
      if (c != thrower) EXPECT_TRUE(finished[c].load()) << "chunk " << c << " still running";
    }
  }
}

TEST(Parallel, TheLowestThrowingChunkWins) {
  const Chunks plan = plan_chunks(8000, 8, 1000);
  ASSERT_EQ(plan.count, 8u);
  try {
    run_chunks(8000, plan, [&](size_t c, size_t, size_t) {
      if (c == 6) throw std::runtime_error("chunk 6");
      if (c == 2) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // throws last
        throw std::invalid_argument("chunk 2");
      }
    });
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "chunk 2");
  }
}

TEST(Parallel, AnInlineExceptionPropagates) {
  EXPECT_THROW(parallel_for(10, 4, 100, [](size_t, size_t) { throw std::out_of_range("x"); }),
               std::out_of_range);
}

TEST(Parallel, PlanRoundsToTheBlockAndLeavesNoEmptyChunk) {
  // 5 items over 4 threads, one each at least: sizes of 2 leave three chunks, not an empty fourth.
  const Chunks five = plan_chunks(5, 4, 1);
  EXPECT_EQ(five.count, 3u);
  EXPECT_EQ(five.size, 2u);
  const Chunks blocks = plan_chunks(3000, 2, 1000, 1024);
  EXPECT_EQ(blocks.size, 2048u);
  EXPECT_EQ(blocks.count, 2u);
  const Chunks small = plan_chunks(1500, 2, 1000);  // one thread's minimum only
  EXPECT_EQ(small.count, 1u);
  EXPECT_EQ(small.size, 1500u);
}

}  // namespace
