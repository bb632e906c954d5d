// Arrow arrays read as column views, without copying: the one place that knows Arrow formats.
#include "trafficsplit/arrow/columns.hpp"

#include <optional>
#include <string>

#include "trafficsplit/errors.hpp"

namespace trafficsplit {

size_t column_length(const UnitColumn& column) noexcept {
  return std::visit([](const auto& c) { return c.length; }, column);
}

namespace {

std::string describe_format(const char* format) {
  return format == nullptr ? std::string("(null)") : std::string(format);
}

}  // namespace

UnitColumn column_from_arrow(const ArrowSchema& schema, const ArrowArray& array) {
  const std::string format = describe_format(schema.format);
  if (schema.dictionary != nullptr || array.dictionary != nullptr) {
    throw UnitTypeError("dictionary-encoded Arrow arrays must be decoded by the caller", 0);
  }
  const size_t length = static_cast<size_t>(array.length);
  const int64_t offset = array.offset;
  const auto* validity = array.n_buffers > 0 && array.null_count != 0
                             ? static_cast<const uint8_t*>(array.buffers[0])
                             : nullptr;
  auto int_column = [&](IntKind kind, size_t width) {
    IntColumn c;
    c.kind = kind;
    c.values = static_cast<const char*>(array.buffers[1]) + width * static_cast<size_t>(offset);
    c.length = length;
    c.validity = validity;
    c.validity_offset = offset;
    return UnitColumn{c};
  };
  if (format == "c") return int_column(IntKind::i8, 1);
  if (format == "s") return int_column(IntKind::i16, 2);
  if (format == "i") return int_column(IntKind::i32, 4);
  if (format == "l") return int_column(IntKind::i64, 8);
  if (format == "C") return int_column(IntKind::u8, 1);
  if (format == "S") return int_column(IntKind::u16, 2);
  if (format == "I") return int_column(IntKind::u32, 4);
  if (format == "L") return int_column(IntKind::u64, 8);
  if (format == "u" || format == "z" || format == "U" || format == "Z") {
    OffsetStringColumn c;
    c.large_offsets = format == "U" || format == "Z";
    const size_t width = c.large_offsets ? 8 : 4;
    c.offsets = static_cast<const char*>(array.buffers[1]) + width * static_cast<size_t>(offset);
    c.data = static_cast<const char*>(array.buffers[2]);
    c.length = length;
    c.validity = validity;
    c.validity_offset = offset;
    if (c.data == nullptr) c.data = "";
    return c;
  }
  if (format == "vu" || format == "vz") {
    ViewStringColumn c;
    c.views = static_cast<const uint8_t*>(array.buffers[1]) + 16 * static_cast<size_t>(offset);
    // buffers: validity, views, the variadic data buffers, then their sizes.
    c.buffer_count = array.n_buffers >= 3 ? static_cast<size_t>(array.n_buffers - 3) : 0;
    c.buffers = reinterpret_cast<const char* const*>(array.buffers + 2);
    c.length = length;
    c.validity = validity;
    c.validity_offset = offset;
    return c;
  }
  throw UnitTypeError("Arrow type with format '" + format +
                          "' cannot hold unit ids; expected integers, string, large_string, "
                          "string_view or binary",
                      0);
}

std::optional<NumberColumn> numbers_from_arrow(const ArrowSchema& schema, const ArrowArray& array) {
  const std::string format = describe_format(schema.format);
  NumberColumn c;
  size_t width = 8;
  if (format == "g") {
    c.kind = NumberColumn::Kind::real64;
  } else if (format == "f") {
    c.kind = NumberColumn::Kind::real32;
    width = 4;
  } else if (format.rfind("tsn:", 0) == 0) {
    c.kind = NumberColumn::Kind::timestamp;
  } else {
    return std::nullopt;
  }
  c.data = static_cast<const char*>(array.buffers[1]) + width * static_cast<size_t>(array.offset);
  c.length = static_cast<size_t>(array.length);
  c.validity = array.n_buffers > 0 && array.null_count != 0
                   ? static_cast<const uint8_t*>(array.buffers[0])
                   : nullptr;
  c.validity_offset = array.offset;
  return c;
}

}  // namespace trafficsplit
