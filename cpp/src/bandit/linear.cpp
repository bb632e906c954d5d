// Linear Thompson sampling: per-arm ridge regression sums, posterior draws, P(best | x).
#include "trafficsplit/bandit/linear.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "trafficsplit/bandit/policy.hpp"
#include "trafficsplit/bandit/random.hpp"
#include "trafficsplit/errors.hpp"

namespace trafficsplit::bandit {

namespace {

// Lower-triangular L with L L^T = a (d x d, symmetric positive definite), in place.
void cholesky(std::vector<double>& a, size_t d) {
  for (size_t j = 0; j < d; ++j) {
    double diag = a[j * d + j];
    for (size_t k = 0; k < j; ++k) diag -= a[j * d + k] * a[j * d + k];
    if (!(diag > 0)) throw InvalidArgument("ridge matrix is not positive definite");
    const double ljj = std::sqrt(diag);
    a[j * d + j] = ljj;
    for (size_t i = j + 1; i < d; ++i) {
      double v = a[i * d + j];
      for (size_t k = 0; k < j; ++k) v -= a[i * d + k] * a[j * d + k];
      a[i * d + j] = v / ljj;
    }
    for (size_t i = 0; i < j; ++i) a[i * d + j] = 0;  // clear the upper triangle
  }
}

// Solves L y = b (forward) and then L^T x = y (backward): x = (L L^T)^-1 b.
std::vector<double> cholesky_solve(const std::vector<double>& l, size_t d, std::vector<double> b) {
  for (size_t i = 0; i < d; ++i) {
    for (size_t k = 0; k < i; ++k) b[i] -= l[i * d + k] * b[k];
    b[i] /= l[i * d + i];
  }
  for (size_t i = d; i-- > 0;) {
    for (size_t k = i + 1; k < d; ++k) b[i] -= l[k * d + i] * b[k];
    b[i] /= l[i * d + i];
  }
  return b;
}

// Arm k's ridge fit from the flat per-arm sums: the Cholesky factor L of A = G_k + ridge I and
// the estimate theta = A^-1 X'r.
struct ArmFit {
  std::vector<double> chol;
  std::vector<double> theta;
};

ArmFit fit_arm(const std::vector<double>& gram, const std::vector<double>& xr, size_t d,
               double ridge, size_t k) {
  ArmFit fit;
  fit.chol.assign(gram.begin() + k * d * d, gram.begin() + (k + 1) * d * d);
  for (size_t j = 0; j < d; ++j) fit.chol[j * d + j] += ridge;
  cholesky(fit.chol, d);
  fit.theta = cholesky_solve(fit.chol, d,
                             std::vector<double>(xr.begin() + k * d, xr.begin() + (k + 1) * d));
  return fit;
}

}  // namespace

LinearThompson::LinearThompson(size_t n_arms, size_t dims, double ridge, double scale,
                               uint64_t draws, uint64_t seed, double floor)
    : dims_(dims), ridge_(ridge), scale_(scale), draws_(draws), seed_(seed), floor_(floor) {
  if (n_arms == 0) throw InvalidArgument("a policy needs at least one arm");
  if (dims == 0 || dims > 1024) {
    throw InvalidArgument("dims must be between 1 and 1024, got " + std::to_string(dims));
  }
  if (!(ridge > 0) || !std::isfinite(ridge)) throw InvalidArgument("ridge must be positive");
  if (!(scale >= 0) || !std::isfinite(scale)) throw InvalidArgument("scale must be >= 0");
  if (draws == 0) throw InvalidArgument("draws must be at least 1");
  if (!(floor >= 0) || floor * static_cast<double>(n_arms) > 1 + 1e-12) {
    throw InvalidArgument("floor must be between 0 and 1/arms");
  }
  gram_.assign(n_arms * dims * dims, 0.0);
  xr_.assign(n_arms * dims, 0.0);
  counts_.assign(n_arms, 0.0);
}

LinearThompson::LinearThompson(const LinearThompson& o)
    : dims_(o.dims_),
      ridge_(o.ridge_),
      scale_(o.scale_),
      draws_(o.draws_),
      seed_(o.seed_),
      floor_(o.floor_),
      gram_(o.gram_),
      xr_(o.xr_),
      counts_(o.counts_) {}

void LinearThompson::invalidate() {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  cache_.reset();
}

void LinearThompson::update(const double* x, const int64_t* arms, const double* rewards, size_t n) {
  const size_t d = dims_, k_arms = counts_.size();
  for (size_t i = 0; i < n; ++i) {
    if (arms[i] < 0 || static_cast<uint64_t>(arms[i]) >= k_arms) {
      throw InvalidArgument("arms[" + std::to_string(i) + "] is arm index " +
                            std::to_string(arms[i]) + ", outside 0.." + std::to_string(k_arms - 1));
    }
    if (!std::isfinite(rewards[i])) {
      throw InvalidArgument("rewards[" + std::to_string(i) + "] is not finite");
    }
    for (size_t j = 0; j < d; ++j) {
      if (!std::isfinite(x[i * d + j])) {
        throw InvalidArgument("features[" + std::to_string(i) + ", " + std::to_string(j) +
                              "] is not finite");
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const double* row = x + i * d;
    const size_t k = static_cast<size_t>(arms[i]);
    double* g = gram_.data() + k * d * d;
    double* b = xr_.data() + k * d;
    for (size_t a = 0; a < d; ++a) {
      for (size_t c = 0; c < d; ++c) g[a * d + c] += row[a] * row[c];
      b[a] += rewards[i] * row[a];
    }
    counts_[k] += 1;
  }
  invalidate();
}

void LinearThompson::merge(const LinearThompson& o) {
  if (o.dims_ != dims_ || o.counts_.size() != counts_.size()) {
    throw InvalidArgument("cannot merge a linear policy over " + std::to_string(o.counts_.size()) +
                          " arms and " + std::to_string(o.dims_) + " features into one over " +
                          std::to_string(counts_.size()) + " arms and " + std::to_string(dims_));
  }
  for (size_t i = 0; i < gram_.size(); ++i) gram_[i] += o.gram_[i];
  for (size_t i = 0; i < xr_.size(); ++i) xr_[i] += o.xr_[i];
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
  invalidate();
}

void LinearThompson::set_state(const std::vector<double>& gram, const std::vector<double>& xr,
                               const std::vector<double>& counts) {
  if (gram.size() != gram_.size() || xr.size() != xr_.size() || counts.size() != counts_.size()) {
    throw InvalidArgument("state sizes do not match " + std::to_string(counts_.size()) +
                          " arms and " + std::to_string(dims_) + " features");
  }
  for (double v : gram) {
    if (!std::isfinite(v)) throw InvalidArgument("gram must be finite");
  }
  for (double v : xr) {
    if (!std::isfinite(v)) throw InvalidArgument("xr must be finite");
  }
  for (double v : counts) {
    if (!(v >= 0) || !std::isfinite(v)) throw InvalidArgument("counts must be finite and >= 0");
  }
  gram_ = gram;
  xr_ = xr;
  counts_ = counts;
  invalidate();
}

std::vector<double> LinearThompson::coefficients() const {
  const size_t d = dims_, k_arms = counts_.size();
  std::vector<double> out(k_arms * d);
  for (size_t k = 0; k < k_arms; ++k) {
    const auto theta = fit_arm(gram_, xr_, d, ridge_, k).theta;
    std::copy(theta.begin(), theta.end(), out.begin() + k * d);
  }
  return out;
}

std::shared_ptr<const std::vector<double>> LinearThompson::theta_draws(uint64_t epoch) const {
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_ && cache_epoch_ == epoch) return cache_;
  }
  const size_t d = dims_, k_arms = counts_.size();
  auto draws = std::make_shared<std::vector<double>>(draws_ * k_arms * d);
  Rng rng(epoch_seed(seed_, epoch));
  std::vector<double> z(d);
  for (size_t k = 0; k < k_arms; ++k) {
    const auto [l, theta] = fit_arm(gram_, xr_, d, ridge_, k);
    for (uint64_t s = 0; s < draws_; ++s) {
      for (size_t j = 0; j < d; ++j) z[j] = rng.normal();
      // y = L^-T z has covariance (L L^T)^-1 = A^-1.
      for (size_t i = d; i-- > 0;) {
        for (size_t c = i + 1; c < d; ++c) z[i] -= l[c * d + i] * z[c];
        z[i] /= l[i * d + i];
      }
      double* out = draws->data() + (s * k_arms + k) * d;
      for (size_t j = 0; j < d; ++j) out[j] = theta[j] + scale_ * z[j];
    }
  }
  std::lock_guard<std::mutex> lock(cache_mutex_);
  cache_ = draws;
  cache_epoch_ = epoch;
  return cache_;
}

void LinearThompson::probabilities(const double* x, size_t n, uint64_t epoch, double* out) const {
  probabilities_from(*theta_draws(epoch), x, n, out);
}

void LinearThompson::probabilities_from(const std::vector<double>& draws, const double* x, size_t n,
                                        double* out) const {
  const size_t d = dims_, k_arms = counts_.size();
  if (draws.size() != draws_ * k_arms * d) throw InvalidArgument("posterior draws of another size");
  for (size_t i = 0; i < n * d; ++i) {
    if (!std::isfinite(x[i])) {
      throw InvalidArgument("features[" + std::to_string(i / d) + ", " + std::to_string(i % d) +
                            "] is not finite");
    }
  }
  const double* th = draws.data();
  std::vector<double> wins(k_arms);
  for (size_t i = 0; i < n; ++i) {
    const double* row = x + i * d;
    std::fill(wins.begin(), wins.end(), 0.0);
    for (uint64_t s = 0; s < draws_; ++s) {
      double best = -std::numeric_limits<double>::infinity();
      size_t arg = 0;
      for (size_t k = 0; k < k_arms; ++k) {
        const double* t = th + (s * k_arms + k) * d;
        double v = 0;
        for (size_t j = 0; j < d; ++j) v += row[j] * t[j];
        if (v > best) {
          best = v;
          arg = k;
        }
      }
      wins[arg] += 1;
    }
    for (auto& w : wins) w /= static_cast<double>(draws_);
    const auto limited = floor_ > 0 ? limit_weights(wins, {}, floor_, 1.0) : wins;
    std::copy(limited.begin(), limited.end(), out + i * k_arms);
  }
}

}  // namespace trafficsplit::bandit
