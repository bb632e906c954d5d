// Inline hash kernels shared by the scalar and batch paths (internal header).
#pragma once

#include <cstdint>
#include <cstring>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "trafficsplit/hashing/hash.hpp"

namespace trafficsplit::detail {

inline uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bU;
  h ^= h >> 13;
  h *= 0xc2b2ae35U;
  h ^= h >> 16;
  return h;
}

inline uint64_t xxh3_inline(const void* data, size_t len, uint64_t seed) noexcept {
  return XXH3_64bits_withSeed(data, len, seed);
}

inline uint32_t murmur3_inline(const void* data, size_t len, uint32_t seed) noexcept {
  const auto* bytes = static_cast<const uint8_t*>(data);
  const size_t nblocks = len / 4;
  uint32_t h1 = seed;
  constexpr uint32_t c1 = 0xcc9e2d51U;
  constexpr uint32_t c2 = 0x1b873593U;
  for (size_t i = 0; i < nblocks; ++i) {
    uint32_t k1;
    std::memcpy(&k1, bytes + i * 4, 4);  // the reference reads little-endian blocks
    k1 *= c1;
    k1 = rotl32(k1, 15);
    k1 *= c2;
    h1 ^= k1;
    h1 = rotl32(h1, 13);
    h1 = h1 * 5 + 0xe6546b64U;
  }
  const uint8_t* tail = bytes + nblocks * 4;
  uint32_t k1 = 0;
  switch (len & 3) {
    case 3:
      k1 ^= static_cast<uint32_t>(tail[2]) << 16;
      [[fallthrough]];
    case 2:
      k1 ^= static_cast<uint32_t>(tail[1]) << 8;
      [[fallthrough]];
    case 1:
      k1 ^= tail[0];
      k1 *= c1;
      k1 = rotl32(k1, 15);
      k1 *= c2;
      h1 ^= k1;
  }
  h1 ^= static_cast<uint32_t>(len);
  return fmix32(h1);
}

// Eight decimal digits of n < 10^8 as byte values 0..9, most significant first in memory
// (little-endian), by multiply-and-shift in one register (no division loop).
inline uint64_t eight_digit_values(uint32_t n) noexcept {
  const uint64_t merged =
      static_cast<uint64_t>(n / 10000) | (static_cast<uint64_t>(n % 10000) << 32);
  const uint64_t top = ((merged * 10486) >> 20) & ((uint64_t{0x7F} << 32) | 0x7F);  // / 100
  const uint64_t bottom = merged - 100 * top;
  const uint64_t hundreds = (bottom << 16) + top;
  uint64_t tens = (hundreds * 103) >> 10;  // / 10
  tens &= (uint64_t{0xF} << 48) | (uint64_t{0xF} << 32) | (uint64_t{0xF} << 16) | 0xF;
  tens += (hundreds - 10 * tens) << 8;
  return tens;
}

inline constexpr uint64_t kAsciiZeros = 0x3030303030303030ULL;

// Writes the decimal text of v ending at out + 24 and returns where it starts (out must
// have 25 bytes; out[0] stays free for a sign).
inline char* format_decimal_right(uint64_t v, char* out) noexcept {
  char* const end = out + 25;
  if (v < 100000000) {
    const uint64_t block = eight_digit_values(static_cast<uint32_t>(v));
    const uint64_t ascii = block + kAsciiZeros;
    std::memcpy(end - 8, &ascii, 8);
    if (v == 0) return end - 1;
    return end - 8 + (__builtin_ctzll(block) >> 3);
  }
  const uint64_t high = v / 100000000;
  const uint64_t low =
      eight_digit_values(static_cast<uint32_t>(v - high * 100000000)) + kAsciiZeros;
  std::memcpy(end - 8, &low, 8);
  if (high < 100000000) {
    const uint64_t block = eight_digit_values(static_cast<uint32_t>(high));
    const uint64_t ascii = block + kAsciiZeros;
    std::memcpy(end - 16, &ascii, 8);
    return end - 16 + (__builtin_ctzll(block) >> 3);
  }
  const uint64_t top = high / 100000000;  // at most 1844
  const uint64_t mid =
      eight_digit_values(static_cast<uint32_t>(high - top * 100000000)) + kAsciiZeros;
  std::memcpy(end - 16, &mid, 8);
  const uint64_t block = eight_digit_values(static_cast<uint32_t>(top));
  const uint64_t ascii = block + kAsciiZeros;
  std::memcpy(end - 24, &ascii, 8);
  return end - 24 + (__builtin_ctzll(block) >> 3);
}

// The decimal text of a signed value, written into out (25 bytes); returns its start.
inline char* format_decimal_right(int64_t v, char* out) noexcept {
  if (v >= 0) return format_decimal_right(static_cast<uint64_t>(v), out);
  // Negate in unsigned arithmetic so that INT64_MIN is exact.
  char* start = format_decimal_right(~static_cast<uint64_t>(v) + 1, out);
  *--start = '-';
  return start;
}

inline size_t format_decimal_inline(uint64_t v, char* out) noexcept {
  char buf[25];
  char* start = format_decimal_right(v, buf);
  const size_t n = static_cast<size_t>(buf + 25 - start);
  std::memcpy(out, start, n);
  return n;
}

inline size_t format_decimal_inline(int64_t v, char* out) noexcept {
  char buf[25];
  char* start = format_decimal_right(v, buf);
  const size_t n = static_cast<size_t>(buf + 25 - start);
  std::memcpy(out, start, n);
  return n;
}

inline uint64_t hash_inline(const Hasher& h, const char* data, size_t len) noexcept {
  if (h.algorithm() == Algorithm::xxh3) return xxh3_inline(data, len, h.seed());
  return murmur3_inline(data, len, static_cast<uint32_t>(h.seed()));
}

}  // namespace trafficsplit::detail
