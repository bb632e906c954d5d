// libFuzzer harness for targeting expressions (docs/fuzzing.md). The input is the expression
// text itself, so the corpus stays readable. Whatever compiles must:
//  - print a canonical form that compiles again and prints the same (with the same attributes);
//  - give, over a small table generated from the input (every attribute column of a random
//    kind: values of mixed types, integers, doubles, booleans, timestamps or utf8 text, with
//    nulls), a columnar mask equal to the row-by-row evaluation of every row, on one thread
//    and on several.
// Text that does not compile must be refused with a SyntaxError and nothing else.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "trafficsplit/arrow/columns.hpp"
#include "trafficsplit/targeting/targeting.hpp"
#include "trafficsplit/targeting/value.hpp"

namespace tg = trafficsplit::targeting;
using tg::AttributeColumn;
using tg::Value;
using K = AttributeColumn::Kind;

namespace {

[[noreturn]] void fail(const char* what, const std::string& expression, const std::string& more) {
  std::fprintf(stderr, "fuzz_targeting: %s\n  expression: %s\n  %s\n", what, expression.c_str(),
               more.c_str());
  std::abort();
}

// A small deterministic generator (splitmix64) seeded from the input.
struct Random {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

constexpr int64_t kSecond = 1'000'000'000;

// Values that the expressions of docs/targeting.md compare against, and their neighbours.
const char* const kTexts[] = {"US",
                              "CA",
                              "premium",
                              "free",
                              "2.3.0",
                              "2.3.0-beta.1",
                              "v1.10.2",
                              "1.2",
                              "",
                              "tablet",
                              "a@example.com",
                              "x@example.org",
                              "true",
                              "\xc3\xa9t\xc3\xa9",
                              "10",
                              "-3.5",
                              "2024-01-01"};
const int64_t kInts[] = {0,
                         1,
                         -1,
                         2,
                         3,
                         5,
                         10,
                         18,
                         21,
                         100,
                         65,
                         9'007'199'254'740'993LL,
                         std::numeric_limits<int64_t>::max(),
                         std::numeric_limits<int64_t>::min()};
const double kReals[] = {0.0,
                         -0.0,
                         0.5,
                         1.0,
                         2.5,
                         -3.5,
                         10.0,
                         1e300,
                         9'007'199'254'740'992.0,
                         std::numeric_limits<double>::infinity(),
                         -std::numeric_limits<double>::infinity(),
                         std::numeric_limits<double>::quiet_NaN()};
const int64_t kTimes[] = {0, 5 * 3600 * kSecond, 1'704'153'599 * kSecond,
                          1'717'200'000 * kSecond + 123, -86'400 * kSecond};

// Text columns with their nulls in AttributeColumn::null_mask rather than in the Arrow
// bitmap (as the bindings build them): both are drawn, since the columnar `in` fast path once
// read only the bitmap (cpp/fuzz/regressions/README.md). TRAFFICSPLIT_FUZZ_TEXT_NULL_MASK=1
// always puts them in the mask.
bool text_nulls_in_mask(Random& r) {
  static const bool always = std::getenv("TRAFFICSPLIT_FUZZ_TEXT_NULL_MASK") != nullptr;
  return always || r.below(2) == 1;
}

Value any_value(Random& r) {
  switch (r.below(7)) {
    case 0:
      return Value::null();
    case 1:
      return Value::of_bool(r.below(2) == 1);
    case 2:
      return Value::of_int(kInts[r.below(std::size(kInts))]);
    case 3:
      return Value::of_real(kReals[r.below(std::size(kReals))]);
    case 4:
      return Value::of_timestamp(kTimes[r.below(std::size(kTimes))]);
    case 5:
      return Value::of_other();
    default:
      return Value::of_string(kTexts[r.below(std::size(kTexts))]);
  }
}

// One attribute as a typed column and as the Values a request would carry.
struct Column {
  AttributeColumn column;
  std::vector<Value> rows;
  std::vector<Value> values;  // Kind::values
  std::vector<int64_t> ints;
  std::vector<double> reals;
  std::vector<uint8_t> bools;
  std::vector<uint8_t> nulls;
  std::vector<uint8_t> validity;
  std::vector<int32_t> offsets{0};
  std::string chars;
};

void fill(Column& c, size_t n, Random& r) {
  AttributeColumn& col = c.column;
  col.length = n;
  const size_t kind = r.below(7);
  const bool with_nulls = r.below(2) == 1;
  c.nulls.assign(n + 1, 0);
  for (size_t i = 0; i < n; ++i) c.nulls[i] = with_nulls && r.below(4) == 0;
  auto row_null = [&](size_t i) { return with_nulls && c.nulls[i] != 0; };
  switch (kind) {
    case 0:
      col.kind = K::missing;
      c.rows.assign(n, Value::null());
      return;
    case 1:
      col.kind = K::values;
      for (size_t i = 0; i < n; ++i) c.values.push_back(any_value(r));
      c.rows = c.values;
      col.values = c.values.data();
      return;
    case 2:
      col.kind = K::integer;
      col.int_kind = trafficsplit::IntKind::i64;
      for (size_t i = 0; i < n; ++i) c.ints.push_back(kInts[r.below(std::size(kInts))]);
      for (size_t i = 0; i < n; ++i)
        c.rows.push_back(row_null(i) ? Value::null() : Value::of_int(c.ints[i]));
      col.data = c.ints.data();
      break;
    case 3:
      col.kind = K::real64;
      for (size_t i = 0; i < n; ++i) c.reals.push_back(kReals[r.below(std::size(kReals))]);
      for (size_t i = 0; i < n; ++i)
        c.rows.push_back(row_null(i) ? Value::null() : Value::of_real(c.reals[i]));
      col.data = c.reals.data();
      break;
    case 4:
      col.kind = K::boolean;
      for (size_t i = 0; i < n; ++i) c.bools.push_back(static_cast<uint8_t>(r.below(2)));
      for (size_t i = 0; i < n; ++i)
        c.rows.push_back(row_null(i) ? Value::null() : Value::of_bool(c.bools[i] != 0));
      col.data = c.bools.data();
      break;
    case 5:
      col.kind = K::timestamp;
      for (size_t i = 0; i < n; ++i) c.ints.push_back(kTimes[r.below(std::size(kTimes))]);
      for (size_t i = 0; i < n; ++i)
        c.rows.push_back(row_null(i) ? Value::null() : Value::of_timestamp(c.ints[i]));
      col.data = c.ints.data();
      break;
    default: {
      col.kind = K::text;
      std::vector<size_t> picks;
      for (size_t i = 0; i < n; ++i) {
        picks.push_back(r.below(std::size(kTexts)));
        c.chars += kTexts[picks.back()];
        c.offsets.push_back(static_cast<int32_t>(c.chars.size()));
      }
      for (size_t i = 0; i < n; ++i)
        c.rows.push_back(row_null(i) ? Value::null() : Value::of_string(kTexts[picks[i]]));
      trafficsplit::OffsetStringColumn text;
      text.offsets = c.offsets.data();
      text.data = c.chars.data();
      text.length = n;
      if (with_nulls && !text_nulls_in_mask(r)) {
        // As the bindings build text columns: nulls in the Arrow validity bitmap.
        c.validity.assign(n / 8 + 1, 0);
        for (size_t i = 0; i < n; ++i) {
          if (!row_null(i)) c.validity[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
        }
        text.validity = c.validity.data();
        col.text_column = text;
        return;
      }
      col.text_column = text;
      break;
    }
  }
  if (with_nulls) col.null_mask = c.nulls.data();
}

// Each attribute's column kind and the row's value type (the enums' numbers).
std::string describe(const std::deque<Column>& columns, size_t row) {
  std::string s;
  for (const auto& c : columns) {
    s += " column kind " + std::to_string(static_cast<int>(c.column.kind)) + " value type " +
         std::to_string(static_cast<int>(c.rows[row].type)) +
         (c.column.null_mask != nullptr && c.column.null_mask[row] ? " (null in the mask);" : ";");
  }
  return s;
}

// Named lists the expressions may reference (docs/targeting.md: `x in @name`).
const tg::NamedLists& named_lists() {
  static const tg::NamedLists lists = {
      {"countries", {Value::of_string("US"), Value::of_string("CA")}},
      {"mixed", {Value::of_int(1), Value::of_real(2.5), Value::of_string("x"), Value::null()}}};
  return lists;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > tg::kMaxExpressionBytes + 16) return 0;
  const std::string expression(reinterpret_cast<const char*>(data), size);
  std::deque<tg::CompiledTargeting> compiled;
  try {
    compiled.emplace_back(expression, named_lists());
  } catch (const tg::SyntaxError&) {
    return 0;
  }
  const tg::CompiledTargeting& t = compiled.front();

  const std::string canonical = t.canonical();
  try {
    compiled.emplace_back(canonical, named_lists());
  } catch (const tg::SyntaxError& e) {
    fail("the canonical form does not compile", expression,
         "canonical: " + canonical + "\n  error: " + e.what());
  }
  const tg::CompiledTargeting& again = compiled.back();
  if (again.canonical() != canonical) {
    fail("the canonical form does not print itself", expression,
         "canonical: " + canonical + "\n  printed again: " + again.canonical());
  }
  if (again.attributes() != t.attributes()) {
    fail("the canonical form names other attributes", expression, "canonical: " + canonical);
  }

  uint64_t seed = 1469598103934665603ULL;  // FNV-1a of the input: the same table every run
  for (size_t i = 0; i < size; ++i) seed = (seed ^ data[i]) * 1099511628211ULL;
  Random r{seed};
  const size_t n = 1 + r.below(80);
  const size_t attributes = t.attributes().size();
  std::deque<Column> columns(attributes);
  std::vector<AttributeColumn> views;
  for (auto& c : columns) {
    fill(c, n, r);
    views.push_back(c.column);
  }
  views.emplace_back();  // never empty, so data() is a valid pointer
  std::vector<uint8_t> one(n + 1, 7), several(n + 1, 7);
  t.mask(views.data(), n, one.data(), 1);
  t.mask(views.data(), n, several.data(), 3);
  if (one[n] != 7 || several[n] != 7) fail("mask wrote past the end", expression, "");
  for (size_t i = 0; i < n; ++i) {
    std::vector<Value> row;
    for (const auto& c : columns) row.push_back(c.rows[i]);
    row.push_back(Value::null());
    const tg::Truth truth = t.evaluate(row.data());
    const uint8_t want = truth == tg::kTrue ? 1 : 0;
    if (one[i] != want) {
      fail("the columnar mask differs from the row evaluation", expression,
           "row " + std::to_string(i) + ": mask " + std::to_string(one[i]) + ", evaluate " +
               std::to_string(static_cast<int>(truth)) + ";" + describe(columns, i));
    }
    if (several[i] != one[i]) fail("the mask depends on the thread count", expression, "");
    if (again.evaluate(row.data()) != truth) {
      fail("the canonical form evaluates differently", expression,
           "canonical: " + canonical + "; row " + std::to_string(i));
    }
  }
  return 0;
}
