// trafficsplit._core.bandit: bandit policies, probability best, floor and cap, propensity sums.
#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "trafficsplit/allocation/allocation.hpp"
#include "trafficsplit/bandit/linear.hpp"
#include "trafficsplit/bandit/policy.hpp"
#include "trafficsplit/bandit/random.hpp"
#include "trafficsplit/errors.hpp"

namespace trafficsplit::bindings {
using namespace trafficsplit::bandit;

namespace {

using Int64s = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using Doubles = py::array_t<double, py::array::c_style | py::array::forcecast>;

void check_1d(const py::array& a, const char* name) {
  if (a.ndim() != 1) {
    throw InvalidArgument(std::string(name) + " must be one-dimensional, got " +
                          std::to_string(a.ndim()) + " dimensions");
  }
}

void check_same_length(const py::array& a, const py::array& b, const char* an, const char* bn) {
  if (a.shape(0) != b.shape(0)) {
    throw InvalidArgument(std::string(an) + " and " + bn + " must have the same length, got " +
                          std::to_string(a.shape(0)) + " and " + std::to_string(b.shape(0)));
  }
}

const double* matrix(const Doubles& x, size_t dims, const char* name) {
  if (x.ndim() != 2 || static_cast<size_t>(x.shape(1)) != dims) {
    throw InvalidArgument(std::string(name) + " must be a 2-d array with " + std::to_string(dims) +
                          " columns (one row per request)");
  }
  return x.data();
}

// Sequences in and arrays out go through numpy: any array-like is read without a Python object
// per element, and the policies hand back arrays.
std::vector<double> doubles(py::handle h, const char* name) {
  Doubles a;
  try {
    a = Doubles::ensure(h);
  } catch (const py::error_already_set&) {
    a = Doubles();
  }
  if (!a || a.ndim() != 1) {
    PyErr_Clear();
    throw InvalidArgument(std::string(name) + " must be a one-dimensional sequence of numbers");
  }
  return std::vector<double>(a.data(), a.data() + a.size());
}

py::array_t<double> array(const std::vector<double>& v) {
  py::array_t<double> out(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

template <class F>
void maybe_release(size_t work, F&& f) {
  // Small calls cost less than the release itself; large ones let other threads run.
  std::optional<py::gil_scoped_release> release;
  if (work >= 16'384) release.emplace();
  f();
}

}  // namespace

void register_bandit(py::module_& m) {
  m.def("epoch_seed", &epoch_seed, py::arg("seed"), py::arg("epoch"));
  m.def(
      "sample",
      [](const std::string& dist, double a, double b, size_t n, uint64_t seed) {
        py::array_t<double> out(static_cast<py::ssize_t>(n));
        double* o = out.mutable_data();
        enum class Dist { kUniform, kNormal, kGamma, kBeta, kStudentT } d;
        if (dist == "gamma" || dist == "beta") {
          if (!(a > 0) || (dist == "beta" && !(b > 0))) {
            throw InvalidArgument(dist + " shapes must be positive");
          }
          d = dist == "gamma" ? Dist::kGamma : Dist::kBeta;
        } else if (dist == "student_t") {
          if (!(a > 0)) throw InvalidArgument("student_t dof must be positive");
          d = Dist::kStudentT;
        } else if (dist == "normal" || dist == "uniform") {
          d = dist == "normal" ? Dist::kNormal : Dist::kUniform;
        } else {
          throw InvalidArgument("unknown distribution '" + dist +
                                "'; expected uniform, normal, gamma, beta or student_t");
        }
        maybe_release(n, [&] {
          // The distribution is chosen once, not per draw.
          Rng rng(seed);
          const auto fill = [&](auto draw) {
            for (size_t i = 0; i < n; ++i) o[i] = draw();
          };
          switch (d) {
            case Dist::kUniform:
              fill([&] { return rng.uniform(); });
              break;
            case Dist::kNormal:
              fill([&] { return rng.normal(); });
              break;
            case Dist::kGamma:
              fill([&] { return rng.gamma(a); });
              break;
            case Dist::kBeta:
              fill([&] { return rng.beta(a, b); });
              break;
            case Dist::kStudentT:
              fill([&] { return rng.student_t(a); });
              break;
          }
        });
        return out;
      },
      py::arg("dist"), py::arg("a") = 0.0, py::arg("b") = 0.0, py::arg("n") = 1,
      py::arg("seed") = 0);
  m.def(
      "probability_best_beta",
      [](py::handle alpha_seq, py::handle beta_seq, uint64_t draws, uint64_t seed,
         unsigned threads) {
        const auto alpha = doubles(alpha_seq, "alpha");
        const auto beta = doubles(beta_seq, "beta");
        std::vector<double> out;
        maybe_release(alpha.size() * draws,
                      [&] { out = probability_best_beta(alpha, beta, draws, seed, threads); });
        return array(out);
      },
      py::arg("alpha"), py::arg("beta"), py::arg("draws"), py::arg("seed"), py::arg("threads") = 1);
  m.def(
      "probability_best_student",
      [](py::handle loc_seq, py::handle scale_seq, py::handle dof_seq, uint64_t draws,
         uint64_t seed, unsigned threads) {
        const auto loc = doubles(loc_seq, "loc");
        const auto scale = doubles(scale_seq, "scale");
        const auto dof = doubles(dof_seq, "dof");
        std::vector<double> out;
        maybe_release(loc.size() * draws, [&] {
          out = probability_best_student(loc, scale, dof, draws, seed, threads);
        });
        return array(out);
      },
      py::arg("loc"), py::arg("scale"), py::arg("dof"), py::arg("draws"), py::arg("seed"),
      py::arg("threads") = 1);
  m.def(
      "limit_weights",
      [](py::handle target, py::handle previous, double floor, double max_change) {
        return array(limit_weights(doubles(target, "target"), doubles(previous, "previous"), floor,
                                   max_change));
      },
      py::arg("target"), py::arg("previous"), py::arg("floor"), py::arg("max_change"));
  m.def(
      "propensity_sums",
      [](Int64s arms, Doubles rewards, Doubles probabilities, size_t n_arms) {
        check_1d(arms, "arm");
        check_1d(rewards, "reward");
        check_1d(probabilities, "probability");
        check_same_length(arms, rewards, "arm", "reward");
        check_same_length(arms, probabilities, "arm", "probability");
        if (n_arms == 0) throw InvalidArgument("at least one arm is needed");
        std::vector<PropensitySums> sums;
        const size_t n = static_cast<size_t>(arms.shape(0));
        maybe_release(n, [&] {
          sums = propensity_sums(n_arms, arms.data(), rewards.data(), probabilities.data(), n);
        });
        py::array_t<double> out({static_cast<py::ssize_t>(n_arms), py::ssize_t{6}});
        auto o = out.mutable_unchecked<2>();
        for (size_t k = 0; k < n_arms; ++k) {
          const auto& s = sums[k];
          const double row[6] = {s.rows, s.w, s.wr, s.w2, s.w2r, s.w2r2};
          for (int j = 0; j < 6; ++j) o(k, j) = row[j];
        }
        return out;
      },
      py::arg("arms"), py::arg("rewards"), py::arg("probabilities"), py::arg("n_arms"));

  py::class_<Policy>(m, "Policy")
      .def(py::init([](const std::string& kind, size_t arms, double prior_alpha, double prior_beta,
                       double mu0, double kappa0, double alpha0, double beta0, double c,
                       double epsilon, double floor, double max_change, uint64_t draws,
                       uint64_t seed) {
             PolicyParams p;
             p.prior_alpha = prior_alpha;
             p.prior_beta = prior_beta;
             p.mu0 = mu0;
             p.kappa0 = kappa0;
             p.alpha0 = alpha0;
             p.beta0 = beta0;
             p.c = c;
             p.epsilon = epsilon;
             p.floor = floor;
             p.max_change = max_change;
             p.draws = draws;
             p.seed = seed;
             return Policy(parse_policy_kind(kind), arms, p);
           }),
           py::arg("kind"), py::arg("arms"), py::arg("prior_alpha") = 1.0,
           py::arg("prior_beta") = 1.0, py::arg("mu0") = 0.0, py::arg("kappa0") = 1e-2,
           py::arg("alpha0") = 1.0, py::arg("beta0") = 1.0, py::arg("c") = 1.0,
           py::arg("epsilon") = 0.1, py::arg("floor") = 0.0, py::arg("max_change") = 1.0,
           py::arg("draws") = 10'000, py::arg("seed") = 0)
      .def_property_readonly(
          "kind", [](const Policy& p) { return std::string(policy_kind_name(p.kind())); })
      .def_property_readonly("arm_count", &Policy::arm_count)
      .def("copy", [](const Policy& p) { return Policy(p); })
      .def(
          "update",
          [](Policy& p, Int64s arms, Doubles rewards) {
            check_1d(arms, "arms");
            check_1d(rewards, "rewards");
            check_same_length(arms, rewards, "arms", "rewards");
            // Mutates the policy: the GIL stays held so no other thread reads it meanwhile.
            p.update(arms.data(), rewards.data(), static_cast<size_t>(arms.shape(0)));
          },
          py::arg("arms"), py::arg("rewards"))
      .def(
          "add",
          [](Policy& p, size_t arm, double count, double sum, double m2) {
            p.add(arm, ArmStats{count, sum, m2});
          },
          py::arg("arm"), py::arg("count"), py::arg("sum"), py::arg("m2"))
      .def("merge", &Policy::merge, py::arg("other"))
      .def("stats",
           [](const Policy& p) {
             const size_t n = p.arm_count();
             py::array_t<double> out({static_cast<py::ssize_t>(n), py::ssize_t{3}});
             auto o = out.mutable_unchecked<2>();
             for (size_t k = 0; k < n; ++k) {
               o(k, 0) = p.stats()[k].count;
               o(k, 1) = p.stats()[k].sum;
               o(k, 2) = p.stats()[k].m2;
             }
             return out;
           })
      .def(
          "target",
          [](const Policy& p, uint64_t epoch, unsigned threads) {
            const Policy snapshot(p);  // read under the GIL, sampled without it
            std::vector<double> out;
            maybe_release(snapshot.arm_count() * snapshot.params().draws,
                          [&] { out = snapshot.target(epoch, threads); });
            return array(out);
          },
          py::arg("epoch"), py::arg("threads") = 1)
      .def(
          "weights",
          [](const Policy& p, uint64_t epoch, py::handle previous_seq, unsigned threads) {
            const auto previous = doubles(previous_seq, "previous");
            const Policy snapshot(p);
            std::vector<double> out;
            maybe_release(snapshot.arm_count() * snapshot.params().draws,
                          [&] { out = snapshot.weights(epoch, previous, threads); });
            return array(out);
          },
          py::arg("epoch"), py::arg("previous"), py::arg("threads") = 1)
      .def("beta_posterior",
           [](const Policy& p) {
             std::vector<double> a, b;
             p.beta_posterior(a, b);
             return py::make_tuple(array(a), array(b));
           })
      .def("student_posterior", [](const Policy& p) {
        std::vector<double> loc, scale, dof;
        p.student_posterior(loc, scale, dof);
        return py::make_tuple(array(loc), array(scale), array(dof));
      });

  py::class_<LinearThompson>(m, "LinearThompson")
      .def(py::init<size_t, size_t, double, double, uint64_t, uint64_t, double>(), py::arg("arms"),
           py::arg("dims"), py::arg("ridge") = 1.0, py::arg("scale") = 0.5,
           py::arg("draws") = 10'000, py::arg("seed") = 0, py::arg("floor") = 0.0)
      .def_property_readonly("arm_count", &LinearThompson::arm_count)
      .def_property_readonly("dims", &LinearThompson::dims)
      .def("copy", [](const LinearThompson& p) { return LinearThompson(p); })
      .def(
          "update",
          [](LinearThompson& p, Doubles features, Int64s arms, Doubles rewards) {
            check_1d(arms, "arms");
            check_1d(rewards, "rewards");
            check_same_length(arms, rewards, "arms", "rewards");
            const double* x = matrix(features, p.dims(), "features");
            check_same_length(features, arms, "features", "arms");
            p.update(x, arms.data(), rewards.data(), static_cast<size_t>(arms.shape(0)));
          },
          py::arg("features"), py::arg("arms"), py::arg("rewards"))
      .def("merge", &LinearThompson::merge, py::arg("other"))
      .def("state",
           [](const LinearThompson& p) {
             const auto k = static_cast<py::ssize_t>(p.arm_count());
             const auto d = static_cast<py::ssize_t>(p.dims());
             py::array_t<double> gram({k, d, d});
             py::array_t<double> xr({k, d});
             py::array_t<double> counts(k);
             std::copy(p.gram().begin(), p.gram().end(), gram.mutable_data());
             std::copy(p.xr().begin(), p.xr().end(), xr.mutable_data());
             std::copy(p.counts().begin(), p.counts().end(), counts.mutable_data());
             return py::make_tuple(gram, xr, counts);
           })
      .def(
          "set_state",
          [](LinearThompson& p, Doubles gram, Doubles xr, Doubles counts) {
            p.set_state(std::vector<double>(gram.data(), gram.data() + gram.size()),
                        std::vector<double>(xr.data(), xr.data() + xr.size()),
                        std::vector<double>(counts.data(), counts.data() + counts.size()));
          },
          py::arg("gram"), py::arg("xr"), py::arg("counts"))
      .def("coefficients",
           [](const LinearThompson& p) {
             const auto theta = p.coefficients();
             py::array_t<double> out(
                 {static_cast<py::ssize_t>(p.arm_count()), static_cast<py::ssize_t>(p.dims())});
             std::copy(theta.begin(), theta.end(), out.mutable_data());
             return out;
           })
      .def(
          "probabilities",
          [](const LinearThompson& p, Doubles features, uint64_t epoch) {
            const double* x = matrix(features, p.dims(), "features");
            const size_t n = static_cast<size_t>(features.shape(0));
            py::array_t<double> out(
                {static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(p.arm_count())});
            double* o = out.mutable_data();
            // The draws are taken under the GIL; the scoring reads only them and fixed sizes.
            const auto draws = p.theta_draws(epoch);
            maybe_release(n * p.draws(), [&] { p.probabilities_from(*draws, x, n, o); });
            return out;
          },
          py::arg("features"), py::arg("epoch"));
}

}  // namespace trafficsplit::bindings
