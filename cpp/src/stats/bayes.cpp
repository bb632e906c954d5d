#include "trafficsplit/stats/bayes.hpp"

#include <algorithm>
#include <boost/math/distributions/beta.hpp>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/quadrature/gauss_kronrod.hpp>
#include <boost/math/special_functions/beta.hpp>
#include <boost/math/special_functions/gamma.hpp>
#include <cmath>
#include <limits>
#include <string>

#include "stats/format.hpp"
#include "trafficsplit/errors.hpp"
#include "trafficsplit/stats/tests.hpp"

namespace trafficsplit::stats {

namespace {

// Inside the integrals a root finder that stops short (ibeta_inv for a shape parameter below 1
// at u ≈ 1) returns its best estimate instead of throwing: the panel error is far below the
// tolerance, and a quadrature must not fail on one node.
// Double precision throughout (no long-double promotion): quadrature nodes need speed more than
// the last bits.
using Policy = boost::math::policies::policy<
    boost::math::policies::evaluation_error<boost::math::policies::ignore_error>,
    boost::math::policies::promote_double<false>>;
using Beta = boost::math::beta_distribution<double, Policy>;

void check_arm(const BetaArm& arm, const char* what) {
  if (!std::isfinite(arm.a) || !std::isfinite(arm.b) || !(arm.a > 0) || !(arm.b > 0)) {
    throw InvalidArgument(std::string(what) + ": Beta parameters must be finite and > 0, got (" +
                          format_number(arm.a) + ", " + format_number(arm.b) + ")");
  }
}

// Integrals over a posterior f_base are taken in its probability scale u = F_base(x):
// ∫ f_base(x) g(x) dx = ∫_0^1 g(Q_base(u)) du, a bounded integrand without the density's
// endpoint singularities. Panels break at quantile levels of the base arm and at the images
// u = F_base(Q_other(level)) of the other arms' quantiles, where g changes fastest.
std::vector<double> u_points(const BetaArm& base, const std::vector<BetaArm>& others) {
  static const double kLevels[] = {1e-12, 1e-8, 1e-5, 1e-3,  0.02,     0.1,      0.25,     0.5,
                                   0.75,  0.9,  0.98, 0.999, 1 - 1e-5, 1 - 1e-8, 1 - 1e-12};
  std::vector<double> points = {0.0, 1.0};
  for (double level : kLevels) points.push_back(level);
  for (const auto& other : others) {
    const Beta d(other.a, other.b);
    for (double level : kLevels) {
      try {
        points.push_back(
            boost::math::ibeta(base.a, base.b, boost::math::quantile(d, level), Policy()));
      } catch (const std::exception&) {
        // A quantile beyond double range (shape ≪ 1): that break point is not needed.
      }
    }
  }
  std::sort(points.begin(), points.end());
  points.erase(std::unique(points.begin(), points.end()), points.end());
  return points;
}

// Gauss–Kronrod (15/31 points) on [a, b], halved until |Kronrod − Gauss| is below an absolute
// tolerance on every piece: the integrands are probabilities, so absolute error is the measure
// (a relative criterion never stops where the integrand is ~0). The Kronrod value returned is
// far more accurate than that estimate of the Gauss value's error.
template <class F>
double adaptive(const F& f, double a, double b, double tol, int depth) {
  double error = 0;
  const double v =
      boost::math::quadrature::gauss_kronrod<double, 31>::integrate(f, a, b, 0, 0.0, &error);
  if (error <= tol || depth == 0) return v;
  const double mid = a + (b - a) / 2;
  return adaptive(f, a, mid, tol, depth - 1) + adaptive(f, mid, b, tol, depth - 1);
}

// ∫ g(x) f_base(x) dx.
template <class G>
double expect(const BetaArm& base, const std::vector<BetaArm>& others, const G& g) {
  const auto points = u_points(base, others);
  const auto f = [&](double u) {
    double x;
    try {
      x = boost::math::ibeta_inv(base.a, base.b, u, Policy());
    } catch (const std::exception&) {
      // Newton's method finds no root when the quantile underflows (shape ≪ 1, u → 0).
      x = u < 0.5 ? 0.0 : 1.0;
    }
    return g(x);
  };
  double total = 0;
  for (size_t i = 0; i + 1 < points.size(); ++i) {
    total += adaptive(f, points[i], points[i + 1], 1e-11, 8);
  }
  return total;
}

}  // namespace

double beta_prob_greater_quadrature(const BetaArm& treatment, const BetaArm& control) {
  check_arm(treatment, "beta_prob_greater: treatment");
  check_arm(control, "beta_prob_greater: control");
  const double p = expect(control, {treatment}, [&](double x) {
    return boost::math::ibetac(treatment.a, treatment.b, x, Policy());
  });
  return std::clamp(p, 0.0, 1.0);
}

double beta_prob_greater_sum(const BetaArm& treatment, const BetaArm& control) {
  check_arm(treatment, "beta_prob_greater: treatment");
  check_arm(control, "beta_prob_greater: control");
  if (treatment.a != std::floor(treatment.a)) {
    throw InvalidArgument("beta_prob_greater_sum: treatment a must be an integer, got " +
                          format_number(treatment.a));
  }
  // Terms t_i = B(a_c + i, b_c + b_t) / ((b_t + i) B(1 + i, b_t) B(a_c, b_c)), i < a_t, in logs:
  // t_0 = B(a_c, b_c + b_t)/B(a_c, b_c) and t_{i+1}/t_i = (a_c + i)(b_t + i)/((a_c + b_c + b_t +
  // i)(1 + i)).
  const double ac = control.a, bc = control.b, bt = treatment.b;
  const auto n = static_cast<size_t>(treatment.a);
  std::vector<double> logs(n);
  double l = boost::math::lgamma(bc + bt) + boost::math::lgamma(ac + bc) -
             boost::math::lgamma(ac + bc + bt) - boost::math::lgamma(bc);
  for (size_t i = 0; i < n; ++i) {
    logs[i] = l;
    const double k = static_cast<double>(i);
    l += std::log(ac + k) + std::log(bt + k) - std::log(ac + bc + bt + k) - std::log1p(k);
  }
  const double top = *std::max_element(logs.begin(), logs.end());
  double sum = 0;
  for (double v : logs) sum += std::exp(v - top);
  return std::clamp(std::exp(top + std::log(sum)), 0.0, 1.0);
}

double beta_prob_greater(const BetaArm& treatment, const BetaArm& control) {
  if (treatment.a == std::floor(treatment.a) && treatment.a >= 1 && treatment.a <= 1e5) {
    return beta_prob_greater_sum(treatment, control);
  }
  return beta_prob_greater_quadrature(treatment, control);
}

std::vector<double> beta_prob_best(const std::vector<BetaArm>& arms) {
  if (arms.size() < 2) throw InvalidArgument("beta_prob_best: needs at least two arms");
  for (const auto& arm : arms) check_arm(arm, "beta_prob_best");
  std::vector<double> out(arms.size());
  double total = 0;
  for (size_t i = 0; i < arms.size(); ++i) {
    std::vector<BetaArm> others;
    for (size_t j = 0; j < arms.size(); ++j) {
      if (j != i) others.push_back(arms[j]);
    }
    const auto all_below = [&](double x) {
      double v = 1;
      for (const auto& o : others) v *= boost::math::ibeta(o.a, o.b, x, Policy());
      return v;
    };
    out[i] = std::max(expect(arms[i], others, all_below), 0.0);
    total += out[i];
  }
  // The probabilities sum to 1 up to quadrature error; normalise that error away.
  if (total > 0) {
    for (double& v : out) v /= total;
  }
  return out;
}

std::pair<double, double> beta_expected_loss(const BetaArm& treatment, const BetaArm& control) {
  check_arm(treatment, "beta_expected_loss: treatment");
  check_arm(control, "beta_expected_loss: control");
  // E[(Y − x)+] = E[Y]·(1 − I_x(a+1, b)) − x·(1 − I_x(a, b)) for Y ~ Beta(a, b).
  const auto excess = [](const BetaArm& y, double x) {
    const double m = y.a / (y.a + y.b);
    return std::max(m * boost::math::ibetac(y.a + 1, y.b, x, Policy()) -
                        x * boost::math::ibetac(y.a, y.b, x, Policy()),
                    0.0);
  };
  // Integrate only the smaller loss (its integrand is ~0 where the arms do not overlap, which
  // keeps the quadrature cheap and its error absolute); the other follows from
  // keep − ship = E[p_t] − E[p_c].
  const double diff =
      treatment.a / (treatment.a + treatment.b) - control.a / (control.a + control.b);
  if (diff >= 0) {
    const double ship = expect(treatment, {control}, [&](double x) { return excess(control, x); });
    return {ship, ship + diff};
  }
  const double keep = expect(control, {treatment}, [&](double x) { return excess(treatment, x); });
  return {std::max(keep - diff, 0.0), keep};
}

std::pair<double, double> beta_interval(const BetaArm& arm, double alpha) {
  check_arm(arm, "beta_interval");
  check_alpha(alpha);
  const Beta d(arm.a, arm.b);
  return {boost::math::quantile(d, alpha / 2), boost::math::quantile(d, 1 - alpha / 2)};
}

NormalPosterior normal_effect_posterior(double estimate, double se, double prior_mean,
                                        double prior_sd, double alpha) {
  if (!std::isfinite(estimate)) {
    throw InvalidArgument("normal_posterior: estimate must be finite, got " +
                          format_number(estimate));
  }
  if (!std::isfinite(se) || !(se > 0)) {
    throw InvalidArgument("normal_posterior: the standard error must be finite and > 0, got " +
                          format_number(se));
  }
  if (!(prior_sd > 0) || !std::isfinite(prior_mean)) {
    throw InvalidArgument(
        "normal_posterior: prior_sd must be > 0 (inf: flat) and prior_mean finite, "
        "got prior_sd " +
        format_number(prior_sd) + ", prior_mean " + format_number(prior_mean));
  }
  check_alpha(alpha);
  NormalPosterior p;
  if (std::isinf(prior_sd)) {
    p.mean = estimate;
    p.sd = se;
  } else {
    const double wd = 1 / (se * se), wp = 1 / (prior_sd * prior_sd);
    p.mean = (estimate * wd + prior_mean * wp) / (wd + wp);
    p.sd = 1 / std::sqrt(wd + wp);
  }
  const boost::math::normal_distribution<double> post(p.mean, p.sd), unit;
  p.prob_positive = boost::math::cdf(boost::math::complement(post, 0.0));
  const double z = p.mean / p.sd;
  const double density = boost::math::pdf(unit, z);
  p.loss_control = std::max(p.mean * boost::math::cdf(unit, z) + p.sd * density, 0.0);
  p.loss_treatment = std::max(-p.mean * boost::math::cdf(unit, -z) + p.sd * density, 0.0);
  p.ci_low = boost::math::quantile(post, alpha / 2);
  p.ci_high = boost::math::quantile(post, 1 - alpha / 2);
  return p;
}

}  // namespace trafficsplit::stats
