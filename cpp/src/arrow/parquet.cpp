// Parquet data-page bodies (see the header for the encodings).
#include "trafficsplit/arrow/parquet.hpp"

#include <cstddef>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "trafficsplit/errors.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace trafficsplit::parquet {

namespace {

// ULEB128, as the hybrid's run headers are written.
uint8_t* put_varint(uint8_t* out, uint64_t v) {
  while (v >= 0x80) {
    *out++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *out++ = static_cast<uint8_t>(v);
  return out;
}

void put_u32(uint8_t* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

bool bit(const uint8_t* bits, int64_t i) { return (bits[i >> 3] >> (i & 7)) & 1; }

// Set bits of n bytes, eight at a time (the portable build has no popcount instruction, and
// __builtin_popcount becomes a library call per byte).
int64_t count_bits(const uint8_t* p, int64_t n) {
  int64_t total = 0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x;
    std::memcpy(&x, p + i, 8);
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    total += static_cast<int64_t>((x * 0x0101010101010101ULL) >> 56);
  }
  for (; i < n; ++i) {
    for (uint8_t b = p[i]; b != 0; b &= static_cast<uint8_t>(b - 1)) ++total;
  }
  return total;
}

constexpr size_t kLevelsOverhead = 4 + 10 + 1;  // length, run header, the last partial byte
constexpr size_t kCopySlack = 32;               // bytes a value's copy may write past its end

// A value's bytes, in 32-byte steps where `readable` (the bytes from `src` to the end of the
// page's values) allows reading past its end: one call to memcpy per value costs more than
// the copy of a short id. Writes up to kCopySlack bytes past the value, which the page's bound
// leaves room for and the next value overwrites.
inline void copy_value(uint8_t* dst, const uint8_t* src, size_t n, ptrdiff_t readable) {
  if (n <= 2 * kCopySlack && static_cast<ptrdiff_t>(n + kCopySlack) <= readable) {
    for (size_t k = 0; k < n; k += kCopySlack) std::memcpy(dst + k, src + k, kCopySlack);
    return;
  }
  std::memcpy(dst, src, n);
}

// Definition levels of rows [first, first + count) from an Arrow bitmap; returns the end and
// stores the number of present rows in `present`.
uint8_t* levels_from_bitmap(uint8_t* out, Bitmap validity, int64_t first, int64_t count,
                            int64_t& present) {
  uint8_t* start = out + 4;
  uint8_t* p = start;
  if (validity.bits == nullptr) {
    present = count;
    p = put_varint(p, static_cast<uint64_t>(count) << 1);  // one RLE run of level 1
    *p++ = 1;
  } else {
    const int64_t groups = (count + 7) / 8;
    p = put_varint(p, (static_cast<uint64_t>(groups) << 1) | 1);
    const int64_t from = validity.offset + first;
    present = 0;
    if ((from & 7) == 0) {
      std::memcpy(p, validity.bits + (from >> 3), static_cast<size_t>(groups));
    } else {
      const int shift = static_cast<int>(from & 7);
      const uint8_t* src = validity.bits + (from >> 3);
      const int64_t last = (from + count - 1) >> 3;  // the last source byte that may be read
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t hi_index = (from >> 3) + g + 1;
        const uint8_t hi = hi_index <= last ? src[g + 1] : 0;
        p[g] = static_cast<uint8_t>((src[g] >> shift) | (hi << (8 - shift)));
      }
    }
    if (count & 7) p[groups - 1] &= static_cast<uint8_t>((1u << (count & 7)) - 1);
    present = count_bits(p, groups);
    p += groups;
  }
  put_u32(out, static_cast<uint32_t>(p - start));
  return p;
}

// Bit k set where v[k] >= 0, for the eight values from v.
template <class T>
inline uint8_t sign_byte(const T* v) {
#if defined(__SSE2__)
  if constexpr (std::is_same_v<T, int16_t>) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(v));
    const __m128i ge = _mm_cmpgt_epi16(x, _mm_set1_epi16(-1));
    return static_cast<uint8_t>(_mm_movemask_epi8(_mm_packs_epi16(ge, ge)) & 0xFF);
  } else if constexpr (std::is_same_v<T, int32_t>) {
    const __m128i minus = _mm_set1_epi32(-1);
    const __m128i a = _mm_cmpgt_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v)), minus);
    const __m128i b =
        _mm_cmpgt_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + 4)), minus);
    const __m128i words = _mm_packs_epi32(a, b);
    return static_cast<uint8_t>(_mm_movemask_epi8(_mm_packs_epi16(words, words)) & 0xFF);
  }
#endif
  unsigned byte = 0;
  for (int k = 0; k < 8; ++k) byte |= static_cast<unsigned>(v[k] >= 0) << k;
  return static_cast<uint8_t>(byte);
}

// Definition levels where values[i] >= 0: one RLE run when every row is present.
template <class T>
uint8_t* levels_from_sign(uint8_t* out, const T* values, int64_t count, int64_t& present) {
  uint8_t* start = out + 4;
  const int64_t groups = (count + 7) / 8;
  const int64_t whole = count / 8;
  uint8_t* p = put_varint(start, (static_cast<uint64_t>(groups) << 1) | 1);
  for (int64_t g = 0; g < whole; ++g) p[g] = sign_byte(values + 8 * g);
  if (whole < groups) {
    unsigned byte = 0;
    for (int64_t i = 8 * whole; i < count; ++i) {
      byte |= static_cast<unsigned>(values[i] >= 0) << (i - 8 * whole);
    }
    p[whole] = static_cast<uint8_t>(byte);
  }
  present = count_bits(p, groups);
  p += groups;
  if (present == count) {  // rewrite as one run of level 1
    p = put_varint(start, static_cast<uint64_t>(count) << 1);
    *p++ = 1;
  }
  put_u32(out, static_cast<uint32_t>(p - start));
  return p;
}

// The bit-packed indices of the `m` values from `values` (the run's groups of eight padded
// with zeros) after the width byte and the run header. Widths up to 8 pack a group of eight in
// one 64-bit word.
template <class T>
uint8_t* pack_indices(uint8_t* out, int bit_width, const T* values, int64_t m) {
  *out++ = static_cast<uint8_t>(bit_width);
  if (m == 0) return out;
  const int64_t groups = (m + 7) / 8;
  out = put_varint(out, (static_cast<uint64_t>(groups) << 1) | 1);
  const auto w = static_cast<unsigned>(bit_width);
  auto value = [&](int64_t j) -> uint64_t { return j < m ? static_cast<uint64_t>(values[j]) : 0; };
  if (w <= 8) {
    const int64_t whole = m / 8;
    for (int64_t g = 0; g < whole; ++g) {
      const T* v = values + 8 * g;
      uint64_t acc = 0;
      for (unsigned k = 0; k < 8; ++k) acc |= static_cast<uint64_t>(v[k]) << (k * w);
      for (unsigned b = 0; b < w; ++b) out[b] = static_cast<uint8_t>(acc >> (8 * b));
      out += w;
    }
    if (whole < groups) {
      uint64_t acc = 0;
      for (unsigned k = 0; k < 8; ++k) acc |= value(8 * whole + k) << (k * w);
      for (unsigned b = 0; b < w; ++b) out[b] = static_cast<uint8_t>(acc >> (8 * b));
      out += w;
    }
    return out;
  }
  uint64_t acc = 0;
  unsigned bits = 0;
  for (int64_t j = 0; j < groups * 8; ++j) {
    acc |= value(j) << bits;
    bits += w;
    while (bits >= 8) {
      *out++ = static_cast<uint8_t>(acc);
      acc >>= 8;
      bits -= 8;
    }
  }
  return out;
}

}  // namespace

int index_bit_width(size_t dictionary_size) {
  int width = 1;
  while (width < 32 && (size_t{1} << width) < dictionary_size) ++width;
  return width;
}

template <class Offset>
Encoded binary_page(const Offset* offsets, const uint8_t* data, Bitmap validity, int64_t first,
                    int64_t count, bool optional, uint8_t* out, size_t capacity) {
  if (first < 0 || count < 0) throw InvalidArgument("parquet page: negative row range");
  if (offsets[first] < 0 || offsets[first + count] < offsets[first]) {
    throw InvalidArgument("parquet page: the offsets are out of order");
  }
  const auto bytes = static_cast<size_t>(offsets[first + count] - offsets[first]);
  const size_t bound = kLevelsOverhead + static_cast<size_t>(count) / 8 +
                       4 * static_cast<size_t>(count) + bytes + kCopySlack;
  if (capacity < bound) return {bound, false};
  uint8_t* p = out;
  int64_t present = count;
  if (optional) p = levels_from_bitmap(p, validity, first, count, present);
  const bool all = validity.bits == nullptr;
  for (int64_t i = first; i < first + count; ++i) {
    if (!all && !bit(validity.bits, validity.offset + i)) continue;
    if (offsets[i] < offsets[first] || offsets[i + 1] < offsets[i] ||
        offsets[i + 1] > offsets[first + count]) {
      throw InvalidArgument("parquet page: the offsets are out of order at row " +
                            std::to_string(i));
    }
    const auto n = static_cast<size_t>(offsets[i + 1] - offsets[i]);
    put_u32(p, static_cast<uint32_t>(n));
    copy_value(p + 4, data + offsets[i], n,
               static_cast<ptrdiff_t>(offsets[first + count] - offsets[i]));
    p += 4 + n;
  }
  return {static_cast<size_t>(p - out), true};
}

template Encoded binary_page<int32_t>(const int32_t*, const uint8_t*, Bitmap, int64_t, int64_t,
                                      bool, uint8_t*, size_t);
template Encoded binary_page<int64_t>(const int64_t*, const uint8_t*, Bitmap, int64_t, int64_t,
                                      bool, uint8_t*, size_t);

Encoded fixed_page(const uint8_t* values, size_t width, Bitmap validity, int64_t first,
                   int64_t count, bool optional, uint8_t* out, size_t capacity) {
  if (width != 4 && width != 8) throw InvalidArgument("parquet page: width must be 4 or 8");
  if (first < 0 || count < 0) throw InvalidArgument("parquet page: negative row range");
  const size_t bound =
      kLevelsOverhead + static_cast<size_t>(count) / 8 + width * static_cast<size_t>(count);
  if (capacity < bound) return {bound, false};
  uint8_t* p = out;
  int64_t present = count;
  if (optional) p = levels_from_bitmap(p, validity, first, count, present);
  const uint8_t* src = values + width * static_cast<size_t>(first);
  if (validity.bits == nullptr || present == count) {
    if (count > 0) std::memcpy(p, src, width * static_cast<size_t>(count));
    p += width * static_cast<size_t>(count);
  } else {
    for (int64_t i = 0; i < count; ++i) {
      if (!bit(validity.bits, validity.offset + first + i)) continue;
      std::memcpy(p, src + width * static_cast<size_t>(i), width);
      p += width;
    }
  }
  return {static_cast<size_t>(p - out), true};
}

Encoded nonnegative_page(const int32_t* values, int64_t count, uint8_t* out, size_t capacity) {
  if (count < 0) throw InvalidArgument("parquet page: negative row count");
  const size_t bound =
      kLevelsOverhead + static_cast<size_t>(count) / 8 + 4 * static_cast<size_t>(count);
  if (capacity < bound) return {bound, false};
  int64_t present = 0;
  uint8_t* p = levels_from_sign(out, values, count, present);
  if (present == count) {
    if (count > 0) std::memcpy(p, values, 4 * static_cast<size_t>(count));
    p += 4 * static_cast<size_t>(count);
  } else {
    for (int64_t i = 0; i < count; ++i) {  // without a branch per row
      std::memcpy(p, &values[i], 4);
      p += 4 * static_cast<size_t>(values[i] >= 0);
    }
  }
  return {static_cast<size_t>(p - out), true};
}

template <class T>
Encoded indices_page(const T* values, int64_t count, int bit_width, uint8_t* out, size_t capacity) {
  if (count < 0) throw InvalidArgument("parquet page: negative row count");
  if (bit_width < 1 || bit_width > 32) {
    throw InvalidArgument("parquet page: bit width must be 1 to 32");
  }
  const size_t packed = (static_cast<size_t>(count) + 7) / 8 * static_cast<size_t>(bit_width);
  const size_t bound = kLevelsOverhead + static_cast<size_t>(count) / 8 + 1 + 10 + packed;
  if (capacity < bound) return {bound, false};
  uint8_t* p = out;
  if constexpr (std::is_signed_v<T>) {
    int64_t present = count;
    p = levels_from_sign(p, values, count, present);
    if (present == count) {
      p = pack_indices(p, bit_width, values, count);
    } else {
      // The present values gathered first, without a branch per row (nulls fall anywhere).
      thread_local std::vector<T> gathered;
      if (gathered.size() < static_cast<size_t>(count)) gathered.resize(static_cast<size_t>(count));
      T* g = gathered.data();
      int64_t j = 0;
      for (int64_t i = 0; i < count; ++i) {
        g[j] = values[i];
        j += values[i] >= 0;
      }
      p = pack_indices(p, bit_width, g, j);
    }
  } else {
    p = pack_indices(p, bit_width, values, count);
  }
  return {static_cast<size_t>(p - out), true};
}

template Encoded indices_page<int16_t>(const int16_t*, int64_t, int, uint8_t*, size_t);
template Encoded indices_page<uint8_t>(const uint8_t*, int64_t, int, uint8_t*, size_t);

}  // namespace trafficsplit::parquet
