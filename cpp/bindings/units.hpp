// Unit ids from Python objects, by the contract's rules (docs/assignment-spec.md §1).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "trafficsplit/assignment/batch.hpp"

namespace trafficsplit::bindings {

// One unit id as bytes. `data` points into the Python object or into `buffer`.
struct UnitBytes {
  const char* data = nullptr;
  size_t len = 0;
  char buffer[24];
  std::string big;  // decimal text of an int beyond 64 bits
};

// Converts a unit id; returns false when the object means "no unit" (None, NaN, pandas NA
// or NaT). Throws UnitTypeError / UnitValueError for refused types and values. `row` is
// reported in messages when `in_batch`. The caller owns a reference to `obj`: converting it
// can run Python code (__index__, __class__) that drops every other reference.
bool unit_bytes(PyObject* obj, UnitBytes& out, size_t row, bool in_batch);

// The objects of a list, a tuple or a one-dimensional numpy object array, read where they
// are with the GIL held (Python objects may only be read by the thread holding it): no list
// is made of an array. Converting a row can run Python code (__index__, a __class__
// property) that changes the container, so each row is looked up afresh; a container that
// shrinks below the row asked for raises RuntimeError. Other sequences are copied into a
// list first.
class ObjectRows {
 public:
  // `what` names the rows in messages ("the sequence of unit ids", a singular noun, or a
  // plural one with `plural`).
  explicit ObjectRows(py::handle seq, const char* what = "the sequence of unit ids",
                      bool plural = false);
  size_t size() const { return size_; }
  // A borrowed reference to row `row`'s object, or nullptr for an empty slot of an object
  // array (numpy reads it as None); prefetches a row a few ahead.
  PyObject* item(size_t row) const;

 private:
  py::object source_;  // the list or tuple (as given or made), or the array
  bool array_ = false;
  size_t size_ = 0;
  const char* what_;
  bool plural_;
};

// Reads unit ids from ObjectRows one at a time for the core's row-reader kernels; each row
// is held while its bytes are in use.
class SequenceRows {
 public:
  explicit SequenceRows(py::handle seq) : rows_(seq) {}
  size_t size() const { return rows_.size(); }
  static bool read(void* self, size_t row, const char** data, size_t* len);

 private:
  ObjectRows rows_;
  py::object current_;  // the row whose bytes the kernel is reading
  UnitBytes bytes_;
};

// A column of unit ids ready for the core kernels; keeps alive whatever it points into.
class Column {
 public:
  Column() = default;
  Column(const Column&) = delete;
  Column& operator=(const Column&) = delete;
  ~Column() = default;

  static std::unique_ptr<Column> from_numpy(py::array values, py::object missing);
  static std::unique_ptr<Column> from_arrow(py::object schema_capsule, py::object array_capsule);

  const UnitColumn& column() const { return column_; }
  size_t size() const { return column_length(column_); }

 private:
  UnitColumn column_;
  std::vector<py::object> keep_alive_;
};

void register_units(py::module_& m);

}  // namespace trafficsplit::bindings
