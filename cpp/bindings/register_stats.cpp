// trafficsplit._core.stats: statistics kernels.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "trafficsplit/stats/srm.hpp"

namespace trafficsplit::bindings {

namespace py = pybind11;

void register_stats(py::module_& m) {
  m.def("chi2_sf", &stats::chi2_sf, py::arg("x"), py::arg("df"));
  m.def(
      "srm_chi_square",
      [](const std::vector<double>& counts, const std::vector<double>& weights) {
        const auto r = stats::srm_chi_square(counts, weights);
        return py::make_tuple(r.statistic, r.pvalue, r.df, r.expected);
      },
      py::arg("counts"), py::arg("weights"));
}

}  // namespace trafficsplit::bindings
