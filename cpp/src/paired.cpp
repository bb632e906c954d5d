#include "trafficsplit/telemetry/paired.hpp"

#include <algorithm>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <limits>

#include "trafficsplit/errors.hpp"

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
  PairedDifference r;
  // Welford over the differences: one pass, no cancellation.
  double m2 = 0.0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) continue;
    const double d = b[i] - a[i];
    ++r.n;
    const double delta = d - r.mean;
    r.mean += delta / static_cast<double>(r.n);
    m2 += delta * (d - r.mean);
  }
  if (r.n == 0) r.mean = kNaN;
  if (r.n < 2) {
    r.sd = r.t = r.p_value = r.ci_low = r.ci_high = kNaN;
    return r;
  }
  const double df = static_cast<double>(r.n - 1);
  r.sd = std::sqrt(m2 / df);
  const double se = r.sd / std::sqrt(static_cast<double>(r.n));
  boost::math::students_t dist(df);
  const double q = boost::math::quantile(dist, 0.5 + confidence / 2.0);
  r.ci_low = r.mean - q * se;
  r.ci_high = r.mean + q * se;
  if (se == 0.0) {
    r.t = r.p_value = kNaN;  // as scipy.stats.ttest_rel: no variation, no test
    return r;
  }
  r.t = r.mean / se;
  r.p_value = 2.0 * boost::math::cdf(boost::math::complement(dist, std::fabs(r.t)));
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
