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
#include "trafficsplit/hashing/peer.hpp"

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

// A peer hashing mode's decision over a key space: ascending cut points and one label per
// segment (labels[j] for keys in [cuts[j-1], cuts[j]); labels has one more entry than cuts).
struct Segments {
  std::vector<uint64_t> cuts;
  std::vector<int16_t> labels = {0};

  int16_t operator()(uint64_t key) const noexcept {
    size_t j = 0;
    while (j < cuts.size() && key >= cuts[j]) ++j;  // a handful of cuts: a scan beats a search
    return labels[j];
  }
};

// A hashing mode that reproduces a peer's bucketing (docs/assignment-spec.md, "Peer hashing
// modes"): the arm key decides the arm (label -1: outside the coverage, not_exposed); an
// optional traffic key decides the exposure (label 1: in) and an optional gate key a namespace
// (label 1: in, else layer_other). The segments of each allocation step are computed by the
// configuration layer from the peer's own arithmetic.
struct PeerSpec {
  KeySpec arm;
  std::optional<KeySpec> traffic;
  std::optional<KeySpec> gate;
  Segments gate_segments;
  std::vector<Segments> arm_steps;      // one per allocation step
  std::vector<Segments> traffic_steps;  // one per allocation step when `traffic` is set
  double bucket_scale = 0;              // > 0: bucket = floor(arm key * scale); else the key
};

struct ExperimentSpec {
  std::string salt;
  uint32_t bucket_version = 1;
  Algorithm algorithm = Algorithm::xxh3;
  uint32_t buckets = 10'000;
  std::vector<AllocationStepSpec> steps;  // oldest first
  std::optional<PeerSpec> peer;           // a peer hashing mode instead of the ts1 contract
};

// A compiled peer mode: its key functions and segments.
class PeerScheme {
 public:
  explicit PeerScheme(const PeerSpec& spec, size_t steps);

  // The arm key of a unit; false when the unit is not text the mode can encode.
  bool arm_key(const char* unit, size_t len, uint64_t* key) const { return arm_(unit, len, key); }
  int32_t bucket_of(uint64_t arm_key) const noexcept;
  // The experiment's own reason for a present unit at a step and its arm when assigned
  // (its other keys computed here).
  Reason decide(const char* unit, size_t len, uint64_t arm_key, int32_t step, bool eligible,
                int16_t* arm) const;
  // The same from keys computed beforehand (a block of rows): the traffic and gate keys are
  // read only when the mode has those stages.
  Reason decide_keys(uint64_t arm_key, uint64_t traffic_key, uint64_t gate_key, int32_t step,
                     bool eligible, int16_t* arm) const noexcept {
    *arm = -1;
    if (step < 0) return Reason::not_started;
    if (spec_.gate && spec_.gate_segments(gate_key) != 1) return Reason::layer_other;
    if (!eligible) return Reason::targeting_miss;
    if (spec_.traffic && spec_.traffic_steps[step](traffic_key) != 1) return Reason::not_exposed;
    const int16_t a = spec_.arm_steps[step](arm_key);
    if (a < 0) return Reason::not_exposed;
    *arm = a;
    return Reason::assigned;
  }
  const KeyFunction& arm_function() const noexcept { return arm_; }
  const KeyFunction* traffic_function() const noexcept {
    return spec_.traffic ? &traffic_ : nullptr;
  }
  const KeyFunction* gate_function() const noexcept { return spec_.gate ? &gate_ : nullptr; }
  const PeerSpec& spec() const noexcept { return spec_; }

 private:
  PeerSpec spec_;
  KeyFunction arm_, traffic_, gate_;
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
  int32_t current_step() const noexcept { return static_cast<int32_t>(times_.size()) - 1; }
  size_t step_count() const noexcept { return times_.size(); }
  size_t arm_count() const noexcept { return arm_count_; }

  // One unit's bytes under a given step (-1: not started); `eligible` is false for a unit
  // outside the targeted cohort.
  // Throws UnitValueError for a unit a peer mode cannot encode (bytes that are not UTF-8).
  ScalarResult assign(const char* unit, size_t len, int32_t step, bool eligible = true) const;

  // The unit's arm bucket (reported whatever the reason, for a present unit).
  int32_t bucket(const char* unit, size_t len) const;

  // The peer hashing mode, or null under the ts1 contract.
  const PeerScheme* peer() const noexcept { return peer_ ? &*peer_ : nullptr; }

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
  std::optional<PeerScheme> peer_;
};

}  // namespace trafficsplit
