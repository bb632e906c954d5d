// libFuzzer harness for the unit column readers (docs/fuzzing.md): the input becomes a
// well-formed Arrow array of unit ids (integers of every width, utf8, binary, their large
// forms and the view forms, with an offset and a validity bitmap), read through
// column_from_arrow. assign_batch and hash_batch must equal the scalar assign and the Hasher
// on each row's bytes (integers as decimal text), for every row.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "trafficsplit/arrow/columns.hpp"
#include "trafficsplit/assignment/batch.hpp"
#include "trafficsplit/assignment/experiment.hpp"
#include "trafficsplit/hashing/hash.hpp"

namespace ts = trafficsplit;

namespace {

[[noreturn]] void fail(const char* what, size_t row, const std::string& unit) {
  std::fprintf(stderr, "fuzz_units: %s at row %zu (unit of %zu bytes)\n", what, row, unit.size());
  std::abort();
}

// The structure of UTF-8 (lead and continuation bytes); enough for Arrow's utf8 here.
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t more = 0;
    if (c >= 0x80) {
      if ((c >> 5) == 0x6) {
        more = 1;
      } else if ((c >> 4) == 0xE) {
        more = 2;
      } else if ((c >> 3) == 0x1E) {
        more = 3;
      } else {
        return false;
      }
    }
    if (i + more >= s.size()) return false;
    for (size_t k = 1; k <= more; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += more + 1;
  }
  return true;
}

// Arrow utf8 must be UTF-8: text that is not keeps its ASCII bytes only.
std::string as_utf8(std::string s) {
  if (valid_utf8(s)) return s;
  for (char& c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) c = '?';
  }
  return s;
}

struct Format {
  const char* name;
  size_t int_width;  // 0 for the text kinds
  bool is_signed;
  bool utf8;
};

constexpr Format kFormats[] = {
    {"c", 1, true, false},  {"s", 2, true, false},  {"i", 4, true, false},  {"l", 8, true, false},
    {"C", 1, false, false}, {"S", 2, false, false}, {"I", 4, false, false}, {"L", 8, false, false},
    {"u", 0, false, true},  {"z", 0, false, false}, {"U", 0, false, true},  {"Z", 0, false, false},
    {"vu", 0, false, true}, {"vz", 0, false, false}};

// Row i's unit as the contract's bytes: an integer's decimal text, a string's own bytes.
std::string int_text(const Format& f, const uint8_t* p) {
  char buf[24];
  uint64_t u = 0;
  std::memcpy(&u, p, f.int_width);  // little-endian, like Arrow on this machine
  if (f.is_signed) {
    const unsigned shift = static_cast<unsigned>(64 - 8 * f.int_width);
    const int64_t v = static_cast<int64_t>(u << shift) >> shift;
    return std::string(buf, ts::format_decimal(v, buf));
  }
  return std::string(buf, ts::format_decimal(u, buf));
}

// One of a few hundred experiments (salt, algorithm, buckets, exposure, weights), each
// compiled once: compiling a bucket map costs more than a run.
const ts::CompiledExperiment& experiment(FuzzedDataProvider& in) {
  static const char* const kSalts[] = {"fuzz", "fuzz/units/\xc3\xa9"};
  static const ts::Algorithm kAlgorithms[] = {ts::Algorithm::xxh3, ts::Algorithm::murmur3};
  static const uint32_t kBuckets[] = {10'000, 1, 7, 100, 65'536};
  static const double kExposure[] = {1.0, 0.5, 0.0, 0.123};
  static const std::vector<std::vector<double>> kWeights = {
      {100}, {50, 50}, {40, 35, 25}, {10, 20, 30, 40}, {0, 100}, {33.5, 33.25, 33.25}};
  const size_t salt = in.ConsumeIntegralInRange<size_t>(0, std::size(kSalts) - 1);
  const size_t algorithm = in.ConsumeIntegralInRange<size_t>(0, std::size(kAlgorithms) - 1);
  const size_t buckets = in.ConsumeIntegralInRange<size_t>(0, std::size(kBuckets) - 1);
  const size_t exposure = in.ConsumeIntegralInRange<size_t>(0, std::size(kExposure) - 1);
  const size_t weights = in.ConsumeIntegralInRange<size_t>(0, kWeights.size() - 1);
  const size_t key = (((salt * 2 + algorithm) * 5 + buckets) * 4 + exposure) * 6 + weights;
  static std::map<size_t, std::unique_ptr<ts::CompiledExperiment>> cache;
  auto& slot = cache[key];
  if (!slot) {
    ts::ExperimentSpec spec;
    spec.salt = kSalts[salt];
    spec.algorithm = kAlgorithms[algorithm];
    spec.buckets = kBuckets[buckets];
    spec.steps.push_back({std::nullopt, kExposure[exposure], kWeights[weights]});
    slot = std::make_unique<ts::CompiledExperiment>(spec);
  }
  return *slot;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const Format& f = in.PickValueInArray(kFormats);
  const ts::CompiledExperiment& exp = experiment(in);
  const unsigned threads = in.ConsumeIntegralInRange<unsigned>(1, 3);
  const size_t offset = in.ConsumeIntegralInRange<size_t>(0, 9);
  const size_t n = in.ConsumeIntegralInRange<size_t>(0, 300);
  const size_t total = offset + n;
  const bool with_validity = in.ConsumeBool();
  std::vector<uint8_t> validity = in.ConsumeBytes<uint8_t>(with_validity ? (total + 7) / 8 : 0);
  validity.resize((total + 7) / 8 + 1, 0xFF);

  // Every buffer the array points into, owned here.
  std::vector<uint8_t> ints;
  std::vector<int32_t> offsets32{0};
  std::vector<int64_t> offsets64{0};
  std::string chars;
  std::vector<std::string> texts;  // the text kinds' rows, offset rows included
  std::vector<uint8_t> views;
  std::vector<std::string> view_buffers;
  std::vector<const char*> view_buffer_ptrs;
  std::vector<int64_t> view_buffer_sizes;
  std::vector<const void*> buffers;
  if (f.int_width > 0) {
    ints = in.ConsumeBytes<uint8_t>(total * f.int_width);
    ints.resize(total * f.int_width + 1, 0);
    buffers = {validity.data(), ints.data()};
  } else {
    for (size_t i = 0; i < total; ++i) {
      std::string s = in.ConsumeRandomLengthString(40);
      texts.push_back(f.utf8 ? as_utf8(std::move(s)) : std::move(s));
    }
    if (f.name[0] == 'v') {
      // 16 bytes a row: length, then the text itself (<= 12 bytes) or its first 4 bytes,
      // the data buffer's index and the offset in it. Long rows go to two data buffers.
      view_buffers.resize(2);
      views.assign(16 * total + 1, 0);
      for (size_t i = 0; i < total; ++i) {
        const std::string& s = texts[i];
        uint8_t* v = &views[16 * i];
        const auto len = static_cast<int32_t>(s.size());
        std::memcpy(v, &len, 4);
        if (s.size() <= 12) {
          std::memcpy(v + 4, s.data(), s.size());
        } else {
          const auto index = static_cast<int32_t>(i % 2);
          const auto at = static_cast<int32_t>(view_buffers[i % 2].size());
          view_buffers[i % 2] += s;
          std::memcpy(v + 4, s.data(), 4);
          std::memcpy(v + 8, &index, 4);
          std::memcpy(v + 12, &at, 4);
        }
      }
      for (const auto& b : view_buffers) {
        view_buffer_ptrs.push_back(b.data());
        view_buffer_sizes.push_back(static_cast<int64_t>(b.size()));
      }
      buffers = {validity.data(), views.data(), view_buffer_ptrs[0], view_buffer_ptrs[1],
                 view_buffer_sizes.data()};
    } else {
      for (const auto& s : texts) {
        chars += s;
        offsets32.push_back(static_cast<int32_t>(chars.size()));
        offsets64.push_back(static_cast<int64_t>(chars.size()));
      }
      const bool large = f.name[0] == 'U' || f.name[0] == 'Z';
      buffers = {validity.data(),
                 large ? static_cast<const void*>(offsets64.data()) : offsets32.data(),
                 chars.data()};
    }
  }

  ArrowSchema schema{};
  schema.format = f.name;
  ArrowArray array{};
  array.length = static_cast<int64_t>(n);
  array.offset = static_cast<int64_t>(offset);
  array.null_count = with_validity ? -1 : 0;  // -1: unknown, so the bitmap is read
  array.n_buffers = static_cast<int64_t>(buffers.size());
  array.buffers = buffers.data();
  if (!with_validity) buffers[0] = nullptr;

  const ts::UnitColumn column = ts::column_from_arrow(schema, array);
  if (ts::column_length(column) != n) fail("column length differs from the array's", 0, "");

  std::vector<int16_t> arm(n + 1, 99);
  std::vector<int32_t> bucket(n + 1, 99);
  std::vector<uint8_t> reason(n + 1, 99);
  ts::assign_batch(exp, column, {}, {arm.data(), bucket.data(), reason.data()}, threads);
  std::vector<uint64_t> hashes(n + 1, 99);
  std::vector<uint8_t> missing(n + 1, 99);
  const ts::Algorithm algorithm = exp.arm_hasher().algorithm();
  ts::hash_batch(algorithm, "fuzz", column, hashes.data(), missing.data(), threads);
  const ts::Hasher plain(algorithm, "fuzz");

  for (size_t row = 0; row < n; ++row) {
    const size_t i = offset + row;
    const bool present = !with_validity || ((validity[i / 8] >> (i % 8)) & 1) != 0;
    const std::string unit =
        f.int_width > 0 ? int_text(f, &ints[i * f.int_width]) : std::string(texts[i]);
    const ts::ScalarResult want =
        present ? exp.assign(unit.data(), unit.size(), 0) : ts::ScalarResult{};
    if (arm[row] != want.arm) fail("arm differs from the scalar assign", row, unit);
    if (bucket[row] != want.bucket) fail("bucket differs from the scalar assign", row, unit);
    if (reason[row] != static_cast<uint8_t>(want.reason)) fail("reason differs", row, unit);
    if (missing[row] != (present ? 0 : 1)) fail("missing flag differs", row, unit);
    if (present && hashes[row] != plain(unit.data(), unit.size()))
      fail("hash differs from the Hasher", row, unit);
  }
  if (arm[n] != 99 || bucket[n] != 99 || reason[n] != 99 || hashes[n] != 99 || missing[n] != 99)
    fail("a kernel wrote past the end of its output", n, "");
  return 0;
}
