#include "units.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "trafficsplit/errors.hpp"
#include "trafficsplit/hashing/hash.hpp"

namespace trafficsplit::bindings {

const NumpyTypes& numpy_types() {
  PYBIND11_CONSTINIT static py::gil_safe_call_once_and_store<NumpyTypes> storage;
  return storage
      .call_once_and_store_result([] {
        py::module_ numpy = py::module_::import("numpy");
        return NumpyTypes{numpy.attr("integer"), numpy.attr("floating"), numpy.attr("bool_"),
                          numpy.attr("datetime64")};
      })
      .get_stored();
}

namespace {

std::string short_repr(PyObject* obj) {
  PyObject* r = PyObject_Repr(obj);
  if (r == nullptr) {
    PyErr_Clear();
    return "?";
  }
  Py_ssize_t n = 0;
  const char* s = PyUnicode_AsUTF8AndSize(r, &n);
  std::string out = s != nullptr ? std::string(s, static_cast<size_t>(n)) : std::string("?");
  if (s == nullptr) PyErr_Clear();
  Py_DECREF(r);
  if (out.size() > 60) out = out.substr(0, 57) + "...";
  return out;
}

std::string where(size_t row, bool in_batch) {
  return in_batch ? "unit id at row " + std::to_string(row) : std::string("unit id");
}

// isinstance() can run Python code (a __class__ property) that raises; that error is the
// caller's to see.
bool instance_of(PyObject* obj, PyObject* cls) {
  const int found = PyObject_IsInstance(obj, cls);
  if (found < 0) throw py::error_already_set();
  return found == 1;
}

bool type_named(PyObject* obj, const char* name) {
  return std::strcmp(Py_TYPE(obj)->tp_name, name) == 0;
}

[[noreturn]] void refuse(PyObject* obj, size_t row, bool in_batch) {
  std::string type = Py_TYPE(obj)->tp_name;
  throw UnitTypeError(where(row, in_batch) + " has type '" + type + "' (" + short_repr(obj) +
                          "); unit ids must be str, int or bytes. Floats and bools are refused "
                          "so that 1.0 and True never silently become the unit \"1\"",
                      row);
}

}  // namespace

bool unit_bytes(PyObject* obj, UnitBytes& out, size_t row, bool in_batch) {
  if (PyUnicode_CheckExact(obj) && PyUnicode_IS_COMPACT_ASCII(obj)) {
    // ASCII text is its own UTF-8, stored right after the object header.
    out.data = static_cast<const char*>(PyUnicode_DATA(obj));
    out.len = static_cast<size_t>(PyUnicode_GET_LENGTH(obj));
    return true;
  }
  if (PyUnicode_Check(obj)) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(obj, &n);
    if (s == nullptr) {
      PyErr_Clear();
      throw UnitValueError(where(row, in_batch) +
                               " is a str that cannot be encoded as UTF-8 (it contains a lone "
                               "surrogate); pass bytes to hash it as given",
                           row);
    }
    out.data = s;
    out.len = static_cast<size_t>(n);
    return true;
  }
  if (obj == Py_None) return false;
  if (PyBytes_Check(obj)) {
    out.data = PyBytes_AS_STRING(obj);
    out.len = static_cast<size_t>(PyBytes_GET_SIZE(obj));
    return true;
  }
  if (PyBool_Check(obj)) refuse(obj, row, in_batch);
  const bool is_long = PyLong_Check(obj);
  if (is_long || instance_of(obj, numpy_types().integer.ptr())) {
    // PyNumber_Index gives an exact int, so a subclass's __str__ never decides the bytes.
    PyObject* value = PyLong_CheckExact(obj) ? (Py_INCREF(obj), obj) : PyNumber_Index(obj);
    if (value == nullptr) throw py::error_already_set();
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow == 0) {
      out.len = format_decimal(static_cast<int64_t>(v), out.buffer);
    } else {
      const unsigned long long u = overflow > 0 ? PyLong_AsUnsignedLongLong(value) : 0;
      if (overflow > 0 && !PyErr_Occurred()) {
        out.len = format_decimal(static_cast<uint64_t>(u), out.buffer);
      } else {
        PyErr_Clear();
        PyObject* text = PyObject_Str(value);
        if (text == nullptr) {
          Py_DECREF(value);
          if (!PyErr_ExceptionMatches(PyExc_ValueError)) throw py::error_already_set();
          PyErr_Clear();
          throw UnitValueError(where(row, in_batch) +
                                   " is an integer with more digits than Python converts "
                                   "to text (see sys.set_int_max_str_digits); pass it as str",
                               row);
        }
        Py_ssize_t n = 0;
        const char* s = PyUnicode_AsUTF8AndSize(text, &n);
        out.big.assign(s, static_cast<size_t>(n));
        Py_DECREF(text);
        Py_DECREF(value);
        out.data = out.big.data();
        out.len = out.big.size();
        return true;
      }
    }
    Py_DECREF(value);
    out.data = out.buffer;
    return true;
  }
  if (PyFloat_Check(obj)) {
    if (std::isnan(PyFloat_AS_DOUBLE(obj))) return false;
    refuse(obj, row, in_batch);
  }
  if (instance_of(obj, numpy_types().floating.ptr())) {
    const double d = PyFloat_AsDouble(obj);
    if (d == -1.0 && PyErr_Occurred()) throw py::error_already_set();
    if (std::isnan(d)) return false;
    refuse(obj, row, in_batch);
  }
  if (type_named(obj, "NAType") || type_named(obj, "NaTType")) return false;  // pandas NA, NaT
  refuse(obj, row, in_batch);
}

namespace {

// A one-dimensional numpy array of dtype object.
bool is_object_array(py::handle obj) {
  if (!py::isinstance<py::array>(obj)) return false;
  const auto* a = py::detail::array_proxy(obj.ptr());
  return a->nd == 1 && py::detail::array_descriptor_proxy(a->descr)->kind == 'O';
}

}  // namespace

ObjectRows::ObjectRows(py::handle seq, const char* what, bool plural)
    : what_(what), plural_(plural) {
  if (is_object_array(seq)) {
    source_ = py::reinterpret_borrow<py::object>(seq);
    array_ = true;
    size_ = static_cast<size_t>(py::detail::array_proxy(seq.ptr())->dimensions[0]);
    return;
  }
  source_ = py::reinterpret_steal<py::object>(PySequence_Fast(seq.ptr(), "expected a sequence"));
  if (!source_) throw py::error_already_set();
  size_ = static_cast<size_t>(PySequence_Fast_GET_SIZE(source_.ptr()));
}

PyObject* ObjectRows::item(size_t row) const {
  // The objects lie wherever they were allocated: fetch one a few rows ahead (its header,
  // and for a compact str the text after it) while this one is read.
  constexpr size_t kAhead = 32;
  size_t now = 0;
  PyObject* found = nullptr;
  const char* ahead = nullptr;
  if (array_) {
    // Shape and data are read afresh: Python code run by a conversion may reshape the array.
    const auto* a = py::detail::array_proxy(source_.ptr());
    now = a->nd == 1 ? static_cast<size_t>(a->dimensions[0]) : 0;
    if (row < now) {
      const char* base = a->data;
      const py::ssize_t stride = a->strides[0];
      std::memcpy(&found, base + static_cast<py::ssize_t>(row) * stride, sizeof(found));
      if (row + kAhead < now) {
        std::memcpy(&ahead, base + static_cast<py::ssize_t>(row + kAhead) * stride, sizeof(ahead));
      }
    }
  } else {
    PyObject* seq = source_.ptr();
    now = static_cast<size_t>(PySequence_Fast_GET_SIZE(seq));
    if (row < now) {
      PyObject** items = PySequence_Fast_ITEMS(seq);
      found = items[row];
      if (row + kAhead < now) ahead = reinterpret_cast<const char*>(items[row + kAhead]);
    }
  }
  if (row >= now) {
    PyErr_Format(PyExc_RuntimeError,
                 "%s changed size while %s read (%zu rows at the start, %zu at row %zu)", what_,
                 plural_ ? "they were" : "it was", size_, now, row);
    throw py::error_already_set();
  }
  if (ahead != nullptr) {
    __builtin_prefetch(ahead);
    __builtin_prefetch(ahead + 64);
  }
  return found;
}

bool SequenceRows::read(void* self, size_t row, const char** data, size_t* len) {
  auto* rows = static_cast<SequenceRows*>(self);
  PyObject* item = rows->rows_.item(row);
  if (item == nullptr) return false;  // an empty slot of an object array: None
  // Owned before anything runs: releasing the previous row may run its __del__.
  rows->current_ = py::reinterpret_borrow<py::object>(item);
  if (!unit_bytes(rows->current_.ptr(), rows->bytes_, row, true)) return false;
  *data = rows->bytes_.data;
  *len = rows->bytes_.len;
  return true;
}

std::unique_ptr<Column> Column::from_numpy(py::array values, py::object missing) {
  if (values.ndim() != 1) {
    throw InvalidArgument("unit ids must be one-dimensional, got an array of shape with " +
                          std::to_string(values.ndim()) + " dimensions");
  }
  const char kind = values.dtype().kind();
  if (kind == 'O') throw InvalidArgument("object arrays are read as sequences (internal)");
  if (!(values.flags() & py::array::c_style)) {
    throw InvalidArgument(
        "unit id arrays must be contiguous (internal: call np.ascontiguousarray)");
  }
  auto col = std::make_unique<Column>();
  col->keep_alive_.push_back(values);
  const size_t n = static_cast<size_t>(values.shape(0));
  const size_t item = static_cast<size_t>(values.itemsize());
  if (kind == 'i' || kind == 'u') {
    IntColumn c;
    c.values = values.data();
    c.length = n;
    const bool sign = kind == 'i';
    switch (item) {
      case 1:
        c.kind = sign ? IntKind::i8 : IntKind::u8;
        break;
      case 2:
        c.kind = sign ? IntKind::i16 : IntKind::u16;
        break;
      case 4:
        c.kind = sign ? IntKind::i32 : IntKind::u32;
        break;
      case 8:
        c.kind = sign ? IntKind::i64 : IntKind::u64;
        break;
      default:
        throw UnitTypeError(
            "integer unit ids of " + std::to_string(item) + " bytes are not supported", 0);
    }
    if (!missing.is_none()) {
      py::array mask = missing.cast<py::array>();
      if (mask.dtype().kind() != 'b' || mask.ndim() != 1 ||
          static_cast<size_t>(mask.shape(0)) != n || !(mask.flags() & py::array::c_style)) {
        throw InvalidArgument(
            "the missing-value mask must be a contiguous bool array of the same length");
      }
      col->keep_alive_.push_back(mask);
      c.missing = static_cast<const uint8_t*>(mask.data());
    }
    col->column_ = c;
    return col;
  }
  if (kind == 'U' || kind == 'S') {
    FixedWidthColumn c;
    c.utf32 = kind == 'U';
    c.data = static_cast<const char*>(values.data());
    c.item_size = item;
    c.length = n;
    col->column_ = c;
    return col;
  }
  throw UnitTypeError("numpy arrays of dtype '" + std::string(py::str(values.dtype())) +
                          "' cannot hold unit ids; expected integers, str ('U'), bytes ('S') or "
                          "object",
                      0);
}

std::unique_ptr<Column> Column::from_arrow(py::object schema_capsule, py::object array_capsule) {
  auto* schema =
      static_cast<ArrowSchema*>(PyCapsule_GetPointer(schema_capsule.ptr(), "arrow_schema"));
  if (schema == nullptr) throw py::error_already_set();
  auto* array = static_cast<ArrowArray*>(PyCapsule_GetPointer(array_capsule.ptr(), "arrow_array"));
  if (array == nullptr) throw py::error_already_set();
  auto col = std::make_unique<Column>();
  col->keep_alive_.push_back(schema_capsule);  // the capsules own and release the structs
  col->keep_alive_.push_back(array_capsule);
  col->column_ = column_from_arrow(*schema, *array);
  return col;
}

void register_units(py::module_& m) {
  numpy_types();  // filled at import, so the row loops never wait on it
  py::class_<Column>(m, "Column", "A column of unit ids prepared for the kernels (internal).")
      .def_static("from_numpy", &Column::from_numpy, py::arg("values"),
                  py::arg("missing") = py::none())
      .def_static("from_arrow", &Column::from_arrow, py::arg("schema"), py::arg("array"))
      .def("__len__", &Column::size);
}

}  // namespace trafficsplit::bindings
