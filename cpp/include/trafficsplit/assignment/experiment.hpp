// A compiled, immutable experiment: salts and seeds derived, one bucket map per
// allocation step. Thread-safe to share; evaluation allocates nothing and does no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trafficsplit/allocation/allocation.hpp"
#include "trafficsplit/hashing/hash.hpp"

namespace trafficsplit {

// Why a unit got (or did not get) an arm. Values are stable: BatchAssignment stores them.
enum class Reason : uint8_t {
  assigned = 0,
  not_exposed = 1,
  missing_unit = 2,
  not_started = 3,
  targeting_miss = 4,
  // Decided around the core by the configuration layer (trafficsplit.Splitter):
  holdout = 5,
  layer_other = 6,
  override = 7,
  stopped = 8,
  sticky = 9,
  propagated = 10,  // the arm an upstream service chose, carried in request headers
};
inline constexpr size_t kReasonCount = 11;
const char* reason_name(Reason reason);

struct AllocationStepSpec {
  std::optional<int64_t> effective_us;  // microseconds since the Unix epoch, UTC
  double exposure = 1.0;
  std::vector<double> weights;  // percent per arm; arms added later are padded with 0
};

struct ExperimentSpec {
  std::string salt;
  uint32_t bucket_version = 1;
  Algorithm algorithm = Algorithm::xxh3;
  uint32_t buckets = 10'000;
  std::vector<AllocationStepSpec> steps;  // oldest first
};

struct ScalarResult {
  int16_t arm = -1;
  int32_t bucket = -1;
  Reason reason = Reason::missing_unit;
};

class CompiledExperiment {
 public:
  explicit CompiledExperiment(const ExperimentSpec& spec);

  // The step in force at a time: -1 before the first step's effective time.
  int32_t step_at(int64_t at_us) const noexcept;
  int32_t current_step() const noexcept { return static_cast<int32_t>(maps_.size()) - 1; }
  size_t step_count() const noexcept { return maps_.size(); }
  size_t arm_count() const noexcept { return arm_count_; }

  // One unit's bytes under a given step (-1: not started); `eligible` is false for a unit
  // outside the targeted cohort.
  ScalarResult assign(const char* unit, size_t len, int32_t step,
                      bool eligible = true) const noexcept;

  // The unit's arm bucket (reported whatever the reason, for a present unit).
  int32_t bucket(const char* unit, size_t len) const noexcept;

  uint32_t buckets() const noexcept { return buckets_; }
  uint32_t threshold(int32_t step) const { return thresholds_.at(step); }
  const std::vector<int16_t>& bucket_map(int32_t step) const { return maps_.at(step); }
  const Hasher& traffic_hasher() const noexcept { return traffic_; }
  const Hasher& arm_hasher() const noexcept { return arm_; }
  const FastMod& modulus() const noexcept { return mod_; }
  const std::string& traffic_salt() const noexcept { return traffic_salt_; }
  const std::string& arm_salt() const noexcept { return arm_salt_; }

 private:
  uint32_t buckets_;
  size_t arm_count_ = 0;
  std::string traffic_salt_, arm_salt_;
  Hasher traffic_, arm_;
  FastMod mod_;
  std::vector<int64_t> times_;  // effective time per step; INT64_MIN for "always"
  std::vector<uint32_t> thresholds_;
  std::vector<std::vector<int16_t>> maps_;
};

}  // namespace trafficsplit
