#include "trafficsplit/stats/power.hpp"

#include <boost/math/distributions/normal.hpp>
#include <boost/math/tools/roots.hpp>
#include <cmath>
#include <cstdint>
#include <string>

#include "stats/format.hpp"
#include "trafficsplit/errors.hpp"

namespace trafficsplit::stats {

namespace {

const boost::math::normal_distribution<double> kNormal;

double z(double p) { return boost::math::quantile(kNormal, p); }
double sf(double x) { return boost::math::cdf(boost::math::complement(kNormal, x)); }
double cdf(double x) { return boost::math::cdf(kNormal, x); }

void check_design(double alpha, int sides, double ratio, const char* fn) {
  if (!(alpha > 0 && alpha < 1)) {
    throw InvalidArgument(std::string(fn) + ": alpha must be in (0, 1), got " +
                          format_number(alpha));
  }
  if (sides != 1 && sides != 2) {
    throw InvalidArgument(std::string(fn) + ": sides must be 1 or 2, got " + std::to_string(sides));
  }
  if (!std::isfinite(ratio) || !(ratio > 0)) {
    throw InvalidArgument(std::string(fn) + ": ratio (n_treatment / n_control) must be > 0, got " +
                          format_number(ratio));
  }
}

void check_power(double power, double alpha, int sides, const char* fn) {
  if (!(power > 0 && power < 1)) {
    throw InvalidArgument(std::string(fn) + ": power must be in (0, 1), got " +
                          format_number(power));
  }
  if (!(power > alpha / sides)) {
    throw InvalidArgument(std::string(fn) + ": power must exceed the one-tail alpha " +
                          format_number(alpha / sides) + ", got " + format_number(power));
  }
}

void check_n(double n, const char* fn) {
  if (!std::isfinite(n) || !(n > 0)) {
    throw InvalidArgument(std::string(fn) + ": n (control units) must be > 0, got " +
                          format_number(n));
  }
}

void check_baseline(double baseline, const char* fn) {
  if (!(baseline > 0 && baseline < 1)) {
    throw InvalidArgument(std::string(fn) + ": baseline proportion must be in (0, 1), got " +
                          format_number(baseline));
  }
}

void check_diff(double baseline, double diff, const char* fn) {
  const double pt = baseline + diff;
  if (!(diff != 0) || !std::isfinite(diff) || !(pt > 0 && pt < 1)) {
    throw InvalidArgument(std::string(fn) +
                          ": mde must be nonzero with baseline + mde in (0, 1), "
                          "got mde " +
                          format_number(diff) + " on baseline " + format_number(baseline));
  }
}

void check_sd(double sd, const char* fn) {
  if (!std::isfinite(sd) || !(sd > 0)) {
    throw InvalidArgument(std::string(fn) + ": std must be > 0, got " + format_number(sd));
  }
}

void check_mde(double diff, const char* fn) {
  if (!std::isfinite(diff) || diff == 0) {
    throw InvalidArgument(std::string(fn) + ": mde must be finite and nonzero, got " +
                          format_number(diff));
  }
}

// The difference of means has sd·√(1 + 1/ratio) / √n_control, ratio = n_treatment / n_control.
double difference_sd(double sd, double ratio) { return sd * std::sqrt(1 + 1 / ratio); }

// Power of a z test whose estimate has sd_1/√n under H1, critical value on sd_0/√n.
double normal_power(double diff, double n, double alpha, int sides, double sd0, double sd1) {
  const double crit = z(1 - alpha / sides);
  const double shift = std::fabs(diff) * std::sqrt(n) / sd1;
  double p = sf(crit * sd0 / sd1 - shift);
  if (sides == 2) p += cdf(-crit * sd0 / sd1 - shift);
  return p;
}

template <class F>
double solve_increasing(F f, double lo, double hi) {
  std::uintmax_t iterations = 200;
  const auto r = boost::math::tools::toms748_solve(
      f, lo, hi, boost::math::tools::eps_tolerance<double>(52), iterations);
  return (r.first + r.second) / 2;
}

// The root of increasing f below hi, where f(hi) > 0: halve towards 0 until f < 0 (or the
// floor), then solve on that bracket.
template <class F>
double solve_below(F f, double hi) {
  double lo = hi / 2;
  while (f(lo) > 0 && lo > 1e-300) lo /= 2;
  return solve_increasing(f, lo, hi);
}

}  // namespace

ProportionSds proportion_sds(double baseline, double diff, double ratio) {
  const double pc = baseline, pt = baseline + diff;
  const double pooled = (pc + ratio * pt) / (1 + ratio);
  return {std::sqrt(pooled * (1 - pooled) * (1 + 1 / ratio)),
          std::sqrt(pc * (1 - pc) + pt * (1 - pt) / ratio)};
}

ArmSizes sample_size_proportions(double baseline, double diff, double alpha, double power,
                                 int sides, double ratio) {
  const char* fn = "sample_size_proportions";
  check_design(alpha, sides, ratio, fn);
  check_power(power, alpha, sides, fn);
  check_baseline(baseline, fn);
  check_diff(baseline, diff, fn);
  const auto sd = proportion_sds(baseline, diff, ratio);
  const double root = std::max(z(1 - alpha / sides) * sd.null + z(power) * sd.alternative, 0.0);
  const double n = root * root / (diff * diff);
  return {n, n * ratio};
}

double power_proportions(double baseline, double diff, double n_control, double alpha, int sides,
                         double ratio) {
  const char* fn = "power_proportions";
  check_design(alpha, sides, ratio, fn);
  check_baseline(baseline, fn);
  check_diff(baseline, diff, fn);
  check_n(n_control, fn);
  const auto sd = proportion_sds(baseline, diff, ratio);
  return normal_power(diff, n_control, alpha, sides, sd.null, sd.alternative);
}

double mde_proportions(double baseline, double n_control, double alpha, double power, int sides,
                       double ratio) {
  const char* fn = "mde_proportions";
  check_design(alpha, sides, ratio, fn);
  check_power(power, alpha, sides, fn);
  check_baseline(baseline, fn);
  check_n(n_control, fn);
  const double za = z(1 - alpha / sides), zb = z(power), rn = std::sqrt(n_control);
  // g(δ) = δ√n − (z_α sd_0 + z_β sd_1) increases from g(0) < 0; a root below 1 − p exists iff g >
  // 0.
  const auto g = [&](double d) {
    const auto sd = proportion_sds(baseline, d, ratio);
    return d * rn - (za * sd.null + zb * sd.alternative);
  };
  const double top = 1 - baseline;
  if (!(g(top * (1 - 1e-12)) > 0)) {
    throw InvalidArgument(std::string(fn) + ": n=" + format_number(n_control) +
                          " is too small to detect any increase of baseline " +
                          format_number(baseline) + " at this alpha and power");
  }
  return solve_increasing(g, 0.0, top * (1 - 1e-12));
}

double power_means(double sd, double diff, double n_control, double alpha, int sides,
                   double ratio) {
  const char* fn = "power_means";
  check_design(alpha, sides, ratio, fn);
  check_sd(sd, fn);
  check_n(n_control, fn);
  check_mde(diff, fn);
  const double s = difference_sd(sd, ratio);
  return normal_power(diff, n_control, alpha, sides, s, s);
}

ArmSizes sample_size_means(double sd, double diff, double alpha, double power, int sides,
                           double ratio) {
  const char* fn = "sample_size_means";
  check_design(alpha, sides, ratio, fn);
  check_power(power, alpha, sides, fn);
  check_sd(sd, fn);
  check_mde(diff, fn);
  const double s = difference_sd(sd, ratio);
  const double root = z(1 - alpha / sides) + z(power);
  const double one_tail = root * root * s * s / (diff * diff);  // ≥ the two-tailed solution
  double n = one_tail;
  if (sides == 2) {
    const auto f = [&](double m) { return normal_power(diff, m, alpha, sides, s, s) - power; };
    if (f(one_tail) > 0) n = solve_below(f, one_tail);
  }
  return {n, n * ratio};
}

double mde_means(double sd, double n_control, double alpha, double power, int sides, double ratio) {
  const char* fn = "mde_means";
  check_design(alpha, sides, ratio, fn);
  check_power(power, alpha, sides, fn);
  check_sd(sd, fn);
  check_n(n_control, fn);
  const double s = difference_sd(sd, ratio);
  const double root = z(1 - alpha / sides) + z(power);
  const double one_tail = root * s / std::sqrt(n_control);
  if (sides == 1) return one_tail;
  const auto f = [&](double d) { return normal_power(d, n_control, alpha, sides, s, s) - power; };
  if (!(f(one_tail) > 0)) return one_tail;
  return solve_below(f, one_tail);
}

}  // namespace trafficsplit::stats
