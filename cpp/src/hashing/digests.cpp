// MD5 (RFC 1321), SHA-1 and SHA-256 (FIPS 180-4), hand-written: no libcrypto in the wheel, and
// MD5 stays available where a FIPS-mode OpenSSL refuses it (these digests bucket units; they
// protect nothing). Inputs are short (a salt and a unit id: one or two blocks), so each digest
// streams its parts through a 64-byte block on the stack and the compression functions are
// plain loops that the compiler unrolls, keeping the round constants as immediates. Each
// compression function is one out-of-line copy: inlined at its three call sites it tripled the
// code (SHA-256: 50 KB) and ran no faster.
#include "trafficsplit/hashing/digests.hpp"

#include <cstring>

namespace trafficsplit {

namespace {

inline uint32_t rotl(uint32_t x, int n) noexcept { return (x << n) | (x >> (32 - n)); }
inline uint32_t rotr(uint32_t x, int n) noexcept { return (x >> n) | (x << (32 - n)); }

inline uint32_t load_le32(const uint8_t* p) noexcept {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
inline uint32_t load_be32(const uint8_t* p) noexcept {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}
inline void store_le32(uint8_t* p, uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void store_be32(uint8_t* p, uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

// -- MD5 (RFC 1321 §3.4) -----------------------------------------------------------------------

struct Md5 {
  static constexpr int kWords = 4;
  static constexpr bool kBigEndian = false;
  static constexpr uint32_t kInit[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};

  // K[i] = floor(|sin(i + 1)| * 2^32).
  static constexpr uint32_t kK[64] = {
      0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
      0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
      0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
      0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
      0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
      0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
      0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
      0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
      0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
      0xeb86d391};
  static constexpr int kShift[4][4] = {
      {7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

  [[gnu::noinline]] static void compress(uint32_t* state, const uint8_t* block) noexcept {
    uint32_t m[16];
    for (int i = 0; i < 16; ++i) m[i] = load_le32(block + 4 * i);
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    // One step: a = b + rotl(a + f + K[i] + m[g], s), then the registers rotate.
    auto step = [&](uint32_t f, int i, int g, int s) {
      const uint32_t t = d;
      d = c;
      c = b;
      b = b + rotl(a + f + kK[i] + m[g], s);
      a = t;
    };
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) step(d ^ (b & (c ^ d)), i, i, kShift[0][i & 3]);
#pragma GCC unroll 16
    for (int i = 16; i < 32; ++i) step(c ^ (d & (b ^ c)), i, (5 * i + 1) & 15, kShift[1][i & 3]);
#pragma GCC unroll 16
    for (int i = 32; i < 48; ++i) step(b ^ c ^ d, i, (3 * i + 5) & 15, kShift[2][i & 3]);
#pragma GCC unroll 16
    for (int i = 48; i < 64; ++i) step(c ^ (b | ~d), i, (7 * i) & 15, kShift[3][i & 3]);
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
  }
};

// -- SHA-1 (FIPS 180-4 §6.1) -------------------------------------------------------------------

struct Sha1 {
  static constexpr int kWords = 5;
  static constexpr bool kBigEndian = true;
  static constexpr uint32_t kInit[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};

  [[gnu::noinline]] static void compress(uint32_t* state, const uint8_t* block) noexcept {
    // The message schedule as a 16-word ring: W[t] = rotl(W[t-3] ^ W[t-8] ^ W[t-14] ^ W[t-16], 1).
    uint32_t w[16];
    for (int i = 0; i < 16; ++i) w[i] = load_be32(block + 4 * i);
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4];
    auto schedule = [&](int t) {
      if (t >= 16) {
        w[t & 15] = rotl(w[(t - 3) & 15] ^ w[(t - 8) & 15] ^ w[(t - 14) & 15] ^ w[t & 15], 1);
      }
      return w[t & 15];
    };
    auto step = [&](uint32_t f, uint32_t k, int t) {
      const uint32_t temp = rotl(a, 5) + f + e + k + schedule(t);
      e = d;
      d = c;
      c = rotl(b, 30);
      b = a;
      a = temp;
    };
#pragma GCC unroll 20
    for (int t = 0; t < 20; ++t) step(d ^ (b & (c ^ d)), 0x5a827999, t);
#pragma GCC unroll 20
    for (int t = 20; t < 40; ++t) step(b ^ c ^ d, 0x6ed9eba1, t);
#pragma GCC unroll 20
    for (int t = 40; t < 60; ++t) step((b & c) | (d & (b | c)), 0x8f1bbcdc, t);
#pragma GCC unroll 20
    for (int t = 60; t < 80; ++t) step(b ^ c ^ d, 0xca62c1d6, t);
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
  }
};

// -- SHA-256 (FIPS 180-4 §6.2) -----------------------------------------------------------------

struct Sha256 {
  static constexpr int kWords = 8;
  static constexpr bool kBigEndian = true;
  static constexpr uint32_t kInit[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

  // The first 32 bits of the fractional parts of the cube roots of the first 64 primes.
  static constexpr uint32_t kK[64] = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
      0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
      0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
      0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
      0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
      0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
      0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
      0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
      0xc67178f2};

  [[gnu::noinline]] static void compress(uint32_t* state, const uint8_t* block) noexcept {
    uint32_t w[16];
    for (int i = 0; i < 16; ++i) w[i] = load_be32(block + 4 * i);
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
#pragma GCC unroll 64
    for (int t = 0; t < 64; ++t) {
      if (t >= 16) {
        // The message schedule as a 16-word ring (FIPS 180-4 §6.2.2 step 1).
        const uint32_t w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
        const uint32_t s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3);
        const uint32_t s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10);
        w[t & 15] += s0 + w[(t - 7) & 15] + s1;
      }
      const uint32_t t1 =
          h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + (g ^ (e & (f ^ g))) + kK[t] + w[t & 15];
      const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) | (c & (a | b)));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
  }
};

// The Merkle-Damgard padding shared by the three: 0x80, zeros, then the message length in bits
// as a 64-bit integer in the digest's byte order, filling the last block.
template <class Digest>
void digest(const std::string_view* parts, size_t count, uint8_t* out) noexcept {
  uint32_t state[Digest::kWords];
  for (int i = 0; i < Digest::kWords; ++i) state[i] = Digest::kInit[i];
  uint8_t block[64];
  size_t used = 0;
  uint64_t total = 0;
  for (size_t part = 0; part < count; ++part) {
    const auto* p = reinterpret_cast<const uint8_t*>(parts[part].data());
    size_t n = parts[part].size();
    if (n == 0) continue;  // an empty part may have a null data pointer
    total += n;
    if (used > 0) {
      const size_t take = n < 64 - used ? n : 64 - used;
      std::memcpy(block + used, p, take);
      used += take;
      p += take;
      n -= take;
      if (used < 64) continue;
      Digest::compress(state, block);
      used = 0;
    }
    for (; n >= 64; p += 64, n -= 64) Digest::compress(state, p);
    if (n > 0) std::memcpy(block, p, n);
    used = n;
  }
  const uint64_t bits = total * 8;
  block[used++] = 0x80;
  if (used > 56) {
    std::memset(block + used, 0, 64 - used);
    Digest::compress(state, block);
    used = 0;
  }
  std::memset(block + used, 0, 56 - used);
  for (int i = 0; i < 8; ++i) {
    const int shift = Digest::kBigEndian ? 56 - 8 * i : 8 * i;
    block[56 + i] = static_cast<uint8_t>(bits >> shift);
  }
  Digest::compress(state, block);
  for (int i = 0; i < Digest::kWords; ++i) {
    if (Digest::kBigEndian) {
      store_be32(out + 4 * i, state[i]);
    } else {
      store_le32(out + 4 * i, state[i]);
    }
  }
}

}  // namespace

void md5(const std::string_view* parts, size_t count, uint8_t out[16]) noexcept {
  digest<Md5>(parts, count, out);
}

void sha1(const std::string_view* parts, size_t count, uint8_t out[20]) noexcept {
  digest<Sha1>(parts, count, out);
}

void sha256(const std::string_view* parts, size_t count, uint8_t out[32]) noexcept {
  digest<Sha256>(parts, count, out);
}

}  // namespace trafficsplit
