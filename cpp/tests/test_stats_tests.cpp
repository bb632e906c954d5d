// GoogleTest: tests and intervals, power and Bayesian kernels. Reference values are scipy and
// statsmodels calls or published fixtures, listed in /docs/statistics.md.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "trafficsplit/errors.hpp"
#include "trafficsplit/stats/bayes.hpp"
#include "trafficsplit/stats/power.hpp"
#include "trafficsplit/stats/tests.hpp"

namespace st = trafficsplit::stats;
using st::Alternative;

namespace {
void expect_rel(double actual, double expected, double tol = 1e-8) {
  EXPECT_NEAR(actual, expected, tol * std::fabs(expected)) << "expected " << expected;
}
}  // namespace

// scipy.stats.ttest_ind_from_stats(..., equal_var=False)
TEST(StatsTests, WelchMatchesScipy) {
  const auto r =
      st::welch_ttest({100, 10.0, 4.0}, {120, 10.5, 6.25}, 0.05, Alternative::kTwoSided, 0.0);
  expect_rel(r.statistic, 1.6477051091);
  expect_rel(r.pvalue, 0.1008560122);
  const auto g =
      st::welch_ttest({3407, 0.41, 15.21}, {3461, 0.70, 38.44}, 0.05, Alternative::kTwoSided, 0.0);
  expect_rel(g.statistic, 2.3240227609);
  expect_rel(g.pvalue, 0.0201584026);
  EXPECT_NEAR(g.ci_low, 0.04538, 1e-5);
  EXPECT_NEAR(g.ci_high, 0.53462, 1e-5);
  const auto one = st::welch_ttest({10, 5.0, 1.0}, {12, 6.0, 9.0}, 0.05, Alternative::kLarger, 0.0);
  EXPECT_NEAR(one.pvalue, 0.2966241989 / 2, 1e-9);
  EXPECT_TRUE(std::isinf(one.ci_high));
  EXPECT_THROW(st::welch_ttest({1, 0, 0}, {5, 1, 1}, 0.05, Alternative::kTwoSided, 0),
               trafficsplit::InvalidArgument);
  EXPECT_THROW(st::welch_ttest({5, 0, 1}, {5, 1, 1}, 1.5, Alternative::kTwoSided, 0),
               trafficsplit::InvalidArgument);
}

// statsmodels proportions_ztest (pooled) and confint_proportions_2indep(method="wald").
TEST(StatsTests, TwoProportions) {
  const auto r =
      st::proportions_ztest(1000, 10000, 1100, 10000, true, 0.05, Alternative::kTwoSided, 0.0);
  expect_rel(r.statistic, 2.3066347738);
  expect_rel(r.pvalue, 0.0210751893);
  expect_rel(r.ci_low, 0.0015040591, 1e-7);
  expect_rel(r.ci_high, 0.0184959409);
  const auto w =
      st::proportions_ztest(1000, 10000, 1100, 10000, false, 0.05, Alternative::kTwoSided, 0.0);
  expect_rel(w.pvalue, 0.0210580732);
  const auto ni = st::proportions_wald(1020, 10000, 1000, 10000, 0.05, Alternative::kLarger, -0.01);
  EXPECT_NEAR(ni.statistic, 1.877314, 1e-6);
  EXPECT_NEAR(ni.pvalue, 0.0302376, 1e-7);
  EXPECT_THROW(st::proportions_ztest(11, 10, 1, 10, true, 0.05, Alternative::kTwoSided, 0),
               trafficsplit::InvalidArgument);
}

// docs/statistics.md relative-lift example: m 10 vs 10.5, s 5, n 1000 per arm (normal).
TEST(StatsTests, RelativeLiftMethods) {
  const st::Summary c{1000, 10, 25}, t{1000, 10.5, 25};
  const auto d =
      st::relative_lift(c, t, 0.05, st::LiftMethod::kDelta, Alternative::kTwoSided, false);
  EXPECT_NEAR(d.se, 0.022927, 1e-6);
  EXPECT_NEAR(d.ci_low, 0.005065, 2e-6);
  const auto f =
      st::relative_lift(c, t, 0.05, st::LiftMethod::kFieller, Alternative::kTwoSided, false);
  EXPECT_NEAR(f.ci_low, 0.006041, 1e-6);
  EXPECT_NEAR(f.ci_high, 0.095977, 1e-6);
  const auto l = st::relative_lift(c, t, 0.05, st::LiftMethod::kLog, Alternative::kTwoSided, false);
  EXPECT_NEAR(l.ci_low, 0.006013, 1e-6);
  EXPECT_NEAR(l.ci_high, 0.095911, 1e-6);
  // gbstats TwoSidedTTest relative fixture (Welch df).
  const auto g = st::relative_lift({3407, 0.41, 15.21}, {3461, 0.70, 38.44}, 0.05,
                                   st::LiftMethod::kDelta, Alternative::kTwoSided, true);
  EXPECT_NEAR(g.estimate, 0.70732, 1e-5);
  EXPECT_NEAR(g.se, 0.37879, 1e-5);
  EXPECT_NEAR(g.df, 5841.74, 1e-2);
  EXPECT_NEAR(g.pvalue, 0.06191, 1e-5);
  // Fieller without a finite interval: control mean indistinguishable from 0.
  const auto u = st::relative_lift({10, 0.1, 25}, {10, 1, 25}, 0.05, st::LiftMethod::kFieller,
                                   Alternative::kTwoSided, true);
  EXPECT_FALSE(u.bounded);
  EXPECT_TRUE(std::isinf(u.ci_low) && std::isinf(u.ci_high));
  EXPECT_THROW(
      st::relative_lift({10, 0, 1}, t, 0.05, st::LiftMethod::kDelta, Alternative::kTwoSided, true),
      trafficsplit::InvalidArgument);
}

// Ratio metric from sums: n=5000, ΣX=6087, ΣY=24895, ΣX²=25005, ΣY²=227499, ΣXY=54693.
TEST(StatsTests, RatioMetricDeltaMethod) {
  const double n = 5000, sx = 6087, sy = 24895;
  const st::RatioSummary s{n,
                           sx / n,
                           sy / n,
                           (25005 - sx * sx / n) / (n - 1),
                           (227499 - sy * sy / n) / (n - 1),
                           (54693 - sx * sy / n) / (n - 1)};
  const auto [r, se] = st::ratio_metric(s);
  EXPECT_NEAR(r, 0.244507, 1e-6);
  EXPECT_NEAR(se, 4.374971e-03, 1e-9);
}

// CUPED: y ≈ 2x on x = 1..8 split into odd/even arms; the pooled θ is the one-sample slope.
TEST(StatsTests, CupedPooledTheta) {
  const std::vector<double> y = {2.1, 3.9, 6.2, 7.8, 10.1, 12.2, 13.8, 16.1};
  const auto arm = [&](int start) {
    double n = 4, mx = 0, my = 0;
    for (int i = start; i < 8; i += 2) mx += (i + 1) / n, my += y[i] / n;
    double vx = 0, vy = 0, c = 0;
    for (int i = start; i < 8; i += 2) {
      vx += (i + 1 - mx) * (i + 1 - mx) / (n - 1);
      vy += (y[i] - my) * (y[i] - my) / (n - 1);
      c += (i + 1 - mx) * (y[i] - my) / (n - 1);
    }
    return st::CupedSummary{n, my, mx, vy, vx, c};
  };
  const auto r = st::cuped(arm(0), arm(1), 0.05, false, Alternative::kTwoSided);
  EXPECT_NEAR(r.theta, 1.997619, 1e-6);
  EXPECT_GT(r.variance_reduction, 0.99);
  EXPECT_NEAR(r.unadjusted.estimate, (3.9 + 7.8 + 12.2 + 16.1 - 2.1 - 6.2 - 10.1 - 13.8) / 4,
              1e-12);
}

// statsmodels multipletests, p = [0.01, 0.04, 0.03, 0.005, 0.20].
TEST(StatsTests, AdjustPvalues) {
  const std::vector<double> p = {0.01, 0.04, 0.03, 0.005, 0.20};
  const std::vector<double> holm = {0.04, 0.09, 0.09, 0.025, 0.2};
  const std::vector<double> bh = {0.025, 0.05, 0.05, 0.025, 0.2};
  const auto h = st::adjust_pvalues(p, st::AdjustMethod::kHolm);
  const auto b = st::adjust_pvalues(p, st::AdjustMethod::kBenjaminiHochberg);
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_NEAR(h[i], holm[i], 1e-12);
    EXPECT_NEAR(b[i], bh[i], 1e-12);
  }
  const auto nan = std::numeric_limits<double>::quiet_NaN();
  const auto withnan = st::adjust_pvalues({0.01, nan, 0.02}, st::AdjustMethod::kBonferroni);
  EXPECT_NEAR(withnan[0], 0.02, 1e-15);
  EXPECT_TRUE(std::isnan(withnan[1]));
  EXPECT_THROW(st::adjust_pvalues({1.5}, st::AdjustMethod::kHolm), trafficsplit::InvalidArgument);
}

// statsmodels samplesize_proportions_2indep_onetail, power_proportions_2indep, NormalIndPower.
TEST(StatsPower, MatchesStatsmodels) {
  expect_rel(st::sample_size_proportions(0.10, 0.01, 0.05, 0.8, 2, 1).control, 14750.79, 1e-6);
  expect_rel(st::sample_size_proportions(0.02, 0.01, 0.05, 0.8, 2, 1).control, 3825.1497, 1e-7);
  EXPECT_NEAR(st::power_proportions(0.10, 0.01, 14751, 0.05, 2, 1), 0.8000065, 1e-7);
  expect_rel(st::sample_size_means(1, 0.2, 0.05, 0.8, 2, 1).control, 392.4430233, 1e-8);
  expect_rel(st::sample_size_means(1, 0.2, 0.05, 0.8, 1, 1).control, 309.1278616, 1e-8);
  // solve_power stops early (0.0396227510); its own power function gives 0.8 at this value.
  expect_rel(st::mde_means(1, 10000, 0.05, 0.8, 2, 1), 0.039620349592920545, 1e-8);
  expect_rel(st::power_means(1, 0.05, 5000, 0.05, 2, 1), 0.7054180011, 1e-8);
  const double d = st::mde_proportions(0.10, 14750.79, 0.05, 0.8, 2, 1);
  EXPECT_NEAR(d, 0.01, 1e-7);
  EXPECT_THROW(st::sample_size_means(1, 0.2, 0.05, 0.8, 3, 1), trafficsplit::InvalidArgument);
}

// Beta(1,1) prior, A 100/1000, B 120/1000.
TEST(StatsBayes, BetaBinomialReference) {
  const st::BetaArm a{101, 901}, b{121, 881};
  EXPECT_NEAR(st::beta_prob_greater_sum(b, a), 0.923183, 1e-6);
  EXPECT_NEAR(st::beta_prob_greater_quadrature(b, a), st::beta_prob_greater_sum(b, a), 1e-10);
  const auto [ship, keep] = st::beta_expected_loss(b, a);
  EXPECT_NEAR(ship, 4.846139e-04, 1e-9);
  EXPECT_NEAR(keep, 2.044469e-02, 1e-8);
  const auto best = st::beta_prob_best({a, b});
  EXPECT_NEAR(best[1], 0.923183, 1e-6);
  const auto post =
      st::normal_effect_posterior(0.2, 0.1534, 0.0, std::numeric_limits<double>::infinity(), 0.05);
  EXPECT_NEAR(post.prob_positive, 0.9038458627045761, 1e-12);  // scipy norm.cdf(0.2/0.1534)
  EXPECT_NEAR(post.loss_control - post.loss_treatment, 0.2, 1e-12);
}
