#include "trafficsplit/assignment/experiment.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include "assignment/route_impl.hpp"
#include "hashing/hash_impl.hpp"
#include "trafficsplit/errors.hpp"

namespace trafficsplit {

const char* reason_name(Reason reason) {
  switch (reason) {
    case Reason::assigned:
      return "assigned";
    case Reason::not_exposed:
      return "not_exposed";
    case Reason::missing_unit:
      return "missing_unit";
    case Reason::not_started:
      return "not_started";
    case Reason::targeting_miss:
      return "targeting_miss";
    case Reason::holdout:
      return "holdout";
    case Reason::layer_other:
      return "layer_other";
    case Reason::override:
      return "override";
    case Reason::stopped:
      return "stopped";
    case Reason::sticky:
      return "sticky";
    case Reason::propagated:
      return "propagated";
  }
  return "unknown";
}

PeerScheme::PeerScheme(const PeerSpec& spec, size_t steps)
    : spec_(spec),
      arm_(spec.arm),
      traffic_(spec.traffic ? *spec.traffic : KeySpec{}),
      gate_(spec.gate ? *spec.gate : KeySpec{}) {
  if (spec_.arm_steps.size() != steps || (spec_.traffic && spec_.traffic_steps.size() != steps)) {
    throw InvalidArgument("a peer hashing mode needs the segments of every allocation step");
  }
  auto check = [](const Segments& s) {
    if (s.labels.size() != s.cuts.size() + 1) {
      throw InvalidArgument("segments need one label more than cut points");
    }
    for (size_t j = 1; j < s.cuts.size(); ++j) {
      if (s.cuts[j] < s.cuts[j - 1]) throw InvalidArgument("cut points must ascend");
    }
  };
  for (const auto& s : spec_.arm_steps) check(s);
  for (const auto& s : spec_.traffic_steps) check(s);
  check(spec_.gate_segments);
}

int32_t PeerScheme::bucket_of(uint64_t arm_key) const noexcept {
  if (spec_.bucket_scale > 0) {
    return static_cast<int32_t>(static_cast<double>(arm_key) * spec_.bucket_scale);
  }
  return static_cast<int32_t>(arm_key);
}

Reason PeerScheme::decide(const char* unit, size_t len, uint64_t arm_key, int32_t step,
                          bool eligible, int16_t* arm) const {
  // The arm key was computed first: the unit is text every key function can read.
  uint64_t traffic_key = 0, gate_key = 0;
  if (step >= 0 && spec_.gate) gate_(unit, len, &gate_key);
  if (step >= 0 && spec_.traffic) traffic_(unit, len, &traffic_key);
  return decide_keys(arm_key, traffic_key, gate_key, step, eligible, arm);
}

CompiledExperiment::CompiledExperiment(const ExperimentSpec& spec) : buckets_(spec.buckets) {
  if (spec.steps.empty()) throw InvalidArgument("an experiment needs at least one allocation step");
  const std::string salt = versioned_salt(spec.salt, spec.bucket_version);
  traffic_salt_ = stage_salt(salt, "traffic");
  arm_salt_ = stage_salt(salt, "arm");
  traffic_ = Hasher(spec.algorithm, traffic_salt_);
  arm_ = Hasher(spec.algorithm, arm_salt_);
  mod_ = FastMod(spec.buckets);

  std::vector<std::vector<double>> weights;
  for (size_t s = 0; s < spec.steps.size(); ++s) {
    const auto& step = spec.steps[s];
    if (step.effective_us) {
      if (!times_.empty() && *step.effective_us < times_.back()) {
        throw InvalidArgument("allocation step " + std::to_string(s) +
                              " takes effect before the step it follows");
      }
      times_.push_back(*step.effective_us);
    } else if (s == 0) {
      times_.push_back(std::numeric_limits<int64_t>::min());
    } else {
      throw InvalidArgument("allocation step " + std::to_string(s) +
                            " needs an effective time (only the first step may omit it)");
    }
    thresholds_.push_back(exposure_threshold(step.exposure, spec.buckets));
    arm_count_ = std::max(arm_count_, step.weights.size());
    weights.push_back(step.weights);
  }
  for (auto& w : weights) w.resize(arm_count_, 0.0);
  if (spec.peer) {
    // The peer's segments decide; the ts1 bucket maps are not made.
    peer_.emplace(*spec.peer, spec.steps.size());
    std::fill(thresholds_.begin(), thresholds_.end(), buckets_);
    return;
  }
  maps_ = allocate_history(spec.buckets, weights);
}

int32_t CompiledExperiment::step_at(int64_t at_us) const noexcept {
  // The last step whose effective time is <= at; equal times: the later step wins.
  const auto it = std::upper_bound(times_.begin(), times_.end(), at_us);
  return static_cast<int32_t>(it - times_.begin()) - 1;
}

namespace {
uint64_t peer_arm_key(const PeerScheme& p, const char* unit, size_t len) {
  uint64_t key;
  if (!p.arm_key(unit, len, &key)) {
    throw UnitValueError(
        "unit id is not UTF-8 text, which this peer hashing mode hashes as "
        "characters",
        0);
  }
  return key;
}
}  // namespace

int32_t CompiledExperiment::bucket(const char* unit, size_t len) const {
  if (peer_) return peer_->bucket_of(peer_arm_key(*peer_, unit, len));
  return static_cast<int32_t>(mod_(detail::hash_inline(arm_, unit, len)));
}

ScalarResult CompiledExperiment::assign(const char* unit, size_t len, int32_t step,
                                        bool eligible) const {
  ScalarResult r;
  if (peer_) {
    const uint64_t key = peer_arm_key(*peer_, unit, len);
    r.bucket = peer_->bucket_of(key);
    r.reason = peer_->decide(unit, len, key, step, eligible, &r.arm);
    return r;
  }
  r.bucket = bucket(unit, len);
  r.reason = detail::experiment_reason(step >= 0, eligible, [&] {
    const uint32_t threshold = thresholds_[step];
    return threshold < buckets_ && mod_(detail::hash_inline(traffic_, unit, len)) >= threshold;
  });
  if (r.reason == Reason::assigned) r.arm = maps_[step][r.bucket];
  return r;
}

}  // namespace trafficsplit
