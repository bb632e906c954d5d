// Arrow arrays read in place (trafficsplit/arrow/columns.hpp), as unit ids and as targeting
// attributes, with array offsets and validity bitmaps.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <variant>
#include <vector>

#include "trafficsplit/arrow/columns.hpp"
#include "trafficsplit/errors.hpp"
#include "trafficsplit/targeting/targeting.hpp"

namespace {

namespace tg = trafficsplit::targeting;
using K = tg::AttributeColumn::Kind;

// A schema and array over caller-owned buffers (nothing to release).
struct Arrow {
  ArrowSchema schema{};
  ArrowArray array{};
  std::vector<const void*> buffers;
  Arrow(const char* format, int64_t length, int64_t offset, int64_t null_count,
        std::vector<const void*> bufs)
      : buffers(std::move(bufs)) {
    schema.format = format;
    array.length = length;
    array.offset = offset;
    array.null_count = null_count;
    array.n_buffers = static_cast<int64_t>(buffers.size());
    array.buffers = buffers.data();
  }
};

std::vector<uint8_t> mask(const char* expression, const tg::AttributeColumn& column) {
  const tg::CompiledTargeting t(expression);
  std::vector<uint8_t> out(column.length, 9);
  t.mask(&column, column.length, out.data(), 1);
  return out;
}

TEST(Arrow, DoublesWithOffsetAndNulls) {
  const double values[] = {9.0, 1.0, 2.0, 0.0, 3.0};
  const uint8_t validity[] = {0b11110111};  // row 3 of the buffer (2 of the array) is null
  const Arrow a("g", 4, 1, 1, {validity, values});
  const auto numbers = trafficsplit::numbers_from_arrow(a.schema, a.array);
  ASSERT_TRUE(numbers.has_value());
  EXPECT_EQ(numbers->kind, trafficsplit::NumberColumn::Kind::real64);
  EXPECT_EQ(static_cast<const double*>(numbers->data)[0], 1.0);
  const tg::AttributeColumn c = tg::attribute_column_from_arrow(a.schema, a.array);
  EXPECT_EQ(c.kind, K::real64);
  EXPECT_EQ(c.length, 4u);
  // 1 > 1.5 false, 2 > 1.5 true, null unknown (not in the mask), 3 > 1.5 true
  EXPECT_EQ(mask("x > 1.5", c), (std::vector<uint8_t>{0, 1, 0, 1}));
  EXPECT_EQ(mask("x is null", c), (std::vector<uint8_t>{0, 0, 1, 0}));
}

TEST(Arrow, FloatsAndTimestamps) {
  const float floats[] = {0.5f, 2.5f};
  const Arrow f("f", 2, 0, 0, {nullptr, floats});
  EXPECT_EQ(tg::attribute_column_from_arrow(f.schema, f.array).kind, K::real32);
  EXPECT_EQ(mask("x >= 1", tg::attribute_column_from_arrow(f.schema, f.array)),
            (std::vector<uint8_t>{0, 1}));
  // 1970-01-01T05:00:00Z and 2024-01-01T23:59:59Z, in nanoseconds.
  const int64_t ns[] = {5LL * 3600 * 1'000'000'000, 1704153599LL * 1'000'000'000};
  const Arrow t("tsn:UTC", 2, 0, 0, {nullptr, ns});
  const tg::AttributeColumn c = tg::attribute_column_from_arrow(t.schema, t.array);
  EXPECT_EQ(c.kind, K::timestamp);
  EXPECT_EQ(mask("hour(x) == 5", c), (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(mask("hour(x) == 23", c), (std::vector<uint8_t>{0, 1}));
}

TEST(Arrow, IntegersAndStringsServeUnitsAndAttributes) {
  const int32_t ints[] = {7, 8, 9};
  const Arrow i("i", 2, 1, 0, {nullptr, ints});
  const auto unit = trafficsplit::column_from_arrow(i.schema, i.array);
  const auto* column = std::get_if<trafficsplit::IntColumn>(&unit);
  ASSERT_NE(column, nullptr);
  EXPECT_EQ(static_cast<const int32_t*>(column->values)[0], 8);
  const tg::AttributeColumn c = tg::attribute_column_from_arrow(i.schema, i.array);
  EXPECT_EQ(c.kind, K::integer);
  EXPECT_EQ(mask("x == 9", c), (std::vector<uint8_t>{0, 1}));

  const int32_t offsets[] = {0, 2, 4, 9};
  const char data[] = "USCAother";
  const Arrow s("u", 3, 0, 0, {nullptr, offsets, data});
  EXPECT_TRUE(std::holds_alternative<trafficsplit::OffsetStringColumn>(
      trafficsplit::column_from_arrow(s.schema, s.array)));
  const tg::AttributeColumn text = tg::attribute_column_from_arrow(s.schema, s.array);
  EXPECT_EQ(text.kind, K::text);
  EXPECT_EQ(mask("x in [\"US\", \"CA\"]", text), (std::vector<uint8_t>{1, 1, 0}));
  EXPECT_EQ(trafficsplit::column_length(text.text_column), 3u);
}

TEST(Arrow, OtherTypesAreRefusedByName) {
  const uint8_t bits[] = {1};
  const Arrow b("b", 1, 0, 0, {nullptr, bits});
  EXPECT_FALSE(trafficsplit::numbers_from_arrow(b.schema, b.array).has_value());
  try {
    tg::attribute_column_from_arrow(b.schema, b.array);
    FAIL() << "no exception";
  } catch (const trafficsplit::UnitTypeError& e) {
    EXPECT_NE(std::string(e.what()).find("format 'b'"), std::string::npos) << e.what();
  }
  const double values[] = {1.0};
  const Arrow g("g", 1, 0, 0, {nullptr, values});
  EXPECT_THROW(trafficsplit::column_from_arrow(g.schema, g.array), trafficsplit::UnitTypeError);
}

}  // namespace
