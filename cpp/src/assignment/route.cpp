// The route around an experiment (holdouts, layer, status, time window) and the reasons of rows
// that were decided once per unit, by the one precedence of route_impl.hpp.
#include <string>
#include <vector>

#include "assignment/route_impl.hpp"
#include "trafficsplit/assignment/batch.hpp"
#include "trafficsplit/errors.hpp"

namespace trafficsplit {

void apply_row_reasons(const uint8_t* eligible, const uint8_t* window, size_t rows,
                       const BatchOutput& out) {
  for (size_t i = 0; i < rows; ++i) {
    const auto before = static_cast<Reason>(out.reason[i]);
    const Reason after = detail::row_reason(
        before, window != nullptr ? static_cast<Reason>(window[i]) : Reason::assigned,
        eligible == nullptr || eligible[i] != 0);
    if (after != before) {
      out.reason[i] = static_cast<uint8_t>(after);
      out.arm[i] = -1;
    }
  }
}

void count_results(const uint8_t* reason, const int16_t* arm, size_t rows, size_t arms,
                   int64_t* counts) {
  // One pass into a table of our own (out-of-range values land in a spare cell and are
  // reported after), added to `counts` only when every row was in range.
  // Four tables, rows taken in turn: runs of one cell would otherwise wait on their own stores.
  const size_t width = arms + 1;
  const size_t cells = kReasonCount * width;
  const size_t stride = cells + 1;
  std::vector<int64_t> tables(4 * stride, 0);
  for (size_t i = 0; i < rows; ++i) {
    const size_t r = reason[i];
    const auto a = static_cast<size_t>(static_cast<int64_t>(arm[i]) + 1);  // -1 -> 0
    const bool in_range = r < kReasonCount && a <= arms;
    ++tables[(i & 3) * stride + (in_range ? r * width + a : cells)];
  }
  std::vector<int64_t> table(stride, 0);
  for (size_t t = 0; t < 4; ++t) {
    for (size_t c = 0; c < stride; ++c) table[c] += tables[t * stride + c];
  }
  if (table[cells] != 0) {
    for (size_t i = 0; i < rows; ++i) {
      if (reason[i] >= kReasonCount || arm[i] < -1 || arm[i] >= static_cast<int64_t>(arms)) {
        throw InvalidArgument("results out of range at row " + std::to_string(i) + ": reason " +
                              std::to_string(reason[i]) + ", arm " + std::to_string(arm[i]));
      }
    }
  }
  for (size_t c = 0; c < cells; ++c) counts[c] += table[c];
}

Reason RouteSpec::with_override(Reason reason, int16_t forced) {
  return detail::with_override(reason, forced);
}

Reason RouteSpec::reason(const char* unit, size_t len, std::optional<int64_t> at_us, int32_t step,
                         bool upstream) const {
  const auto stage = [&](size_t s) -> const RouteStage& {
    return s < holdouts.size() ? holdouts[s] : *layer;
  };
  return detail::route_reason(*this, at_us ? &*at_us : nullptr, step, upstream, [&](size_t s) {
    const RouteStage& st = stage(s);
    return static_cast<uint32_t>(st.hasher(unit, len) % st.buckets);
  });
}

}  // namespace trafficsplit
