// trafficsplit._core: sequential bindings (filled in by the area).
#include <pybind11/pybind11.h>

namespace trafficsplit::bindings {

namespace py = pybind11;

void register_sequential(py::module_& m) { (void)m; }

}  // namespace trafficsplit::bindings
