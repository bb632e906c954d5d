// Sample-ratio mismatch: Pearson's chi-square goodness of fit of observed counts against
// the configured weights.
#pragma once

#include <cstdint>
#include <vector>

namespace trafficsplit::stats {

struct ChiSquareResult {
  double statistic = 0.0;
  double pvalue = 1.0;
  int64_t df = 0;
  std::vector<double> expected;
};

// Upper tail of the chi-square distribution with df degrees of freedom.
double chi2_sf(double x, double df);

// counts: observed units per arm; weights: any non-negative scale (normalised here).
// Arms with zero weight must have zero count (else the p-value is 0).
ChiSquareResult srm_chi_square(const std::vector<double>& counts,
                               const std::vector<double>& weights);

}  // namespace trafficsplit::stats
