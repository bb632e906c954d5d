// Values seen by targeting expressions, and the comparisons between them
// (docs/targeting.md, "Values and types").
#pragma once

#include <cstdint>
#include <string_view>

namespace trafficsplit::targeting {

// Kleene truth values, ordered so that `and` is min, `or` is max and `not` is 2 - x.
enum Truth : uint8_t { kFalse = 0, kUnknown = 1, kTrue = 2 };

inline Truth truth_and(Truth a, Truth b) { return a < b ? a : b; }
inline Truth truth_or(Truth a, Truth b) { return a > b ? a : b; }
inline Truth truth_not(Truth a) { return static_cast<Truth>(2 - a); }

// A semantic version; `pre` points into the text it was parsed from.
struct Version {
  uint64_t major = 0, minor = 0, patch = 0;
  std::string_view pre;  // empty: a release
};

// Parses semver.org 2.0.0 with an optional leading 'v'; false when invalid.
bool parse_semver(std::string_view text, Version& out);
// Precedence per semver.org §11: -1, 0 or 1. Build metadata is ignored.
int compare_semver(const Version& a, const Version& b);

enum class ValueType : uint8_t { null, boolean, integer, real, string, timestamp, version, other };

struct Value {
  ValueType type = ValueType::null;
  bool boolean = false;
  int64_t integer = 0;  // also timestamps, in nanoseconds since the Unix epoch (UTC)
  double real = 0.0;
  std::string_view text;
  Version version;

  static Value null() { return {}; }
  static Value of_bool(bool b) {
    Value v;
    v.type = ValueType::boolean;
    v.boolean = b;
    return v;
  }
  static Value of_int(int64_t i) {
    Value v;
    v.type = ValueType::integer;
    v.integer = i;
    return v;
  }
  // NaN is null.
  static Value of_real(double d) {
    Value v;
    if (d != d) return v;
    v.type = ValueType::real;
    v.real = d;
    return v;
  }
  static Value of_string(std::string_view s) {
    Value v;
    v.type = ValueType::string;
    v.text = s;
    return v;
  }
  static Value of_timestamp(int64_t ns) {
    Value v;
    v.type = ValueType::timestamp;
    v.integer = ns;
    return v;
  }
  static Value of_other() {
    Value v;
    v.type = ValueType::other;
    return v;
  }
  bool is_null() const { return type == ValueType::null; }
  bool is_number() const { return type == ValueType::integer || type == ValueType::real; }
};

enum class CompareOp : uint8_t { eq, ne, lt, le, gt, ge };

// -1, 0 or 1 comparing an integer with a (non-NaN) double exactly.
int compare_int_real(int64_t i, double d);

// a OP b under the three-valued rules: unknown for nulls and types that do not compare.
Truth compare_values(const Value& a, const Value& b, CompareOp op);

inline Truth truth_of_order(int c, CompareOp op) {
  bool r = false;
  switch (op) {
    case CompareOp::eq:
      r = c == 0;
      break;
    case CompareOp::ne:
      r = c != 0;
      break;
    case CompareOp::lt:
      r = c < 0;
      break;
    case CompareOp::le:
      r = c <= 0;
      break;
    case CompareOp::gt:
      r = c > 0;
      break;
    case CompareOp::ge:
      r = c >= 0;
      break;
  }
  return r ? kTrue : kFalse;
}

}  // namespace trafficsplit::targeting
