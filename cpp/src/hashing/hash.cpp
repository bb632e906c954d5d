#include "trafficsplit/hashing/hash.hpp"

#include <cstring>

#include "hashing/hash_impl.hpp"
#include "trafficsplit/errors.hpp"

namespace trafficsplit {

Algorithm parse_algorithm(std::string_view name) {
  if (name == "xxh3") return Algorithm::xxh3;
  if (name == "murmur3") return Algorithm::murmur3;
  throw InvalidArgument("algorithm must be 'xxh3' or 'murmur3', got '" + std::string(name) + "'");
}

const char* algorithm_name(Algorithm algorithm) {
  return algorithm == Algorithm::xxh3 ? "xxh3" : "murmur3";
}

uint64_t xxh3_64(const void* data, size_t len, uint64_t seed) noexcept {
  return detail::xxh3_inline(data, len, seed);
}

uint64_t xxh3_64(const void* data, size_t len) noexcept { return XXH3_64bits(data, len); }

uint32_t murmur3_x86_32(const void* data, size_t len, uint32_t seed) noexcept {
  return detail::murmur3_inline(data, len, seed);
}

size_t format_decimal(uint64_t v, char* out) noexcept {
  return detail::format_decimal_inline(v, out);
}

size_t format_decimal(int64_t v, char* out) noexcept {
  return detail::format_decimal_inline(v, out);
}

Hasher::Hasher(Algorithm algorithm, std::string_view salt) : algorithm_(algorithm) {
  if (algorithm == Algorithm::xxh3) {
    seed_ = xxh3_64(salt.data(), salt.size());
  } else {
    seed_ = murmur3_x86_32(salt.data(), salt.size(), 0);
  }
}

std::string stage_salt(std::string_view salt, std::string_view stage) {
  std::string s(salt);
  s += '/';
  s += stage;
  return s;
}

std::string versioned_salt(std::string_view salt, uint32_t bucket_version) {
  if (bucket_version == 0) throw InvalidArgument("bucket_version must be >= 1, got 0");
  std::string s(salt);
  if (bucket_version > 1) {
    s += '#';
    s += std::to_string(bucket_version);
  }
  return s;
}

}  // namespace trafficsplit
