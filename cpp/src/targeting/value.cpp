#include "trafficsplit/targeting/value.hpp"

#include <cmath>
#include <cstring>

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
      return truth_of_order(three_way(a.integer, b.integer), op);
    }
    if (a.type == ValueType::real && b.type == ValueType::real) {
      return truth_of_order(three_way(a.real, b.real), op);
    }
    // An integer against a double, exactly (no rounding of the integer to a double).
    if (a.type == ValueType::integer)
      return truth_of_order(compare_int_real(a.integer, b.real), op);
    return truth_of_order(-compare_int_real(b.integer, a.real), op);
  }
  if (a.type == ValueType::string && b.type == ValueType::string) {
    return truth_of_order(three_way(a.text.compare(b.text), 0), op);
  }
  if (a.type == ValueType::boolean && b.type == ValueType::boolean) {
    if (op != CompareOp::eq && op != CompareOp::ne) return kUnknown;
    return truth_of_order(a.boolean == b.boolean ? 0 : 1, op);
  }
  if (a.type == ValueType::timestamp && b.type == ValueType::timestamp) {
    return truth_of_order(three_way(a.integer, b.integer), op);
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
