#include "trafficsplit/telemetry/paired.hpp"

#include <algorithm>
#include <boost/math/distributions/normal.hpp>
#include <cmath>
#include <limits>

#include "trafficsplit/errors.hpp"
#include "trafficsplit/stats/tests.hpp"
#include "trafficsplit/telemetry/recorder.hpp"

namespace trafficsplit::telemetry {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_confidence(double confidence) {
  if (!(confidence > 0.0 && confidence < 1.0)) {
    throw InvalidArgument("confidence must be between 0 and 1 (exclusive)");
  }
}

}  // namespace

PairedDifference paired_difference(const double* a, const double* b, size_t n, double confidence) {
  check_confidence(confidence);
  // Welford over the differences: one pass, no cancellation.
  SeriesMoments d;
  for (size_t i = 0; i < n; ++i) {
    if (std::isfinite(a[i]) && std::isfinite(b[i])) d.add(b[i] - a[i]);
  }
  PairedDifference r;
  r.n = static_cast<uint64_t>(d.n);
  r.mean = r.n == 0 ? kNaN : d.mean;
  if (r.n < 2) {
    r.sd = r.t = r.p_value = r.ci_low = r.ci_high = kNaN;
    return r;
  }
  const double df = static_cast<double>(r.n - 1);
  r.sd = std::sqrt(d.m2 / df);
  const double se = r.sd / std::sqrt(static_cast<double>(r.n));
  const stats::TestStat test =
      stats::finish_test(r.mean, se, 0.0, df, 1.0 - confidence, stats::Alternative::kTwoSided);
  r.ci_low = test.ci_low;
  r.ci_high = test.ci_high;
  if (se == 0.0) {
    r.t = r.p_value = kNaN;  // as scipy.stats.ttest_rel: no variation, no test
  } else {
    r.t = test.statistic;
    r.p_value = test.pvalue;
  }
  return r;
}

Proportion wilson_interval(uint64_t k, uint64_t n, double confidence) {
  check_confidence(confidence);
  if (k > n) throw InvalidArgument("successes must not exceed trials");
  if (n == 0) return {kNaN, kNaN, kNaN};
  const double z =
      boost::math::quantile(boost::math::normal_distribution<double>(), 0.5 + confidence / 2.0);
  const double nn = static_cast<double>(n);
  const double p = static_cast<double>(k) / nn;
  const double z2 = z * z;
  const double centre = (p + z2 / (2.0 * nn)) / (1.0 + z2 / nn);
  const double half = z / (1.0 + z2 / nn) * std::sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn));
  return {p, std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

}  // namespace trafficsplit::telemetry
