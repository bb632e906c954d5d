// The one map from core exceptions to trafficsplit's Python exceptions.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>  // in every binding file: one std::vector caster for the module (ODR)

#include "trafficsplit/errors.hpp"
#include "trafficsplit/targeting/targeting.hpp"

namespace trafficsplit::bindings {

namespace py = pybind11;

void register_errors(py::module_& m) {
  // trafficsplit.errors is plain Python and imports nothing from _core.
  py::module_ errors = py::module_::import("trafficsplit.errors");
  static py::object config_error = errors.attr("ConfigError");
  static py::object unit_type_error = errors.attr("UnitTypeError");
  static py::object unit_value_error = errors.attr("UnitValueError");
  static py::object syntax_error = errors.attr("TargetingSyntaxError");
  (void)m;
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const UnitTypeError& e) {
      PyErr_SetObject(unit_type_error.ptr(), py::make_tuple(e.what(), e.row()).ptr());
    } catch (const UnitValueError& e) {
      PyErr_SetObject(unit_value_error.ptr(), py::make_tuple(e.what(), e.row()).ptr());
    } catch (const targeting::SyntaxError& e) {
      PyErr_SetObject(
          syntax_error.ptr(),
          py::make_tuple(e.what(), e.line(), e.column(), e.expected(), e.excerpt()).ptr());
    } catch (const InvalidArgument& e) {
      PyErr_SetString(config_error.ptr(), e.what());
    }
  });
}

}  // namespace trafficsplit::bindings
