// Bandit policies: sufficient statistics, probability best, floor and cap, propensity sums.
#include "trafficsplit/bandit/policy.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "parallel.hpp"
#include "trafficsplit/bandit/random.hpp"
#include "trafficsplit/errors.hpp"

namespace trafficsplit::bandit {

namespace {

std::string num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

void check_arm(int64_t arm, size_t n_arms, size_t row) {
  if (arm < 0 || static_cast<uint64_t>(arm) >= n_arms) {
    throw InvalidArgument("arms[" + std::to_string(row) + "] is arm index " + std::to_string(arm) +
                          ", outside 0.." + std::to_string(n_arms - 1));
  }
}

void check_draws(uint64_t draws) {
  if (draws == 0) throw InvalidArgument("draws must be at least 1");
}

// Every arm can get the floor: 0 <= floor <= 1/arms (up to rounding).
void check_floor(double floor, size_t n_arms) {
  if (!(floor >= 0) || floor * static_cast<double>(n_arms) > 1 + 1e-12) {
    throw InvalidArgument("floor must be between 0 and 1/arms = " + num(1.0 / n_arms) + ", got " +
                          num(floor));
  }
}

// Indexes of the largest values (exact ties all kept).
std::vector<size_t> argmax_set(const std::vector<double>& v) {
  double best = -std::numeric_limits<double>::infinity();
  std::vector<size_t> out;
  for (size_t k = 0; k < v.size(); ++k) {
    if (v[k] > best) {
      best = v[k];
      out.assign(1, k);
    } else if (v[k] == best) {
      out.push_back(k);
    }
  }
  return out;
}

}  // namespace

void ArmStats::merge(const ArmStats& other) noexcept {
  if (other.count <= 0) return;
  if (count <= 0) {
    *this = other;
    return;
  }
  const double n = count + other.count;
  const double delta = other.mean() - mean();
  m2 = m2 + other.m2 + delta * delta * (count * other.count / n);
  count = n;
  sum += other.sum;
}

std::vector<ArmStats> batch_stats(size_t n_arms, const int64_t* arms, const double* rewards,
                                  size_t n, bool unit_interval) {
  std::vector<ArmStats> out(n_arms);
  for (size_t i = 0; i < n; ++i) {
    check_arm(arms[i], n_arms, i);
    const double r = rewards[i];
    if (!std::isfinite(r) || (unit_interval && (r < 0 || r > 1))) {
      throw InvalidArgument("rewards[" + std::to_string(i) + "] is " + num(r) + "; expected " +
                            (unit_interval ? "a reward between 0 and 1" : "a finite reward"));
    }
    out[arms[i]].count += 1;
    out[arms[i]].sum += r;
  }
  // Second pass: squared deviations from each arm's batch mean (stable for large means).
  std::vector<double> mean(n_arms);
  for (size_t k = 0; k < n_arms; ++k) mean[k] = out[k].mean();
  for (size_t i = 0; i < n; ++i) {
    const double d = rewards[i] - mean[arms[i]];
    out[arms[i]].m2 += d * d;
  }
  return out;
}

namespace {

// A draw as num / den with den > 0 (Beta: X / (X + Y); Student-t: the location-scaled normal
// over the root of the scaled Gamma), divided once when the block row is written.
struct Fraction {
  double num;
  double den;
};

// P(best) from per-arm streams: arm k's draws come from Rng(epoch_seed(seed, k)), so the
// result does not depend on how arms are spread over threads. `draw(k, rng)` samples arm k as a
// fraction num / den. Draws go in blocks: each of a thread's (contiguous, ascending) arms fills
// its row of the block, then one pass keeps each draw's maximum over those rows. Sampling and
// comparing in one loop was a quarter slower: the comparisons' loads and stores held up the
// samplers. Threads' maxima are combined in arm order, so ties go to the lowest arm index as in
// a sequential scan.
template <class Draw>
std::vector<double> probability_best(size_t k_arms, uint64_t draws, uint64_t seed, unsigned threads,
                                     const Draw& draw) {
  if (k_arms == 0) return {};
  // A thread pays for itself from about 20,000 draws, and from two arms: with one arm each, its
  // own pass over the draws and the merge across threads cost more than the sampling saved
  // (3 arms x 10,000 draws measured slower on two threads than on one).
  constexpr uint64_t kMinDrawsPerThread = 20'000;
  const size_t min_arms = std::max<uint64_t>(2, (kMinDrawsPerThread + draws - 1) / draws);
  const trafficsplit::detail::Chunks chunks =
      trafficsplit::detail::plan_chunks(k_arms, threads, min_arms);
  const size_t n_threads = chunks.count;
  constexpr uint64_t kBlock = 1024;
  std::vector<std::vector<double>> top(n_threads, std::vector<double>(draws));
  std::vector<std::vector<uint32_t>> arg(n_threads, std::vector<uint32_t>(draws));
  trafficsplit::detail::run_chunks(k_arms, chunks, [&](size_t t, size_t first, size_t last) {
    std::vector<Rng> rngs;
    for (size_t k = first; k < last; ++k) rngs.emplace_back(epoch_seed(seed, k));
    std::vector<double> rows((last - first) * kBlock);
    double* best = top[t].data();
    uint32_t* a = arg[t].data();
    for (uint64_t s0 = 0; s0 < draws; s0 += kBlock) {
      const uint64_t n = std::min(kBlock, draws - s0);
      for (size_t k = first; k < last; ++k) {
        Rng& rng = rngs[k - first];
        double* row = rows.data() + (k - first) * kBlock;
        for (uint64_t s = 0; s < n; ++s) {
          const Fraction v = draw(k, rng);
          row[s] = v.num / v.den;
        }
      }
      for (uint64_t s = 0; s < n; ++s) {
        double b = rows[s];
        auto w = static_cast<uint32_t>(first);
        for (size_t k = first + 1; k < last; ++k) {
          // Branch-free: which arm leads is a coin toss when arms are close.
          const double v = rows[(k - first) * kBlock + s];
          const bool better = v > b;
          b = better ? v : b;
          w = better ? static_cast<uint32_t>(k) : w;
        }
        best[s0 + s] = b;
        a[s0 + s] = w;
      }
    }
  });
  std::vector<double> wins(k_arms, 0.0);
  for (uint64_t s = 0; s < draws; ++s) {
    size_t winner = arg[0][s];
    double b = top[0][s];
    for (size_t t = 1; t < n_threads; ++t) {
      if (top[t][s] > b) {
        b = top[t][s];
        winner = arg[t][s];
      }
    }
    wins[winner] += 1;
  }
  for (auto& w : wins) w /= static_cast<double>(draws);
  return wins;
}

}  // namespace

std::vector<double> probability_best_beta(const std::vector<double>& alpha,
                                          const std::vector<double>& beta, uint64_t draws,
                                          uint64_t seed, unsigned threads) {
  const size_t k_arms = alpha.size();
  if (beta.size() != k_arms) throw InvalidArgument("alpha and beta must have one value per arm");
  check_draws(draws);
  std::vector<GammaSampler> ga, gb;
  std::vector<double> mean(k_arms);
  for (size_t k = 0; k < k_arms; ++k) {
    if (!(alpha[k] > 0) || !(beta[k] > 0) || !std::isfinite(alpha[k]) || !std::isfinite(beta[k])) {
      throw InvalidArgument("Beta parameters of arm " + std::to_string(k) +
                            " must be positive and finite, got (" + num(alpha[k]) + ", " +
                            num(beta[k]) + ")");
    }
    ga.emplace_back(alpha[k]);
    gb.emplace_back(beta[k]);
    mean[k] = alpha[k] / (alpha[k] + beta[k]);
  }
  return probability_best(k_arms, draws, seed, threads, [&](size_t k, Rng& rng) {
    const double x = ga[k](rng);
    const double y = gb[k](rng);
    const double sum = x + y;
    // X / (X + Y); both underflowed (tiny shapes): the mean.
    return sum > 0 ? Fraction{x, sum} : Fraction{mean[k], 1.0};
  });
}

std::vector<double> probability_best_student(const std::vector<double>& loc,
                                             const std::vector<double>& scale,
                                             const std::vector<double>& dof, uint64_t draws,
                                             uint64_t seed, unsigned threads) {
  const size_t k_arms = loc.size();
  if (scale.size() != k_arms || dof.size() != k_arms) {
    throw InvalidArgument("loc, scale and dof must have one value per arm");
  }
  check_draws(draws);
  std::vector<GammaSampler> g;
  std::vector<double> half(k_arms), spread(k_arms);
  for (size_t k = 0; k < k_arms; ++k) {
    if (!std::isfinite(loc[k]) || !(scale[k] > 0) || !std::isfinite(scale[k]) || !(dof[k] > 0) ||
        !std::isfinite(dof[k])) {
      throw InvalidArgument("Student-t parameters of arm " + std::to_string(k) +
                            " must be finite with positive scale and dof, got loc " + num(loc[k]) +
                            ", scale " + num(scale[k]) + ", dof " + num(dof[k]));
    }
    half[k] = 0.5 * dof[k];
    g.emplace_back(half[k]);
    spread[k] = scale[k] * std::sqrt(half[k]);
  }
  return probability_best(k_arms, draws, seed, threads, [&](size_t k, Rng& rng) {
    // loc + scale Z / sqrt(G / h) = (loc sqrt(G) + scale sqrt(h) Z) / sqrt(G)
    const double z = rng.normal();
    const double r = std::sqrt(g[k](rng));
    if (!(r > 0)) {  // G underflowed (dof near 0): the t draw is infinite
      return Fraction{z < 0 ? -std::numeric_limits<double>::infinity()
                            : std::numeric_limits<double>::infinity(),
                      1.0};
    }
    return Fraction{loc[k] * r + spread[k] * z, r};
  });
}

namespace {

// w / Σw, after checking that every weight is finite and >= 0 and not all are 0; `which` names
// the weights in messages.
std::vector<double> normalised_weights(const std::vector<double>& w, const char* which) {
  double total = 0;
  for (size_t k = 0; k < w.size(); ++k) {
    if (!(w[k] >= 0) || !std::isfinite(w[k])) {
      throw InvalidArgument(std::string(which) + " weight of arm " + std::to_string(k) +
                            " must be finite and >= 0, got " + num(w[k]));
    }
    total += w[k];
  }
  if (!(total > 0)) throw InvalidArgument(std::string(which) + " weights must not all be 0");
  std::vector<double> p(w.size());
  for (size_t k = 0; k < w.size(); ++k) p[k] = w[k] / total;
  return p;
}

}  // namespace

std::vector<double> limit_weights(const std::vector<double>& target,
                                  const std::vector<double>& previous, double floor,
                                  double max_change) {
  const size_t n = target.size();
  if (n == 0) throw InvalidArgument("weights need at least one arm");
  check_floor(floor, n);
  if (!(max_change >= 0)) {
    throw InvalidArgument("max_change must be >= 0, got " + num(max_change));
  }
  const std::vector<double> p = normalised_weights(target, "target");
  std::vector<double> lo(n, floor), hi(n, 1.0);
  if (!previous.empty()) {
    if (previous.size() != n) {
      throw InvalidArgument("previous weights name " + std::to_string(previous.size()) +
                            " arms, expected " + std::to_string(n));
    }
    const std::vector<double> prev = normalised_weights(previous, "previous");
    double lo_sum = 0;
    for (size_t k = 0; k < n; ++k) {
      lo[k] = std::max(floor, prev[k] - max_change);
      hi[k] = std::min(1.0, prev[k] + max_change);
      lo_sum += lo[k];
    }
    if (lo_sum > 1) std::fill(lo.begin(), lo.end(), floor);  // the floor wins over the cap
    for (size_t k = 0; k < n; ++k) hi[k] = std::max(hi[k], lo[k]);
  }
  auto g = [&](double lambda) {
    double s = 0;
    for (size_t k = 0; k < n; ++k) s += std::clamp(lambda * p[k], lo[k], hi[k]);
    return s;
  };
  std::vector<double> w(n);
  double lo_sum = 0, reach = 0;
  for (size_t k = 0; k < n; ++k) {
    lo_sum += lo[k];
    reach += p[k] > 0 ? hi[k] : lo[k];
  }
  if (lo_sum >= 1) {
    w = lo;
  } else if (reach <= 1) {
    // Even unbounded lambda leaves a remainder: arms with target 0 share it by their room.
    double room = 0;
    for (size_t k = 0; k < n; ++k) {
      w[k] = p[k] > 0 ? hi[k] : lo[k];
      if (p[k] == 0) room += hi[k] - lo[k];
    }
    const double rest = 1 - reach;
    if (room > 0) {
      for (size_t k = 0; k < n; ++k) {
        if (p[k] == 0) w[k] += rest * (hi[k] - lo[k]) / room;
      }
    }
  } else {
    // g is piecewise linear and non-decreasing in lambda: find the piece where it reaches 1.
    std::vector<double> breaks{0.0};
    for (size_t k = 0; k < n; ++k) {
      if (p[k] > 0) {
        breaks.push_back(lo[k] / p[k]);
        breaks.push_back(hi[k] / p[k]);
      }
    }
    std::sort(breaks.begin(), breaks.end());
    size_t j = 1;
    while (j < breaks.size() && g(breaks[j]) < 1) ++j;
    if (j == breaks.size()) j = breaks.size() - 1;
    const double a = breaks[j - 1], b = breaks[j];
    // Between consecutive breaks every arm is either free (lo < lambda p < hi) or pinned;
    // the midpoint tells which, away from the rounding of lo / p and hi / p.
    const double mid = 0.5 * (a + b);
    double fixed = 0, slope = 0;
    for (size_t k = 0; k < n; ++k) {
      if (p[k] > 0 && lo[k] < mid * p[k] && mid * p[k] < hi[k]) {
        slope += p[k];
      } else {
        fixed += std::clamp(mid * p[k], lo[k], hi[k]);
      }
    }
    const double lambda = slope > 0 ? (1 - fixed) / slope : b;
    for (size_t k = 0; k < n; ++k) w[k] = std::clamp(lambda * p[k], lo[k], hi[k]);
  }
  double s = 0;
  for (double x : w) s += x;
  for (double& x : w) x /= s;
  return w;
}

PolicyKind parse_policy_kind(const std::string& name) {
  if (name == "bernoulli_thompson") return PolicyKind::kBernoulliThompson;
  if (name == "normal_thompson") return PolicyKind::kNormalThompson;
  if (name == "ucb1") return PolicyKind::kUcb1;
  if (name == "epsilon_greedy") return PolicyKind::kEpsilonGreedy;
  throw InvalidArgument("unknown policy '" + name +
                        "'; expected bernoulli_thompson, normal_thompson, ucb1 or epsilon_greedy");
}

const char* policy_kind_name(PolicyKind kind) noexcept {
  switch (kind) {
    case PolicyKind::kBernoulliThompson:
      return "bernoulli_thompson";
    case PolicyKind::kNormalThompson:
      return "normal_thompson";
    case PolicyKind::kUcb1:
      return "ucb1";
    case PolicyKind::kEpsilonGreedy:
      return "epsilon_greedy";
  }
  return "?";
}

Policy::Policy(PolicyKind kind, size_t n_arms, const PolicyParams& params)
    : kind_(kind), params_(params), stats_(n_arms) {
  if (n_arms == 0) throw InvalidArgument("a policy needs at least one arm");
  auto positive = [](double x, const char* what) {
    if (!(x > 0) || !std::isfinite(x)) {
      throw InvalidArgument(std::string(what) + " must be positive and finite, got " + num(x));
    }
  };
  positive(params.prior_alpha, "prior_alpha");
  positive(params.prior_beta, "prior_beta");
  positive(params.kappa0, "kappa0");
  positive(params.alpha0, "alpha0");
  positive(params.beta0, "beta0");
  if (!std::isfinite(params.mu0))
    throw InvalidArgument("mu0 must be finite, got " + num(params.mu0));
  if (!(params.c >= 0) || !std::isfinite(params.c)) {
    throw InvalidArgument("c must be finite and >= 0, got " + num(params.c));
  }
  if (!(params.epsilon >= 0 && params.epsilon <= 1)) {
    throw InvalidArgument("epsilon must be between 0 and 1, got " + num(params.epsilon));
  }
  check_floor(params.floor, n_arms);
  if (!(params.max_change > 0)) {
    throw InvalidArgument("max_change must be > 0 (1 for no cap), got " + num(params.max_change));
  }
  check_draws(params.draws);
}

void Policy::update(const int64_t* arms, const double* rewards, size_t n) {
  const auto batch =
      batch_stats(stats_.size(), arms, rewards, n, kind_ == PolicyKind::kBernoulliThompson);
  for (size_t k = 0; k < stats_.size(); ++k) stats_[k].merge(batch[k]);
}

void Policy::add(size_t arm, const ArmStats& s) {
  if (arm >= stats_.size()) {
    throw InvalidArgument("arm index " + std::to_string(arm) + " is outside 0.." +
                          std::to_string(stats_.size() - 1));
  }
  if (!(s.count >= 0) || !std::isfinite(s.count) || !std::isfinite(s.sum) || !(s.m2 >= 0) ||
      !std::isfinite(s.m2)) {
    throw InvalidArgument("statistics of arm " + std::to_string(arm) +
                          " need count >= 0, a finite sum and m2 >= 0; got count " + num(s.count) +
                          ", sum " + num(s.sum) + ", m2 " + num(s.m2));
  }
  if (s.count == 0 && (s.sum != 0 || s.m2 != 0)) {
    throw InvalidArgument("statistics of arm " + std::to_string(arm) +
                          " have count 0 but a non-zero sum or m2");
  }
  if (kind_ == PolicyKind::kBernoulliThompson && (s.sum < 0 || s.sum > s.count)) {
    throw InvalidArgument("statistics of arm " + std::to_string(arm) + ": sum " + num(s.sum) +
                          " must be between 0 and count " + num(s.count) +
                          " for rewards between 0 and 1");
  }
  stats_[arm].merge(s);
}

void Policy::merge(const Policy& other) {
  if (other.kind_ != kind_ || other.stats_.size() != stats_.size()) {
    throw InvalidArgument(std::string("cannot merge a ") + policy_kind_name(other.kind_) +
                          " policy over " + std::to_string(other.stats_.size()) + " arms into a " +
                          policy_kind_name(kind_) + " policy over " +
                          std::to_string(stats_.size()) + " arms");
  }
  for (size_t k = 0; k < stats_.size(); ++k) stats_[k].merge(other.stats_[k]);
}

void Policy::beta_posterior(std::vector<double>& alpha, std::vector<double>& beta) const {
  alpha.resize(stats_.size());
  beta.resize(stats_.size());
  for (size_t k = 0; k < stats_.size(); ++k) {
    alpha[k] = params_.prior_alpha + stats_[k].sum;
    beta[k] = params_.prior_beta + std::max(0.0, stats_[k].count - stats_[k].sum);
  }
}

void Policy::student_posterior(std::vector<double>& loc, std::vector<double>& scale,
                               std::vector<double>& dof) const {
  const size_t n_arms = stats_.size();
  loc.resize(n_arms);
  scale.resize(n_arms);
  dof.resize(n_arms);
  const PolicyParams& q = params_;
  for (size_t k = 0; k < n_arms; ++k) {
    const ArmStats& s = stats_[k];
    const double n = s.count;
    const double xbar = s.mean();
    const double kn = q.kappa0 + n;
    const double mun = (q.kappa0 * q.mu0 + n * xbar) / kn;
    const double an = q.alpha0 + 0.5 * n;
    const double d = xbar - q.mu0;
    const double bn = q.beta0 + 0.5 * s.m2 + q.kappa0 * n * d * d / (2 * kn);
    loc[k] = mun;
    scale[k] = std::sqrt(bn / (an * kn));
    dof[k] = 2 * an;
  }
}

std::vector<double> Policy::target(uint64_t epoch, unsigned threads) const {
  const size_t n_arms = stats_.size();
  const uint64_t seed = epoch_seed(params_.seed, epoch);
  switch (kind_) {
    case PolicyKind::kBernoulliThompson: {
      std::vector<double> a, b;
      beta_posterior(a, b);
      return probability_best_beta(a, b, params_.draws, seed, threads);
    }
    case PolicyKind::kNormalThompson: {
      std::vector<double> loc, scale, dof;
      student_posterior(loc, scale, dof);
      return probability_best_student(loc, scale, dof, params_.draws, seed, threads);
    }
    case PolicyKind::kUcb1:
    case PolicyKind::kEpsilonGreedy: {
      std::vector<double> score(n_arms);
      double total = 0;
      bool untried = false;
      for (const auto& s : stats_) {
        total += s.count;
        untried = untried || s.count <= 0;
      }
      for (size_t k = 0; k < n_arms; ++k) {
        const ArmStats& s = stats_[k];
        if (untried) {
          score[k] = s.count <= 0 ? 1.0 : 0.0;  // untried arms first
        } else if (kind_ == PolicyKind::kUcb1) {
          score[k] = s.mean() + params_.c * std::sqrt(2 * std::log(total) / s.count);
        } else {
          score[k] = s.mean();
        }
      }
      const auto best = argmax_set(score);
      const double eps = kind_ == PolicyKind::kEpsilonGreedy ? params_.epsilon : 0.0;
      std::vector<double> w(n_arms, eps / static_cast<double>(n_arms));
      for (size_t k : best) w[k] += (1 - eps) / static_cast<double>(best.size());
      return w;
    }
  }
  return {};
}

std::vector<double> Policy::weights(uint64_t epoch, const std::vector<double>& previous,
                                    unsigned threads) const {
  return limit_weights(target(epoch, threads), previous, params_.floor, params_.max_change);
}

std::vector<PropensitySums> propensity_sums(size_t n_arms, const int64_t* arms,
                                            const double* rewards, const double* probabilities,
                                            size_t n) {
  std::vector<PropensitySums> out(n_arms);
  for (size_t i = 0; i < n; ++i) {
    check_arm(arms[i], n_arms, i);
    const double r = rewards[i], p = probabilities[i];
    if (!std::isfinite(r)) {
      throw InvalidArgument("reward[" + std::to_string(i) + "] is " + num(r) +
                            "; expected a finite reward");
    }
    if (!(p > 0 && p <= 1)) {
      throw InvalidArgument("probability[" + std::to_string(i) + "] is " + num(p) +
                            "; expected the served arm's assignment probability in (0, 1]");
    }
    const double w = 1 / p;
    PropensitySums& s = out[arms[i]];
    s.rows += 1;
    s.w += w;
    s.wr += w * r;
    s.w2 += w * w;
    s.w2r += w * w * r;
    s.w2r2 += w * w * r * r;
  }
  return out;
}

}  // namespace trafficsplit::bandit
