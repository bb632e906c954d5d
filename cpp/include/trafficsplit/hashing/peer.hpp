// The peers' hash functions, for the hashing modes that reproduce another system's bucketing
// (docs/assignment-spec.md, "Peer hashing modes"). Each turns a unit's text, between a prefix and
// a suffix, into an integer key; the modes' rules compare keys with cut points.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace trafficsplit {

enum class PeerHash : uint8_t {
  fnv1a32 = 0,        // FNV-1a 32 over the encoded text
  fnv1a32_twice = 1,  // FNV-1a 32 of the decimal text of FNV-1a 32 (GrowthBook v2)
  murmur3 = 2,        // MurmurHash3 x86_32 with a seed
  md5 = 3,            // the first 4 bytes of MD5, big-endian
  sha1 = 4,           // the first 60 bits (15 hex digits) of SHA-1
  sha256 = 5,         // the first 8 bytes of SHA-256, big-endian
};

// How text becomes the hash's input.
enum class TextEncoding : uint8_t {
  utf8 = 0,            // UTF-8 bytes
  utf16 = 1,           // UTF-16 code units (FNV: each unit XORed whole, as JavaScript's charCodeAt)
  codepoints = 2,      // Unicode code points (FNV: each XORed whole, as Python's ord)
  utf16_low_byte = 3,  // the low byte of each UTF-16 code unit (JavaScript murmurhash3js)
};

// What is done with the hash: nothing, `h mod m`, `(h * m) >> 32` (a 32-bit h), or the
// absolute value of h read as a signed 32-bit integer.
enum class KeyReduce : uint8_t { none = 0, mod = 1, mul_shift = 2, abs_int32 = 3 };

struct KeySpec {
  PeerHash hash = PeerHash::fnv1a32;
  TextEncoding encoding = TextEncoding::utf8;
  std::string prefix, suffix;
  uint32_t seed = 0;  // murmur3 only
  KeyReduce reduce = KeyReduce::none;
  uint64_t modulus = 1;  // mod and mul_shift
};

PeerHash parse_peer_hash(std::string_view name);
TextEncoding parse_text_encoding(std::string_view name);
KeyReduce parse_key_reduce(std::string_view name);

// A key function: thread-safe, allocates only for texts longer than a few hundred bytes.
class KeyFunction {
 public:
  KeyFunction() = default;
  explicit KeyFunction(KeySpec spec);

  // The key of `prefix ‖ unit ‖ suffix`. False when the unit's bytes are not valid UTF-8 and
  // the encoding needs characters (every encoding but utf8).
  bool operator()(const char* unit, size_t len, uint64_t* key) const;

  // The keys of n units at once (the batch kernels' blocks): keys[i] of data[i] (len[i]
  // bytes), ok[i] = 0 where operator() would return false. Equal to operator() unit by unit;
  // faster: FNV-1a several units abreast, ASCII units hashed as bytes without decoding, MD5 in
  // vector lanes (md5_many), the prefix's FNV state computed once.
  void keys(const char* const* data, const size_t* len, size_t n, uint64_t* keys,
            uint8_t* ok) const;

  const KeySpec& spec() const noexcept { return spec_; }

 private:
  uint64_t reduce(uint64_t h) const noexcept;
  void prepare();
  uint64_t reduce32(uint32_t h) const noexcept;
  uint32_t fnv_finish(uint32_t h) const noexcept;
  void fnv_keys(const char* const* data, const size_t* len, size_t n, uint64_t* keys,
                uint8_t* ok) const;
  void murmur_keys(const char* const* data, const size_t* len, size_t n, uint64_t* keys,
                   uint8_t* ok) const;
  void md5_keys(const char* const* data, const size_t* len, size_t n, uint64_t* keys,
                uint8_t* ok) const;

  KeySpec spec_;
  // For keys(), made once by the constructor. FNV: the state after the encoded prefix and the
  // suffix's encoded values. murmur3: the prefix and suffix as the hash reads them (UTF-8 or
  // the low bytes), between which an ASCII unit's bytes are read as they are.
  uint64_t fastmod_ = 0;  // mod of a 32-bit hash: floor((2^64 - 1) / modulus) + 1 (Lemire)
  uint32_t fnv_start_ = 0;
  std::vector<uint32_t> fnv_suffix_;
  std::string murmur_prefix_, murmur_suffix_;
  uint32_t murmur_start_ = 0;  // murmur3's state after the prefix's whole 4-byte blocks
};

}  // namespace trafficsplit
