// The one header through which binding files include pybind11 (tests/test_structure.py checks
// it). Every translation unit then sees the same type casters: two definitions of the
// std::vector caster in one module (with and without <pybind11/stl.h>) would break the
// one-definition rule, since identical template instantiations are merged at link time.
#pragma once

#include <pybind11/gil_safe_call_once.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <utility>

#include "trafficsplit/errors.hpp"

namespace trafficsplit::bindings {

namespace py = pybind11;

// Each area's registration, called once by module.cpp on its submodule.
void register_errors(py::module_& m);
void register_hashing(py::module_& m);
void register_assignment(py::module_& m);
void register_stats(py::module_& m);
void register_moments(py::module_& m);
void register_sequential(py::module_& m);
void register_targeting(py::module_& m);
void register_bandit(py::module_& m);
void register_telemetry(py::module_& m);
void register_parquet(py::module_& m);

// Runs `build` (experiment construction, allocation steps, named lists) and reports a core
// InvalidArgument from it as InvalidConfig: the same check is a bad argument when a user calls
// the function and a bad configuration when a compiled config feeds it.
template <class F>
decltype(auto) as_config(F&& build) {
  try {
    return std::forward<F>(build)();
  } catch (const InvalidConfig&) {
    throw;
  } catch (const InvalidArgument& e) {
    throw InvalidConfig(e.what());
  }
}

// numpy's abstract scalar types, looked up once per process. The storage is never destroyed
// (a destructor would run after the interpreter is gone) and is filled under pybind11's lock
// ordering, so a first call from two threads cannot deadlock on the import. The module fills
// it at import (register_units), so the row loops that read it never release the GIL.
struct NumpyTypes {
  py::object integer;
  py::object floating;
  py::object bool_;
  py::object datetime64;
};
const NumpyTypes& numpy_types();

}  // namespace trafficsplit::bindings
