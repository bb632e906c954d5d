// trafficsplit._core: bandit bindings (filled in by the area).
#include <pybind11/pybind11.h>

namespace trafficsplit::bindings {

namespace py = pybind11;

void register_bandit(py::module_& m) { (void)m; }

}  // namespace trafficsplit::bindings
