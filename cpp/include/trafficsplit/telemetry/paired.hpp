// Paired comparisons for shadow tests: the mean difference of paired measurements with a
// Student t test and interval, and the Wilson interval of an agreement rate.
#pragma once

#include <cstddef>
#include <cstdint>

namespace trafficsplit::telemetry {

struct PairedDifference {
  uint64_t n = 0;        // pairs with both values finite
  double mean = 0.0;     // mean of b - a
  double sd = 0.0;       // sample standard deviation of b - a (n - 1)
  double t = 0.0;        // mean / (sd / sqrt(n)); NaN when n < 2 or sd == 0
  double p_value = 0.0;  // two-sided, Student t with n - 1 degrees of freedom
  double ci_low = 0.0;   // confidence interval of the mean difference
  double ci_high = 0.0;
};

// Pairs (a[i], b[i]) with a NaN or infinite member, or whose difference overflows, are left
// out. `confidence` in (0, 1).
PairedDifference paired_difference(const double* a, const double* b, size_t n, double confidence);

struct Proportion {
  double estimate = 0.0;
  double low = 0.0;
  double high = 0.0;
};

// Wilson score interval of k successes in n trials (Wilson 1927); NaNs when n == 0.
Proportion wilson_interval(uint64_t k, uint64_t n, double confidence);

}  // namespace trafficsplit::telemetry
