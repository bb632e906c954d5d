// The one map from core exceptions to trafficsplit's Python exceptions.
#include "bindings.hpp"
#include "trafficsplit/targeting/targeting.hpp"

namespace trafficsplit::bindings {

namespace {

struct ErrorTypes {
  py::object argument;
  py::object config;
  py::object unit_type;
  py::object unit_value;
  py::object syntax;
};

const ErrorTypes& error_types() {
  PYBIND11_CONSTINIT static py::gil_safe_call_once_and_store<ErrorTypes> storage;
  return storage
      .call_once_and_store_result([] {
        // trafficsplit.errors is plain Python and imports nothing from _core.
        py::module_ errors = py::module_::import("trafficsplit.errors");
        return ErrorTypes{errors.attr("ArgumentError"), errors.attr("ConfigError"),
                          errors.attr("UnitTypeError"), errors.attr("UnitValueError"),
                          errors.attr("TargetingSyntaxError")};
      })
      .get_stored();
}

}  // namespace

void register_errors(py::module_& m) {
  (void)m;
  error_types();  // a missing class fails the import, not the first error
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const UnitTypeError& e) {
      PyErr_SetObject(error_types().unit_type.ptr(), py::make_tuple(e.what(), e.row()).ptr());
    } catch (const UnitValueError& e) {
      PyErr_SetObject(error_types().unit_value.ptr(), py::make_tuple(e.what(), e.row()).ptr());
    } catch (const targeting::SyntaxError& e) {
      PyErr_SetObject(
          error_types().syntax.ptr(),
          py::make_tuple(e.what(), e.line(), e.column(), e.expected(), e.excerpt()).ptr());
    } catch (const InvalidConfig& e) {
      PyErr_SetString(error_types().config.ptr(), e.what());
    } catch (const InvalidArgument& e) {
      PyErr_SetString(error_types().argument.ptr(), e.what());
    }
  });
}

}  // namespace trafficsplit::bindings
