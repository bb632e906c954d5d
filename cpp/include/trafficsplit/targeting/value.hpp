// Values seen by targeting expressions, and the comparisons between them
// (docs/targeting.md, "Values and types").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace trafficsplit::targeting {

// Kleene truth values, ordered so that `and` is min, `or` is max and `not` is 2 - x.
enum Truth : uint8_t { kFalse = 0, kUnknown = 1, kTrue = 2 };

// Appends a Unicode scalar value (not a surrogate, at most U+10FFFF) as UTF-8.
inline void append_utf8(std::string& out, uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

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

// How an integer Value holds its number: every integer has exactly one form, so equal numbers
// have equal representations.
enum class IntForm : uint8_t {
  i64,  // `integer`
  u64,  // 2^63 to 2^64-1: `integer` holds the uint64 bits
  big,  // below -2^63 or above 2^64-1: `text` is the magnitude in lowercase hex without
        // leading zeros, `real` the nearest double (its sign is the number's; +-inf beyond
        // the doubles) and `integer` the sign of (number - real)
};

struct Value {
  ValueType type = ValueType::null;
  bool boolean = false;
  IntForm form = IntForm::i64;
  uint32_t nanos = 0;   // timestamps: nanoseconds within the second, 0 to 999,999,999
  int64_t integer = 0;  // timestamps: whole seconds since the Unix epoch (UTC), floored
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
  static Value of_uint(uint64_t u) {
    Value v = of_int(static_cast<int64_t>(u));
    if (u > static_cast<uint64_t>(INT64_MAX)) v.form = IntForm::u64;
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
  // `nanos` must be below 10^9.
  static Value of_time(int64_t seconds, uint32_t nanos) {
    Value v;
    v.type = ValueType::timestamp;
    v.integer = seconds;
    v.nanos = nanos;
    return v;
  }
  static Value of_timestamp(int64_t ns);  // below
  static Value of_other() {
    Value v;
    v.type = ValueType::other;
    return v;
  }
  bool is_null() const { return type == ValueType::null; }
  bool is_number() const { return type == ValueType::integer || type == ValueType::real; }
};

// An integer beyond 64 bits from its magnitude in hex digits (either case, leading zeros
// allowed; at least one digit) and sign; `canonical` receives the canonical hex text, which
// the Value views, so it must outlive the Value. Returns false when `hex` is not hex digits.
bool big_integer_from_hex(std::string_view hex, bool negative, std::string& canonical, Value& out);
// The same from decimal digits (a literal in an expression).
bool big_integer_from_decimal(std::string_view digits, bool negative, std::string& canonical,
                              Value& out);
// Decimal text of any integer Value (with a leading '-' when negative).
std::string integer_text(const Value& v);

// The unit of int64 ticks since the Unix epoch (UTC).
enum class TimeUnit : uint8_t { s, ms, us, ns };

// Ticks of a unit as a timestamp (seconds and nanoseconds): exact for every int64 of every
// unit, so 0001-01-01 and 9999-12-31 are as exact as today. The minimum int64 is NaT (null).
inline Value time_value(int64_t ticks, TimeUnit unit) {
  if (ticks == INT64_MIN) return Value::null();
  int64_t per_second = 1;
  switch (unit) {
    case TimeUnit::s:
      return Value::of_time(ticks, 0);
    case TimeUnit::ms:
      per_second = 1'000;
      break;
    case TimeUnit::us:
      per_second = 1'000'000;
      break;
    case TimeUnit::ns:
      per_second = 1'000'000'000;
      break;
  }
  int64_t seconds = ticks / per_second, rest = ticks % per_second;
  if (rest < 0) {  // floor, without multiplying back (which could overflow)
    rest += per_second;
    --seconds;
  }
  return Value::of_time(seconds, static_cast<uint32_t>(rest * (1'000'000'000 / per_second)));
}

// Nanoseconds since the epoch (the range of int64 nanoseconds: 1677 to 2262).
inline Value Value::of_timestamp(int64_t ns) { return time_value(ns, TimeUnit::ns); }

enum class CompareOp : uint8_t { eq, ne, lt, le, gt, ge };

// -1, 0 or 1 comparing an integer with a (non-NaN) double exactly.
int compare_int_real(int64_t i, double d);
// -1, 0 or 1 comparing two integer Values, or an integer Value with a (non-NaN) double,
// exactly, whatever their forms.
int compare_integers(const Value& a, const Value& b);
int compare_integer_real(const Value& i, double d);
// An integral double within int64 or uint64 as the integer Value equal to it; false otherwise.
bool integer_of_real(double d, Value& out);

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
