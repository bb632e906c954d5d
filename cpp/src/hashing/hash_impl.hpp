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

// XXH3's mixing steps, forced inline (the library leaves them to the compiler, which keeps
// them out of line in the batch loops).
#define TRAFFICSPLIT_ALWAYS_INLINE inline __attribute__((always_inline))
TRAFFICSPLIT_ALWAYS_INLINE uint64_t mul128_fold64(uint64_t a, uint64_t b) noexcept {
  const uint128 p = static_cast<uint128>(a) * b;
  return static_cast<uint64_t>(p) ^ static_cast<uint64_t>(p >> 64);
}
TRAFFICSPLIT_ALWAYS_INLINE uint64_t xxh3_avalanche(uint64_t h) noexcept {
  h ^= h >> 37;
  h *= 0x165667919E3779F9ULL;
  return h ^ (h >> 32);
}
TRAFFICSPLIT_ALWAYS_INLINE uint64_t xxh3_rrmxmx(uint64_t h, uint64_t len) noexcept {
  h ^= XXH_rotl64(h, 49) ^ XXH_rotl64(h, 24);
  h *= 0x9FB21C651E98DF25ULL;
  h ^= (h >> 35) + len;
  h *= 0x9FB21C651E98DF25ULL;
  return h ^ (h >> 28);
}
TRAFFICSPLIT_ALWAYS_INLINE uint64_t xxh64_avalanche(uint64_t h) noexcept {
  h ^= h >> 33;
  h *= XXH_PRIME64_2;
  h ^= h >> 29;
  h *= XXH_PRIME64_3;
  return h ^ (h >> 32);
}

// XXH3-64 of inputs up to 128 bytes with the seed folded into the secret once, not per row:
// the same arithmetic as the library's XXH3_len_* functions (xxhash.h, v0.8), which the batch
// kernels would otherwise reach through an out-of-line call that re-derives every key per
// row. Longer inputs go to the library. Checked against the library and the `xxhash` package
// in the tests.
struct Xxh3Keys {
  uint64_t seed = 0;
  uint64_t empty = 0;     // the whole hash of the empty input
  uint64_t flip13 = 0;    // 1 to 3 bytes
  uint64_t flip48 = 0;    // 4 to 8 bytes
  uint64_t flip916[2]{};  // 9 to 16 bytes
  uint64_t mix[8][2]{};   // 17 to 128 bytes: secret words plus and minus the seed

  Xxh3Keys() = default;
  explicit Xxh3Keys(uint64_t s) noexcept : seed(s) {
    const auto* k = XXH3_kSecret;
    empty = xxh64_avalanche(s ^ (XXH_readLE64(k + 56) ^ XXH_readLE64(k + 64)));
    flip13 = (XXH_readLE32(k) ^ XXH_readLE32(k + 4)) + s;
    const uint64_t s48 = s ^ (static_cast<uint64_t>(XXH_swap32(static_cast<uint32_t>(s))) << 32);
    flip48 = (XXH_readLE64(k + 8) ^ XXH_readLE64(k + 16)) - s48;
    flip916[0] = (XXH_readLE64(k + 24) ^ XXH_readLE64(k + 32)) + s;
    flip916[1] = (XXH_readLE64(k + 40) ^ XXH_readLE64(k + 48)) - s;
    for (int i = 0; i < 8; ++i) {
      mix[i][0] = XXH_readLE64(k + 16 * i) + s;
      mix[i][1] = XXH_readLE64(k + 16 * i + 8) - s;
    }
  }
};

inline uint64_t xxh3_mix16(const char* p, const uint64_t (&key)[2]) noexcept {
  const auto* b = reinterpret_cast<const xxh_u8*>(p);
  return mul128_fold64(XXH_readLE64(b) ^ key[0], XXH_readLE64(b + 8) ^ key[1]);
}

__attribute__((always_inline)) inline uint64_t xxh3_keyed(const Xxh3Keys& k, const char* p,
                                                          size_t len) noexcept {
  const auto* b = reinterpret_cast<const xxh_u8*>(p);
  if (len <= 16) {
    if (len > 8) {
      const uint64_t lo = XXH_readLE64(b) ^ k.flip916[0];
      const uint64_t hi = XXH_readLE64(b + len - 8) ^ k.flip916[1];
      return xxh3_avalanche(len + XXH_swap64(lo) + hi + mul128_fold64(lo, hi));
    }
    if (len >= 4) {
      const uint64_t in =
          XXH_readLE32(b + len - 4) + (static_cast<uint64_t>(XXH_readLE32(b)) << 32);
      return xxh3_rrmxmx(in ^ k.flip48, len);
    }
    if (len > 0) {
      const uint32_t combined = (static_cast<uint32_t>(b[0]) << 16) |
                                (static_cast<uint32_t>(b[len >> 1]) << 24) | b[len - 1] |
                                (static_cast<uint32_t>(len) << 8);
      return xxh64_avalanche(combined ^ k.flip13);
    }
    return k.empty;
  }
  if (len > 128) return XXH3_64bits_withSeed(p, len, k.seed);
  uint64_t acc = len * XXH_PRIME64_1;
  if (len > 32) {
    if (len > 64) {
      if (len > 96) {
        acc += xxh3_mix16(p + 48, k.mix[6]);
        acc += xxh3_mix16(p + len - 64, k.mix[7]);
      }
      acc += xxh3_mix16(p + 32, k.mix[4]);
      acc += xxh3_mix16(p + len - 48, k.mix[5]);
    }
    acc += xxh3_mix16(p + 16, k.mix[2]);
    acc += xxh3_mix16(p + len - 32, k.mix[3]);
  }
  acc += xxh3_mix16(p, k.mix[0]);
  acc += xxh3_mix16(p + len - 16, k.mix[1]);
  return xxh3_avalanche(acc);
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
