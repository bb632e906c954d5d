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

}  // namespace trafficsplit
