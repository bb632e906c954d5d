// GoogleTest: bandit policies, the generator, probability best, floor and cap.
#include <gtest/gtest.h>

#include <boost/math/distributions/beta.hpp>
#include <boost/math/quadrature/gauss_kronrod.hpp>
#include <cmath>
#include <numeric>
#include <vector>

#include "trafficsplit/bandit/linear.hpp"
#include "trafficsplit/bandit/policy.hpp"
#include "trafficsplit/bandit/random.hpp"
#include "trafficsplit/errors.hpp"

namespace bd = trafficsplit::bandit;
using trafficsplit::InvalidArgument;

// splitmix64's published test vector: seed 1234567.
TEST(BanditRandom, SplitMix64Vector) {
  uint64_t s = 1234567;
  EXPECT_EQ(bd::splitmix64(s), 6457827717110365317ULL);
  EXPECT_EQ(bd::splitmix64(s), 3203168211198807973ULL);
  EXPECT_EQ(bd::splitmix64(s), 9817491932198370423ULL);
}

TEST(BanditRandom, EpochSeedsDiffer) {
  EXPECT_EQ(bd::epoch_seed(7, 1), bd::epoch_seed(7, 1));
  EXPECT_NE(bd::epoch_seed(7, 1), bd::epoch_seed(7, 2));
  EXPECT_NE(bd::epoch_seed(7, 1), bd::epoch_seed(8, 1));
}

TEST(BanditRandom, MomentsOfTheSamplers) {
  bd::Rng rng(42);
  const int n = 200'000;
  double sum = 0, sum2 = 0, gsum = 0, bsum = 0;
  for (int i = 0; i < n; ++i) {
    const double z = rng.normal();
    sum += z;
    sum2 += z * z;
    gsum += rng.gamma(2.5);
    bsum += rng.beta(2, 6);
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sum2 / n, 1.0, 0.01);
  EXPECT_NEAR(gsum / n, 2.5, 0.02);
  EXPECT_NEAR(bsum / n, 0.25, 0.002);
}

TEST(BanditStats, MergeEqualsOneBatch) {
  const std::vector<int64_t> arms = {0, 1, 0, 0, 1, 1, 1, 0};
  const std::vector<double> rewards = {1.5, 2.0, -1.0, 4.0, 2.5, 3.0, 0.0, 2.0};
  const auto whole = bd::batch_stats(2, arms.data(), rewards.data(), arms.size(), false);
  auto left = bd::batch_stats(2, arms.data(), rewards.data(), 3, false);
  const auto right = bd::batch_stats(2, arms.data() + 3, rewards.data() + 3, 5, false);
  for (int k = 0; k < 2; ++k) {
    left[k].merge(right[k]);
    EXPECT_EQ(left[k].count, whole[k].count);
    EXPECT_DOUBLE_EQ(left[k].sum, whole[k].sum);
    EXPECT_NEAR(left[k].m2, whole[k].m2, 1e-12);
  }
  // Arm 0: 1.5, -1, 4, 2 -> mean 1.625, m2 = sum of squared deviations.
  EXPECT_DOUBLE_EQ(whole[0].mean(), 1.625);
  EXPECT_NEAR(whole[0].m2, 0.015625 + 6.890625 + 5.640625 + 0.140625, 1e-12);
  const std::vector<int64_t> bad_arm = {0, 2};
  EXPECT_THROW(bd::batch_stats(2, bad_arm.data(), rewards.data(), 2, false), InvalidArgument);
  EXPECT_THROW(bd::batch_stats(2, arms.data(), rewards.data(), 2, true), InvalidArgument);
}

// P(B > A) = integral of pdf_B(x) cdf_A(x) over [0, 1], by Gauss-Kronrod quadrature.
TEST(BanditProbabilityBest, TwoBetaArmsAgreeWithQuadrature) {
  const double params[][4] = {{41, 961, 51, 951}, {2, 1, 1, 1}, {120, 880, 100, 900}};
  for (const auto& p : params) {
    const boost::math::beta_distribution<> a(p[0], p[1]), b(p[2], p[3]);
    const double exact = boost::math::quadrature::gauss_kronrod<double, 61>::integrate(
        [&](double x) { return boost::math::pdf(b, x) * boost::math::cdf(a, x); }, 0.0, 1.0, 15,
        1e-12);
    const auto mc = bd::probability_best_beta({p[0], p[2]}, {p[1], p[3]}, 20'000, 5);
    EXPECT_NEAR(mc[1], exact, 0.01) << p[0] << " " << p[1] << " " << p[2] << " " << p[3];
    EXPECT_DOUBLE_EQ(mc[0] + mc[1], 1.0);
  }
}

TEST(BanditProbabilityBest, ThreadsDoNotChangeTheEstimate) {
  std::vector<double> a, b;
  for (int k = 0; k < 10; ++k) {
    a.push_back(20 + k);
    b.push_back(300 - 5 * k);
  }
  const auto one = bd::probability_best_beta(a, b, 10'000, 9, 1);
  EXPECT_EQ(one, bd::probability_best_beta(a, b, 10'000, 9, 2));
  EXPECT_EQ(one, bd::probability_best_beta(a, b, 10'000, 9, 4));
  const auto t1 = bd::probability_best_student({1, 1.1}, {0.1, 0.1}, {5, 5}, 10'000, 9, 1);
  EXPECT_EQ(t1, bd::probability_best_student({1, 1.1}, {0.1, 0.1}, {5, 5}, 10'000, 9, 2));
  EXPECT_NEAR(t1[1], 0.75, 0.05);  // two t(5) draws 1 scale apart: P(T2 - T1 > -1) ~ 0.75
}

TEST(BanditLimits, FloorAndCap) {
  auto w = bd::limit_weights({0.9, 0.1, 0.0}, {}, 0.05, 1.0);
  EXPECT_NEAR(w[0], 0.855, 1e-12);
  EXPECT_NEAR(w[1], 0.095, 1e-12);
  EXPECT_NEAR(w[2], 0.05, 1e-12);
  w = bd::limit_weights({1, 0, 0}, {0.4, 0.3, 0.3}, 0.0, 0.1);
  EXPECT_NEAR(w[0], 0.5, 1e-12);
  EXPECT_NEAR(w[1], 0.25, 1e-12);
  EXPECT_NEAR(w[2], 0.25, 1e-12);
  EXPECT_THROW(bd::limit_weights({0.5, 0.5}, {}, 0.6, 1.0), InvalidArgument);
  EXPECT_THROW(bd::limit_weights({0, 0}, {}, 0.0, 1.0), InvalidArgument);
}

TEST(BanditPolicy, EpsilonGreedyAndUcb1) {
  bd::PolicyParams p;
  p.epsilon = 0.3;
  bd::Policy greedy(bd::PolicyKind::kEpsilonGreedy, 3, p);
  greedy.add(0, {100, 10, 9});
  greedy.add(1, {100, 12, 10.56});
  greedy.add(2, {100, 11, 9.79});
  const auto w = greedy.weights(0, {});
  EXPECT_NEAR(w[1], 0.8, 1e-12);
  EXPECT_NEAR(w[0], 0.1, 1e-12);
  bd::Policy ucb(bd::PolicyKind::kUcb1, 3, bd::PolicyParams{});
  ucb.add(0, {100, 50, 25});
  ucb.add(1, {4, 1, 0.75});
  const auto u = ucb.weights(0, {});
  EXPECT_EQ(u, (std::vector<double>{0, 0, 1}));  // the untried arm first
  ucb.add(2, {100, 40, 24});
  // Indexes: 0.5 + sqrt(2 ln 204 / 100) = 0.826, 0.25 + sqrt(2 ln 204 / 4) = 1.88, 0.4 + ...
  EXPECT_EQ(ucb.weights(0, {}), (std::vector<double>{0, 1, 0}));
}

TEST(BanditPolicy, RefusesMismatchedMerges) {
  bd::Policy a(bd::PolicyKind::kBernoulliThompson, 2, {});
  bd::Policy b(bd::PolicyKind::kBernoulliThompson, 3, {});
  EXPECT_THROW(a.merge(b), InvalidArgument);
  EXPECT_THROW(a.add(0, {10, 11, 0}), InvalidArgument);  // 11 successes out of 10
}

TEST(BanditLinear, CoefficientsAreRidgeRegression) {
  // One feature: theta = sum(x r) / (ridge + sum(x^2)).
  bd::LinearThompson lin(2, 1, 2.0, 0.5, 100, 1, 0.0);
  const std::vector<double> x = {1, 2, 3, 1};
  const std::vector<int64_t> arms = {0, 0, 0, 1};
  const std::vector<double> r = {1, 1, 2, 5};
  lin.update(x.data(), arms.data(), r.data(), 4);
  const auto theta = lin.coefficients();
  EXPECT_NEAR(theta[0], (1 + 2 + 6) / (2.0 + 14), 1e-12);
  EXPECT_NEAR(theta[1], 5 / 3.0, 1e-12);
  std::vector<double> out(2);
  const double row = 1.0;
  lin.probabilities(&row, 1, 0, out.data());
  EXPECT_NEAR(out[0] + out[1], 1.0, 1e-12);
  EXPECT_GT(out[1], out[0]);
}

// The log-free acceptance bound never accepts what Marsaglia & Tsang's exact test rejects.
TEST(BanditRandom, GammaAcceptanceBoundIsConservative) {
  bd::Rng rng(3);
  int disagreements = 0, checked = 0;
  for (double shape : {1.0, 2.5, 30.0, 1e3, 1e5}) {
    const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    for (int i = 0; i < 20'000; ++i) {
      const double x = 8 * rng.uniform() - 4;
      const double t = c * x;
      if (t <= -1) continue;
      const double v = (1 + t) * (1 + t) * (1 + t);
      const double exact_threshold = 0.5 * x * x + d * (1 - v + std::log(v));
      // u spread around exp(threshold), where the decision is made.
      const double u = std::min(1.0, std::exp(exact_threshold) * (0.999 + 0.002 * rng.uniform()));
      if (!(u > 0) || u >= 1) continue;
      ++checked;
      const bool exact = bd::detail::gamma_slow(d, x * x, v, u) != 0;
      if (bd::detail::gamma_accept(d, t, x * x, v, u) != exact) ++disagreements;
    }
  }
  EXPECT_GT(checked, 50'000);
  EXPECT_EQ(disagreements, 0);
}
