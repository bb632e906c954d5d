// Row readers of the assignment kernels, one per column layout (internal header): each gives
// row i's unit as bytes (strings, as they are) or as digit words (integers), or says it is
// missing or cannot be encoded. Inlined into the kernels' loops, so they stay in a header.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "arrow/read.hpp"
#include "assignment/digits.hpp"
#include "trafficsplit/assignment/batch.hpp"

namespace trafficsplit::detail {

// Each reader yields one row: kOk with its text, kMissing, or kBad.
enum class Row : uint8_t { kOk, kMissing, kBad };

// A row's bytes, where they already are (strings) or re-encoded in the scratch buffer.
struct Bytes {
  const char* data = nullptr;
  size_t len = 0;
};

// Scratch space for rows that must be re-encoded (integers, UTF-32).
struct Scratch {
  DigitBlock digits;
  size_t block_begin = size_t{1} << 63;  // far from every row: the first read fills
  std::vector<char> buffer = std::vector<char>(64);
};

template <typename T>
struct IntReader {
  using Text = DigitText;
  const T* values;
  const uint8_t* missing;
  const uint8_t* validity;
  int64_t validity_offset;
  size_t length = 0;

  bool has_missing() const { return missing != nullptr || validity != nullptr; }
  bool is_missing(size_t i) const {
    return (missing != nullptr && missing[i]) || !valid_bit(validity, validity_offset, i);
  }

  Row read(size_t i, DigitText& text, Scratch& scratch) const {
    if (is_missing(i)) return Row::kMissing;
    size_t k = i - scratch.block_begin;  // wraps around for rows before the block
    if (k >= kIntBlock) {
      // Rows i .. i + kIntBlock (or the end), missing ones too (their text is never read).
      scratch.block_begin = i;
      digit_block(values + i, std::min(kIntBlock, length - i), scratch.digits);
      k = 0;
    }
    const DigitBlock& b = scratch.digits;
    text = DigitText{{b.words[0][k], b.words[1][k], b.words[2][k]}, 0};
    text.len = text_length(text.w);
    return Row::kOk;
  }
};

template <typename Offset>
struct OffsetStringReader {
  using Text = Bytes;
  const Offset* offsets;
  const char* base;
  const uint8_t* validity;
  int64_t validity_offset;

  // The string bytes of row i + kAhead are fetched while row i hashes: on inputs larger than
  // the cache this more than doubles throughput. 128 rows (4.6 KiB of UUIDs) ahead measured
  // 2 to 5 percent faster than 32.
  static constexpr size_t kAhead = 128;
  size_t length = 0;

  Row read(size_t i, Bytes& text, Scratch&) const {
    if (i + kAhead < length) __builtin_prefetch(base + offsets[i + kAhead]);
    if (!valid_bit(validity, validity_offset, i)) return Row::kMissing;
    const std::string_view s = detail::offset_string(offsets, base, i);
    text = Bytes{s.data(), s.size()};
    return Row::kOk;
  }
};

struct ViewStringReader {
  using Text = Bytes;
  const uint8_t* views;
  const char* const* buffers;
  size_t buffer_count;
  const uint8_t* validity;
  int64_t validity_offset;

  static constexpr size_t kAhead = 32;
  size_t length = 0;

  Row read(size_t i, Bytes& text, Scratch&) const {
    if (i + kAhead < length) detail::prefetch_view(views, buffers, buffer_count, i + kAhead);
    if (!valid_bit(validity, validity_offset, i)) return Row::kMissing;
    std::string_view s;
    if (!detail::view_string(views, buffers, buffer_count, i, s)) return Row::kBad;
    text = Bytes{s.data(), s.size()};
    return Row::kOk;
  }
};

struct SpanReader {
  using Text = Bytes;
  const char* const* pointers;
  const int64_t* lengths;

  Row read(size_t i, Bytes& text, Scratch&) const {
    if (lengths[i] < 0) return Row::kMissing;
    text = Bytes{pointers[i], static_cast<size_t>(lengths[i])};
    return Row::kOk;
  }
};

struct FixedBytesReader {
  using Text = Bytes;
  const char* base;
  size_t item_size;

  Row read(size_t i, Bytes& text, Scratch&) const {
    const char* data = base + i * item_size;
    size_t len = item_size;
    while (len > 0 && data[len - 1] == '\0') --len;
    text = Bytes{data, len};
    return Row::kOk;
  }
};

struct Utf32Reader {
  using Text = Bytes;
  const char* base;
  size_t item_size;

  Row read(size_t i, Bytes& text, Scratch& scratch) const {
    const char* item = base + i * item_size;
    size_t chars = item_size / 4;
    auto code_at = [&](size_t k) {
      uint32_t c;
      std::memcpy(&c, item + 4 * k, 4);
      return c;
    };
    while (chars > 0 && code_at(chars - 1) == 0) --chars;
    if (scratch.buffer.size() < chars * 4) scratch.buffer.resize(chars * 4);
    char* out = scratch.buffer.data();
    size_t n = 0;
    for (size_t k = 0; k < chars; ++k) {
      const uint32_t c = code_at(k);
      if (c < 0x80) {
        out[n++] = static_cast<char>(c);
      } else if (c < 0x800) {
        out[n++] = static_cast<char>(0xC0 | (c >> 6));
        out[n++] = static_cast<char>(0x80 | (c & 0x3F));
      } else if (c < 0x10000) {
        if (c >= 0xD800 && c <= 0xDFFF) return Row::kBad;  // a lone surrogate
        out[n++] = static_cast<char>(0xE0 | (c >> 12));
        out[n++] = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out[n++] = static_cast<char>(0x80 | (c & 0x3F));
      } else if (c <= 0x10FFFF) {
        out[n++] = static_cast<char>(0xF0 | (c >> 18));
        out[n++] = static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        out[n++] = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out[n++] = static_cast<char>(0x80 | (c & 0x3F));
      } else {
        return Row::kBad;
      }
    }
    text = Bytes{out, n};
    return Row::kOk;
  }
};

struct CallbackReader {
  using Text = Bytes;
  RowReader reader;
  void* context;

  Row read(size_t i, Bytes& text, Scratch&) const {
    return reader(context, i, &text.data, &text.len) ? Row::kOk : Row::kMissing;
  }
};

template <typename Reader>
struct is_int_reader : std::false_type {};
template <typename T>
struct is_int_reader<IntReader<T>> : std::true_type {};

// Readers whose row bytes stay where they are for the whole call (in the column's buffers or
// the caller's objects), rather than in a per-row scratch buffer or digit words.
template <typename Reader>
struct has_stable_bytes : std::false_type {};
template <typename Offset>
struct has_stable_bytes<OffsetStringReader<Offset>> : std::true_type {};
template <>
struct has_stable_bytes<ViewStringReader> : std::true_type {};
template <>
struct has_stable_bytes<SpanReader> : std::true_type {};
template <>
struct has_stable_bytes<FixedBytesReader> : std::true_type {};

// Calls fn(reader, length) with the reader matching the column.
template <typename Fn>
void visit_column(const UnitColumn& column, Fn&& fn) {
  if (const auto* c = std::get_if<IntColumn>(&column)) {
    auto go = [&](auto tag) {
      using T = decltype(tag);
      fn(IntReader<T>{static_cast<const T*>(c->values), c->missing, c->validity, c->validity_offset,
                      c->length},
         c->length);
    };
    switch (c->kind) {
      case IntKind::i8:
        return go(int8_t{});
      case IntKind::i16:
        return go(int16_t{});
      case IntKind::i32:
        return go(int32_t{});
      case IntKind::i64:
        return go(int64_t{});
      case IntKind::u8:
        return go(uint8_t{});
      case IntKind::u16:
        return go(uint16_t{});
      case IntKind::u32:
        return go(uint32_t{});
      case IntKind::u64:
        return go(uint64_t{});
    }
  } else if (const auto* c = std::get_if<OffsetStringColumn>(&column)) {
    if (c->large_offsets) {
      fn(OffsetStringReader<int64_t>{static_cast<const int64_t*>(c->offsets), c->data, c->validity,
                                     c->validity_offset, c->length},
         c->length);
    } else {
      fn(OffsetStringReader<int32_t>{static_cast<const int32_t*>(c->offsets), c->data, c->validity,
                                     c->validity_offset, c->length},
         c->length);
    }
  } else if (const auto* c = std::get_if<ViewStringColumn>(&column)) {
    fn(ViewStringReader{c->views, c->buffers, c->buffer_count, c->validity, c->validity_offset,
                        c->length},
       c->length);
  } else if (const auto* c = std::get_if<SpanColumn>(&column)) {
    fn(SpanReader{c->data, c->lengths}, c->length);
  } else if (const auto* c = std::get_if<FixedWidthColumn>(&column)) {
    if (c->utf32) {
      fn(Utf32Reader{c->data, c->item_size}, c->length);
    } else {
      fn(FixedBytesReader{c->data, c->item_size}, c->length);
    }
  }
}

}  // namespace trafficsplit::detail
