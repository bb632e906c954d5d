// Bayesian summaries: beta-binomial posteriors of conversion rates and the Gaussian model of an
// effect. Arm 0 is the control wherever a vector of arms is taken.
#pragma once

#include <utility>
#include <vector>

namespace trafficsplit::stats {

// A Beta(a, b) posterior.
struct BetaArm {
  double a = 1;
  double b = 1;
};

// P(p_t > p_c) by adaptive Gauss–Kronrod quadrature of f_c(x)·(1 − F_t(x)).
double beta_prob_greater_quadrature(const BetaArm& treatment, const BetaArm& control);

// The same by Evan Miller's finite sum; treatment.a must be a positive integer.
double beta_prob_greater_sum(const BetaArm& treatment, const BetaArm& control);

// The finite sum when treatment.a is an integer up to 10^5, else quadrature.
double beta_prob_greater(const BetaArm& treatment, const BetaArm& control);

// P(arm i has the largest rate) for every arm: ∫ f_i(x) Π_{j≠i} F_j(x) dx.
std::vector<double> beta_prob_best(const std::vector<BetaArm>& arms);

// (E[max(p_c − p_t, 0)], E[max(p_t − p_c, 0)]): the expected loss of shipping the treatment
// and of keeping the control.
std::pair<double, double> beta_expected_loss(const BetaArm& treatment, const BetaArm& control);

// Equal-tailed credible interval [q(α/2), q(1 − α/2)] of a Beta.
std::pair<double, double> beta_interval(const BetaArm& arm, double alpha);

// Gaussian model of an effect: estimate ~ N(Δ, se²), prior Δ ~ N(prior_mean, prior_sd²)
// (prior_sd = +inf: flat prior).
struct NormalPosterior {
  double mean = 0;
  double sd = 0;
  double prob_positive = 0;   // P(Δ > 0)
  double loss_treatment = 0;  // E[max(−Δ, 0)]: expected loss of shipping the treatment
  double loss_control = 0;    // E[max(Δ, 0)]: expected loss of keeping the control
  double ci_low = 0;
  double ci_high = 0;
};
NormalPosterior normal_effect_posterior(double estimate, double se, double prior_mean,
                                        double prior_sd, double alpha);

}  // namespace trafficsplit::stats
