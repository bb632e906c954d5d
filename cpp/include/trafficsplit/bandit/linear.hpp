// Linear Thompson sampling (Agrawal & Goyal 2013) with per-arm ridge regression state:
// A_k = ridge * I + sum x x^T, b_k = sum r x; the posterior of arm k's coefficients is
// N(theta_k = A_k^-1 b_k, scale^2 A_k^-1). State is sums, so it merges by addition.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace trafficsplit::bandit {

class LinearThompson {
 public:
  LinearThompson(size_t n_arms, size_t dims, double ridge, double scale, uint64_t draws,
                 uint64_t seed, double floor);
  LinearThompson(const LinearThompson& other);
  LinearThompson& operator=(const LinearThompson&) = delete;

  size_t arm_count() const noexcept { return counts_.size(); }
  size_t dims() const noexcept { return dims_; }
  double ridge() const noexcept { return ridge_; }
  double scale() const noexcept { return scale_; }
  uint64_t draws() const noexcept { return draws_; }
  uint64_t seed() const noexcept { return seed_; }
  double floor() const noexcept { return floor_; }

  // Rows of `features` (n x dims, row-major) with the arm served and the reward.
  void update(const double* features, const int64_t* arms, const double* rewards, size_t n);
  void merge(const LinearThompson& other);

  // Per arm: gram (dims x dims, row-major, without the ridge), xr (dims), count.
  const std::vector<double>& gram() const noexcept { return gram_; }
  const std::vector<double>& xr() const noexcept { return xr_; }
  const std::vector<double>& counts() const noexcept { return counts_; }
  void set_state(const std::vector<double>& gram, const std::vector<double>& xr,
                 const std::vector<double>& counts);

  // theta_k = A_k^-1 b_k for every arm (n_arms x dims).
  std::vector<double> coefficients() const;
  // For each row of `features`, P(arm k has the largest x . theta_k) over `draws` posterior
  // draws of every arm's theta (the same draws for every row: epoch_seed(seed, epoch)), then
  // the exploration floor. Writes n x n_arms probabilities to `out`.
  void probabilities(const double* features, size_t n, uint64_t epoch, double* out) const;

  // The posterior draws of one epoch (draws x n_arms x dims), computed once per state and
  // epoch and cached; probabilities_from() reads only them and the fixed sizes, so it may
  // run while another thread updates the state.
  std::shared_ptr<const std::vector<double>> theta_draws(uint64_t epoch) const;
  void probabilities_from(const std::vector<double>& theta_draws, const double* features, size_t n,
                          double* out) const;

 private:
  void invalidate();

  size_t dims_;
  double ridge_;
  double scale_;
  uint64_t draws_;
  uint64_t seed_;
  double floor_;
  std::vector<double> gram_;
  std::vector<double> xr_;
  std::vector<double> counts_;
  // The posterior draws of the last epoch asked for (draws x n_arms x dims), kept until the
  // state changes: per-request calls within an epoch reuse them.
  mutable std::mutex cache_mutex_;
  mutable uint64_t cache_epoch_ = 0;
  mutable std::shared_ptr<const std::vector<double>> cache_;
};

}  // namespace trafficsplit::bandit
