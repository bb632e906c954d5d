// MD5 (RFC 1321), SHA-1 and SHA-256 (FIPS 180-4), hand-written: no libcrypto in the wheel, and
// MD5 stays available where a FIPS-mode OpenSSL refuses it (these digests bucket units; they
// protect nothing). Inputs are short (a salt and a unit id: one or two blocks), so each digest
// streams its parts through a 64-byte block on the stack and the compression functions are
// plain loops that the compiler unrolls, keeping the round constants as immediates. Each
// compression function is one out-of-line copy: inlined at its three call sites it tripled the
// code (SHA-256: 50 KB) and ran no faster.
//
// Where the CPU has them, SHA-1 and SHA-256 run on the SHA extensions (one compression in a few
// dozen instructions), and md5_many runs 8 (AVX2) or 16 (AVX-512) messages abreast, one per
// 32-bit vector lane: MD5 is one long chain of dependent steps, so a single message leaves
// most of the core idle. The choice is made at run time (detail::hash_paths) so that one build
// runs on any x86-64, and the portable code stays for other CPUs and for the tests.
#include "trafficsplit/hashing/digests.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <utility>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TRAFFICSPLIT_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace trafficsplit {

namespace {

inline uint32_t rotl(uint32_t x, int n) noexcept { return (x << n) | (x >> (32 - n)); }
inline uint32_t rotr(uint32_t x, int n) noexcept { return (x >> n) | (x << (32 - n)); }

constexpr bool kLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

inline uint32_t load_le32(const uint8_t* p) noexcept {
  if constexpr (kLittleEndian) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  }
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
inline uint32_t load_be32(const uint8_t* p) noexcept {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}
inline void store_le32(uint8_t* p, uint32_t v) noexcept {
  if constexpr (kLittleEndian) {
    std::memcpy(p, &v, 4);
    return;
  }
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void store_be32(uint8_t* p, uint32_t v) noexcept {
  if constexpr (kLittleEndian) {
    v = __builtin_bswap32(v);
    std::memcpy(p, &v, 4);
    return;
  }
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

#if TRAFFICSPLIT_X86
#define TRAFFICSPLIT_SHA_NI __attribute__((target("sha,sse4.1,ssse3")))

// SHA-256 on the SHA extensions. The state lives as ABEF and CDGH (the order sha256rnds2
// wants); each group of four rounds adds the round constants to four schedule words, and the
// schedule for the next groups is built by sha256msg1/msg2 in a ring of four registers.
struct Sha256Ni {
  static constexpr int kWords = 8;
  static constexpr bool kBigEndian = true;
  static constexpr const uint32_t* kInit = Sha256::kInit;

  template <int G>
  TRAFFICSPLIT_SHA_NI static inline void group(__m128i& s0, __m128i& s1, __m128i* w) noexcept {
    __m128i msg = _mm_add_epi32(
        w[G % 4], _mm_loadu_si128(reinterpret_cast<const __m128i*>(Sha256::kK + 4 * G)));
    s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
    if constexpr (G >= 3 && G <= 14) {
      w[(G + 1) % 4] = _mm_add_epi32(w[(G + 1) % 4], _mm_alignr_epi8(w[G % 4], w[(G + 3) % 4], 4));
      w[(G + 1) % 4] = _mm_sha256msg2_epu32(w[(G + 1) % 4], w[G % 4]);
    }
    msg = _mm_shuffle_epi32(msg, 0x0E);
    s0 = _mm_sha256rnds2_epu32(s0, s1, msg);
    if constexpr (G >= 1 && G <= 12)
      w[(G + 3) % 4] = _mm_sha256msg1_epu32(w[(G + 3) % 4], w[G % 4]);
  }

  // One message's chain: the state as ABEF and CDGH, the schedule ring, the state before.
  struct Lane {
    __m128i s0, s1, abef, cdgh, w[4];
  };

  TRAFFICSPLIT_SHA_NI static inline void load(Lane& x, const uint32_t* state,
                                              const uint8_t* block) noexcept {
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    const __m128i t =
        _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state)), 0xB1);
    const __m128i u =
        _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4)), 0x1B);
    x.s0 = x.abef = _mm_alignr_epi8(t, u, 8);     // ABEF
    x.s1 = x.cdgh = _mm_blend_epi16(u, t, 0xF0);  // CDGH
    for (int i = 0; i < 4; ++i) {
      x.w[i] =
          _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * i)), swap);
    }
  }

  TRAFFICSPLIT_SHA_NI static inline void store(Lane& x, uint32_t* state) noexcept {
    const __m128i t = _mm_shuffle_epi32(_mm_add_epi32(x.s0, x.abef), 0x1B);  // FEBA
    const __m128i u = _mm_shuffle_epi32(_mm_add_epi32(x.s1, x.cdgh), 0xB1);  // DCHG
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_blend_epi16(t, u, 0xF0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), _mm_alignr_epi8(u, t, 8));
  }

  template <int... G>
  TRAFFICSPLIT_SHA_NI static inline void groups(Lane& x,
                                                std::integer_sequence<int, G...>) noexcept {
    (group<G>(x.s0, x.s1, x.w), ...);
  }

  [[gnu::noinline]] TRAFFICSPLIT_SHA_NI static void compress(uint32_t* state,
                                                             const uint8_t* block) noexcept {
    Lane x;
    load(x, state, block);
    groups(x, std::make_integer_sequence<int, 16>{});
    store(x, state);
  }

  template <int G, size_t L>
  TRAFFICSPLIT_SHA_NI static inline void each(Lane* x) noexcept {
#pragma GCC unroll 4
    for (size_t l = 0; l < L; ++l) group<G>(x[l].s0, x[l].s1, x[l].w);
  }

  // L messages' groups alternate: each chain waits on its own rounds' latency, so several
  // keep the SHA unit busy where one leaves it idle most of the time.
  template <size_t L, int... G>
  TRAFFICSPLIT_SHA_NI static inline void lanes(Lane* x, std::integer_sequence<int, G...>) noexcept {
    (each<G, L>(x), ...);
  }

  template <size_t L>
  [[gnu::noinline]] TRAFFICSPLIT_SHA_NI static void compress_lanes(
      uint32_t* const* state, const uint8_t* const* block) noexcept {
    Lane x[L];
    for (size_t l = 0; l < L; ++l) load(x[l], state[l], block[l]);
    lanes<L>(x, std::make_integer_sequence<int, 16>{});
    for (size_t l = 0; l < L; ++l) store(x[l], state[l]);
  }
};

// SHA-1 on the SHA extensions: sha1rnds4 runs four rounds, sha1nexte derives the next E from
// the A of four rounds before, sha1msg1/msg2 and a XOR extend the schedule in a ring of four.
struct Sha1Ni {
  static constexpr int kWords = 5;
  static constexpr bool kBigEndian = true;
  static constexpr const uint32_t* kInit = Sha1::kInit;

  template <int G>
  TRAFFICSPLIT_SHA_NI static inline void group(__m128i& abcd, __m128i* e, __m128i* w) noexcept {
    __m128i& in = e[G % 2];
    __m128i& out = e[(G + 1) % 2];
    if constexpr (G == 0) {
      in = _mm_add_epi32(in, w[0]);
    } else {
      in = _mm_sha1nexte_epu32(in, w[G % 4]);
    }
    out = abcd;
    if constexpr (G >= 3 && G <= 18) w[(G + 1) % 4] = _mm_sha1msg2_epu32(w[(G + 1) % 4], w[G % 4]);
    abcd = _mm_sha1rnds4_epu32(abcd, in, G / 5);
    if constexpr (G >= 1 && G <= 16) w[(G + 3) % 4] = _mm_sha1msg1_epu32(w[(G + 3) % 4], w[G % 4]);
    if constexpr (G >= 2 && G <= 17) w[(G + 2) % 4] = _mm_xor_si128(w[(G + 2) % 4], w[G % 4]);
  }

  struct Lane {
    __m128i abcd, abcd_before, e[2], e_before, w[4];
  };

  TRAFFICSPLIT_SHA_NI static inline void load(Lane& x, const uint32_t* state,
                                              const uint8_t* block) noexcept {
    const __m128i swap = _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);
    x.abcd = x.abcd_before =
        _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state)), 0x1B);
    x.e[0] = x.e_before = _mm_set_epi32(static_cast<int>(state[4]), 0, 0, 0);
    x.e[1] = _mm_setzero_si128();
    for (int i = 0; i < 4; ++i) {
      x.w[i] =
          _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * i)), swap);
    }
  }

  TRAFFICSPLIT_SHA_NI static inline void store(Lane& x, uint32_t* state) noexcept {
    // After 20 groups e[0] holds the A of four rounds before the end: the last E.
    const __m128i e = _mm_sha1nexte_epu32(x.e[0], x.e_before);
    const __m128i abcd = _mm_add_epi32(x.abcd, x.abcd_before);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_shuffle_epi32(abcd, 0x1B));
    state[4] = static_cast<uint32_t>(_mm_extract_epi32(e, 3));
  }

  template <int... G>
  TRAFFICSPLIT_SHA_NI static inline void groups(Lane& x,
                                                std::integer_sequence<int, G...>) noexcept {
    (group<G>(x.abcd, x.e, x.w), ...);
  }

  [[gnu::noinline]] TRAFFICSPLIT_SHA_NI static void compress(uint32_t* state,
                                                             const uint8_t* block) noexcept {
    Lane x;
    load(x, state, block);
    groups(x, std::make_integer_sequence<int, 20>{});
    store(x, state);
  }

  template <int G, size_t L>
  TRAFFICSPLIT_SHA_NI static inline void each(Lane* x) noexcept {
#pragma GCC unroll 4
    for (size_t l = 0; l < L; ++l) group<G>(x[l].abcd, x[l].e, x[l].w);
  }

  template <size_t L, int... G>
  TRAFFICSPLIT_SHA_NI static inline void lanes(Lane* x, std::integer_sequence<int, G...>) noexcept {
    (each<G, L>(x), ...);
  }

  template <size_t L>
  [[gnu::noinline]] TRAFFICSPLIT_SHA_NI static void compress_lanes(
      uint32_t* const* state, const uint8_t* const* block) noexcept {
    Lane x[L];
    for (size_t l = 0; l < L; ++l) load(x[l], state[l], block[l]);
    lanes<L>(x, std::make_integer_sequence<int, 20>{});
    for (size_t l = 0; l < L; ++l) store(x[l], state[l]);
  }
};
#endif

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

// -- Several MD5 messages abreast ------------------------------------------------------------

// Messages of up to this many blocks (247 bytes) go into vector lanes; longer ones one at a time.
constexpr int kLaneBlocks = 4;

// A group's messages, padded and transposed: word w of block b of lane l at (16b + w)W + l.
template <int W>
struct LaneWords {
  alignas(64) uint32_t words[kLaneBlocks * 16 * W];
  alignas(64) int32_t blocks[W];  // each lane's block count; 0 for an unused lane
};

// The MD5 of W messages at once, each lane running the RFC 1321 steps on its own words; a lane
// whose message has fewer blocks than the group's longest keeps its state past its end.
// V is a W-lane vector of uint32_t, I of int32_t (GCC vector extensions, which both GCC and
// Clang compile to the target's vector instructions).
template <class V, class I, int W>
[[gnu::always_inline]] inline void md5_lanes(const LaneWords<W>& in, int blocks,
                                             uint32_t out[4][W]) noexcept {
  V a, b, c, d;
  for (int l = 0; l < W; ++l) {
    a[l] = Md5::kInit[0], b[l] = Md5::kInit[1], c[l] = Md5::kInit[2], d[l] = Md5::kInit[3];
  }
  I count;
  std::memcpy(&count, in.blocks, sizeof count);
  for (int block = 0; block < blocks; ++block) {
    V m[16];
    std::memcpy(m, in.words + 16 * W * block, sizeof m);
    V x = a, y = b, z = c, u = d;
#pragma GCC unroll 64
    for (int i = 0; i < 64; ++i) {
      V f;
      int g;
      if (i < 16) {
        f = u ^ (y & (z ^ u)), g = i;
      } else if (i < 32) {
        f = z ^ (u & (y ^ z)), g = (5 * i + 1) & 15;
      } else if (i < 48) {
        f = y ^ z ^ u, g = (3 * i + 5) & 15;
      } else {
        f = z ^ (y | ~u), g = (7 * i) & 15;
      }
      const int shift = Md5::kShift[i >> 4][i & 3];
      V t = x + f + Md5::kK[i] + m[g];
      t = (t << shift) | (t >> (32 - shift));
      x = u;
      u = z;
      z = y;
      y = y + t;
    }
    const V keep = reinterpret_cast<V>(count > block);
    a = ((a + x) & keep) | (a & ~keep);
    b = ((b + y) & keep) | (b & ~keep);
    c = ((c + z) & keep) | (c & ~keep);
    d = ((d + u) & keep) | (d & ~keep);
  }
  std::memcpy(out[0], &a, sizeof a);
  std::memcpy(out[1], &b, sizeof b);
  std::memcpy(out[2], &c, sizeof c);
  std::memcpy(out[3], &d, sizeof d);
}

#if TRAFFICSPLIT_X86
typedef uint32_t U32x8 __attribute__((vector_size(32)));
typedef int32_t I32x8 __attribute__((vector_size(32)));
typedef uint32_t U32x16 __attribute__((vector_size(64)));
typedef int32_t I32x16 __attribute__((vector_size(64)));

__attribute__((target("avx2"))) void md5_lanes_avx2(const LaneWords<8>& in, int blocks,
                                                    uint32_t out[4][8]) noexcept {
  md5_lanes<U32x8, I32x8, 8>(in, blocks, out);
}

__attribute__((target("avx512f,avx512vl,avx512bw"))) void md5_lanes_avx512(
    const LaneWords<16>& in, int blocks, uint32_t out[4][16]) noexcept {
  md5_lanes<U32x16, I32x16, 16>(in, blocks, out);
}
#endif

[[maybe_unused]] size_t md5_blocks(size_t length) noexcept { return (length + 8) / 64 + 1; }

// The messages in lanes of W: ordered by block count so that a group's lanes end together,
// padded and transposed into LaneWords, then hashed W at a time.
template <int W, class Lanes>
void md5_many_lanes(std::string_view prefix, const char* const* data, const size_t* len,
                    std::string_view suffix, size_t n, uint8_t* out, Lanes lanes) noexcept {
  const size_t fixed = prefix.size() + suffix.size();
  // Counting sort of the messages by block count (1..kLaneBlocks); longer ones alone.
  uint16_t order[64];
  size_t starts[kLaneBlocks + 2] = {};
  for (size_t i = 0; i < n; ++i) {
    const size_t k = std::min<size_t>(md5_blocks(fixed + len[i]), kLaneBlocks + 1);
    ++starts[k];
  }
  size_t at = 0;
  for (size_t k = 0; k < kLaneBlocks + 2; ++k) {
    const size_t c = starts[k];
    starts[k] = at;
    at += c;
  }
  for (size_t i = 0; i < n; ++i) {
    const size_t k = std::min<size_t>(md5_blocks(fixed + len[i]), kLaneBlocks + 1);
    order[starts[k]++] = static_cast<uint16_t>(i);
  }
  const size_t in_lanes = starts[kLaneBlocks];  // the messages sorted before the long ones
  LaneWords<W> words;
  // A lane's message without its padding (the prefix stays from one lane to the next), and
  // room past it; the padding goes straight into the lane's words.
  uint8_t text[64 * kLaneBlocks];
  if (!prefix.empty()) std::memcpy(text, prefix.data(), prefix.size());
  uint32_t state[4][W];
  for (size_t group = 0; group < in_lanes; group += W) {
    const size_t count = std::min<size_t>(W, in_lanes - group);
    const size_t blocks = md5_blocks(fixed + len[order[group + count - 1]]);
    for (size_t l = 0; l < W; ++l) {
      uint32_t* const column = words.words + l;  // word j of the lane at column[j * W]
      size_t j = 0;
      words.blocks[l] = 0;
      if (l < count) {
        const size_t i = order[group + l];
        const size_t length = fixed + len[i];
        const size_t lane_blocks = md5_blocks(length);
        if (len[i] > 0) std::memcpy(text + prefix.size(), data[i], len[i]);
        if (!suffix.empty()) {
          std::memcpy(text + prefix.size() + len[i], suffix.data(), suffix.size());
        }
        const size_t whole = length / 4, rest = length & 3;
        for (; j < whole; ++j) column[j * W] = load_le32(text + 4 * j);
        // The message's last 0..3 bytes, then the 0x80 that starts the padding.
        uint32_t last = 0x80U << (8 * rest);
        for (size_t k = 0; k < rest; ++k) last |= uint32_t{text[4 * whole + k]} << (8 * k);
        column[j++ * W] = last;
        const size_t total = 16 * lane_blocks;
        for (; j < total - 2; ++j) column[j * W] = 0;
        const uint64_t bits = uint64_t{length} * 8;
        column[j++ * W] = static_cast<uint32_t>(bits);
        column[j++ * W] = static_cast<uint32_t>(bits >> 32);
        words.blocks[l] = static_cast<int32_t>(lane_blocks);
      }
      for (; j < 16 * blocks; ++j) column[j * W] = 0;  // past the lane's end: kept out anyway
    }
    lanes(words, static_cast<int>(blocks), state);
    for (size_t l = 0; l < count; ++l) {
      uint8_t* digest = out + 16 * order[group + l];
      for (int k = 0; k < 4; ++k) store_le32(digest + 4 * k, state[k][l]);
    }
  }
  for (size_t j = in_lanes; j < n; ++j) {
    const size_t i = order[j];
    const std::string_view parts[3] = {prefix, std::string_view(len[i] ? data[i] : "", len[i]),
                                       suffix};
    digest<Md5>(parts, 3, out + 16 * i);
  }
}

// -- Several SHA-1 or SHA-256 messages, two abreast -------------------------------------------

// prefix ‖ unit ‖ suffix padded (big-endian length) into text; its block count, or 0 when it
// needs more than kLaneBlocks blocks.
[[maybe_unused]] size_t pad_big_endian(std::string_view prefix, const char* data, size_t len,
                                       std::string_view suffix, uint8_t* text) noexcept {
  const size_t length = prefix.size() + len + suffix.size();
  const size_t blocks = md5_blocks(length);  // the same padding rule as MD5
  if (blocks > kLaneBlocks) return 0;
  if (!prefix.empty()) std::memcpy(text, prefix.data(), prefix.size());
  if (len > 0) std::memcpy(text + prefix.size(), data, len);
  if (!suffix.empty()) std::memcpy(text + prefix.size() + len, suffix.data(), suffix.size());
  const size_t end = 64 * blocks;
  text[length] = 0x80;
  std::memset(text + length + 1, 0, end - 8 - (length + 1));
  const uint64_t bits = uint64_t{length} * 8;
  for (int k = 0; k < 8; ++k) text[end - 8 + k] = static_cast<uint8_t>(bits >> (56 - 8 * k));
  return blocks;
}

int chosen_paths() noexcept;
detail::HashPaths decode(int v) noexcept;

// Messages kShaLanes at a time through Ni::compress_lanes when they have the same block count,
// else one at a time; Plain where the CPU has no SHA extensions. Three abreast measured best on
// an AMD EPYC (Zen 4) for one-block messages: SHA-256 keys 77 ns one at a time, 41 ns two
// abreast, 36 ns three, 37 ns four.
constexpr size_t kShaLanes = 3;

template <class Ni, class Plain>
void sha_many(std::string_view prefix, const char* const* data, const size_t* len,
              std::string_view suffix, size_t n, uint8_t* out) noexcept {
  constexpr size_t kSize = 4 * Plain::kWords;
  auto one = [&](size_t i, auto digest_kind) {
    const std::string_view parts[3] = {prefix, std::string_view(len[i] ? data[i] : "", len[i]),
                                       suffix};
    digest<decltype(digest_kind)>(parts, 3, out + kSize * i);
  };
  if (!decode(chosen_paths()).sha) {
    for (size_t i = 0; i < n; ++i) one(i, Plain{});
    return;
  }
#if TRAFFICSPLIT_X86
  uint8_t text[kShaLanes][64 * kLaneBlocks];
  uint32_t state[kShaLanes][Plain::kWords];
  uint32_t* states[kShaLanes];
  const uint8_t* blocks[kShaLanes];
  for (size_t l = 0; l < kShaLanes; ++l) states[l] = state[l];
  size_t i = 0;
  while (i < n) {
    size_t count = 0;
    if (i + kShaLanes <= n) {
      count = pad_big_endian(prefix, data[i], len[i], suffix, text[0]);
      for (size_t l = 1; l < kShaLanes && count > 0; ++l) {
        if (pad_big_endian(prefix, data[i + l], len[i + l], suffix, text[l]) != count) count = 0;
      }
    }
    if (count == 0) {
      one(i, Ni{});
      ++i;
      continue;
    }
    for (size_t l = 0; l < kShaLanes; ++l) {
      for (int k = 0; k < Plain::kWords; ++k) state[l][k] = Plain::kInit[k];
    }
    for (size_t b = 0; b < count; ++b) {
      for (size_t l = 0; l < kShaLanes; ++l) blocks[l] = text[l] + 64 * b;
      Ni::template compress_lanes<kShaLanes>(states, blocks);
    }
    for (size_t l = 0; l < kShaLanes; ++l) {
      for (int k = 0; k < Plain::kWords; ++k)
        store_be32(out + kSize * (i + l) + 4 * k, state[l][k]);
    }
    i += kShaLanes;
  }
#endif
}

// -- Instruction paths ---------------------------------------------------------------------------

int encode(detail::HashPaths p) noexcept { return (p.sha ? 4 : 0) | p.simd; }
detail::HashPaths decode(int v) noexcept { return {(v & 4) != 0, v & 3}; }

std::atomic<int> g_paths{-1};

int chosen_paths() noexcept {
  int v = g_paths.load(std::memory_order_relaxed);
  if (v < 0) {
    detail::HashPaths p = detail::cpu_hash_paths();
    const char* cap = std::getenv("TRAFFICSPLIT_SIMD");
    if (cap != nullptr && std::strcmp(cap, "avx2") == 0) p.simd = std::min(p.simd, 1);
    if ((cap != nullptr && (std::strcmp(cap, "portable") == 0 || std::strcmp(cap, "none") == 0)) ||
        std::getenv("TRAFFICSPLIT_SCALAR") != nullptr) {
      p = detail::HashPaths{};
    }
    v = encode(p);
    int expected = -1;
    if (!g_paths.compare_exchange_strong(expected, v, std::memory_order_relaxed)) v = expected;
  }
  return v;
}

}  // namespace

namespace detail {

HashPaths cpu_hash_paths() noexcept {
#if TRAFFICSPLIT_X86
  static const HashPaths cpu = [] {
    HashPaths p;
    unsigned a = 0, b = 0, c = 0, d = 0;
    p.sha = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1U << 29)) != 0 &&
            __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3");
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw")) {
      p.simd = 2;
    } else if (__builtin_cpu_supports("avx2")) {
      p.simd = 1;
    }
    return p;
  }();
  return cpu;
#else
  return HashPaths{};
#endif
}

HashPaths hash_paths() noexcept { return decode(chosen_paths()); }

HashPaths set_hash_paths(HashPaths paths) noexcept {
  const HashPaths cpu = cpu_hash_paths();
  paths.sha = paths.sha && cpu.sha;
  paths.simd = std::max(0, std::min(paths.simd, cpu.simd));
  const int before = chosen_paths();
  g_paths.store(encode(paths), std::memory_order_relaxed);
  return decode(before);
}

const char* hash_paths_name() noexcept {
  const HashPaths p = hash_paths();
  static const char* const kNames[2][3] = {{"portable", "avx2", "avx512"},
                                           {"portable+sha", "avx2+sha", "avx512+sha"}};
  return kNames[p.sha ? 1 : 0][p.simd];
}

}  // namespace detail

void md5(const std::string_view* parts, size_t count, uint8_t out[16]) noexcept {
  digest<Md5>(parts, count, out);
}

void sha1(const std::string_view* parts, size_t count, uint8_t out[20]) noexcept {
#if TRAFFICSPLIT_X86
  if (decode(chosen_paths()).sha) return digest<Sha1Ni>(parts, count, out);
#endif
  digest<Sha1>(parts, count, out);
}

void sha256(const std::string_view* parts, size_t count, uint8_t out[32]) noexcept {
#if TRAFFICSPLIT_X86
  if (decode(chosen_paths()).sha) return digest<Sha256Ni>(parts, count, out);
#endif
  digest<Sha256>(parts, count, out);
}

void sha1_many(std::string_view prefix, const char* const* data, const size_t* len,
               std::string_view suffix, size_t n, uint8_t* out) noexcept {
#if TRAFFICSPLIT_X86
  sha_many<Sha1Ni, Sha1>(prefix, data, len, suffix, n, out);
#else
  sha_many<Sha1, Sha1>(prefix, data, len, suffix, n, out);
#endif
}

void sha256_many(std::string_view prefix, const char* const* data, const size_t* len,
                 std::string_view suffix, size_t n, uint8_t* out) noexcept {
#if TRAFFICSPLIT_X86
  sha_many<Sha256Ni, Sha256>(prefix, data, len, suffix, n, out);
#else
  sha_many<Sha256, Sha256>(prefix, data, len, suffix, n, out);
#endif
}

void md5_many(std::string_view prefix, const char* const* data, const size_t* len,
              std::string_view suffix, size_t n, uint8_t* out) noexcept {
  for (size_t at = 0; at < n; at += 64) {
    const size_t m = std::min<size_t>(64, n - at);
#if TRAFFICSPLIT_X86
    const int simd = decode(chosen_paths()).simd;
    if (simd == 2) {
      md5_many_lanes<16>(prefix, data + at, len + at, suffix, m, out + 16 * at,
                         [](const LaneWords<16>& in, int blocks, uint32_t state[4][16]) {
                           md5_lanes_avx512(in, blocks, state);
                         });
      continue;
    }
    if (simd == 1) {
      md5_many_lanes<8>(prefix, data + at, len + at, suffix, m, out + 16 * at,
                        [](const LaneWords<8>& in, int blocks, uint32_t state[4][8]) {
                          md5_lanes_avx2(in, blocks, state);
                        });
      continue;
    }
#endif
    for (size_t i = at; i < at + m; ++i) {
      const std::string_view parts[3] = {prefix, std::string_view(len[i] ? data[i] : "", len[i]),
                                         suffix};
      digest<Md5>(parts, 3, out + 16 * i);
    }
  }
}

}  // namespace trafficsplit
