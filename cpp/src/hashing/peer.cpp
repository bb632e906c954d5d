#include "trafficsplit/hashing/peer.hpp"

#include <cstring>
#include <string>

#include "hashing/hash_impl.hpp"
#include "trafficsplit/errors.hpp"
#include "trafficsplit/hashing/digests.hpp"

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

void KeyFunction::keys(const char* const* data, const size_t* len, size_t n, uint64_t* keys,
                       uint8_t* ok) const {
  for (size_t i = 0; i < n; ++i) ok[i] = (*this)(data[i], len[i], &keys[i]) ? 1 : 0;
}

}  // namespace trafficsplit
