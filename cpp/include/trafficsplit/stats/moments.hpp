// Grouped sufficient statistics: per group the row count, the column means and the centred
// co-moment matrix C_ij = Σ (x_i - mean_i)(x_j - mean_j), computed in one pass over columns.
// Centred sums merge exactly (Chan, Golub & LeVeque 1979; Pébay 2008), so results of row
// blocks, threads, partitions or machines combine into the result of the whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace trafficsplit::stats {

// Most value columns one call accepts.
constexpr size_t kMaxMomentColumns = 16;

// The moments of k columns for G groups, in flat row-major arrays.
struct GroupedMoments {
  size_t groups = 0;
  size_t columns = 0;
  std::vector<int64_t> n;         // [G] rows used
  std::vector<double> means;      // [G * k]
  std::vector<double> comoments;  // [G * k * k], symmetric
  std::vector<int64_t> skipped;   // [G] rows left out because a value was NaN
  int64_t null_groups = 0;        // rows left out because their group code was < 0

  GroupedMoments() = default;
  GroupedMoments(size_t groups, size_t columns);

  const double* mean(size_t g) const { return means.data() + g * columns; }
  const double* comoment(size_t g) const { return comoments.data() + g * columns * columns; }

  // Adds the rows of `other` (same groups and columns), group by group.
  void merge(const GroupedMoments& other);
};

// Chan's update: (n_a, mean_a, com_a) becomes the moments of both row sets; `com_*` are full
// k x k matrices.
void merge_moments(size_t k, int64_t& n_a, double* mean_a, double* com_a, int64_t n_b,
                   const double* mean_b, const double* com_b);

// Merges the parts as a balanced binary tree (rounding grows with log2 of the part count).
GroupedMoments merge_pairwise(std::vector<GroupedMoments> parts);

enum class CodeType { kNone, kInt8, kInt16, kInt32, kInt64 };
enum class ValueType { kFloat32, kFloat64 };

struct ValueColumn {
  const void* data = nullptr;
  ValueType type = ValueType::kFloat64;
};

// One pass over `rows` rows of `columns` (k = 1..kMaxMomentColumns) grouped by `codes`
// (group 0..groups-1; < 0: a null group, counted and skipped; CodeType::kNone: every row in
// group 0). A row with a NaN in any column is skipped and counted in its group (listwise
// deletion). `threads` = 0 uses every core; results depend on it only through rounding.
// Throws InvalidArgument for a code >= groups (naming the first such row) or bad sizes.
GroupedMoments grouped_moments(const void* codes, CodeType code_type, size_t rows,
                               const std::vector<ValueColumn>& columns, size_t groups,
                               unsigned threads);

}  // namespace trafficsplit::stats
