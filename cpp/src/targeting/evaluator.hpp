// Row-by-row evaluation of a program, with the three-valued semantics of docs/targeting.md:
// per request over one Value per attribute, and per row of columns where the columnar fast
// paths do not apply (internal header: the evaluator is inlined into both).
#pragma once

#include <re2/re2.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <variant>

#include "arrow/read.hpp"
#include "targeting/program.hpp"

namespace trafficsplit::targeting {

// Strings made by lower()/upper() for one row, and (for the columnar evaluator, one per
// thread) private copies of the regexes: RE2 takes a lock per match on a shared object.
struct Scratch {
  bool private_regexes = false;
  std::unordered_map<const RE2*, std::unique_ptr<RE2>> regexes;
  const RE2& regex(const RE2& shared) {
    if (!private_regexes) return shared;
    auto& mine = regexes[&shared];
    if (!mine) mine = std::make_unique<RE2>(shared.pattern(), shared.options());
    return *mine;
  }

  std::deque<std::string> strings;
  size_t used = 0;
  std::string& next() {
    if (used == strings.size()) strings.emplace_back();
    std::string& s = strings[used++];
    s.clear();
    return s;
  }
  void reset() { used = 0; }
};

inline int64_t read_int(const void* data, IntKind kind, size_t i, bool& too_big) {
  too_big = false;
  switch (kind) {
    case IntKind::i8:
      return static_cast<const int8_t*>(data)[i];
    case IntKind::i16:
      return static_cast<const int16_t*>(data)[i];
    case IntKind::i32:
      return static_cast<const int32_t*>(data)[i];
    case IntKind::i64:
      return static_cast<const int64_t*>(data)[i];
    case IntKind::u8:
      return static_cast<const uint8_t*>(data)[i];
    case IntKind::u16:
      return static_cast<const uint16_t*>(data)[i];
    case IntKind::u32:
      return static_cast<const uint32_t*>(data)[i];
    case IntKind::u64: {
      const uint64_t u = static_cast<const uint64_t*>(data)[i];
      too_big = u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      return static_cast<int64_t>(u);
    }
  }
  return 0;
}

inline Value text_value(const UnitColumn& column, size_t i) {
  if (const auto* c = std::get_if<OffsetStringColumn>(&column)) {
    if (!detail::valid_bit(c->validity, c->validity_offset, i)) return Value::null();
    if (c->large_offsets) {
      return Value::of_string(
          detail::offset_string(static_cast<const int64_t*>(c->offsets), c->data, i));
    }
    return Value::of_string(
        detail::offset_string(static_cast<const int32_t*>(c->offsets), c->data, i));
  }
  if (const auto* c = std::get_if<ViewStringColumn>(&column)) {
    if (!detail::valid_bit(c->validity, c->validity_offset, i)) return Value::null();
    std::string_view s;
    if (!detail::view_string(c->views, c->buffers, c->buffer_count, i, s)) {
      return Value::of_other();
    }
    return Value::of_string(s);
  }
  return Value::of_other();
}

inline int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

inline Value column_value(const AttributeColumn& c, size_t i) {
  using K = AttributeColumn::Kind;
  if (c.kind == K::missing) return Value::null();
  if (c.kind == K::values) return c.values[i - c.first_row];
  if ((c.null_mask != nullptr && c.null_mask[i]) ||
      !detail::valid_bit(c.validity, c.validity_offset, i)) {
    return Value::null();
  }
  switch (c.kind) {
    case K::boolean:
      return Value::of_bool(static_cast<const uint8_t*>(c.data)[i] != 0);
    case K::integer: {
      bool too_big;
      const int64_t v = read_int(c.data, c.int_kind, i, too_big);
      if (too_big) return Value::of_uint(static_cast<uint64_t>(v));
      return Value::of_int(v);
    }
    case K::real32:
      return Value::of_real(static_cast<const float*>(c.data)[i]);
    case K::real64:
      return Value::of_real(static_cast<const double*>(c.data)[i]);
    case K::timestamp:
      return time_value(static_cast<const int64_t*>(c.data)[i], c.time_unit);
    case K::text:
      return text_value(c.text_column, i);
    case K::dictionary: {
      bool too_big;
      const int64_t code = read_int(c.data, c.int_kind, i, too_big);
      if (too_big || code < 0 || c.dictionary == nullptr ||
          static_cast<size_t>(code) >= c.dictionary->length) {
        return Value::null();
      }
      return column_value(*c.dictionary, static_cast<size_t>(code));
    }
    default:
      return Value::of_other();
  }
}

// Seconds since the epoch of a timestamp or a number of seconds; false otherwise.
inline bool epoch_seconds(const Value& v, int64_t& out) {
  if (v.type == ValueType::timestamp) {
    out = v.integer;
    return true;
  }
  if (v.type == ValueType::integer && v.form == IntForm::i64) {
    out = v.integer;
    return true;
  }
  if (v.type == ValueType::real && std::isfinite(v.real) && std::fabs(v.real) < 9.2e18) {
    out = static_cast<int64_t>(std::floor(v.real));
    return true;
  }
  return false;
}

template <typename Row>
class Evaluator {
 public:
  Evaluator(const Program& p, const Row& row, Scratch& scratch)
      : p_(p), row_(row), scratch_(scratch) {}

  Truth truth(size_t id) const {
    const Node& n = p_.nodes[id];
    switch (n.kind) {
      case Kind::any: {
        Truth t = kFalse;
        for (size_t k : n.kids) {
          t = truth_or(t, truth(k));
          if (t == kTrue) break;
        }
        return t;
      }
      case Kind::all: {
        Truth t = kTrue;
        for (size_t k : n.kids) {
          t = truth_and(t, truth(k));
          if (t == kFalse) break;
        }
        return t;
      }
      case Kind::negate:
        return truth_not(truth(n.kids[0]));
      case Kind::compare:
        return compare_values(value(n.kids[0]), value(n.kids[1]), n.op);
      case Kind::in_list: {
        const Truth t = n.set->contains(value(n.kids[0]));
        return n.negated ? truth_not(t) : t;
      }
      case Kind::is_null: {
        const bool null = value(n.kids[0]).is_null();
        return (null != n.negated) ? kTrue : kFalse;
      }
      case Kind::call:
        if (n.stype == SType::boolean) return call_truth(n);
        return to_truth(value(id));
      case Kind::attribute:
      case Kind::literal:
        return to_truth(value(id));
    }
    return kUnknown;
  }

  Value value(size_t id) const {
    const Node& n = p_.nodes[id];
    switch (n.kind) {
      case Kind::attribute:
        return row_.attribute(n.slot);
      case Kind::literal:
        return n.literal;
      case Kind::call:
        if (n.stype != SType::boolean) return call_value(n);
        [[fallthrough]];
      default: {
        const Truth t = truth(id);
        return t == kUnknown ? Value::null() : Value::of_bool(t == kTrue);
      }
    }
  }

 private:
  const Program& p_;
  const Row& row_;
  Scratch& scratch_;

  static Truth to_truth(const Value& v) {
    if (v.type != ValueType::boolean) return kUnknown;
    return v.boolean ? kTrue : kFalse;
  }

  Truth call_truth(const Node& n) const {
    const Value x = value(n.kids[0]);
    if (n.fn == Fn::between) {
      const Truth lo = compare_values(x, p_.nodes[n.kids[1]].literal, CompareOp::ge);
      const Truth hi = compare_values(x, p_.nodes[n.kids[2]].literal, CompareOp::le);
      return truth_and(lo, hi);
    }
    if (x.type != ValueType::string) return kUnknown;
    const std::string_view s = x.text;
    const std::string_view arg = p_.nodes[n.kids[1]].literal.text;
    bool r = false;
    switch (n.fn) {
      case Fn::startswith:
        r = s.size() >= arg.size() && s.compare(0, arg.size(), arg) == 0;
        break;
      case Fn::endswith:
        r = s.size() >= arg.size() && s.compare(s.size() - arg.size(), arg.size(), arg) == 0;
        break;
      case Fn::contains:
        r = s.find(arg) != std::string_view::npos;
        break;
      case Fn::matches:
        r = RE2::PartialMatch(re2::StringPiece(s.data(), s.size()), scratch_.regex(*n.regex));
        break;
      default:
        return kUnknown;
    }
    return r ? kTrue : kFalse;
  }

  Value call_value(const Node& n) const {
    const Value x = value(n.kids[0]);
    switch (n.fn) {
      case Fn::lower:
      case Fn::upper: {
        if (x.type != ValueType::string) return Value::null();
        std::string& out = scratch_.next();
        out.assign(x.text.data(), x.text.size());
        for (char& c : out) {
          if (n.fn == Fn::lower && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
          if (n.fn == Fn::upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        }
        return Value::of_string(out);
      }
      case Fn::len: {
        if (x.type != ValueType::string) return Value::null();
        int64_t count = 0;
        for (char c : x.text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
        return Value::of_int(count);
      }
      case Fn::semver: {
        if (x.type != ValueType::string) return Value::null();
        Value v;
        if (!parse_semver(x.text, v.version)) return Value::null();
        v.type = ValueType::version;
        return v;
      }
      case Fn::hour:
      case Fn::weekday: {
        int64_t seconds;
        if (!epoch_seconds(x, seconds)) return Value::null();
        // Floor remainders, without multiplying back (no overflow at the int64 extremes).
        const int64_t second_of_day = ((seconds % 86400) + 86400) % 86400;
        if (n.fn == Fn::hour) return Value::of_int(second_of_day / 3600);
        const int64_t days = floor_div(seconds, 86400);
        return Value::of_int(((days % 7) + 7 + 3) % 7);  // 1970-01-01 was a Thursday (3)
      }
      default:
        return Value::null();
    }
  }
};

struct SlotRow {
  const Value* values;
  Value attribute(size_t slot) const { return values[slot]; }
};

struct ColumnRow {
  const AttributeColumn* columns;
  size_t row;
  Value attribute(size_t slot) const { return column_value(columns[slot], row); }
};

}  // namespace trafficsplit::targeting
