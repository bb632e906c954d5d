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

#include "stats_format.hpp"
#include "trafficsplit/errors.hpp"

namespace trafficsplit::stats {

namespace {

using boost::math::beta_distribution;

void check_arm(const BetaArm& arm, const char* what) {
  if (!std::isfinite(arm.a) || !std::isfinite(arm.b) || !(arm.a > 0) || !(arm.b > 0)) {
    throw InvalidArgument(std::string(what) + ": Beta parameters must be finite and > 0, got (" +
                          format_number(arm.a) + ", " + format_number(arm.b) + ")");
  }
}

// Break points that put quadrature panels where the posteriors hold their mass: quantiles of
// every arm from 1e-15 to 1 − 1e-15 (the mass left outside is below 1e-14).
std::vector<double> break_points(const std::vector<BetaArm>& arms) {
  static const double kLevels[] = {1e-15, 1e-9, 1e-5, 1e-3,  0.02,     0.1,      0.25,     0.5,
                                   0.75,  0.9,  0.98, 0.999, 1 - 1e-5, 1 - 1e-9, 1 - 1e-15};
  std::vector<double> points;
  double lo = 1, hi = 0;
  for (const auto& arm : arms) {
    const beta_distribution<double> d(arm.a, arm.b);
    for (double level : kLevels) points.push_back(boost::math::quantile(d, level));
    lo = std::min(lo, boost::math::quantile(d, kLevels[0]));
    hi = std::max(hi, boost::math::quantile(d, 1 - 1e-15));
  }
  std::sort(points.begin(), points.end());
  std::vector<double> out;
  for (double p : points) {
    if (p < lo || p > hi) continue;
    if (out.empty() || p > out.back()) out.push_back(p);
  }
  return out;
}

template <class F>
double integrate(F f, const std::vector<double>& points) {
  double total = 0;
  for (size_t i = 0; i + 1 < points.size(); ++i) {
    total += boost::math::quadrature::gauss_kronrod<double, 61>::integrate(
        f, points[i], points[i + 1], 2, 1e-12);
  }
  return total;
}

double pdf(const BetaArm& arm, double x) {
  return boost::math::pdf(beta_distribution<double>(arm.a, arm.b), x);
}

}  // namespace

double beta_prob_greater_quadrature(const BetaArm& treatment, const BetaArm& control) {
  check_arm(treatment, "beta_prob_greater: treatment");
  check_arm(control, "beta_prob_greater: control");
  const auto f = [&](double x) {
    return pdf(control, x) * boost::math::ibetac(treatment.a, treatment.b, x);
  };
  return std::clamp(integrate(f, break_points({treatment, control})), 0.0, 1.0);
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
  const auto points = break_points(arms);
  std::vector<double> out(arms.size());
  double total = 0;
  for (size_t i = 0; i < arms.size(); ++i) {
    const auto f = [&](double x) {
      double v = pdf(arms[i], x);
      for (size_t j = 0; j < arms.size() && v > 0; ++j) {
        if (j != i) v *= boost::math::ibeta(arms[j].a, arms[j].b, x);
      }
      return v;
    };
    out[i] = std::max(integrate(f, points), 0.0);
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
    return std::max(m * boost::math::ibetac(y.a + 1, y.b, x) - x * boost::math::ibetac(y.a, y.b, x),
                    0.0);
  };
  const auto points = break_points({treatment, control});
  const double ship =
      integrate([&](double x) { return pdf(treatment, x) * excess(control, x); }, points);
  const double keep =
      integrate([&](double x) { return pdf(control, x) * excess(treatment, x); }, points);
  return {ship, keep};
}

std::pair<double, double> beta_interval(const BetaArm& arm, double alpha) {
  check_arm(arm, "beta_interval");
  if (!(alpha > 0 && alpha < 1)) {
    throw InvalidArgument("alpha must be in (0, 1), got " + format_number(alpha));
  }
  const beta_distribution<double> d(arm.a, arm.b);
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
  if (!(alpha > 0 && alpha < 1)) {
    throw InvalidArgument("alpha must be in (0, 1), got " + format_number(alpha));
  }
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
