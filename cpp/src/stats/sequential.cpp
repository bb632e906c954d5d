#include "trafficsplit/stats/sequential.hpp"

#include <algorithm>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/tools/toms748_solve.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <utility>

#include "trafficsplit/errors.hpp"

namespace trafficsplit::stats {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

// Double precision throughout: the default policy promotes to long double, several times slower
// in the recursion's inner loops for no accuracy the 1e-6 grid error could use.
using Policy = boost::math::policies::policy<boost::math::policies::promote_double<false>>;
using Normal = boost::math::normal_distribution<double, Policy>;

const Normal& standard_normal() {
  static const Normal dist(0.0, 1.0);
  return dist;
}

double norm_cdf(double x) {
  if (x == -kInf) return 0.0;
  if (x == kInf) return 1.0;
  return boost::math::cdf(standard_normal(), x);
}

double norm_sf(double x) {
  if (x == -kInf) return 1.0;
  if (x == kInf) return 0.0;
  return boost::math::cdf(boost::math::complement(standard_normal(), x));
}

// z with 1 - Phi(z) = p, for p in (0, 1).
double norm_isf(double p) {
  if (p <= 0) return kInf;
  if (p >= 1) return -kInf;
  return boost::math::quantile(boost::math::complement(standard_normal(), p));
}

std::string num(double x) {
  std::ostringstream s;
  s.precision(10);
  s << x;
  return s.str();
}

void check_sides(int sides) {
  if (sides != 1 && sides != 2) {
    throw InvalidArgument("sides must be 1 (one-sided) or 2 (symmetric two-sided), got " +
                          std::to_string(sides));
  }
}

void check_alpha(double alpha) {
  if (!(alpha > 0 && alpha < 0.5)) {
    throw InvalidArgument("alpha (one-sided level per boundary) must be in (0, 0.5), got " +
                          num(alpha));
  }
}

void check_grid(int grid) {
  if (grid < 1 || grid > 1000) {
    throw InvalidArgument("grid parameter r must be in [1, 1000], got " + std::to_string(grid));
  }
}

// The recursion's next look: a finite fraction beyond the previous one.
void check_next_fraction(double t, double previous) {
  if (!(t > previous) || !std::isfinite(t)) {
    throw InvalidArgument("information fraction " + num(t) + " must exceed the previous " +
                          num(previous));
  }
}

// Strictly increasing positive finite fractions; with allow_beyond_one only the last may be > 1.
void check_fractions(const std::vector<double>& t, bool allow_beyond_one) {
  if (t.empty()) throw InvalidArgument("at least one look (information fraction) is required");
  for (size_t k = 0; k < t.size(); ++k) {
    if (!std::isfinite(t[k]) || !(t[k] > 0)) {
      throw InvalidArgument("information fraction at look " + std::to_string(k) +
                            " must be finite and > 0, got " + num(t[k]));
    }
    if (k > 0 && !(t[k] > t[k - 1])) {
      throw InvalidArgument("information fractions must be strictly increasing: look " +
                            std::to_string(k) + " has " + num(t[k]) + " after " + num(t[k - 1]));
    }
    if (t[k] > 1 && !(allow_beyond_one && k + 1 == t.size())) {
      throw InvalidArgument("information fraction at look " + std::to_string(k) +
                            " must be <= 1, got " + num(t[k]));
    }
  }
}

// Jennison & Turnbull (2000, ch. 19) grid as in gsDesign's gridpts.c: 6r-1 points around mu,
// clipped to [a, b], plus interval midpoints, with composite Simpson weights.
void make_grid(double mu, double a, double b, int r, std::vector<double>& z,
               std::vector<double>& w) {
  z.clear();
  w.clear();
  const int n = 6 * r - 1;
  std::vector<double> pts;
  pts.reserve(static_cast<size_t>(n) + 2);
  const double rr = r;
  auto base = [&](int i) {
    if (i < r) return mu - 3.0 - 4.0 * std::log(rr / i);
    if (i <= 5 * r) return mu - 3.0 + 3.0 * (i - r) / (2.0 * rr);
    return mu + 3.0 + 4.0 * std::log(rr / (6 * r - i));
  };
  const double lo = std::max(a, base(1));
  const double hi = std::min(b, base(n));
  if (!(hi > lo)) return;  // continuation region (numerically) empty
  pts.push_back(lo);
  for (int i = 1; i <= n; ++i) {
    const double x = base(i);
    if (x > lo && x < hi) pts.push_back(x);
  }
  pts.push_back(hi);
  const size_t m = 2 * pts.size() - 1;
  z.resize(m);
  w.assign(m, 0.0);
  for (size_t j = 0; j + 1 < pts.size(); ++j) {
    const double d = pts[j + 1] - pts[j];
    z[2 * j] = pts[j];
    z[2 * j + 1] = 0.5 * (pts[j] + pts[j + 1]);
    w[2 * j] += d / 6.0;
    w[2 * j + 1] += 4.0 * d / 6.0;
    w[2 * j + 2] += d / 6.0;
  }
  z[m - 1] = pts.back();
}

template <class F>
double solve_root(F f, double lo, double hi) {
  boost::math::tools::eps_tolerance<double> tol(48);
  std::uintmax_t iters = 200;
  const auto r = boost::math::tools::toms748_solve(f, lo, hi, tol, iters);
  return 0.5 * (r.first + r.second);
}

}  // namespace

// --- spending functions ------------------------------------------------------------------------

void SpendingFunction::validate() const {
  switch (family) {
    case SpendingFamily::kHwangShihDeCani:
      if (!std::isfinite(parameter) || std::fabs(parameter) > 100) {
        throw InvalidArgument("Hwang-Shih-DeCani gamma must be finite, |gamma| <= 100, got " +
                              num(parameter));
      }
      break;
    case SpendingFamily::kKimDeMets:
      if (!std::isfinite(parameter) || !(parameter > 0) || parameter > 100) {
        throw InvalidArgument("Kim-DeMets rho must be in (0, 100], got " + num(parameter));
      }
      break;
    default:
      break;
  }
}

double SpendingFunction::cumulative(double t, double alpha) const {
  if (!(t > 0)) return 0.0;
  if (t >= 1) return alpha;
  switch (family) {
    case SpendingFamily::kObrienFleming:
      return 2.0 * norm_sf(norm_isf(alpha / 2.0) / std::sqrt(t));
    case SpendingFamily::kPocock:
      return alpha * std::log1p((std::exp(1.0) - 1.0) * t);
    case SpendingFamily::kHwangShihDeCani:
      if (parameter == 0) return alpha * t;
      return alpha * std::expm1(-parameter * t) / std::expm1(-parameter);
    case SpendingFamily::kKimDeMets:
      return alpha * std::pow(t, parameter);
  }
  return alpha;
}

// --- the recursion -----------------------------------------------------------------------------

SequentialRecursion::SequentialRecursion(int sides, double drift, int grid)
    : sides_(sides), drift_(drift), grid_(grid) {
  check_sides(sides);
  check_grid(grid);
  if (!std::isfinite(drift)) throw InvalidArgument("drift must be finite, got " + num(drift));
}

double SequentialRecursion::continuing() const {
  if (looks_ == 0) return 1.0;
  double s = 0;
  for (double v : weighted_) s += v;
  return s;
}

std::pair<double, double> SequentialRecursion::crossing(double t, double bound) const {
  check_next_fraction(t, t_);
  if (std::isnan(bound)) throw InvalidArgument("bound must not be NaN");
  const double lower_bound = sides_ == 2 ? -bound : -kInf;
  if (looks_ == 0) {
    const double mu = drift_ * std::sqrt(t);
    return {norm_sf(bound - mu), sides_ == 2 ? norm_cdf(lower_bound - mu) : 0.0};
  }
  const double dt = t - t_;
  const double sd = std::sqrt(dt);
  const double st = std::sqrt(t), sprev = std::sqrt(t_);
  double up = 0, low = 0;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const double m = nodes_[i] * sprev + drift_ * dt;
    up += weighted_[i] * norm_sf((bound * st - m) / sd);
    if (sides_ == 2) low += weighted_[i] * norm_cdf((lower_bound * st - m) / sd);
  }
  return {up, low};
}

void SequentialRecursion::advance(double t, double bound) {
  const double a = sides_ == 2 ? -bound : -kInf;
  std::vector<double> z, w;
  make_grid(drift_ * std::sqrt(t), a, bound, grid_, z, w);
  std::vector<double> f(z.size(), 0.0);
  if (looks_ == 0) {
    const double mu = drift_ * std::sqrt(t);
    for (size_t j = 0; j < z.size(); ++j) {
      const double d = z[j] - mu;
      f[j] = kInvSqrt2Pi * std::exp(-0.5 * d * d);
    }
  } else {
    const double dt = t - t_;
    const double inv_sd = 1.0 / std::sqrt(dt);
    const double st = std::sqrt(t), sprev = std::sqrt(t_);
    const double scale = kInvSqrt2Pi * st * inv_sd;
    std::vector<double> m(nodes_.size());
    for (size_t i = 0; i < nodes_.size(); ++i) m[i] = nodes_[i] * sprev + drift_ * dt;
    // Nodes and x are increasing: only the old nodes within 9 kernel sds of x matter (e^-40.5
    // relative), a window that slides with x.
    const double reach = 9.0 * std::sqrt(dt);
    size_t first = 0;
    for (size_t j = 0; j < z.size(); ++j) {
      const double x = z[j] * st;
      while (first < m.size() && m[first] < x - reach) ++first;
      double s = 0;
      for (size_t i = first; i < m.size() && m[i] <= x + reach; ++i) {
        const double d = (x - m[i]) * inv_sd;
        s += weighted_[i] * std::exp(-0.5 * d * d);
      }
      f[j] = s * scale;
    }
  }
  for (size_t j = 0; j < z.size(); ++j) w[j] *= f[j];
  nodes_ = std::move(z);
  weighted_ = std::move(w);
  t_ = t;
  ++looks_;
}

std::pair<double, double> SequentialRecursion::add_look(double t, double bound) {
  const auto c = crossing(t, bound);
  advance(t, bound);
  return c;
}

std::pair<double, double> SequentialRecursion::crossing_with_slope(double t, double b) const {
  // Total crossing probability (both sides) at bound b and its derivative in b.
  if (looks_ == 0) {
    const double mu = drift_ * std::sqrt(t);
    double c = norm_sf(b - mu), d = -kInvSqrt2Pi * std::exp(-0.5 * (b - mu) * (b - mu));
    if (sides_ == 2) {
      c += norm_cdf(-b - mu);
      d -= kInvSqrt2Pi * std::exp(-0.5 * (b + mu) * (b + mu));
    }
    return {c, d};
  }
  const double dt = t - t_;
  const double inv_sd = 1.0 / std::sqrt(dt);
  const double st = std::sqrt(t), sprev = std::sqrt(t_);
  double c = 0, d = 0;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const double m = nodes_[i] * sprev + drift_ * dt;
    const double u = (b * st - m) * inv_sd;
    if (u < 38.5) {
      c += weighted_[i] * norm_sf(u);
      d -= weighted_[i] * std::exp(-0.5 * u * u);
    }
    if (sides_ == 2) {
      const double l = (-b * st - m) * inv_sd;
      if (l > -38.5) {
        c += weighted_[i] * norm_cdf(l);
        d -= weighted_[i] * std::exp(-0.5 * l * l);
      }
    }
  }
  return {c, d * kInvSqrt2Pi * st * inv_sd};
}

double SequentialRecursion::solve_bound(double t, double target, double guess) const {
  // Newton on log(crossing) - log(target) (the crossing probability is close to a normal tail,
  // whose log is nearly quadratic), kept inside a bracket that shrinks by bisection when a step
  // leaves it.
  double lo = sides_ == 2 ? 0.0 : -12.0, hi = 40.0;
  if (!(crossing_with_slope(t, hi).first < target)) return kInf;  // too little to spend
  double b = std::isfinite(guess) ? std::min(std::max(guess, lo), hi) : 0.5 * (lo + hi);
  const double log_target = std::log(target);
  for (int iter = 0; iter < 200; ++iter) {
    const auto [c, dc] = crossing_with_slope(t, b);
    if (c > target) {
      lo = b;
    } else {
      hi = b;
    }
    if (c == target) return b;
    double next = 0.5 * (lo + hi);
    if (c > 0 && dc < 0) {
      const double step = (std::log(c) - log_target) * c / dc;
      if (std::fabs(step) <= 1e-13 * std::max(1.0, std::fabs(b))) return b - step;
      if (b - step > lo && b - step < hi) next = b - step;
    }
    if (hi - lo < 1e-13 * std::max(1.0, std::fabs(b))) return next;
    b = next;
  }
  return b;
}

double SequentialRecursion::add_look_spending(double t, double increment) {
  if (std::isnan(increment)) throw InvalidArgument("alpha increment must not be NaN");
  check_next_fraction(t, t_);
  double bound = kInf;
  if (increment > 0) {
    const double target = sides_ * increment;
    const double left = continuing();
    if (!(target < left)) {
      throw InvalidArgument("cannot spend " + num(increment) + " at fraction " + num(t) +
                            ": only " + num(left) + " probability is left");
    }
    if (looks_ == 0 && sides_ == 1 && drift_ == 0) {
      bound = norm_isf(increment);
    } else {
      bound = solve_bound(t, target, norm_isf(increment));
    }
  }
  advance(t, bound);
  return bound;
}

// --- boundaries --------------------------------------------------------------------------------

Boundaries boundaries_from_cumulative_alpha(const std::vector<double>& fractions,
                                            const std::vector<double>& cumulative_alpha, int sides,
                                            int grid, const std::vector<double>& fixed) {
  check_sides(sides);
  check_grid(grid);
  check_fractions(fractions, true);
  const size_t k = fractions.size();
  if (cumulative_alpha.size() != k) {
    throw InvalidArgument("cumulative alpha has " + std::to_string(cumulative_alpha.size()) +
                          " values for " + std::to_string(k) + " looks");
  }
  if (!fixed.empty() && fixed.size() != k) {
    throw InvalidArgument("fixed bounds have " + std::to_string(fixed.size()) + " values for " +
                          std::to_string(k) + " looks");
  }
  for (size_t i = 0; i < k; ++i) {
    const double a = cumulative_alpha[i];
    if (!(a >= 0 && a < 0.5)) {
      throw InvalidArgument("cumulative alpha at look " + std::to_string(i) +
                            " must be in [0, 0.5), got " + num(a));
    }
    if (i > 0 && a < cumulative_alpha[i - 1]) {
      throw InvalidArgument("cumulative alpha must be non-decreasing: look " + std::to_string(i) +
                            " has " + num(a) + " after " + num(cumulative_alpha[i - 1]));
    }
  }
  Boundaries out;
  out.fractions = fractions;
  SequentialRecursion rec(sides, 0.0, grid);
  double spent = 0;  // per side
  for (size_t i = 0; i < k; ++i) {
    double b;
    if (!fixed.empty() && std::isfinite(fixed[i])) {
      b = fixed[i];
      if (sides == 2 && b < 0) {
        throw InvalidArgument("two-sided bound at look " + std::to_string(i) + " must be >= 0");
      }
      const auto c = rec.add_look(fractions[i], b);
      spent += (c.first + c.second) / sides;
    } else {
      const double increment = cumulative_alpha[i] - spent;
      b = rec.add_look_spending(fractions[i], increment);
      if (increment > 0 && std::isfinite(b)) spent = cumulative_alpha[i];
    }
    out.upper.push_back(b);
    out.cumulative_alpha.push_back(spent);
    out.nominal_alpha.push_back(norm_sf(b));
  }
  return out;
}

Boundaries spending_boundaries(const std::vector<double>& fractions, double alpha, int sides,
                               const SpendingFunction& spending, int grid) {
  check_alpha(alpha);
  spending.validate();
  check_fractions(fractions, true);
  std::vector<double> cum(fractions.size());
  for (size_t i = 0; i < fractions.size(); ++i) cum[i] = spending.cumulative(fractions[i], alpha);
  return boundaries_from_cumulative_alpha(fractions, cum, sides, grid);
}

CrossingProbabilities crossing_probabilities(const std::vector<double>& fractions,
                                             const std::vector<double>& upper, int sides,
                                             double drift, int grid) {
  check_fractions(fractions, true);
  if (upper.size() != fractions.size()) {
    throw InvalidArgument("got " + std::to_string(upper.size()) + " bounds for " +
                          std::to_string(fractions.size()) + " looks");
  }
  SequentialRecursion rec(sides, drift, grid);
  CrossingProbabilities out;
  for (size_t i = 0; i < fractions.size(); ++i) {
    if (std::isnan(upper[i])) {
      throw InvalidArgument("bound at look " + std::to_string(i) + " is NaN");
    }
    const auto c = rec.add_look(fractions[i], upper[i]);
    out.upper.push_back(c.first);
    out.lower.push_back(c.second);
  }
  return out;
}

Boundaries wang_tsiatis_boundaries(const std::vector<double>& fractions, double alpha, int sides,
                                   double shape, int grid) {
  check_alpha(alpha);
  check_sides(sides);
  check_grid(grid);
  check_fractions(fractions, false);
  if (!(shape >= -1 && shape <= 1)) {
    throw InvalidArgument("Wang-Tsiatis shape must be in [-1, 1], got " + num(shape));
  }
  auto bounds_for = [&](double c) {
    std::vector<double> b(fractions.size());
    for (size_t i = 0; i < b.size(); ++i) b[i] = c * std::pow(fractions[i], shape - 0.5);
    return b;
  };
  auto level = [&](double c) {
    const auto p = crossing_probabilities(fractions, bounds_for(c), sides, 0.0, grid);
    double s = 0;
    for (size_t i = 0; i < p.upper.size(); ++i) s += p.upper[i] + p.lower[i];
    return s / sides - alpha;
  };
  const double c = solve_root(level, 0.0, 40.0);
  Boundaries out;
  out.fractions = fractions;
  out.upper = bounds_for(c);
  const auto p = crossing_probabilities(fractions, out.upper, sides, 0.0, grid);
  double spent = 0;
  for (size_t i = 0; i < fractions.size(); ++i) {
    spent += (p.upper[i] + p.lower[i]) / sides;
    out.cumulative_alpha.push_back(spent);
    out.nominal_alpha.push_back(norm_sf(out.upper[i]));
  }
  return out;
}

double drift_for_power(const std::vector<double>& fractions, const std::vector<double>& upper,
                       int sides, double power, int grid) {
  if (!(power > 0 && power < 1)) {
    throw InvalidArgument("power must be in (0, 1), got " + num(power));
  }
  auto f = [&](double theta) {
    const auto p = crossing_probabilities(fractions, upper, sides, theta, grid);
    double s = 0;
    for (double v : p.upper) s += v;
    return s - power;
  };
  if (f(0.0) >= 0) {
    throw InvalidArgument("power " + num(power) + " is below the level of the design");
  }
  double hi = 4.0;
  while (f(hi) < 0) {
    hi *= 2;
    if (hi > 1e3) throw InvalidArgument("power " + num(power) + " is not reachable");
  }
  return solve_root(f, 0.0, hi);
}

double inflation_factor(const std::vector<double>& fractions, const std::vector<double>& upper,
                        double alpha, int sides, double power, int grid) {
  check_alpha(alpha);
  const double theta = drift_for_power(fractions, upper, sides, power, grid);
  const double fixed = norm_isf(alpha) + norm_isf(1.0 - power);
  return (theta / fixed) * (theta / fixed);
}

SequentialDecision decide(const std::vector<double>& z, const std::vector<double>& fractions,
                          double alpha, int sides, const SpendingFunction& spending, int grid) {
  check_alpha(alpha);
  check_sides(sides);
  check_grid(grid);
  spending.validate();
  if (z.size() != fractions.size()) {
    throw InvalidArgument("got " + std::to_string(z.size()) + " z statistics for " +
                          std::to_string(fractions.size()) + " information fractions");
  }
  if (z.empty()) throw InvalidArgument("at least one look (z statistic) is required");
  SequentialDecision out;
  out.fractions = fractions;
  // Distinct fractions, each look mapped onto one of them.
  std::vector<double> distinct;
  std::vector<size_t> index(z.size());
  for (size_t k = 0; k < z.size(); ++k) {
    const double t = fractions[k];
    if (!std::isfinite(t) || !(t > 0)) {
      throw InvalidArgument("information fraction at look " + std::to_string(k) +
                            " must be finite and > 0, got " + num(t));
    }
    if (std::isnan(z[k])) throw InvalidArgument("z at look " + std::to_string(k) + " is NaN");
    if (!distinct.empty()) {
      const double prev = distinct.back();
      if (t < prev) {
        throw InvalidArgument("information fractions must not decrease: look " + std::to_string(k) +
                              " has " + num(t) + " after " + num(prev));
      }
      if (prev >= 1 && t > prev) {
        throw InvalidArgument("look " + std::to_string(k) + " at fraction " + num(t) +
                              " follows the final look (fraction " + num(prev) + " >= 1)");
      }
    }
    if (distinct.empty() || t > distinct.back()) distinct.push_back(t);
    index[k] = distinct.size() - 1;
  }
  const Boundaries b = spending_boundaries(distinct, alpha, sides, spending, grid);
  out.final = distinct.back() >= 1;
  for (size_t k = 0; k < z.size(); ++k) {
    const size_t j = index[k];
    out.bounds.push_back(b.upper[j]);
    out.cumulative_alpha.push_back(b.cumulative_alpha[j]);
    out.nominal_alpha.push_back(b.nominal_alpha[j]);
  }
  mark_crossing(z, sides, out);
  return out;
}

void mark_crossing(const std::vector<double>& z, int sides, SequentialDecision& d) {
  check_sides(sides);
  if (z.size() != d.bounds.size()) {
    throw InvalidArgument("got " + std::to_string(z.size()) + " z statistics for " +
                          std::to_string(d.bounds.size()) + " bounds");
  }
  d.crossed = -1;
  d.direction = 0;
  d.nominal_pvalue.clear();
  for (size_t k = 0; k < z.size(); ++k) {
    if (std::isnan(z[k])) throw InvalidArgument("z at look " + std::to_string(k) + " is NaN");
    d.nominal_pvalue.push_back(sides == 2 ? 2.0 * norm_sf(std::fabs(z[k])) : norm_sf(z[k]));
    if (d.crossed >= 0) continue;
    if (z[k] >= d.bounds[k]) {
      d.crossed = static_cast<int64_t>(k);
      d.direction = 1;
    } else if (sides == 2 && z[k] <= -d.bounds[k]) {
      d.crossed = static_cast<int64_t>(k);
      d.direction = -1;
    }
  }
}

// --- always-valid inference --------------------------------------------------------------------

AlwaysValidPath msprt_path(const std::vector<double>& estimate, const std::vector<double>& variance,
                           const std::vector<double>& tau2, double alpha, double null) {
  const size_t n = estimate.size();
  if (variance.size() != n) {
    throw InvalidArgument("msprt: " + std::to_string(n) + " estimates but " +
                          std::to_string(variance.size()) + " variances");
  }
  if (tau2.size() != n && tau2.size() != 1) {
    throw InvalidArgument("msprt: tau2 needs one value or one per look (" + std::to_string(n) +
                          "), got " + std::to_string(tau2.size()));
  }
  if (!(alpha > 0 && alpha < 1)) {
    throw InvalidArgument("msprt: alpha must be in (0, 1), got " + num(alpha));
  }
  if (!std::isfinite(null)) throw InvalidArgument("msprt: null must be finite");
  AlwaysValidPath out;
  double p = 1.0, lo = -kInf, hi = kInf;
  for (size_t i = 0; i < n; ++i) {
    const double v = variance[i], est = estimate[i];
    const double t2 = tau2.size() == 1 ? tau2[0] : tau2[i];
    if (!std::isfinite(est)) {
      throw InvalidArgument("msprt: estimate at look " + std::to_string(i) + " is not finite");
    }
    if (!(v > 0) || !std::isfinite(v)) {
      throw InvalidArgument("msprt: variance of the estimate at look " + std::to_string(i) +
                            " must be finite and > 0, got " + num(v));
    }
    if (!(t2 > 0) || !std::isfinite(t2)) {
      throw InvalidArgument("msprt: tau2 at look " + std::to_string(i) +
                            " must be finite and > 0, got " + num(t2));
    }
    const double d = est - null;
    const double log_lr = 0.5 * std::log(v / (v + t2)) + t2 * d * d / (2.0 * v * (v + t2));
    p = std::min(p, std::min(1.0, std::exp(-log_lr)));
    const double hw =
        std::sqrt(2.0 * v * (v + t2) / t2 * (0.5 * std::log((v + t2) / v) - std::log(alpha)));
    lo = std::max(lo, est - hw);
    hi = std::min(hi, est + hw);
    out.log_likelihood_ratio.push_back(log_lr);
    out.pvalue.push_back(p);
    out.ci_low.push_back(lo);
    out.ci_high.push_back(hi);
    out.half_width.push_back(hw);
  }
  return out;
}

double confidence_sequence_rho2(double alpha, double tuning, int sides) {
  check_sides(sides);
  const double a = sides == 2 ? alpha : 2.0 * alpha;
  if (!(a > 0 && a < 1)) {
    throw InvalidArgument("confidence sequence: alpha must be in (0, " +
                          std::string(sides == 2 ? "1" : "0.5") + "), got " + num(alpha));
  }
  if (!(tuning > 0) || !std::isfinite(tuning)) {
    throw InvalidArgument("confidence sequence: tuning N* must be finite and > 0, got " +
                          num(tuning));
  }
  const double l = -2.0 * std::log(a);
  return (l + std::log1p(l)) / tuning;
}

namespace {
void check_cs_sample(double variance, double n) {
  if (!(variance > 0) || !std::isfinite(variance)) {
    throw InvalidArgument("confidence sequence: variance must be finite and > 0, got " +
                          num(variance));
  }
  if (!(n > 0) || !std::isfinite(n)) {
    throw InvalidArgument("confidence sequence: n must be finite and > 0, got " + num(n));
  }
}
}  // namespace

double one_sided_cs_half_width(double variance, double n, double alpha, double tuning) {
  check_cs_sample(variance, n);
  const double rho2 = confidence_sequence_rho2(alpha, tuning, 1);
  const double nr = n * rho2;
  const double s2 = variance * n;
  return std::sqrt(s2 * 2.0 * (nr + 1.0) / (n * n * rho2) *
                   std::log1p(std::sqrt(nr + 1.0) / (2.0 * alpha)));
}

double one_sided_cs_pvalue(double distance, double variance, double n, double alpha,
                           double tuning) {
  if (std::isnan(distance)) throw InvalidArgument("confidence sequence: distance is NaN");
  check_cs_sample(variance, n);
  // rho stays the one of the design level alpha; solve half-width(a) = distance for a.
  const double rho2 = confidence_sequence_rho2(alpha, tuning, 1);  // validates alpha and tuning
  if (!(distance > 0)) return 1.0;
  const double nr = n * rho2;
  const double l = distance * distance * n * rho2 / (2.0 * variance * (nr + 1.0));
  return std::min(1.0, std::sqrt(nr + 1.0) / (2.0 * std::expm1(l)));
}

}  // namespace trafficsplit::stats
