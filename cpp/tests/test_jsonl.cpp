// GoogleTest: exposure records as JSON Lines from Arrow columns. Expected texts are Python's:
// repr() of the floats, json.encoder.encode_basestring of the strings, and the lines
// ExposureBatch.jsonl writes for the same two records (python/trafficsplit/telemetry).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "trafficsplit/errors.hpp"
#include "trafficsplit/telemetry/jsonl.hpp"

using trafficsplit::InvalidArgument;
using trafficsplit::telemetry::append_json_string;
using trafficsplit::telemetry::append_python_float;
using trafficsplit::telemetry::ExposureJsonl;

namespace {

std::string json_string(std::string_view text) {
  std::string out;
  EXPECT_TRUE(append_json_string(out, text));
  return out;
}

// Arrow arrays built by hand: owned buffers, no release callbacks (nothing is exported).
struct Column {
  std::vector<std::vector<uint8_t>> data;
  std::vector<const void*> buffers;
  ArrowArray array{};
  ArrowSchema schema{};
  std::string format;
  std::unique_ptr<Column> dictionary;

  void finish(int64_t length, int64_t null_count) {
    buffers.clear();
    for (auto& d : data) buffers.push_back(d.empty() ? nullptr : d.data());
    array.length = length;
    array.null_count = null_count;
    array.n_buffers = static_cast<int64_t>(buffers.size());
    array.buffers = buffers.data();
    schema.format = format.c_str();
    if (dictionary) {
      array.dictionary = &dictionary->array;
      schema.dictionary = &dictionary->schema;
    }
  }
};

template <typename T>
std::vector<uint8_t> bytes_of(const std::vector<T>& values) {
  std::vector<uint8_t> out(values.size() * sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::vector<uint8_t> bits_of(const std::vector<bool>& set) {
  std::vector<uint8_t> out((set.size() + 7) / 8, 0);
  for (size_t i = 0; i < set.size(); ++i) {
    if (set[i]) out[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
  }
  return out;
}

// A utf8 column; nullptr entries are null.
std::unique_ptr<Column> text(const std::vector<const char*>& values) {
  auto c = std::make_unique<Column>();
  std::vector<int32_t> offsets{0};
  std::vector<uint8_t> chars;
  std::vector<bool> valid;
  int64_t nulls = 0;
  for (const char* v : values) {
    if (v != nullptr) chars.insert(chars.end(), v, v + std::strlen(v));
    offsets.push_back(static_cast<int32_t>(chars.size()));
    valid.push_back(v != nullptr);
    nulls += v == nullptr;
  }
  c->data = {nulls ? bits_of(valid) : std::vector<uint8_t>{}, bytes_of(offsets), chars};
  c->format = "u";
  c->finish(static_cast<int64_t>(values.size()), nulls);
  return c;
}

template <typename T>
std::unique_ptr<Column> fixed(const char* format, const std::vector<T>& values,
                              const std::vector<bool>& valid = {}) {
  auto c = std::make_unique<Column>();
  c->data = {valid.empty() ? std::vector<uint8_t>{} : bits_of(valid), bytes_of(values)};
  c->format = format;
  int64_t nulls = 0;
  for (bool v : valid) nulls += !v;
  c->finish(static_cast<int64_t>(values.size()), nulls);
  return c;
}

std::unique_ptr<Column> coded(const std::vector<int32_t>& indices,
                              const std::vector<const char*>& values) {
  auto c = std::make_unique<Column>();
  c->dictionary = text(values);
  c->data = {{}, bytes_of(indices)};
  c->format = "i";
  c->finish(static_cast<int64_t>(indices.size()), 0);
  return c;
}

struct Batch {
  std::vector<std::unique_ptr<Column>> columns;
  std::vector<ArrowArray*> arrays;
  std::vector<ArrowSchema*> schemas;
  ArrowArray array{};
  ArrowSchema schema{};

  explicit Batch(std::vector<std::unique_ptr<Column>> cs) : columns(std::move(cs)) {
    for (auto& c : columns) {
      arrays.push_back(&c->array);
      schemas.push_back(&c->schema);
    }
    array.length = columns[0]->array.length;
    array.n_children = static_cast<int64_t>(columns.size());
    array.children = arrays.data();
    schema.format = "+s";
    schema.n_children = array.n_children;
    schema.children = schemas.data();
  }
};

// The two records of the expected lines below, with `unit` and `probability` to vary.
Batch two_records(std::vector<const char*> unit = {"u\"1\n\x7f\xe2\x80\xa8\xc3\xa9\xf0\x9f\x98\x80",
                                                   nullptr},
                  std::vector<double> probability = {0.35, 1.0}) {
  std::vector<std::unique_ptr<Column>> cs;
  cs.push_back(fixed<int64_t>("tsu:UTC", {1'700'000'000'123'456LL, -5}));
  cs.push_back(text(unit));
  cs.push_back(coded({0, 0}, {"e"}));
  cs.push_back(coded({0, 1}, {"a", "b"}));
  cs.push_back(fixed<int32_t>("i", {7, -1}));
  cs.push_back(coded({0, 1}, {"assigned", "override"}));
  cs.push_back(coded({0, 0}, {"v1"}));
  cs.push_back(fixed<double>("g", probability));
  auto attributes = coded({0, 0}, {"{\"k\": \"v\"}"});
  attributes->data[0] = bits_of({true, false});
  attributes->finish(2, 1);
  cs.push_back(std::move(attributes));
  cs.push_back(text({nullptr, "r\\"}));
  cs.push_back(text({nullptr, "a"}));
  cs.push_back(fixed<uint8_t>("b", {0b10}));
  cs.back()->finish(2, 0);
  cs.push_back(text({nullptr, "served"}));
  return Batch(std::move(cs));
}

const std::string kFirst =
    "{\"timestamp\":\"2023-11-14T22:13:20.123456+00:00\",\"unit\":\"u\\\"1\\n\x7f\xe2\x80\xa8"
    "\xc3\xa9\xf0\x9f\x98\x80\",\"experiment\":\"e\",\"arm\":\"a\",\"bucket\":7,\"reason\":"
    "\"assigned\",\"version\":\"v1\",\"probability\":0.35,\"attributes\":{\"k\": \"v\"},"
    "\"request_id\":null,\"evaluated_arm\":null,\"mismatch\":false,\"propagation\":null}\n";
const std::string kSecond =
    "{\"timestamp\":\"1969-12-31T23:59:59.999995+00:00\",\"unit\":null,\"experiment\":\"e\","
    "\"arm\":\"b\",\"bucket\":-1,\"reason\":\"override\",\"version\":\"v1\",\"probability\":1.0,"
    "\"attributes\":null,\"request_id\":\"r\\\\\",\"evaluated_arm\":\"a\",\"mismatch\":true,"
    "\"propagation\":\"served\"}\n";

}  // namespace

TEST(Jsonl, StringsAreEscapedAsPythonsEncodeBasestring) {
  EXPECT_EQ(json_string("plain"), "\"plain\"");
  EXPECT_EQ(json_string("q\"b\\"), "\"q\\\"b\\\\\"");
  EXPECT_EQ(json_string(std::string_view("\x00\x01\x08\x09\x0a\x0c\x0d\x1f", 8)),
            "\"\\u0000\\u0001\\b\\t\\n\\f\\r\\u001f\"");
  // DEL, U+2028 and non-BMP characters pass as UTF-8 (ensure_ascii=False).
  EXPECT_EQ(json_string("\x7f\xe2\x80\xa8\xf0\x9f\x98\x80"),
            "\"\x7f\xe2\x80\xa8\xf0\x9f\x98\x80\"");
  // Long runs take the 8-byte path: a special byte at every position of a block.
  for (size_t at = 0; at < 17; ++at) {
    std::string s(17, 'x');
    s[at] = '"';
    std::string want = "\"" + s.substr(0, at) + "\\\"" + s.substr(at + 1) + "\"";
    EXPECT_EQ(json_string(s), want) << at;
  }
}

TEST(Jsonl, TextThatIsNotUtf8IsRefused) {
  for (const char* bad : {"\xed\xa0\x80", "x\xed\xbf\xbfy", "\xff", "\xc3", "ab\xe2\x82",
                          "\xc0\xaf", "\xf4\x90\x80\x80", "\xe0\x80\x80", "\xf0\x80\x80\x80"}) {
    std::string out = "kept";
    EXPECT_FALSE(append_json_string(out, bad)) << bad;
    EXPECT_EQ(out, "kept");
  }
  EXPECT_EQ(json_string("\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf"),
            "\"\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf\"");  // U+D7FF, U+E000, U+10FFFF
}

TEST(Jsonl, FloatsAreWrittenAsPythonsRepr) {
  const std::pair<double, const char*> cases[] = {
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {0.5, "0.5"},
      {1.0, "1.0"},
      {0.3333333333333333, "0.3333333333333333"},
      {0.35, "0.35"},
      {1e-05, "1e-05"},
      {1.5e-05, "1.5e-05"},
      {0.0001, "0.0001"},
      {0.00012345, "0.00012345"},
      {1000000000000000.0, "1000000000000000.0"},
      {1e+16, "1e+16"},
      {1.2345e+16, "1.2345e+16"},
      {123456789012345.6, "123456789012345.6"},
      {5e-324, "5e-324"},
      {1.7976931348623157e+308, "1.7976931348623157e+308"},
      {2.2250738585072014e-308, "2.2250738585072014e-308"},
      {100.0, "100.0"},
      {0.30000000000000004, "0.30000000000000004"},
      {-2.5e-07, "-2.5e-07"},
      {9999999999999998.0, "9999999999999998.0"},
  };
  for (const auto& [value, want] : cases) {
    std::string out;
    append_python_float(out, value);
    EXPECT_EQ(out, want);
  }
}

TEST(Jsonl, RecordsAreTheLinesOfTheRecordPath) {
  Batch batch = two_records();
  const ExposureJsonl encoder(batch.schema, batch.array);
  ASSERT_EQ(encoder.rows(), 2u);
  std::vector<char> out(4096);
  const auto chunk = encoder.write(0, out.data(), out.size());
  EXPECT_EQ(chunk.end, 2u);
  EXPECT_TRUE(chunk.skipped.empty());
  EXPECT_EQ(std::string(out.data(), chunk.size), kFirst + kSecond);

  // A buffer too small for the second row: the first alone, then the rest.
  const auto first = encoder.write(0, out.data(), kFirst.size() + 300);
  EXPECT_EQ(first.end, 1u);
  EXPECT_EQ(std::string(out.data(), first.size), kFirst);
  const auto none = encoder.write(1, out.data(), 10);
  EXPECT_EQ(none.end, 1u);
  EXPECT_GT(none.need, 10u);
}

TEST(Jsonl, RowsTheRecordPathWritesOtherwiseAreSkippedInPlace) {
  // A unit that is not UTF-8 and a probability that is not finite: both rows left out, each
  // with the offset where its line belongs.
  Batch batch = two_records({"\xff", nullptr}, {0.35, std::nan("")});
  const ExposureJsonl encoder(batch.schema, batch.array);
  std::vector<char> out(4096);
  const auto chunk = encoder.write(0, out.data(), out.size());
  EXPECT_EQ(chunk.size, 0u);
  EXPECT_EQ(chunk.skipped, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(chunk.skipped_at, (std::vector<int64_t>{0, 0}));

  Batch one_bad = two_records({"\xff", nullptr});
  const auto part = ExposureJsonl(one_bad.schema, one_bad.array).write(0, out.data(), out.size());
  EXPECT_EQ(std::string(out.data(), part.size), kSecond);
  EXPECT_EQ(part.skipped_at, (std::vector<int64_t>{0}));
}

TEST(Jsonl, AnotherLayoutIsRefused) {
  Batch batch = two_records();
  batch.columns[4]->format = "l";  // bucket as int64
  batch.columns[4]->finish(2, 0);
  EXPECT_THROW(ExposureJsonl(batch.schema, batch.array), InvalidArgument);
  Batch short_batch = two_records();
  short_batch.array.n_children = 12;
  EXPECT_THROW(ExposureJsonl(short_batch.schema, short_batch.array), InvalidArgument);
}
