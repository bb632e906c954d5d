#include "trafficsplit/assignment/batch.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#include "arrow_read.hpp"
#include "hash_impl.hpp"
#include "trafficsplit/errors.hpp"

namespace trafficsplit {

namespace {

// Each reader yields one row's bytes: kOk with (data, len), kMissing, or kBad.
enum class Row : uint8_t { kOk, kMissing, kBad };

// Scratch space for rows that must be re-encoded (integers, UTF-32).
struct Scratch {
  // Integers are formatted kIntBlock rows ahead of hashing. Hashing text right after writing
  // it loads 8 and 16 bytes across the formatter's separate 8-byte stores, which the store
  // buffer cannot forward (a stall per load); a block's stores have reached the cache by the
  // time it is hashed. Measured: 60 -> 77 M ids/s for 19-digit ids on one core.
  static constexpr size_t kIntBlock = 32;
  alignas(64) char block[kIntBlock][32];
  uint8_t block_start[kIntBlock];
  size_t block_begin = size_t{1} << 63;  // far from every row: the first read fills
  std::vector<char> buffer = std::vector<char>(64);
};

using detail::valid_bit;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// Decimal text of up to four 8-digit chunks at a time: the scalar eight_digit_values in 64-bit
// lanes. Its products never carry between the 32-bit halves (10486·x, 100·x) or the 16-bit
// fields (103·x, 10·x) of a lane, so 32- and 16-bit lane multiplies give the same bits.
__attribute__((target("avx2"))) inline __m256i eight_digit_values_x4(__m256i n) {
  const __m256i q = _mm256_srli_epi64(_mm256_mul_epu32(n, _mm256_set1_epi64x(109951163)), 40);
  const __m256i r = _mm256_sub_epi64(n, _mm256_mul_epu32(q, _mm256_set1_epi64x(10000)));
  const __m256i merged = _mm256_or_si256(q, _mm256_slli_epi64(r, 32));  // n / 10^4, n % 10^4
  const __m256i top =
      _mm256_and_si256(_mm256_srli_epi64(_mm256_mullo_epi32(merged, _mm256_set1_epi32(10486)), 20),
                       _mm256_set1_epi64x((int64_t{0x7F} << 32) | 0x7F));
  const __m256i bottom = _mm256_sub_epi32(merged, _mm256_mullo_epi32(top, _mm256_set1_epi32(100)));
  const __m256i hundreds = _mm256_add_epi64(_mm256_slli_epi64(bottom, 16), top);
  __m256i tens = _mm256_srli_epi64(_mm256_mullo_epi16(hundreds, _mm256_set1_epi16(103)), 10);
  tens = _mm256_and_si256(tens, _mm256_set1_epi64x(0x000F000F000F000FLL));
  const __m256i units = _mm256_sub_epi16(hundreds, _mm256_mullo_epi16(tens, _mm256_set1_epi16(10)));
  return _mm256_add_epi64(tens, _mm256_slli_epi64(units, 8));
}

// Formats `n` (at most 32) values like format_decimal_right into block rows: the divisions by
// 10^16 and 10^8 in scalar code, the digits four chunks per instruction. The same text as the
// scalar path (checked against it in the tests), only faster.
template <typename T>
__attribute__((target("avx2"))) void format_block_avx2(const T* values, size_t n, char (*block)[32],
                                                       uint8_t* starts) {
  alignas(32) uint64_t chunk[3][32];
  bool negative[32];
  for (size_t k = 0; k < n; ++k) {
    uint64_t u;
    if constexpr (std::is_signed_v<T>) {
      const auto v = static_cast<int64_t>(values[k]);
      negative[k] = v < 0;
      u = v < 0 ? ~static_cast<uint64_t>(v) + 1 : static_cast<uint64_t>(v);
    } else {
      negative[k] = false;
      u = static_cast<uint64_t>(values[k]);
    }
    const uint64_t top = u / 10000000000000000ULL;
    const uint64_t rest = u - top * 10000000000000000ULL;
    const uint64_t mid = rest / 100000000;
    chunk[0][k] = top;
    chunk[1][k] = mid;
    chunk[2][k] = rest - mid * 100000000;
  }
  for (size_t k = n; k % 4 != 0; ++k) chunk[0][k] = chunk[1][k] = chunk[2][k] = 0;
  for (auto& c : chunk) {
    for (size_t k = 0; k < n; k += 4) {
      auto* p = reinterpret_cast<__m256i*>(c + k);
      _mm256_store_si256(p, eight_digit_values_x4(_mm256_load_si256(p)));
    }
  }
  for (size_t k = 0; k < n; ++k) {
    char* const end = block[k] + 25;
    char* start = end - 1;  // the value 0
    for (int c = 0; c < 3; ++c) {
      const uint64_t digits = chunk[c][k];
      const uint64_t ascii = digits + detail::kAsciiZeros;
      std::memcpy(end - 24 + 8 * c, &ascii, 8);
      if (digits != 0 && start == end - 1)
        start = end - 24 + 8 * c + (__builtin_ctzll(digits) >> 3);
    }
    if (negative[k]) *--start = '-';
    starts[k] = static_cast<uint8_t>(start - block[k]);
  }
}

// AVX2 where the CPU has it, unless TRAFFICSPLIT_SCALAR is set (the tests run the scalar path
// that way too; both write the same text).
bool has_avx2() {
  static const bool yes =
      __builtin_cpu_supports("avx2") && std::getenv("TRAFFICSPLIT_SCALAR") == nullptr;
  return yes;
}
#endif

template <typename T>
struct IntReader {
  const T* values;
  const uint8_t* missing;
  const uint8_t* validity;
  int64_t validity_offset;
  size_t length = 0;

  Row read(size_t i, const char*& data, size_t& len, Scratch& scratch) const {
    if ((missing != nullptr && missing[i]) || !valid_bit(validity, validity_offset, i)) {
      return Row::kMissing;
    }
    size_t k = i - scratch.block_begin;  // wraps around for rows before the block
    if (k >= Scratch::kIntBlock) {
      fill(i, scratch);
      k = 0;
    }
    data = scratch.block[k] + scratch.block_start[k];
    len = 25 - scratch.block_start[k];
    return Row::kOk;
  }

  // Formats rows i .. i + kIntBlock (or the end) into the scratch block, missing ones too
  // (their text is never read).
  void fill(size_t i, Scratch& scratch) const {
    const size_t n = std::min(Scratch::kIntBlock, length - i);
    scratch.block_begin = i;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (has_avx2()) return format_block_avx2(values + i, n, scratch.block, scratch.block_start);
#endif
    for (size_t k = 0; k < n; ++k) {
      char* out = scratch.block[k];
      char* start;
      if constexpr (std::is_signed_v<T>) {
        start = detail::format_decimal_right(static_cast<int64_t>(values[i + k]), out);
      } else {
        start = detail::format_decimal_right(static_cast<uint64_t>(values[i + k]), out);
      }
      scratch.block_start[k] = static_cast<uint8_t>(start - out);
    }
  }
};

template <typename Offset>
struct OffsetStringReader {
  const Offset* offsets;
  const char* base;
  const uint8_t* validity;
  int64_t validity_offset;

  // The string bytes of row i + kAhead are fetched while row i hashes: on inputs larger than
  // the cache this more than doubles throughput.
  static constexpr size_t kAhead = 32;
  size_t length = 0;

  Row read(size_t i, const char*& data, size_t& len, Scratch&) const {
    if (i + kAhead < length) __builtin_prefetch(base + offsets[i + kAhead]);
    if (!valid_bit(validity, validity_offset, i)) return Row::kMissing;
    const std::string_view s = detail::offset_string(offsets, base, i);
    data = s.data();
    len = s.size();
    return Row::kOk;
  }
};

struct ViewStringReader {
  const uint8_t* views;
  const char* const* buffers;
  size_t buffer_count;
  const uint8_t* validity;
  int64_t validity_offset;

  static constexpr size_t kAhead = 32;
  size_t length = 0;

  Row read(size_t i, const char*& data, size_t& len, Scratch&) const {
    if (i + kAhead < length) detail::prefetch_view(views, buffers, buffer_count, i + kAhead);
    if (!valid_bit(validity, validity_offset, i)) return Row::kMissing;
    std::string_view s;
    if (!detail::view_string(views, buffers, buffer_count, i, s)) return Row::kBad;
    data = s.data();
    len = s.size();
    return Row::kOk;
  }
};

struct SpanReader {
  const char* const* pointers;
  const int64_t* lengths;

  Row read(size_t i, const char*& data, size_t& len, Scratch&) const {
    if (lengths[i] < 0) return Row::kMissing;
    data = pointers[i];
    len = static_cast<size_t>(lengths[i]);
    return Row::kOk;
  }
};

struct FixedBytesReader {
  const char* base;
  size_t item_size;

  Row read(size_t i, const char*& data, size_t& len, Scratch&) const {
    data = base + i * item_size;
    len = item_size;
    while (len > 0 && data[len - 1] == '\0') --len;
    return Row::kOk;
  }
};

struct Utf32Reader {
  const char* base;
  size_t item_size;

  Row read(size_t i, const char*& data, size_t& len, Scratch& scratch) const {
    const char* item = base + i * item_size;
    size_t chars = item_size / 4;
    auto code_at = [&](size_t k) {
      uint32_t c;
      std::memcpy(&c, item + 4 * k, 4);
      return c;
    };
    while (chars > 0 && code_at(chars - 1) == 0) --chars;
    if (scratch.buffer.size() < chars * 4) scratch.buffer.resize(chars * 4);
    char* out = scratch.buffer.data();
    size_t n = 0;
    for (size_t k = 0; k < chars; ++k) {
      const uint32_t c = code_at(k);
      if (c < 0x80) {
        out[n++] = static_cast<char>(c);
      } else if (c < 0x800) {
        out[n++] = static_cast<char>(0xC0 | (c >> 6));
        out[n++] = static_cast<char>(0x80 | (c & 0x3F));
      } else if (c < 0x10000) {
        if (c >= 0xD800 && c <= 0xDFFF) return Row::kBad;  // a lone surrogate
        out[n++] = static_cast<char>(0xE0 | (c >> 12));
        out[n++] = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out[n++] = static_cast<char>(0x80 | (c & 0x3F));
      } else if (c <= 0x10FFFF) {
        out[n++] = static_cast<char>(0xF0 | (c >> 18));
        out[n++] = static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        out[n++] = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out[n++] = static_cast<char>(0x80 | (c & 0x3F));
      } else {
        return Row::kBad;
      }
    }
    data = out;
    len = n;
    return Row::kOk;
  }
};

struct CallbackReader {
  RowReader reader;
  void* context;

  Row read(size_t i, const char*& data, size_t& len, Scratch&) const {
    return reader(context, i, &data, &len) ? Row::kOk : Row::kMissing;
  }
};

// Splits [0, n) into contiguous ranges, one per thread. Small inputs run inline: a
// thread costs tens of microseconds to start.
template <typename Fn>
void parallel_ranges(size_t n, unsigned threads, Fn&& fn) {
  constexpr size_t kMinRowsPerThread = 1 << 16;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  const size_t useful = std::max<size_t>(1, n / kMinRowsPerThread);
  const size_t workers = std::min<size_t>(threads, useful);
  if (workers <= 1) {
    fn(size_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  const size_t chunk = (n + workers - 1) / workers;
  for (size_t w = 1; w < workers; ++w) {
    const size_t begin = std::min(n, w * chunk);
    const size_t end = std::min(n, begin + chunk);
    pool.emplace_back([&fn, begin, end] { fn(begin, end); });
  }
  fn(size_t{0}, std::min(n, chunk));
  for (auto& t : pool) t.join();
}

// Records the first bad row across threads.
struct FirstBad {
  std::atomic<size_t> row{std::numeric_limits<size_t>::max()};
  void note(size_t i) {
    size_t seen = row.load(std::memory_order_relaxed);
    while (i < seen && !row.compare_exchange_weak(seen, i, std::memory_order_relaxed)) {
    }
  }
  void raise_if_any(const char* what) const {
    const size_t r = row.load();
    if (r != std::numeric_limits<size_t>::max()) {
      throw UnitValueError(std::string(what) + " at row " + std::to_string(r), r);
    }
  }
};

// The default bucket count as a compile-time divisor: the compiler's multiply-shift beats
// FastMod's 128-bit products, and 10,000 is what almost every experiment uses.
struct DefaultBucketsMod {
  uint32_t operator()(uint64_t a) const noexcept { return static_cast<uint32_t>(a % 10000); }
};

template <typename Reader, bool kPerRowTime, typename Mod>
void assign_range(const CompiledExperiment& e, const Reader& reader, const BatchContext& time,
                  const BatchOutput& out, size_t begin, size_t end, FirstBad& bad, Mod mod) {
  Scratch scratch;
  const Hasher arm_hasher = e.arm_hasher();
  const Hasher traffic_hasher = e.traffic_hasher();
  const uint32_t buckets = e.buckets();
  int32_t step = time.step;
  const int16_t* map = step >= 0 ? e.bucket_map(step).data() : nullptr;
  uint32_t threshold = step >= 0 ? e.threshold(step) : 0;
  for (size_t i = begin; i < end; ++i) {
    const char* data = nullptr;
    size_t len = 0;
    const Row row = reader.read(i, data, len, scratch);
    if (row != Row::kOk) {
      if (row == Row::kBad) bad.note(i);
      out.arm[i] = -1;
      out.bucket[i] = -1;
      out.reason[i] = static_cast<uint8_t>(Reason::missing_unit);
      continue;
    }
    const uint32_t bucket = mod(detail::hash_inline(arm_hasher, data, len));
    out.bucket[i] = static_cast<int32_t>(bucket);
    if constexpr (kPerRowTime) {
      step = e.step_at(time.at_us[i]);
      if (step < 0) {
        out.arm[i] = -1;
        out.reason[i] = static_cast<uint8_t>(Reason::not_started);
        continue;
      }
      map = e.bucket_map(step).data();
      threshold = e.threshold(step);
    } else if (map == nullptr) {
      out.arm[i] = -1;
      out.reason[i] = static_cast<uint8_t>(Reason::not_started);
      continue;
    }
    if (time.eligible != nullptr && !time.eligible[i]) {
      out.arm[i] = -1;
      out.reason[i] = static_cast<uint8_t>(Reason::targeting_miss);
      continue;
    }
    if (threshold < buckets && mod(detail::hash_inline(traffic_hasher, data, len)) >= threshold) {
      out.arm[i] = -1;
      out.reason[i] = static_cast<uint8_t>(Reason::not_exposed);
      continue;
    }
    out.arm[i] = map[bucket];
    out.reason[i] = static_cast<uint8_t>(Reason::assigned);
  }
}

template <typename Reader>
void run_assign(const CompiledExperiment& e, const Reader& reader, size_t n,
                const BatchContext& time, const BatchOutput& out, unsigned threads) {
  if (time.at_us == nullptr && time.step >= static_cast<int32_t>(e.step_count())) {
    throw InvalidArgument("allocation step out of range");
  }
  FirstBad bad;
  const bool default_buckets = e.buckets() == 10000;
  parallel_ranges(n, threads, [&](size_t begin, size_t end) {
    if (time.at_us != nullptr) {
      assign_range<Reader, true>(e, reader, time, out, begin, end, bad, e.modulus());
    } else if (default_buckets) {
      assign_range<Reader, false>(e, reader, time, out, begin, end, bad, DefaultBucketsMod{});
    } else {
      assign_range<Reader, false>(e, reader, time, out, begin, end, bad, e.modulus());
    }
  });
  bad.raise_if_any("unit id cannot be encoded as UTF-8 (lone surrogate or invalid code point)");
}

template <typename Reader>
void run_hash(const Hasher& hasher, const Reader& reader, size_t n, uint64_t* out, uint8_t* missing,
              unsigned threads) {
  FirstBad bad;
  parallel_ranges(n, threads, [&](size_t begin, size_t end) {
    Scratch scratch;
    for (size_t i = begin; i < end; ++i) {
      const char* data = nullptr;
      size_t len = 0;
      const Row row = reader.read(i, data, len, scratch);
      if (row != Row::kOk) {
        if (row == Row::kBad) bad.note(i);
        out[i] = 0;
        missing[i] = 1;
        continue;
      }
      out[i] = detail::hash_inline(hasher, data, len);
      missing[i] = 0;
    }
  });
  bad.raise_if_any("unit id cannot be encoded as UTF-8 (lone surrogate or invalid code point)");
}

// Calls fn(reader, length) with the reader matching the column.
template <typename Fn>
void visit_column(const UnitColumn& column, Fn&& fn) {
  if (const auto* c = std::get_if<IntColumn>(&column)) {
    auto go = [&](auto tag) {
      using T = decltype(tag);
      fn(IntReader<T>{static_cast<const T*>(c->values), c->missing, c->validity, c->validity_offset,
                      c->length},
         c->length);
    };
    switch (c->kind) {
      case IntKind::i8:
        return go(int8_t{});
      case IntKind::i16:
        return go(int16_t{});
      case IntKind::i32:
        return go(int32_t{});
      case IntKind::i64:
        return go(int64_t{});
      case IntKind::u8:
        return go(uint8_t{});
      case IntKind::u16:
        return go(uint16_t{});
      case IntKind::u32:
        return go(uint32_t{});
      case IntKind::u64:
        return go(uint64_t{});
    }
  } else if (const auto* c = std::get_if<OffsetStringColumn>(&column)) {
    if (c->large_offsets) {
      fn(OffsetStringReader<int64_t>{static_cast<const int64_t*>(c->offsets), c->data, c->validity,
                                     c->validity_offset, c->length},
         c->length);
    } else {
      fn(OffsetStringReader<int32_t>{static_cast<const int32_t*>(c->offsets), c->data, c->validity,
                                     c->validity_offset, c->length},
         c->length);
    }
  } else if (const auto* c = std::get_if<ViewStringColumn>(&column)) {
    fn(ViewStringReader{c->views, c->buffers, c->buffer_count, c->validity, c->validity_offset,
                        c->length},
       c->length);
  } else if (const auto* c = std::get_if<SpanColumn>(&column)) {
    fn(SpanReader{c->data, c->lengths}, c->length);
  } else if (const auto* c = std::get_if<FixedWidthColumn>(&column)) {
    if (c->utf32) {
      fn(Utf32Reader{c->data, c->item_size}, c->length);
    } else {
      fn(FixedBytesReader{c->data, c->item_size}, c->length);
    }
  }
}

}  // namespace

size_t column_length(const UnitColumn& column) noexcept {
  return std::visit([](const auto& c) { return c.length; }, column);
}

void assign_batch(const CompiledExperiment& experiment, const UnitColumn& units,
                  const BatchContext& time, const BatchOutput& out, unsigned threads) {
  visit_column(units, [&](const auto& reader, size_t n) {
    run_assign(experiment, reader, n, time, out, threads);
  });
}

void hash_batch(Algorithm algorithm, const std::string& salt, const UnitColumn& units,
                uint64_t* out, uint8_t* missing, unsigned threads) {
  const Hasher hasher(algorithm, salt);
  visit_column(units, [&](const auto& reader, size_t n) {
    run_hash(hasher, reader, n, out, missing, threads);
  });
}

void assign_rows(const CompiledExperiment& experiment, size_t rows, RowReader reader, void* context,
                 const BatchContext& time, const BatchOutput& out) {
  run_assign(experiment, CallbackReader{reader, context}, rows, time, out, 1);
}

void hash_rows(Algorithm algorithm, const std::string& salt, size_t rows, RowReader reader,
               void* context, uint64_t* out, uint8_t* missing) {
  run_hash(Hasher(algorithm, salt), CallbackReader{reader, context}, rows, out, missing, 1);
}

namespace {

std::string describe_format(const char* format) {
  return format == nullptr ? std::string("(null)") : std::string(format);
}

}  // namespace

UnitColumn column_from_arrow(const ArrowSchema& schema, const ArrowArray& array) {
  const std::string format = describe_format(schema.format);
  if (schema.dictionary != nullptr || array.dictionary != nullptr) {
    throw UnitTypeError("dictionary-encoded Arrow arrays must be decoded by the caller", 0);
  }
  const size_t length = static_cast<size_t>(array.length);
  const int64_t offset = array.offset;
  const auto* validity = array.n_buffers > 0 && array.null_count != 0
                             ? static_cast<const uint8_t*>(array.buffers[0])
                             : nullptr;
  auto int_column = [&](IntKind kind, size_t width) {
    IntColumn c;
    c.kind = kind;
    c.values = static_cast<const char*>(array.buffers[1]) + width * static_cast<size_t>(offset);
    c.length = length;
    c.validity = validity;
    c.validity_offset = offset;
    return UnitColumn{c};
  };
  if (format == "c") return int_column(IntKind::i8, 1);
  if (format == "s") return int_column(IntKind::i16, 2);
  if (format == "i") return int_column(IntKind::i32, 4);
  if (format == "l") return int_column(IntKind::i64, 8);
  if (format == "C") return int_column(IntKind::u8, 1);
  if (format == "S") return int_column(IntKind::u16, 2);
  if (format == "I") return int_column(IntKind::u32, 4);
  if (format == "L") return int_column(IntKind::u64, 8);
  if (format == "u" || format == "z" || format == "U" || format == "Z") {
    OffsetStringColumn c;
    c.large_offsets = format == "U" || format == "Z";
    const size_t width = c.large_offsets ? 8 : 4;
    c.offsets = static_cast<const char*>(array.buffers[1]) + width * static_cast<size_t>(offset);
    c.data = static_cast<const char*>(array.buffers[2]);
    c.length = length;
    c.validity = validity;
    c.validity_offset = offset;
    if (c.data == nullptr) c.data = "";
    return c;
  }
  if (format == "vu" || format == "vz") {
    ViewStringColumn c;
    c.views = static_cast<const uint8_t*>(array.buffers[1]) + 16 * static_cast<size_t>(offset);
    // buffers: validity, views, the variadic data buffers, then their sizes.
    c.buffer_count = array.n_buffers >= 3 ? static_cast<size_t>(array.n_buffers - 3) : 0;
    c.buffers = reinterpret_cast<const char* const*>(array.buffers + 2);
    c.length = length;
    c.validity = validity;
    c.validity_offset = offset;
    return c;
  }
  throw UnitTypeError("Arrow type with format '" + format +
                          "' cannot hold unit ids; expected integers, string, large_string, "
                          "string_view or binary",
                      0);
}

}  // namespace trafficsplit
