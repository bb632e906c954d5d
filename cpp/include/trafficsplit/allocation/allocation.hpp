// Arms own sets of buckets; the bucket -> arm map is a pure function of the ordered
// allocation history, and each step moves the fewest buckets (docs/assignment-spec.md §4).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace trafficsplit {

inline constexpr uint32_t kMaxBuckets = 1'000'000;
inline constexpr size_t kMaxArms = 32767;  // arm indexes are int16

// Weights in percent (summing to 100 within 1e-9) -> whole bucket counts summing to
// `buckets`, by largest remainder; ties go to the lower arm index, zero weights get none.
std::vector<uint32_t> apportion(const std::vector<double>& weights_percent, uint32_t buckets);

// Number of traffic buckets that enter: floor(exposure * buckets + 0.5).
uint32_t exposure_threshold(double exposure, uint32_t buckets);

// Replays an allocation history step by step; see the spec for the exact rules.
class Allocator {
 public:
  Allocator(uint32_t buckets, const std::vector<uint32_t>& initial_counts);

  // Moves to new counts (which may name more arms than before: new arms are appended),
  // releasing each shrinking arm's most recently gained buckets first and returning
  // released buckets to the arm that held them before, where that arm grows.
  void transition(const std::vector<uint32_t>& counts);

  // bucket -> arm index
  std::vector<int16_t> bucket_to_arm() const;
  size_t arm_count() const noexcept { return stacks_.size(); }
  const std::vector<uint32_t>& arm_buckets(size_t arm) const { return stacks_.at(arm); }

 private:
  uint32_t buckets_;
  std::vector<std::vector<uint32_t>> stacks_;  // per arm, oldest first
  std::vector<int32_t> previous_owner_;        // per bucket, -1 for none
};

// One bucket map per step: apportion each step's weights, then replay the transitions.
std::vector<std::vector<int16_t>> allocate_history(
    uint32_t buckets, const std::vector<std::vector<double>>& weights_per_step);

}  // namespace trafficsplit
