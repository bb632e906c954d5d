// Parquet data-page bodies for backfill output: definition levels and values encoded straight
// from Arrow buffers and assignment results, uncompressed, for data pages of format v1. The
// file's framing (page headers, row groups, footer) is written by trafficsplit/_parquet.py.
//
// Encodings (Apache Parquet format, Encodings.md):
// - definition levels (max level 1): the RLE/bit-packed hybrid behind a 4-byte length. A
//   column without nulls is one RLE run; otherwise one bit-packed run, whose bytes at bit width
//   1 are an Arrow validity bitmap.
// - PLAIN values of the present rows: 4-byte little-endian length and bytes for BYTE_ARRAY,
//   little-endian fixed width for INT32 and INT64.
// - RLE_DICTIONARY indices of the present rows: one byte of bit width, then one bit-packed run.
#pragma once

#include <cstddef>
#include <cstdint>

namespace trafficsplit::parquet {

// Where present rows are told: an Arrow validity bitmap (bit `offset + i`; null: every row
// present) or, for assignment results, the sign of the value (present where >= 0).
struct Bitmap {
  const uint8_t* bits = nullptr;
  int64_t offset = 0;
};

// Each encoder writes one page body into `out` (`capacity` bytes) and returns its size; when
// the body may not fit, it writes nothing and returns the capacity it needs with fits = false.
struct Encoded {
  size_t size = 0;
  bool fits = true;
};

// Rows [first, first + count) of an Arrow (large_)string/(large_)binary array: `offsets` is the
// array's offsets buffer (32- or 64-bit) and `first` counts from its start, so a sliced array
// passes its offset plus the page's first row. `optional`: write definition levels (a column
// declared required has no nulls and none).
template <class Offset>
Encoded binary_page(const Offset* offsets, const uint8_t* data, Bitmap validity, int64_t first,
                    int64_t count, bool optional, uint8_t* out, size_t capacity);

// Rows [first, first + count) of fixed-width values (`width` 4 or 8 bytes); as binary_page.
Encoded fixed_page(const uint8_t* values, size_t width, Bitmap validity, int64_t first,
                   int64_t count, bool optional, uint8_t* out, size_t capacity);

// INT32 values of assignment results, null where negative (a bucket without a unit).
Encoded nonnegative_page(const int32_t* values, int64_t count, uint8_t* out, size_t capacity);

// Dictionary indices of assignment results: with signed T, null where negative (the arm index
// of a row without an arm) and definition levels written; with unsigned T, every row present
// and no levels (a required column).
template <class T>
Encoded indices_page(const T* values, int64_t count, int bit_width, uint8_t* out, size_t capacity);

// The narrowest bit width, at least 1, that holds indices below `dictionary_size`.
int index_bit_width(size_t dictionary_size);

}  // namespace trafficsplit::parquet
