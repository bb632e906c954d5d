// trafficsplit._core.stats: statistics kernels (SRM, tests and intervals, power, Bayesian).
// The closed-form kernels take microseconds, less than a GIL round trip, so they keep the GIL.
// The beta-posterior integrals (milliseconds) release it: their arguments are converted to C++
// values first and their results are cast back after the guard is gone.
#include <string>
#include <tuple>
#include <vector>

#include "bindings.hpp"
#include "trafficsplit/errors.hpp"
#include "trafficsplit/stats/bayes.hpp"
#include "trafficsplit/stats/power.hpp"
#include "trafficsplit/stats/srm.hpp"
#include "trafficsplit/stats/tests.hpp"

namespace trafficsplit::bindings {

namespace {

using Six = std::tuple<double, double, double, double, double, double>;

stats::RatioSummary ratio_summary(const Six& s) {
  const auto& [n, mx, my, vx, vy, c] = s;
  return {n, mx, my, vx, vy, c};
}

stats::CupedSummary cuped_summary(const Six& s) {
  const auto& [n, my, mx, vy, vx, c] = s;
  return {n, my, mx, vy, vx, c};
}

// The result structs cross as read-only classes: attribute names are checked by the stubs and
// mypy, where dict keys were checked by nothing.
void register_results(py::module_& m) {
  using stats::TestStat;
  py::class_<TestStat>(m, "TestStat",
                       "A test's outcome: df is inf for the normal reference; bounded is False "
                       "when Fieller's interval is unbounded (its ends are then infinite).")
      .def_readonly("estimate", &TestStat::estimate)
      .def_readonly("se", &TestStat::se)
      .def_readonly("statistic", &TestStat::statistic)
      .def_readonly("df", &TestStat::df)
      .def_readonly("pvalue", &TestStat::pvalue)
      .def_readonly("ci_low", &TestStat::ci_low)
      .def_readonly("ci_high", &TestStat::ci_high)
      .def_readonly("bounded", &TestStat::bounded)
      .def("__repr__", [](const TestStat& r) {
        return py::str(
                   "TestStat(estimate={!r}, se={!r}, statistic={!r}, df={!r}, pvalue={!r}, "
                   "ci_low={!r}, ci_high={!r}, bounded={!r})")
            .format(r.estimate, r.se, r.statistic, r.df, r.pvalue, r.ci_low, r.ci_high, r.bounded);
      });
  using stats::CupedStat;
  py::class_<CupedStat>(m, "CupedStat",
                        "CUPED: the adjusted and unadjusted tests, theta and the variance "
                        "reduction 1 - se_adjusted^2 / se_unadjusted^2.")
      .def_readonly("adjusted", &CupedStat::adjusted)
      .def_readonly("unadjusted", &CupedStat::unadjusted)
      .def_readonly("theta", &CupedStat::theta)
      .def_readonly("variance_reduction", &CupedStat::variance_reduction)
      .def("__repr__", [](py::handle self) {
        const auto& r = self.cast<const CupedStat&>();
        return py::str(
                   "CupedStat(adjusted={!r}, unadjusted={!r}, theta={!r}, "
                   "variance_reduction={!r})")
            .format(self.attr("adjusted"), self.attr("unadjusted"), r.theta, r.variance_reduction);
      });
  using stats::NormalPosterior;
  py::class_<NormalPosterior>(m, "NormalPosterior",
                              "The Gaussian posterior of an effect: mean, sd, P(effect > 0), the "
                              "expected loss of shipping the treatment and of keeping the "
                              "control, and the credible interval.")
      .def_readonly("mean", &NormalPosterior::mean)
      .def_readonly("sd", &NormalPosterior::sd)
      .def_readonly("prob_positive", &NormalPosterior::prob_positive)
      .def_readonly("loss_treatment", &NormalPosterior::loss_treatment)
      .def_readonly("loss_control", &NormalPosterior::loss_control)
      .def_readonly("ci_low", &NormalPosterior::ci_low)
      .def_readonly("ci_high", &NormalPosterior::ci_high)
      .def("__repr__", [](const NormalPosterior& p) {
        return py::str(
                   "NormalPosterior(mean={!r}, sd={!r}, prob_positive={!r}, loss_treatment={!r}, "
                   "loss_control={!r}, ci_low={!r}, ci_high={!r})")
            .format(p.mean, p.sd, p.prob_positive, p.loss_treatment, p.loss_control, p.ci_low,
                    p.ci_high);
      });
}

}  // namespace

void register_stats(py::module_& m) {
  register_results(m);
  m.def("chi2_sf", &stats::chi2_sf, py::arg("x"), py::arg("df"));
  m.def(
      "srm_chi_square",
      [](const std::vector<double>& counts, const std::vector<double>& weights) {
        const auto r = stats::srm_chi_square(counts, weights);
        return py::make_tuple(r.statistic, r.pvalue, r.df, r.expected);
      },
      py::arg("counts"), py::arg("weights"));

  // --- tests and intervals -------------------------------------------------------------------
  using stats::Summary;
  const auto two_means = [](auto kernel) {
    return [kernel](double nc, double mc, double vc, double nt, double mt, double vt, double alpha,
                    const std::string& alternative, double null) {
      return kernel(Summary{nc, mc, vc}, Summary{nt, mt, vt}, alpha,
                    stats::parse_alternative(alternative), null);
    };
  };
  m.def("welch_ttest", two_means(&stats::welch_ttest), py::arg("n_c"), py::arg("mean_c"),
        py::arg("var_c"), py::arg("n_t"), py::arg("mean_t"), py::arg("var_t"), py::arg("alpha"),
        py::arg("alternative"), py::arg("null"));
  m.def("ztest_means", two_means(&stats::ztest_means), py::arg("n_c"), py::arg("mean_c"),
        py::arg("var_c"), py::arg("n_t"), py::arg("mean_t"), py::arg("var_t"), py::arg("alpha"),
        py::arg("alternative"), py::arg("null"));
  m.def(
      "proportions_ztest",
      [](double xc, double nc, double xt, double nt, bool pooled, double alpha,
         const std::string& alternative, double null) {
        return stats::proportions_ztest(xc, nc, xt, nt, pooled, alpha,
                                        stats::parse_alternative(alternative), null);
      },
      py::arg("successes_c"), py::arg("trials_c"), py::arg("successes_t"), py::arg("trials_t"),
      py::arg("pooled"), py::arg("alpha"), py::arg("alternative"), py::arg("null"));
  m.def(
      "relative_lift",
      [](double nc, double mc, double vc, double nt, double mt, double vt, double alpha,
         const std::string& method, const std::string& alternative, bool use_t, double null) {
        return stats::relative_lift(Summary{nc, mc, vc}, Summary{nt, mt, vt}, alpha,
                                    stats::parse_lift_method(method),
                                    stats::parse_alternative(alternative), use_t, null);
      },
      py::arg("n_c"), py::arg("mean_c"), py::arg("var_c"), py::arg("n_t"), py::arg("mean_t"),
      py::arg("var_t"), py::arg("alpha"), py::arg("method"), py::arg("alternative"),
      py::arg("use_t"), py::arg("null"));
  m.def(
      "ratio_metric",
      [](const Six& s) {
        const auto [r, se] = stats::ratio_metric(ratio_summary(s));
        return py::make_tuple(r, se);
      },
      py::arg("summary"));
  m.def(
      "ratio_test",
      [](const Six& c, const Six& t, bool relative, double alpha, const std::string& alternative) {
        return stats::ratio_test(ratio_summary(c), ratio_summary(t), relative, alpha,
                                 stats::parse_alternative(alternative));
      },
      py::arg("control"), py::arg("treatment"), py::arg("relative"), py::arg("alpha"),
      py::arg("alternative"));
  m.def(
      "cuped",
      [](const Six& c, const Six& t, double alpha, bool relative, const std::string& alternative) {
        return stats::cuped(cuped_summary(c), cuped_summary(t), alpha, relative,
                            stats::parse_alternative(alternative));
      },
      py::arg("control"), py::arg("treatment"), py::arg("alpha"), py::arg("relative"),
      py::arg("alternative"));
  m.def(
      "adjust_pvalues",
      [](const std::vector<double>& p, const std::string& method) {
        return stats::adjust_pvalues(p, stats::parse_adjust_method(method));
      },
      py::arg("pvalues"), py::arg("method"));

  // --- power ---------------------------------------------------------------------------------
  const auto sizes = [](const stats::ArmSizes& s) {
    return py::make_tuple(s.control, s.treatment);
  };
  m.def(
      "sample_size_proportions",
      [sizes](double baseline, double diff, double alpha, double power, int sides, double ratio) {
        return sizes(stats::sample_size_proportions(baseline, diff, alpha, power, sides, ratio));
      },
      py::arg("baseline"), py::arg("diff"), py::arg("alpha"), py::arg("power"), py::arg("sides"),
      py::arg("ratio"));
  m.def(
      "sample_size_means",
      [sizes](double sd, double diff, double alpha, double power, int sides, double ratio) {
        return sizes(stats::sample_size_means(sd, diff, alpha, power, sides, ratio));
      },
      py::arg("sd"), py::arg("diff"), py::arg("alpha"), py::arg("power"), py::arg("sides"),
      py::arg("ratio"));
  m.def("power_proportions", &stats::power_proportions, py::arg("baseline"), py::arg("diff"),
        py::arg("n_control"), py::arg("alpha"), py::arg("sides"), py::arg("ratio"));
  m.def("power_means", &stats::power_means, py::arg("sd"), py::arg("diff"), py::arg("n_control"),
        py::arg("alpha"), py::arg("sides"), py::arg("ratio"));
  m.def("mde_proportions", &stats::mde_proportions, py::arg("baseline"), py::arg("n_control"),
        py::arg("alpha"), py::arg("power"), py::arg("sides"), py::arg("ratio"));
  m.def("mde_means", &stats::mde_means, py::arg("sd"), py::arg("n_control"), py::arg("alpha"),
        py::arg("power"), py::arg("sides"), py::arg("ratio"));

  // --- Bayesian ------------------------------------------------------------------------------
  using stats::BetaArm;
  m.def(
      "beta_prob_greater",
      [](double at, double bt, double ac, double bc, const std::string& method) {
        if (method == "sum") return stats::beta_prob_greater_sum({at, bt}, {ac, bc});
        if (method == "quadrature") return stats::beta_prob_greater_quadrature({at, bt}, {ac, bc});
        if (method == "auto") return stats::beta_prob_greater({at, bt}, {ac, bc});
        throw InvalidArgument("method must be 'auto', 'sum' or 'quadrature', got '" + method + "'");
      },
      py::arg("a_t"), py::arg("b_t"), py::arg("a_c"), py::arg("b_c"), py::arg("method") = "auto",
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "beta_prob_best",
      [](const std::vector<std::pair<double, double>>& arms) {
        std::vector<BetaArm> a;
        for (const auto& [x, y] : arms) a.push_back({x, y});
        return stats::beta_prob_best(a);
      },
      py::arg("arms"), py::call_guard<py::gil_scoped_release>());
  m.def(
      "beta_expected_loss",
      [](double at, double bt, double ac, double bc) {
        return stats::beta_expected_loss({at, bt}, {ac, bc});
      },
      py::arg("a_t"), py::arg("b_t"), py::arg("a_c"), py::arg("b_c"),
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "beta_interval",
      [](double a, double b, double alpha) {
        const auto [lo, hi] = stats::beta_interval({a, b}, alpha);
        return py::make_tuple(lo, hi);
      },
      py::arg("a"), py::arg("b"), py::arg("alpha"));
  m.def("normal_effect_posterior", &stats::normal_effect_posterior, py::arg("estimate"),
        py::arg("se"), py::arg("prior_mean"), py::arg("prior_sd"), py::arg("alpha"));
}

}  // namespace trafficsplit::bindings
