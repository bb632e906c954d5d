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

inline constexpr char kDigitPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

inline size_t format_decimal_inline(uint64_t v, char* out) noexcept {
  char buf[20];
  char* p = buf + 20;
  while (v >= 100) {
    const unsigned pair = static_cast<unsigned>(v % 100) * 2;
    v /= 100;
    *--p = kDigitPairs[pair + 1];
    *--p = kDigitPairs[pair];
  }
  if (v >= 10) {
    const unsigned pair = static_cast<unsigned>(v) * 2;
    *--p = kDigitPairs[pair + 1];
    *--p = kDigitPairs[pair];
  } else {
    *--p = static_cast<char>('0' + v);
  }
  const size_t n = static_cast<size_t>(buf + 20 - p);
  std::memcpy(out, p, n);
  return n;
}

inline size_t format_decimal_inline(int64_t v, char* out) noexcept {
  if (v >= 0) return format_decimal(static_cast<uint64_t>(v), out);
  out[0] = '-';
  // Negate in unsigned arithmetic so that INT64_MIN is exact.
  return 1 + format_decimal_inline(~static_cast<uint64_t>(v) + 1, out + 1);
}

inline uint64_t hash_inline(const Hasher& h, const char* data, size_t len) noexcept {
  if (h.algorithm() == Algorithm::xxh3) return xxh3_inline(data, len, h.seed());
  return murmur3_inline(data, len, static_cast<uint32_t>(h.seed()));
}

}  // namespace trafficsplit::detail
