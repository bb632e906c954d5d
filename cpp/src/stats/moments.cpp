// Grouped moments in one pass. Rows are processed in blocks; within a block each group sums
// d = x - shift (shift = the group's running mean, or its first value) and the products d_i d_j
// into several accumulator lanes, so that rows of the same group do not wait on each other's
// stores. Each block's shifted sums give its mean and centred co-moments without
// cancellation, and Chan's update merges them into the running result.
#include "trafficsplit/stats/moments.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include "parallel.hpp"
#include "trafficsplit/errors.hpp"

namespace trafficsplit::stats {

GroupedMoments::GroupedMoments(size_t groups_, size_t columns_)
    : groups(groups_),
      columns(columns_),
      n(groups_, 0),
      means(groups_ * columns_, 0.0),
      comoments(groups_ * columns_ * columns_, 0.0),
      skipped(groups_, 0) {}

namespace {

// Chan's update with delta = mean_b - mean_a given.
void merge_with_delta(size_t k, int64_t& n_a, double* mean_a, double* com_a, int64_t n_b,
                      const double* delta, const double* com_b) {
  const int64_t n = n_a + n_b;
  const double weight_b = static_cast<double>(n_b) / static_cast<double>(n);
  const double cross = static_cast<double>(n_a) * weight_b;  // n_a n_b / n
  for (size_t i = 0; i < k; ++i) {
    for (size_t j = 0; j < k; ++j) {
      com_a[i * k + j] += com_b[i * k + j] + delta[i] * delta[j] * cross;
    }
    mean_a[i] += delta[i] * weight_b;
  }
  n_a = n;
}

}  // namespace

void merge_moments(size_t k, int64_t& n_a, double* mean_a, double* com_a, int64_t n_b,
                   const double* mean_b, const double* com_b) {
  if (n_b == 0) return;
  if (n_a == 0) {
    n_a = n_b;
    std::copy(mean_b, mean_b + k, mean_a);
    std::copy(com_b, com_b + k * k, com_a);
    return;
  }
  double delta[kMaxMomentColumns];
  for (size_t i = 0; i < k; ++i) delta[i] = mean_b[i] - mean_a[i];
  merge_with_delta(k, n_a, mean_a, com_a, n_b, delta, com_b);
}

void GroupedMoments::merge(const GroupedMoments& other) {
  if (other.groups != groups || other.columns != columns) {
    throw InvalidArgument("GroupedMoments::merge: " + std::to_string(groups) + " groups x " +
                          std::to_string(columns) + " columns and " + std::to_string(other.groups) +
                          " x " + std::to_string(other.columns) + " differ");
  }
  const size_t k = columns;
  for (size_t g = 0; g < groups; ++g) {
    merge_moments(k, n[g], means.data() + g * k, comoments.data() + g * k * k, other.n[g],
                  other.mean(g), other.comoment(g));
    skipped[g] += other.skipped[g];
  }
  null_groups += other.null_groups;
}

GroupedMoments merge_pairwise(std::vector<GroupedMoments> parts) {
  if (parts.empty()) return GroupedMoments();
  for (size_t step = 1; step < parts.size(); step *= 2) {
    for (size_t i = 0; i + step < parts.size(); i += 2 * step) parts[i].merge(parts[i + step]);
  }
  return std::move(parts[0]);
}

namespace {

constexpr size_t kBlockRows = 4096;
// Above this many groups a block's accumulators outgrow the caches: one lane only, and
// blocks of at least kRowsPerGroup * groups rows so that merging stays a small share.
constexpr size_t kMaxLanedGroups = 64;
constexpr size_t kRowsPerGroup = 4;
constexpr size_t kMinRowsPerThread = size_t{1} << 16;

// Accumulator lanes (1, 2 or 4). Measured on 100 M rows x 4 groups (x86-64, baseline SSE2):
// one column runs fastest with 2 lanes (4 lanes: 2.2x slower), two columns with 4 lanes (1.35x
// faster than 1 or 2); three and four columns hardly depend on it.
size_t lanes_for(size_t columns, size_t groups) {
  if (groups > kMaxLanedGroups) return 1;
  return columns == 1 ? 2 : 4;
}

template <typename T>
struct Codes {
  const T* p;
  int64_t operator[](size_t r) const { return static_cast<int64_t>(p[r]); }
  Codes at(size_t begin) const { return {p + begin}; }
};

struct NoCodes {
  int64_t operator[](size_t) const { return 0; }
  NoCodes at(size_t) const { return {}; }
};

constexpr size_t triangle(size_t k) { return k * (k + 1) / 2; }

// Doubles per accumulator slot: the count, k sums, k(k+1)/2 products, padded to kSlotAlign so
// paired (16-byte) stores of one row never straddle a slot boundary.
constexpr size_t kSlotAlign = 4;
constexpr size_t slot_width(size_t k) {
  return (1 + k + triangle(k) + kSlotAlign - 1) / kSlotAlign * kSlotAlign;
}

// Knuth's TwoSum: (hi, lo) becomes (fl(hi + lo), the exact rounding error), hi + lo unchanged.
// Needs strict IEEE evaluation (the core builds with -ffp-contract=off, no fast-math).
inline void two_sum(double& hi, double& lo) {
  const double s = hi + lo;
  const double b = s - hi;
  lo = (hi - (s - b)) + (lo - b);
  hi = s;
}

// One thread's moments with means kept as shift + offset (exact sum of two doubles).
struct Partial {
  GroupedMoments moments;     // means are offsets from `shift`
  std::vector<double> shift;  // [groups * k]

  void merge(Partial& other) {
    const size_t k = moments.columns;
    double delta[kMaxMomentColumns];
    for (size_t g = 0; g < moments.groups; ++g) {
      double* sa = shift.data() + g * k;
      const double* sb = other.shift.data() + g * k;
      double* off_a = moments.means.data() + g * k;
      const double* off_b = other.moments.mean(g);
      const int64_t n_b = other.moments.n[g];
      if (n_b == 0) continue;
      if (moments.n[g] == 0) {
        std::copy(sb, sb + k, sa);
        std::copy(off_b, off_b + k, off_a);
        std::copy(other.moments.comoment(g), other.moments.comoment(g) + k * k,
                  moments.comoments.data() + g * k * k);
        moments.n[g] = n_b;
        continue;
      }
      for (size_t i = 0; i < k; ++i) delta[i] = (sb[i] - sa[i]) + (off_b[i] - off_a[i]);
      merge_with_delta(k, moments.n[g], off_a, moments.comoments.data() + g * k * k, n_b, delta,
                       other.moments.comoment(g));
    }
    for (size_t g = 0; g < moments.groups; ++g) moments.skipped[g] += other.moments.skipped[g];
    moments.null_groups += other.moments.null_groups;
  }

  GroupedMoments finish() && {
    for (size_t t = 0; t < shift.size(); ++t) moments.means[t] += shift[t];
    return std::move(moments);
  }
};

#if defined(__GNUC__)
#define TRAFFICSPLIT_INLINE inline __attribute__((always_inline))
#define TRAFFICSPLIT_NOINLINE __attribute__((noinline))
#else
#define TRAFFICSPLIT_INLINE inline
#define TRAFFICSPLIT_NOINLINE
#endif

// Adds row r to its slot of `lane`: the group's slot, or the discard slot (index `groups`)
// for a row with a NaN or a code outside [0, groups). Returns 1 for a discarded row.
template <size_t KC, typename Code>
TRAFFICSPLIT_INLINE size_t add_row(const Code& codes, const double* const* col, size_t k,
                                   size_t width, size_t r, uint64_t groups, const double* shift,
                                   double* lane) {
  const int64_t c = codes[r];
  double d[KC ? KC : kMaxMomentColumns];
  bool nan = false;
  for (size_t i = 0; i < k; ++i) {
    d[i] = col[i][r];
    nan |= d[i] != d[i];
  }
  const bool ok = (static_cast<uint64_t>(c) < groups) & !nan;
  const size_t slot = ok ? static_cast<size_t>(c) : static_cast<size_t>(groups);
  const double* s = shift + slot * k;
  double* a = lane + slot * width;
  for (size_t i = 0; i < k; ++i) d[i] -= s[i];
  a[0] += 1.0;
  for (size_t i = 0; i < k; ++i) a[1 + i] += d[i];
  size_t t = 1 + k;
  for (size_t i = 0; i < k; ++i) {
    for (size_t j = i; j < k; ++j) a[t++] += d[i] * d[j];
  }
  return !ok;
}

// Sums of one block: for each lane and slot (groups, then the discard slot) the count, the k
// shifted sums and the k(k+1)/2 shifted products. Consecutive rows go to different lanes so
// that updates of one group's sums do not wait on each other. Returns the discarded rows.
template <size_t KC, typename Code>
TRAFFICSPLIT_NOINLINE size_t accumulate_block(const Code& codes, const double* const* columns,
                                              size_t k_runtime, size_t rows, uint64_t groups,
                                              const double* shift, double* acc, size_t lane_stride,
                                              size_t lanes) {
  const size_t k = KC ? KC : k_runtime;
  const size_t width = slot_width(k);
  const double* col[KC ? KC : kMaxMomentColumns];
  for (size_t i = 0; i < k; ++i) col[i] = columns[i];
  size_t bad = 0;
  size_t r = 0;
  if (lanes == 4) {
    double* lane1 = acc + lane_stride;
    double* lane2 = acc + 2 * lane_stride;
    double* lane3 = acc + 3 * lane_stride;
    for (; r + 4 <= rows; r += 4) {
      bad += add_row<KC>(codes, col, k, width, r, groups, shift, acc);
      bad += add_row<KC>(codes, col, k, width, r + 1, groups, shift, lane1);
      bad += add_row<KC>(codes, col, k, width, r + 2, groups, shift, lane2);
      bad += add_row<KC>(codes, col, k, width, r + 3, groups, shift, lane3);
    }
  } else if (lanes == 2) {
    double* lane1 = acc + lane_stride;
    for (; r + 4 <= rows; r += 4) {
      bad += add_row<KC>(codes, col, k, width, r, groups, shift, acc);
      bad += add_row<KC>(codes, col, k, width, r + 1, groups, shift, lane1);
      bad += add_row<KC>(codes, col, k, width, r + 2, groups, shift, acc);
      bad += add_row<KC>(codes, col, k, width, r + 3, groups, shift, lane1);
    }
  }
  for (; r < rows; ++r) bad += add_row<KC>(codes, col, k, width, r, groups, shift, acc);
  return bad;
}

// One thread's share: rows [begin, end).
template <typename Code>
class RangeKernel {
 public:
  RangeKernel(const Code& codes, const std::vector<ValueColumn>& columns, size_t groups)
      : codes_(codes),
        columns_(columns),
        k_(columns.size()),
        groups_(groups),
        width_(slot_width(k_)),
        lanes_(lanes_for(columns.size(), groups)),
        block_rows_(std::max(kBlockRows, kRowsPerGroup * groups)),
        acc_(lanes_ * (groups + 1) * width_, 0.0),
        shift_((groups + 1) * k_, 0.0),
        has_shift_(groups, 0),
        unset_(groups),
        result_(groups, k_) {
    for (const auto& c : columns) {
      if (c.type == ValueType::kFloat32) converted_.emplace_back(block_rows_);
    }
  }

  // Returns the first row whose code is >= groups, or SIZE_MAX.
  size_t run(size_t begin, size_t end) {
    const double* cols[kMaxMomentColumns];
    for (size_t b = begin; b < end; b += block_rows_) {
      const size_t rows = std::min(block_rows_, end - b);
      load(b, rows, cols);
      const Code codes = codes_.at(b);
      if (unset_ > 0) find_shifts(codes, cols, rows);
      const size_t bad = dispatch(codes, cols, rows);
      if (bad > 0) {
        const size_t wrong = count_skipped(codes, cols, rows);
        if (wrong != kNone) return b + wrong;
      }
      merge_block();
    }
    return kNone;
  }

  Partial take() {
    shift_.resize(groups_ * k_);  // drop the discard slot
    return Partial{std::move(result_), std::move(shift_)};
  }

  static constexpr size_t kNone = std::numeric_limits<size_t>::max();

 private:
  void load(size_t b, size_t rows, const double** cols) {
    size_t f32 = 0;
    for (size_t i = 0; i < k_; ++i) {
      if (columns_[i].type == ValueType::kFloat64) {
        cols[i] = static_cast<const double*>(columns_[i].data) + b;
      } else {
        const float* src = static_cast<const float*>(columns_[i].data) + b;
        double* dst = converted_[f32++].data();
        for (size_t r = 0; r < rows; ++r) dst[r] = static_cast<double>(src[r]);
        cols[i] = dst;
      }
    }
  }

  // The first complete row of a group without a shift yet becomes its shift: the block's
  // shifted sums then stay of the order of the spread, whatever the values' magnitude.
  void find_shifts(const Code& codes, const double* const* cols, size_t rows) {
    for (size_t r = 0; r < rows && unset_ > 0; ++r) {
      const int64_t c = codes[r];
      if (static_cast<uint64_t>(c) >= groups_ || has_shift_[static_cast<size_t>(c)]) continue;
      bool nan = false;
      for (size_t i = 0; i < k_; ++i) nan |= cols[i][r] != cols[i][r];
      if (nan) continue;
      const size_t g = static_cast<size_t>(c);
      for (size_t i = 0; i < k_; ++i) shift_[g * k_ + i] = cols[i][r];
      has_shift_[g] = 1;
      --unset_;
    }
  }

  size_t dispatch(const Code& codes, const double* const* cols, size_t rows) {
    const size_t stride = lanes_ > 1 ? (groups_ + 1) * width_ : 0;
    const uint64_t g = groups_;
    switch (k_) {
      case 1:
        return accumulate_block<1>(codes, cols, 1, rows, g, shift_.data(), acc_.data(), stride,
                                   lanes_);
      case 2:
        return accumulate_block<2>(codes, cols, 2, rows, g, shift_.data(), acc_.data(), stride,
                                   lanes_);
      case 3:
        return accumulate_block<3>(codes, cols, 3, rows, g, shift_.data(), acc_.data(), stride,
                                   lanes_);
      case 4:
        return accumulate_block<4>(codes, cols, 4, rows, g, shift_.data(), acc_.data(), stride,
                                   lanes_);
      default:
        return accumulate_block<0>(codes, cols, k_, rows, g, shift_.data(), acc_.data(), stride,
                                   lanes_);
    }
  }

  // Attributes the block's left-out rows: null groups, NaN rows per group; returns the first
  // row with a code >= groups (or kNone).
  size_t count_skipped(const Code& codes, const double* const* cols, size_t rows) {
    for (size_t r = 0; r < rows; ++r) {
      const int64_t c = codes[r];
      if (c < 0) {
        ++result_.null_groups;
      } else if (static_cast<uint64_t>(c) >= groups_) {
        return r;
      } else {
        bool nan = false;
        for (size_t i = 0; i < k_; ++i) nan |= cols[i][r] != cols[i][r];
        result_.skipped[static_cast<size_t>(c)] += nan;
      }
    }
    return kNone;
  }

  void merge_block() {
    const size_t k = k_;
    const size_t slots = groups_ + 1;
    double sums[kMaxMomentColumns];
    double delta[kMaxMomentColumns];
    std::vector<double>& com = block_com_;
    com.assign(k * k, 0.0);
    for (size_t g = 0; g < groups_; ++g) {
      double count = 0.0;
      for (size_t l = 0; l < lanes_; ++l) count += acc_[(l * slots + g) * width_];
      if (count == 0.0) continue;
      // Shifted sums over the lanes (same shift in every lane).
      double* first = acc_.data() + g * width_;
      for (size_t l = 1; l < lanes_; ++l) {
        double* a = acc_.data() + (l * slots + g) * width_;
        for (size_t t = 0; t < width_; ++t) {
          first[t] += a[t];
          a[t] = 0.0;
        }
      }
      for (size_t i = 0; i < k; ++i) sums[i] = first[1 + i];
      size_t t = 1 + k;
      for (size_t i = 0; i < k; ++i) {
        for (size_t j = i; j < k; ++j) {
          const double c = first[t++] - sums[i] * sums[j] / count;
          com[i * k + j] = c;
          com[j * k + i] = c;
        }
      }
      std::fill(first, first + width_, 0.0);
      // result_.means holds offsets from the shift while the kernel runs.
      double* offset = result_.means.data() + g * k;
      double* comoment = result_.comoments.data() + g * k * k;
      const int64_t n_block = static_cast<int64_t>(count);
      if (result_.n[g] == 0) {
        for (size_t i = 0; i < k; ++i) offset[i] = sums[i] / count;
        std::copy(com.begin(), com.end(), comoment);
        result_.n[g] = n_block;
      } else {
        for (size_t i = 0; i < k; ++i) delta[i] = sums[i] / count - offset[i];
        merge_with_delta(k, result_.n[g], offset, comoment, n_block, delta, com.data());
      }
      // Re-centre: the shift becomes the running mean rounded, the offset keeps the exact
      // remainder, so the next block's sums stay small and no rounding of the mean is lost.
      double* shift = shift_.data() + g * k;
      for (size_t i = 0; i < k; ++i) two_sum(shift[i], offset[i]);
    }
    // The discard slot takes NaN rows: clear it.
    for (size_t l = 0; l < lanes_; ++l) {
      double* a = acc_.data() + (l * slots + groups_) * width_;
      std::fill(a, a + width_, 0.0);
    }
  }

  Code codes_;
  const std::vector<ValueColumn>& columns_;
  size_t k_;
  size_t groups_;
  size_t width_;
  size_t lanes_;
  size_t block_rows_;
  std::vector<double> acc_;    // [lanes][groups + 1][width]
  std::vector<double> shift_;  // [groups + 1][k]; the discard slot's shift stays 0
  std::vector<char> has_shift_;
  size_t unset_;
  std::vector<std::vector<double>> converted_;  // float32 columns of the block as float64
  std::vector<double> block_com_;
  GroupedMoments result_;
};

template <typename Code>
GroupedMoments run_threads(const Code& codes, size_t rows, const std::vector<ValueColumn>& columns,
                           size_t groups, unsigned threads) {
  const trafficsplit::detail::Chunks chunks =
      trafficsplit::detail::plan_chunks(rows, threads, kMinRowsPerThread);
  const size_t workers = chunks.count;
  std::vector<Partial> parts(workers);
  std::vector<size_t> wrong(workers, RangeKernel<Code>::kNone);
  trafficsplit::detail::run_chunks(rows, chunks, [&](size_t w, size_t begin, size_t end) {
    RangeKernel<Code> kernel(codes, columns, groups);
    wrong[w] = kernel.run(begin, end);
    parts[w] = kernel.take();
  });
  for (size_t w = 0; w < workers; ++w) {
    if (wrong[w] != RangeKernel<Code>::kNone) {
      throw InvalidArgument("group code " + std::to_string(codes[wrong[w]]) + " at row " +
                            std::to_string(wrong[w]) + " is not below the group count " +
                            std::to_string(groups));
    }
  }
  for (size_t step = 1; step < workers; step *= 2) {
    for (size_t i = 0; i + step < workers; i += 2 * step) parts[i].merge(parts[i + step]);
  }
  return std::move(parts[0]).finish();
}

}  // namespace

GroupedMoments grouped_moments(const void* codes, CodeType code_type, size_t rows,
                               const std::vector<ValueColumn>& columns, size_t groups,
                               unsigned threads) {
  if (columns.empty() || columns.size() > kMaxMomentColumns) {
    throw InvalidArgument("moments need 1 to " + std::to_string(kMaxMomentColumns) +
                          " value columns, got " + std::to_string(columns.size()));
  }
  if (code_type == CodeType::kNone) groups = std::max<size_t>(groups, 1);
  if (groups > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    throw InvalidArgument("moments: at most 2^31 - 1 groups, got " + std::to_string(groups));
  }
  if (rows > 0) {
    for (const auto& c : columns) {
      if (c.data == nullptr) throw InvalidArgument("moments: a value column has no data");
    }
    if (code_type != CodeType::kNone && codes == nullptr) {
      throw InvalidArgument("moments: the group codes have no data");
    }
  }
  if (rows == 0) return GroupedMoments(groups, columns.size());
  switch (code_type) {
    case CodeType::kNone:
      return run_threads(NoCodes{}, rows, columns, groups, threads);
    case CodeType::kInt8:
      return run_threads(Codes<int8_t>{static_cast<const int8_t*>(codes)}, rows, columns, groups,
                         threads);
    case CodeType::kInt16:
      return run_threads(Codes<int16_t>{static_cast<const int16_t*>(codes)}, rows, columns, groups,
                         threads);
    case CodeType::kInt32:
      return run_threads(Codes<int32_t>{static_cast<const int32_t*>(codes)}, rows, columns, groups,
                         threads);
    case CodeType::kInt64:
      return run_threads(Codes<int64_t>{static_cast<const int64_t*>(codes)}, rows, columns, groups,
                         threads);
  }
  throw InvalidArgument("moments: unknown code type");
}

}  // namespace trafficsplit::stats
