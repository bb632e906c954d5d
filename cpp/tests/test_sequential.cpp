#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "trafficsplit/errors.hpp"
#include "trafficsplit/stats/sequential.hpp"

namespace st = trafficsplit::stats;
using trafficsplit::InvalidArgument;

namespace {

std::vector<double> equally_spaced(int k) {
  std::vector<double> t;
  for (int i = 1; i <= k; ++i) t.push_back(static_cast<double>(i) / k);
  return t;
}

void expect_bounds(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "look " << i;
}

const st::SpendingFunction kObf{st::SpendingFamily::kObrienFleming, 0.0};
const st::SpendingFunction kPocock{st::SpendingFamily::kPocock, 0.0};

}  // namespace

// gsDesign / ldbounds / rpact: Lan-DeMets O'Brien-Fleming-type, one-sided alpha = 0.025.
TEST(GroupSequential, ObrienFlemingSpendingMatchesPublishedTables) {
  expect_bounds(st::spending_boundaries(equally_spaced(3), 0.025, 1, kObf).upper,
                {3.7103, 2.5114, 1.9930}, 1e-3);
  const auto b5 = st::spending_boundaries(equally_spaced(5), 0.025, 1, kObf);
  expect_bounds(b5.upper, {4.8769, 3.3570, 2.6803, 2.2898, 2.0310}, 1e-3);
  EXPECT_NEAR(b5.cumulative_alpha.back(), 0.025, 1e-12);
  EXPECT_NEAR(b5.nominal_alpha.back(), 0.021126, 2e-5);
  // Two-sided at 2 x 0.025 spends 0.025 per side: within 2e-5 of the one-sided bounds.
  expect_bounds(st::spending_boundaries(equally_spaced(5), 0.025, 2, kObf).upper, b5.upper, 1e-4);
}

TEST(GroupSequential, PocockSpendingAndUnequalLooks) {
  expect_bounds(st::spending_boundaries(equally_spaced(4), 0.025, 1, kPocock).upper,
                {2.3683, 2.3675, 2.3582, 2.3500}, 1e-3);
  expect_bounds(st::spending_boundaries({0.3, 0.6, 0.8, 1.0}, 0.025, 1, kObf).upper,
                {3.9286, 2.6700, 2.2889, 2.0307}, 1e-3);
}

// rpact unit tests (test-f_design_group_sequential.R).
TEST(GroupSequential, RpactRows) {
  expect_bounds(st::wang_tsiatis_boundaries(equally_spaced(3), 0.025, 1, 0.0).upper,
                {3.4710914, 2.4544323, 2.0040356}, 1e-5);
  expect_bounds(
      st::boundaries_from_cumulative_alpha(equally_spaced(4), {0.01, 0.02, 0.03, 0.05}, 1).upper,
      {2.3263479, 2.2192994, 2.1201347, 1.8189562}, 1e-5);
  const st::SpendingFunction hsd0{st::SpendingFamily::kHwangShihDeCani, 0.0};
  expect_bounds(st::spending_boundaries({0.2, 0.4, 1.0}, 0.03, 1, hsd0).upper,
                {2.5121443, 2.4228747, 2.0280392}, 1e-5);
  const double inf = std::numeric_limits<double>::quiet_NaN();
  const auto hp = st::boundaries_from_cumulative_alpha(equally_spaced(4), {0, 0, 0, 0.025}, 1,
                                                       st::kDefaultGridPoints, {3, 3, 3, inf});
  EXPECT_NEAR(hp.upper.back(), 1.9827514, 1e-5);
}

TEST(GroupSequential, UnplannedLooksAndDecision) {
  // Looks at the planned fractions reproduce the design; a crossing is reported at its look.
  const auto d = st::decide({1.0, 2.0, 2.9}, {0.2, 0.4, 0.6}, 0.025, 1, kObf);
  const auto b = st::spending_boundaries({0.2, 0.4, 0.6}, 0.025, 1, kObf);
  expect_bounds(d.bounds, b.upper, 1e-12);
  EXPECT_EQ(d.crossed, 2);
  EXPECT_EQ(d.direction, 1);
  EXPECT_FALSE(d.final);
  // A repeated fraction shares the previous bound; a fraction above 1 spends the rest.
  const auto r = st::decide({0.5, 0.6, 1.0}, {0.5, 0.5, 1.2}, 0.025, 2, kObf);
  EXPECT_EQ(r.bounds[0], r.bounds[1]);
  EXPECT_TRUE(r.final);
  EXPECT_NEAR(r.cumulative_alpha.back(), 0.025, 1e-12);
  EXPECT_EQ(r.crossed, -1);
  EXPECT_THROW(st::decide({1, 2}, {1.0, 1.1}, 0.025, 1, kObf), InvalidArgument);
  EXPECT_THROW(st::decide({1, 2}, {0.5, 0.4}, 0.025, 1, kObf), InvalidArgument);
}

TEST(GroupSequential, InvalidInput) {
  EXPECT_THROW(st::spending_boundaries({}, 0.025, 1, kObf), InvalidArgument);
  EXPECT_THROW(st::spending_boundaries({0.5, 0.5}, 0.025, 1, kObf), InvalidArgument);
  EXPECT_THROW(st::spending_boundaries({0.5, 1.2, 1.5}, 0.025, 1, kObf), InvalidArgument);
  EXPECT_THROW(st::spending_boundaries({0.0, 1.0}, 0.025, 1, kObf), InvalidArgument);
  EXPECT_THROW(st::spending_boundaries({0.5, 1.0}, 0.5, 1, kObf), InvalidArgument);
  EXPECT_THROW(st::spending_boundaries({0.5, 1.0}, 0.0, 1, kObf), InvalidArgument);
  EXPECT_THROW(st::spending_boundaries({0.5, 1.0}, 0.025, 3, kObf), InvalidArgument);
  const st::SpendingFunction kd{st::SpendingFamily::kKimDeMets, -1.0};
  EXPECT_THROW(st::spending_boundaries({0.5, 1.0}, 0.025, 1, kd), InvalidArgument);
  EXPECT_THROW(st::boundaries_from_cumulative_alpha({0.5, 1.0}, {0.02, 0.01}, 1), InvalidArgument);
}

// Jennison & Turnbull: maximum-information inflation; cross-checked in the Python tests by
// simulation.
TEST(GroupSequential, InflationIsAboveOneAndGrowsWithPocock) {
  const auto t = equally_spaced(5);
  const double obf =
      st::inflation_factor(t, st::spending_boundaries(t, 0.025, 1, kObf).upper, 0.025, 1, 0.8);
  const double poc =
      st::inflation_factor(t, st::spending_boundaries(t, 0.025, 1, kPocock).upper, 0.025, 1, 0.8);
  EXPECT_GT(obf, 1.0);
  EXPECT_LT(obf, 1.05);
  EXPECT_GT(poc, obf);
  // A single look is the fixed design.
  EXPECT_NEAR(st::inflation_factor({1.0}, {1.959963984540054}, 0.025, 1, 0.8), 1.0, 1e-9);
}

// Notes 3c: V = 2, n = 1000 per arm, tau2 = 0.01, estimate 0.1 -> Lambda 3.27872.
TEST(AlwaysValid, MsprtMatchesClosedForm) {
  const auto p =
      st::msprt_path({0.1, 0.05, 0.0}, {2.0 / 1000, 2.0 / 10000, 2.0 / 1000}, {0.01}, 0.05, 0.0);
  EXPECT_NEAR(std::exp(p.log_likelihood_ratio[0]), 3.27872, 1e-5);
  EXPECT_NEAR(p.pvalue[0], 0.304997, 1e-6);
  EXPECT_NEAR(std::exp(p.log_likelihood_ratio[1]), 64.1702, 1e-4);
  EXPECT_NEAR(p.pvalue[1], 0.0155836, 1e-7);
  EXPECT_NEAR(std::exp(p.log_likelihood_ratio[2]), 0.408248, 1e-6);
  EXPECT_NEAR(p.pvalue[2], p.pvalue[1], 0.0);  // running minimum
  EXPECT_NEAR(p.half_width[0], 0.136674, 1e-6);
  EXPECT_THROW(st::msprt_path({0.1}, {0.0}, {0.01}, 0.05, 0.0), InvalidArgument);
  EXPECT_THROW(st::msprt_path({0.1}, {0.1}, {0.01, 0.02}, 0.05, 0.0), InvalidArgument);
}

// Under the null the first-crossing probabilities of the bounds add up to what was spent.
TEST(GroupSequential, CrossingProbabilitiesReproduceTheSpending) {
  const std::vector<double> t{0.1, 0.25, 0.5, 0.8, 1.0};
  const st::SpendingFunction hsd{st::SpendingFamily::kHwangShihDeCani, -2.0};
  const auto b = st::spending_boundaries(t, 0.025, 2, hsd);
  const auto p = st::crossing_probabilities(t, b.upper, 2, 0.0);
  double cum = 0;
  for (size_t k = 0; k < t.size(); ++k) {
    EXPECT_NEAR(p.upper[k], p.lower[k], 1e-12);  // symmetric under the null
    cum += p.upper[k];
    EXPECT_NEAR(cum, hsd.cumulative(t[k], 0.025), 1e-9) << "look " << k;
  }
}

// Notes 3c: GrowthBook N* = 5000 multiplier at n = N* (3.0352) and Eppo's at t = 1000 (3.8551).
TEST(AlwaysValid, ConfidenceSequenceTuning) {
  const double rho2 = st::confidence_sequence_rho2(0.05, 5000, 2);
  EXPECT_NEAR(rho2, (-2 * std::log(0.05) + std::log(1 - 2 * std::log(0.05))) / 5000, 1e-15);
  const double n = 5000, v = 1.0 / n;  // sigma = 1
  const auto p = st::msprt_path({0.0}, {v}, {n * v * rho2}, 0.05, 0.0);
  EXPECT_NEAR(p.half_width[0] * std::sqrt(n), 3.0352, 1e-4);
  const double rho_eppo = st::confidence_sequence_rho2(0.05, 10000, 2);
  const auto e = st::msprt_path({0.0}, {1e-3}, {1000 * 1e-3 * rho_eppo}, 0.05, 0.0);
  EXPECT_NEAR(e.half_width[0] * std::sqrt(1000.0), 3.8551, 1e-4);
  // One-sided: the p-value crosses alpha where the bound reaches the null.
  const double hw = st::one_sided_cs_half_width(0.01, 5000, 0.05, 5000);
  EXPECT_NEAR(st::one_sided_cs_pvalue(hw, 0.01, 5000, 0.05, 5000), 0.05, 1e-12);
  EXPECT_EQ(st::one_sided_cs_pvalue(-0.1, 0.01, 5000, 0.05, 5000), 1.0);
  EXPECT_THROW(st::confidence_sequence_rho2(0.05, 0.0, 2), InvalidArgument);
  EXPECT_THROW(st::confidence_sequence_rho2(0.5, 5000, 1), InvalidArgument);
}
