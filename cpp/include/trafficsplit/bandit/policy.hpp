// Bandit policies over per-arm sufficient statistics (docs/bandits.md): Thompson sampling for
// Bernoulli and real-valued rewards, UCB1 and epsilon-greedy; the probability that each arm is
// best by seeded Monte Carlo; the exploration floor and the per-epoch cap on weight changes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace trafficsplit::bandit {

// Count, sum and sum of squared deviations from the mean of one arm's rewards. Merging two is
// exact for count and sum and uses Chan et al.'s update for m2, so partial aggregates from
// several servers combine into the statistics of the union.
struct ArmStats {
  double count = 0;
  double sum = 0;
  double m2 = 0;

  double mean() const noexcept { return count > 0 ? sum / count : 0.0; }
  void merge(const ArmStats& other) noexcept;
};

// Per-arm statistics of a batch: `arms[i]` in [0, n_arms), `rewards[i]` finite (and in [0, 1]
// when `unit_interval`). Throws InvalidArgument naming the first bad row.
std::vector<ArmStats> batch_stats(size_t n_arms, const int64_t* arms, const double* rewards,
                                  size_t n, bool unit_interval);

// P(arm k has the largest draw) estimated from `draws` seeded draws of every arm. Arm k's
// draws come from its own stream, Rng(epoch_seed(seed, k)), so the estimate does not depend on
// `threads` (0: all cores; arms are split between threads).
// Beta(alpha[k], beta[k]) arms (Bernoulli Thompson sampling):
std::vector<double> probability_best_beta(const std::vector<double>& alpha,
                                          const std::vector<double>& beta, uint64_t draws,
                                          uint64_t seed, unsigned threads = 1);
// loc[k] + scale[k] * t(dof[k]) arms (the posterior of a normal mean with unknown variance):
std::vector<double> probability_best_student(const std::vector<double>& loc,
                                             const std::vector<double>& scale,
                                             const std::vector<double>& dof, uint64_t draws,
                                             uint64_t seed, unsigned threads = 1);

// The allocation closest in proportion to `target` that gives every arm at least `floor` and,
// when `previous` is not empty, moves no arm more than `max_change` from it:
//   lo[k] = max(floor, previous[k] - max_change), hi[k] = min(1, previous[k] + max_change)
//   (if sum(lo) > 1, which needs a previous allocation below the floor, lo[k] = floor),
//   w[k]  = clip(lambda * target[k], lo[k], hi[k]) with lambda >= 0 solved so that sum(w) = 1;
//   if no lambda reaches 1 (the arms with target 0 sit at lo), those arms share what is left
//   in proportion to their room hi - lo.
// Requires n * floor <= 1, 0 <= max_change; target >= 0 with a positive sum.
std::vector<double> limit_weights(const std::vector<double>& target,
                                  const std::vector<double>& previous, double floor,
                                  double max_change);

enum class PolicyKind { kBernoulliThompson, kNormalThompson, kUcb1, kEpsilonGreedy };

PolicyKind parse_policy_kind(const std::string& name);
const char* policy_kind_name(PolicyKind kind) noexcept;

struct PolicyParams {
  // Bernoulli Thompson sampling: Beta(prior_alpha, prior_beta) prior on each arm's mean.
  double prior_alpha = 1.0;
  double prior_beta = 1.0;
  // Normal Thompson sampling: normal-inverse-gamma prior (mu0, kappa0, alpha0, beta0).
  double mu0 = 0.0;
  double kappa0 = 1e-2;
  double alpha0 = 1.0;
  double beta0 = 1.0;
  // UCB1: index = mean + c * sqrt(2 ln N / n).
  double c = 1.0;
  // Epsilon-greedy: share spread evenly over all arms.
  double epsilon = 0.1;
  // Applied to every policy's weights (see limit_weights); max_change >= 1 means no cap.
  double floor = 0.0;
  double max_change = 1.0;
  uint64_t draws = 10'000;
  uint64_t seed = 0;
};

class Policy {
 public:
  Policy(PolicyKind kind, size_t n_arms, const PolicyParams& params);

  PolicyKind kind() const noexcept { return kind_; }
  const PolicyParams& params() const noexcept { return params_; }
  size_t arm_count() const noexcept { return stats_.size(); }
  const std::vector<ArmStats>& stats() const noexcept { return stats_; }

  // Adds a batch of (arm, reward) observations.
  void update(const int64_t* arms, const double* rewards, size_t n);
  // Adds one arm's aggregate (count, sum, m2), e.g. computed elsewhere.
  void add(size_t arm, const ArmStats& stats);
  // Adds another policy's statistics (same kind and arm count).
  void merge(const Policy& other);

  // What the policy asks for before the floor and cap: P(best) for Thompson sampling, all
  // weight on the best index (ties split) for UCB1, 1 - eps + eps/K on the best for
  // epsilon-greedy. `epoch` selects the Monte Carlo stream: epoch_seed(seed, epoch).
  std::vector<double> target(uint64_t epoch, unsigned threads = 1) const;
  // target() after limit_weights(floor, max_change) against `previous` (empty: no cap).
  std::vector<double> weights(uint64_t epoch, const std::vector<double>& previous,
                              unsigned threads = 1) const;

  // Posterior parameters of Thompson sampling: Beta (alpha, beta) per arm, or the Student-t
  // (loc, scale, dof) of each arm's mean.
  void beta_posterior(std::vector<double>& alpha, std::vector<double>& beta) const;
  void student_posterior(std::vector<double>& loc, std::vector<double>& scale,
                         std::vector<double>& dof) const;

 private:
  PolicyKind kind_;
  PolicyParams params_;
  std::vector<ArmStats> stats_;
};

// Sums for inverse-propensity estimates of each arm's mean reward from a log of
// (arm, reward, probability of that arm when it was served); w = 1 / probability.
struct PropensitySums {
  double rows = 0;  // logged rows of this arm
  double w = 0;     // sum w
  double wr = 0;    // sum w r
  double w2 = 0;    // sum w^2
  double w2r = 0;   // sum w^2 r
  double w2r2 = 0;  // sum w^2 r^2
};
std::vector<PropensitySums> propensity_sums(size_t n_arms, const int64_t* arms,
                                            const double* rewards, const double* probabilities,
                                            size_t n);

}  // namespace trafficsplit::bandit
