// Decimal text of integer unit ids, a block of rows at a time, and its XXH3 read straight from
// the digit words (internal header of the assignment kernels). The text is the contract's
// (docs/assignment-spec.md): an integer hashes as its decimal digits, with '-' when negative.
#pragma once

#include <cstddef>
#include <cstdint>

#include "hashing/hash_impl.hpp"

namespace trafficsplit::detail {

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
constexpr size_t kIntBlock = 64;

struct DigitBlock {
  alignas(64) uint64_t words[3][kIntBlock];
};

// Fills `block` with the text of values[0 .. n), n <= kIntBlock, on the widest vector path the
// CPU has (integer_simd_path()); every path writes the same words.
template <typename T>
void digit_block(const T* values, size_t n, DigitBlock& block);

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

// xxh3_digits of the text in three words, its length read from the '0' bytes before it: the
// lowest byte that is not '0' (a digit or the sign) starts the text, and its bit offset is the
// shift that xxh3_digits derives from the length.
__attribute__((always_inline)) inline uint64_t xxh3_digit_words(const detail::Xxh3Keys& k,
                                                                uint64_t w0, uint64_t w1,
                                                                uint64_t w2) noexcept {
  const uint64_t x0 = w0 ^ detail::kAsciiZeros;
  if (x0 != 0) {  // 17 to 20 bytes: the text starts in w0, at bit s (32 to 56)
    const unsigned s = static_cast<unsigned>(__builtin_ctzll(x0)) & 56u;
    const uint64_t first = (w0 >> s) | (w1 << (64 - s));
    const uint64_t second = (w1 >> s) | (w2 << (64 - s));
    uint64_t acc = (24 - (s >> 3)) * XXH_PRIME64_1;
    acc += detail::mul128_fold64(first ^ k.mix[0][0], second ^ k.mix[0][1]);
    acc += detail::mul128_fold64(w1 ^ k.mix[1][0], w2 ^ k.mix[1][1]);  // the last 16 bytes
    return detail::xxh3_avalanche(acc);
  }
  const uint64_t x1 = w1 ^ detail::kAsciiZeros;
  if (x1 != 0) {  // 9 to 16 bytes: starts in w1, at bit s (0 to 56)
    const unsigned s = static_cast<unsigned>(__builtin_ctzll(x1)) & 56u;
    const uint64_t lo = ((w1 >> s) | ((w2 << (63 - s)) << 1)) ^ k.flip916[0];
    const uint64_t hi = w2 ^ k.flip916[1];
    return detail::xxh3_avalanche((16 - (s >> 3)) + XXH_swap64(lo) + hi +
                                  detail::mul128_fold64(lo, hi));
  }
  const uint64_t x2 = (w2 ^ detail::kAsciiZeros) | (uint64_t{1} << 56);
  return xxh3_digits(k,
                     DigitText{{w0, w1, w2}, 8 - (static_cast<size_t>(__builtin_ctzll(x2)) >> 3)});
}

// At most this many key sets share one conversion to digits in xxh3_integer_block.
constexpr size_t kMaxIntKeys = 2;

// XXH3-64 of the decimal text of values[0 .. n), n <= kIntBlock, under each of `count` key sets
// (at most kMaxIntKeys): out[j][i] is row i's hash under keys[j]. The digits are made once for
// every key set, and digits and hashes run on the widest vector path the CPU has (the hashes
// in the scalar instructions that path's CPUs add). Every row is hashed, whatever a caller
// makes of it (a missing row's value is any integer).
template <typename T>
void xxh3_integer_block(const T* values, size_t n, const detail::Xxh3Keys* const* keys,
                        size_t count, uint64_t* const* out);

// The same on a given path: 2 AVX-512, 1 AVX2, 0 portable, capped at what the CPU has (the
// tests compare every path in one process); returns the path taken.
template <typename T>
int xxh3_integer_block_on(int level, const T* values, size_t n, const detail::Xxh3Keys* const* keys,
                          size_t count, uint64_t* const* out);

}  // namespace trafficsplit::detail
