// Targeting over columns: a block of rows at a time, numeric and text comparisons with literals in
// tight (vectorised) loops, dictionary columns once per distinct value, and the row-by-row
// evaluator for the rest. Each fast path gives exactly what the evaluator gives row by row.
#include <algorithm>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "parallel.hpp"
#include "targeting/evaluator.hpp"
#include "targeting/lexer.hpp"
#include "trafficsplit/errors.hpp"
#include "trafficsplit/targeting/targeting.hpp"

namespace trafficsplit::targeting {

// The comparison kernels are compiled for AVX-512, AVX2 and the baseline, picked at load time
// (GCC function multi-versioning): packing 8-byte comparisons into bytes is what the wider
// registers speed up, and the build stays portable.
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define TRAFFICSPLIT_MULTIVERSION \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TRAFFICSPLIT_MULTIVERSION
#endif

namespace {

constexpr size_t kBlock = 1024;

// out = 1 (unknown) where mask is set, unchanged elsewhere; branch-free.
TRAFFICSPLIT_MULTIVERSION
void mark_nulls(const uint8_t* mask, size_t len, uint8_t* out) {
  for (size_t i = 0; i < len; ++i) {
    const uint8_t m = mask[i] != 0;
    out[i] = static_cast<uint8_t>((out[i] & static_cast<uint8_t>(m - 1)) | m);
  }
}

void apply_nulls(const AttributeColumn& c, size_t begin, size_t len, uint8_t* out) {
  if (c.null_mask == nullptr && c.validity == nullptr) return;
  if (c.validity == nullptr) {
    mark_nulls(c.null_mask + begin, len, out);
    return;
  }
  for (size_t i = 0; i < len; ++i) {
    const size_t r = begin + i;
    if ((c.null_mask != nullptr && c.null_mask[r]) ||
        !detail::valid_bit(c.validity, c.validity_offset, r)) {
      out[i] = kUnknown;
    }
  }
}

// One comparison per row against a constant, written so the compiler vectorises it: the
// operator is a template parameter, NaN (null) becomes unknown without a branch.
template <CompareOp Op, typename T, typename L>
void compare_loop(const T* x, L lit, size_t len, uint8_t* out) {
  for (size_t i = 0; i < len; ++i) {
    const T v = x[i];
    bool r;
    // Every comparison below is false for NaN (`!=` is spelled as < or >), so NaN (null)
    // becomes unknown (1) by or-ing in the NaN bit, without a branch or a blend.
    if constexpr (Op == CompareOp::eq) r = v == lit;
    if constexpr (Op == CompareOp::ne) r = (v < lit) | (v > lit);
    if constexpr (Op == CompareOp::lt) r = v < lit;
    if constexpr (Op == CompareOp::le) r = v <= lit;
    if constexpr (Op == CompareOp::gt) r = v > lit;
    if constexpr (Op == CompareOp::ge) r = v >= lit;
    uint8_t t = static_cast<uint8_t>(static_cast<uint8_t>(r) << 1);
    if constexpr (std::is_floating_point_v<T>) t |= static_cast<uint8_t>(v != v);
    out[i] = t;
  }
}

template <typename T, typename L>
inline void compare_dispatch(const T* x, L lit, CompareOp op, size_t len, uint8_t* out) {
  switch (op) {
    case CompareOp::eq:
      compare_loop<CompareOp::eq>(x, lit, len, out);
      break;
    case CompareOp::ne:
      compare_loop<CompareOp::ne>(x, lit, len, out);
      break;
    case CompareOp::lt:
      compare_loop<CompareOp::lt>(x, lit, len, out);
      break;
    case CompareOp::le:
      compare_loop<CompareOp::le>(x, lit, len, out);
      break;
    case CompareOp::gt:
      compare_loop<CompareOp::gt>(x, lit, len, out);
      break;
    case CompareOp::ge:
      compare_loop<CompareOp::ge>(x, lit, len, out);
      break;
  }
}

TRAFFICSPLIT_MULTIVERSION
void compare_f64(const double* x, double lit, CompareOp op, size_t len, uint8_t* out) {
  compare_dispatch(x, lit, op, len, out);
}

TRAFFICSPLIT_MULTIVERSION
void compare_f32(const float* x, double lit, CompareOp op, size_t len, uint8_t* out) {
  compare_dispatch(x, lit, op, len, out);
}

TRAFFICSPLIT_MULTIVERSION
void compare_i64(const int64_t* x, int64_t lit, CompareOp op, size_t len, uint8_t* out) {
  compare_dispatch(x, lit, op, len, out);
}

TRAFFICSPLIT_MULTIVERSION
void compare_u64(const uint64_t* x, uint64_t lit, CompareOp op, size_t len, uint8_t* out) {
  compare_dispatch(x, lit, op, len, out);
}

TRAFFICSPLIT_MULTIVERSION
void truth_min(uint8_t* out, const uint8_t* other, size_t len) {
  for (size_t i = 0; i < len; ++i) out[i] = out[i] < other[i] ? out[i] : other[i];
}

TRAFFICSPLIT_MULTIVERSION
void truth_max(uint8_t* out, const uint8_t* other, size_t len) {
  for (size_t i = 0; i < len; ++i) out[i] = out[i] > other[i] ? out[i] : other[i];
}

template <typename T, typename L>
void compare_column(const AttributeColumn& c, L lit, CompareOp op, size_t begin, size_t len,
                    uint8_t* out) {
  const T* x = static_cast<const T*>(c.data) + begin;
  if constexpr (std::is_same_v<T, double>) {
    compare_f64(x, lit, op, len, out);
  } else if constexpr (std::is_same_v<T, float>) {
    compare_f32(x, static_cast<double>(lit), op, len, out);
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    compare_u64(x, lit, op, len, out);
  } else {
    compare_i64(x, lit, op, len, out);
  }
  apply_nulls(c, begin, len, out);
}

template <typename T>
void compare_numeric(const AttributeColumn& c, double lit, CompareOp op, size_t begin, size_t len,
                     uint8_t* out) {
  if constexpr (std::is_floating_point_v<T>) {
    compare_column<T, double>(c, lit, op, begin, len, out);
  } else {
    // Narrow integers are exact in double: compare there.
    const T* x = static_cast<const T*>(c.data) + begin;
    double tmp[kBlock];
    for (size_t i = 0; i < len; ++i) tmp[i] = static_cast<double>(x[i]);
    AttributeColumn widened = c;
    widened.data = tmp;
    widened.null_mask = nullptr;
    widened.validity = nullptr;
    compare_column<double, double>(widened, lit, op, 0, len, out);
    apply_nulls(c, begin, len, out);
  }
}

CompareOp mirror(CompareOp op) {
  switch (op) {
    case CompareOp::lt:
      return CompareOp::gt;
    case CompareOp::le:
      return CompareOp::ge;
    case CompareOp::gt:
      return CompareOp::lt;
    case CompareOp::ge:
      return CompareOp::le;
    default:
      return op;
  }
}

// A number literal that a double represents exactly, so comparing in double equals
// compare_values' integer-or-double comparison for every integer column value that is
// itself exact in double (|v| <= 2^53); wider columns take the generic path.
bool exact_double_literal(const Value& lit, double& out) {
  if (lit.type == ValueType::real) {
    out = lit.real;
    return true;
  }
  if (lit.type == ValueType::integer && lit.form == IntForm::i64 &&
      lit.integer >= -(int64_t{1} << 53) && lit.integer <= (int64_t{1} << 53)) {
    out = static_cast<double>(lit.integer);
    return true;
  }
  return false;
}

bool integer_kind_exact_in_double(IntKind k) { return k != IntKind::i64 && k != IntKind::u64; }

class BlockEvaluator {
 public:
  BlockEvaluator(const Program& p, const AttributeColumn* columns)
      : p_(p), given_(columns), own_(columns, columns + p.attributes.size()) {
    columns_ = own_.data();
    buffers_.resize(p.nodes.size());
    scratch_.private_regexes = true;
    for (size_t slot = 0; slot < own_.size(); ++slot) {
      if (own_[slot].kind == AttributeColumn::Kind::rows) row_slots_.push_back(slot);
    }
    row_values_.resize(row_slots_.size());
  }

  void run(size_t begin, size_t end, uint8_t* out) {
    for (size_t b = begin; b < end; b += kBlock) {
      const size_t len = std::min(kBlock, end - b);
      if (!row_slots_.empty()) read_rows(b, len);
      const uint8_t* t = truth(p_.root, b, len);
      for (size_t i = 0; i < len; ++i) out[b + i] = t[i] == kTrue;
    }
  }

 private:
  const Program& p_;
  const AttributeColumn* given_;
  std::vector<AttributeColumn> own_;  // the columns, `rows` ones as the block's values
  const AttributeColumn* columns_;    // own_.data()
  std::vector<size_t> row_slots_;     // the slots of `rows` columns
  std::vector<std::vector<Value>> row_values_;
  std::vector<std::vector<uint8_t>> buffers_;
  std::unordered_map<size_t, std::vector<uint8_t>> dictionary_tables_;
  Scratch scratch_;

  // The block's rows of each `rows` column, read once per reader: the Values of a reader's
  // previous call may be released by its next, so two slots of one reader share one read.
  void read_rows(size_t begin, size_t len) {
    for (size_t k = 0; k < row_slots_.size(); ++k) {
      const AttributeColumn& source = given_[row_slots_[k]];
      AttributeColumn& column = own_[row_slots_[k]];
      size_t same = 0;
      while (same < k && (given_[row_slots_[same]].read_rows != source.read_rows ||
                          given_[row_slots_[same]].rows_context != source.rows_context)) {
        ++same;
      }
      if (same < k) {
        column = own_[row_slots_[same]];
        continue;
      }
      std::vector<Value>& values = row_values_[k];
      values.resize(len);
      source.read_rows(source.rows_context, begin, len, values.data());
      column = source;
      column.kind = AttributeColumn::Kind::values;
      column.values = values.data();
      column.first_row = begin;
    }
  }

  uint8_t* buffer(size_t id) {
    auto& b = buffers_[id];
    if (b.size() < kBlock) b.resize(kBlock);
    return b.data();
  }

  const uint8_t* truth(size_t id, size_t begin, size_t len) {
    const Node& n = p_.nodes[id];
    uint8_t* out = buffer(id);
    switch (n.kind) {
      case Kind::any:
      case Kind::all: {
        const uint8_t* first = truth(n.kids[0], begin, len);
        std::memcpy(out, first, len);
        for (size_t k = 1; k < n.kids.size(); ++k) {
          const uint8_t* other = truth(n.kids[k], begin, len);
          if (n.kind == Kind::any) {
            truth_max(out, other, len);
          } else {
            truth_min(out, other, len);
          }
        }
        return out;
      }
      case Kind::negate: {
        const uint8_t* inner = truth(n.kids[0], begin, len);
        for (size_t i = 0; i < len; ++i) out[i] = static_cast<uint8_t>(2 - inner[i]);
        return out;
      }
      case Kind::compare:
        if (fast_compare(n, begin, len, out)) return out;
        break;
      default:
        break;
    }
    const int64_t slot = p_.single_slot[id];
    if (slot >= 0 && columns_[slot].kind == AttributeColumn::Kind::dictionary) {
      dictionary_truth(id, static_cast<size_t>(slot), begin, len, out);
      return out;
    }
    if (n.kind == Kind::in_list && p_.nodes[n.kids[0]].kind == Kind::attribute) {
      const AttributeColumn& c = columns_[p_.nodes[n.kids[0]].slot];
      if (c.kind == AttributeColumn::Kind::text && n.set->versions.empty()) {
        if (const auto* t = std::get_if<OffsetStringColumn>(&c.text_column)) {
          // Strings straight from the Arrow buffers: a miss is false only when every item
          // is a string (InSet::contains gives the same for string values).
          const uint8_t miss =
              n.set->string_items == n.set->total && !n.set->has_null ? kFalse : kUnknown;
          auto run = [&](const auto* offsets) {
            for (size_t i = 0; i < len; ++i) {
              const size_t r = begin + i;
              if (r + 16 < t->length) __builtin_prefetch(t->data + offsets[r + 16]);
              if (!detail::valid_bit(t->validity, t->validity_offset, r)) {
                out[i] = kUnknown;
                continue;
              }
              const std::string_view v = detail::offset_string(offsets, t->data, r);
              const uint8_t hit = n.set->strings.contains(v) ? uint8_t{kTrue} : miss;
              out[i] = n.negated ? static_cast<uint8_t>(2 - hit) : hit;
            }
          };
          if (t->large_offsets) {
            run(static_cast<const int64_t*>(t->offsets));
          } else {
            run(static_cast<const int32_t*>(t->offsets));
          }
          // Nulls may also come from the column's own mask, not only the string buffers' bitmap.
          apply_nulls(c, begin, len, out);
          return out;
        }
      }
      if (c.kind == AttributeColumn::Kind::values && n.set->versions.empty()) {
        // Values in place (Python objects read a block at a time): strings go straight to
        // the string set, with the miss InSet::contains gives a string.
        const uint8_t miss =
            n.set->string_items == n.set->total && !n.set->has_null ? kFalse : kUnknown;
        const Value* values = c.values + (begin - c.first_row);
        for (size_t i = 0; i < len; ++i) {
          const Value& v = values[i];
          const uint8_t hit = v.type == ValueType::string
                                  ? (n.set->strings.contains(v.text) ? uint8_t{kTrue} : miss)
                                  : static_cast<uint8_t>(n.set->contains(v));
          out[i] = n.negated ? static_cast<uint8_t>(2 - hit) : hit;
        }
        return out;
      }
      for (size_t i = 0; i < len; ++i) {
        const Truth t = n.set->contains(column_value(c, begin + i));
        out[i] = n.negated ? truth_not(t) : t;
      }
      return out;
    }
    for (size_t i = 0; i < len; ++i) {
      scratch_.reset();
      ColumnRow row{columns_, begin + i};
      out[i] = Evaluator<ColumnRow>(p_, row, scratch_).truth(id);
    }
    return out;
  }

  // A node that reads one dictionary-encoded attribute is evaluated once per dictionary
  // entry (and once for null), then gathered by code.
  void dictionary_truth(size_t id, size_t slot, size_t begin, size_t len, uint8_t* out) {
    auto& table = dictionary_tables_[id];
    const AttributeColumn& c = columns_[slot];
    if (table.empty()) {
      const AttributeColumn& dict = *c.dictionary;
      std::vector<AttributeColumn> substituted(columns_, columns_ + p_.attributes.size());
      table.resize(dict.length + 1);
      Scratch scratch;
      substituted[slot] = dict;
      for (size_t k = 0; k < dict.length; ++k) {
        scratch.reset();
        ColumnRow row{substituted.data(), k};
        table[k] = Evaluator<ColumnRow>(p_, row, scratch).truth(id);
      }
      AttributeColumn null_column;
      null_column.kind = AttributeColumn::Kind::missing;
      substituted[slot] = null_column;
      scratch.reset();
      ColumnRow row{substituted.data(), 0};
      table[dict.length] = Evaluator<ColumnRow>(p_, row, scratch).truth(id);
    }
    const size_t null_index = table.size() - 1;
    // One loop per code type: no per-row switch on the type in the gather.
    auto gather = [&](const auto* codes) {
      for (size_t i = 0; i < len; ++i) {
        const size_t r = begin + i;
        const auto code = codes[r];
        // Negative codes wrap to large unsigned values: one test for both bounds.
        const bool null = static_cast<uint64_t>(code) >= null_index ||
                          (c.null_mask != nullptr && c.null_mask[r]) ||
                          !detail::valid_bit(c.validity, c.validity_offset, r);
        out[i] = table[null ? null_index : static_cast<size_t>(code)];
      }
    };
    switch (c.int_kind) {
      case IntKind::i8:
        return gather(static_cast<const int8_t*>(c.data));
      case IntKind::i16:
        return gather(static_cast<const int16_t*>(c.data));
      case IntKind::i32:
        return gather(static_cast<const int32_t*>(c.data));
      case IntKind::i64:
        return gather(static_cast<const int64_t*>(c.data));
      case IntKind::u8:
        return gather(static_cast<const uint8_t*>(c.data));
      case IntKind::u16:
        return gather(static_cast<const uint16_t*>(c.data));
      case IntKind::u32:
        return gather(static_cast<const uint32_t*>(c.data));
      case IntKind::u64:
        return gather(static_cast<const uint64_t*>(c.data));
    }
  }

  // An int64 or uint64 column against an integer literal: in the column's own type when the
  // literal fits it, else the same order for every row (the literal is beyond the type).
  static void compare_wide_integers(const AttributeColumn& c, const Value& lit, CompareOp op,
                                    size_t begin, size_t len, uint8_t* out) {
    const bool is_signed = c.int_kind == IntKind::i64;
    if (is_signed && lit.form == IntForm::i64) {
      compare_column<int64_t, int64_t>(c, lit.integer, op, begin, len, out);
      return;
    }
    if (!is_signed &&
        (lit.form == IntForm::u64 || (lit.form == IntForm::i64 && lit.integer >= 0))) {
      compare_column<uint64_t, uint64_t>(c, static_cast<uint64_t>(lit.integer), op, begin, len,
                                         out);
      return;
    }
    // Zero stands for every row: the literal lies outside the column type on one side of it.
    const int order = compare_integers(Value::of_int(0), lit);
    std::memset(out, truth_of_order(order, op), len);
    apply_nulls(c, begin, len, out);
  }

  bool fast_compare(const Node& n, size_t begin, size_t len, uint8_t* out) {
    const Node* a = &p_.nodes[n.kids[0]];
    const Node* b = &p_.nodes[n.kids[1]];
    CompareOp op = n.op;
    if (a->kind == Kind::literal && b->kind == Kind::attribute) {
      std::swap(a, b);
      op = mirror(op);
    }
    if (a->kind != Kind::attribute || b->kind != Kind::literal) return false;
    const AttributeColumn& c = columns_[a->slot];
    if (c.kind == AttributeColumn::Kind::dictionary) return false;  // per entry, then gathered
    using K = AttributeColumn::Kind;
    double lit;
    if (b->literal.is_number() && exact_double_literal(b->literal, lit)) {
      if (c.kind == K::real64) {
        compare_numeric<double>(c, lit, op, begin, len, out);
        return true;
      }
      if (c.kind == K::real32) {
        compare_numeric<float>(c, lit, op, begin, len, out);
        return true;
      }
      if (c.kind == K::integer && integer_kind_exact_in_double(c.int_kind)) {
        switch (c.int_kind) {
          case IntKind::i8:
            compare_numeric<int8_t>(c, lit, op, begin, len, out);
            return true;
          case IntKind::i16:
            compare_numeric<int16_t>(c, lit, op, begin, len, out);
            return true;
          case IntKind::i32:
            compare_numeric<int32_t>(c, lit, op, begin, len, out);
            return true;
          case IntKind::u8:
            compare_numeric<uint8_t>(c, lit, op, begin, len, out);
            return true;
          case IntKind::u16:
            compare_numeric<uint16_t>(c, lit, op, begin, len, out);
            return true;
          case IntKind::u32:
            compare_numeric<uint32_t>(c, lit, op, begin, len, out);
            return true;
          default:
            return false;
        }
      }
    }
    if (c.kind == K::integer && b->literal.type == ValueType::integer &&
        (c.int_kind == IntKind::i64 || c.int_kind == IntKind::u64)) {
      compare_wide_integers(c, b->literal, op, begin, len, out);
      return true;
    }
    for (size_t i = 0; i < len; ++i)
      out[i] = compare_values(column_value(c, begin + i), b->literal, op);
    return true;
  }
};

// Rows per thread below which a thread costs more than it saves.
constexpr size_t kMinRowsPerThread = size_t{1} << 16;

}  // namespace

void CompiledTargeting::mask(const AttributeColumn* columns, size_t rows, uint8_t* out,
                             unsigned threads) const {
  using K = AttributeColumn::Kind;
  for (size_t a = 0; a < program_->attributes.size(); ++a) {
    const AttributeColumn& c = columns[a];
    if (c.kind != K::missing && c.length != rows) {
      throw InvalidArgument("column '" + show_nuls(program_->attributes[a]) + "' has " +
                            std::to_string(c.length) + " rows, expected " + std::to_string(rows));
    }
    if ((c.kind == K::rows && c.read_rows == nullptr) ||
        (c.kind == K::dictionary && c.dictionary != nullptr && c.dictionary->kind == K::rows)) {
      throw InvalidArgument("column '" + show_nuls(program_->attributes[a]) +
                            "': a column read by the caller needs its reader and cannot be a "
                            "dictionary's values");
    }
    // The caller's reader may only run on the calling thread.
    if (c.kind == K::rows) threads = 1;
  }
  // Chunks of whole blocks: each thread's evaluator has its own buffers and regexes.
  detail::parallel_for(
      rows, threads, kMinRowsPerThread,
      [&](size_t begin, size_t end) {
        BlockEvaluator evaluator(*program_, columns);
        evaluator.run(begin, end, out);
      },
      kBlock);
}

AttributeColumn attribute_column_from_arrow(const ArrowSchema& schema, const ArrowArray& array) {
  AttributeColumn col;
  col.length = static_cast<size_t>(array.length);
  // Timestamps of every unit (any time zone: the ticks are UTC) and date64 (milliseconds),
  // read in their own unit so that no date needs more than int64 nanoseconds hold.
  const std::string_view format = schema.format == nullptr ? "" : schema.format;
  const bool timestamp = format.size() >= 4 && format.substr(0, 2) == "ts" && format[3] == ':';
  if (timestamp || format == "tdm") {
    const char unit = format == "tdm" ? 'm' : format[2];
    const TimeUnit units[] = {TimeUnit::s, TimeUnit::ms, TimeUnit::us, TimeUnit::ns};
    const size_t k = std::string_view("smun").find(unit);
    if (k != std::string_view::npos) {
      col.kind = AttributeColumn::Kind::timestamp;
      col.time_unit = units[k];
      col.data = static_cast<const char*>(array.buffers[1]) + 8 * static_cast<size_t>(array.offset);
      col.validity = array.n_buffers > 0 && array.null_count != 0
                         ? static_cast<const uint8_t*>(array.buffers[0])
                         : nullptr;
      col.validity_offset = array.offset;
      return col;
    }
  }
  if (const auto numbers = numbers_from_arrow(schema, array)) {
    switch (numbers->kind) {
      case NumberColumn::Kind::real32:
        col.kind = AttributeColumn::Kind::real32;
        break;
      case NumberColumn::Kind::real64:
        col.kind = AttributeColumn::Kind::real64;
        break;
      case NumberColumn::Kind::timestamp:
        col.kind = AttributeColumn::Kind::timestamp;
        break;
    }
    col.data = numbers->data;
    col.validity = numbers->validity;
    col.validity_offset = numbers->validity_offset;
    return col;
  }
  UnitColumn unit = column_from_arrow(schema, array);  // integers and text kinds
  if (const auto* ints = std::get_if<IntColumn>(&unit)) {
    col.kind = AttributeColumn::Kind::integer;
    col.int_kind = ints->kind;
    col.data = ints->values;
    col.validity = ints->validity;
    col.validity_offset = ints->validity_offset;
    return col;
  }
  col.kind = AttributeColumn::Kind::text;
  col.text_column = unit;
  return col;
}

}  // namespace trafficsplit::targeting
