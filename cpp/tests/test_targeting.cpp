// Targeting expressions through the public API (docs/targeting.md): lexer, parser, type
// checker, Kleene evaluator, columnar masks over every AttributeColumn kind, errors, semver.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "trafficsplit/arrow/columns.hpp"
#include "trafficsplit/errors.hpp"
#include "trafficsplit/targeting/targeting.hpp"
#include "trafficsplit/targeting/value.hpp"

namespace ts = trafficsplit;
namespace tg = trafficsplit::targeting;
using tg::AttributeColumn;
using tg::CompiledTargeting;
using tg::Truth;
using tg::Value;
using K = tg::AttributeColumn::Kind;

namespace {

constexpr Truth T = tg::kTrue;
constexpr Truth F = tg::kFalse;
constexpr Truth U = tg::kUnknown;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kSecond = 1'000'000'000;

using Row = std::map<std::string, Value>;

Value S(std::string_view s) { return Value::of_string(s); }
Value I(int64_t i) { return Value::of_int(i); }
Value R(double d) { return Value::of_real(d); }
Value B(bool b) { return Value::of_bool(b); }
Value N() { return Value::null(); }
Value TS(int64_t seconds) { return Value::of_timestamp(seconds * kSecond); }

std::vector<Value> values_for(const CompiledTargeting& t, const Row& row) {
  std::vector<Value> values;
  for (const auto& name : t.attributes()) {
    const auto it = row.find(name);
    values.push_back(it == row.end() ? Value::null() : it->second);
  }
  values.push_back(Value::null());  // never empty, so data() is a valid pointer
  return values;
}

Truth eval(const std::string& expr, const Row& row = {}) {
  const CompiledTargeting t(expr);
  const auto values = values_for(t, row);
  return t.evaluate(values.data());
}

const char* name_of(Truth t) { return t == T ? "true" : t == F ? "false" : "unknown"; }

struct Case {
  const char* expr;
  Row row;
  Truth expected;
};

void check_cases(const std::vector<Case>& cases) {
  for (const auto& c : cases) {
    Truth got = U;
    try {
      got = eval(c.expr, c.row);
    } catch (const std::exception& e) {
      ADD_FAILURE() << c.expr << " threw " << e.what();
      continue;
    }
    EXPECT_EQ(got, c.expected) << c.expr << ": got " << name_of(got) << ", expected "
                               << name_of(c.expected);
  }
}

tg::SyntaxError syntax_error(const std::string& expr) {
  try {
    CompiledTargeting t(expr);
  } catch (const tg::SyntaxError& e) {
    return e;
  }
  ADD_FAILURE() << "compiled: " << expr;
  return tg::SyntaxError("", 0, 0, "", "");
}

std::vector<uint8_t> mask_of(const CompiledTargeting& t, const std::vector<AttributeColumn>& cols,
                             size_t rows, unsigned threads = 1) {
  std::vector<uint8_t> out(rows, 7);
  t.mask(cols.data(), rows, out.data(), threads);
  return out;
}

// Checks mask(columns) row by row against evaluate() of the same rows given as Values, and
// against the hand-derived expectation.
void check_mask(const std::string& expr, const std::vector<AttributeColumn>& cols,
                const std::vector<std::vector<Value>>& rows, const std::vector<Truth>& expected) {
  const CompiledTargeting t(expr);
  ASSERT_EQ(t.attributes().size(), cols.size()) << expr;
  ASSERT_EQ(rows.size(), expected.size()) << expr;
  const auto m = mask_of(t, cols, rows.size());
  const auto m4 = mask_of(t, cols, rows.size(), 4);
  for (size_t i = 0; i < rows.size(); ++i) {
    auto values = rows[i];
    values.push_back(Value::null());
    const Truth e = t.evaluate(values.data());
    EXPECT_EQ(e, expected[i]) << expr << " row " << i;
    EXPECT_EQ(m[i], expected[i] == T ? 1 : 0) << expr << " row " << i;
    EXPECT_EQ(m4[i], m[i]) << expr << " row " << i;
  }
}

AttributeColumn values_column(const std::vector<Value>& v) {
  AttributeColumn c;
  c.kind = K::values;
  c.values = v.data();
  c.length = v.size();
  return c;
}

template <typename Int>
AttributeColumn integer_column(const std::vector<Int>& v, ts::IntKind kind) {
  AttributeColumn c;
  c.kind = K::integer;
  c.data = v.data();
  c.length = v.size();
  c.int_kind = kind;
  return c;
}

// An Arrow validity bitmap (bit i set = valid) with `offset` leading padding bits.
std::vector<uint8_t> bitmap(const std::vector<bool>& valid, size_t offset = 0) {
  std::vector<uint8_t> bits((valid.size() + offset + 7) / 8 + 1, 0);
  for (size_t i = 0; i < valid.size(); ++i) {
    if (valid[i]) bits[(i + offset) / 8] |= static_cast<uint8_t>(1u << ((i + offset) % 8));
  }
  return bits;
}

// Arrow utf8 / large_utf8 storage for a list of strings.
template <typename Offset>
struct StringStorage {
  std::vector<Offset> offsets{0};
  std::string chars;
  explicit StringStorage(const std::vector<std::string>& items) {
    for (const auto& s : items) {
      chars += s;
      offsets.push_back(static_cast<Offset>(chars.size()));
    }
  }
  ts::OffsetStringColumn column(const uint8_t* validity = nullptr, int64_t offset = 0) const {
    ts::OffsetStringColumn c;
    c.large_offsets = sizeof(Offset) == 8;
    c.offsets = offsets.data();
    c.data = chars.data();
    c.length = offsets.size() - 1;
    c.validity = validity;
    c.validity_offset = offset;
    return c;
  }
};

AttributeColumn text_column(const ts::UnitColumn& unit, size_t length) {
  AttributeColumn c;
  c.kind = K::text;
  c.text_column = unit;
  c.length = length;
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Kleene logic

TEST(TargetingTruth, KleeneOperators) {
  EXPECT_EQ(tg::truth_and(T, T), T);
  EXPECT_EQ(tg::truth_and(T, F), F);
  EXPECT_EQ(tg::truth_and(T, U), U);
  EXPECT_EQ(tg::truth_and(F, U), F);
  EXPECT_EQ(tg::truth_and(U, F), F);
  EXPECT_EQ(tg::truth_and(U, U), U);
  EXPECT_EQ(tg::truth_or(T, U), T);
  EXPECT_EQ(tg::truth_or(U, T), T);
  EXPECT_EQ(tg::truth_or(F, U), U);
  EXPECT_EQ(tg::truth_or(F, F), F);
  EXPECT_EQ(tg::truth_or(U, U), U);
  EXPECT_EQ(tg::truth_not(T), F);
  EXPECT_EQ(tg::truth_not(F), T);
  EXPECT_EQ(tg::truth_not(U), U);
}

TEST(TargetingTruth, KleeneThroughExpressions) {
  // a == 1: true for 1, false for 0, unknown when missing.
  const Value truth_value[3] = {I(0), N(), I(1)};
  for (int p = 0; p < 3; ++p) {
    for (int q = 0; q < 3; ++q) {
      const Row row{{"a", truth_value[p]}, {"b", truth_value[q]}};
      const auto tp = static_cast<Truth>(p), tq = static_cast<Truth>(q);
      EXPECT_EQ(eval("a == 1 and b == 1", row), tg::truth_and(tp, tq)) << p << q;
      EXPECT_EQ(eval("a == 1 & b == 1", row), tg::truth_and(tp, tq)) << p << q;
      EXPECT_EQ(eval("a == 1 or b == 1", row), tg::truth_or(tp, tq)) << p << q;
      EXPECT_EQ(eval("a == 1 | b == 1", row), tg::truth_or(tp, tq)) << p << q;
    }
    EXPECT_EQ(eval("not a == 1", {{"a", truth_value[p]}}), tg::truth_not(static_cast<Truth>(p)));
    EXPECT_EQ(eval("~(a == 1)", {{"a", truth_value[p]}}), tg::truth_not(static_cast<Truth>(p)));
  }
  check_cases({
      {"a == 1 and b == 1", {{"a", I(0)}}, F},
      {"a == 1 or b == 1", {{"a", I(1)}}, T},
      {"a == 1 and b == 1", {{"a", I(1)}}, U},
      {"not (country == \"US\")", {}, U},
      {"country != \"US\"", {}, U},
  });
}

// ---------------------------------------------------------------------------------------
// Lexer

TEST(TargetingLexer, StringsAndEscapes) {
  static const char nul[] = {'a', '\0', 'b'};
  check_cases({
      {R"(s == "abc")", {{"s", S("abc")}}, T},
      {R"(s == 'abc')", {{"s", S("abc")}}, T},
      {R"(s == "a\"b")", {{"s", S("a\"b")}}, T},
      {R"(s == 'it\'s')", {{"s", S("it's")}}, T},
      {R"(s == "t\tn\nr\r")", {{"s", S("t\tn\nr\r")}}, T},
      {R"(s == "back\\slash")", {{"s", S("back\\slash")}}, T},
      {R"(s == "a\0b")", {{"s", S(std::string_view(nul, 3))}}, T},
      {R"(s == "\u00e9")", {{"s", S("\xC3\xA9")}}, T},
      {R"(s == "\U0001F600")", {{"s", S("\xF0\x9F\x98\x80")}}, T},
      {R"(s == "#not a comment")", {{"s", S("#not a comment")}}, T},
      {R"(s == "")", {{"s", S("")}}, T},
  });
}

TEST(TargetingLexer, NumbersCommentsWhitespaceAndSpellings) {
  check_cases({
      {"x == 1e3", {{"x", I(1000)}}, T},
      {"x == 2.5E-1", {{"x", R(0.25)}}, T},
      {"x == 1.5", {{"x", R(1.5)}}, T},
      {"x == -7", {{"x", I(-7)}}, T},
      {"x == -0.5", {{"x", R(-0.5)}}, T},
      {"x == 9223372036854775807", {{"x", I(std::numeric_limits<int64_t>::max())}}, T},
      {"x == -9223372036854775808", {{"x", I(std::numeric_limits<int64_t>::min())}}, T},
      {"x == 1 # a comment", {{"x", I(1)}}, T},
      {"# first\nx == 1 # and y == 2\n  and z == 3", {{"x", I(1)}, {"z", I(3)}}, T},
      {"x == 1 # and y == 2\n  and z == 3", {{"x", I(1)}, {"z", I(4)}}, F},
      {"x\t==\n1", {{"x", I(1)}}, T},
      {"x==1&y==2", {{"x", I(1)}, {"y", I(2)}}, T},
      {"b == True and c == False and d is None", {{"b", B(true)}, {"c", B(false)}}, T},
      {"true", {}, T},
      {"False", {}, F},
  });
}

TEST(TargetingLexer, NamesAndAttributes) {
  const CompiledTargeting t(
      "b == 1 and a == 2 or `device-type` == \"x\" and user.country == \"US\" and `in` == 1 and "
      "`a.b` is null and b != 3");
  const std::vector<std::string> names{"b", "a", "device-type", "user.country", "in", "a.b"};
  EXPECT_EQ(t.attributes(), names);
  ASSERT_EQ(t.attribute_paths().size(), names.size());
  EXPECT_EQ(t.attribute_paths()[3], (std::vector<std::string>{"user", "country"}));
  EXPECT_EQ(t.attribute_paths()[2], (std::vector<std::string>{"device-type"}));
  EXPECT_EQ(t.attribute_paths()[5], (std::vector<std::string>{"a.b"}));
  EXPECT_TRUE(CompiledTargeting("true").attributes().empty());
  check_cases({
      {"`device-type` == \"tablet\"", {{"device-type", S("tablet")}}, T},
      {"`a b` == 1", {{"a b", I(1)}}, T},
      {"`\xC3\xA9` == 1", {{"\xC3\xA9", I(1)}}, T},
      {"`and` and `or`", {{"and", B(true)}, {"or", B(true)}}, T},
      {"a.b.c == 1", {{"a.b.c", I(1)}}, T},
  });
}

// ---------------------------------------------------------------------------------------
// Parser

TEST(TargetingParser, Precedence) {
  const char* p = "not a == 1 or b == 2 and c == 3";
  check_cases({
      {p, {{"a", I(1)}, {"b", I(2)}, {"c", I(3)}}, T},
      {p, {{"a", I(2)}, {"b", I(0)}, {"c", I(0)}}, T},
      {p, {{"a", I(1)}, {"b", I(2)}, {"c", I(4)}}, F},
      {p, {{"b", I(2)}, {"c", I(3)}}, T},
      {p, {{"a", I(1)}, {"c", I(3)}}, U},
      {"(not a == 1 or b == 2) and c == 3", {{"a", I(2)}, {"b", I(0)}, {"c", I(0)}}, F},
      {"a == 1 or b == 1 and c == 1", {{"a", I(1)}, {"b", I(0)}, {"c", I(0)}}, T},
      {"(a == 1 or b == 1) and c == 1", {{"a", I(1)}, {"b", I(0)}, {"c", I(0)}}, F},
      {"a == 1 | b == 1 & c == 1", {{"a", I(1)}, {"b", I(0)}, {"c", I(0)}}, T},
      {"~a == 1", {{"a", I(2)}}, T},
      {"not not a == 1", {{"a", I(1)}}, T},
      {"~~~a == 1", {{"a", I(1)}}, F},
      {"(a == 1) == (b == 1)", {{"a", I(2)}, {"b", I(2)}}, T},
      {"(a == 1) != (b == 1)", {{"a", I(1)}, {"b", I(2)}}, T},
      {"(a == 1) == (b == 1)", {{"a", I(1)}}, U},
      {"((((x == 1))))", {{"x", I(1)}}, T},
  });
}

TEST(TargetingParser, CanonicalForm) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"a == 1 | b == 2 & c == 3", "a == 1 or b == 2 and c == 3"},
      {"(a == 1 | b == 2) & c == 3", "(a == 1 or b == 2) and c == 3"},
      {"s == 'x'", "s == \"x\""},
      {"x in ['a', 'b']", "x in [\"a\", \"b\"]"},
      {"x   ==\n 1  # comment", "x == 1"},
      {"x == True or y is None", "x == true or y is null"},
  };
  for (const auto& [expr, canonical] : cases) {
    EXPECT_EQ(CompiledTargeting(expr).canonical(), canonical) << expr;
  }
}

TEST(TargetingParser, CanonicalRoundTrip) {
  const std::vector<std::string> exprs{
      "not a == 1 or b == 2 and c == 3",
      "~(a == 1 | b == 2) & ~~c",
      "(a == 1) == (b == 1)",
      "not (a == 1) == true",
      "x in [1, -2.5, \"a\", null, true, 1e300] and y not in []",
      R"(s == "q\"uo\\te\n\t\r\0 \u00e9 \U0001F600 #")",
      "`in` == 1 and `a-b` == 2 or `x y` is not null and a.b.c == 3",
      "between(semver(v), \"1.0.0-rc.1\", \"v2.0.0+build\") and hour(t) < 12",
      "x == -0.0 or x == 1e-300 or x == 123456789.125 or x == 1e3",
      "semver(v) in [\"1.0.0+b\", \"v2.0.0\"] or semver(v) >= 'v1.2.3'",
      "lower(s) == \"a\" and len(s) > 2 and startswith(s, \"x\") and endswith(s, 'y') and "
      "contains(s, \"z\") and matches(s, \"^\\\\d+$\") and weekday(t) == 0",
      "(a or b) and (c or d) and not (e and f)",
      "a and (b and c) or (d or e)",
  };
  const std::vector<Row> rows{
      {},
      {{"a", I(1)}, {"b", I(2)}, {"c", B(true)}},
      {{"x", S("a")}, {"v", S("1.5.0")}, {"t", I(0)}, {"s", S("x12y")}},
      {{"a", B(true)}, {"b", B(false)}, {"c", B(true)}, {"d", N()}, {"e", B(false)}},
  };
  for (const auto& expr : exprs) {
    const CompiledTargeting t(expr);
    const std::string canonical = t.canonical();
    const CompiledTargeting again(canonical);
    EXPECT_EQ(again.canonical(), canonical) << expr;
    EXPECT_EQ(again.attributes(), t.attributes()) << expr;
    for (const auto& row : rows) {
      const auto v1 = values_for(t, row);
      const auto v2 = values_for(again, row);
      EXPECT_EQ(t.evaluate(v1.data()), again.evaluate(v2.data())) << expr;
    }
  }
}

TEST(TargetingParser, CanonicalRoundTripOfEscapedVersionLiteral) {
  const CompiledTargeting t(R"(semver(v) >= "1.0.0-\u0061")");
  EXPECT_NO_THROW(CompiledTargeting again(t.canonical()));
}

// ---------------------------------------------------------------------------------------
// Values and comparisons

TEST(TargetingValues, CompareValues) {
  using Op = tg::CompareOp;
  EXPECT_EQ(tg::compare_values(I(1), R(1.0), Op::eq), T);
  EXPECT_EQ(tg::compare_values(I(1), R(1.5), Op::lt), T);
  EXPECT_EQ(tg::compare_values(R(kInf), R(1e308), Op::gt), T);
  EXPECT_EQ(tg::compare_values(R(-kInf), I(std::numeric_limits<int64_t>::min()), Op::lt), T);
  EXPECT_EQ(tg::compare_values(R(kNaN), R(kNaN), Op::eq), U);  // NaN is null
  EXPECT_TRUE(R(kNaN).is_null());
  EXPECT_EQ(tg::compare_values(N(), N(), Op::eq), U);
  EXPECT_EQ(tg::compare_values(S("5"), I(5), Op::eq), U);
  EXPECT_EQ(tg::compare_values(S("a"), S("b"), Op::lt), T);
  EXPECT_EQ(tg::compare_values(S("\xC3\xA9"), S("z"), Op::gt), T);  // byte-wise
  EXPECT_EQ(tg::compare_values(S("\xF0\x9F\x98\x80"), S("\xEF\xBF\xBF"), Op::gt), T);
  EXPECT_EQ(tg::compare_values(S("ab"), S("abc"), Op::lt), T);
  EXPECT_EQ(tg::compare_values(B(true), B(true), Op::eq), T);
  EXPECT_EQ(tg::compare_values(B(true), B(false), Op::ne), T);
  EXPECT_EQ(tg::compare_values(B(false), B(true), Op::lt), U);
  EXPECT_EQ(tg::compare_values(B(true), I(1), Op::eq), U);
  EXPECT_EQ(tg::compare_values(TS(0), TS(1), Op::lt), T);
  EXPECT_EQ(tg::compare_values(TS(-1), TS(-1), Op::ge), T);
  EXPECT_EQ(tg::compare_values(TS(0), I(0), Op::eq), U);
  EXPECT_EQ(tg::compare_values(Value::of_other(), Value::of_other(), Op::eq), U);
  EXPECT_EQ(tg::compare_values(Value::of_other(), I(1), Op::ne), U);
  EXPECT_EQ(tg::truth_of_order(-1, Op::le), T);
  EXPECT_EQ(tg::truth_of_order(1, Op::le), F);
}

TEST(TargetingValues, IntegersAndDoublesCompareExactly) {
  using Op = tg::CompareOp;
  const int64_t big = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(tg::compare_values(I(big), R(9223372036854775808.0), Op::lt), T);
  EXPECT_EQ(tg::compare_values(I((int64_t{1} << 53) + 1), R(9007199254740992.0), Op::eq), F);
}

Value big_decimal(std::string_view digits, bool negative, std::string& storage) {
  Value v;
  EXPECT_TRUE(tg::big_integer_from_decimal(digits, negative, storage, v)) << digits;
  return v;
}

TEST(TargetingValues, IntegersOfEveryFormAreCanonicalAndExact) {
  using Op = tg::CompareOp;
  using tg::IntForm;
  std::string a, b, c;
  // 64-bit values take the int64 or uint64 form whatever spelling they arrive in.
  EXPECT_EQ(big_decimal("9223372036854775808", true, a).form, IntForm::i64);
  EXPECT_EQ(big_decimal("9223372036854775808", true, a).integer, INT64_MIN);
  const Value u64_max = big_decimal("18446744073709551615", false, a);
  EXPECT_EQ(u64_max.form, IntForm::u64);
  EXPECT_EQ(static_cast<uint64_t>(u64_max.integer), UINT64_MAX);
  Value from_hex;
  ASSERT_TRUE(tg::big_integer_from_hex("00FFffFFffFFffFFff", false, b, from_hex));
  EXPECT_EQ(tg::compare_values(from_hex, u64_max, Op::eq), T);
  // 2^64 + 1: the nearest double is 2^64, below the number (Python: float(2**64 + 1)).
  const Value above = big_decimal("18446744073709551617", false, a);
  EXPECT_EQ(above.form, IntForm::big);
  EXPECT_EQ(above.text, "10000000000000001");
  EXPECT_EQ(above.real, 18446744073709551616.0);
  EXPECT_EQ(above.integer, 1);
  EXPECT_EQ(tg::integer_text(above), "18446744073709551617");
  EXPECT_EQ(tg::compare_values(above, R(18446744073709551616.0), Op::gt), T);
  EXPECT_EQ(tg::compare_values(above, u64_max, Op::gt), T);
  // (2^53 + 3) * 2^11 rounds up to (2^53 + 4) * 2^11 (ties to even), so it is below its double.
  const Value up = big_decimal("18446744073709557760", false, b);
  EXPECT_EQ(up.real, 18446744073709559808.0);
  EXPECT_EQ(up.integer, -1);
  EXPECT_EQ(tg::compare_values(up, R(18446744073709559808.0), Op::lt), T);
  // 2^100 is a double exactly; -(2^100) - 1 is below it.
  const Value p100 = big_decimal("1267650600228229401496703205376", false, a);
  EXPECT_EQ(p100.integer, 0);
  EXPECT_EQ(tg::compare_values(p100, R(1267650600228229401496703205376.0), Op::eq), T);
  const Value m100 = big_decimal("1267650600228229401496703205377", true, c);
  EXPECT_EQ(tg::integer_text(m100), "-1267650600228229401496703205377");
  EXPECT_EQ(tg::compare_values(m100, R(-1267650600228229401496703205376.0), Op::lt), T);
  EXPECT_EQ(tg::compare_values(m100, I(INT64_MIN), Op::lt), T);
  EXPECT_EQ(tg::compare_values(m100, p100, Op::lt), T);
  // Beyond every double: compared with infinity as a number below it.
  std::string huge(400, '9');
  const Value h = big_decimal(huge, false, a);
  EXPECT_EQ(h.real, kInf);
  EXPECT_EQ(tg::compare_values(h, R(kInf), Op::lt), T);
  EXPECT_EQ(tg::compare_values(h, R(1e308), Op::gt), T);
  // uint64 against doubles at the edges of the type.
  EXPECT_EQ(tg::compare_values(u64_max, R(18446744073709551616.0), Op::lt), T);
  EXPECT_EQ(tg::compare_values(Value::of_uint(uint64_t{1} << 63), R(9223372036854775808.0), Op::eq),
            T);
  EXPECT_EQ(
      tg::compare_values(Value::of_uint((uint64_t{1} << 63) + 1), R(9223372036854775808.0), Op::gt),
      T);
  EXPECT_EQ(tg::compare_values(Value::of_uint(18446744073709551000u), u64_max, Op::eq), F);
}

TEST(TargetingValues, TimestampsOfEveryUnitAreExact) {
  using Op = tg::CompareOp;
  using tg::TimeUnit;
  // 9999-12-31T23:59:59.999999Z is 253402300799 s and 999999 us (Python's datetime).
  const Value last = tg::time_value(253402300799999999, TimeUnit::us);
  EXPECT_EQ(last.integer, 253402300799);
  EXPECT_EQ(last.nanos, 999999000u);
  EXPECT_EQ(tg::compare_values(last, tg::time_value(253402300799, TimeUnit::s), Op::gt), T);
  EXPECT_EQ(tg::compare_values(last, tg::time_value(253402300799999, TimeUnit::ms), Op::gt), T);
  // 0001-01-01T00:00:00Z is -62135596800 s.
  const Value first = tg::time_value(-62135596800000, TimeUnit::ms);
  EXPECT_EQ(first.integer, -62135596800);
  EXPECT_EQ(first.nanos, 0u);
  EXPECT_EQ(tg::compare_values(first, tg::time_value(-1, TimeUnit::ns), Op::lt), T);
  // The extremes of each unit convert without overflow.
  const Value low = tg::time_value(INT64_MIN + 1, TimeUnit::ms);
  EXPECT_EQ(low.integer, -9223372036854776);
  EXPECT_EQ(low.nanos, 193000000u);
  EXPECT_EQ(tg::time_value(INT64_MIN, TimeUnit::us).type, tg::ValueType::null);
  EXPECT_EQ(
      tg::compare_values(tg::time_value(-1, TimeUnit::ns), tg::time_value(0, TimeUnit::s), Op::lt),
      T);
}

TEST(TargetingErrors, NulsInMessagesAreShown) {
  const std::string expr = std::string("x == 1 and ") + '\0' + " tail";
  try {
    const CompiledTargeting t(expr);
    FAIL() << "compiled";
  } catch (const tg::SyntaxError& e) {
    const std::string message = e.what();
    EXPECT_EQ(std::strlen(e.what()), message.size());
    EXPECT_NE(message.find("unexpected character '\\x00' at line 1, column 12"), std::string::npos)
        << message;
    EXPECT_EQ(e.excerpt(), "  x == 1 and \\x00 tail\n             ^");
  }
}

TEST(TargetingMask, WideIntegersAndTimestampUnits) {
  const std::vector<uint64_t> u64{0, 18446744073709551000u, UINT64_MAX, uint64_t{1} << 63};
  std::vector<std::vector<Value>> rows;
  for (const uint64_t x : u64) rows.push_back({Value::of_uint(x)});
  const AttributeColumn uc = integer_column(u64, ts::IntKind::u64);
  check_mask("x == 18446744073709551615", {uc}, rows, {F, F, T, F});
  check_mask("x > 18446744073709551000", {uc}, rows, {F, F, T, F});
  check_mask("x >= 9223372036854775808", {uc}, rows, {F, T, T, T});
  check_mask("x > -1", {uc}, rows, {T, T, T, T});
  check_mask("x < 18446744073709551616", {uc}, rows, {T, T, T, T});
  check_mask("x in [18446744073709551615, 0]", {uc}, rows, {T, F, T, F});
  const std::vector<int64_t> i64{INT64_MIN, -1, INT64_MAX};
  rows.clear();
  for (const int64_t x : i64) rows.push_back({I(x)});
  const AttributeColumn ic = integer_column(i64, ts::IntKind::i64);
  check_mask("x < 9223372036854775808", {ic}, rows, {T, T, T});
  check_mask("x > -9223372036854775809", {ic}, rows, {T, T, T});
  check_mask("x == 9223372036854775807.0", {ic}, rows, {F, F, F});

  // Microseconds: 9999-12-31 and 0001-01-01 against 2024-05-01 in seconds.
  const std::vector<int64_t> us{253402214400000000, -62135596800000000, INT64_MIN};
  const std::vector<int64_t> s{1714521600, 1714521600, 1714521600};
  AttributeColumn a, b;
  a.kind = b.kind = K::timestamp;
  a.time_unit = tg::TimeUnit::us;
  b.time_unit = tg::TimeUnit::s;
  a.data = us.data();
  b.data = s.data();
  a.length = b.length = 3;
  rows = {{tg::time_value(us[0], tg::TimeUnit::us), TS(s[0])},
          {tg::time_value(us[1], tg::TimeUnit::us), TS(s[1])},
          {N(), TS(s[2])}};
  check_mask("t > u", {a, b}, rows, {T, F, U});
  // 9999-12-31 is a Friday, 0001-01-01 a Monday.
  check_mask("weekday(t) == 4 and u is not null", {a, b}, rows, {T, F, U});
  check_mask("weekday(t) == 0 and hour(t) == 0 and u is not null", {a, b}, rows, {F, T, U});
}

TEST(TargetingEvaluate, Numbers) {
  check_cases({
      {"x == 1", {{"x", R(1.0)}}, T},
      {"x == 1.0", {{"x", I(1)}}, T},
      {"x != 1", {{"x", I(2)}}, T},
      {"x < 2", {{"x", R(1.5)}}, T},
      {"x <= 1.5", {{"x", R(1.5)}}, T},
      {"x > -1", {{"x", I(0)}}, T},
      {"x >= -2.5", {{"x", R(-3)}}, F},
      {"1 < x", {{"x", I(2)}}, T},
      {"x < y", {{"x", I(1)}, {"y", R(2.5)}}, T},
      {"x > 1e308", {{"x", R(kInf)}}, T},
      {"x < -1e308", {{"x", R(-kInf)}}, T},
      {"x == 0", {{"x", R(-0.0)}}, T},
      {"x > 9223372036854775807", {{"x", R(1.2676506002282294e30)}}, T},
      {"x == 1", {{"x", S("1")}}, U},
      {"x == 1", {{"x", B(true)}}, U},
      {"x < 10", {{"x", R(kNaN)}}, U},
      {"x != 10", {}, U},
      {"x == 1", {{"x", Value::of_other()}}, U},
  });
}

TEST(TargetingEvaluate, StringsBoolsTimestamps) {
  check_cases({
      {"s == \"abc\"", {{"s", S("abc")}}, T},
      {"s < \"abd\"", {{"s", S("abc")}}, T},
      {"s > \"Z\"", {{"s", S("a")}}, T},
      {"s > \"z\"", {{"s", S("\xC3\xA9")}}, T},
      {"s == \"\xC3\xA9\"", {{"s", S("e\xCC\x81")}}, F},
      {"s == t", {{"s", S("x")}, {"t", S("x")}}, T},
      {"s == \"1\"", {{"s", I(1)}}, U},
      {"b == true", {{"b", B(true)}}, T},
      {"b != false", {{"b", B(true)}}, T},
      {"b == false", {{"b", B(true)}}, F},
      {"b < true", {{"b", B(false)}}, U},
      {"b >= c", {{"b", B(true)}, {"c", B(false)}}, U},
      {"b == 1", {{"b", B(true)}}, U},
      {"b", {{"b", B(true)}}, T},
      {"b", {{"b", B(false)}}, F},
      {"b", {{"b", I(1)}}, U},
      {"not b", {{"b", B(false)}}, T},
      {"t < u", {{"t", TS(0)}, {"u", TS(1)}}, T},
      {"t == u", {{"t", TS(-5)}, {"u", TS(-5)}}, T},
      {"t < u", {{"t", TS(0)}, {"u", I(1)}}, U},
      {"t == \"1970-01-01\"", {{"t", TS(0)}}, U},
  });
}

TEST(TargetingEvaluate, InLists) {
  check_cases({
      {"c in [\"US\", \"CA\"]", {{"c", S("US")}}, T},
      {"c in [\"US\", \"CA\"]", {{"c", S("DE")}}, F},
      {"c in [\"US\", \"CA\"]", {}, U},
      {"c in [\"US\", \"CA\"]", {{"c", I(1)}}, U},
      {"c not in [\"US\", \"CA\"]", {{"c", S("DE")}}, T},
      {"c not in [\"US\", \"CA\"]", {{"c", S("US")}}, F},
      {"c not in [\"US\", \"CA\"]", {}, U},
      {"n in [1, 2, 3]", {{"n", R(1.0)}}, T},
      {"n in [1, 2, 3]", {{"n", R(2.5)}}, F},
      {"n in [1.0, 2.5]", {{"n", I(1)}}, T},
      {"n in [-1, -2.5]", {{"n", R(-2.5)}}, T},
      {"n in [1, 2, 3]", {{"n", B(true)}}, U},
      {"b in [true]", {{"b", B(true)}}, T},
      {"b in [true]", {{"b", B(false)}}, F},
      {"x in [1, \"a\"]", {{"x", S("a")}}, T},
      {"x in [1, \"a\"]", {{"x", I(2)}}, U},
      {"x in [1, null]", {{"x", I(1)}}, T},
      {"x in [1, null]", {{"x", I(2)}}, U},
      {"x not in [1, None]", {{"x", I(1)}}, F},
      {"x in []", {{"x", I(1)}}, F},
      {"x not in []", {{"x", I(1)}}, T},
      {"x in [1, 2,]", {{"x", I(2)}}, T},
      {"x in [1]", {{"x", Value::of_other()}}, U},
      {"semver(v) in [\"1.0.0\", \"2.0.0\"]", {{"v", S("2.0.0+build")}}, T},
      {"semver(v) in [\"1.0.0\", \"2.0.0\"]", {{"v", S("3.0.0")}}, F},
      {"semver(v) in [\"1.0.0\", \"2.0.0\"]", {{"v", S("bad")}}, U},
  });
}

TEST(TargetingEvaluate, IsNull) {
  check_cases({
      {"x is null", {}, T},
      {"x is null", {{"x", R(kNaN)}}, T},
      {"x is null", {{"x", I(0)}}, F},
      {"x is null", {{"x", S("")}}, F},
      {"x is null", {{"x", Value::of_other()}}, F},
      {"x is not null", {}, F},
      {"x is not null", {{"x", Value::of_other()}}, T},
      {"x is None", {}, T},
      {"lower(x) is null", {{"x", I(1)}}, T},
      {"x is null or x == 1", {}, T},
      {"x is null and x == 1", {}, U},
  });
}

TEST(TargetingEvaluate, Functions) {
  check_cases({
      {"lower(s) == \"abc\"", {{"s", S("AbC")}}, T},
      {"lower(s) == \"\xC3\x84rger\"", {{"s", S("\xC3\x84RGER")}}, T},  // Ä kept
      {"upper(s) == \"STRA\xC3\x9F"
       "E\"",
       {{"s", S("stra\xC3\x9F"
                "e")}},
       T},
      {"upper(s) == \"1\"", {{"s", I(1)}}, U},
      {"len(s) == 5", {{"s", S("h\xC3\xA9llo")}}, T},
      {"len(s) == 1", {{"s", S("\xF0\x9F\x98\x80")}}, T},
      {"len(s) == 0", {{"s", S("")}}, T},
      {"len(s) > 0", {{"s", I(5)}}, U},
      {"startswith(s, \"ab\")", {{"s", S("abc")}}, T},
      {"startswith(s, \"ab\")", {{"s", S("a")}}, F},
      {"startswith(s, \"\")", {{"s", S("x")}}, T},
      {"endswith(s, \".com\")", {{"s", S("a@b.com")}}, T},
      {"endswith(s, \".com\")", {{"s", S("com")}}, F},
      {"contains(s, \"@\")", {{"s", S("a@b")}}, T},
      {"contains(s, \"@\")", {{"s", S("ab")}}, F},
      {"contains(s, \"@\")", {}, U},
      {"not contains(s, \"@\")", {{"s", I(1)}}, U},
      {"matches(s, \"b\")", {{"s", S("abc")}}, T},
      {"matches(s, \"^b\")", {{"s", S("abc")}}, F},
      {"matches(s, \"^abc$\")", {{"s", S("abcd")}}, F},
      {R"(matches(s, ".*@example\.com$"))", {{"s", S("x@example.com")}}, T},
      {R"(matches(s, ".*@example\.com$"))", {{"s", S("x@exampleXcom")}}, F},
      {R"(matches(s, "^\d+$"))", {{"s", S("123")}}, T},
      {"matches(s, \"^.$\")", {{"s", S("\xC3\xA9")}}, T},
      {"matches(s, \"x\")", {{"s", N()}}, U},
      {"hour(t) == 0", {{"t", I(0)}}, T},
      {"weekday(t) == 3", {{"t", I(0)}}, T},  // 1970-01-01 was a Thursday
      {"hour(t) == 23", {{"t", I(-1)}}, T},
      {"weekday(t) == 2", {{"t", I(-1)}}, T},
      {"hour(t) == 1", {{"t", R(3600.9)}}, T},
      {"hour(t) == 23", {{"t", R(-0.5)}}, T},
      {"weekday(t) == 0", {{"t", I(4 * 86400)}}, T},
      {"weekday(t) == 6", {{"t", TS(1717286400)}}, T},  // 2024-06-02, a Sunday
      {"hour(t) == 23", {{"t", Value::of_timestamp(-1)}}, T},
      {"hour(t) == 12", {{"t", TS(1704112200)}}, T},  // 2024-01-01T12:30Z
      {"weekday(t) == 0", {{"t", TS(1704112200)}}, T},
      {"hour(t) is null", {{"t", S("12")}}, T},
      {"hour(t) is null", {{"t", B(true)}}, T},
      {"between(x, 1, 10)", {{"x", I(1)}}, T},
      {"between(x, 1, 10)", {{"x", I(10)}}, T},
      {"between(x, 1, 10)", {{"x", R(10.5)}}, F},
      {"between(x, 1, 10)", {{"x", S("5")}}, U},
      {"between(x, 1, 10)", {}, U},
      {"between(x, \"a\", \"c\")", {{"x", S("c")}}, T},
      {"between(x, 10, 1)", {{"x", I(5)}}, F},
      {"between(semver(v), \"1.0.0\", \"2.0.0\")", {{"v", S("2.0.0-rc.1")}}, T},
      {"between(semver(v), \"1.0.0\", \"2.0.0\")", {{"v", S("2.0.1")}}, F},
  });
  const int64_t min = std::numeric_limits<int64_t>::min();
  const int64_t hour_of_min = ((min % 86400) + 86400) % 86400 / 3600;
  EXPECT_EQ(eval("hour(t) == " + std::to_string(hour_of_min), {{"t", I(min)}}), T);
}

// ---------------------------------------------------------------------------------------
// Semantic versions

TEST(TargetingSemver, ParseValidAndInvalid) {
  tg::Version v;
  ASSERT_TRUE(tg::parse_semver("1.2.3", v));
  EXPECT_EQ(v.major, 1u);
  EXPECT_EQ(v.minor, 2u);
  EXPECT_EQ(v.patch, 3u);
  EXPECT_TRUE(v.pre.empty());
  ASSERT_TRUE(tg::parse_semver("v10.20.30-rc.1+build.5", v));
  EXPECT_EQ(v.major, 10u);
  EXPECT_EQ(v.pre, "rc.1");
  for (const char* ok :
       {"0.0.0", "1.0.0-alpha", "1.0.0-0a", "1.0.0-x-y.z", "1.0.0+01", "1.0.0-alpha+001"}) {
    EXPECT_TRUE(tg::parse_semver(ok, v)) << ok;
  }
  for (const char* bad : {"", "1", "1.2", "01.2.3", "1.02.3", "1.2.03", "1.2.3-", "1.2.3+",
                          "1.2.3-01", "1.2.3-alpha..1", "1.2.3.4", " 1.2.3", "1.2.3 ", "V1.2.3",
                          "vv1.2.3", "1.2.3-a_b", "a.b.c", "-1.2.3", "1.2.3+a..b"}) {
    EXPECT_FALSE(tg::parse_semver(bad, v)) << bad;
  }
}

TEST(TargetingSemver, PrecedenceChain) {
  const std::vector<const char*> chain{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
                                       "1.0.0-beta",  "1.0.0-beta.2",  "1.0.0-beta.11",
                                       "1.0.0-rc.1",  "1.0.0",         "1.0.1",
                                       "1.1.0",       "2.0.0",         "10.0.0"};
  std::vector<tg::Version> parsed(chain.size());
  for (size_t i = 0; i < chain.size(); ++i) ASSERT_TRUE(tg::parse_semver(chain[i], parsed[i]));
  for (size_t i = 0; i < chain.size(); ++i) {
    for (size_t j = 0; j < chain.size(); ++j) {
      const int expected = i < j ? -1 : (i > j ? 1 : 0);
      EXPECT_EQ(tg::compare_semver(parsed[i], parsed[j]), expected)
          << chain[i] << " vs " << chain[j];
    }
  }
  tg::Version a, b;
  ASSERT_TRUE(tg::parse_semver("1.0.0+a", a));
  ASSERT_TRUE(tg::parse_semver("v1.0.0+b.c", b));
  EXPECT_EQ(tg::compare_semver(a, b), 0);
  ASSERT_TRUE(tg::parse_semver("2.10.1", a));
  ASSERT_TRUE(tg::parse_semver("2.3.0", b));
  EXPECT_EQ(tg::compare_semver(a, b), 1);
  check_cases({
      {"semver(v) >= \"2.3.0\"", {{"v", S("2.10.1")}}, T},
      {"semver(v) >= \"2.3.0\"", {{"v", S("2.3.0-rc.1")}}, F},
      {"semver(v) == \"1.0.0\"", {{"v", S("v1.0.0")}}, T},
      {"semver(v) == \"1.0.0+b\"", {{"v", S("1.0.0+a")}}, T},
      {"semver(a) < semver(b)", {{"a", S("1.0.0-beta.2")}, {"b", S("1.0.0-beta.11")}}, T},
      {"semver(v) == \"1.0.0\"", {{"v", S("1.2")}}, U},
      {"semver(v) != \"1.0.0\"", {{"v", S("01.2.3")}}, U},
      {"semver(v) != \"1.0.0\"", {{"v", S("1.2.3-")}}, U},
      {"semver(v) != \"1.0.0\"", {{"v", I(1)}}, U},
      {"semver(v) is null", {{"v", S("1.2")}}, T},
  });
}

// ---------------------------------------------------------------------------------------
// Errors

TEST(TargetingErrors, PositionsAndWording) {
  struct E {
    const char* expr;
    size_t line, column;
    const char* needle;
  };
  const std::vector<E> cases{
      {"x == \"abc", 1, 6, "unterminated string"},
      {"(a == 1", 1, 1, "unclosed '('"},
      {"x in [1, 2,", 1, 6, "unclosed '['"},
      {"a == 1 and", 1, 11, "after 'and'"},
      {"a ==", 1, 5, "expected an operand after '=='"},
      {"x = 1", 1, 3, "'=' is assignment"},
      {"!x", 1, 1, "unexpected '!'"},
      {"foo(x) == 1", 1, 1, "unknown function 'foo'"},
      {"lower(x, y) == \"a\"", 1, 1, "takes 1 argument, got 2"},
      {"semver(x) >= 3", 1, 11, "cannot compare a version with a number"},
      {"len(x) == \"a\"", 1, 8, "cannot compare a number with a string"},
      {"startswith(x, 3)", 1, 15, "string literal"},
      {"startswith(x, y)", 1, 15, "string literal"},
      {"matches(s, \"(\")", 1, 12, "invalid regular expression: missing )"},
      {"semver(v) >= \"1.2\"", 1, 14, "not a semantic version"},
      {"x == null", 1, 3, "'is null'"},
      {"a < b < c", 1, 7, "do not chain"},
      {"[1] == x", 1, 1, "only allowed after 'in'"},
      {"x in [[1]]", 1, 7, "cannot be nested"},
      {"in == 1", 1, 1, "expected an operand"},
      {"`` == 1", 1, 1, "empty backquoted name"},
      {"a == 1 and\n  b = 2", 2, 5, "'=' is assignment"},
      {"s == \"\xC3\xA9\" and y = 1", 1, 16, "'=' is assignment"},
      {"\"abc\"", 1, 1, "must be a condition"},
      {"1 + 2", 1, 3, "unexpected character '+'"},
      {"between(x, y, 1)", 1, 12, "literal bounds"},
  };
  for (const auto& c : cases) {
    const tg::SyntaxError e = syntax_error(c.expr);
    EXPECT_EQ(e.line(), c.line) << c.expr << ": " << e.what();
    EXPECT_EQ(e.column(), c.column) << c.expr << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(c.needle), std::string::npos)
        << c.expr << ": " << e.what();
    EXPECT_FALSE(e.expected().empty()) << c.expr;
    EXPECT_EQ(e.excerpt().back(), '^') << c.expr;
  }
  const tg::SyntaxError e = syntax_error("country == \"US\" and tier = 1");
  EXPECT_EQ(e.excerpt(), "  country == \"US\" and tier = 1\n" + std::string(2 + 25, ' ') + "^");
  EXPECT_NE(std::string(syntax_error("foo(x)").expected()).find("weekday"), std::string::npos);
  // A SyntaxError is an invalid_argument.
  EXPECT_THROW(CompiledTargeting("x ="), std::invalid_argument);
}

TEST(TargetingErrors, Limits) {
  std::string at_limit = "x == 1";
  at_limit.resize(tg::kMaxExpressionBytes, ' ');
  EXPECT_NO_THROW(CompiledTargeting ok(at_limit));
  EXPECT_THROW(CompiledTargeting over(at_limit + " "), tg::SyntaxError);
  auto nested = [](size_t levels) {
    return std::string(levels, '(') + "x == 1" + std::string(levels, ')');
  };
  const CompiledTargeting deep(nested(tg::kMaxDepth));
  const auto values = values_for(deep, {{"x", I(1)}});
  EXPECT_EQ(deep.evaluate(values.data()), T);
  EXPECT_THROW(CompiledTargeting too_deep(nested(tg::kMaxDepth + 1)), tg::SyntaxError);
  std::string nots;
  for (size_t i = 0; i < tg::kMaxDepth; ++i) nots += "not ";
  EXPECT_NO_THROW(CompiledTargeting ok(nots + "x"));
  EXPECT_THROW(CompiledTargeting over("not " + nots + "x"), tg::SyntaxError);
}

TEST(TargetingErrors, NamedListLimit) {
  std::vector<Value> items;
  items.reserve(tg::kMaxListItems + 1);
  for (size_t i = 0; i < tg::kMaxListItems; ++i) items.push_back(I(static_cast<int64_t>(i)));
  const CompiledTargeting t("x in @ids", {{"ids", items}});
  const Value hit = I(999'999), miss = I(1'000'000);
  EXPECT_EQ(t.evaluate(&hit), T);
  EXPECT_EQ(t.evaluate(&miss), F);
  items.push_back(I(-1));
  EXPECT_THROW(CompiledTargeting over("x in @ids", {{"ids", items}}), tg::SyntaxError);
}

TEST(TargetingErrors, PathologicalRegexIsLinear) {
  const CompiledTargeting t("matches(s, \"(a+)+$\")");
  const std::string s = std::string(100'000, 'a') + "b";
  const Value v = S(s);
  EXPECT_EQ(t.evaluate(&v), F);
}

// ---------------------------------------------------------------------------------------
// Columnar masks

TEST(TargetingMask, ValuesColumn) {
  const std::vector<Value> x{I(1), R(1.0), S("1"), N(), R(kNaN), B(true), Value::of_other(), I(2)};
  std::vector<std::vector<Value>> rows;
  for (const auto& v : x) rows.push_back({v});
  check_mask("x == 1", {values_column(x)}, rows, {T, T, U, U, U, U, U, F});
  check_mask("x is null", {values_column(x)}, rows, {F, F, F, T, T, F, F, F});
  check_mask("x not in [2, \"1\"]", {values_column(x)}, rows, {U, U, F, U, U, U, U, F});
}

TEST(TargetingMask, IntegerKinds) {
  const std::vector<int8_t> i8{-128, -1, 0, 1, 127};
  const std::vector<int16_t> i16{-32768, -1, 0, 1, 32767};
  const std::vector<int32_t> i32{std::numeric_limits<int32_t>::min(), -1, 0, 1,
                                 std::numeric_limits<int32_t>::max()};
  const std::vector<int64_t> i64{std::numeric_limits<int64_t>::min(), -1, 0, 1,
                                 std::numeric_limits<int64_t>::max()};
  const std::vector<uint8_t> u8{0, 1, 2, 200, 255};
  const std::vector<uint16_t> u16{0, 1, 2, 200, 65535};
  const std::vector<uint32_t> u32{0, 1, 2, 200, 4294967295u};
  const std::vector<uint64_t> u64{0, 1, 2, 200, std::numeric_limits<uint64_t>::max()};
  auto rows_of = [](const auto& v) {
    std::vector<std::vector<Value>> rows;
    for (const auto x : v) {
      const bool big = static_cast<uint64_t>(x) > static_cast<uint64_t>(INT64_MAX) && x > 0;
      rows.push_back({big ? Value::of_uint(static_cast<uint64_t>(x)) : I(static_cast<int64_t>(x))});
    }
    return rows;
  };
  check_mask("x > 0", {integer_column(i8, ts::IntKind::i8)}, rows_of(i8), {F, F, F, T, T});
  check_mask("x == -1", {integer_column(i16, ts::IntKind::i16)}, rows_of(i16), {F, T, F, F, F});
  check_mask("x >= 0.5", {integer_column(i32, ts::IntKind::i32)}, rows_of(i32), {F, F, F, T, T});
  check_mask("x < 0", {integer_column(i64, ts::IntKind::i64)}, rows_of(i64), {T, T, F, F, F});
  check_mask("x == 9223372036854775807", {integer_column(i64, ts::IntKind::i64)}, rows_of(i64),
             {F, F, F, F, T});
  check_mask("x != 0.0", {integer_column(i64, ts::IntKind::i64)}, rows_of(i64), {T, T, F, T, T});
  check_mask("x in [1, 255]", {integer_column(u8, ts::IntKind::u8)}, rows_of(u8), {F, T, F, F, T});
  check_mask("x <= 200", {integer_column(u16, ts::IntKind::u16)}, rows_of(u16), {T, T, T, T, F});
  check_mask("x == 4294967295", {integer_column(u32, ts::IntKind::u32)}, rows_of(u32),
             {F, F, F, F, T});
  check_mask("x > 9223372036854775807", {integer_column(u64, ts::IntKind::u64)}, rows_of(u64),
             {F, F, F, F, T});
  check_mask("between(x, 1, 200)", {integer_column(u64, ts::IntKind::u64)}, rows_of(u64),
             {F, T, T, T, F});
  check_mask("hour(x) == 0", {integer_column(i32, ts::IntKind::i32)}, rows_of(i32),
             {F, F, T, T, F});
}

TEST(TargetingMask, NullMaskAndValidity) {
  const std::vector<int32_t> x{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  const std::vector<uint8_t> nulls{0, 1, 0, 0, 0, 0, 0, 0, 1, 0};
  AttributeColumn with_mask = integer_column(x, ts::IntKind::i32);
  with_mask.null_mask = nulls.data();
  std::vector<std::vector<Value>> rows;
  for (size_t i = 0; i < x.size(); ++i) rows.push_back({nulls[i] ? N() : I(x[i])});
  check_mask("x > 1", {with_mask}, rows, {F, U, T, T, T, T, T, T, U, T});
  check_mask("x is null", {with_mask}, rows, {F, T, F, F, F, F, F, F, T, F});
  // An Arrow validity bitmap read from bit offset 3.
  const std::vector<bool> valid{true, false, true, true, false, true, true, true, true, false};
  const auto bits = bitmap(valid, 3);
  AttributeColumn with_validity = integer_column(x, ts::IntKind::i32);
  with_validity.validity = bits.data();
  with_validity.validity_offset = 3;
  rows.clear();
  for (size_t i = 0; i < x.size(); ++i) rows.push_back({valid[i] ? I(x[i]) : N()});
  check_mask("x != 3", {with_validity}, rows, {T, U, F, T, U, T, T, T, T, U});
  check_mask("x in [1, 2, 10]", {with_validity}, rows, {T, U, F, F, U, F, F, F, F, U});
}

TEST(TargetingMask, RealBooleanTimestamp) {
  const std::vector<double> r64{-1.5, 0.0, kNaN, kInf, 2.5};
  AttributeColumn real64;
  real64.kind = K::real64;
  real64.data = r64.data();
  real64.length = r64.size();
  std::vector<std::vector<Value>> rows;
  for (double d : r64) rows.push_back({R(d)});
  check_mask("x > 0", {real64}, rows, {F, F, U, T, T});
  check_mask("x != 0", {real64}, rows, {T, F, U, T, T});
  check_mask("x > 1e308", {real64}, rows, {F, F, U, T, F});
  check_mask("x is null", {real64}, rows, {F, F, T, F, F});

  const std::vector<float> r32{-1.5f, 0.5f, std::nanf(""), 3600.0f};
  AttributeColumn real32;
  real32.kind = K::real32;
  real32.data = r32.data();
  real32.length = r32.size();
  rows.clear();
  for (float f : r32) rows.push_back({R(f)});
  check_mask("x == 0.5", {real32}, rows, {F, T, U, F});
  check_mask("hour(x) == 1", {real32}, rows, {F, F, U, T});

  const std::vector<uint8_t> flags{1, 0, 1};
  const std::vector<uint8_t> flag_nulls{0, 0, 1};
  AttributeColumn boolean;
  boolean.kind = K::boolean;
  boolean.data = flags.data();
  boolean.length = flags.size();
  boolean.null_mask = flag_nulls.data();
  rows = {{B(true)}, {B(false)}, {N()}};
  check_mask("x", {boolean}, rows, {T, F, U});
  check_mask("x == false", {boolean}, rows, {F, T, U});
  check_mask("not x", {boolean}, rows, {F, T, U});
  check_mask("x < true", {boolean}, rows, {U, U, U});

  const std::vector<int64_t> ns{0, -1, std::numeric_limits<int64_t>::min(),
                                1717286400 * kSecond + 5};
  AttributeColumn stamps;
  stamps.kind = K::timestamp;
  stamps.data = ns.data();
  stamps.length = ns.size();
  rows = {{Value::of_timestamp(ns[0])},
          {Value::of_timestamp(ns[1])},
          {N()},
          {Value::of_timestamp(ns[3])}};
  check_mask("hour(t) == 23", {stamps}, rows, {F, T, U, F});
  check_mask("weekday(t) == 6", {stamps}, rows, {F, F, U, T});
  check_mask("t is null", {stamps}, rows, {F, F, T, F});
  check_mask("t == 0", {stamps}, rows, {U, U, U, U});
}

TEST(TargetingMask, TextColumns) {
  const std::vector<std::string> words{"US", "", "CA", "\xC3\xA9t\xC3\xA9", "us", "DE"};
  const std::vector<bool> valid{true, true, true, true, true, false};
  const auto bits = bitmap(valid);
  const StringStorage<int32_t> small(words);
  const StringStorage<int64_t> large(words);
  std::vector<std::vector<Value>> rows;
  for (size_t i = 0; i < words.size(); ++i) rows.push_back({valid[i] ? S(words[i]) : N()});
  for (const auto& col : {text_column(small.column(bits.data()), words.size()),
                          text_column(large.column(bits.data()), words.size())}) {
    check_mask("c in [\"US\", \"CA\"]", {col}, rows, {T, F, T, F, F, U});
    check_mask("c == \"US\"", {col}, rows, {T, F, F, F, F, U});
    check_mask("c > \"Z\"", {col}, rows, {F, F, F, T, T, U});
    check_mask("lower(c) == \"us\"", {col}, rows, {T, F, F, F, T, U});
    check_mask("len(c) == 3", {col}, rows, {F, F, F, T, F, U});
    check_mask("startswith(c, \"\xC3\xA9\")", {col}, rows, {F, F, F, T, F, U});
    check_mask("matches(c, \"^[A-Z]+$\")", {col}, rows, {T, F, T, F, F, U});
    check_mask("c is null", {col}, rows, {F, F, F, F, F, T});
  }
  // string_view: inline (<= 12 bytes) and out-of-line strings.
  const std::string longer = "a string longer than twelve bytes";
  const char* buffers[] = {longer.data()};
  std::vector<uint8_t> views(16 * 3, 0);
  auto put = [&](size_t row, const std::string& s, bool inline_data) {
    const int32_t size = static_cast<int32_t>(s.size());
    std::memcpy(&views[16 * row], &size, 4);
    if (inline_data) {
      std::memcpy(&views[16 * row + 4], s.data(), s.size());
    } else {
      std::memcpy(&views[16 * row + 4], s.data(), 4);
      const int32_t buffer = 0, offset = 0;
      std::memcpy(&views[16 * row + 8], &buffer, 4);
      std::memcpy(&views[16 * row + 12], &offset, 4);
    }
  };
  put(0, "short", true);
  put(1, longer, false);
  put(2, "twelve bytes", true);
  ts::ViewStringColumn view;
  view.views = views.data();
  view.buffers = buffers;
  view.buffer_count = 1;
  view.length = 3;
  const AttributeColumn view_col = text_column(view, 3);
  rows = {{S("short")}, {S(longer)}, {S("twelve bytes")}};
  check_mask("c == \"short\"", {view_col}, rows, {T, F, F});
  check_mask("contains(c, \"twelve\")", {view_col}, rows, {F, T, T});
  check_mask("len(c) > 12", {view_col}, rows, {F, T, F});
}

TEST(TargetingMask, DictionaryColumns) {
  const std::vector<std::string> entries{"US", "CA", "DE"};
  const StringStorage<int32_t> storage(entries);
  AttributeColumn dictionary = text_column(storage.column(), entries.size());
  const std::vector<int32_t> codes{0, 1, 2, -1, 0, 7, 2};
  AttributeColumn col = integer_column(codes, ts::IntKind::i32);
  col.kind = K::dictionary;
  col.dictionary = &dictionary;
  std::vector<std::vector<Value>> rows;
  for (int32_t code : codes) {
    rows.push_back({code >= 0 && code < 3 ? S(entries[static_cast<size_t>(code)]) : N()});
  }
  check_mask("c in [\"US\", \"CA\"]", {col}, rows, {T, T, F, U, T, U, F});
  check_mask("c != \"DE\"", {col}, rows, {T, T, F, U, T, U, F});
  check_mask("c is null", {col}, rows, {F, F, F, T, F, T, F});
  check_mask("lower(c) == \"ca\" or c is null", {col}, rows, {F, T, F, T, F, T, F});
  // A dictionary attribute next to another attribute.
  const std::vector<int64_t> n{1, 2, 3, 4, 5, 6, 7};
  rows.clear();
  for (size_t i = 0; i < codes.size(); ++i) {
    const int32_t code = codes[i];
    rows.push_back({code >= 0 && code < 3 ? S(entries[static_cast<size_t>(code)]) : N(), I(n[i])});
  }
  check_mask("c == \"US\" or n > 5", {col, integer_column(n, ts::IntKind::i64)}, rows,
             {T, F, F, U, T, T, T});
}

TEST(TargetingMask, MissingColumnsAndLengths) {
  AttributeColumn missing;
  missing.kind = K::missing;
  missing.length = 3;
  const std::vector<std::vector<Value>> rows{{N()}, {N()}, {N()}};
  check_mask("x is null", {missing}, rows, {T, T, T});
  check_mask("x == 1", {missing}, rows, {U, U, U});
  const CompiledTargeting t("x == 1 and y == 2");
  const std::vector<int64_t> a{1, 2, 3}, b{2, 2};
  const std::vector<AttributeColumn> cols{integer_column(a, ts::IntKind::i64),
                                          integer_column(b, ts::IntKind::i64)};
  std::vector<uint8_t> out(3);
  EXPECT_THROW(t.mask(cols.data(), 3, out.data(), 1), std::invalid_argument);
  const CompiledTargeting constant("true");
  constant.mask(nullptr, 3, out.data(), 1);
  EXPECT_EQ(out, (std::vector<uint8_t>{1, 1, 1}));
}

TEST(TargetingMask, ManyRowsAndThreads) {
  const size_t n = 300'000;
  std::vector<int64_t> x(n);
  std::vector<double> y(n);
  std::vector<uint8_t> nulls(n);
  for (size_t i = 0; i < n; ++i) {
    x[i] = static_cast<int64_t>(i % 7);
    y[i] = (i % 11 == 0) ? kNaN : static_cast<double>(i % 5) / 2;
    nulls[i] = i % 13 == 0;
  }
  AttributeColumn xc = integer_column(x, ts::IntKind::i64);
  xc.null_mask = nulls.data();
  AttributeColumn yc;
  yc.kind = K::real64;
  yc.data = y.data();
  yc.length = n;
  const CompiledTargeting t("x > 3 and x != 5 or x in [0] and not y >= 1.5");
  const std::vector<AttributeColumn> cols{xc, yc};
  const auto m1 = mask_of(t, cols, n, 1);
  const auto m4 = mask_of(t, cols, n, 4);
  const auto m0 = mask_of(t, cols, n, 0);
  EXPECT_EQ(m1, m4);
  EXPECT_EQ(m1, m0);
  for (size_t i = 0; i < n; ++i) {
    const bool x_null = nulls[i] != 0, y_null = i % 11 == 0;
    Truth left = x_null ? U : ((x[i] > 3 && x[i] != 5) ? T : F);
    Truth in0 = x_null ? U : (x[i] == 0 ? T : F);
    Truth not_y = y_null ? U : (y[i] >= 1.5 ? F : T);
    const Truth expected = tg::truth_or(left, tg::truth_and(in0, not_y));
    ASSERT_EQ(m1[i], expected == T ? 1 : 0) << i;
  }
}

// Columns read by the caller a block at a time (Kind::rows, how the bindings read Python
// objects): the same mask as the same Values given as a column, on the calling thread alone,
// each block read once however many attributes read it.
struct BlockReader {
  const std::vector<Value>* source;
  std::vector<std::pair<size_t, size_t>> calls;  // (begin, count)
  std::thread::id thread;
  bool other_thread = false;

  static void read(void* self, size_t begin, size_t count, Value* out) {
    auto* r = static_cast<BlockReader*>(self);
    r->other_thread |= std::this_thread::get_id() != r->thread;
    r->calls.emplace_back(begin, count);
    for (size_t k = 0; k < count; ++k) out[k] = (*r->source)[begin + k];
  }

  AttributeColumn column() {
    AttributeColumn c;
    c.kind = K::rows;
    c.length = source->size();
    c.read_rows = &BlockReader::read;
    c.rows_context = this;
    return c;
  }
};

TEST(ColumnarRows, CallerReadColumnsMaskAsTheirValues) {
  const size_t n = 5000;  // several blocks and a short last one
  std::vector<Value> x(n), y(n);
  const Value pool[] = {S("US"), S("CA"), S("FR"), S(""),       I(3),     R(2.5),
                        R(kNaN), N(),     B(true), S("2.10.0"), TS(86400)};
  for (size_t i = 0; i < n; ++i) {
    x[i] = pool[(i * 7) % std::size(pool)];
    y[i] = pool[(i * 3 + 1) % std::size(pool)];
  }
  const std::vector<std::string> expressions = {
      R"(x in ["US", "CA", 3])",
      R"(not (x in ["US", ""]))",
      R"(x == "US" or y > 2)",
      R"(startswith(x, "C") and y is not null)",
      R"(semver(x) >= "2.3.0" or y in ["FR", 2.5])",
      R"(x in ["US"] or a.b == "CA")",
  };
  for (const auto& expr : expressions) {
    const CompiledTargeting t(expr);
    // The same reader for `x` and, where the expression has it, `a.b`: its block is read once.
    BlockReader xr{&x, {}, std::this_thread::get_id()};
    BlockReader yr{&y, {}, std::this_thread::get_id()};
    std::vector<AttributeColumn> rows_cols, value_cols;
    for (const auto& name : t.attributes()) {
      rows_cols.push_back(name == "y" ? yr.column() : xr.column());
      value_cols.push_back(values_column(name == "y" ? y : x));
    }
    const auto want = mask_of(t, value_cols, n, 1);
    const auto got = mask_of(t, rows_cols, n, 4);  // asks for four threads: gets the caller's
    EXPECT_EQ(got, want) << expr;
    EXPECT_FALSE(xr.other_thread || yr.other_thread) << expr;
    ASSERT_EQ(xr.calls.size(), (n + 1023) / 1024) << expr;
    size_t next = 0;
    for (const auto& [begin, count] : xr.calls) {
      EXPECT_EQ(begin, next) << expr;
      next = begin + count;
    }
    EXPECT_EQ(next, n) << expr;
    size_t true_rows = 0;
    for (uint8_t m : got) true_rows += m;
    EXPECT_GT(true_rows, 0u) << expr;
    EXPECT_LT(true_rows, n) << expr;
  }
}

TEST(ColumnarRows, ReaderlessOrDictionaryValueRowsAreRefused) {
  const CompiledTargeting t(R"(x == "US")");
  std::vector<uint8_t> out(4);
  AttributeColumn no_reader;
  no_reader.kind = K::rows;
  no_reader.length = 4;
  EXPECT_THROW(t.mask(&no_reader, 4, out.data(), 1), ts::InvalidArgument);
  std::vector<Value> values = {S("US")};
  BlockReader reader{&values, {}, std::this_thread::get_id()};
  const AttributeColumn dictionary_values = reader.column();
  const std::vector<int8_t> codes = {0, 0, -1, 0};
  AttributeColumn dictionary;
  dictionary.kind = K::dictionary;
  dictionary.length = 4;
  dictionary.data = codes.data();
  dictionary.int_kind = ts::IntKind::i8;
  dictionary.dictionary = &dictionary_values;
  EXPECT_THROW(t.mask(&dictionary, 4, out.data(), 1), ts::InvalidArgument);
  EXPECT_TRUE(reader.calls.empty());
}
