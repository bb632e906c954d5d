// trafficsplit._core.stats: group-sequential boundaries and always-valid inference.
#include <string>
#include <vector>

#include "bindings.hpp"
#include "trafficsplit/errors.hpp"
#include "trafficsplit/stats/sequential.hpp"

namespace trafficsplit::bindings {

namespace {

using Vec = std::vector<double>;

stats::SpendingFunction spending_from(const std::string& family, double parameter) {
  stats::SpendingFunction f;
  if (family == "obrien-fleming") {
    f.family = stats::SpendingFamily::kObrienFleming;
  } else if (family == "pocock") {
    f.family = stats::SpendingFamily::kPocock;
  } else if (family == "hsd") {
    f.family = stats::SpendingFamily::kHwangShihDeCani;
  } else if (family == "kim-demets") {
    f.family = stats::SpendingFamily::kKimDeMets;
  } else {
    throw InvalidArgument("unknown spending family '" + family +
                          "': expected obrien-fleming, pocock, hsd or kim-demets");
  }
  f.parameter = parameter;
  f.validate();
  return f;
}

py::array_t<double> to_array(const Vec& v) {
  py::array_t<double> a(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

py::tuple boundaries_tuple(const stats::Boundaries& b) {
  return py::make_tuple(to_array(b.upper), to_array(b.cumulative_alpha), to_array(b.nominal_alpha));
}

}  // namespace

void register_sequential(py::module_& m) {
  m.def(
      "spending_cumulative",
      [](const std::string& family, double parameter, const Vec& fractions, double alpha) {
        const auto f = spending_from(family, parameter);
        Vec out(fractions.size());
        for (size_t i = 0; i < fractions.size(); ++i) out[i] = f.cumulative(fractions[i], alpha);
        return to_array(out);
      },
      py::arg("family"), py::arg("parameter"), py::arg("fractions"), py::arg("alpha"));

  // Each recursion is O(K m^2) pure C++ on copies of the inputs: safe without the GIL.
  m.def(
      "spending_boundaries",
      [](const Vec& fractions, double alpha, int sides, const std::string& family, double parameter,
         int grid) {
        const auto f = spending_from(family, parameter);
        stats::Boundaries b;
        {
          py::gil_scoped_release release;
          b = stats::spending_boundaries(fractions, alpha, sides, f, grid);
        }
        return boundaries_tuple(b);
      },
      py::arg("fractions"), py::arg("alpha"), py::arg("sides"), py::arg("family"),
      py::arg("parameter"), py::arg("grid"));

  m.def(
      "cumulative_alpha_boundaries",
      [](const Vec& fractions, const Vec& cumulative_alpha, int sides, int grid, const Vec& fixed) {
        stats::Boundaries b;
        {
          py::gil_scoped_release release;
          b = stats::boundaries_from_cumulative_alpha(fractions, cumulative_alpha, sides, grid,
                                                      fixed);
        }
        return boundaries_tuple(b);
      },
      py::arg("fractions"), py::arg("cumulative_alpha"), py::arg("sides"), py::arg("grid"),
      py::arg("fixed") = Vec{});

  m.def(
      "wang_tsiatis_boundaries",
      [](const Vec& fractions, double alpha, int sides, double shape, int grid) {
        stats::Boundaries b;
        {
          py::gil_scoped_release release;
          b = stats::wang_tsiatis_boundaries(fractions, alpha, sides, shape, grid);
        }
        return boundaries_tuple(b);
      },
      py::arg("fractions"), py::arg("alpha"), py::arg("sides"), py::arg("shape"), py::arg("grid"));

  m.def(
      "crossing_probabilities",
      [](const Vec& fractions, const Vec& upper, int sides, double drift, int grid) {
        stats::CrossingProbabilities p;
        {
          py::gil_scoped_release release;
          p = stats::crossing_probabilities(fractions, upper, sides, drift, grid);
        }
        return py::make_tuple(to_array(p.upper), to_array(p.lower));
      },
      py::arg("fractions"), py::arg("upper"), py::arg("sides"), py::arg("drift"), py::arg("grid"));

  m.def(
      "drift_for_power",
      [](const Vec& fractions, const Vec& upper, int sides, double power, int grid) {
        py::gil_scoped_release release;
        return stats::drift_for_power(fractions, upper, sides, power, grid);
      },
      py::arg("fractions"), py::arg("upper"), py::arg("sides"), py::arg("power"), py::arg("grid"));

  m.def(
      "inflation_factor",
      [](const Vec& fractions, const Vec& upper, double alpha, int sides, double power, int grid) {
        py::gil_scoped_release release;
        return stats::inflation_factor(fractions, upper, alpha, sides, power, grid);
      },
      py::arg("fractions"), py::arg("upper"), py::arg("alpha"), py::arg("sides"), py::arg("power"),
      py::arg("grid"));

  m.def(
      "sequential_decide",
      [](const Vec& z, const Vec& fractions, double alpha, int sides, const std::string& family,
         double parameter, int grid) {
        const auto f = spending_from(family, parameter);
        stats::SequentialDecision d;
        {
          py::gil_scoped_release release;
          d = stats::decide(z, fractions, alpha, sides, f, grid);
        }
        return py::make_tuple(to_array(d.bounds), to_array(d.cumulative_alpha),
                              to_array(d.nominal_alpha), to_array(d.nominal_pvalue), d.crossed,
                              d.direction, d.final);
      },
      py::arg("z"), py::arg("fractions"), py::arg("alpha"), py::arg("sides"), py::arg("family"),
      py::arg("parameter"), py::arg("grid"));

  m.def(
      "sequential_crossing",
      [](const Vec& z, const Vec& bounds, int sides) {
        stats::SequentialDecision d;
        d.bounds = bounds;
        stats::mark_crossing(z, sides, d);
        return py::make_tuple(to_array(d.nominal_pvalue), d.crossed, d.direction);
      },
      py::arg("z"), py::arg("bounds"), py::arg("sides"));

  m.def(
      "msprt_path",
      [](const Vec& estimate, const Vec& variance, const Vec& tau2, double alpha, double null) {
        stats::AlwaysValidPath p;
        {
          py::gil_scoped_release release;
          p = stats::msprt_path(estimate, variance, tau2, alpha, null);
        }
        return py::make_tuple(to_array(p.log_likelihood_ratio), to_array(p.pvalue),
                              to_array(p.ci_low), to_array(p.ci_high), to_array(p.half_width));
      },
      py::arg("estimate"), py::arg("variance"), py::arg("tau2"), py::arg("alpha"), py::arg("null"));

  m.def("confidence_sequence_rho2", &stats::confidence_sequence_rho2, py::arg("alpha"),
        py::arg("tuning"), py::arg("sides"));
  m.def("one_sided_cs_half_width", &stats::one_sided_cs_half_width, py::arg("variance"),
        py::arg("n"), py::arg("alpha"), py::arg("tuning"));
  m.def("one_sided_cs_pvalue", &stats::one_sided_cs_pvalue, py::arg("distance"),
        py::arg("variance"), py::arg("n"), py::arg("alpha"), py::arg("tuning"));
}

}  // namespace trafficsplit::bindings
