// GoogleTest: Parquet page bodies. Expected bytes follow the format's Encodings.md: the
// bit-packing example there (0..7 at bit width 3 packs to 0x88 0xC6 0xFA), RLE runs and
// bit-packed runs of the hybrid, PLAIN values. Reading the pages back is checked from Python
// (tests/test_backfill_parquet.py) with pyarrow, DuckDB and Spark.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "trafficsplit/arrow/parquet.hpp"
#include "trafficsplit/errors.hpp"

using trafficsplit::InvalidArgument;
namespace parquet = trafficsplit::parquet;

namespace {

using Bytes = std::vector<uint8_t>;

template <class F>
Bytes encode(F f) {
  Bytes out(4096);
  const parquet::Encoded e = f(out.data(), out.size());
  EXPECT_TRUE(e.fits);
  out.resize(e.size);
  return out;
}

}  // namespace

TEST(ParquetPages, BitPackingAsTheFormatsExample) {
  const std::vector<uint8_t> values{0, 1, 2, 3, 4, 5, 6, 7};
  const Bytes got = encode([&](uint8_t* out, size_t cap) {
    return parquet::indices_page(values.data(), 8, 3, out, cap);
  });
  // bit width, one bit-packed run of one group ((1 << 1) | 1), the packed bytes
  EXPECT_EQ(got, (Bytes{3, 0x03, 0x88, 0xC6, 0xFA}));
}

TEST(ParquetPages, ArmIndicesWithoutAndWithNulls) {
  const std::vector<int16_t> all{1, 0, 1, 1, 0, 0, 1, 0, 1};
  const Bytes every = encode(
      [&](uint8_t* out, size_t cap) { return parquet::indices_page(all.data(), 9, 1, out, cap); });
  // levels: 4-byte length 2, one RLE run of 9 ones (9 << 1 = 18), value 1; then the indices:
  // width 1, two groups ((2 << 1) | 1 = 5), bits 1,0,1,1,0,0,1,0 | 1 then zeros
  EXPECT_EQ(every, (Bytes{2, 0, 0, 0, 18, 1, 1, 5, 0x4D, 0x01}));

  const std::vector<int16_t> some{0, -1, 1, -1, 2};
  const Bytes nulls = encode(
      [&](uint8_t* out, size_t cap) { return parquet::indices_page(some.data(), 5, 2, out, cap); });
  // levels: length 2, one bit-packed group (3), present bits 1,0,1,0,1 (0x15); indices of the
  // three present rows at width 2: 0 | 1 << 2 | 2 << 4 = 0x24, padded to a group of eight
  EXPECT_EQ(nulls, (Bytes{2, 0, 0, 0, 3, 0x15, 2, 3, 0x24, 0x00}));

  const std::vector<int16_t> none{-1, -1, -1};
  const Bytes empty = encode(
      [&](uint8_t* out, size_t cap) { return parquet::indices_page(none.data(), 3, 1, out, cap); });
  EXPECT_EQ(empty, (Bytes{2, 0, 0, 0, 3, 0x00, 1}));  // no present value: the width alone
}

TEST(ParquetPages, BucketsNullWhereNegative) {
  const std::vector<int32_t> buckets{7, -1, 9999};
  const Bytes got = encode([&](uint8_t* out, size_t cap) {
    return parquet::nonnegative_page(buckets.data(), 3, out, cap);
  });
  EXPECT_EQ(got, (Bytes{2, 0, 0, 0, 3, 0x05, 7, 0, 0, 0, 0x0F, 0x27, 0, 0}));
}

TEST(ParquetPages, BinaryFromASlicedArrayWithAnOddBitmapOffset) {
  // values "ab", "", "c", "def" at rows 0..3; the page takes rows 1..3 and the bitmap starts
  // three bits in: its bits 3..6 are rows 0..3 = 1, 1, 0, 1
  const std::vector<int32_t> offsets{0, 2, 2, 3, 6};
  const std::vector<uint8_t> data{'a', 'b', 'c', 'd', 'e', 'f'};
  const uint8_t bitmap[] = {0b01011000};
  const parquet::Bitmap validity{bitmap, 3};
  const Bytes got = encode([&](uint8_t* out, size_t cap) {
    return parquet::binary_page(offsets.data(), data.data(), validity, 1, 3, true, out, cap);
  });
  // levels of rows 1..3: 1, 0, 1 (0x05); values: "" and "def"
  EXPECT_EQ(got, (Bytes{2, 0, 0, 0, 3, 0x05, 0, 0, 0, 0, 3, 0, 0, 0, 'd', 'e', 'f'}));

  const Bytes required = encode([&](uint8_t* out, size_t cap) {
    return parquet::binary_page(offsets.data(), data.data(), {}, 0, 2, false, out, cap);
  });
  EXPECT_EQ(required, (Bytes{2, 0, 0, 0, 'a', 'b', 0, 0, 0, 0}));
}

TEST(ParquetPages, FixedWidthValuesSkipNulls) {
  const std::vector<int64_t> values{1, -2, 3};
  const uint8_t bitmap[] = {0b101};
  const Bytes got = encode([&](uint8_t* out, size_t cap) {
    return parquet::fixed_page(reinterpret_cast<const uint8_t*>(values.data()), 8, {bitmap, 0}, 0,
                               3, true, out, cap);
  });
  Bytes want{2, 0, 0, 0, 3, 0x05, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(got, want);
}

TEST(ParquetPages, TooSmallAnOutputWritesNothingAndTellsTheSize) {
  const std::vector<int32_t> buckets(1000, 5);
  Bytes out(16, 0xAB);
  const parquet::Encoded e = parquet::nonnegative_page(buckets.data(), 1000, out.data(), 16);
  EXPECT_FALSE(e.fits);
  EXPECT_GE(e.size, 4000u);
  EXPECT_EQ(out, Bytes(16, 0xAB));
}

TEST(ParquetPages, OffsetsOutOfOrderAreRefused) {
  const std::vector<int32_t> offsets{0, 4, 2, 6};
  const std::vector<uint8_t> data(6, 'x');
  Bytes out(256);
  EXPECT_THROW(
      parquet::binary_page(offsets.data(), data.data(), {}, 0, 3, false, out.data(), out.size()),
      InvalidArgument);
}

TEST(ParquetPages, IndexBitWidths) {
  EXPECT_EQ(parquet::index_bit_width(1), 1);
  EXPECT_EQ(parquet::index_bit_width(2), 1);
  EXPECT_EQ(parquet::index_bit_width(3), 2);
  EXPECT_EQ(parquet::index_bit_width(256), 8);
  EXPECT_EQ(parquet::index_bit_width(257), 9);
}
