#include <gtest/gtest.h>

#include "trafficsplit/errors.hpp"
#include "trafficsplit/stats/srm.hpp"

namespace st = trafficsplit::stats;

// Reference values: scipy.stats.chi2.sf (scipy 1.17).
TEST(ChiSquare, SurvivalFunctionMatchesPublishedValues) {
  EXPECT_NEAR(st::chi2_sf(3.8414588206941285, 1), 0.05, 1e-12);
  EXPECT_NEAR(st::chi2_sf(10.827566170662733, 1), 0.001, 1e-13);
  EXPECT_NEAR(st::chi2_sf(5.991464547107983, 2), 0.05, 1e-12);
  EXPECT_NEAR(st::chi2_sf(2.0, 3), 0.5724067044708798, 1e-12);
  EXPECT_EQ(st::chi2_sf(0, 4), 1.0);
  EXPECT_THROW(st::chi2_sf(1, 0), trafficsplit::InvalidArgument);
}

TEST(ChiSquare, SampleRatioMismatch) {
  const auto r = st::srm_chi_square({505000, 495000}, {50, 50});
  EXPECT_NEAR(r.statistic, 100.0, 1e-9);
  EXPECT_EQ(r.df, 1);
  EXPECT_LT(r.pvalue, 1e-20);
  const auto even = st::srm_chi_square({100, 200, 700}, {10, 20, 70});
  EXPECT_EQ(even.statistic, 0.0);
  EXPECT_EQ(even.pvalue, 1.0);
  EXPECT_THROW(st::srm_chi_square({1, 2}, {1}), trafficsplit::InvalidArgument);
}
