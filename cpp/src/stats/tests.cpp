#include "trafficsplit/stats/tests.hpp"

#include <algorithm>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>

#include "stats/format.hpp"
#include "trafficsplit/errors.hpp"

namespace trafficsplit::stats {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Upper tail and quantile of Student's t (df = +inf: the normal).
double upper_tail(double x, double df) {
  if (std::isinf(df)) {
    return boost::math::cdf(boost::math::complement(boost::math::normal_distribution<double>(), x));
  }
  return boost::math::cdf(
      boost::math::complement(boost::math::students_t_distribution<double>(df), x));
}

double quantile(double p, double df) {
  if (std::isinf(df)) return boost::math::quantile(boost::math::normal_distribution<double>(), p);
  return boost::math::quantile(boost::math::students_t_distribution<double>(df), p);
}

double critical(double alpha, double df, Alternative alternative) {
  return quantile(alternative == Alternative::kTwoSided ? 1 - alpha / 2 : 1 - alpha, df);
}

void check_proportion(double successes, double trials, const char* fn, const char* arm) {
  if (!std::isfinite(trials) || !(trials > 0)) {
    throw InvalidArgument(std::string(fn) + ": " + arm + " trials must be > 0, got " +
                          format_number(trials));
  }
  if (!std::isfinite(successes) || successes < 0 || successes > trials) {
    throw InvalidArgument(std::string(fn) + ": " + arm + " successes must be in [0, trials=" +
                          format_number(trials) + "], got " + format_number(successes));
  }
}

void check_null(double null, const char* fn) {
  if (!std::isfinite(null)) {
    throw InvalidArgument(std::string(fn) + ": null must be finite, got " + format_number(null));
  }
}

}  // namespace

std::string format_number(double x) {
  std::ostringstream out;
  out.precision(12);
  out << x;
  return out.str();
}

Alternative parse_alternative(const std::string& name) {
  if (name == "two-sided") return Alternative::kTwoSided;
  if (name == "larger") return Alternative::kLarger;
  if (name == "smaller") return Alternative::kSmaller;
  throw InvalidArgument("alternative must be 'two-sided', 'larger' or 'smaller', got '" + name +
                        "'");
}

void check_alpha(double alpha) {
  if (!(alpha > 0 && alpha < 1)) {
    throw InvalidArgument("alpha must be in (0, 1), got " + format_number(alpha));
  }
}

void check_summary(const Summary& s, const char* what) {
  if (!std::isfinite(s.n) || s.n < 2) {
    throw InvalidArgument(std::string(what) + ": n must be >= 2 to estimate a variance, got " +
                          format_number(s.n));
  }
  if (!std::isfinite(s.mean)) {
    throw InvalidArgument(std::string(what) + ": mean must be finite, got " +
                          format_number(s.mean));
  }
  if (!std::isfinite(s.var) || s.var < 0) {
    throw InvalidArgument(std::string(what) + ": variance must be finite and >= 0, got " +
                          format_number(s.var));
  }
}

TestStat finish_test(double estimate, double se, double null, double df, double alpha,
                     Alternative alternative) {
  check_alpha(alpha);
  if (std::isnan(df) || df <= 0) df = kInf;
  TestStat r;
  r.estimate = estimate;
  r.se = se;
  r.df = df;
  const double diff = estimate - null;
  const double q = critical(alpha, df, alternative);
  if (se == 0) {
    r.statistic = diff == 0 ? 0.0 : std::copysign(kInf, diff);
    switch (alternative) {
      case Alternative::kTwoSided:
        r.pvalue = diff == 0 ? 1.0 : 0.0;
        break;
      case Alternative::kLarger:
        r.pvalue = diff > 0 ? 0.0 : 1.0;
        break;
      case Alternative::kSmaller:
        r.pvalue = diff < 0 ? 0.0 : 1.0;
        break;
    }
  } else {
    r.statistic = diff / se;
    switch (alternative) {
      case Alternative::kTwoSided:
        r.pvalue = std::min(1.0, 2 * upper_tail(std::fabs(r.statistic), df));
        break;
      case Alternative::kLarger:
        r.pvalue = upper_tail(r.statistic, df);
        break;
      case Alternative::kSmaller:
        r.pvalue = upper_tail(-r.statistic, df);
        break;
    }
  }
  r.ci_low = alternative == Alternative::kSmaller ? -kInf : estimate - q * se;
  r.ci_high = alternative == Alternative::kLarger ? kInf : estimate + q * se;
  return r;
}

double welch_df(const Summary& control, const Summary& treatment) {
  const double a = treatment.var / treatment.n;
  const double b = control.var / control.n;
  const double den = a * a / (treatment.n - 1) + b * b / (control.n - 1);
  if (!(den > 0)) return kInf;
  return (a + b) * (a + b) / den;
}

TestStat welch_ttest(const Summary& control, const Summary& treatment, double alpha,
                     Alternative alternative, double null) {
  check_summary(control, "welch_ttest: control");
  check_summary(treatment, "welch_ttest: treatment");
  check_null(null, "welch_ttest");
  const double se = std::sqrt(treatment.var / treatment.n + control.var / control.n);
  return finish_test(treatment.mean - control.mean, se, null, welch_df(control, treatment), alpha,
                     alternative);
}

TestStat ztest_means(const Summary& control, const Summary& treatment, double alpha,
                     Alternative alternative, double null) {
  check_summary(control, "ztest_means: control");
  check_summary(treatment, "ztest_means: treatment");
  check_null(null, "ztest_means");
  const double se = std::sqrt(treatment.var / treatment.n + control.var / control.n);
  return finish_test(treatment.mean - control.mean, se, null, kInf, alpha, alternative);
}

TestStat proportions_ztest(double successes_c, double trials_c, double successes_t, double trials_t,
                           bool pooled, double alpha, Alternative alternative, double null) {
  check_proportion(successes_c, trials_c, "proportions_ztest", "control");
  check_proportion(successes_t, trials_t, "proportions_ztest", "treatment");
  check_null(null, "proportions_ztest");
  const double pc = successes_c / trials_c, pt = successes_t / trials_t;
  const double wald = std::sqrt(pc * (1 - pc) / trials_c + pt * (1 - pt) / trials_t);
  TestStat r = finish_test(pt - pc, wald, null, kInf, alpha, alternative);
  if (pooled) {
    const double p = (successes_c + successes_t) / (trials_c + trials_t);
    const double se0 = std::sqrt(p * (1 - p) * (1 / trials_c + 1 / trials_t));
    const TestStat h0 = finish_test(pt - pc, se0, null, kInf, alpha, alternative);
    r.statistic = h0.statistic;
    r.pvalue = h0.pvalue;
  }
  return r;
}

TestStat proportions_wald(double successes_c, double trials_c, double successes_t, double trials_t,
                          double alpha, Alternative alternative, double null) {
  return proportions_ztest(successes_c, trials_c, successes_t, trials_t, false, alpha, alternative,
                           null);
}

LiftMethod parse_lift_method(const std::string& name) {
  if (name == "delta") return LiftMethod::kDelta;
  if (name == "fieller") return LiftMethod::kFieller;
  if (name == "log") return LiftMethod::kLog;
  throw InvalidArgument("relative_lift: method must be 'delta', 'fieller' or 'log', got '" + name +
                        "'");
}

TestStat relative_lift(const Summary& control, const Summary& treatment, double alpha,
                       LiftMethod method, Alternative alternative, bool use_t, double null) {
  check_summary(control, "relative_lift: control");
  check_summary(treatment, "relative_lift: treatment");
  check_alpha(alpha);
  check_null(null, "relative_lift");
  const double mc = control.mean, mt = treatment.mean;
  if (mc == 0) {
    throw InvalidArgument("relative_lift: control mean is 0, the relative lift is undefined");
  }
  if (method != LiftMethod::kDelta && null != 0) {
    throw InvalidArgument("relative_lift: a nonzero null needs method 'delta', got null=" +
                          format_number(null));
  }
  const double vc = control.var / control.n, vt = treatment.var / treatment.n;
  const double df = use_t ? welch_df(control, treatment) : kInf;
  const double lift = (mt - mc) / std::fabs(mc);
  const double se = std::sqrt(vt / (mc * mc) + mt * mt * vc / (mc * mc * mc * mc));
  if (method == LiftMethod::kDelta) return finish_test(lift, se, null, df, alpha, alternative);

  if (method == LiftMethod::kLog) {
    if (!(mc > 0 && mt > 0)) {
      throw InvalidArgument("relative_lift: method 'log' needs positive means, got control " +
                            format_number(mc) + " and treatment " + format_number(mt));
    }
    const double sl = std::sqrt(vt / (mt * mt) + vc / (mc * mc));
    const TestStat onlog = finish_test(std::log(mt / mc), sl, 0.0, df, alpha, alternative);
    TestStat r = onlog;
    r.estimate = lift;
    r.se = se;
    r.ci_low = std::exp(onlog.ci_low) - 1;
    r.ci_high = std::exp(onlog.ci_high) - 1;
    return r;
  }

  // Fieller: the pivot (mt − R·mc)/sqrt(vt + R²vc) at R = 1 gives the test; its inversion the CI.
  TestStat r = finish_test(mt - mc, std::sqrt(vt + vc), 0.0, df, alpha, alternative);
  r.estimate = lift;
  r.se = se;
  r.df = df;
  const double q = critical(alpha, df, alternative);
  const double g = q * q * vc / (mc * mc);
  if (g >= 1) {
    r.bounded = false;
    r.ci_low = -kInf;
    r.ci_high = kInf;
    return r;
  }
  const double ratio = mt / mc;
  const double half = q / std::fabs(mc) * std::sqrt(ratio * ratio * vc + (1 - g) * vt);
  double lo = (ratio - half) / (1 - g) - 1, hi = (ratio + half) / (1 - g) - 1;
  if (mc < 0) {  // lift = 1 − R
    const double l = -hi;
    hi = -lo;
    lo = l;
  }
  r.ci_low = alternative == Alternative::kSmaller ? -kInf : lo;
  r.ci_high = alternative == Alternative::kLarger ? kInf : hi;
  return r;
}

namespace {
void check_ratio(const RatioSummary& s, const char* what) {
  if (!std::isfinite(s.n) || s.n < 2) {
    throw InvalidArgument(std::string(what) + ": n must be >= 2, got " + format_number(s.n));
  }
  if (!std::isfinite(s.mean_num) || !std::isfinite(s.mean_den) || !std::isfinite(s.cov) ||
      !std::isfinite(s.var_num) || !std::isfinite(s.var_den) || s.var_num < 0 || s.var_den < 0) {
    throw InvalidArgument(std::string(what) +
                          ": means and variances must be finite, variances >= 0");
  }
  if (s.mean_den == 0) {
    throw InvalidArgument(std::string(what) + ": denominator mean is 0, the ratio is undefined");
  }
}

// R and its delta-method SE of a checked summary.
std::pair<double, double> ratio_estimate(const RatioSummary& s) {
  const double x = s.mean_num, y = s.mean_den;
  const double r = x / y;
  const double var =
      (s.var_num / (y * y) - 2 * x * s.cov / (y * y * y) + x * x * s.var_den / (y * y * y * y)) /
      s.n;
  return {r, std::sqrt(std::max(var, 0.0))};
}
}  // namespace

std::pair<double, double> ratio_metric(const RatioSummary& s) {
  check_ratio(s, "ratio_metric");
  return ratio_estimate(s);
}

TestStat ratio_test(const RatioSummary& control, const RatioSummary& treatment, bool relative,
                    double alpha, Alternative alternative) {
  check_ratio(control, "ratio_test: control");
  check_ratio(treatment, "ratio_test: treatment");
  const auto [rc, sc] = ratio_estimate(control);
  const auto [rt, st] = ratio_estimate(treatment);
  if (!relative)
    return finish_test(rt - rc, std::sqrt(sc * sc + st * st), 0.0, kInf, alpha, alternative);
  if (rc == 0) {
    throw InvalidArgument("ratio_test: control ratio is 0, the relative difference is undefined");
  }
  const double se = std::sqrt(st * st / (rc * rc) + rt * rt * sc * sc / (rc * rc * rc * rc));
  return finish_test((rt - rc) / std::fabs(rc), se, 0.0, kInf, alpha, alternative);
}

namespace {
void check_cuped(const CupedSummary& s, const char* what) {
  check_summary(Summary{s.n, s.mean_y, s.var_y}, what);
  if (!std::isfinite(s.mean_x) || !std::isfinite(s.var_x) || s.var_x < 0 ||
      !std::isfinite(s.cov_xy)) {
    throw InvalidArgument(
        std::string(what) +
        ": covariate mean, variance and covariance must be finite, variance >= 0");
  }
}
}  // namespace

double cuped_theta(const CupedSummary& c, const CupedSummary& t) {
  const double n = c.n + t.n;
  const double dx = t.mean_x - c.mean_x, dy = t.mean_y - c.mean_y;
  const double sxx = (c.n - 1) * c.var_x + (t.n - 1) * t.var_x + dx * dx * c.n * t.n / n;
  const double sxy = (c.n - 1) * c.cov_xy + (t.n - 1) * t.cov_xy + dx * dy * c.n * t.n / n;
  return sxx > 0 ? sxy / sxx : 0.0;
}

CupedStat cuped(const CupedSummary& control, const CupedSummary& treatment, double alpha,
                bool relative, Alternative alternative) {
  check_cuped(control, "cuped: control");
  check_cuped(treatment, "cuped: treatment");
  check_alpha(alpha);
  CupedStat r;
  const double th = r.theta = cuped_theta(control, treatment);
  const auto adjusted = [th](const CupedSummary& s) {
    const double v = s.var_y + th * th * s.var_x - 2 * th * s.cov_xy;
    return Summary{s.n, s.mean_y - th * s.mean_x, std::max(v, 0.0)};
  };
  const Summary ac = adjusted(control), at = adjusted(treatment);
  const Summary uc{control.n, control.mean_y, control.var_y};
  const Summary ut{treatment.n, treatment.mean_y, treatment.var_y};
  if (!relative) {
    r.unadjusted = welch_ttest(uc, ut, alpha, alternative, 0.0);
    r.adjusted = welch_ttest(ac, at, alpha, alternative, 0.0);
  } else {
    r.unadjusted = relative_lift(uc, ut, alpha, LiftMethod::kDelta, alternative, true, 0.0);
    const double ma = control.mean_y, mb = treatment.mean_y;
    const double ratio = mb / ma;
    const double vb = at.var / (treatment.n * ma * ma);
    const double va = (control.var_y * ratio * ratio - 2 * th * control.cov_xy * ratio +
                       th * th * control.var_x) /
                      (control.n * ma * ma);
    const double lift = (at.mean - ac.mean) / std::fabs(ma);
    r.adjusted = finish_test(lift, std::sqrt(std::max(vb + va, 0.0)), 0.0, welch_df(ac, at), alpha,
                             alternative);
  }
  const double u = r.unadjusted.se * r.unadjusted.se;
  r.variance_reduction = u > 0 ? 1 - r.adjusted.se * r.adjusted.se / u : 0.0;
  return r;
}

AdjustMethod parse_adjust_method(const std::string& name) {
  if (name == "bonferroni") return AdjustMethod::kBonferroni;
  if (name == "holm") return AdjustMethod::kHolm;
  if (name == "bh" || name == "fdr_bh" || name == "benjamini-hochberg") {
    return AdjustMethod::kBenjaminiHochberg;
  }
  throw InvalidArgument(
      "adjust_pvalues: method must be 'bonferroni', 'holm' or 'bh' ('fdr_bh', "
      "'benjamini-hochberg'), got '" +
      name + "'");
}

std::vector<double> adjust_pvalues(const std::vector<double>& pvalues, AdjustMethod method) {
  std::vector<size_t> order;
  for (size_t i = 0; i < pvalues.size(); ++i) {
    const double p = pvalues[i];
    if (std::isnan(p)) continue;
    if (!(p >= 0 && p <= 1)) {
      throw InvalidArgument("adjust_pvalues: pvalues[" + std::to_string(i) +
                            "] must be in [0, 1] or NaN, got " + format_number(p));
    }
    order.push_back(i);
  }
  std::vector<double> out(pvalues.size(), std::numeric_limits<double>::quiet_NaN());
  const size_t m = order.size();
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return pvalues[a] < pvalues[b]; });
  const double md = static_cast<double>(m);
  switch (method) {
    case AdjustMethod::kBonferroni:
      for (size_t i : order) out[i] = std::min(1.0, md * pvalues[i]);
      break;
    case AdjustMethod::kHolm: {
      double running = 0;
      for (size_t k = 0; k < m; ++k) {
        running =
            std::max(running, std::min(1.0, (md - static_cast<double>(k)) * pvalues[order[k]]));
        out[order[k]] = running;
      }
      break;
    }
    case AdjustMethod::kBenjaminiHochberg: {
      double running = 1;
      for (size_t k = m; k-- > 0;) {
        running = std::min(running, md * pvalues[order[k]] / static_cast<double>(k + 1));
        out[order[k]] = running;
      }
      break;
    }
  }
  return out;
}

}  // namespace trafficsplit::stats
