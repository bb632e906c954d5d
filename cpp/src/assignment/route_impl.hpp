// The precedence of an assignment's reasons (docs/configuration.md, "Reasons and their
// precedence"), shared by the scalar paths and the batch kernels (internal header):
//
//   missing_unit > override > stopped > not_started > propagated > holdout > layer_other
//                > targeting_miss > not_exposed > assigned
//
// missing_unit is decided where the unit is read, override by `with_override`, the route's
// reasons by `route_reason` and the experiment's own by `experiment_reason`. sticky is applied
// around the core (a store lookup) to a unit that is assigned or not_exposed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "trafficsplit/assignment/batch.hpp"

namespace trafficsplit::detail {

// `bucket(s)` is the unit's bucket in stage s: holdout s for s < holdouts.size(), then the
// layer. The first reason that applies wins; assigned leaves the decision to the experiment
// (whose own not_started, targeting_miss and not_exposed come after these). `upstream`: a
// trusted arm chosen by an upstream service is on offer; it is served (propagated) unless the
// experiment is stopped or not started, and passes over the holdouts, the layer and the
// experiment's own stages, so that one request sees one experience.
template <class Bucket>
inline Reason route_reason(const RouteSpec& r, const int64_t* at_us, int32_t step, bool upstream,
                           Bucket&& bucket) {
  if (r.stopped || (r.end_us && at_us != nullptr && *at_us >= *r.end_us)) return Reason::stopped;
  if (r.start_us && at_us != nullptr && *at_us < *r.start_us) return Reason::not_started;
  if (step < 0) return upstream ? Reason::not_started : Reason::assigned;
  if (upstream) return Reason::propagated;
  for (size_t s = 0; s < r.holdouts.size(); ++s) {
    if (bucket(s) < r.holdouts[s].lo) return Reason::holdout;
  }
  if (r.layer) {
    const uint32_t b = bucket(r.holdouts.size());
    if (b < r.layer->lo || b >= r.layer->hi) return Reason::layer_other;
  }
  return Reason::assigned;
}

// An override (a forced arm, >= 0) beats every reason but missing_unit.
inline Reason with_override(Reason reason, int16_t forced) {
  return forced >= 0 && reason != Reason::missing_unit ? Reason::override : reason;
}

// A row's reason from its unit's, where the unit was evaluated once for every row that holds
// it (dictionary columns): the row's own time window (`window`: stopped, not_started, or
// assigned for none) and its targeting come in at their places in the order.
inline Reason row_reason(Reason unit_reason, Reason window, bool eligible) {
  if (unit_reason == Reason::missing_unit) return unit_reason;
  if (window != Reason::assigned) return window;
  if (!eligible && (unit_reason == Reason::assigned || unit_reason == Reason::not_exposed)) {
    return Reason::targeting_miss;
  }
  return unit_reason;
}

// The experiment's own reason for a present unit the route let through: not_started (no
// allocation step yet), targeting_miss, not_exposed (`outside_exposure()`, asked last: it may
// hash), else assigned.
template <class OutsideExposure>
inline Reason experiment_reason(bool started, bool eligible, OutsideExposure&& outside_exposure) {
  if (!started) return Reason::not_started;
  if (!eligible) return Reason::targeting_miss;
  if (outside_exposure()) return Reason::not_exposed;
  return Reason::assigned;
}

}  // namespace trafficsplit::detail
