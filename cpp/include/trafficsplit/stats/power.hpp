// Power, sample size and minimum detectable effect of two-arm comparisons under normal
// approximations. Sizes are per arm: n_control, and n_treatment = ratio · n_control.
// alpha is the level of one comparison (callers divide it for several arms).
#pragma once

namespace trafficsplit::stats {

struct ArmSizes {
  double control = 0;
  double treatment = 0;
};

// Standard deviations of the difference of proportions scaled to one control unit:
// Var(p̂_t − p̂_c) = sd² / n_control, under H0 (pooled p̄) and under H1.
struct ProportionSds {
  double null = 0;
  double alternative = 0;
};
ProportionSds proportion_sds(double baseline, double diff, double ratio);

// Fleiss: n_c = ((z_{1−α/s}·sd_0 + z_{power}·sd_1)/δ)² (statsmodels
// samplesize_proportions_2indep_onetail, R power.prop.test). diff = p_t − p_c ≠ 0.
ArmSizes sample_size_proportions(double baseline, double diff, double alpha, double power,
                                 int sides, double ratio);

// Power of the pooled-null z test of two proportions, both tails when sides = 2
// (statsmodels power_proportions_2indep).
double power_proportions(double baseline, double diff, double n_control, double alpha, int sides,
                         double ratio);

// Smallest increase δ > 0 of the proportion with sample_size_proportions(δ) = n_control.
double mde_proportions(double baseline, double n_control, double alpha, double power, int sides,
                       double ratio);

// Power of the z test of two means with common sd, both tails when sides = 2
// (statsmodels NormalIndPower).
double power_means(double sd, double diff, double n_control, double alpha, int sides, double ratio);

// n_control solving power_means(n) = power exactly (both tails), as NormalIndPower.solve_power.
ArmSizes sample_size_means(double sd, double diff, double alpha, double power, int sides,
                           double ratio);

// Smallest |δ| with power_means(δ, n_control) = power.
double mde_means(double sd, double n_control, double alpha, double power, int sides, double ratio);

}  // namespace trafficsplit::stats
