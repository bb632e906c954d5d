#include "trafficsplit/allocation/allocation.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "trafficsplit/errors.hpp"

namespace trafficsplit {

namespace {

void check_buckets(uint32_t buckets) {
  if (buckets < 1 || buckets > kMaxBuckets) {
    throw InvalidArgument("buckets must be between 1 and " + std::to_string(kMaxBuckets) +
                          ", got " + std::to_string(buckets));
  }
}

}  // namespace

std::vector<uint32_t> apportion(const std::vector<double>& weights, uint32_t buckets) {
  check_buckets(buckets);
  if (weights.empty()) throw InvalidArgument("an allocation needs at least one arm");
  if (weights.size() > kMaxArms) {
    throw InvalidArgument("at most " + std::to_string(kMaxArms) + " arms are supported, got " +
                          std::to_string(weights.size()));
  }
  double total = 0.0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const double w = weights[i];
    if (!std::isfinite(w) || w < 0.0 || w > 100.0) {
      throw InvalidArgument("weight of arm " + std::to_string(i) +
                            " must be a finite percentage in [0, 100], got " + std::to_string(w));
    }
    total += w;
  }
  if (std::fabs(total - 100.0) > 1e-9) {
    throw InvalidArgument("weights must sum to 100 (percent) within 1e-9, got " +
                          std::to_string(total));
  }
  std::vector<uint32_t> counts(weights.size());
  std::vector<int64_t> remainder_key(weights.size());
  uint64_t assigned = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const double exact = weights[i] * static_cast<double>(buckets) / 100.0;
    const double whole = std::floor(exact);
    counts[i] = static_cast<uint32_t>(whole);
    assigned += counts[i];
    // Fractional parts compared on a 1e-9 grid so that float noise cannot break ties.
    remainder_key[i] =
        weights[i] > 0.0 ? static_cast<int64_t>(std::floor((exact - whole) * 1e9 + 0.5)) : -1;
  }
  if (assigned > buckets) {  // only reachable when the weights sum slightly above 100
    throw InvalidArgument("weights exceed 100 percent after rounding to buckets");
  }
  uint64_t deficit = buckets - assigned;
  std::vector<size_t> order(weights.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return remainder_key[a] > remainder_key[b]; });
  for (size_t k = 0; k < order.size() && deficit > 0; ++k) {
    if (remainder_key[order[k]] < 0) break;
    ++counts[order[k]];
    --deficit;
  }
  if (deficit > 0) throw InvalidArgument("weights cannot be apportioned to buckets");
  return counts;
}

uint32_t exposure_threshold(double exposure, uint32_t buckets) {
  check_buckets(buckets);
  if (!(exposure >= 0.0 && exposure <= 1.0)) {
    throw InvalidArgument("exposure must be a share between 0 and 1, got " +
                          std::to_string(exposure));
  }
  return static_cast<uint32_t>(std::floor(exposure * static_cast<double>(buckets) + 0.5));
}

Allocator::Allocator(uint32_t buckets, const std::vector<uint32_t>& counts)
    : buckets_(buckets), stacks_(counts.size()), previous_owner_(buckets, -1) {
  check_buckets(buckets);
  uint64_t total = 0;
  for (uint32_t c : counts) total += c;
  if (total != buckets) throw InvalidArgument("bucket counts must sum to the bucket count");
  uint32_t next = 0;
  for (size_t arm = 0; arm < counts.size(); ++arm) {
    stacks_[arm].reserve(counts[arm]);
    for (uint32_t k = 0; k < counts[arm]; ++k) stacks_[arm].push_back(next++);
  }
}

void Allocator::transition(const std::vector<uint32_t>& counts) {
  if (counts.size() < stacks_.size()) {
    throw InvalidArgument("an allocation step cannot remove arms; give them weight 0");
  }
  uint64_t total = 0;
  for (uint32_t c : counts) total += c;
  if (total != buckets_) throw InvalidArgument("bucket counts must sum to the bucket count");
  stacks_.resize(counts.size());
  const size_t arms = counts.size();

  // 1. Shrinking arms release their most recently gained buckets, in arm order.
  std::vector<uint32_t> released;
  std::vector<int32_t> released_by;
  for (size_t arm = 0; arm < arms; ++arm) {
    auto& stack = stacks_[arm];
    while (stack.size() > counts[arm]) {
      released.push_back(stack.back());
      released_by.push_back(static_cast<int32_t>(arm));
      stack.pop_back();
    }
  }
  // 2. A growing arm first takes back released buckets it held before, in release order.
  std::vector<std::vector<size_t>> by_previous(arms);
  for (size_t k = 0; k < released.size(); ++k) {
    const int32_t prev = previous_owner_[released[k]];
    if (prev >= 0 && static_cast<size_t>(prev) < arms) by_previous[prev].push_back(k);
  }
  std::vector<char> taken(released.size(), 0);
  auto give = [&](size_t arm, size_t k) {
    const uint32_t b = released[k];
    stacks_[arm].push_back(b);
    previous_owner_[b] = released_by[k];
    taken[k] = 1;
  };
  for (size_t arm = 0; arm < arms; ++arm) {
    for (size_t k : by_previous[arm]) {
      if (stacks_[arm].size() >= counts[arm]) break;
      give(arm, k);
    }
  }
  // 3. Remaining growth is filled from the other released buckets, in release order.
  size_t cursor = 0;
  for (size_t arm = 0; arm < arms; ++arm) {
    while (stacks_[arm].size() < counts[arm]) {
      while (taken[cursor]) ++cursor;
      give(arm, cursor);
    }
  }
}

std::vector<int16_t> Allocator::bucket_to_arm() const {
  std::vector<int16_t> map(buckets_, -1);
  for (size_t arm = 0; arm < stacks_.size(); ++arm) {
    for (uint32_t b : stacks_[arm]) map[b] = static_cast<int16_t>(arm);
  }
  return map;
}

std::vector<std::vector<int16_t>> allocate_history(
    uint32_t buckets, const std::vector<std::vector<double>>& weights_per_step) {
  if (weights_per_step.empty()) throw InvalidArgument("an allocation history needs a step");
  std::vector<std::vector<int16_t>> maps;
  maps.reserve(weights_per_step.size());
  Allocator allocator(buckets, apportion(weights_per_step.front(), buckets));
  maps.push_back(allocator.bucket_to_arm());
  for (size_t s = 1; s < weights_per_step.size(); ++s) {
    allocator.transition(apportion(weights_per_step[s], buckets));
    maps.push_back(allocator.bucket_to_arm());
  }
  return maps;
}

}  // namespace trafficsplit
