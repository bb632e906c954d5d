// The assignment hash contract (docs/assignment-spec.md, contract "ts1").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace trafficsplit {

enum class Algorithm : uint8_t { xxh3 = 0, murmur3 = 1 };

// Parses "xxh3" / "murmur3"; throws InvalidArgument otherwise.
Algorithm parse_algorithm(std::string_view name);
const char* algorithm_name(Algorithm algorithm);

// MurmurHash3 x86_32 (Austin Appleby's public-domain reference algorithm).
uint32_t murmur3_x86_32(const void* data, size_t len, uint32_t seed) noexcept;

// XXH3-64 of bytes with a seed (the xxHash library, inlined).
uint64_t xxh3_64(const void* data, size_t len, uint64_t seed) noexcept;
uint64_t xxh3_64(const void* data, size_t len) noexcept;

// Writes the decimal text of v into out (at least 20 bytes) and returns its length.
size_t format_decimal(int64_t v, char* out) noexcept;
size_t format_decimal(uint64_t v, char* out) noexcept;

// A hash function with its seed already derived from a salt string.
class Hasher {
 public:
  Hasher() = default;
  Hasher(Algorithm algorithm, std::string_view salt);

  uint64_t operator()(const char* data, size_t len) const noexcept {
    if (algorithm_ == Algorithm::xxh3) return xxh3_64(data, len, seed_);
    return murmur3_x86_32(data, len, static_cast<uint32_t>(seed_));
  }
  Algorithm algorithm() const noexcept { return algorithm_; }
  uint64_t seed() const noexcept { return seed_; }

 private:
  Algorithm algorithm_ = Algorithm::xxh3;
  uint64_t seed_ = 0;
};

__extension__ typedef unsigned __int128 uint128;

// a % d for 64-bit a and 32-bit d > 0, by multiplication (Lemire, Kaser & Kurz 2019).
class FastMod {
 public:
  FastMod() = default;
  explicit FastMod(uint32_t d) : d_(d), m_(~static_cast<uint128>(0) / d + 1) {}
  uint32_t operator()(uint64_t a) const noexcept {
    const uint128 low = m_ * a;
    const uint128 bottom = ((low & ~uint64_t{0}) * d_) >> 64;
    const uint128 top = (low >> 64) * d_;
    return static_cast<uint32_t>((bottom + top) >> 64);
  }
  uint32_t divisor() const noexcept { return d_; }

 private:
  uint32_t d_ = 1;
  uint128 m_ = 0;
};

// The salt of one stage of an assignment: "<salt>/<stage>".
std::string stage_salt(std::string_view salt, std::string_view stage);

// The experiment salt in force for a bucket version: the salt itself for version 1,
// "<salt>#<version>" from version 2 on.
std::string versioned_salt(std::string_view salt, uint32_t bucket_version);

}  // namespace trafficsplit
