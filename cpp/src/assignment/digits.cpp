// Integer digits for the assignment kernels: 8-digit chunks, then their ASCII, four (AVX2) or
// eight (AVX-512) chunks per instruction where the CPU has them, the portable code elsewhere.
#include "assignment/digits.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#include "trafficsplit/assignment/batch.hpp"

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*, which it then reports as maybe
// uninitialised wherever they are inlined (GCC bug 105593, fixed in GCC 13): 70 false warnings.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
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

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TRAFFICSPLIT_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq")))

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

// Fills a digit block: the divisions by 10^16 and 10^8 in scalar code, the digits four
// chunks per instruction (top and middle chunks only when some row has them). The same
// words as the scalar path (checked against it in the tests), only faster.
template <typename T>
__attribute__((target("avx2"))) void digit_block_avx2(const T* values, size_t n,
                                                      DigitBlock& block) {
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
  const __m512i top =
      _mm512_and_si512(_mm512_srli_epi64(_mm512_mullo_epi32(merged, _mm512_set1_epi32(10486)), 20),
                       _mm512_set1_epi64((int64_t{0x7F} << 32) | 0x7F));
  const __m512i bottom = _mm512_sub_epi32(merged, _mm512_mullo_epi32(top, _mm512_set1_epi32(100)));
  const __m512i hundreds = _mm512_add_epi64(_mm512_slli_epi64(bottom, 16), top);
  __m512i tens = _mm512_srli_epi64(_mm512_mullo_epi16(hundreds, _mm512_set1_epi16(103)), 10);
  tens = _mm512_and_si512(tens, _mm512_set1_epi64(0x000F000F000F000FLL));
  const __m512i units = _mm512_sub_epi16(hundreds, _mm512_mullo_epi16(tens, _mm512_set1_epi16(10)));
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
TRAFFICSPLIT_AVX512 void digit_block_avx512(const T* values, size_t n, DigitBlock& block) {
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

// The widest vector digits the CPU has: 2 for AVX-512BW, 1 for AVX2, 0 for the portable code.
// TRAFFICSPLIT_SIMD=avx2 or =none (or TRAFFICSPLIT_SCALAR=1) caps it; the tests run every
// level and compare each with the reference hashes.
int simd_level() {
  static const int level = [] {
    int cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq")
                  ? 2
              : __builtin_cpu_supports("avx2") ? 1
                                               : 0;
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

template void digit_block(const int8_t*, size_t, DigitBlock&);
template void digit_block(const int16_t*, size_t, DigitBlock&);
template void digit_block(const int32_t*, size_t, DigitBlock&);
template void digit_block(const int64_t*, size_t, DigitBlock&);
template void digit_block(const uint8_t*, size_t, DigitBlock&);
template void digit_block(const uint16_t*, size_t, DigitBlock&);
template void digit_block(const uint32_t*, size_t, DigitBlock&);
template void digit_block(const uint64_t*, size_t, DigitBlock&);

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
