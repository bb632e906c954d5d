// Targeting expressions: parsed and type-checked once, evaluated per request or over
// columns with one semantics (docs/targeting.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "trafficsplit/arrow/columns.hpp"
#include "trafficsplit/targeting/value.hpp"

namespace trafficsplit::targeting {

inline constexpr size_t kMaxExpressionBytes = 64 * 1024;
inline constexpr size_t kMaxDepth = 200;
inline constexpr size_t kMaxListItems = 1'000'000;

// A compile-time error with its 1-based position (in characters) and what was expected.
class SyntaxError : public std::invalid_argument {
 public:
  SyntaxError(const std::string& message, size_t line, size_t column, std::string expected,
              std::string excerpt)
      : std::invalid_argument(message),
        line_(line),
        column_(column),
        expected_(std::move(expected)),
        excerpt_(std::move(excerpt)) {}
  size_t line() const noexcept { return line_; }
  size_t column() const noexcept { return column_; }
  const std::string& expected() const noexcept { return expected_; }
  const std::string& excerpt() const noexcept { return excerpt_; }

 private:
  size_t line_, column_;
  std::string expected_, excerpt_;
};

// One attribute as a column of rows. Exactly one representation is set, by `kind`.
struct AttributeColumn {
  enum class Kind : uint8_t {
    missing,
    values,
    boolean,
    integer,
    real32,
    real64,
    timestamp,
    text,
    dictionary,
    rows
  };
  Kind kind = Kind::missing;
  size_t length = 0;
  // values: one Value per row (the per-request form and mixed-type columns); values[0] is
  // row `first_row` (0 but in the block of a `rows` column that the evaluator read).
  const Value* values = nullptr;
  size_t first_row = 0;
  // rows: Values handed over by the caller a block at a time, for sources that only the
  // calling thread may read (Python objects, under the interpreter lock): read_rows(context,
  // begin, count, out) fills out[0 .. count) with rows begin .. begin + count - 1, which stay
  // valid until its next call, and may throw. A mask that reads such a column runs on the
  // calling thread alone; it cannot be a dictionary's values.
  using RowsReader = void (*)(void* context, size_t begin, size_t count, Value* out);
  RowsReader read_rows = nullptr;
  void* rows_context = nullptr;
  // boolean (1 byte per row), integer (int_kind), real32/real64, timestamp (int64 ticks of
  // time_unit; the minimum int64 is NaT, null).
  const void* data = nullptr;
  IntKind int_kind = IntKind::i64;
  TimeUnit time_unit = TimeUnit::ns;
  // nulls: a byte mask (non-zero = null) and/or an Arrow validity bitmap.
  const uint8_t* null_mask = nullptr;
  const uint8_t* validity = nullptr;
  int64_t validity_offset = 0;
  // text: Arrow utf8 / large_utf8 / utf8_view (the UnitColumn kinds, reused).
  UnitColumn text_column;
  // dictionary: integer codes in `data` (int_kind; negative or null = null) into `dictionary`.
  const AttributeColumn* dictionary = nullptr;
};

// An attribute column over an Arrow array's buffers (float, double, timestamps of any unit and
// time zone, date64, integers and the text kinds), which must outlive it. Throws UnitTypeError
// naming any other Arrow type.
AttributeColumn attribute_column_from_arrow(const ArrowSchema& schema, const ArrowArray& array);

class Program;  // the compiled form

// Lists passed beside the expression and referenced as `x in @name` (as pandas' query reads
// local variables): they are not bound by the 64 KiB expression limit.
using NamedLists = std::vector<std::pair<std::string, std::vector<Value>>>;

class CompiledTargeting {
 public:
  // Parses and checks; throws SyntaxError.
  explicit CompiledTargeting(const std::string& expression, const NamedLists& lists = {});
  ~CompiledTargeting();
  CompiledTargeting(const CompiledTargeting&) = delete;
  CompiledTargeting& operator=(const CompiledTargeting&) = delete;

  // Attribute names in order of first use; columns and values are passed in this order.
  const std::vector<std::string>& attributes() const;
  // For each attribute, its dotted parts (one part for a plain or backquoted name).
  const std::vector<std::vector<std::string>>& attribute_paths() const;
  std::string canonical() const;

  // One row given as one Value per attribute.
  Truth evaluate(const Value* attribute_values) const;
  // Every row of the columns (one per attribute, all of `rows` length): out[i] = 1 when true.
  void mask(const AttributeColumn* columns, size_t rows, uint8_t* out, unsigned threads) const;

 private:
  std::unique_ptr<Program> program_;
};

}  // namespace trafficsplit::targeting
