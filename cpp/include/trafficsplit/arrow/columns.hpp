// Columns of values the kernels read in place, without a copy or a per-row allocation: Arrow
// arrays (the C data interface, also how polars arrives), numpy buffers and pointers gathered
// from Python objects. Assignment reads unit ids through these; targeting reads attribute
// columns through them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <variant>

#include "trafficsplit/arrow/c_data.hpp"

namespace trafficsplit {

enum class IntKind : uint8_t { i8, i16, i32, i64, u8, u16, u32, u64 };

// Fixed-width integers; a row is missing where `missing[i] != 0` or its Arrow validity
// bit is 0 (either may be null).
struct IntColumn {
  IntKind kind = IntKind::i64;
  const void* values = nullptr;
  size_t length = 0;
  const uint8_t* missing = nullptr;
  const uint8_t* validity = nullptr;
  int64_t validity_offset = 0;
};

// Arrow (large_)string / (large_)binary: offsets already shifted by the array offset.
struct OffsetStringColumn {
  bool large_offsets = false;
  const void* offsets = nullptr;
  const char* data = nullptr;
  size_t length = 0;
  const uint8_t* validity = nullptr;
  int64_t validity_offset = 0;
};

// Arrow string_view / binary_view.
struct ViewStringColumn {
  const uint8_t* views = nullptr;  // 16 bytes per row, already shifted by the array offset
  const char* const* buffers = nullptr;
  size_t buffer_count = 0;
  size_t length = 0;
  const uint8_t* validity = nullptr;
  int64_t validity_offset = 0;
};

// Pointers and lengths gathered elsewhere (a Python list); length < 0 marks a missing row.
struct SpanColumn {
  const char* const* data = nullptr;
  const int64_t* lengths = nullptr;
  size_t length = 0;
};

// numpy fixed-width 'U' (UTF-32, converted to UTF-8) or 'S' (bytes); trailing NULs dropped.
struct FixedWidthColumn {
  bool utf32 = false;
  const char* data = nullptr;
  size_t item_size = 0;  // bytes per row
  size_t length = 0;
};

using UnitColumn =
    std::variant<IntColumn, OffsetStringColumn, ViewStringColumn, SpanColumn, FixedWidthColumn>;

size_t column_length(const UnitColumn& column) noexcept;

// Reads an Arrow array of unit ids (integers, utf8, large_utf8, string_view, binary
// kinds, or null). Throws UnitTypeError naming the Arrow type otherwise.
UnitColumn column_from_arrow(const ArrowSchema& schema, const ArrowArray& array);

// Arrow float32 / float64 and timestamp[ns] (any time zone) arrays: the fixed-width values that
// are not unit ids. Offsets are applied to `data`; the validity bitmap keeps its offset.
struct NumberColumn {
  enum class Kind : uint8_t { real32, real64, timestamp };
  Kind kind = Kind::real64;
  const void* data = nullptr;
  size_t length = 0;
  const uint8_t* validity = nullptr;
  int64_t validity_offset = 0;
};

// Reads an Arrow float, double or timestamp[ns] array; none for every other format.
std::optional<NumberColumn> numbers_from_arrow(const ArrowSchema& schema, const ArrowArray& array);

}  // namespace trafficsplit
