#include "trafficsplit/targeting/value.hpp"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace trafficsplit::targeting {

namespace {

bool parse_number(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  if (s.size() > 1 && s[0] == '0') return false;  // no leading zeros
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  out = v;
  return true;
}

bool valid_identifiers(std::string_view s, bool numeric_rule) {
  if (s.empty()) return false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find('.', start);
    if (end == std::string_view::npos) end = s.size();
    const std::string_view id = s.substr(start, end - start);
    if (id.empty()) return false;
    bool all_digits = true;
    for (char c : id) {
      const bool digit = c >= '0' && c <= '9';
      const bool ok = digit || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
      if (!ok) return false;
      all_digits &= digit;
    }
    if (numeric_rule && all_digits && id.size() > 1 && id[0] == '0') return false;
    start = end + 1;
    if (end == s.size()) break;
  }
  return true;
}

template <typename T>
int three_way(T a, T b) {
  return a < b ? -1 : (a > b ? 1 : 0);
}

int compare_identifier(std::string_view a, std::string_view b) {
  auto numeric = [](std::string_view s) {
    for (char c : s) {
      if (c < '0' || c > '9') return false;
    }
    return true;
  };
  const bool na = numeric(a), nb = numeric(b);
  if (na && nb) {
    if (a.size() != b.size()) return three_way(a.size(), b.size());  // no leading zeros
    return three_way(a.compare(b), 0);
  }
  if (na) return -1;  // numeric identifiers sort before alphanumeric ones
  if (nb) return 1;
  return three_way(a.compare(b), 0);
}

}  // namespace

int compare_int_real(int64_t i, double d) {
  if (d >= 9223372036854775808.0) return -1;  // 2^63: above every int64
  if (d < -9223372036854775808.0) return 1;   // below -2^63
  const double whole = std::trunc(d);
  const auto t = static_cast<int64_t>(whole);  // exact: |whole| < 2^63
  if (i != t) return i < t ? -1 : 1;
  const double fraction = d - whole;
  return fraction > 0 ? -1 : (fraction < 0 ? 1 : 0);
}

namespace {

constexpr double kTwo63 = 9223372036854775808.0;
constexpr double kTwo64 = 18446744073709551616.0;

// Integers beyond 64 bits only appear at the edges (a literal, a huge Python int), so a plain
// little-endian base-2^32 magnitude is enough.
using Limbs = std::vector<uint32_t>;

void trim(Limbs& m) {
  while (!m.empty() && m.back() == 0) m.pop_back();
}

void multiply_add(Limbs& m, uint32_t factor, uint32_t add) {
  uint64_t carry = add;
  for (uint32_t& limb : m) {
    const uint64_t x = uint64_t{limb} * factor + carry;
    limb = static_cast<uint32_t>(x);
    carry = x >> 32;
  }
  if (carry != 0) m.push_back(static_cast<uint32_t>(carry));
}

// Divides in place; returns the remainder.
uint32_t divide(Limbs& m, uint32_t divisor) {
  uint64_t rest = 0;
  for (size_t k = m.size(); k-- > 0;) {
    const uint64_t x = (rest << 32) | m[k];
    m[k] = static_cast<uint32_t>(x / divisor);
    rest = x % divisor;
  }
  trim(m);
  return static_cast<uint32_t>(rest);
}

size_t bit_length(const Limbs& m) {
  if (m.empty()) return 0;
  size_t bits = 32 * (m.size() - 1);
  for (uint32_t top = m.back(); top != 0; top >>= 1) ++bits;
  return bits;
}

bool bit(const Limbs& m, size_t k) { return (m[k / 32] >> (k % 32)) & 1; }

// The Value of sign * m: an int64 or uint64 form when it fits, else a big one.
Value integer_from_limbs(Limbs m, bool negative, std::string& canonical) {
  trim(m);
  const size_t bits = bit_length(m);
  if (bits <= 64) {
    const uint64_t u = (m.size() > 0 ? m[0] : 0) | (m.size() > 1 ? uint64_t{m[1]} << 32 : 0);
    if (!negative) return Value::of_uint(u);
    if (u <= uint64_t{1} << 63) return Value::of_int(static_cast<int64_t>(0 - u));
  }
  Value v;
  v.type = ValueType::integer;
  v.form = IntForm::big;
  // Round the magnitude to 53 bits, to nearest with ties to even: `top` holds its highest
  // 64 bits, `sticky` whether any bit below them is set.
  const size_t shift = bits - 64;
  uint64_t top = 0;
  for (size_t k = 0; k < 64; ++k) top |= uint64_t{bit(m, shift + k)} << k;
  bool sticky = false;
  for (size_t k = 0; k < shift && !sticky; ++k) sticky = bit(m, k);
  uint64_t mantissa = top >> 11;
  const uint64_t rest = top & 0x7FF;
  int direction = 0;  // sign of (magnitude - rounded)
  if (rest > 0x400 || (rest == 0x400 && (sticky || (mantissa & 1)))) {
    ++mantissa;
    direction = -1;
  } else if (rest != 0 || sticky) {
    direction = 1;
  }
  double r = std::ldexp(static_cast<double>(mantissa), static_cast<int>(shift + 11));
  if (std::isinf(r)) direction = -1;  // beyond every double
  v.real = negative ? -r : r;
  v.integer = negative ? -direction : direction;
  static const char kHex[] = "0123456789abcdef";
  canonical.clear();
  for (size_t k = (bits + 3) / 4; k-- > 0;) {
    unsigned digit = 0;
    for (size_t b = 4; b-- > 0;) {
      const size_t at = 4 * k + b;
      digit = digit * 2 + (at < bits && bit(m, at) ? 1 : 0);
    }
    canonical += kHex[digit];
  }
  v.text = canonical;
  return v;
}

Limbs limbs_from_hex(std::string_view hex, bool& ok) {
  Limbs m;
  ok = !hex.empty();
  for (char c : hex) {
    uint32_t digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<uint32_t>(c - 'A' + 10);
    } else {
      ok = false;
      return m;
    }
    multiply_add(m, 16, digit);
  }
  return m;
}

}  // namespace

bool big_integer_from_hex(std::string_view hex, bool negative, std::string& canonical, Value& out) {
  bool ok;
  Limbs m = limbs_from_hex(hex, ok);
  if (!ok) return false;
  out = integer_from_limbs(std::move(m), negative, canonical);
  return true;
}

bool big_integer_from_decimal(std::string_view digits, bool negative, std::string& canonical,
                              Value& out) {
  if (digits.empty()) return false;
  Limbs m;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    multiply_add(m, 10, static_cast<uint32_t>(c - '0'));
  }
  out = integer_from_limbs(std::move(m), negative, canonical);
  return true;
}

std::string integer_text(const Value& v) {
  if (v.form == IntForm::i64) return std::to_string(v.integer);
  if (v.form == IntForm::u64) return std::to_string(static_cast<uint64_t>(v.integer));
  bool ok;
  Limbs m = limbs_from_hex(v.text, ok);
  std::string reversed;
  trim(m);
  while (!m.empty()) {
    uint32_t chunk = divide(m, 1'000'000'000);
    for (int k = 0; k < 9 && (chunk != 0 || !m.empty()); ++k) {
      reversed += static_cast<char>('0' + chunk % 10);
      chunk /= 10;
    }
  }
  if (reversed.empty()) reversed = "0";
  if (v.real < 0) reversed += '-';
  return std::string(reversed.rbegin(), reversed.rend());
}

int compare_integers(const Value& a, const Value& b) {
  // Ranks: below -2^63, int64, uint64 above int64, above 2^64-1.
  auto rank = [](const Value& v) {
    if (v.form == IntForm::big) return v.real < 0 ? 0 : 3;
    return v.form == IntForm::i64 ? 1 : 2;
  };
  const int ra = rank(a), rb = rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  if (ra == 1) return three_way(a.integer, b.integer);
  if (ra == 2) return three_way(static_cast<uint64_t>(a.integer), static_cast<uint64_t>(b.integer));
  int c = a.text.size() != b.text.size() ? three_way(a.text.size(), b.text.size())
                                         : three_way(a.text.compare(b.text), 0);
  return ra == 0 ? -c : c;
}

int compare_integer_real(const Value& i, double d) {
  switch (i.form) {
    case IntForm::i64:
      return compare_int_real(i.integer, d);
    case IntForm::u64: {
      if (d >= kTwo64) return -1;
      if (d < kTwo63) return 1;
      return three_way(static_cast<uint64_t>(i.integer), static_cast<uint64_t>(d));  // integral
    }
    case IntForm::big:
      break;
  }
  // Rounding is monotonic and `real` is the nearest double, so only a tie needs the direction.
  if (i.real != d) return i.real < d ? -1 : 1;
  return static_cast<int>(i.integer);
}

bool integer_of_real(double d, Value& out) {
  if (!(d >= -kTwo63 && d < kTwo64) || d != std::trunc(d)) return false;
  out = d < kTwo63 ? Value::of_int(static_cast<int64_t>(d))
                   : Value::of_uint(static_cast<uint64_t>(d));
  return true;
}

bool parse_semver(std::string_view text, Version& out) {
  if (!text.empty() && text[0] == 'v') text.remove_prefix(1);
  const size_t plus = text.find('+');
  if (plus != std::string_view::npos) {
    if (!valid_identifiers(text.substr(plus + 1), false)) return false;
    text = text.substr(0, plus);
  }
  std::string_view pre;
  const size_t dash = text.find('-');
  if (dash != std::string_view::npos) {
    pre = text.substr(dash + 1);
    if (!valid_identifiers(pre, true)) return false;
    text = text.substr(0, dash);
  }
  const size_t d1 = text.find('.');
  if (d1 == std::string_view::npos) return false;
  const size_t d2 = text.find('.', d1 + 1);
  if (d2 == std::string_view::npos) return false;
  Version v;
  if (!parse_number(text.substr(0, d1), v.major) ||
      !parse_number(text.substr(d1 + 1, d2 - d1 - 1), v.minor) ||
      !parse_number(text.substr(d2 + 1), v.patch)) {
    return false;
  }
  v.pre = pre;
  out = v;
  return true;
}

int compare_semver(const Version& a, const Version& b) {
  if (a.major != b.major) return three_way(a.major, b.major);
  if (a.minor != b.minor) return three_way(a.minor, b.minor);
  if (a.patch != b.patch) return three_way(a.patch, b.patch);
  if (a.pre.empty() || b.pre.empty()) {
    if (a.pre.empty() && b.pre.empty()) return 0;
    return a.pre.empty() ? 1 : -1;  // a pre-release sorts before its release
  }
  size_t ia = 0, ib = 0;
  while (true) {
    const bool end_a = ia > a.pre.size(), end_b = ib > b.pre.size();
    if (end_a || end_b) return end_a && end_b ? 0 : (end_a ? -1 : 1);
    size_t ja = a.pre.find('.', ia), jb = b.pre.find('.', ib);
    if (ja == std::string_view::npos) ja = a.pre.size();
    if (jb == std::string_view::npos) jb = b.pre.size();
    const int c = compare_identifier(a.pre.substr(ia, ja - ia), b.pre.substr(ib, jb - ib));
    if (c != 0) return c;
    ia = ja + 1;
    ib = jb + 1;
  }
}

Truth compare_values(const Value& a, const Value& b, CompareOp op) {
  if (a.is_null() || b.is_null()) return kUnknown;
  if (a.is_number() && b.is_number()) {
    if (a.type == ValueType::integer && b.type == ValueType::integer) {
      if (a.form == IntForm::i64 && b.form == IntForm::i64) {
        return truth_of_order(three_way(a.integer, b.integer), op);
      }
      return truth_of_order(compare_integers(a, b), op);
    }
    if (a.type == ValueType::real && b.type == ValueType::real) {
      return truth_of_order(three_way(a.real, b.real), op);
    }
    // An integer against a double, exactly (no rounding of the integer to a double).
    if (a.type == ValueType::integer) return truth_of_order(compare_integer_real(a, b.real), op);
    return truth_of_order(-compare_integer_real(b, a.real), op);
  }
  if (a.type == ValueType::string && b.type == ValueType::string) {
    return truth_of_order(three_way(a.text.compare(b.text), 0), op);
  }
  if (a.type == ValueType::boolean && b.type == ValueType::boolean) {
    if (op != CompareOp::eq && op != CompareOp::ne) return kUnknown;
    return truth_of_order(a.boolean == b.boolean ? 0 : 1, op);
  }
  if (a.type == ValueType::timestamp && b.type == ValueType::timestamp) {
    const int c =
        a.integer != b.integer ? three_way(a.integer, b.integer) : three_way(a.nanos, b.nanos);
    return truth_of_order(c, op);
  }
  if (a.type == ValueType::version || b.type == ValueType::version) {
    Version va, vb;
    if (a.type == ValueType::version) {
      va = a.version;
    } else if (a.type != ValueType::string || !parse_semver(a.text, va)) {
      return kUnknown;
    }
    if (b.type == ValueType::version) {
      vb = b.version;
    } else if (b.type != ValueType::string || !parse_semver(b.text, vb)) {
      return kUnknown;
    }
    return truth_of_order(compare_semver(va, vb), op);
  }
  return kUnknown;
}

}  // namespace trafficsplit::targeting
