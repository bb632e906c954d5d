// Closed-form tests and intervals on per-arm summaries: Welch t and z tests for means, two
// proportions, relative lift (delta, Fieller, log), ratio metrics by the delta method, CUPED with
// a pooled θ, and multiple-comparison adjustments. Formulas and sources: docs/statistics.md.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace trafficsplit::stats {

enum class Alternative { kTwoSided, kLarger, kSmaller };

// "two-sided", "larger" or "smaller"; anything else throws InvalidArgument.
Alternative parse_alternative(const std::string& name);

// One arm of a mean metric: count, mean and sample variance (n - 1 denominator).
struct Summary {
  double n = 0;
  double mean = 0;
  double var = 0;
};

// The outcome of a test. df is +inf when the reference distribution is the normal.
// bounded is false when an interval method (Fieller) has no finite interval: the ends are ±inf.
struct TestStat {
  double estimate = 0;
  double se = 0;
  double statistic = 0;
  double df = 0;
  double pvalue = 1;
  double ci_low = 0;
  double ci_high = 0;
  bool bounded = true;
};

// Statistic, p-value and interval of estimate with standard error se against null, referred to
// Student's t with df degrees of freedom (df = +inf: the normal).
TestStat finish_test(double estimate, double se, double null, double df, double alpha,
                     Alternative alternative);

// Welch-Satterthwaite degrees of freedom of the difference of two means.
double welch_df(const Summary& control, const Summary& treatment);

// Δ = mean_t − mean_c, SE² = s_t²/n_t + s_c²/n_c, Student's t with Welch df.
TestStat welch_ttest(const Summary& control, const Summary& treatment, double alpha,
                     Alternative alternative, double null);

// Same difference and SE, referred to the normal.
TestStat ztest_means(const Summary& control, const Summary& treatment, double alpha,
                     Alternative alternative, double null);

// Δ = p_t − p_c. The statistic uses the pooled SE under H0 (when pooled and null == 0) or the
// unpooled one; the interval always uses the unpooled (Wald) SE.
TestStat proportions_ztest(double successes_c, double trials_c, double successes_t, double trials_t,
                           bool pooled, double alpha, Alternative alternative, double null);

// Wald z test of a difference of proportions against null, unpooled SE throughout
// (statsmodels test_proportions_2indep(method="wald")).
TestStat proportions_wald(double successes_c, double trials_c, double successes_t, double trials_t,
                          double alpha, Alternative alternative, double null);

enum class LiftMethod { kDelta, kFieller, kLog };
LiftMethod parse_lift_method(const std::string& name);

// Relative lift (mean_t − mean_c)/|mean_c|. The test statistic is the one of the method's
// pivot at no lift (delta: lift/SE; Fieller: the Welch statistic; log: log ratio/SE). With
// use_t the reference is Student's t with Welch df, else the normal. null shifts the delta
// method's H0 (relative margin); the other methods require null == 0.
TestStat relative_lift(const Summary& control, const Summary& treatment, double alpha,
                       LiftMethod method, Alternative alternative, bool use_t, double null = 0.0);

// Per randomisation unit numerator X and denominator Y: count, means, sample (co)variances.
struct RatioSummary {
  double n = 0;
  double mean_num = 0;
  double mean_den = 0;
  double var_num = 0;
  double var_den = 0;
  double cov = 0;
};

// R = mean_num/mean_den and its delta-method standard error (Deng et al., KDD 2018).
std::pair<double, double> ratio_metric(const RatioSummary& s);

// Difference (or relative difference) of two ratio metrics; normal reference.
TestStat ratio_test(const RatioSummary& control, const RatioSummary& treatment, bool relative,
                    double alpha, Alternative alternative);

// One arm for CUPED: metric y (post period) and covariate x (pre period).
struct CupedSummary {
  double n = 0;
  double mean_y = 0;
  double mean_x = 0;
  double var_y = 0;
  double var_x = 0;
  double cov_xy = 0;
};

struct CupedStat {
  TestStat adjusted;
  TestStat unadjusted;
  double theta = 0;
  double variance_reduction = 0;  // 1 − SE²_adjusted / SE²_unadjusted
};

// θ = Cov(y, x)/Var(x) over both arms pooled (gbstats compute_theta); 0 when Var(x) = 0.
double cuped_theta(const CupedSummary& control, const CupedSummary& treatment);

// CUPED-adjusted Welch test of the difference (or of the relative lift, growthbook PR #3610).
CupedStat cuped(const CupedSummary& control, const CupedSummary& treatment, double alpha,
                bool relative, Alternative alternative);

enum class AdjustMethod { kBonferroni, kHolm, kBenjaminiHochberg };
AdjustMethod parse_adjust_method(const std::string& name);

// Adjusted p-values in input order; NaN entries stay NaN and are not counted.
std::vector<double> adjust_pvalues(const std::vector<double>& pvalues, AdjustMethod method);

// Checks shared by the kernels; throw InvalidArgument naming `what`.
void check_alpha(double alpha);
void check_summary(const Summary& s, const char* what);

}  // namespace trafficsplit::stats
