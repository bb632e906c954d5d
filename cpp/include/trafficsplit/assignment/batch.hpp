// Batch assignment over columns of unit ids, without a per-row allocation. Inputs are
// borrowed views; outputs are caller-allocated arrays of the input's length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <variant>
#include <vector>

#include "trafficsplit/arrow/columns.hpp"
#include "trafficsplit/assignment/experiment.hpp"

namespace trafficsplit {

struct BatchOutput {
  int16_t* arm = nullptr;
  int32_t* bucket = nullptr;
  uint8_t* reason = nullptr;
};

// Per-call and per-row inputs besides the unit ids: which allocation step applies (a fixed
// one, or a time per row) and, when targeting ran first, which rows are eligible.
// What a configuration puts around an experiment (trafficsplit.Splitter): holdouts, a layer's
// bucket range, the status and the time window. One stage hashes the unit with its own salt
// (xxh3) into `buckets`; a holdout takes the units below `lo`, a layer keeps those in [lo, hi).
struct RouteStage {
  Hasher hasher;
  uint32_t buckets = 1;
  uint32_t lo = 0;
  uint32_t hi = 0;
};

struct RouteSpec {
  std::vector<RouteStage> holdouts;
  std::optional<RouteStage> layer;
  bool stopped = false;  // the status is not `running`
  std::optional<int64_t> start_us, end_us;

  // The route's reason for a present unit at a time (none: no time checks) under an allocation
  // step: stopped, not_started, holdout, layer_other, or assigned when the experiment decides.
  // With `upstream` (a trusted upstream arm on offer): stopped, not_started or propagated.
  Reason reason(const char* unit, size_t len, std::optional<int64_t> at_us, int32_t step,
                bool upstream = false) const;

  // An override's reason (a forced arm >= 0, -1 for none) over the one a unit would get.
  static Reason with_override(Reason reason, int16_t forced);
};

struct BatchContext {
  int32_t step = 0;                   // used when at_us is null; -1 means not started
  const int64_t* at_us = nullptr;     // microseconds since the epoch, per row
  const uint8_t* eligible = nullptr;  // per row: 0 = outside the targeted cohort
  const RouteSpec* route = nullptr;   // stages around the experiment, applied first
  std::optional<int64_t> now_us;      // the route's time for every row when at_us is null
};

// Rows whose unit was evaluated once for all the rows that hold it (dictionary columns) get
// their own time window (`window`: a Reason per row, assigned for none) and targeting
// (`eligible`, 0 = outside the cohort) in place; either may be null.
void apply_row_reasons(const uint8_t* eligible, const uint8_t* window, size_t rows,
                       const BatchOutput& out);

// Rows per (reason, arm or none) of a batch's results, added into `counts`
// (kReasonCount x (arms + 1), row-major; column 0 counts rows without an arm). Throws
// InvalidArgument, counting nothing, when a reason or an arm index is out of range.
void count_results(const uint8_t* reason, const int16_t* arm, size_t rows, size_t arms,
                   int64_t* counts);

// Assigns every row; `threads == 0` means all hardware threads. Results do not depend on
// the thread count. Throws UnitValueError for the first row that cannot be encoded.
void assign_batch(const CompiledExperiment& experiment, const UnitColumn& units,
                  const BatchContext& time, const BatchOutput& out, unsigned threads);

// Rows handed over one at a time by the caller, on the calling thread (for sources such as
// Python objects that only the caller may read). Returns false for a missing row; the bytes
// must stay valid until the next call. May throw; nothing is then left half-done that matters
// (the outputs are the caller's).
using RowReader = bool (*)(void* context, size_t row, const char** data, size_t* len);

void assign_rows(const CompiledExperiment& experiment, size_t rows, RowReader reader, void* context,
                 const BatchContext& time, const BatchOutput& out);

void hash_rows(Algorithm algorithm, const std::string& salt, size_t rows, RowReader reader,
               void* context, uint64_t* out, uint8_t* missing);

// hash64 over a column (missing rows get 0 and missing[i] = 1).
void hash_batch(Algorithm algorithm, const std::string& salt, const UnitColumn& units,
                uint64_t* out, uint8_t* missing, unsigned threads);

// The instruction set the integer columns' digits use in this process: "avx512", "avx2" or
// "portable" (the CPU's widest, capped by TRAFFICSPLIT_SIMD).
const char* integer_simd_path();

// Results of a dictionary-encoded column from the results of its distinct values:
// out[i] = table[codes[i]], and code -1 (a missing row) reads the last entry, which holds the
// missing-unit result. Entries are `item_size` bytes (1, 2, 4 or 8); codes are signed
// integers of `code_kind`. Throws InvalidArgument naming the first row whose code is below -1
// or not below table_size - 1; `out` is then partly written.
void take_by_codes(const void* table, size_t table_size, size_t item_size, const void* codes,
                   IntKind code_kind, size_t n, void* out, unsigned threads);

}  // namespace trafficsplit
