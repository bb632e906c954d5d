// MD5, SHA-1 and SHA-256, for the hashing modes that reproduce peers' bucketing (Eppo: MD5,
// LaunchDarkly: SHA-1, Statsig: SHA-256). They are written here rather than taken from OpenSSL
// so that the wheel does not depend on libcrypto, and so that MD5 keeps working where a
// FIPS-mode OpenSSL refuses it: bucketing uses these digests as hash functions, not for security.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace trafficsplit {

// Digests of the concatenation of `count` byte strings (no copy into one buffer). They allocate
// nothing and keep their state on the stack; parts may be empty.
void md5(const std::string_view* parts, size_t count, uint8_t out[16]) noexcept;
void sha1(const std::string_view* parts, size_t count, uint8_t out[20]) noexcept;
void sha256(const std::string_view* parts, size_t count, uint8_t out[32]) noexcept;

// MD5 of n messages prefix ‖ data[i] ‖ suffix at once (out + 16 * i: the digest of message i),
// several abreast in vector lanes where the CPU has AVX2 or AVX-512: the peer key functions'
// blocks of units. Equal to md5() of the three parts, message by message.
void md5_many(std::string_view prefix, const char* const* data, const size_t* len,
              std::string_view suffix, size_t n, uint8_t* out) noexcept;

// The same for SHA-1 (out + 20 * i) and SHA-256 (out + 32 * i): three messages abreast on the
// SHA extensions, where the CPU has them.
void sha1_many(std::string_view prefix, const char* const* data, const size_t* len,
               std::string_view suffix, size_t n, uint8_t* out) noexcept;
void sha256_many(std::string_view prefix, const char* const* data, const size_t* len,
                 std::string_view suffix, size_t n, uint8_t* out) noexcept;

namespace detail {

// The instruction paths of the digests and the peer key functions, chosen once from the CPU
// and the environment: TRAFFICSPLIT_SIMD=avx2 caps the vectors at AVX2, =portable (or =none,
// or TRAFFICSPLIT_SCALAR=1) leaves plain C++ only (no SHA extensions either).
struct HashPaths {
  bool sha = false;  // the SHA extensions (SHA-NI) for SHA-1 and SHA-256
  int simd = 0;      // 2: AVX-512 (F, BW, VL), 1: AVX2, 0: portable
};
HashPaths hash_paths() noexcept;
// What the CPU has, whatever the environment says.
HashPaths cpu_hash_paths() noexcept;
// Tests: use `paths` from now on, capped at what the CPU has; returns the paths used before.
HashPaths set_hash_paths(HashPaths paths) noexcept;
// "avx512", "avx2" or "portable", with "+sha" when the SHA extensions are used.
const char* hash_paths_name() noexcept;

}  // namespace detail

}  // namespace trafficsplit
