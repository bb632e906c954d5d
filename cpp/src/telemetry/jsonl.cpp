// Exposure records as JSON Lines from Arrow columns. Each row's line is bounded before it is
// written, so the loop writes through a raw pointer into space already there; dictionary
// columns (experiment, arm, reason, version, attributes) are escaped once per dictionary value.
#include "trafficsplit/telemetry/jsonl.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "arrow/read.hpp"
#include "trafficsplit/errors.hpp"

namespace trafficsplit::telemetry {

namespace {

// -- text ------------------------------------------------------------------------------------

constexpr char kHex[] = "0123456789abcdef";

// Bytes that a JSON string cannot hold as they are, or that start a multi-byte sequence: the
// control characters, '"', '\\' and everything from 0x80.
struct ByteClasses {
  std::array<uint8_t, 256> special{};
  constexpr ByteClasses() {
    for (int b = 0; b < 0x20; ++b) special[b] = 1;
    special['"'] = 1;
    special['\\'] = 1;
    for (int b = 0x80; b < 0x100; ++b) special[b] = 1;
  }
};
constexpr ByteClasses kBytes;

// Whether any of the 8 bytes in `x` is special (below 0x20, '"', '\\' or from 0x80).
inline bool any_special(uint64_t x) {
  constexpr uint64_t ones = 0x0101010101010101ULL;
  constexpr uint64_t highs = 0x8080808080808080ULL;
  const uint64_t below_space = (x - ones * 0x20) & ~x;
  const uint64_t quote = x ^ (ones * '"');
  const uint64_t backslash = x ^ (ones * '\\');
  const uint64_t zero_quote = (quote - ones) & ~quote;
  const uint64_t zero_backslash = (backslash - ones) & ~backslash;
  return ((x | below_space | zero_quote | zero_backslash) & highs) != 0;
}

// The length of the valid UTF-8 sequence starting at s[i] (a lead byte from 0x80), or 0.
inline size_t utf8_sequence(const unsigned char* s, size_t i, size_t n) {
  const unsigned c = s[i];
  auto cont = [&](size_t k, unsigned lo, unsigned hi) {
    return i + k < n && s[i + k] >= lo && s[i + k] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(1, 0x80, 0xBF) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0, 0xBF) && cont(2, 0x80, 0xBF) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
    return cont(1, 0x80, 0xBF) && cont(2, 0x80, 0xBF) ? 3 : 0;
  }
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2, 0x80, 0xBF) ? 3 : 0;  // no surrogates
  if (c == 0xF0) return cont(1, 0x90, 0xBF) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) {
    return cont(1, 0x80, 0xBF) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) ? 4 : 0;
  }
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) ? 4 : 0;
  return 0;
}

// Writes `text` as a quoted JSON string at `p` (room for 6 bytes per input byte plus 2);
// returns the end, or nullptr when the text is not valid UTF-8.
char* write_json_string(char* p, std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  *p++ = '"';
  size_t i = 0;
  while (i < n) {
    if (i + 8 <= n) {
      uint64_t x;
      std::memcpy(&x, s + i, 8);
      if (!any_special(x)) {
        std::memcpy(p, &x, 8);
        p += 8;
        i += 8;
        continue;
      }
    }
    const unsigned char c = s[i];
    if (!kBytes.special[c]) {
      *p++ = static_cast<char>(c);
      ++i;
    } else if (c >= 0x80) {
      const size_t len = utf8_sequence(s, i, n);
      if (len == 0) return nullptr;
      std::memcpy(p, s + i, len);
      p += len;
      i += len;
    } else {
      *p++ = '\\';
      switch (c) {
        case '"':
          *p++ = '"';
          break;
        case '\\':
          *p++ = '\\';
          break;
        case '\n':
          *p++ = 'n';
          break;
        case '\r':
          *p++ = 'r';
          break;
        case '\t':
          *p++ = 't';
          break;
        case '\b':
          *p++ = 'b';
          break;
        case '\f':
          *p++ = 'f';
          break;
        default:
          *p++ = 'u';
          *p++ = '0';
          *p++ = '0';
          *p++ = kHex[c >> 4];
          *p++ = kHex[c & 15];
      }
      ++i;
    }
  }
  *p++ = '"';
  return p;
}

// -- numbers ---------------------------------------------------------------------------------

// Python's repr of a finite double at `p` (room for 32 bytes); returns the end.
char* write_python_float(char* p, double value) {
  // The shortest round-trip digits, as d.ddde±x, then laid out as CPython's float_repr does.
  char sci[40];
  const auto done = std::to_chars(sci, sci + sizeof sci, value, std::chars_format::scientific);
  const char* q = sci;
  if (*q == '-') *p++ = *q++;
  char digits[24];
  size_t count = 0;
  for (; q < done.ptr && *q != 'e'; ++q) {
    if (*q != '.') digits[count++] = *q;
  }
  int exponent = 0;
  std::from_chars(q + (q[1] == '+' ? 2 : 1), done.ptr, exponent);
  const int point = exponent + 1;  // digits before the decimal point
  if (point <= -4 || point > 16) {
    *p++ = digits[0];
    if (count > 1) {
      *p++ = '.';
      std::memcpy(p, digits + 1, count - 1);
      p += count - 1;
    }
    *p++ = 'e';
    *p++ = exponent < 0 ? '-' : '+';
    const int magnitude = exponent < 0 ? -exponent : exponent;
    if (magnitude < 10) *p++ = '0';
    return std::to_chars(p, p + 4, magnitude).ptr;
  }
  if (point <= 0) {
    *p++ = '0';
    *p++ = '.';
    for (int k = point; k < 0; ++k) *p++ = '0';
    std::memcpy(p, digits, count);
    return p + count;
  }
  const auto whole = static_cast<size_t>(point);
  if (whole >= count) {
    std::memcpy(p, digits, count);
    p += count;
    for (size_t k = count; k < whole; ++k) *p++ = '0';
    *p++ = '.';
    *p++ = '0';
    return p;
  }
  std::memcpy(p, digits, whole);
  p += whole;
  *p++ = '.';
  std::memcpy(p, digits + whole, count - whole);
  return p + (count - whole);
}

// The last texts of probabilities, by their bits: a batch holds a few distinct values.
class FloatTexts {
 public:
  char* write(char* p, double value) {
    uint64_t bits;
    std::memcpy(&bits, &value, 8);
    Entry& e = entries_[(bits ^ (bits >> 29) ^ (bits >> 47)) & (kSize - 1)];
    if (!e.used || e.bits != bits) {
      e.length = static_cast<uint8_t>(write_python_float(e.text, value) - e.text);
      e.bits = bits;
      e.used = true;
    }
    std::memcpy(p, e.text, e.length);
    return p + e.length;
  }

 private:
  static constexpr size_t kSize = 64;
  struct Entry {
    uint64_t bits = 0;
    bool used = false;
    uint8_t length = 0;
    char text[32];
  };
  std::array<Entry, kSize> entries_{};
};

constexpr char kTwoDigits[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

inline char* two_digits(char* p, unsigned v) {
  std::memcpy(p, kTwoDigits + 2 * v, 2);
  return p + 2;
}

constexpr int64_t kMicrosPerDay = 86'400'000'000LL;
// 0000-01-01 and 10000-01-01 in days since 1970-01-01 (proleptic Gregorian calendar).
constexpr int64_t kFirstDay = -719'528;
constexpr int64_t kEndDay = 2'932'897;

// The civil date of a day count since 1970-01-01 (H. Hinnant's days_from_civil inverse).
inline void civil(int64_t days, int64_t& year, unsigned& month, unsigned& day) {
  const int64_t z = days + 719'468;
  const int64_t era = (z >= 0 ? z : z - 146'096) / 146'097;
  const auto doe = static_cast<unsigned>(z - era * 146'097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36'524 - doe / 146'096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  day = doy - (153 * mp + 2) / 5 + 1;
  month = mp < 10 ? mp + 3 : mp - 9;
  year = static_cast<int64_t>(yoe) + era * 400 + (month <= 2 ? 1 : 0);
}

// numpy's datetime_as_string(unit="us") of a time in the years 0000-9999 at `p` (26 bytes):
// YYYY-MM-DDTHH:MM:SS.ffffff. False outside those years.
class Stamps {
 public:
  bool write(char* p, int64_t micros) {
    int64_t days = micros / kMicrosPerDay;
    int64_t rest = micros % kMicrosPerDay;
    if (rest < 0) {
      rest += kMicrosPerDay;
      --days;
    }
    if (days < kFirstDay || days >= kEndDay) return false;
    if (days != day_) {
      int64_t year;
      unsigned month, day;
      civil(days, year, month, day);
      char* d = date_;
      d = two_digits(d, static_cast<unsigned>(year / 100));
      d = two_digits(d, static_cast<unsigned>(year % 100));
      *d++ = '-';
      d = two_digits(d, month);
      *d++ = '-';
      d = two_digits(d, day);
      *d = 'T';
      day_ = days;
    }
    std::memcpy(p, date_, 11);
    p += 11;
    const auto seconds = static_cast<unsigned>(rest / 1'000'000);
    const auto fraction = static_cast<unsigned>(rest % 1'000'000);
    p = two_digits(p, seconds / 3600);
    *p++ = ':';
    p = two_digits(p, seconds / 60 % 60);
    *p++ = ':';
    p = two_digits(p, seconds % 60);
    *p++ = '.';
    p = two_digits(p, fraction / 10'000);
    p = two_digits(p, fraction / 100 % 100);
    two_digits(p, fraction % 100);
    return true;
  }

 private:
  int64_t day_ = INT64_MIN;
  char date_[11] = {};
};

// -- columns ---------------------------------------------------------------------------------

inline char* put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

constexpr const char* kFields[] = {
    "timestamp",   "unit",       "experiment", "arm",           "bucket",   "reason",     "version",
    "probability", "attributes", "request_id", "evaluated_arm", "mismatch", "propagation"};
constexpr size_t kFieldCount = sizeof kFields / sizeof kFields[0];

// One field of the batch: its Arrow array and where the batch's rows start in it.
struct Child {
  const ArrowArray* array;
  int64_t offset;  // the child's own offset plus the batch's
  const char* field;
};

const uint8_t* validity_of(const ArrowArray& a) {
  return a.n_buffers > 0 && a.null_count != 0 ? static_cast<const uint8_t*>(a.buffers[0]) : nullptr;
}

void expect_buffers(const ArrowArray& a, int64_t count, const char* field) {
  bool ok = a.n_buffers == count && a.buffers != nullptr;
  for (int64_t b = 1; ok && b < count; ++b) ok = a.buffers[b] != nullptr || a.length == 0;
  if (!ok) {
    throw InvalidArgument(std::string("exposure column ") + field +
                          ": not the Arrow buffers of its type");
  }
}

// Where the validity bitmap of a column says whether row i (of the batch) is set.
struct Validity {
  const uint8_t* bits = nullptr;
  int64_t offset = 0;
  bool valid(size_t i) const { return detail::valid_bit(bits, offset, i); }
};

template <typename T>
struct FixedColumn : Validity {
  const T* values = nullptr;
  explicit FixedColumn(const Child& c) {
    expect_buffers(*c.array, 2, c.field);
    values = static_cast<const T*>(c.array->buffers[1]) + c.offset;
    bits = validity_of(*c.array);
    offset = c.offset;
  }
};

struct BoolColumn : Validity {
  const uint8_t* values = nullptr;
  explicit BoolColumn(const Child& c) {
    expect_buffers(*c.array, 2, c.field);
    values = static_cast<const uint8_t*>(c.array->buffers[1]);
    bits = validity_of(*c.array);
    offset = c.offset;
  }
  bool at(size_t i) const { return detail::valid_bit(values, offset, i); }
};

// A utf8 column read in place.
struct TextColumn : Validity {
  const int32_t* offsets = nullptr;
  const char* data = "";
  TextColumn(const ArrowArray& a, int64_t start, const char* field) {
    expect_buffers(a, 3, field);
    offsets = static_cast<const int32_t*>(a.buffers[1]) + start;
    if (a.buffers[2] != nullptr) data = static_cast<const char*>(a.buffers[2]);
    bits = validity_of(a);
    offset = start;
  }
  explicit TextColumn(const Child& c) : TextColumn(*c.array, c.offset, c.field) {}
  std::string_view at(size_t i) const { return detail::offset_string(offsets, data, i); }
  // The bytes of row i (0 when null: the offsets of a null row may span anything).
  size_t bytes(size_t i) const {
    return valid(i) ? static_cast<size_t>(offsets[i + 1] - offsets[i]) : 0;
  }
};

// A nullable text field at p: null, or the JSON string; nullptr when the text is not UTF-8.
inline char* put_text(char* p, const TextColumn& c, size_t i) {
  return c.valid(i) ? write_json_string(p, c.at(i)) : put(p, "null");
}

// A dictionary<int32, utf8> column whose values are written once: as JSON strings, or as they
// are (`raw`: attributes, already JSON text). A value that cannot be written (null, or text
// that is not UTF-8) is left out, and so is every row that points at it.
struct CodedColumn : Validity {
  const int32_t* indices = nullptr;
  std::vector<std::string> values;
  std::vector<uint8_t> usable;
  size_t longest = 0;

  CodedColumn(const Child& c, bool raw) {
    const ArrowArray& a = *c.array;
    expect_buffers(a, 2, c.field);
    indices = static_cast<const int32_t*>(a.buffers[1]) + c.offset;
    bits = validity_of(a);
    offset = c.offset;
    const ArrowArray& d = *a.dictionary;
    const TextColumn dictionary(d, d.offset, c.field);
    const auto count = static_cast<size_t>(std::max<int64_t>(d.length, 0));
    values.resize(count);
    usable.assign(count, 0);
    for (size_t k = 0; k < count; ++k) {
      if (!dictionary.valid(k)) continue;
      if (raw) {
        values[k].assign(dictionary.at(k));
        usable[k] = 1;
      } else {
        usable[k] = append_json_string(values[k], dictionary.at(k)) ? 1 : 0;
      }
      longest = std::max(longest, values[k].size());
    }
  }

  // The written value of row i; nullptr when the row is null or its value cannot be written.
  const std::string* at(size_t i) const {
    if (!valid(i)) return nullptr;
    const int32_t k = indices[i];
    if (k < 0 || static_cast<size_t>(k) >= values.size() || !usable[static_cast<size_t>(k)]) {
      return nullptr;
    }
    return &values[static_cast<size_t>(k)];
  }
};

Child child(const ArrowSchema& schema, const ArrowArray& array, size_t k, std::string_view format,
            bool dictionary) {
  const ArrowSchema* s = schema.children[k];
  const ArrowArray* a = array.children[k];
  const char* field = kFields[k];
  if (s == nullptr || a == nullptr || s->format == nullptr || a->length < 0 || a->offset < 0) {
    throw InvalidArgument(std::string("exposure column ") + field + ": missing");
  }
  const std::string_view got(s->format);
  const bool same = got == format || (format == "tsu:" && got.rfind("tsu:", 0) == 0);
  const bool coded = s->dictionary != nullptr && a->dictionary != nullptr;
  const bool values_ok = !dictionary || (s->dictionary != nullptr && s->dictionary->format &&
                                         std::string_view(s->dictionary->format) == "u");
  if (!same || coded != dictionary || !values_ok) {
    throw InvalidArgument(std::string("exposure column ") + field + " has Arrow format '" +
                          std::string(got) + "', expected '" + std::string(format) + "'" +
                          (dictionary ? " with utf8 dictionary values" : ""));
  }
  if (a->length < array.offset + array.length) {
    throw InvalidArgument(std::string("exposure column ") + field + " is shorter than the batch");
  }
  return {a, a->offset + array.offset, field};
}

}  // namespace

bool append_json_string(std::string& out, std::string_view text) {
  const size_t start = out.size();
  out.resize(start + 6 * text.size() + 2);
  char* end = write_json_string(out.data() + start, text);
  out.resize(end == nullptr ? start : static_cast<size_t>(end - out.data()));
  return end != nullptr;
}

void append_python_float(std::string& out, double value) {
  char text[32];
  out.append(text, static_cast<size_t>(write_python_float(text, value) - text));
}

struct ExposureJsonl::Columns {
  size_t rows;
  FixedColumn<int64_t> time;
  TextColumn unit;
  CodedColumn experiment;
  CodedColumn arm;
  FixedColumn<int32_t> bucket;
  CodedColumn reason;
  CodedColumn version;
  FixedColumn<double> probability;
  CodedColumn attributes;
  TextColumn request_id;
  TextColumn evaluated;
  BoolColumn mismatch;
  TextColumn propagation;
  size_t
      fixed;  // a bound of a line's bytes but for its unit, request id, evaluated arm, propagation

  Columns(const ArrowSchema& schema, const ArrowArray& array)
      : rows(static_cast<size_t>(array.length)),
        time(child(schema, array, 0, "tsu:", false)),
        unit(child(schema, array, 1, "u", false)),
        experiment(child(schema, array, 2, "i", true), false),
        arm(child(schema, array, 3, "i", true), false),
        bucket(child(schema, array, 4, "i", false)),
        reason(child(schema, array, 5, "i", true), false),
        version(child(schema, array, 6, "i", true), false),
        probability(child(schema, array, 7, "g", false)),
        attributes(child(schema, array, 8, "i", true), true),
        request_id(child(schema, array, 9, "u", false)),
        evaluated(child(schema, array, 10, "u", false)),
        mismatch(child(schema, array, 11, "b", false)),
        propagation(child(schema, array, 12, "u", false)) {
    // The keys and punctuation, a 26-byte time, an 11-byte bucket, a 32-byte probability.
    fixed = 256 + 26 + 11 + 32 + experiment.longest + arm.longest + reason.longest +
            version.longest + attributes.longest;
  }

  size_t bound(size_t i) const {
    return fixed +
           6 * (unit.bytes(i) + request_id.bytes(i) + evaluated.bytes(i) + propagation.bytes(i));
  }

  // Row i's line at q (room for bound(i) bytes); nullptr for a row to skip.
  char* line(char* q, size_t i, Stamps& stamps, FloatTexts& floats) const {
    const std::string* e = experiment.at(i);
    const std::string* a = arm.at(i);
    const std::string* r = reason.at(i);
    const std::string* v = version.at(i);
    if (e == nullptr || a == nullptr || r == nullptr || v == nullptr) return nullptr;
    if (!time.valid(i) || !bucket.valid(i) || !probability.valid(i)) return nullptr;
    const double p = probability.values[i];
    if (!std::isfinite(p)) return nullptr;
    const std::string* attrs = nullptr;
    if (attributes.valid(i)) {
      attrs = attributes.at(i);
      if (attrs == nullptr) return nullptr;
    }
    q = put(q, "{\"timestamp\":\"");
    if (!stamps.write(q, time.values[i])) return nullptr;
    q = put(q + 26, "+00:00\",\"unit\":");
    q = put_text(q, unit, i);
    if (q == nullptr) return nullptr;
    q = put(q, ",\"experiment\":");
    q = put(q, *e);
    q = put(q, ",\"arm\":");
    q = put(q, *a);
    q = put(q, ",\"bucket\":");
    q = std::to_chars(q, q + 11, bucket.values[i]).ptr;
    q = put(q, ",\"reason\":");
    q = put(q, *r);
    q = put(q, ",\"version\":");
    q = put(q, *v);
    q = put(q, ",\"probability\":");
    q = floats.write(q, p);
    q = put(q, ",\"attributes\":");
    q = put(q, attrs == nullptr ? std::string_view("null") : std::string_view(*attrs));
    q = put(q, ",\"request_id\":");
    q = put_text(q, request_id, i);
    if (q == nullptr) return nullptr;
    q = put(q, ",\"evaluated_arm\":");
    q = put_text(q, evaluated, i);
    if (q == nullptr) return nullptr;
    // A null mismatch is written false, as the record's falsy None is.
    q = put(q, mismatch.valid(i) && mismatch.at(i) ? ",\"mismatch\":true" : ",\"mismatch\":false");
    q = put(q, ",\"propagation\":");
    q = put_text(q, propagation, i);
    if (q == nullptr) return nullptr;
    return put(q, "}\n");
  }
};

namespace {

void check_batch(const ArrowSchema& schema, const ArrowArray& array) {
  if (schema.format == nullptr || std::string_view(schema.format) != "+s" ||
      schema.n_children != static_cast<int64_t>(kFieldCount) ||
      array.n_children != static_cast<int64_t>(kFieldCount) || array.children == nullptr ||
      schema.children == nullptr || array.length < 0 || array.offset < 0) {
    throw InvalidArgument("exposure records must be a struct array of the 13 exposure fields");
  }
  if (validity_of(array) != nullptr) {
    throw InvalidArgument("exposure records must not be null as a whole");
  }
}

}  // namespace

ExposureJsonl::ExposureJsonl(const ArrowSchema& schema, const ArrowArray& array) {
  check_batch(schema, array);
  columns_ = std::make_unique<Columns>(schema, array);
}

ExposureJsonl::~ExposureJsonl() = default;

size_t ExposureJsonl::rows() const noexcept { return columns_->rows; }

ExposureJsonl::Chunk ExposureJsonl::write(size_t start, char* out, size_t capacity) const {
  const Columns& c = *columns_;
  Stamps stamps;
  FloatTexts floats;
  Chunk chunk;
  size_t at = 0;
  size_t i = std::min(start, c.rows);
  for (; i < c.rows; ++i) {
    const size_t need = c.bound(i);
    if (at + need > capacity) {
      if (i == start) chunk.need = need;
      break;
    }
    char* end = c.line(out + at, i, stamps, floats);
    if (end == nullptr) {
      chunk.skipped.push_back(static_cast<int64_t>(i));
      chunk.skipped_at.push_back(static_cast<int64_t>(at));
    } else {
      at = static_cast<size_t>(end - out);
    }
  }
  chunk.end = i;
  chunk.size = at;
  return chunk;
}

}  // namespace trafficsplit::telemetry
