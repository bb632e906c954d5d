// Unit ids from Python objects, by the contract's rules (docs/assignment-spec.md §1).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <vector>

#include "trafficsplit/assignment/batch.hpp"

namespace trafficsplit::bindings {

namespace py = pybind11;

// One unit id as bytes. `data` points into the Python object or into `buffer`.
struct UnitBytes {
  const char* data = nullptr;
  size_t len = 0;
  char buffer[24];
  std::string big;  // decimal text of an int beyond 64 bits
};

// Converts a unit id; returns false when the object means "no unit" (None, NaN, pandas NA
// or NaT). Throws UnitTypeError / UnitValueError for refused types and values. `row` is
// reported in messages when `in_batch`.
bool unit_bytes(PyObject* obj, UnitBytes& out, size_t row, bool in_batch);

// A column of unit ids ready for the core kernels; keeps alive whatever it points into.
class Column {
 public:
  Column() = default;
  Column(const Column&) = delete;
  Column& operator=(const Column&) = delete;
  ~Column();

  static std::unique_ptr<Column> from_sequence(py::handle seq);
  static std::unique_ptr<Column> from_numpy(py::array values, py::object missing);
  static std::unique_ptr<Column> from_arrow(py::object schema_capsule, py::object array_capsule);

  const UnitColumn& column() const { return column_; }
  size_t size() const { return column_length(column_); }

 private:
  UnitColumn column_;
  std::vector<py::object> keep_alive_;
  std::vector<PyObject*> owned_;  // strong references to the objects `pointers_` point into
  std::vector<const char*> pointers_;
  std::vector<int64_t> lengths_;
  std::vector<std::unique_ptr<char[]>> arena_;
};

void register_units(py::module_& m);

}  // namespace trafficsplit::bindings
