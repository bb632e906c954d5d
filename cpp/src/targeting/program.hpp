// The compiled form of a targeting expression: a typed tree of nodes over attribute slots,
// built by the parser and read by the evaluators and the printer (internal header).
#pragma once

#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "hashing/hash_impl.hpp"
#include "trafficsplit/targeting/targeting.hpp"
#include "trafficsplit/targeting/value.hpp"

namespace trafficsplit::targeting {

enum class Kind : uint8_t { any, all, negate, compare, in_list, is_null, call, attribute, literal };
enum class Fn : uint8_t {
  lower,
  upper,
  len,
  startswith,
  endswith,
  contains,
  matches,
  semver,
  hour,
  weekday,
  between
};
enum class SType : uint8_t { boolean, number, string, version, timestamp, null, dynamic };

struct FnInfo {
  const char* name;
  Fn fn;
  size_t arity;
};

inline constexpr FnInfo kFunctions[] = {
    {"between", Fn::between, 3}, {"contains", Fn::contains, 2}, {"endswith", Fn::endswith, 2},
    {"hour", Fn::hour, 1},       {"len", Fn::len, 1},           {"lower", Fn::lower, 1},
    {"matches", Fn::matches, 2}, {"semver", Fn::semver, 1},     {"startswith", Fn::startswith, 2},
    {"upper", Fn::upper, 1},     {"weekday", Fn::weekday, 1},
};

// Open-addressing set of strings (views into the program's literal storage), hashed with
// XXH3: a lookup is one hash and usually one probe, with no allocation.
class StringSet {
 public:
  void insert(std::string_view s) {
    if (contains(s)) return;
    if ((size_ + 1) * 2 > slots_.size()) grow();
    place(s, detail::xxh3_inline(s.data(), s.size(), 0));
    ++size_;
  }
  bool contains(std::string_view s) const {
    if (size_ == 0) return false;
    const uint64_t h = detail::xxh3_inline(s.data(), s.size(), 0);
    // Most rows are misses: a bit filter (16 bits per item) answers them without probing,
    // which keeps the branch predictable.
    const uint64_t bit = (h >> 32) & filter_mask_;
    if (!((filter_[bit >> 6] >> (bit & 63)) & 1)) return false;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (!slot.used) return false;
      if (slot.hash == h && slot.text == s) return true;
    }
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t hash = 0;
    std::string_view text;
    bool used = false;
  };
  std::vector<Slot> slots_;
  std::vector<uint64_t> filter_;
  size_t size_ = 0, mask_ = 0;
  uint64_t filter_mask_ = 0;

  void place(std::string_view s, uint64_t h) {
    size_t i = h & mask_;
    while (slots_[i].used) i = (i + 1) & mask_;
    slots_[i] = Slot{h, s, true};
    const uint64_t bit = (h >> 32) & filter_mask_;
    filter_[bit >> 6] |= uint64_t{1} << (bit & 63);
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(16, old.size() * 2), Slot{});
    mask_ = slots_.size() - 1;
    filter_.assign(std::max<size_t>(1, slots_.size() * 8 / 64), 0);  // 16 bits per item
    filter_mask_ = filter_.size() * 64 - 1;
    for (const Slot& slot : old) {
      if (slot.used) place(slot.text, slot.hash);
    }
  }
};

// `x in [...]` membership: hashed per type; items of other types make a miss unknown. Every
// number is kept in one place by its exact value (an integral double as the integer it is), so
// a lookup is exact whatever the forms of the item and the value.
struct InSet {
  StringSet strings;
  std::unordered_set<int64_t> integers;
  std::unordered_set<uint64_t> unsigned_integers;  // 2^63 to 2^64-1
  StringSet big_positive, big_negative;            // beyond 64 bits, by canonical hex
  std::unordered_set<double> reals;  // non-integral or beyond 64 bits (big integers that
                                     // are exactly a double too)
  std::vector<Version> versions;
  bool has_true = false, has_false = false, has_null = false;
  size_t string_items = 0, number_items = 0, bool_items = 0, total = 0;

  // `v` is a number; a big integer's text must outlive the set.
  void insert_number(const Value& v) {
    ++number_items;
    Value as_int = v;
    if (v.type == ValueType::real && !integer_of_real(v.real, as_int)) {
      reals.insert(v.real);
      return;
    }
    switch (as_int.form) {
      case IntForm::i64:
        integers.insert(as_int.integer);
        break;
      case IntForm::u64:
        unsigned_integers.insert(static_cast<uint64_t>(as_int.integer));
        break;
      case IntForm::big:
        (as_int.real < 0 ? big_negative : big_positive).insert(as_int.text);
        if (as_int.integer == 0) reals.insert(as_int.real);
        break;
    }
  }

  bool contains_integer(const Value& v) const {
    switch (v.form) {
      case IntForm::i64:
        return integers.count(v.integer) > 0;
      case IntForm::u64:
        return unsigned_integers.count(static_cast<uint64_t>(v.integer)) > 0;
      case IntForm::big:
        return (v.real < 0 ? big_negative : big_positive).contains(v.text) ||
               (v.integer == 0 && reals.count(v.real) > 0);
    }
    return false;
  }

  Truth contains(const Value& v) const {
    if (v.is_null()) return kUnknown;
    bool found = false;
    size_t same_type = 0;
    switch (v.type) {
      case ValueType::string:
        found = strings.contains(v.text);
        same_type = string_items;
        if (!found && !versions.empty()) {
          Version parsed;
          if (parse_semver(v.text, parsed)) {
            for (const auto& x : versions) found |= compare_semver(parsed, x) == 0;
          }
        }
        break;
      case ValueType::integer:
        found = v.form == IntForm::i64 ? integers.count(v.integer) > 0 : contains_integer(v);
        same_type = number_items;
        break;
      case ValueType::real: {
        Value as_int;
        found =
            integer_of_real(v.real, as_int) ? contains_integer(as_int) : reals.count(v.real) > 0;
        same_type = number_items;
        break;
      }
      case ValueType::boolean:
        found = v.boolean ? has_true : has_false;
        same_type = bool_items;
        break;
      case ValueType::version:
        for (const auto& x : versions) found |= compare_semver(v.version, x) == 0;
        same_type = versions.size();
        break;
      default:
        break;
    }
    if (found) return kTrue;
    return same_type == total && !has_null ? kFalse : kUnknown;
  }
};

struct Node {
  Kind kind = Kind::literal;
  size_t pos = 0;
  std::vector<size_t> kids;
  CompareOp op = CompareOp::eq;
  bool negated = false;  // is not null, not in
  size_t slot = 0;
  Value literal;
  Fn fn = Fn::lower;
  std::shared_ptr<RE2> regex;
  std::shared_ptr<InSet> set;
  std::vector<Value> list_items;  // for printing
  std::string list_name;          // `in @name`
  SType stype = SType::dynamic;
  bool is_literal = false;
};

class Program {
 public:
  std::string source;
  std::vector<Node> nodes;
  size_t root = 0;
  std::vector<std::string> attributes;
  std::vector<std::vector<std::string>> paths;
  std::deque<std::string> strings;  // literal storage (stable addresses)
  NamedLists lists;                 // `@name` lists, their strings kept in `strings`
  // Per node: the one attribute slot its subtree reads, -1 for none, -2 for several.
  std::vector<int64_t> single_slot;

  void analyse() {
    single_slot.assign(nodes.size(), -1);
    for (size_t id = 0; id < nodes.size(); ++id) {  // children precede their parents
      const auto& n = nodes[id];
      int64_t slot = n.kind == Kind::attribute ? static_cast<int64_t>(n.slot) : -1;
      for (size_t k : n.kids) {
        const int64_t ks = single_slot[k];
        if (ks == -1) continue;
        slot = (slot == -1 || slot == ks) ? ks : -2;
      }
      single_slot[id] = slot;
    }
  }

  std::string_view keep(std::string s) {
    strings.push_back(std::move(s));
    return strings.back();
  }
};

}  // namespace trafficsplit::targeting
