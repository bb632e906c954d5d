#include "trafficsplit/stats/srm.hpp"

#include <boost/math/distributions/chi_squared.hpp>
#include <cmath>
#include <limits>
#include <string>

#include "trafficsplit/errors.hpp"

namespace trafficsplit::stats {

double chi2_sf(double x, double df) {
  if (!(df > 0)) throw InvalidArgument("chi-square degrees of freedom must be > 0");
  if (std::isnan(x)) return std::nan("");
  if (x <= 0) return 1.0;
  if (std::isinf(x)) return 0.0;
  const boost::math::chi_squared_distribution<double> dist(df);
  return boost::math::cdf(boost::math::complement(dist, x));
}

ChiSquareResult srm_chi_square(const std::vector<double>& counts,
                               const std::vector<double>& weights) {
  if (counts.size() != weights.size()) {
    throw InvalidArgument("srm: " + std::to_string(counts.size()) + " counts but " +
                          std::to_string(weights.size()) + " weights");
  }
  if (counts.size() < 2) throw InvalidArgument("srm needs at least two arms");
  double n = 0, wsum = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (!(counts[i] >= 0) || !std::isfinite(counts[i])) {
      throw InvalidArgument("srm: count " + std::to_string(i) + " must be finite and >= 0");
    }
    if (!(weights[i] >= 0) || !std::isfinite(weights[i])) {
      throw InvalidArgument("srm: weight " + std::to_string(i) + " must be finite and >= 0");
    }
    n += counts[i];
    wsum += weights[i];
  }
  if (!(wsum > 0)) throw InvalidArgument("srm: weights must not all be zero");
  ChiSquareResult r;
  r.expected.resize(counts.size());
  int64_t cells = 0;
  bool impossible = false;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double e = n * weights[i] / wsum;
    r.expected[i] = e;
    if (weights[i] == 0) {
      if (counts[i] > 0) impossible = true;
      continue;
    }
    ++cells;
    const double d = counts[i] - e;
    if (e > 0) r.statistic += d * d / e;
  }
  r.df = cells - 1;
  if (impossible) {
    r.statistic = std::numeric_limits<double>::infinity();
    r.pvalue = 0.0;
  } else if (r.df < 1 || n == 0) {
    r.pvalue = 1.0;
  } else {
    r.pvalue = chi2_sf(r.statistic, static_cast<double>(r.df));
  }
  return r;
}

}  // namespace trafficsplit::stats
