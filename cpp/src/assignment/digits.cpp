// Integer ids for the assignment kernels: their decimal text (8-digit chunks, then their
// ASCII, four (AVX2) or eight (AVX-512) chunks per instruction where the CPU has them, the
// portable code elsewhere) and its XXH3, a block of rows at a time.
#include "assignment/digits.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#include "trafficsplit/assignment/batch.hpp"

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*, which it then reports as (maybe)
// uninitialised wherever they are inlined (GCC bug 105593, fixed in GCC 13): false warnings.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace trafficsplit::detail {

namespace {

// The ASCII digits of 0 to 9999, four bytes each, most significant first in memory. The top
// chunk of a 64-bit value is at most 1844, so it takes one lookup instead of a conversion.
struct FourDigits {
  uint32_t ascii[10000];
  constexpr FourDigits() : ascii() {
    for (uint32_t v = 0; v < 10000; ++v) {
      ascii[v] = (0x30 + v / 1000) | (0x30 + v / 100 % 10) << 8 | (0x30 + v / 10 % 10) << 16 |
                 (0x30 + v % 10) << 24;
    }
  }
};
inline constexpr FourDigits kFourDigits{};

// The top chunk's ASCII word: '0000' and its four digits.
inline uint64_t top_word(uint64_t top) noexcept {
  return 0x30303030ULL | (uint64_t{kFourDigits.ascii[top]} << 32);
}

// Splits n values (at most kIntBlock) into 8-digit chunks: the top one (at most 1844) written
// as ASCII, the middle and low ones as numbers. Returns bit 1 when some row has a middle
// chunk, bit 2 when some row is negative.
template <typename T>
__attribute__((always_inline)) inline unsigned split_chunks(const T* values, size_t n,
                                                            DigitBlock& block) {
  uint64_t any_mid = 0, any_negative = 0;
  for (size_t k = 0; k < n; ++k) {
    uint64_t u;
    uint64_t negative = 0;
    if constexpr (std::is_signed_v<T>) {
      const auto v = static_cast<int64_t>(values[k]);
      negative = v < 0;
      u = negative ? ~static_cast<uint64_t>(v) + 1 : static_cast<uint64_t>(v);
    } else {
      u = static_cast<uint64_t>(values[k]);
    }
    const uint64_t top = u / 10000000000000000ULL;
    const uint64_t rest = u - top * 10000000000000000ULL;
    const uint64_t mid = rest / 100000000;
    block.words[0][k] = top_word(top);
    block.words[1][k] = mid;
    block.words[2][k] = rest - mid * 100000000;
    any_mid |= mid;
    any_negative |= negative;
  }
  for (size_t k = n; k < kIntBlock; ++k) {
    block.words[0][k] = block.words[1][k] = block.words[2][k] = 0;
  }
  return (any_mid != 0 ? 2u : 0u) | (any_negative != 0 ? 4u : 0u);
}

// Writes the signs of negative rows into the ASCII words: '-' is '0' - 3, in the byte just
// before the first digit.
template <typename T>
void write_signs(const T* values, size_t n, DigitBlock& block) {
  for (size_t k = 0; k < n; ++k) {
    if (static_cast<int64_t>(values[k]) >= 0) continue;
    const uint64_t w[3] = {block.words[0][k], block.words[1][k], block.words[2][k]};
    const size_t at = 23 - text_length(w);
    block.words[at >> 3][k] -= uint64_t{3} << (8 * (at & 7));
  }
}

// Each row's XXH3 from its words, one row at a time (the portable path; the vector paths take
// four rows per step).
__attribute__((always_inline)) inline void hash_block_words(const DigitBlock& block, size_t n,
                                                            const Xxh3Keys* const* keys,
                                                            size_t count, uint64_t* const* out) {
  for (size_t j = 0; j < count; ++j) {
    const Xxh3Keys& k = *keys[j];
    uint64_t* __restrict o = out[j];
    for (size_t i = 0; i < n; ++i) {
      o[i] = xxh3_digit_words(k, block.words[0][i], block.words[1][i], block.words[2][i]);
    }
  }
}

// The portable digits: 8-digit chunks turned into ASCII in one register each.
template <typename T>
inline void digit_block_portable(const T* values, size_t n, DigitBlock& block) {
  const unsigned present = split_chunks(values, n, block);
  for (int c = 1; c < 3; ++c) {
    for (size_t k = 0; k < n; ++k) {
      const auto chunk = static_cast<uint32_t>(block.words[c][k]);
      block.words[c][k] = detail::eight_digit_values(chunk) + detail::kAsciiZeros;
    }
  }
  if constexpr (std::is_signed_v<T>) {
    if (present & 4u) write_signs(values, n, block);
  }
}

template <typename T>
void xxh3_block_portable(const T* values, size_t n, const Xxh3Keys* const* keys, size_t count,
                         uint64_t* const* out) {
  DigitBlock block;
  digit_block_portable(values, n, block);
  hash_block_words(block, n, keys, count, out);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TRAFFICSPLIT_AVX2 __attribute__((target("avx2,bmi,bmi2")))
#define TRAFFICSPLIT_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,bmi,bmi2")))

// A constant the compiler must take as it is: GCC rewrites multiplies by small constants as
// shifts and adds, which on these paths crowd the shift units while the multipliers idle.
TRAFFICSPLIT_AVX2 inline __m256i opaque(__m256i v) {
  asm("" : "+x"(v));
  return v;
}
TRAFFICSPLIT_AVX512 inline __m512i opaque(__m512i v) {
  asm("" : "+v"(v));
  return v;
}

// The last steps of eight_digit_values in 64-bit lanes, from n / 10^4 in the low and n % 10^4
// in the high half of each lane: the same digits, each division in 16-bit fields.
TRAFFICSPLIT_AVX2 inline __m256i digit_values_of_halves_x4(__m256i merged) {
  // Each value below 10^4 in its own 16-bit field: x / 100 = (x * 5243) >> 19 and, for
  // x < 100, x / 10 = (x * 6554) >> 16, from the high halves of 16-bit products.
  const __m256i top = _mm256_srli_epi16(_mm256_mulhi_epu16(merged, _mm256_set1_epi16(5243)), 3);
  const __m256i bottom =
      _mm256_sub_epi16(merged, _mm256_mullo_epi16(top, opaque(_mm256_set1_epi16(100))));
  const __m256i hundreds = _mm256_add_epi64(_mm256_slli_epi64(bottom, 16), top);
  const __m256i tens = _mm256_mulhi_epu16(hundreds, _mm256_set1_epi16(6554));
  const __m256i units =
      _mm256_sub_epi16(hundreds, _mm256_mullo_epi16(tens, opaque(_mm256_set1_epi16(10))));
  return _mm256_add_epi64(tens, _mm256_slli_epi64(units, 8));
}

// Decimal text of four 8-digit chunks at a time: the scalar eight_digit_values in 64-bit lanes.
TRAFFICSPLIT_AVX2 inline __m256i eight_digit_values_x4(__m256i n) {
  const __m256i q = _mm256_srli_epi64(_mm256_mul_epu32(n, _mm256_set1_epi64x(109951163)), 40);
  const __m256i r = _mm256_sub_epi64(n, _mm256_mul_epu32(q, _mm256_set1_epi64x(10000)));
  return digit_values_of_halves_x4(_mm256_or_si256(q, _mm256_slli_epi64(r, 32)));
}

// The same for n < 10^4 (its first four digits are 0): one division fewer.
TRAFFICSPLIT_AVX2 inline __m256i four_digit_values_x4(__m256i n) {
  return digit_values_of_halves_x4(_mm256_slli_epi64(n, 32));
}

// Unsigned 64-bit lanes as the nearest doubles: the high and low halves as exact doubles
// (2^84 + high·2^32 and 2^52 + low, by their bits), whose sum less 2^84 + 2^52 rounds once.
TRAFFICSPLIT_AVX2 inline __m256d u64_to_double_x4(__m256i x) {
  const __m256i high =
      _mm256_or_si256(_mm256_srli_epi64(x, 32), _mm256_castpd_si256(_mm256_set1_pd(0x1p84)));
  const __m256i low = _mm256_blend_epi32(x, _mm256_castpd_si256(_mm256_set1_pd(0x1p52)), 0xAA);
  const __m256d high_part =
      _mm256_sub_pd(_mm256_castsi256_pd(high), _mm256_set1_pd(0x1p84 + 0x1p52));
  return _mm256_add_pd(high_part, _mm256_castsi256_pd(low));
}

// Lanes below 2^52 as doubles, exactly.
TRAFFICSPLIT_AVX2 inline __m256d small_to_double_x4(__m256i x) {
  const __m256d magic = _mm256_set1_pd(0x1p52);
  return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(x, _mm256_castpd_si256(magic))), magic);
}

// q and r with x = q * 10^8 + r, 0 <= r < 10^8, for x below 2^64 given with its nearest double
// `xd`. The quotient x·10^-8 in doubles is within 10^-4 of the truth (x, 10^-8 and the
// product are each rounded by at most 2^-53 relatively, and quotients stay below 1.9e11), so
// its nearest integer (adding 2^52 rounds there) is the true quotient or one more; the exact
// remainder, computed modulo 2^64, says which.
TRAFFICSPLIT_AVX2 inline __m256i divmod_e8_x4(__m256i x, __m256d xd, __m256i& r) {
  const __m256d magic = _mm256_set1_pd(0x1p52);
  const __m256i q = _mm256_xor_si256(
      _mm256_castpd_si256(_mm256_add_pd(_mm256_mul_pd(xd, _mm256_set1_pd(1e-8)), magic)),
      _mm256_castpd_si256(magic));
  const __m256i e8 = _mm256_set1_epi64x(100000000);
  // q · 10^8 from q's 32-bit halves (q < 2^38).
  const __m256i product =
      _mm256_add_epi64(_mm256_mul_epu32(q, e8),
                       _mm256_slli_epi64(_mm256_mul_epu32(_mm256_srli_epi64(q, 32), e8), 32));
  r = _mm256_sub_epi64(x, product);
  const __m256i under = _mm256_cmpgt_epi64(_mm256_setzero_si256(), r);  // r in [-10^8, 0)
  r = _mm256_add_epi64(r, _mm256_and_si256(under, e8));
  return _mm256_add_epi64(q, under);
}

// Four values widened to 64-bit lanes (sign-extended for signed types).
template <typename T>
TRAFFICSPLIT_AVX2 inline __m256i load_x4(const T* p) {
  constexpr bool kSigned = std::is_signed_v<T>;
  if constexpr (sizeof(T) == 8) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  } else if constexpr (sizeof(T) == 4) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return kSigned ? _mm256_cvtepi32_epi64(v) : _mm256_cvtepu32_epi64(v);
  } else if constexpr (sizeof(T) == 2) {
    const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    return kSigned ? _mm256_cvtepi16_epi64(v) : _mm256_cvtepu16_epi64(v);
  } else {
    int32_t bytes;
    std::memcpy(&bytes, p, 4);
    const __m128i v = _mm_cvtsi32_si128(bytes);
    return kSigned ? _mm256_cvtepi8_epi64(v) : _mm256_cvtepu8_epi64(v);
  }
}

// A full digit block with no scalar division: each |value| split into 8-digit chunks by
// divmod_e8_x4, four rows per step, then the chunks' digits four per instruction. Each step
// is a long chain of dependent instructions; two passes over the block keep independent steps
// close enough for the processor to overlap them.
template <typename T>
TRAFFICSPLIT_AVX2 inline void digit_block_x4(const T* values, DigitBlock& block) {
  __m256i negative = _mm256_setzero_si256();
  __m256i any_top = _mm256_setzero_si256();
  for (size_t k = 0; k < kIntBlock; k += 4) {
    __m256i u = load_x4(values + k);
    if constexpr (std::is_signed_v<T>) {
      const __m256i sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), u);
      negative = _mm256_or_si256(negative, sign);
      u = _mm256_sub_epi64(_mm256_xor_si256(u, sign), sign);  // 2^63 for INT64_MIN, unsigned
    }
    __m256i low, mid, top;
    const __m256i high = divmod_e8_x4(u, u64_to_double_x4(u), low);
    const __m256i below_e8 = _mm256_cmpgt_epi64(_mm256_set1_epi64x(100000000), high);
    if (_mm256_movemask_pd(_mm256_castsi256_pd(below_e8)) == 0xF) {  // values below 10^16
      mid = high;
      top = _mm256_setzero_si256();
    } else {
      top = divmod_e8_x4(high, small_to_double_x4(high), mid);
      any_top = _mm256_or_si256(any_top, top);
    }
    _mm256_store_si256(reinterpret_cast<__m256i*>(block.words[0] + k), top);
    _mm256_store_si256(reinterpret_cast<__m256i*>(block.words[1] + k), mid);
    _mm256_store_si256(reinterpret_cast<__m256i*>(block.words[2] + k), low);
  }
  const __m256i zeros = _mm256_set1_epi64x(static_cast<int64_t>(detail::kAsciiZeros));
  auto* top = reinterpret_cast<__m256i*>(block.words[0]);
  if (_mm256_testz_si256(any_top, any_top)) {
    for (size_t k = 0; k < kIntBlock / 4; ++k) _mm256_store_si256(top + k, zeros);
  } else {
    for (size_t k = 0; k < kIntBlock / 4; ++k) {
      const __m256i digits = four_digit_values_x4(_mm256_load_si256(top + k));
      _mm256_store_si256(top + k, _mm256_add_epi64(digits, zeros));
    }
  }
  for (int c = 1; c < 3; ++c) {
    auto* p = reinterpret_cast<__m256i*>(block.words[c]);
    for (size_t k = 0; k < kIntBlock / 4; ++k) {
      const __m256i digits = eight_digit_values_x4(_mm256_load_si256(p + k));
      _mm256_store_si256(p + k, _mm256_add_epi64(digits, zeros));
    }
  }
  if constexpr (std::is_signed_v<T>) {
    if (!_mm256_testz_si256(negative, negative)) write_signs(values, kIntBlock, block);
  }
}

// Fills a digit block: full blocks by digit_block_x4; a last, shorter one with the divisions
// by 10^16 and 10^8 in scalar code and the digits four chunks per instruction. The same words
// as the portable path (checked against it in the tests), only faster.
template <typename T>
TRAFFICSPLIT_AVX2 inline void digit_block_avx2(const T* values, size_t n, DigitBlock& block) {
  if (n == kIntBlock) return digit_block_x4(values, block);
  const unsigned present = split_chunks(values, n, block);
  const __m256i zeros = _mm256_set1_epi64x(static_cast<int64_t>(detail::kAsciiZeros));
  for (int c = 1; c < 3; ++c) {
    auto* p = reinterpret_cast<__m256i*>(block.words[c]);
    if (c == 1 && (present & 2u) == 0) {  // all zero: '0' digits
      for (size_t k = 0; k < n; k += 4) _mm256_store_si256(p + k / 4, zeros);
      continue;
    }
    for (size_t k = 0; k < n; k += 4) {
      const __m256i digits = eight_digit_values_x4(_mm256_load_si256(p + k / 4));
      _mm256_store_si256(p + k / 4, _mm256_add_epi64(digits, zeros));
    }
  }
  if constexpr (std::is_signed_v<T>) {
    if (present & 4u) write_signs(values, n, block);
  }
}

// eight_digit_values_x4 in eight lanes (AVX-512BW for the 16-bit multiplies).
TRAFFICSPLIT_AVX512 inline __m512i eight_digit_values_x8(__m512i n) {
  const __m512i q = _mm512_srli_epi64(_mm512_mul_epu32(n, _mm512_set1_epi64(109951163)), 40);
  const __m512i r = _mm512_sub_epi64(n, _mm512_mul_epu32(q, _mm512_set1_epi64(10000)));
  const __m512i merged = _mm512_or_si512(q, _mm512_slli_epi64(r, 32));
  const __m512i top = _mm512_srli_epi16(_mm512_mulhi_epu16(merged, _mm512_set1_epi16(5243)), 3);
  const __m512i bottom =
      _mm512_sub_epi16(merged, _mm512_mullo_epi16(top, opaque(_mm512_set1_epi16(100))));
  const __m512i hundreds = _mm512_add_epi64(_mm512_slli_epi64(bottom, 16), top);
  const __m512i tens = _mm512_mulhi_epu16(hundreds, _mm512_set1_epi16(6554));
  const __m512i units =
      _mm512_sub_epi16(hundreds, _mm512_mullo_epi16(tens, opaque(_mm512_set1_epi16(10))));
  return _mm512_add_epi64(tens, _mm512_slli_epi64(units, 8));
}

// q and r with x = q * 10^8 + r, 0 <= r < 10^8, from the double-precision quotient: it is
// within one of the truth (x, 10^-8 and the product are each rounded by at most 2^-53
// relatively, and quotients stay below 1.9e11, so the error is below 10^-4), and the exact
// remainder corrects it.
TRAFFICSPLIT_AVX512 inline __m512i divmod_e8_x8(__m512i x, __m512i& r) {
  const __m512i e8 = _mm512_set1_epi64(100000000);
  const __m512i one = _mm512_set1_epi64(1);
  __m512i q = _mm512_cvttpd_epu64(_mm512_mul_pd(_mm512_cvtepu64_pd(x), _mm512_set1_pd(1e-8)));
  r = _mm512_sub_epi64(x, _mm512_mullo_epi64(q, e8));
  const __mmask8 under = _mm512_cmplt_epi64_mask(r, _mm512_setzero_si512());
  r = _mm512_mask_add_epi64(r, under, r, e8);
  q = _mm512_mask_sub_epi64(q, under, q, one);
  const __mmask8 over = _mm512_cmpge_epi64_mask(r, e8);
  r = _mm512_mask_sub_epi64(r, over, r, e8);
  return _mm512_mask_add_epi64(q, over, q, one);
}

// split_chunks for a full block of 64-bit values, eight rows per instruction.
template <typename T>
TRAFFICSPLIT_AVX512 unsigned split_chunks_x8(const T* values, DigitBlock& block) {
  static_assert(sizeof(T) == 8);
  __m512i any_mid = _mm512_setzero_si512();
  __mmask8 any_negative = 0;
  for (size_t k = 0; k < kIntBlock; k += 8) {
    __m512i u = _mm512_loadu_si512(values + k);
    if constexpr (std::is_signed_v<T>) {
      any_negative |= _mm512_cmplt_epi64_mask(u, _mm512_setzero_si512());
      u = _mm512_abs_epi64(u);  // 2^63 for INT64_MIN, read as unsigned
    }
    __m512i low, mid;
    const __m512i high = divmod_e8_x8(u, low);
    const __m512i top = divmod_e8_x8(high, mid);
    __m512i top_word = _mm512_set1_epi64(static_cast<int64_t>(detail::kAsciiZeros));
    if (_mm512_test_epi64_mask(top, top) != 0) {  // '0000' and the digits from the table
      const __m512i digits = _mm512_cvtepu32_epi64(
          _mm512_i64gather_epi32(top, reinterpret_cast<const int*>(kFourDigits.ascii), 4));
      top_word = _mm512_or_si512(_mm512_slli_epi64(digits, 32), _mm512_set1_epi64(0x30303030));
    }
    _mm512_store_si512(block.words[0] + k, top_word);
    _mm512_store_si512(block.words[1] + k, mid);
    _mm512_store_si512(block.words[2] + k, low);
    any_mid = _mm512_or_si512(any_mid, mid);
  }
  return (_mm512_test_epi64_mask(any_mid, any_mid) != 0 ? 2u : 0u) | (any_negative != 0 ? 4u : 0u);
}

template <typename T>
TRAFFICSPLIT_AVX512 inline void digit_block_avx512(const T* values, size_t n, DigitBlock& block) {
  unsigned present;
  if constexpr (sizeof(T) == 8) {
    present = n == kIntBlock ? split_chunks_x8(values, block) : split_chunks(values, n, block);
  } else {
    present = split_chunks(values, n, block);
  }
  const __m512i zeros = _mm512_set1_epi64(static_cast<int64_t>(detail::kAsciiZeros));
  for (int c = 1; c < 3; ++c) {
    auto* p = reinterpret_cast<__m512i*>(block.words[c]);
    if (c == 1 && (present & 2u) == 0) {
      for (size_t k = 0; k < n; k += 8) _mm512_store_si512(p + k / 8, zeros);
      continue;
    }
    for (size_t k = 0; k < n; k += 8) {
      const __m512i digits = eight_digit_values_x8(_mm512_load_si512(p + k / 8));
      _mm512_store_si512(p + k / 8, _mm512_add_epi64(digits, zeros));
    }
  }
  if constexpr (std::is_signed_v<T>) {
    if (present & 4u) write_signs(values, n, block);
  }
}

// mul128_fold64 in four lanes: the 128-bit product from four 32-bit multiplies, its low and
// high halves xor-ed.
TRAFFICSPLIT_AVX2 inline __m256i mul128_fold_x4(__m256i a, __m256i b) {
  // The high halves moved down by a shuffle (the multiplies read only the low halves).
  const __m256i a_high = _mm256_shuffle_epi32(a, _MM_SHUFFLE(3, 3, 1, 1));
  const __m256i b_high = _mm256_shuffle_epi32(b, _MM_SHUFFLE(3, 3, 1, 1));
  const __m256i ll = _mm256_mul_epu32(a, b);
  const __m256i lh = _mm256_mul_epu32(a, b_high);
  const __m256i hl = _mm256_mul_epu32(a_high, b);
  const __m256i hh = _mm256_mul_epu32(a_high, b_high);
  const __m256i low32 = _mm256_set1_epi64x(0xFFFFFFFF);
  const __m256i mid =
      _mm256_add_epi64(_mm256_add_epi64(_mm256_srli_epi64(ll, 32), _mm256_and_si256(lh, low32)),
                       _mm256_and_si256(hl, low32));  // below 3 * 2^32
  const __m256i low = _mm256_blend_epi32(ll, _mm256_slli_epi64(mid, 32), 0xAA);
  const __m256i high =
      _mm256_add_epi64(_mm256_add_epi64(hh, _mm256_srli_epi64(lh, 32)),
                       _mm256_add_epi64(_mm256_srli_epi64(hl, 32), _mm256_srli_epi64(mid, 32)));
  return _mm256_xor_si256(low, high);
}

// The low 64 bits of a * c in each lane, for a constant c.
TRAFFICSPLIT_AVX2 inline __m256i mul_low_x4(__m256i a, uint64_t c) {
  const __m256i c_low = _mm256_set1_epi64x(static_cast<int64_t>(c));
  const __m256i c_high = _mm256_set1_epi64x(static_cast<int64_t>(c >> 32));
  const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), c_low),
                                         _mm256_mul_epu32(a, c_high));
  return _mm256_add_epi64(_mm256_mul_epu32(a, c_low), _mm256_slli_epi64(cross, 32));
}

TRAFFICSPLIT_AVX2 inline __m256i xxh3_avalanche_x4(__m256i h) {
  h = _mm256_xor_si256(h, _mm256_srli_epi64(h, 37));
  h = mul_low_x4(h, 0x165667919E3779F9ULL);
  return _mm256_xor_si256(h, _mm256_srli_epi64(h, 32));
}

// 8 times the index of the lowest byte that is not zero, in each (non-zero) lane: the lowest set
// bit, a power of two, is exact as a double and its exponent is the bit's index.
TRAFFICSPLIT_AVX2 inline __m256i lowest_byte_shift_x4(__m256i x) {
  const __m256i bit = _mm256_and_si256(x, _mm256_sub_epi64(_mm256_setzero_si256(), x));
  const __m256i index = _mm256_sub_epi64(
      _mm256_srli_epi64(_mm256_castpd_si256(u64_to_double_x4(bit)), 52), _mm256_set1_epi64x(1023));
  return _mm256_and_si256(index, _mm256_set1_epi64x(56));
}

// xxh3_digit_words in four lanes, for rows whose text has 17 to 20 bytes (x0 = w0 ^ '0's is
// not zero: xxh3_long_text_x4), 9 to 16 (x0 zero, x1 = w1 ^ '0's not: xxh3_short_text_x4) or
// 4 to 8 (xxh3_tiny_text_x4). Variable shifts by 64 give 0, as the scalar code's split shifts
// do; lanes of another class get a value that is not their hash.
struct KeysX4 {
  __m256i mix[2][2];
  __m256i flip916[2];
  __m256i flip48;
  TRAFFICSPLIT_AVX2 explicit KeysX4(const Xxh3Keys& k)
      : flip48(_mm256_set1_epi64x(static_cast<int64_t>(k.flip48))) {
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 2; ++j) mix[i][j] = _mm256_set1_epi64x(static_cast<int64_t>(k.mix[i][j]));
      flip916[i] = _mm256_set1_epi64x(static_cast<int64_t>(k.flip916[i]));
    }
  }
};

TRAFFICSPLIT_AVX2 inline __m256i xxh3_long_text_x4(const KeysX4& k, __m256i w0, __m256i w1,
                                                   __m256i w2, __m256i x0) {
  const __m256i s = lowest_byte_shift_x4(x0);  // 32 to 56
  const __m256i t = _mm256_sub_epi64(_mm256_set1_epi64x(64), s);
  const __m256i first = _mm256_or_si256(_mm256_srlv_epi64(w0, s), _mm256_sllv_epi64(w1, t));
  const __m256i second = _mm256_or_si256(_mm256_srlv_epi64(w1, s), _mm256_sllv_epi64(w2, t));
  const __m256i len = _mm256_sub_epi64(_mm256_set1_epi64x(24), _mm256_srli_epi64(s, 3));
  __m256i acc = _mm256_add_epi64(
      _mm256_mul_epu32(len, _mm256_set1_epi64x(static_cast<int64_t>(XXH_PRIME64_1))),
      _mm256_slli_epi64(_mm256_mul_epu32(len, _mm256_set1_epi64x(XXH_PRIME64_1 >> 32)), 32));
  acc = _mm256_add_epi64(acc, mul128_fold_x4(_mm256_xor_si256(first, k.mix[0][0]),
                                             _mm256_xor_si256(second, k.mix[0][1])));
  acc = _mm256_add_epi64(
      acc, mul128_fold_x4(_mm256_xor_si256(w1, k.mix[1][0]), _mm256_xor_si256(w2, k.mix[1][1])));
  return xxh3_avalanche_x4(acc);
}

TRAFFICSPLIT_AVX2 inline __m256i xxh3_short_text_x4(const KeysX4& k, __m256i w1, __m256i w2,
                                                    __m256i x1) {
  const __m256i s = lowest_byte_shift_x4(x1);  // 0 to 56
  const __m256i t = _mm256_sub_epi64(_mm256_set1_epi64x(64), s);
  const __m256i lo = _mm256_xor_si256(
      _mm256_or_si256(_mm256_srlv_epi64(w1, s), _mm256_sllv_epi64(w2, t)), k.flip916[0]);
  const __m256i hi = _mm256_xor_si256(w2, k.flip916[1]);
  const __m256i swap = _mm256_setr_epi8(7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6,
                                        5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8);
  const __m256i len = _mm256_sub_epi64(_mm256_set1_epi64x(16), _mm256_srli_epi64(s, 3));
  const __m256i sum = _mm256_add_epi64(_mm256_add_epi64(len, _mm256_shuffle_epi8(lo, swap)),
                                       _mm256_add_epi64(hi, mul128_fold_x4(lo, hi)));
  return xxh3_avalanche_x4(sum);
}

TRAFFICSPLIT_AVX2 inline __m256i rotl_x4(__m256i x, int r) {
  return _mm256_or_si256(_mm256_slli_epi64(x, r), _mm256_srli_epi64(x, 64 - r));
}

// ... and for 4 to 8 bytes (x0 and x1 zero, x2 = w2 ^ '0's non-zero in its five low bytes).
TRAFFICSPLIT_AVX2 inline __m256i xxh3_tiny_text_x4(const KeysX4& k, __m256i w2, __m256i x2) {
  const __m256i s = lowest_byte_shift_x4(x2);  // 0 to 32
  const __m256i input = _mm256_add_epi64(
      _mm256_srli_epi64(w2, 32),
      _mm256_slli_epi64(_mm256_and_si256(_mm256_srlv_epi64(w2, s), _mm256_set1_epi64x(0xFFFFFFFF)),
                        32));
  __m256i h = _mm256_xor_si256(input, k.flip48);
  h = _mm256_xor_si256(h, _mm256_xor_si256(rotl_x4(h, 49), rotl_x4(h, 24)));
  h = mul_low_x4(h, 0x9FB21C651E98DF25ULL);
  const __m256i len = _mm256_sub_epi64(_mm256_set1_epi64x(8), _mm256_srli_epi64(s, 3));
  h = _mm256_xor_si256(h, _mm256_add_epi64(_mm256_srli_epi64(h, 35), len));
  h = mul_low_x4(h, 0x9FB21C651E98DF25ULL);
  return _mm256_xor_si256(h, _mm256_srli_epi64(h, 28));
}

// The lanes whose mask is set, as bits.
TRAFFICSPLIT_AVX2 inline unsigned lanes(__m256i mask) {
  return static_cast<unsigned>(_mm256_movemask_pd(_mm256_castsi256_pd(mask)));
}

// hash_block_words four rows per step: each group of four takes the vector code of the length
// class most of its rows have (17 to 20 bytes, 9 to 16, or 4 to 8), and its other rows are
// hashed one at a time.
TRAFFICSPLIT_AVX2 inline void hash_block_words_x4(const DigitBlock& block, size_t n,
                                                  const Xxh3Keys* const* keys, size_t count,
                                                  uint64_t* const* out) {
  const __m256i zeros = _mm256_set1_epi64x(static_cast<int64_t>(detail::kAsciiZeros));
  const __m256i zero = _mm256_setzero_si256();
  for (size_t j = 0; j < count; ++j) {
    const Xxh3Keys& k = *keys[j];
    const KeysX4 k4(k);
    uint64_t* const o = out[j];
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
      const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(block.words[0] + i));
      const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(block.words[1] + i));
      const __m256i w2 = _mm256_load_si256(reinterpret_cast<const __m256i*>(block.words[2] + i));
      const __m256i x0 = _mm256_xor_si256(w0, zeros);
      const unsigned short0 = lanes(_mm256_cmpeq_epi64(x0, zero));  // 16 bytes or fewer
      unsigned done;
      __m256i h;
      if (short0 == 0) {
        h = xxh3_long_text_x4(k4, w0, w1, w2, x0);
        done = 0xF;
      } else {
        const __m256i x1 = _mm256_xor_si256(w1, zeros);
        const __m256i x2 =
            _mm256_or_si256(_mm256_xor_si256(w2, zeros), _mm256_set1_epi64x(int64_t{1} << 56));
        const unsigned short1 = lanes(_mm256_cmpeq_epi64(x1, zero));  // 8 bytes or fewer
        const unsigned middle = short0 & ~short1;
        const unsigned tiny =
            short0 & short1 &
            ~lanes(_mm256_cmpeq_epi64(_mm256_and_si256(x2, _mm256_set1_epi64x(0xFFFFFFFFFF)),
                                      zero));  // 4 to 8 bytes
        const int long_count = __builtin_popcount(~short0 & 0xFu);
        const int middle_count = __builtin_popcount(middle);
        const int tiny_count = __builtin_popcount(tiny);
        if (middle_count >= long_count && middle_count >= tiny_count) {
          h = xxh3_short_text_x4(k4, w1, w2, x1);
          done = middle;
        } else if (long_count >= tiny_count) {
          h = xxh3_long_text_x4(k4, w0, w1, w2, x0);
          done = ~short0 & 0xFu;
        } else {
          h = xxh3_tiny_text_x4(k4, w2, x2);
          done = tiny;
        }
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + i), h);
      for (unsigned rest = ~done & 0xFu; rest != 0; rest &= rest - 1) {
        const size_t r = i + static_cast<size_t>(__builtin_ctz(rest));
        o[r] = xxh3_digit_words(k, block.words[0][r], block.words[1][r], block.words[2][r]);
      }
    }
    for (; i < n; ++i) {
      o[i] = xxh3_digit_words(k, block.words[0][i], block.words[1][i], block.words[2][i]);
    }
  }
}

template <typename T>
TRAFFICSPLIT_AVX2 void xxh3_block_avx2(const T* values, size_t n, const Xxh3Keys* const* keys,
                                       size_t count, uint64_t* const* out) {
  DigitBlock block;
  digit_block_avx2(values, n, block);
  hash_block_words_x4(block, n, keys, count, out);
}

template <typename T>
TRAFFICSPLIT_AVX512 void xxh3_block_avx512(const T* values, size_t n, const Xxh3Keys* const* keys,
                                           size_t count, uint64_t* const* out) {
  DigitBlock block;
  digit_block_avx512(values, n, block);
  hash_block_words_x4(block, n, keys, count, out);
}

// The widest vector path the CPU has: 2 for AVX-512 (F, BW, DQ), 1 for AVX2, 0 for the
// portable code (each vector path with BMI2 too). TRAFFICSPLIT_SIMD=avx2 or =none (or
// TRAFFICSPLIT_SCALAR=1) caps it; the tests run every level and compare each with the
// reference hashes.
int cpu_level() {
  static const int level = __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("avx512f") &&
                                   __builtin_cpu_supports("avx512bw") &&
                                   __builtin_cpu_supports("avx512dq")
                               ? 2
                           : __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("avx2") ? 1
                                                                                              : 0;
  return level;
}

int simd_level() {
  static const int level = [] {
    int cpu = cpu_level();
    const char* cap = std::getenv("TRAFFICSPLIT_SIMD");
    if (std::getenv("TRAFFICSPLIT_SCALAR") != nullptr) cpu = 0;
    if (cap != nullptr && std::strcmp(cap, "avx2") == 0) cpu = std::min(cpu, 1);
    if (cap != nullptr && std::strcmp(cap, "none") == 0) cpu = 0;
    return cpu;
  }();
  return level;
}
#endif

}  // namespace

template <typename T>
void digit_block(const T* values, size_t n, DigitBlock& block) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  const int level = simd_level();
  if (level == 2) return digit_block_avx512(values, n, block);
  if (level == 1) return digit_block_avx2(values, n, block);
#endif
  digit_block_portable(values, n, block);
}

template <typename T>
int xxh3_integer_block_on(int level, const T* values, size_t n, const Xxh3Keys* const* keys,
                          size_t count, uint64_t* const* out) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  level = std::min(level, cpu_level());
  if (level == 2) {
    xxh3_block_avx512(values, n, keys, count, out);
    return 2;
  }
  if (level == 1) {
    xxh3_block_avx2(values, n, keys, count, out);
    return 1;
  }
#endif
  xxh3_block_portable(values, n, keys, count, out);
  return 0;
}

template <typename T>
void xxh3_integer_block(const T* values, size_t n, const Xxh3Keys* const* keys, size_t count,
                        uint64_t* const* out) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  const int level = simd_level();
  if (level == 2) return xxh3_block_avx512(values, n, keys, count, out);
  if (level == 1) return xxh3_block_avx2(values, n, keys, count, out);
#endif
  xxh3_block_portable(values, n, keys, count, out);
}

#define TRAFFICSPLIT_INSTANTIATE(T)                                                         \
  template void digit_block(const T*, size_t, DigitBlock&);                                 \
  template void xxh3_integer_block(const T*, size_t, const Xxh3Keys* const*, size_t,        \
                                   uint64_t* const*);                                       \
  template int xxh3_integer_block_on(int, const T*, size_t, const Xxh3Keys* const*, size_t, \
                                     uint64_t* const*);
TRAFFICSPLIT_INSTANTIATE(int8_t)
TRAFFICSPLIT_INSTANTIATE(int16_t)
TRAFFICSPLIT_INSTANTIATE(int32_t)
TRAFFICSPLIT_INSTANTIATE(int64_t)
TRAFFICSPLIT_INSTANTIATE(uint8_t)
TRAFFICSPLIT_INSTANTIATE(uint16_t)
TRAFFICSPLIT_INSTANTIATE(uint32_t)
TRAFFICSPLIT_INSTANTIATE(uint64_t)
#undef TRAFFICSPLIT_INSTANTIATE

}  // namespace trafficsplit::detail

namespace trafficsplit {

const char* integer_simd_path() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  const int level = detail::simd_level();
  if (level == 2) return "avx512";
  if (level == 1) return "avx2";
#endif
  return "portable";
}

}  // namespace trafficsplit
