#include "trafficsplit/hashing/peer.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "hashing/hash_impl.hpp"
#include "trafficsplit/errors.hpp"
#include "trafficsplit/hashing/digests.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TRAFFICSPLIT_X86 1
#include <immintrin.h>
#endif

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*, which it then reports as (maybe)
// uninitialised wherever they are inlined (GCC bug 105593, fixed in GCC 13): false warnings.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace trafficsplit {

namespace {

// Calls f(code point) for each character of UTF-8 text; false on bytes that are not UTF-8
// (overlong forms, surrogates, code points beyond U+10FFFF, truncated sequences).
template <class F>
bool each_code_point(const char* text, size_t len, F&& f) {
  const auto* s = reinterpret_cast<const uint8_t*>(text);
  size_t i = 0;
  while (i < len) {
    const uint32_t b0 = s[i];
    if (b0 < 0x80) {
      f(b0);
      ++i;
      continue;
    }
    size_t extra;
    uint32_t cp, min;
    if ((b0 & 0xE0) == 0xC0) {
      extra = 1, cp = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      extra = 2, cp = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      extra = 3, cp = b0 & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (len - i <= extra) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const uint32_t b = s[i + k];
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    f(cp);
    i += extra + 1;
  }
  return true;
}

// Calls f(unit) for each UTF-16 code unit of UTF-8 text.
template <class F>
bool each_utf16_unit(const char* text, size_t len, F&& f) {
  return each_code_point(text, len, [&](uint32_t cp) {
    if (cp < 0x10000) {
      f(cp);
    } else {
      cp -= 0x10000;
      f(0xD800 + (cp >> 10));
      f(0xDC00 + (cp & 0x3FF));
    }
  });
}

struct Fnv1a {
  uint32_t h = 0x811C9DC5U;
  void add(uint32_t v) noexcept {
    h ^= v;
    h *= 0x01000193U;
  }
};

bool fnv_add(Fnv1a& fnv, TextEncoding encoding, const char* text, size_t len) {
  switch (encoding) {
    case TextEncoding::utf8:
      for (size_t i = 0; i < len; ++i) fnv.add(static_cast<uint8_t>(text[i]));
      return true;
    case TextEncoding::utf16:
      return each_utf16_unit(text, len, [&](uint32_t u) { fnv.add(u); });
    case TextEncoding::codepoints:
      return each_code_point(text, len, [&](uint32_t cp) { fnv.add(cp); });
    case TextEncoding::utf16_low_byte:
      return each_utf16_unit(text, len, [&](uint32_t u) { fnv.add(u & 0xFF); });
  }
  return false;
}

// Text in a buffer that lives on the stack for short inputs.
class Buffer {
 public:
  void append(const char* data, size_t len) {
    if (len == 0) return;  // data may be null
    if (big_.empty() && size_ + len <= sizeof(small_)) {
      std::memcpy(small_ + size_, data, len);
    } else {
      if (big_.empty()) big_.assign(small_, size_);
      big_.append(data, len);
    }
    size_ += len;
  }
  void push(char c) { append(&c, 1); }
  const char* data() const { return big_.empty() ? small_ : big_.data(); }
  size_t size() const { return size_; }

 private:
  char small_[320];
  size_t size_ = 0;
  std::string big_;
};

uint64_t read_be(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

constexpr uint32_t kFnvPrime = 0x01000193U;
constexpr uint32_t kMurmurC1 = 0xcc9e2d51U, kMurmurC2 = 0x1b873593U;

inline uint32_t load_le32(const void* p) noexcept {
  const auto* b = static_cast<const uint8_t*>(p);
  return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
}

// One 4-byte block of murmur3 x86_32's body.
inline uint32_t murmur_block(uint32_t h, uint32_t k) noexcept {
  k *= kMurmurC1;
  k = (k << 15) | (k >> 17);
  k *= kMurmurC2;
  h ^= k;
  h = (h << 13) | (h >> 19);
  return h * 5 + 0xe6546b64U;
}

__extension__ typedef unsigned __int128 Uint128;

// True when every byte is below 0x80: then each byte is a character, a UTF-16 code unit and a
// code point at once, and every encoding hashes the bytes as they are. Eight bytes at a time.
inline bool is_ascii(const char* text, size_t len) noexcept {
  uint64_t any = 0;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t word;
    std::memcpy(&word, text + i, 8);
    any |= word;
  }
  for (; i < len; ++i) any |= static_cast<uint8_t>(text[i]);
  return (any & 0x8080808080808080ULL) == 0;
}

}  // namespace

PeerHash parse_peer_hash(std::string_view name) {
  if (name == "fnv1a32") return PeerHash::fnv1a32;
  if (name == "fnv1a32-twice") return PeerHash::fnv1a32_twice;
  if (name == "murmur3") return PeerHash::murmur3;
  if (name == "md5") return PeerHash::md5;
  if (name == "sha1") return PeerHash::sha1;
  if (name == "sha256") return PeerHash::sha256;
  throw InvalidArgument("unknown peer hash '" + std::string(name) + "'");
}

TextEncoding parse_text_encoding(std::string_view name) {
  if (name == "utf8") return TextEncoding::utf8;
  if (name == "utf16") return TextEncoding::utf16;
  if (name == "codepoints") return TextEncoding::codepoints;
  if (name == "utf16-low-byte") return TextEncoding::utf16_low_byte;
  throw InvalidArgument("unknown text encoding '" + std::string(name) + "'");
}

KeyReduce parse_key_reduce(std::string_view name) {
  if (name == "none") return KeyReduce::none;
  if (name == "mod") return KeyReduce::mod;
  if (name == "mul-shift") return KeyReduce::mul_shift;
  if (name == "abs-int32") return KeyReduce::abs_int32;
  throw InvalidArgument("unknown key reduction '" + std::string(name) + "'");
}

KeyFunction::KeyFunction(KeySpec spec) : spec_(std::move(spec)) {
  const bool fnv = spec_.hash == PeerHash::fnv1a32 || spec_.hash == PeerHash::fnv1a32_twice;
  const bool murmur = spec_.hash == PeerHash::murmur3;
  const TextEncoding e = spec_.encoding;
  if (e == TextEncoding::utf16_low_byte ? !(murmur || fnv) : (e != TextEncoding::utf8 && !fnv)) {
    throw InvalidArgument("this text encoding is not available with this peer hash");
  }
  if ((spec_.reduce == KeyReduce::mod || spec_.reduce == KeyReduce::mul_shift) &&
      (spec_.modulus == 0 || spec_.modulus > (uint64_t{1} << 32))) {
    throw InvalidArgument("a key modulus must be between 1 and 2^32");
  }
  uint64_t ignored;
  if (!(*this)(nullptr, 0, &ignored)) {
    throw InvalidArgument("a peer hash's prefix and suffix must be UTF-8 text");
  }
  prepare();
}

// The prefix and suffix (valid UTF-8: the constructor checked) as keys() uses them.
void KeyFunction::prepare() {
  const KeySpec& s = spec_;
  if (s.reduce == KeyReduce::mod) fastmod_ = UINT64_MAX / s.modulus + 1;
  if (s.hash == PeerHash::fnv1a32 || s.hash == PeerHash::fnv1a32_twice) {
    Fnv1a fnv;
    fnv_add(fnv, s.encoding, s.prefix.data(), s.prefix.size());
    fnv_start_ = fnv.h;
    auto add = [&](uint32_t v) { fnv_suffix_.push_back(v); };
    const char* text = s.suffix.data();
    const size_t size = s.suffix.size();
    switch (s.encoding) {
      case TextEncoding::utf8:
        for (size_t i = 0; i < size; ++i) add(static_cast<uint8_t>(text[i]));
        break;
      case TextEncoding::utf16:
        each_utf16_unit(text, size, add);
        break;
      case TextEncoding::codepoints:
        each_code_point(text, size, add);
        break;
      case TextEncoding::utf16_low_byte:
        each_utf16_unit(text, size, [&](uint32_t u) { add(u & 0xFF); });
        break;
    }
  } else if (s.hash == PeerHash::murmur3) {
    for (int part = 0; part < 2; ++part) {
      const std::string& from = part == 0 ? s.prefix : s.suffix;
      std::string& to = part == 0 ? murmur_prefix_ : murmur_suffix_;
      if (s.encoding == TextEncoding::utf8) {
        to = from;
      } else {
        each_utf16_unit(from.data(), from.size(),
                        [&](uint32_t u) { to.push_back(static_cast<char>(u & 0xFF)); });
      }
    }
    murmur_start_ = s.seed;
    for (size_t b = 0; b + 4 <= murmur_prefix_.size(); b += 4) {
      murmur_start_ = murmur_block(murmur_start_, load_le32(murmur_prefix_.data() + b));
    }
  }
}

uint64_t KeyFunction::reduce(uint64_t h) const noexcept {
  switch (spec_.reduce) {
    case KeyReduce::none:
      return h;
    case KeyReduce::mod:
      return h % spec_.modulus;
    case KeyReduce::mul_shift:
      return (h * spec_.modulus) >> 32;
    case KeyReduce::abs_int32: {
      const auto s = static_cast<int64_t>(static_cast<int32_t>(static_cast<uint32_t>(h)));
      return static_cast<uint64_t>(s < 0 ? -s : s);
    }
  }
  return h;
}

bool KeyFunction::operator()(const char* unit, size_t len, uint64_t* key) const {
  const KeySpec& s = spec_;
  switch (s.hash) {
    case PeerHash::fnv1a32:
    case PeerHash::fnv1a32_twice: {
      Fnv1a fnv;
      if (!fnv_add(fnv, s.encoding, s.prefix.data(), s.prefix.size()) ||
          !fnv_add(fnv, s.encoding, unit, len) ||
          !fnv_add(fnv, s.encoding, s.suffix.data(), s.suffix.size())) {
        return false;
      }
      uint32_t h = fnv.h;
      if (s.hash == PeerHash::fnv1a32_twice) {
        char digits[24];
        const size_t n = format_decimal(static_cast<uint64_t>(h), digits);
        Fnv1a outer;
        for (size_t i = 0; i < n; ++i) outer.add(static_cast<uint8_t>(digits[i]));
        h = outer.h;
      }
      *key = reduce(h);
      return true;
    }
    case PeerHash::murmur3: {
      if (s.encoding == TextEncoding::utf8 && s.prefix.empty() && s.suffix.empty()) {
        *key = reduce(detail::murmur3_inline(unit, len, s.seed));
        return true;
      }
      Buffer text;
      const char* parts[3] = {s.prefix.data(), unit, s.suffix.data()};
      const size_t sizes[3] = {s.prefix.size(), len, s.suffix.size()};
      for (int p = 0; p < 3; ++p) {
        if (s.encoding == TextEncoding::utf8) {
          text.append(parts[p], sizes[p]);
        } else if (!each_utf16_unit(parts[p], sizes[p],
                                    [&](uint32_t u) { text.push(static_cast<char>(u & 0xFF)); })) {
          return false;
        }
      }
      *key = reduce(detail::murmur3_inline(text.data(), text.size(), s.seed));
      return true;
    }
    case PeerHash::md5:
    case PeerHash::sha1:
    case PeerHash::sha256: {
      const std::string_view parts[3] = {s.prefix, std::string_view(len ? unit : "", len),
                                         s.suffix};
      uint8_t out[32];
      uint64_t h;
      if (s.hash == PeerHash::md5) {
        md5(parts, 3, out);
        h = read_be(out, 4);
      } else if (s.hash == PeerHash::sha1) {
        sha1(parts, 3, out);
        h = read_be(out, 8) >> 4;
      } else {
        sha256(parts, 3, out);
        h = read_be(out, 8);
      }
      *key = reduce(h);
      return true;
    }
  }
  return false;
}

// reduce() of a 32-bit hash, the remainder by a multiplication: for h, m < 2^32 (m = 2^32
// included), h mod m = high 64 bits of (fastmod_ * h mod 2^64) * m (Lemire, Kaser and Kurz,
// "Faster remainder by direct computation", 2019); no division on the keys' path.
inline uint64_t KeyFunction::reduce32(uint32_t h) const noexcept {
  if (spec_.reduce == KeyReduce::mod) {
    const uint64_t low = fastmod_ * h;
    return static_cast<uint64_t>((static_cast<Uint128>(low) * spec_.modulus) >> 64);
  }
  return reduce(h);
}

// FNV-1a's suffix and, for GrowthBook v2, the second FNV-1a over the decimal text.
uint32_t KeyFunction::fnv_finish(uint32_t h) const noexcept {
  for (const uint32_t v : fnv_suffix_) h = (h ^ v) * kFnvPrime;
  if (spec_.hash == PeerHash::fnv1a32_twice) {
    char digits[24];
    const size_t n = detail::format_decimal_inline(static_cast<uint64_t>(h), digits);
    h = 0x811C9DC5U;
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<uint8_t>(digits[i])) * kFnvPrime;
  }
  return h;
}

#if TRAFFICSPLIT_X86
// FNV-1a over the first `bytes` bytes (a multiple of 4, none past any unit's end) of 32 units
// (AVX-512: two vectors of 16 lanes, so that two multiply chains overlap) or 16 (AVX2: two of
// 8), continuing from h[]. Each gather fetches four bytes of every lane from its own address.
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq"))) void fnv_lanes_avx512(
    const uint8_t* const* p, size_t bytes, uint32_t* h) noexcept {
  const __m512i prime = _mm512_set1_epi32(static_cast<int>(kFnvPrime));
  const __m512i low = _mm512_set1_epi32(0xFF);
  const __m512i four = _mm512_set1_epi64(4);
  __m512i at[4];
  for (int q = 0; q < 4; ++q) at[q] = _mm512_loadu_si512(p + 8 * q);
  __m512i x = _mm512_loadu_si512(h), y = _mm512_loadu_si512(h + 16);
  for (size_t i = 0; i < bytes; i += 4) {
    __m256i w[4];
    for (int q = 0; q < 4; ++q) {
      w[q] = _mm512_mask_i64gather_epi32(_mm256_setzero_si256(), 0xFF, at[q], nullptr, 1);
    }
    const __m512i wx = _mm512_inserti64x4(_mm512_zextsi256_si512(w[0]), w[1], 1);
    const __m512i wy = _mm512_inserti64x4(_mm512_zextsi256_si512(w[2]), w[3], 1);
    for (int q = 0; q < 4; ++q) at[q] = _mm512_add_epi64(at[q], four);
    for (int b = 0; b < 32; b += 8) {
      x = _mm512_mullo_epi32(_mm512_xor_si512(x, _mm512_and_si512(_mm512_srli_epi32(wx, b), low)),
                             prime);
      y = _mm512_mullo_epi32(_mm512_xor_si512(y, _mm512_and_si512(_mm512_srli_epi32(wy, b), low)),
                             prime);
    }
  }
  _mm512_storeu_si512(h, x);
  _mm512_storeu_si512(h + 16, y);
}

__attribute__((target("avx2"))) void fnv_lanes_avx2(const uint8_t* const* p, size_t bytes,
                                                    uint32_t* h) noexcept {
  const __m256i prime = _mm256_set1_epi32(static_cast<int>(kFnvPrime));
  const __m256i low = _mm256_set1_epi32(0xFF);
  const __m256i four = _mm256_set1_epi64x(4);
  __m256i at[4];
  for (int q = 0; q < 4; ++q) {
    at[q] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 4 * q));
  }
  __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h));
  __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + 8));
  for (size_t i = 0; i < bytes; i += 4) {
    __m128i w[4];
    for (int q = 0; q < 4; ++q) {
      w[q] = _mm256_mask_i64gather_epi32(_mm_setzero_si128(), static_cast<const int*>(nullptr),
                                         at[q], _mm_set1_epi32(-1), 1);
    }
    const __m256i wx = _mm256_set_m128i(w[1], w[0]);
    const __m256i wy = _mm256_set_m128i(w[3], w[2]);
    for (int q = 0; q < 4; ++q) at[q] = _mm256_add_epi64(at[q], four);
    for (int b = 0; b < 32; b += 8) {
      x = _mm256_mullo_epi32(_mm256_xor_si256(x, _mm256_and_si256(_mm256_srli_epi32(wx, b), low)),
                             prime);
      y = _mm256_mullo_epi32(_mm256_xor_si256(y, _mm256_and_si256(_mm256_srli_epi32(wy, b), low)),
                             prime);
    }
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(h), x);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + 8), y);
}
#endif

// Units whose bytes are the hash's input (UTF-8, or ASCII in any encoding) abreast: FNV-1a is
// one multiply chain per unit, so independent chains keep the multipliers busy. With AVX-512 or
// AVX2, groups of 32 or 16 units run their common whole words in vector lanes; then chains of
// four finish each unit's bytes, the suffix and (GrowthBook v2) the second FNV-1a. The units
// that need decoding go through operator().
void KeyFunction::fnv_keys(const char* const* data, const size_t* len, size_t n, uint64_t* keys,
                           uint8_t* ok) const {
  const bool bytes = spec_.encoding == TextEncoding::utf8;
  size_t fast[64];
  const uint8_t* p[64];
  size_t from[64];
  uint32_t h[64];
  size_t count = 0;
  for (size_t i = 0; i < n; ++i) {
    if (bytes || is_ascii(data[i], len[i])) {
      p[count] = reinterpret_cast<const uint8_t*>(data[i]);
      from[count] = 0;
      h[count] = fnv_start_;
      fast[count++] = i;
    } else {
      ok[i] = (*this)(data[i], len[i], &keys[i]) ? 1 : 0;
    }
  }
#if TRAFFICSPLIT_X86
  const int simd = detail::hash_paths().simd;
  if (simd > 0) {
    const size_t lanes = simd == 2 ? 32 : 16;
    for (size_t g = 0; g + lanes <= count; g += lanes) {
      size_t common = SIZE_MAX;
      for (size_t k = g; k < g + lanes; ++k) common = std::min(common, len[fast[k]]);
      common &= ~size_t{3};
      if (common < 8) continue;
      if (simd == 2) {
        fnv_lanes_avx512(p + g, common, h + g);
      } else {
        fnv_lanes_avx2(p + g, common, h + g);
      }
      for (size_t k = g; k < g + lanes; ++k) from[k] = common;
    }
  }
#endif
  constexpr size_t kChains = 4;
  size_t j = 0;
  for (; j + kChains <= count; j += kChains) {
    uint32_t* const c = h + j;
    size_t common = SIZE_MAX;
    for (size_t k = 0; k < kChains; ++k) common = std::min(common, len[fast[j + k]] - from[j + k]);
    for (size_t i = 0; i < common; ++i) {
      for (size_t k = 0; k < kChains; ++k) c[k] = (c[k] ^ p[j + k][from[j + k] + i]) * kFnvPrime;
    }
    for (size_t k = 0; k < kChains; ++k) {
      const size_t size = len[fast[j + k]];
      for (size_t i = from[j + k] + common; i < size; ++i) {
        c[k] = (c[k] ^ p[j + k][i]) * kFnvPrime;
      }
    }
    for (const uint32_t v : fnv_suffix_) {
      for (size_t k = 0; k < kChains; ++k) c[k] = (c[k] ^ v) * kFnvPrime;
    }
    if (spec_.hash == PeerHash::fnv1a32_twice) {
      // The second FNV-1a, over the decimal text, four abreast too.
      char digits[kChains][24];
      size_t count_digits[kChains];
      size_t fewest = SIZE_MAX;
      for (size_t k = 0; k < kChains; ++k) {
        count_digits[k] = detail::format_decimal_inline(static_cast<uint64_t>(c[k]), digits[k]);
        fewest = std::min(fewest, count_digits[k]);
        c[k] = 0x811C9DC5U;
      }
      for (size_t i = 0; i < fewest; ++i) {
        for (size_t k = 0; k < kChains; ++k) {
          c[k] = (c[k] ^ static_cast<uint8_t>(digits[k][i])) * kFnvPrime;
        }
      }
      for (size_t k = 0; k < kChains; ++k) {
        for (size_t i = fewest; i < count_digits[k]; ++i) {
          c[k] = (c[k] ^ static_cast<uint8_t>(digits[k][i])) * kFnvPrime;
        }
      }
    }
    for (size_t k = 0; k < kChains; ++k) {
      keys[fast[j + k]] = reduce32(c[k]);
      ok[fast[j + k]] = 1;
    }
  }
  for (; j < count; ++j) {
    uint32_t x = h[j];
    for (size_t b = from[j]; b < len[fast[j]]; ++b) x = (x ^ p[j][b]) * kFnvPrime;
    keys[fast[j]] = reduce32(fnv_finish(x));
    ok[fast[j]] = 1;
  }
}

#if TRAFFICSPLIT_X86

// murmur3's body over the first `blocks` 4-byte blocks of 32 inputs (AVX-512: two vectors of
// 16 lanes) or 16 (AVX2: two of 8), continuing from h[]; each gather fetches one block of
// every lane from its own address.
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq"))) void murmur_lanes_avx512(
    const uint8_t* const* p, size_t blocks, uint32_t* h) noexcept {
  const __m512i c1 = _mm512_set1_epi32(static_cast<int>(kMurmurC1));
  const __m512i c2 = _mm512_set1_epi32(static_cast<int>(kMurmurC2));
  const __m512i add = _mm512_set1_epi32(static_cast<int>(0xe6546b64U));
  const __m512i four = _mm512_set1_epi64(4);
  __m512i at[4];
  for (int q = 0; q < 4; ++q) at[q] = _mm512_loadu_si512(p + 8 * q);
  __m512i x[2] = {_mm512_loadu_si512(h), _mm512_loadu_si512(h + 16)};
  for (size_t b = 0; b < blocks; ++b) {
    __m256i w[4];
    for (int q = 0; q < 4; ++q) {
      w[q] = _mm512_mask_i64gather_epi32(_mm256_setzero_si256(), 0xFF, at[q], nullptr, 1);
      at[q] = _mm512_add_epi64(at[q], four);
    }
    for (int v = 0; v < 2; ++v) {
      __m512i k = _mm512_inserti64x4(_mm512_zextsi256_si512(w[2 * v]), w[2 * v + 1], 1);
      k = _mm512_mullo_epi32(_mm512_rol_epi32(_mm512_mullo_epi32(k, c1), 15), c2);
      __m512i y = _mm512_rol_epi32(_mm512_xor_si512(x[v], k), 13);
      x[v] = _mm512_add_epi32(_mm512_add_epi32(y, _mm512_slli_epi32(y, 2)), add);
    }
  }
  _mm512_storeu_si512(h, x[0]);
  _mm512_storeu_si512(h + 16, x[1]);
}

__attribute__((target("avx2"))) void murmur_lanes_avx2(const uint8_t* const* p, size_t blocks,
                                                       uint32_t* h) noexcept {
  const __m256i c1 = _mm256_set1_epi32(static_cast<int>(kMurmurC1));
  const __m256i c2 = _mm256_set1_epi32(static_cast<int>(kMurmurC2));
  const __m256i add = _mm256_set1_epi32(static_cast<int>(0xe6546b64U));
  const __m256i four = _mm256_set1_epi64x(4);
  __m256i at[4];
  for (int q = 0; q < 4; ++q) {
    at[q] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 4 * q));
  }
  __m256i x[2] = {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h)),
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + 8))};
  for (size_t b = 0; b < blocks; ++b) {
    __m128i w[4];
    for (int q = 0; q < 4; ++q) {
      w[q] = _mm256_mask_i64gather_epi32(_mm_setzero_si128(), static_cast<const int*>(nullptr),
                                         at[q], _mm_set1_epi32(-1), 1);
      at[q] = _mm256_add_epi64(at[q], four);
    }
    for (int v = 0; v < 2; ++v) {
      __m256i k = _mm256_mullo_epi32(_mm256_set_m128i(w[2 * v + 1], w[2 * v]), c1);
      k = _mm256_or_si256(_mm256_slli_epi32(k, 15), _mm256_srli_epi32(k, 17));
      k = _mm256_mullo_epi32(k, c2);
      __m256i y = _mm256_xor_si256(x[v], k);
      y = _mm256_or_si256(_mm256_slli_epi32(y, 13), _mm256_srli_epi32(y, 19));
      x[v] = _mm256_add_epi32(_mm256_add_epi32(y, _mm256_slli_epi32(y, 2)), add);
    }
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(h), x[0]);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + 8), x[1]);
}
#endif

// murmur3 of prepared prefix ‖ unit ‖ prepared suffix (the unit's bytes as they are: UTF-8,
// or ASCII whose low bytes are the bytes themselves) without copying the unit: the state after
// the prefix's whole blocks is kept (murmur_start_), the block that joins the prefix's last
// 1..3 bytes to the unit is put together, the unit's whole blocks are read where the unit is,
// and its last bytes and the suffix go through a small buffer. With AVX-512 or AVX2, groups of
// 32 or 16 units run their common whole blocks in vector lanes; the rest four abreast (the
// hash is one chain of dependent steps per unit). Other units via operator().
void KeyFunction::murmur_keys(const char* const* data, const size_t* len, size_t n, uint64_t* keys,
                              uint8_t* ok) const {
  const bool bytes = spec_.encoding == TextEncoding::utf8;
  const size_t p = murmur_prefix_.size(), r = p & 3, s = murmur_suffix_.size();
  const auto* rest = reinterpret_cast<const uint8_t*>(murmur_prefix_.data()) + (p - r);
  uint32_t rest_word = 0;  // the prefix's last r bytes, little-endian
  for (size_t q = 0; q < r; ++q) rest_word |= uint32_t{rest[q]} << (8 * q);
  constexpr size_t kTail = 64, kMax = 64;
  if (s + 8 > kTail) {  // a long suffix: one unit at a time
    for (size_t i = 0; i < n; ++i) ok[i] = (*this)(data[i], len[i], &keys[i]) ? 1 : 0;
    return;
  }
  const uint8_t* unit[kMax];  // each unit's first byte not yet hashed
  size_t left[kMax], index[kMax], blocks[kMax], from[kMax];
  bool joined[kMax];  // the prefix's last bytes are hashed (or there were none)
  uint32_t h[kMax];
#if TRAFFICSPLIT_X86
  const int simd = detail::hash_paths().simd;
#endif
  for (size_t at = 0; at < n; at += kMax) {
    const size_t m = std::min(kMax, n - at);
    size_t count = 0;
    for (size_t i = at; i < at + m; ++i) {
      if (!bytes && !is_ascii(data[i], len[i])) {
        ok[i] = (*this)(data[i], len[i], &keys[i]) ? 1 : 0;
        continue;
      }
      const auto* u = reinterpret_cast<const uint8_t*>(data[i]);
      size_t size = len[i];
      uint32_t x = murmur_start_;
      bool join = r == 0;
      if (!join && r + size >= 4) {
        // The prefix's last r bytes, then the unit's first 4 - r.
        uint32_t first = 0;
        if (size >= 4) {
          first = load_le32(u);
        } else {
          for (size_t q = 0; q < 4 - r; ++q) first |= uint32_t{u[q]} << (8 * q);
        }
        x = murmur_block(x, rest_word | first << (8 * r));
        u += 4 - r;
        size -= 4 - r;
        join = true;
      }
      unit[count] = u;
      left[count] = size;
      blocks[count] = join ? size / 4 : 0;
      joined[count] = join;
      from[count] = 0;
      h[count] = x;
      index[count] = i;
      ++count;
    }
#if TRAFFICSPLIT_X86
    if (simd > 0) {
      const size_t lanes = simd == 2 ? 32 : 16;
      for (size_t g = 0; g + lanes <= count; g += lanes) {
        size_t common = SIZE_MAX;
        for (size_t k = g; k < g + lanes; ++k) common = std::min(common, blocks[k]);
        if (common < 2) continue;
        if (simd == 2) {
          murmur_lanes_avx512(unit + g, common, h + g);
        } else {
          murmur_lanes_avx2(unit + g, common, h + g);
        }
        for (size_t k = g; k < g + lanes; ++k) from[k] = common;
      }
    }
#endif
    auto finish = [&](size_t k) {
      // The unit's last 0..3 bytes (all of it, after the prefix's last bytes, when it was too
      // short to join them), then the suffix, then murmur3's tail and finalization. Without a
      // suffix, the unit's last bytes are read where they are.
      uint8_t buffer[kTail];
      const size_t done = 4 * blocks[k];
      const uint8_t* tail = unit[k] + done;
      size_t t = left[k] - done;
      uint32_t x = h[k];
      size_t b = 0;
      if (s > 0 || !joined[k]) {
        t = 0;
        if (!joined[k]) {
          std::memcpy(buffer, rest, r);
          t = r;
        }
        if (left[k] > done) std::memcpy(buffer + t, unit[k] + done, left[k] - done);
        t += left[k] - done;
        if (s > 0) std::memcpy(buffer + t, murmur_suffix_.data(), s);
        t += s;
        tail = buffer;
        for (; b + 4 <= t; b += 4) x = murmur_block(x, load_le32(tail + b));
      }
      uint32_t k1 = 0;
      switch (t & 3) {
        case 3:
          k1 ^= static_cast<uint32_t>(tail[b + 2]) << 16;
          [[fallthrough]];
        case 2:
          k1 ^= static_cast<uint32_t>(tail[b + 1]) << 8;
          [[fallthrough]];
        case 1:
          k1 ^= tail[b];
          k1 *= kMurmurC1;
          k1 = (k1 << 15) | (k1 >> 17);
          k1 *= kMurmurC2;
          x ^= k1;
      }
      x ^= static_cast<uint32_t>(p + len[index[k]] + s);
      x ^= x >> 16;
      x *= 0x85ebca6bU;
      x ^= x >> 13;
      x *= 0xc2b2ae35U;
      x ^= x >> 16;
      keys[index[k]] = reduce32(x);
      ok[index[k]] = 1;
    };
    constexpr size_t kChains = 4;
    size_t j = 0;
    for (; j + kChains <= count; j += kChains) {
      size_t common = SIZE_MAX;
      for (size_t k = j; k < j + kChains; ++k) common = std::min(common, blocks[k] - from[k]);
      for (size_t b = 0; b < common; ++b) {
        for (size_t k = j; k < j + kChains; ++k) {
          h[k] = murmur_block(h[k], load_le32(unit[k] + 4 * (from[k] + b)));
        }
      }
      for (size_t k = j; k < j + kChains; ++k) {
        for (size_t b = from[k] + common; b < blocks[k]; ++b) {
          h[k] = murmur_block(h[k], load_le32(unit[k] + 4 * b));
        }
        finish(k);
      }
    }
    for (; j < count; ++j) {
      for (size_t b = from[j]; b < blocks[j]; ++b) {
        h[j] = murmur_block(h[j], load_le32(unit[j] + 4 * b));
      }
      finish(j);
    }
  }
}

// MD5 of a block of units in vector lanes (md5_many); the key is the first 4 bytes.
void KeyFunction::md5_keys(const char* const* data, const size_t* len, size_t n, uint64_t* keys,
                           uint8_t* ok) const {
  uint8_t digests[64 * 16];
  for (size_t at = 0; at < n; at += 64) {
    const size_t m = std::min<size_t>(64, n - at);
    md5_many(spec_.prefix, data + at, len + at, spec_.suffix, m, digests);
    for (size_t i = 0; i < m; ++i) {
      keys[at + i] = reduce32(static_cast<uint32_t>(read_be(digests + 16 * i, 4)));
      ok[at + i] = 1;
    }
  }
}

void KeyFunction::keys(const char* const* data, const size_t* len, size_t n, uint64_t* keys,
                       uint8_t* ok) const {
  switch (spec_.hash) {
    case PeerHash::fnv1a32:
    case PeerHash::fnv1a32_twice:
      for (size_t at = 0; at < n; at += 64) {
        fnv_keys(data + at, len + at, std::min<size_t>(64, n - at), keys + at, ok + at);
      }
      return;
    case PeerHash::murmur3:
      murmur_keys(data, len, n, keys, ok);
      return;
    case PeerHash::md5:
      md5_keys(data, len, n, keys, ok);
      return;
    case PeerHash::sha1:
    case PeerHash::sha256: {
      // Three digests abreast on the SHA extensions (sha1_many, sha256_many).
      const bool sha1_hash = spec_.hash == PeerHash::sha1;
      uint8_t digests[64 * 32];
      const size_t size = sha1_hash ? 20 : 32;
      for (size_t at = 0; at < n; at += 64) {
        const size_t m = std::min<size_t>(64, n - at);
        if (sha1_hash) {
          sha1_many(spec_.prefix, data + at, len + at, spec_.suffix, m, digests);
        } else {
          sha256_many(spec_.prefix, data + at, len + at, spec_.suffix, m, digests);
        }
        for (size_t i = 0; i < m; ++i) {
          const uint64_t h = read_be(digests + size * i, 8);
          keys[at + i] = reduce(sha1_hash ? h >> 4 : h);
          ok[at + i] = 1;
        }
      }
      return;
    }
  }
}

}  // namespace trafficsplit
