// Group-sequential designs (Lan–DeMets alpha spending, classic Wang–Tsiatis and Haybittle–Peto
// boundaries) by the Armitage–McPherson–Rowe / Jennison–Turnbull recursion, and always-valid
// inference for continuous monitoring (mSPRT, asymptotic confidence sequences).
//
// Conventions: z statistics follow a Brownian motion in information time t (Z_k = S_k/sqrt(t_k),
// S_k - S_{k-1} ~ N(theta*dt, dt)); `alpha` is always the one-sided level of one boundary, so a
// symmetric two-sided design (sides = 2) has total level 2*alpha (ldbounds, gsDesign, rpact).
#pragma once

#include <cstdint>
#include <vector>

namespace trafficsplit::stats {

// gsDesign's default grid parameter r (about 12r points per stage).
inline constexpr int kDefaultGridPoints = 18;

enum class SpendingFamily {
  kObrienFleming,    // 2 - 2 Phi(Phi^-1(1 - alpha/2) / sqrt(t))
  kPocock,           // alpha ln(1 + (e - 1) t)
  kHwangShihDeCani,  // alpha (1 - e^{-gamma t}) / (1 - e^{-gamma}); gamma = 0 is alpha t
  kKimDeMets,        // alpha t^rho, rho > 0
};

struct SpendingFunction {
  SpendingFamily family = SpendingFamily::kObrienFleming;
  double parameter = 0.0;  // gamma (HSD) or rho (Kim–DeMets); unused otherwise

  // Cumulative alpha spent at information fraction t (clipped to [0, 1]); alpha(1) = alpha.
  double cumulative(double t, double alpha) const;
  // Throws InvalidArgument when the parameter does not suit the family.
  void validate() const;
};

struct Boundaries {
  std::vector<double> fractions;         // information fractions of the looks
  std::vector<double> upper;             // z-scale efficacy bounds (+inf: nothing spent there)
  std::vector<double> cumulative_alpha;  // per side, actually spent up to each look
  std::vector<double> nominal_alpha;     // per side: 1 - Phi(upper_k)
};

struct CrossingProbabilities {
  std::vector<double> upper;  // P(first crossing of +b_k at look k)
  std::vector<double> lower;  // P(first crossing of -b_k at look k); zeros when one-sided
};

// The recursion itself, one look at a time: keeps the sub-density of Z_k over the paths that
// have not stopped (on the J&T grid of the continuation region), so that adding a look costs
// O(m^2) with m ~ 12r nodes whatever the number of earlier looks.
class SequentialRecursion {
 public:
  explicit SequentialRecursion(int sides = 1, double drift = 0.0, int grid = kDefaultGridPoints);

  // Probability (upper, lower) of stopping at a look at information t > last with bound b,
  // among the paths not stopped so far; does not add the look.
  std::pair<double, double> crossing(double t, double bound) const;
  // Adds a look with the given bound and returns its crossing probabilities.
  std::pair<double, double> add_look(double t, double bound);
  // Adds a look whose bound spends `increment` per side (under the drift of this recursion)
  // and returns the bound (+inf when increment <= 0).
  double add_look_spending(double t, double increment);

  int looks() const { return looks_; }
  double last_fraction() const { return t_; }
  // Probability of not having stopped after the last look.
  double continuing() const;

 private:
  void advance(double t, double bound);
  std::pair<double, double> crossing_with_slope(double t, double bound) const;
  double solve_bound(double t, double target, double guess) const;

  int sides_;
  double drift_;
  int grid_;
  int looks_ = 0;
  double t_ = 0.0;
  std::vector<double> nodes_;     // z values at the last look
  std::vector<double> weighted_;  // Simpson weight * sub-density at the nodes
};

// Bounds spending the given cumulative alpha (per side, non-decreasing, < 0.5) at strictly
// increasing fractions t > 0. Where `fixed` has a finite value the bound is taken as given
// (Haybittle–Peto interims); later looks spend relative to what was actually spent.
Boundaries boundaries_from_cumulative_alpha(const std::vector<double>& fractions,
                                            const std::vector<double>& cumulative_alpha, int sides,
                                            int grid = kDefaultGridPoints,
                                            const std::vector<double>& fixed = {});

// Lan–DeMets spending boundaries: fraction t spends alpha(min(t, 1)); fractions may exceed 1
// only at the last look (the final analysis, which spends the rest).
Boundaries spending_boundaries(const std::vector<double>& fractions, double alpha, int sides,
                               const SpendingFunction& spending, int grid = kDefaultGridPoints);

// Classic Wang–Tsiatis boundaries b_k = C t_k^(shape - 1/2) with C solved for level alpha per
// side: shape 0 is O'Brien–Fleming, 0.5 is Pocock.
Boundaries wang_tsiatis_boundaries(const std::vector<double>& fractions, double alpha, int sides,
                                   double shape, int grid = kDefaultGridPoints);

// First-crossing probabilities of the bounds under drift theta (E[Z_k] = theta sqrt(t_k)).
CrossingProbabilities crossing_probabilities(const std::vector<double>& fractions,
                                             const std::vector<double>& upper, int sides,
                                             double drift, int grid = kDefaultGridPoints);

// The drift theta at which the probability of crossing an upper bound equals `power`.
double drift_for_power(const std::vector<double>& fractions, const std::vector<double>& upper,
                       int sides, double power, int grid = kDefaultGridPoints);

// I_max / I_fixed = (theta / (z_{1-alpha} + z_{power}))^2 for the bounds, alpha per side.
double inflation_factor(const std::vector<double>& fractions, const std::vector<double>& upper,
                        double alpha, int sides, double power, int grid = kDefaultGridPoints);

struct SequentialDecision {
  std::vector<double> fractions;         // as observed
  std::vector<double> bounds;            // bound used at each look (repeated looks share one)
  std::vector<double> cumulative_alpha;  // per side, spent up to each look
  std::vector<double> nominal_alpha;     // per side, 1 - Phi(bound)
  std::vector<double> nominal_pvalue;    // fixed-sample p of z: 1 - Phi(z) or 2(1 - Phi(|z|))
  int64_t crossed = -1;                  // first look whose |z| (or z) reached its bound
  int direction = 0;                     // +1 upper, -1 lower crossing, 0 none
  bool final = false;                    // the last look is at fraction >= 1
};

// Bounds at the observed (possibly unplanned) information fractions, spending alpha(t) at the
// observed t, and the first crossing of z. Fractions must be > 0 and non-decreasing; a repeated
// fraction reuses the previous bound; no look may follow one at fraction >= 1.
SequentialDecision decide(const std::vector<double>& z, const std::vector<double>& fractions,
                          double alpha, int sides, const SpendingFunction& spending,
                          int grid = kDefaultGridPoints);

// Fills crossed, direction and nominal_pvalue of `d` for z against d.bounds (same length).
void mark_crossing(const std::vector<double>& z, int sides, SequentialDecision& d);

// --- always-valid inference -------------------------------------------------------------------

struct AlwaysValidPath {
  std::vector<double> log_likelihood_ratio;  // log Lambda_n of the normal mixture
  std::vector<double> pvalue;                // running min of min(1, 1/Lambda_n)
  std::vector<double> ci_low;                // running intersection of the always-valid CIs
  std::vector<double> ci_high;
  std::vector<double> half_width;  // this look's half-width (before intersecting)
};

// mSPRT with mixing distribution N(null, tau2) for an estimate ~ N(theta, variance):
// Lambda = sqrt(v/(v+tau2)) exp(tau2 (est - null)^2 / (2 v (v + tau2))) (Johari et al.);
// with n pairs and v = V/n this is their two-sample formula. Every array has one entry per look
// (tau2 may have one entry for all looks).
AlwaysValidPath msprt_path(const std::vector<double>& estimate, const std::vector<double>& variance,
                           const std::vector<double>& tau2, double alpha, double null);

// rho^2 = (-2 ln a + ln(1 - 2 ln a)) / tuning with a = alpha (two-sided) or 2 alpha (one-sided):
// the asymptotic confidence sequence of Waudby-Smith et al. tuned to be tightest near n = tuning.
double confidence_sequence_rho2(double alpha, double tuning, int sides);

// One-sided asymptotic CS half-width s sqrt(2(n rho^2+1)/(n^2 rho^2) ln(1 + sqrt(n rho^2+1)/(2a)))
// at level alpha for sigma^2 = s^2 = n * variance (n = total units).
double one_sided_cs_half_width(double variance, double n, double alpha, double tuning);
// The level a at which that half-width (rho kept at the design level alpha) equals `distance`
// (the estimate's distance from the null in the tested direction), capped at 1: the one-sided
// CS at level alpha excludes the null exactly when this p-value is below alpha.
double one_sided_cs_pvalue(double distance, double variance, double n, double alpha, double tuning);

}  // namespace trafficsplit::stats
