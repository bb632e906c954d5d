// trafficsplit._core.targeting: compiled targeting expressions and attribute columns.
#include "bindings.hpp"
// datetime.h needs Python.h first (pybind11 includes it).
#include <datetime.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <deque>
#include <forward_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "trafficsplit/assignment/batch.hpp"
#include "trafficsplit/errors.hpp"
#include "trafficsplit/targeting/targeting.hpp"
#include "units.hpp"

namespace trafficsplit::bindings {
using targeting::AttributeColumn;
using targeting::CompiledTargeting;
using targeting::Value;

namespace {

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// A Python datetime or date (naive = UTC) as a timestamp: whole seconds and nanoseconds.
bool datetime_value(PyObject* obj, Value& out) {
  int64_t seconds = days_from_civil(PyDateTime_GET_YEAR(obj), PyDateTime_GET_MONTH(obj),
                                    PyDateTime_GET_DAY(obj)) *
                    86400;
  int64_t micros = 0;
  if (PyDateTime_Check(obj)) {
    seconds += PyDateTime_DATE_GET_HOUR(obj) * 3600 + PyDateTime_DATE_GET_MINUTE(obj) * 60 +
               PyDateTime_DATE_GET_SECOND(obj);
    micros = PyDateTime_DATE_GET_MICROSECOND(obj);
    py::object offset =
        py::reinterpret_steal<py::object>(PyObject_CallMethod(obj, "utcoffset", nullptr));
    if (!offset) {
      PyErr_Clear();
      return false;
    }
    if (!offset.is_none() && PyDelta_Check(offset.ptr())) {
      seconds -= static_cast<int64_t>(PyDateTime_DELTA_GET_DAYS(offset.ptr())) * 86400 +
                 PyDateTime_DELTA_GET_SECONDS(offset.ptr());
      micros -= PyDateTime_DELTA_GET_MICROSECONDS(offset.ptr());
      if (micros < 0) {
        micros += 1'000'000;
        --seconds;
      }
    }
  }
  out = Value::of_time(seconds, static_cast<uint32_t>(micros * 1000));
  return true;
}

// A numpy datetime64 scalar in its own unit: s to ns exactly (a coarser unit as seconds, a
// finer one as nanoseconds).
Value datetime64_value(PyObject* obj) {
  const py::object scalar = py::reinterpret_borrow<py::object>(obj);
  const py::tuple unit_count =
      py::module_::import("numpy").attr("datetime_data")(scalar.attr("dtype"));
  const std::string unit = py::str(unit_count[0]);
  const auto count = unit_count[1].cast<int64_t>();
  targeting::TimeUnit kind = targeting::TimeUnit::s;
  std::string target = "datetime64[s]";
  if (unit == "ms" || unit == "us" || unit == "ns") {
    kind = unit == "ms" ? targeting::TimeUnit::ms
                        : (unit == "us" ? targeting::TimeUnit::us : targeting::TimeUnit::ns);
    target = "datetime64[" + unit + "]";
  } else if (unit == "ps" || unit == "fs" || unit == "as") {
    kind = targeting::TimeUnit::ns;
    target = "datetime64[ns]";
  }
  py::object ticks = scalar;
  if (count != 1 || ("datetime64[" + unit + "]") != target) ticks = scalar.attr("astype")(target);
  return targeting::time_value(ticks.attr("astype")("int64").cast<int64_t>(), kind);
}

// A Python int beyond int64 (uint64, or beyond 64 bits: kept exactly as its hex digits, which
// Python's hex() gives without the digit limit of str()).
Value wide_int_value(PyObject* obj, int overflow, std::string& storage) {
  if (overflow > 0) {
    const unsigned long long u = PyLong_AsUnsignedLongLong(obj);
    if (!(u == static_cast<unsigned long long>(-1) && PyErr_Occurred())) {
      return Value::of_uint(u);
    }
    PyErr_Clear();
  }
  const py::object hex = py::reinterpret_steal<py::object>(PyNumber_ToBase(obj, 16));
  Py_ssize_t n = 0;
  const char* s = hex ? PyUnicode_AsUTF8AndSize(hex.ptr(), &n) : nullptr;
  std::string_view digits(s == nullptr ? "" : s, static_cast<size_t>(n));
  const bool negative = !digits.empty() && digits[0] == '-';
  if (negative) digits.remove_prefix(1);
  if (digits.substr(0, 2) == "0x") digits.remove_prefix(2);
  Value v;
  if (s == nullptr || !targeting::big_integer_from_hex(digits, negative, storage, v)) {
    PyErr_Clear();
    return Value::of_other();
  }
  return v;
}

// isinstance() can run Python code (a __class__ property); one that raises makes the value
// a type that matches nothing, since evaluation never raises.
bool instance_of(PyObject* obj, PyObject* cls) {
  const int found = PyObject_IsInstance(obj, cls);
  if (found < 0) PyErr_Clear();
  return found == 1;
}

// A Python object as a targeting Value. Strings are viewed in place when `storage` is null
// (the caller keeps the object alive and holds the GIL) and copied into it otherwise; the
// text of an int beyond 64 bits goes to `storage`, else to `wide` (which must then be given).
// The caller owns a reference to `obj`: converting it can run Python code (__index__,
// utcoffset) that drops every other reference.
Value to_value(PyObject* obj, std::deque<std::string>* storage,
               std::forward_list<std::string>* wide = nullptr) {
  auto text = [&](const char* data, size_t len) {
    if (storage == nullptr) return Value::of_string(std::string_view(data, len));
    storage->emplace_back(data, len);
    return Value::of_string(storage->back());
  };
  if (obj == Py_None) return Value::null();
  if (PyUnicode_Check(obj)) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(obj, &n);
    if (s == nullptr) {
      PyErr_Clear();
      return Value::of_other();  // lone surrogates: not text that compares
    }
    return text(s, static_cast<size_t>(n));
  }
  if (PyBool_Check(obj)) return Value::of_bool(obj == Py_True);
  if (PyLong_Check(obj)) {
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow == 0) return Value::of_int(v);
    std::string& text = storage != nullptr ? storage->emplace_back() : wide->emplace_front();
    return wide_int_value(obj, overflow, text);
  }
  if (PyFloat_Check(obj)) return Value::of_real(PyFloat_AS_DOUBLE(obj));
  if (PyBytes_Check(obj))
    return text(PyBytes_AS_STRING(obj), static_cast<size_t>(PyBytes_GET_SIZE(obj)));
  // pandas NaT is a datetime subclass: recognise the missing markers first.
  const char* type = Py_TYPE(obj)->tp_name;
  if (std::strcmp(type, "NAType") == 0 || std::strcmp(type, "NaTType") == 0) return Value::null();
  if (PyDate_Check(obj)) {
    Value v;
    return datetime_value(obj, v) ? v : Value::of_other();
  }
  const NumpyTypes& np = numpy_types();
  if (instance_of(obj, np.bool_.ptr())) return Value::of_bool(PyObject_IsTrue(obj) == 1);
  if (instance_of(obj, np.integer.ptr())) {
    py::object as_int = py::reinterpret_steal<py::object>(PyNumber_Index(obj));
    if (!as_int) {
      PyErr_Clear();
      return Value::of_other();
    }
    return to_value(as_int.ptr(), storage, wide);
  }
  if (instance_of(obj, np.floating.ptr())) {
    const double d = PyFloat_AsDouble(obj);
    if (d == -1.0 && PyErr_Occurred()) {
      PyErr_Clear();
      return Value::of_other();
    }
    return Value::of_real(d);
  }
  if (instance_of(obj, np.datetime64.ptr())) {
    try {
      return datetime64_value(obj);
    } catch (const py::error_already_set&) {
      return Value::of_other();  // evaluation never raises
    }
  }
  PyErr_Clear();
  return Value::of_other();
}

// The objects of a list, tuple or numpy object array as targeting Values, a block at a time
// for the core's evaluator, where they are and with the GIL held: no Value, string or Arrow
// copy per row is made beforehand. The block's objects are held until the next block, so a
// conversion's Python code that replaces or drops a row cannot free text a Value views.
class ObjectValues {
 public:
  explicit ObjectValues(py::handle seq) : rows_(seq, "the attribute values", true) {}
  ObjectValues(const ObjectValues&) = delete;
  ObjectValues& operator=(const ObjectValues&) = delete;
  ~ObjectValues() { release(); }

  size_t size() const { return rows_.size(); }

  static void read(void* self, size_t begin, size_t count, Value* out) {
    auto* values = static_cast<ObjectValues*>(self);
    values->release();
    values->held_.reserve(count);
    for (size_t k = 0; k < count; ++k) {
      PyObject* obj = values->rows_.item(begin + k);
      if (obj == nullptr) {  // an empty slot of an object array: None
        out[k] = Value::null();
        continue;
      }
      Py_INCREF(obj);
      values->held_.push_back(obj);
      if (PyUnicode_CheckExact(obj) && PyUnicode_IS_COMPACT_ASCII(obj)) {
        // ASCII text is its own UTF-8, stored right after the object header.
        out[k] = Value::of_string(std::string_view(static_cast<const char*>(PyUnicode_DATA(obj)),
                                                   static_cast<size_t>(PyUnicode_GET_LENGTH(obj))));
        continue;
      }
      out[k] = to_value(obj, nullptr, &values->wide_);
    }
  }

 private:
  ObjectRows rows_;
  std::vector<PyObject*> held_;          // the current block's objects
  std::forward_list<std::string> wide_;  // its ints beyond 64 bits, as text

  void release() {
    // Moved out first: a __del__ run by a release may read this column again.
    std::vector<PyObject*> held;
    held.swap(held_);
    wide_.clear();
    for (PyObject* obj : held) Py_DECREF(obj);
    held.clear();
    if (held_.empty()) held_.swap(held);  // keep the capacity
  }
};

// A column of attribute values, keeping alive whatever it points into.
class AttrColumn {
 public:
  AttributeColumn column;

  static std::shared_ptr<AttrColumn> missing(size_t n) {
    auto c = std::make_shared<AttrColumn>();
    c->column.kind = AttributeColumn::Kind::missing;
    c->column.length = n;
    return c;
  }

  static std::shared_ptr<AttrColumn> other(size_t n) {
    auto c = std::make_shared<AttrColumn>();
    c->values_.assign(n, Value::of_other());
    c->column.kind = AttributeColumn::Kind::values;
    c->column.values = c->values_.data();
    c->column.length = n;
    return c;
  }

  static std::shared_ptr<AttrColumn> from_objects(py::handle seq) {
    auto c = std::make_shared<AttrColumn>();
    py::object fast =
        py::reinterpret_steal<py::object>(PySequence_Fast(seq.ptr(), "expected a sequence"));
    if (!fast) throw py::error_already_set();
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(fast.ptr());
    c->values_.reserve(static_cast<size_t>(n));
    for (Py_ssize_t i = 0; i < n; ++i) {
      // A list given as it is may be changed by a conversion's Python code (__index__,
      // utcoffset): look each item up afresh and own it while it is converted.
      if (i >= PySequence_Fast_GET_SIZE(fast.ptr())) {
        PyErr_Format(PyExc_RuntimeError,
                     "the attribute values changed size while they were read (%zd rows at the "
                     "start, %zd at row %zd)",
                     n, PySequence_Fast_GET_SIZE(fast.ptr()), i);
        throw py::error_already_set();
      }
      const py::object item =
          py::reinterpret_borrow<py::object>(PySequence_Fast_GET_ITEM(fast.ptr(), i));
      c->values_.push_back(to_value(item.ptr(), &c->strings_));
    }
    c->column.kind = AttributeColumn::Kind::values;
    c->column.values = c->values_.data();
    c->column.length = static_cast<size_t>(n);
    return c;
  }

  // Python objects read in place while the mask is evaluated (ObjectValues).
  static std::shared_ptr<AttrColumn> from_object_rows(py::handle seq) {
    auto c = std::make_shared<AttrColumn>();
    c->objects_ = std::make_unique<ObjectValues>(seq);
    c->column.kind = AttributeColumn::Kind::rows;
    c->column.length = c->objects_->size();
    c->column.read_rows = &ObjectValues::read;
    c->column.rows_context = c->objects_.get();
    return c;
  }

  bool reads_objects() const { return objects_ != nullptr; }

  static std::shared_ptr<AttrColumn> from_numpy(py::array values, py::object nulls) {
    if (values.ndim() != 1 || !(values.flags() & py::array::c_style)) {
      throw InvalidArgument("attribute columns must be one-dimensional and contiguous");
    }
    auto c = std::make_shared<AttrColumn>();
    c->keep_.push_back(values);
    AttributeColumn& col = c->column;
    col.length = static_cast<size_t>(values.shape(0));
    col.data = values.data();
    const char kind = values.dtype().kind();
    const size_t item = static_cast<size_t>(values.itemsize());
    if (kind == 'b') {
      col.kind = AttributeColumn::Kind::boolean;
    } else if (kind == 'i' || kind == 'u') {
      col.kind = AttributeColumn::Kind::integer;
      col.int_kind = int_kind(kind == 'i', item);
    } else if (kind == 'f' && item == 8) {
      col.kind = AttributeColumn::Kind::real64;
    } else if (kind == 'f' && item == 4) {
      col.kind = AttributeColumn::Kind::real32;
    } else if (kind == 'M' && item == 8) {
      // Read in its own unit (the caller converts any other to s or ns).
      col.kind = AttributeColumn::Kind::timestamp;
      const py::tuple unit_count =
          py::module_::import("numpy").attr("datetime_data")(values.dtype());
      const std::string unit = py::str(unit_count[0]);
      if (unit_count[1].cast<int64_t>() != 1 ||
          (unit != "s" && unit != "ms" && unit != "us" && unit != "ns")) {
        throw InvalidArgument("datetime64 columns must be in s, ms, us or ns (internal)");
      }
      col.time_unit = unit == "s"    ? targeting::TimeUnit::s
                      : unit == "ms" ? targeting::TimeUnit::ms
                      : unit == "us" ? targeting::TimeUnit::us
                                     : targeting::TimeUnit::ns;
    } else if (kind == 'U' || kind == 'S') {
      c->read_fixed_text(values);
    } else {
      throw InvalidArgument("unsupported attribute column dtype (internal)");
    }
    if (!nulls.is_none()) {
      py::array mask = nulls.cast<py::array>();
      if (mask.dtype().kind() != 'b' || mask.ndim() != 1 ||
          static_cast<size_t>(mask.shape(0)) != col.length ||
          !(mask.flags() & py::array::c_style)) {
        throw InvalidArgument("null masks must be contiguous bool arrays of the column's length");
      }
      c->keep_.push_back(mask);
      col.null_mask = static_cast<const uint8_t*>(mask.data());
    }
    return c;
  }

  static std::shared_ptr<AttrColumn> from_arrow(py::object schema_capsule,
                                                py::object array_capsule) {
    auto* schema =
        static_cast<ArrowSchema*>(PyCapsule_GetPointer(schema_capsule.ptr(), "arrow_schema"));
    if (schema == nullptr) throw py::error_already_set();
    auto* array =
        static_cast<ArrowArray*>(PyCapsule_GetPointer(array_capsule.ptr(), "arrow_array"));
    if (array == nullptr) throw py::error_already_set();
    auto c = std::make_shared<AttrColumn>();
    c->keep_.push_back(schema_capsule);
    c->keep_.push_back(array_capsule);
    // One Arrow reading for targeting and assignment (cpp/src/targeting/columnar.cpp).
    c->column = targeting::attribute_column_from_arrow(*schema, *array);
    return c;
  }

  static std::shared_ptr<AttrColumn> from_dictionary(py::array codes,
                                                     std::shared_ptr<AttrColumn> dictionary) {
    if (codes.ndim() != 1 || !(codes.flags() & py::array::c_style) ||
        (codes.dtype().kind() != 'i' && codes.dtype().kind() != 'u')) {
      throw InvalidArgument("dictionary codes must be a contiguous integer array");
    }
    if (dictionary->reads_objects()) {
      throw InvalidArgument(
          "a dictionary's values must be converted, not read in place (internal)");
    }
    auto c = std::make_shared<AttrColumn>();
    c->keep_.push_back(codes);
    c->dictionary_ = std::move(dictionary);
    c->column.kind = AttributeColumn::Kind::dictionary;
    c->column.length = static_cast<size_t>(codes.shape(0));
    c->column.data = codes.data();
    c->column.int_kind =
        int_kind(codes.dtype().kind() == 'i', static_cast<size_t>(codes.itemsize()));
    c->column.dictionary = &c->dictionary_->column;
    return c;
  }

 private:
  std::vector<py::object> keep_;
  std::vector<Value> values_;
  std::deque<std::string> strings_;
  std::string text_;              // fixed-width text as UTF-8
  std::vector<int64_t> offsets_;  // its row offsets
  std::shared_ptr<AttrColumn> dictionary_;
  std::unique_ptr<ObjectValues> objects_;

  // numpy fixed-width text ('U': UTF-32, 'S': bytes) as UTF-8 with only the trailing NULs
  // (numpy's padding) dropped, so a NUL inside a value is kept. A 'U' value that is not
  // Unicode (a lone surrogate) is a value of another type, as the same str is per request.
  void read_fixed_text(const py::array& values) {
    const bool utf32 = values.dtype().kind() == 'U';
    const size_t item = static_cast<size_t>(values.itemsize());
    const size_t n = column.length;
    const char* base = static_cast<const char*>(values.data());
    offsets_.assign(n + 1, 0);
    std::vector<size_t> bad;
    for (size_t i = 0; i < n; ++i) {
      const char* row = base + i * item;
      if (!utf32) {
        size_t len = item;
        while (len > 0 && row[len - 1] == '\0') --len;
        text_.append(row, len);
      } else {
        auto code_at = [&](size_t k) {
          uint32_t code;
          std::memcpy(&code, row + 4 * k, 4);
          return code;
        };
        size_t chars = item / 4;
        while (chars > 0 && code_at(chars - 1) == 0) --chars;
        const size_t start = text_.size();
        for (size_t k = 0; k < chars; ++k) {
          const uint32_t cp = code_at(k);
          if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            text_.resize(start);
            bad.push_back(i);
            break;
          }
          targeting::append_utf8(text_, cp);
        }
      }
      offsets_[i + 1] = static_cast<int64_t>(text_.size());
    }
    if (bad.empty()) {
      OffsetStringColumn t;
      t.large_offsets = true;
      t.offsets = offsets_.data();
      t.data = text_.data();
      t.length = n;
      column.kind = AttributeColumn::Kind::text;
      column.text_column = t;
      column.data = nullptr;
      return;
    }
    values_.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      values_.push_back(Value::of_string(std::string_view(
          text_.data() + offsets_[i], static_cast<size_t>(offsets_[i + 1] - offsets_[i]))));
    }
    for (size_t i : bad) values_[i] = Value::of_other();
    column.kind = AttributeColumn::Kind::values;
    column.values = values_.data();
    column.data = nullptr;
  }

  static IntKind int_kind(bool sign, size_t item) {
    switch (item) {
      case 1:
        return sign ? IntKind::i8 : IntKind::u8;
      case 2:
        return sign ? IntKind::i16 : IntKind::u16;
      case 4:
        return sign ? IntKind::i32 : IntKind::u32;
      default:
        return sign ? IntKind::i64 : IntKind::u64;
    }
  }
};

// The compiled expression with its attribute paths ready for dict lookups.
class PyTargeting {
 public:
  PyTargeting(const std::string& expression, py::object lists)
      : core_(expression, convert_lists(lists, storage_)) {
    for (const auto& path : core_.attribute_paths()) {
      std::vector<py::object> parts;
      for (const auto& part : path) parts.push_back(py::str(part));
      paths_.push_back(std::move(parts));
      flat_.push_back(py::str(join(path)));
    }
  }

  // One request: reads only the named attributes, with the GIL held (no copies).
  targeting::Truth evaluate(py::handle attributes) const {
    constexpr size_t kInline = 16;
    std::array<Value, kInline> inline_values;
    std::vector<Value> heap;
    Value* values = inline_values.data();
    if (paths_.size() > kInline) {
      heap.resize(paths_.size());
      values = heap.data();
    }
    // Owned references: a mapping may create its values on access, and the Values below
    // view the objects' text until evaluation ends.
    std::array<py::object, kInline> inline_keep;
    std::vector<py::object> heap_keep;
    py::object* keep = inline_keep.data();
    if (paths_.size() > kInline) {
      heap_keep.resize(paths_.size());
      keep = heap_keep.data();
    }
    std::forward_list<std::string> wide;  // the text of ints beyond 64 bits (rare)
    for (size_t slot = 0; slot < paths_.size(); ++slot) {
      keep[slot] = lookup(attributes, slot);
      values[slot] = keep[slot] ? to_value(keep[slot].ptr(), nullptr, &wide) : Value::null();
    }
    return core_.evaluate(values);
  }

  py::array_t<bool> mask(const std::vector<std::shared_ptr<AttrColumn>>& columns, size_t rows,
                         unsigned threads) const {
    if (columns.size() != paths_.size()) {
      throw InvalidArgument("one column per attribute is needed (internal)");
    }
    std::vector<AttributeColumn> views;
    for (const auto& c : columns) views.push_back(c->column);
    const bool objects = std::any_of(columns.begin(), columns.end(),
                                     [](const auto& c) { return c->reads_objects(); });
    py::array_t<bool> out(static_cast<py::ssize_t>(rows));
    auto* data = reinterpret_cast<uint8_t*>(out.mutable_data());
    {
      // Safe without the GIL: the columns hold references to every buffer they read (their
      // values were converted when they were built) and the output is private to this call.
      // Columns of Python objects are read during the evaluation, so it keeps the GIL and
      // runs on this thread (the core runs a mask with such a column on the calling thread).
      std::optional<py::gil_scoped_release> release;
      if (rows >= 4096 && !objects) release.emplace();
      core_.mask(views.data(), rows, data, threads);
    }
    return out;
  }

  const CompiledTargeting& core() const { return core_; }

 private:
  std::deque<std::string> storage_;  // only while compiling: the core copies what it keeps
  CompiledTargeting core_;

  static targeting::NamedLists convert_lists(py::object lists, std::deque<std::string>& storage) {
    targeting::NamedLists out;
    if (lists.is_none()) return out;
    // Owned pairs: converting a name or an item can run Python code (__str__, __index__)
    // that changes the mapping and drops its entries.
    const auto pairs = py::reinterpret_steal<py::list>(PyDict_Items(lists.cast<py::dict>().ptr()));
    if (!pairs) throw py::error_already_set();
    for (const auto pair : pairs) {
      const py::object key = pair.cast<py::tuple>()[0];
      const py::object items = pair.cast<py::tuple>()[1];
      const std::string name = py::str(key);
      std::vector<Value> values;
      size_t index = 0;
      for (auto element : py::reinterpret_borrow<py::iterable>(items)) {
        const Value v = to_value(element.ptr(), &storage);
        if (v.type == targeting::ValueType::other || v.type == targeting::ValueType::timestamp) {
          throw InvalidConfig("lists['" + name + "'][" + std::to_string(index) + "] has type '" +
                              Py_TYPE(element.ptr())->tp_name +
                              "'; list items must be str, bytes, int, float, bool or None");
        }
        values.push_back(v);
        ++index;
      }
      out.emplace_back(name, std::move(values));
    }
    return out;
  }
  std::vector<std::vector<py::object>> paths_;
  std::vector<py::object> flat_;

  static std::string join(const std::vector<std::string>& parts) {
    std::string s;
    for (size_t i = 0; i < parts.size(); ++i) s += (i ? "." : "") + parts[i];
    return s;
  }

  // The value of an attribute (an owned reference), or an empty object when absent. Dotted
  // names read nested mappings first, then a flat key spelled with the dots.
  py::object lookup(py::handle mapping, size_t slot) const {
    py::object current = py::reinterpret_borrow<py::object>(mapping);
    bool ok = true;
    for (const auto& part : paths_[slot]) {
      py::object next = get(current, part);
      if (!next) {
        ok = false;
        break;
      }
      current = std::move(next);
    }
    if (ok) return current;
    if (paths_[slot].size() > 1)
      return get(py::reinterpret_borrow<py::object>(mapping), flat_[slot]);
    return py::object();
  }

  static py::object get(const py::object& mapping, const py::object& key) {
    PyObject* m = mapping.ptr();
    if (PyDict_Check(m)) {
      PyObject* v = PyDict_GetItemWithError(m, key.ptr());
      if (v == nullptr && PyErr_Occurred()) throw py::error_already_set();
      return v == nullptr ? py::object() : py::reinterpret_borrow<py::object>(v);
    }
    // Any mapping (a pandas row, a Mapping subclass) is read by key; text and plain
    // sequences are values, not containers of attributes.
    if (!PyMapping_Check(m) || PyUnicode_Check(m) || PyBytes_Check(m) || PyList_Check(m) ||
        PyTuple_Check(m)) {
      return py::object();
    }
    PyObject* v = PyObject_GetItem(m, key.ptr());
    if (v == nullptr) {
      if (PyErr_ExceptionMatches(PyExc_KeyError)) {
        PyErr_Clear();
        return py::object();
      }
      throw py::error_already_set();
    }
    return py::reinterpret_steal<py::object>(v);
  }
};

}  // namespace

void register_targeting(py::module_& m) {
  PyDateTime_IMPORT;
  m.attr("MAX_EXPRESSION_BYTES") = targeting::kMaxExpressionBytes;
  m.attr("MAX_DEPTH") = targeting::kMaxDepth;
  m.attr("MAX_LIST_ITEMS") = targeting::kMaxListItems;
  py::class_<AttrColumn, std::shared_ptr<AttrColumn>>(m, "AttributeColumn",
                                                      "An attribute column (internal).")
      .def_static("missing", &AttrColumn::missing, py::arg("rows"))
      .def_static("other", &AttrColumn::other, py::arg("rows"))
      .def_static("from_objects", &AttrColumn::from_objects, py::arg("values"))
      .def_static("from_object_rows", &AttrColumn::from_object_rows, py::arg("values"))
      .def_static("from_numpy", &AttrColumn::from_numpy, py::arg("values"),
                  py::arg("nulls") = py::none())
      .def_static("from_arrow", &AttrColumn::from_arrow, py::arg("schema"), py::arg("array"))
      .def_static("from_dictionary", &AttrColumn::from_dictionary, py::arg("codes"),
                  py::arg("dictionary"))
      .def("__len__", [](const AttrColumn& c) { return c.column.length; });
  py::class_<PyTargeting>(m, "CompiledTargeting", "A compiled targeting expression (internal).")
      .def(py::init<const std::string&, py::object>(), py::arg("expression"),
           py::arg("lists") = py::none())
      .def_property_readonly("attributes",
                             [](const PyTargeting& t) { return t.core().attributes(); })
      .def("canonical", [](const PyTargeting& t) { return t.core().canonical(); })
      .def(
          "evaluate",
          [](const PyTargeting& t, py::handle attributes) {
            return static_cast<int>(t.evaluate(attributes));
          },
          py::arg("attributes"))
      .def(
          "matches",
          [](const PyTargeting& t, py::handle attributes) {
            return t.evaluate(attributes) == targeting::kTrue;
          },
          py::arg("attributes"))
      .def("mask", &PyTargeting::mask, py::arg("columns"), py::arg("rows"), py::arg("threads") = 0);
}

}  // namespace trafficsplit::bindings
