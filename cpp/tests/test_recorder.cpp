// GoogleTest: the per-arm metric recorder.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "trafficsplit/errors.hpp"
#include "trafficsplit/telemetry/paired.hpp"
#include "trafficsplit/telemetry/recorder.hpp"

using trafficsplit::InvalidArgument;
using trafficsplit::telemetry::Recorder;
using trafficsplit::telemetry::SeriesMoments;

namespace {

// Two-pass reference: mean, then Σ (x - mean)².
SeriesMoments two_pass(const std::vector<double>& xs) {
  SeriesMoments m;
  m.n = xs.size();
  double s = 0;
  for (double x : xs) s += x;
  m.mean = s / static_cast<double>(xs.size());
  for (double x : xs) m.m2 += (x - m.mean) * (x - m.mean);
  return m;
}

}  // namespace

TEST(Recorder, WelfordMatchesTwoPass) {
  // 1..10: mean 5.5, Σ(x-5.5)² = 82.5 (closed form n(n²-1)/12).
  Recorder r(4);
  const uint32_t id = r.series("latency", "control");
  for (int i = 1; i <= 10; ++i) r.record(id, i);
  const auto snap = r.snapshot();
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].metric, "latency");
  EXPECT_EQ(snap[0].arm, "control");
  EXPECT_EQ(snap[0].moments.n, 10u);
  EXPECT_DOUBLE_EQ(snap[0].moments.mean, 5.5);
  EXPECT_NEAR(snap[0].moments.m2, 82.5, 1e-12);
}

TEST(Recorder, LargeOffsetKeepsPrecision) {
  // Values 1e9 + {4, 7, 13, 16}: the naive Σx² - (Σx)²/n loses every digit; Welford keeps 90.
  Recorder r;
  const uint32_t id = r.series("cost", "a");
  for (double d : {4.0, 7.0, 13.0, 16.0}) r.record(id, 1e9 + d);
  const auto m = r.snapshot()[0].moments;
  EXPECT_DOUBLE_EQ(m.mean, 1e9 + 10.0);
  EXPECT_NEAR(m.m2, 90.0, 1e-6);
}

TEST(Recorder, SeriesIdsAreStableAndDistinct) {
  Recorder r;
  const uint32_t a = r.series("latency", "control");
  const uint32_t b = r.series("latency", "treatment");
  const uint32_t c = r.series("errors", "control");
  EXPECT_EQ(a, 0u);
  EXPECT_EQ(b, 1u);
  EXPECT_EQ(c, 2u);
  EXPECT_EQ(r.series("latency", "treatment"), b);
  // Concatenation alone would confuse these two.
  EXPECT_NE(r.series("ab", "c"), r.series("a", "bc"));
  EXPECT_EQ(r.series_count(), 5u);
  EXPECT_THROW(r.series("", "control"), InvalidArgument);
  EXPECT_THROW(r.record(99, 1.0), InvalidArgument);
  EXPECT_THROW(Recorder(0), InvalidArgument);
}

TEST(Recorder, NonFiniteValuesAreSkippedAndCounted) {
  Recorder r;
  const uint32_t id = r.series("latency", "control");
  r.record(id, 2.0);
  r.record(id, std::numeric_limits<double>::quiet_NaN());
  r.record(id, std::numeric_limits<double>::infinity());
  r.record(id, 4.0);
  const auto m = r.snapshot()[0].moments;
  EXPECT_EQ(m.n, 2u);
  EXPECT_EQ(m.skipped, 2u);
  EXPECT_DOUBLE_EQ(m.mean, 3.0);
  EXPECT_DOUBLE_EQ(m.m2, 2.0);
}

TEST(Recorder, RecordManyEqualsOneByOne) {
  std::vector<double> xs;
  for (int i = 0; i < 1000; ++i) xs.push_back(std::sin(i) * 100 + i * 0.01);
  Recorder one, many;
  const uint32_t a = one.series("m", "x");
  const uint32_t b = many.series("m", "x");
  for (double x : xs) one.record(a, x);
  many.record_many(b, xs.data(), 400);
  many.record_many(b, xs.data() + 400, xs.size() - 400);
  const auto ref = two_pass(xs);
  for (const Recorder* r : {&one, &many}) {
    const auto m = r->snapshot()[0].moments;
    EXPECT_EQ(m.n, ref.n);
    EXPECT_NEAR(m.mean, ref.mean, 1e-12 * std::abs(ref.mean));
    EXPECT_NEAR(m.m2, ref.m2, 1e-10 * ref.m2);
  }
}

TEST(Recorder, MergeOfPartsEqualsWhole) {
  std::vector<double> xs;
  for (int i = 0; i < 97; ++i) xs.push_back((i * 37) % 101 - 50.5);
  SeriesMoments left, right, empty;
  for (size_t i = 0; i < xs.size(); ++i) (i < 30 ? left : right).add(xs[i]);
  left.merge(right);
  left.merge(empty);
  const auto ref = two_pass(xs);
  EXPECT_EQ(left.n, ref.n);
  EXPECT_NEAR(left.mean, ref.mean, 1e-12);
  EXPECT_NEAR(left.m2, ref.m2, 1e-9);
  empty.merge(left);
  EXPECT_EQ(empty.n, ref.n);
  EXPECT_DOUBLE_EQ(empty.m2, left.m2);
}

TEST(Recorder, ConcurrentWritersLoseNothing) {
  // 8 threads x 50,000 values of 0..9 on two arms: counts exact, mean 4.5, Σ(x-4.5)² = 8.25 n.
  Recorder r(4);
  const uint32_t ids[2] = {r.series("latency", "control"), r.series("latency", "treatment")};
  constexpr int kThreads = 8, kPerThread = 50'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) r.record(ids[(i + t) % 2], (i / 2) % 10);
      const double batch[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
      r.record_many(ids[t % 2], batch, 10);
    });
  }
  for (auto& th : threads) th.join();
  const auto snap = r.snapshot();
  uint64_t total = 0;
  for (const auto& s : snap) {
    total += s.moments.n;
    EXPECT_NEAR(s.moments.mean, 4.5, 1e-12);
    EXPECT_NEAR(s.moments.m2, 8.25 * static_cast<double>(s.moments.n), 1e-6);
  }
  EXPECT_EQ(total, static_cast<uint64_t>(kThreads) * (kPerThread + 10));
  EXPECT_EQ(snap[0].moments.n, snap[1].moments.n);
  r.reset();
  EXPECT_EQ(r.snapshot()[0].moments.n, 0u);
  EXPECT_EQ(r.series_count(), 2u);
}

// -- paired comparisons (reference values from scipy.stats.ttest_rel and
// statsmodels.stats.proportion.proportion_confint(method="wilson")) -----------------------

using trafficsplit::telemetry::paired_difference;
using trafficsplit::telemetry::wilson_interval;

TEST(PairedDifference, MatchesScipyTtestRel) {
  const double a[] = {1, 2, 3, 4, 5};
  const double b[] = {2, 4, 5, 4, 8};
  const auto r = paired_difference(a, b, 5, 0.95);
  EXPECT_EQ(r.n, 5u);
  EXPECT_DOUBLE_EQ(r.mean, 1.6);
  EXPECT_NEAR(r.sd, std::sqrt(1.3), 1e-14);
  EXPECT_NEAR(r.t, 3.1378581622109443, 1e-12);
  EXPECT_NEAR(r.p_value, 0.03491970667453904, 1e-12);
  EXPECT_NEAR(r.ci_low, 0.18428522301772787, 1e-12);
  EXPECT_NEAR(r.ci_high, 3.0157147769822723, 1e-12);
}

TEST(PairedDifference, SkipsNonFinitePairsAndDegenerateCases) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double a[] = {1, nan, 2, 3, 4, 5};
  const double b[] = {2, 9, 4, 5, 4, 8};
  const auto r = paired_difference(a, b, 6, 0.95);
  EXPECT_EQ(r.n, 5u);
  EXPECT_NEAR(r.t, 3.1378581622109443, 1e-12);
  const double c[] = {1, 2, 3};
  const double d[] = {2, 3, 4};
  const auto constant = paired_difference(c, d, 3, 0.95);
  EXPECT_DOUBLE_EQ(constant.mean, 1.0);
  EXPECT_DOUBLE_EQ(constant.sd, 0.0);
  EXPECT_TRUE(std::isnan(constant.t));
  EXPECT_TRUE(std::isnan(constant.p_value));
  EXPECT_TRUE(std::isnan(paired_difference(c, d, 1, 0.95).t));
  EXPECT_THROW(paired_difference(c, d, 3, 1.0), InvalidArgument);
}

TEST(PairedDifference, LeavesOutAnOverflowingDifference) {
  const double a[] = {1, 2, 3, 4, 5, -1.5e308};
  const double b[] = {2, 4, 5, 4, 8, 1.5e308};
  const auto r = paired_difference(a, b, 6, 0.95);
  EXPECT_EQ(r.n, 5u);
  EXPECT_DOUBLE_EQ(r.mean, 1.6);
  EXPECT_NEAR(r.p_value, 0.03491970667453904, 1e-12);
}

TEST(WilsonInterval, MatchesStatsmodels) {
  const auto p = wilson_interval(8, 10, 0.95);
  EXPECT_DOUBLE_EQ(p.estimate, 0.8);
  EXPECT_NEAR(p.low, 0.49016247153664183, 1e-12);
  EXPECT_NEAR(p.high, 0.9433178485456247, 1e-12);
  const auto zero = wilson_interval(0, 7, 0.90);
  EXPECT_DOUBLE_EQ(zero.low, 0.0);
  EXPECT_NEAR(zero.high, 0.27876269545254223, 1e-12);
  EXPECT_TRUE(std::isnan(wilson_interval(0, 0, 0.95).estimate));
  EXPECT_THROW(wilson_interval(3, 2, 0.95), InvalidArgument);
}
