#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "trafficsplit/allocation/allocation.hpp"
#include "trafficsplit/errors.hpp"

namespace ts = trafficsplit;

namespace {

size_t moved(const std::vector<int16_t>& a, const std::vector<int16_t>& b) {
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
  return n;
}

std::vector<uint32_t> counts_of(const std::vector<int16_t>& map, size_t arms) {
  std::vector<uint32_t> c(arms, 0);
  for (int16_t a : map) ++c.at(static_cast<size_t>(a));
  return c;
}

}  // namespace

TEST(Apportion, LargestRemainderWithLowIndexTies) {
  EXPECT_EQ(ts::apportion({100.0 / 3, 100.0 / 3, 100.0 / 3}, 10000),
            (std::vector<uint32_t>{3334, 3333, 3333}));
  EXPECT_EQ(ts::apportion({50, 50}, 3), (std::vector<uint32_t>{2, 1}));
  EXPECT_EQ(ts::apportion({0, 100}, 7), (std::vector<uint32_t>{0, 7}));
  EXPECT_EQ(ts::apportion({12.5, 0, 87.5}, 997), (std::vector<uint32_t>{125, 0, 872}));
  EXPECT_EQ(ts::apportion({100}, 1), (std::vector<uint32_t>{1}));
}

TEST(Apportion, ZeroWeightNeverGetsABucket) {
  const auto c = ts::apportion({99.99, 0.0, 0.01}, 3);
  EXPECT_EQ(c[1], 0u);
  EXPECT_EQ(c[0] + c[2], 3u);
}

TEST(Apportion, RejectsBadWeights) {
  EXPECT_THROW(ts::apportion({50, 40}, 100), ts::InvalidArgument);
  EXPECT_THROW(ts::apportion({-1, 101}, 100), ts::InvalidArgument);
  EXPECT_THROW(ts::apportion({}, 100), ts::InvalidArgument);
  EXPECT_THROW(ts::apportion({100}, 0), ts::InvalidArgument);
  EXPECT_THROW(ts::apportion({100}, ts::kMaxBuckets + 1), ts::InvalidArgument);
  EXPECT_THROW(ts::apportion({std::numeric_limits<double>::quiet_NaN(), 100}, 10),
               ts::InvalidArgument);
}

TEST(Exposure, Threshold) {
  EXPECT_EQ(ts::exposure_threshold(0.0, 10000), 0u);
  EXPECT_EQ(ts::exposure_threshold(1.0, 10000), 10000u);
  EXPECT_EQ(ts::exposure_threshold(0.5, 10000), 5000u);
  EXPECT_EQ(ts::exposure_threshold(0.00005, 10000), 1u);  // floor(0.5 + 0.5)
  EXPECT_EQ(ts::exposure_threshold(0.62, 997), 618u);     // 618.14
  EXPECT_THROW(ts::exposure_threshold(1.01, 100), ts::InvalidArgument);
  EXPECT_THROW(ts::exposure_threshold(std::numeric_limits<double>::quiet_NaN(), 100),
               ts::InvalidArgument);
}

TEST(Allocator, FirstStepIsContiguous) {
  const auto maps = ts::allocate_history(10, {{30, 20, 50}});
  EXPECT_EQ(maps[0], (std::vector<int16_t>{0, 0, 0, 1, 1, 2, 2, 2, 2, 2}));
}

TEST(Allocator, ThreeEqualToHalfQuarterQuarterMovesTheTotalVariation) {
  const auto maps = ts::allocate_history(10000, {{100.0 / 3, 100.0 / 3, 100.0 / 3}, {50, 25, 25}});
  EXPECT_EQ(moved(maps[0], maps[1]), 1666u);
  EXPECT_EQ(counts_of(maps[1], 3), (std::vector<uint32_t>{5000, 2500, 2500}));
}

TEST(Allocator, ChangeAndReverseRestoresTheMap) {
  const auto maps = ts::allocate_history(10000, {{10, 90}, {50, 50}, {10, 90}});
  EXPECT_EQ(moved(maps[0], maps[1]), 4000u);
  EXPECT_EQ(maps[0], maps[2]);
  const auto multi =
      ts::allocate_history(1000, {{25, 25, 25, 25}, {10, 10, 40, 40}, {25, 25, 25, 25}});
  EXPECT_EQ(multi[0], multi[2]);
}

TEST(Allocator, AddingAnArm) {
  const auto maps = ts::allocate_history(100, {{50, 50}, {40, 40, 20}});
  EXPECT_EQ(moved(maps[0], maps[1]), 20u);
  EXPECT_EQ(counts_of(maps[1], 3), (std::vector<uint32_t>{40, 40, 20}));
}

TEST(Allocator, RandomHistoriesMoveExactlyTheTotalVariation) {
  std::mt19937_64 rng(42);
  for (int trial = 0; trial < 300; ++trial) {
    const size_t arms = 2 + rng() % 5;
    const uint32_t buckets = std::vector<uint32_t>{1, 10, 997, 10000}[rng() % 4];
    std::vector<std::vector<double>> steps;
    for (int s = 0; s < 1 + static_cast<int>(rng() % 6); ++s) {
      std::vector<double> raw(arms);
      for (auto& w : raw) w = static_cast<double>(rng() % 100);
      double sum = std::accumulate(raw.begin(), raw.end(), 0.0);
      if (sum == 0) raw[0] = sum = 1;
      double acc = 0;
      for (size_t i = 0; i + 1 < arms; ++i) acc += raw[i] = raw[i] * 100 / sum;
      raw[arms - 1] = std::max(0.0, 100 - acc);
      steps.push_back(raw);
    }
    const auto maps = ts::allocate_history(buckets, steps);
    for (size_t s = 0; s < maps.size(); ++s) {
      const auto expected = ts::apportion(steps[s], buckets);
      ASSERT_EQ(counts_of(maps[s], arms), expected);
      if (s == 0) continue;
      const auto before = counts_of(maps[s - 1], arms);
      size_t tv = 0;
      for (size_t i = 0; i < arms; ++i) tv += before[i] > expected[i] ? before[i] - expected[i] : 0;
      ASSERT_EQ(moved(maps[s - 1], maps[s]), tv);
    }
  }
}

TEST(Allocator, CannotRemoveArms) {
  ts::Allocator a(10, {5, 5});
  EXPECT_THROW(a.transition({10}), ts::InvalidArgument);
  EXPECT_THROW(a.transition({5, 4}), ts::InvalidArgument);
}
