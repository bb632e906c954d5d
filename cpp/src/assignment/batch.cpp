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

#include "arrow/read.hpp"
#include "assignment/route_impl.hpp"
#include "hashing/hash_impl.hpp"
#include "trafficsplit/errors.hpp"

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*, which it then reports as maybe
// uninitialised wherever they are inlined (GCC bug 105593, fixed in GCC 13): 70 false warnings.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace trafficsplit {

namespace {

// Each reader yields one row: kOk with its text, kMissing, or kBad.
enum class Row : uint8_t { kOk, kMissing, kBad };

// A row's bytes, where they already are (strings) or re-encoded in the scratch buffer.
struct Bytes {
  const char* data = nullptr;
  size_t len = 0;
};

// The decimal text of an integer as three little-endian words w[0..2] of a 24-byte buffer,
// the text being its last `len` bytes (1 to 20: up to 19 digits and a sign for int64, 20
// digits for uint64), '0' bytes before it. The hash builds its input words from these with
// shifts instead of writing the text out and loading it back across the 8-byte stores (loads
// that the store buffer cannot forward).
struct DigitText {
  uint64_t w[3];
  size_t len;
};

// The length of the text in three words: 24 bytes less the leading '0' bytes (a sign is not
// '0'); at least 1, for the value 0.
__attribute__((always_inline)) inline size_t text_length(const uint64_t (&w)[3]) noexcept {
  const uint64_t x0 = w[0] ^ detail::kAsciiZeros;
  if (x0 != 0) return 24 - (static_cast<size_t>(__builtin_ctzll(x0)) >> 3);
  const uint64_t x1 = w[1] ^ detail::kAsciiZeros;
  if (x1 != 0) return 16 - (static_cast<size_t>(__builtin_ctzll(x1)) >> 3);
  const uint64_t x2 = (w[2] ^ detail::kAsciiZeros) | (uint64_t{1} << 56);
  return 8 - (static_cast<size_t>(__builtin_ctzll(x2)) >> 3);
}

// Integers are converted kIntBlock rows ahead of hashing: split into 8-digit chunks, then the
// chunks' digits, eight per AVX-512 or four per AVX2 instruction where the CPU has them.
constexpr size_t kIntBlock = 32;

struct DigitBlock {
  alignas(64) uint64_t words[3][kIntBlock];
};

// Scratch space for rows that must be re-encoded (integers, UTF-32).
struct Scratch {
  DigitBlock digits;
  size_t block_begin = size_t{1} << 63;  // far from every row: the first read fills
  std::vector<char> buffer = std::vector<char>(64);
};

using detail::valid_bit;

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

// XXH3-64 of an integer's decimal text, read from its three words (DigitText): the input
// words that XXH3_len_* load from memory, built here with shifts. The same arithmetic as
// detail::xxh3_keyed on the written text; the tests compare the two on every length and sign.
__attribute__((always_inline)) inline uint64_t xxh3_digits(const detail::Xxh3Keys& k,
                                                           const DigitText& t) noexcept {
  const size_t len = t.len;
  const uint64_t w0 = t.w[0], w1 = t.w[1], w2 = t.w[2];
  if (len > 16) {  // 17 to 20 bytes: the text starts at byte 24 - len, in w0
    const unsigned s = static_cast<unsigned>(8 * (24 - len));  // 32 .. 56
    const uint64_t first = (w0 >> s) | (w1 << (64 - s));
    const uint64_t second = (w1 >> s) | (w2 << (64 - s));
    uint64_t acc = len * XXH_PRIME64_1;
    acc += detail::mul128_fold64(first ^ k.mix[0][0], second ^ k.mix[0][1]);
    acc += detail::mul128_fold64(w1 ^ k.mix[1][0], w2 ^ k.mix[1][1]);  // the last 16 bytes
    return detail::xxh3_avalanche(acc);
  }
  if (len > 8) {  // 9 to 16: starts at byte 16 - len of w1
    const unsigned s = static_cast<unsigned>(8 * (16 - len));  // 0 .. 56
    const uint64_t lo = ((w1 >> s) | ((w2 << (63 - s)) << 1)) ^ k.flip916[0];
    const uint64_t hi = w2 ^ k.flip916[1];
    return detail::xxh3_avalanche(len + XXH_swap64(lo) + hi + detail::mul128_fold64(lo, hi));
  }
  const unsigned s = static_cast<unsigned>(8 * (8 - len));  // in w2, from byte 8 - len
  if (len >= 4) {
    const uint64_t in = (w2 >> 32) + (((w2 >> s) & 0xFFFFFFFFULL) << 32);
    return detail::xxh3_rrmxmx(in ^ k.flip48, len);
  }
  const uint32_t c1 = static_cast<uint8_t>(w2 >> s);
  const uint32_t c2 = static_cast<uint8_t>(w2 >> (s + 8 * (len >> 1)));
  const uint32_t c3 = static_cast<uint8_t>(w2 >> 56);
  const uint32_t combined = (c1 << 16) | (c2 << 24) | c3 | (static_cast<uint32_t>(len) << 8);
  return detail::xxh64_avalanche(combined ^ k.flip13);
}

// A stage's hash with the per-seed work done once per thread (detail::Xxh3Keys).
struct RowHasher {
  explicit RowHasher(const Hasher& h)
      : xxh3(h.algorithm() == Algorithm::xxh3),
        keys(h.seed()),
        murmur_seed(static_cast<uint32_t>(h.seed())) {}
  __attribute__((always_inline)) uint64_t operator()(const Bytes& t) const noexcept {
    if (xxh3) return detail::xxh3_keyed(keys, t.data, t.len);
    return detail::murmur3_inline(t.data, t.len, murmur_seed);
  }
  __attribute__((always_inline)) uint64_t operator()(const DigitText& t) const noexcept {
    if (xxh3) return xxh3_digits(keys, t);
    char text[24];
    std::memcpy(text, t.w, 24);
    return detail::murmur3_inline(text + 24 - t.len, t.len, murmur_seed);
  }
  bool xxh3;
  detail::Xxh3Keys keys;
  uint32_t murmur_seed;
};

template <typename T>
struct IntReader {
  using Text = DigitText;
  const T* values;
  const uint8_t* missing;
  const uint8_t* validity;
  int64_t validity_offset;
  size_t length = 0;

  Row read(size_t i, DigitText& text, Scratch& scratch) const {
    if ((missing != nullptr && missing[i]) || !valid_bit(validity, validity_offset, i)) {
      return Row::kMissing;
    }
    size_t k = i - scratch.block_begin;  // wraps around for rows before the block
    if (k >= kIntBlock) {
      // Rows i .. i + kIntBlock (or the end), missing ones too (their text is never read).
      scratch.block_begin = i;
      digit_block(values + i, std::min(kIntBlock, length - i), scratch.digits);
      k = 0;
    }
    const DigitBlock& b = scratch.digits;
    text = DigitText{{b.words[0][k], b.words[1][k], b.words[2][k]}, 0};
    text.len = text_length(text.w);
    return Row::kOk;
  }
};

template <typename Offset>
struct OffsetStringReader {
  using Text = Bytes;
  const Offset* offsets;
  const char* base;
  const uint8_t* validity;
  int64_t validity_offset;

  // The string bytes of row i + kAhead are fetched while row i hashes: on inputs larger than
  // the cache this more than doubles throughput. 128 rows (4.6 KiB of UUIDs) ahead measured
  // 2 to 5 percent faster than 32.
  static constexpr size_t kAhead = 128;
  size_t length = 0;

  Row read(size_t i, Bytes& text, Scratch&) const {
    if (i + kAhead < length) __builtin_prefetch(base + offsets[i + kAhead]);
    if (!valid_bit(validity, validity_offset, i)) return Row::kMissing;
    const std::string_view s = detail::offset_string(offsets, base, i);
    text = Bytes{s.data(), s.size()};
    return Row::kOk;
  }
};

struct ViewStringReader {
  using Text = Bytes;
  const uint8_t* views;
  const char* const* buffers;
  size_t buffer_count;
  const uint8_t* validity;
  int64_t validity_offset;

  static constexpr size_t kAhead = 32;
  size_t length = 0;

  Row read(size_t i, Bytes& text, Scratch&) const {
    if (i + kAhead < length) detail::prefetch_view(views, buffers, buffer_count, i + kAhead);
    if (!valid_bit(validity, validity_offset, i)) return Row::kMissing;
    std::string_view s;
    if (!detail::view_string(views, buffers, buffer_count, i, s)) return Row::kBad;
    text = Bytes{s.data(), s.size()};
    return Row::kOk;
  }
};

struct SpanReader {
  using Text = Bytes;
  const char* const* pointers;
  const int64_t* lengths;

  Row read(size_t i, Bytes& text, Scratch&) const {
    if (lengths[i] < 0) return Row::kMissing;
    text = Bytes{pointers[i], static_cast<size_t>(lengths[i])};
    return Row::kOk;
  }
};

struct FixedBytesReader {
  using Text = Bytes;
  const char* base;
  size_t item_size;

  Row read(size_t i, Bytes& text, Scratch&) const {
    const char* data = base + i * item_size;
    size_t len = item_size;
    while (len > 0 && data[len - 1] == '\0') --len;
    text = Bytes{data, len};
    return Row::kOk;
  }
};

struct Utf32Reader {
  using Text = Bytes;
  const char* base;
  size_t item_size;

  Row read(size_t i, Bytes& text, Scratch& scratch) const {
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
    text = Bytes{out, n};
    return Row::kOk;
  }
};

struct CallbackReader {
  using Text = Bytes;
  RowReader reader;
  void* context;

  Row read(size_t i, Bytes& text, Scratch&) const {
    return reader(context, i, &text.data, &text.len) ? Row::kOk : Row::kMissing;
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

// The route's stage hashers of one thread, and each stage's bucket of a row.
struct RouteHashers {
  explicit RouteHashers(const RouteSpec* route) {
    if (route == nullptr) return;
    for (const auto& h : route->holdouts) add(h);
    if (route->layer) add(*route->layer);
  }
  void add(const RouteStage& s) {
    hashers.emplace_back(s.hasher);
    mods.emplace_back(s.buckets);
  }
  template <typename Text>
  Reason reason(const RouteSpec& route, const int64_t* at_us, int32_t step,
                const Text& text) const {
    return detail::route_reason(route, at_us, step, false,
                                [&](size_t s) { return mods[s](hashers[s](text)); });
  }
  std::vector<RowHasher> hashers;
  std::vector<FastMod> mods;
};

// Rows with their own time (`at` per row): the step, and so the map, can change on every row.
template <typename Reader, typename Mod>
void assign_range(const CompiledExperiment& e, const Reader& reader, const BatchContext& time,
                  const BatchOutput& out, size_t begin, size_t end, FirstBad& bad, Mod mod) {
  Scratch scratch;
  const RowHasher arm_hasher(e.arm_hasher());
  const RowHasher traffic_hasher(e.traffic_hasher());
  const RouteHashers route(time.route);
  const uint32_t buckets = e.buckets();
  for (size_t i = begin; i < end; ++i) {
    typename Reader::Text text;
    const Row row = reader.read(i, text, scratch);
    if (row != Row::kOk) {
      if (row == Row::kBad) bad.note(i);
      out.arm[i] = -1;
      out.bucket[i] = -1;
      out.reason[i] = static_cast<uint8_t>(Reason::missing_unit);
      continue;
    }
    const uint32_t bucket = mod(arm_hasher(text));
    out.bucket[i] = static_cast<int32_t>(bucket);
    out.arm[i] = -1;
    const int32_t step = e.step_at(time.at_us[i]);
    if (time.route != nullptr) {
      const Reason r = route.reason(*time.route, time.at_us + i, step, text);
      if (r != Reason::assigned) {
        out.reason[i] = static_cast<uint8_t>(r);
        continue;
      }
    }
    const Reason r =
        detail::experiment_reason(step >= 0, time.eligible == nullptr || time.eligible[i], [&] {
          const uint32_t threshold = e.threshold(step);
          return threshold < buckets && mod(traffic_hasher(text)) >= threshold;
        });
    if (r == Reason::assigned) out.arm[i] = e.bucket_map(step)[bucket];
    out.reason[i] = static_cast<uint8_t>(r);
  }
}

// The common case, one allocation step for every row: rows are hashed a block at a time, then
// decided, which keeps each loop's state in registers.
template <typename Reader, bool kTraffic, typename Mod>
void assign_range_fixed(const CompiledExperiment& e, const Reader& reader, const BatchContext& time,
                        const BatchOutput& out, size_t begin, size_t end, FirstBad& bad, Mod mod) {
  constexpr size_t kBlock = kIntBlock;
  Scratch scratch;
  const RowHasher arm_hasher(e.arm_hasher());
  const RowHasher traffic_hasher(e.traffic_hasher());
  const int16_t* __restrict const map = time.step >= 0 ? e.bucket_map(time.step).data() : nullptr;
  const uint32_t threshold = time.step >= 0 ? e.threshold(time.step) : 0;
  int16_t* __restrict const arm_out = out.arm;
  int32_t* __restrict const bucket_out = out.bucket;
  uint8_t* __restrict const reason_out = out.reason;
  const uint8_t* __restrict const eligible = time.eligible;
  const RouteSpec* const route_spec = time.route;
  const RouteHashers route(route_spec);
  const int64_t* const now = time.now_us ? &*time.now_us : nullptr;
  uint32_t arm_bucket[kBlock];
  uint32_t traffic_bucket[kBlock];
  Reason route_reason[kBlock];
  Row rows[kBlock];
  for (size_t b = begin; b < end; b += kBlock) {
    const size_t n = std::min(kBlock, end - b);
    bool all_ok = true;
    for (size_t k = 0; k < n; ++k) {
      typename Reader::Text text;
      rows[k] = reader.read(b + k, text, scratch);
      if (rows[k] != Row::kOk) {
        all_ok = false;
        continue;
      }
      arm_bucket[k] = mod(arm_hasher(text));
      if constexpr (kTraffic) traffic_bucket[k] = mod(traffic_hasher(text));
      if (route_spec != nullptr) route_reason[k] = route.reason(*route_spec, now, time.step, text);
    }
    if (!kTraffic && all_ok && map != nullptr && eligible == nullptr && route_spec == nullptr) {
      for (size_t k = 0; k < n; ++k) {
        bucket_out[b + k] = static_cast<int32_t>(arm_bucket[k]);
        arm_out[b + k] = map[arm_bucket[k]];
        reason_out[b + k] = static_cast<uint8_t>(Reason::assigned);
      }
      continue;
    }
    for (size_t k = 0; k < n; ++k) {
      const size_t i = b + k;
      if (rows[k] != Row::kOk) {
        if (rows[k] == Row::kBad) bad.note(i);
        arm_out[i] = -1;
        bucket_out[i] = -1;
        reason_out[i] = static_cast<uint8_t>(Reason::missing_unit);
        continue;
      }
      bucket_out[i] = static_cast<int32_t>(arm_bucket[k]);
      // detail::experiment_reason's precedence, written out: through the helper this loop
      // measured 3 to 5 percent slower at an exposure below 1.
      Reason reason = Reason::assigned;
      if (route_spec != nullptr && route_reason[k] != Reason::assigned) {
        reason = route_reason[k];
      } else if (map == nullptr) {
        reason = Reason::not_started;
      } else if (eligible != nullptr && !eligible[i]) {
        reason = Reason::targeting_miss;
      } else if (kTraffic && traffic_bucket[k] >= threshold) {
        reason = Reason::not_exposed;
      }
      arm_out[i] = reason == Reason::assigned ? map[arm_bucket[k]] : int16_t{-1};
      reason_out[i] = static_cast<uint8_t>(reason);
    }
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
  const bool traffic = time.step >= 0 && e.threshold(time.step) < e.buckets();
  parallel_ranges(n, threads, [&](size_t begin, size_t end) {
    auto fixed = [&](auto mod) {
      if (traffic) {
        assign_range_fixed<Reader, true>(e, reader, time, out, begin, end, bad, mod);
      } else {
        assign_range_fixed<Reader, false>(e, reader, time, out, begin, end, bad, mod);
      }
    };
    if (time.at_us != nullptr) {
      assign_range<Reader>(e, reader, time, out, begin, end, bad, e.modulus());
    } else if (default_buckets) {
      fixed(DefaultBucketsMod{});
    } else {
      fixed(e.modulus());
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
    const RowHasher row_hasher(hasher);
    for (size_t i = begin; i < end; ++i) {
      typename Reader::Text text;
      const Row row = reader.read(i, text, scratch);
      if (row != Row::kOk) {
        if (row == Row::kBad) bad.note(i);
        out[i] = 0;
        missing[i] = 1;
        continue;
      }
      out[i] = row_hasher(text);
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

const char* integer_simd_path() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  const int level = simd_level();
  if (level == 2) return "avx512";
  if (level == 1) return "avx2";
#endif
  return "portable";
}

namespace {

template <typename Item, typename Code>
void take_typed(const Item* table, size_t table_size, const Code* codes, size_t n, Item* out,
                unsigned threads) {
  const auto last = static_cast<int64_t>(table_size) - 1;  // the missing-unit entry
  FirstBad bad;
  parallel_ranges(n, threads, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      int64_t code = static_cast<int64_t>(codes[i]);
      if (code == -1) code = last;
      if (code < 0 || code > last || (code == last && codes[i] != -1)) {
        bad.note(i);
        code = last;
      }
      out[i] = table[code];
    }
  });
  const size_t row = bad.row.load();
  if (row != std::numeric_limits<size_t>::max()) {
    throw InvalidArgument("dictionary code " + std::to_string(static_cast<int64_t>(codes[row])) +
                          " at row " + std::to_string(row) +
                          " is out of range: the dictionary has " + std::to_string(table_size - 1) +
                          " entries (codes 0 to " + std::to_string(last - 1) + ", -1 for missing)");
  }
}

template <typename Item>
void take_items(const Item* table, size_t table_size, const void* codes, IntKind kind, size_t n,
                Item* out, unsigned threads) {
  switch (kind) {
    case IntKind::i8:
      return take_typed(table, table_size, static_cast<const int8_t*>(codes), n, out, threads);
    case IntKind::i16:
      return take_typed(table, table_size, static_cast<const int16_t*>(codes), n, out, threads);
    case IntKind::i32:
      return take_typed(table, table_size, static_cast<const int32_t*>(codes), n, out, threads);
    case IntKind::i64:
      return take_typed(table, table_size, static_cast<const int64_t*>(codes), n, out, threads);
    default:
      throw InvalidArgument("dictionary codes must be signed integers");
  }
}

}  // namespace

void take_by_codes(const void* table, size_t table_size, size_t item_size, const void* codes,
                   IntKind code_kind, size_t n, void* out, unsigned threads) {
  if (table_size == 0) throw InvalidArgument("a dictionary's result table needs its missing entry");
  switch (item_size) {
    case 1:
      return take_items(static_cast<const uint8_t*>(table), table_size, codes, code_kind, n,
                        static_cast<uint8_t*>(out), threads);
    case 2:
      return take_items(static_cast<const uint16_t*>(table), table_size, codes, code_kind, n,
                        static_cast<uint16_t*>(out), threads);
    case 4:
      return take_items(static_cast<const uint32_t*>(table), table_size, codes, code_kind, n,
                        static_cast<uint32_t*>(out), threads);
    case 8:
      return take_items(static_cast<const uint64_t*>(table), table_size, codes, code_kind, n,
                        static_cast<uint64_t*>(out), threads);
    default:
      throw InvalidArgument("dictionary results must be 1, 2, 4 or 8 bytes wide");
  }
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
