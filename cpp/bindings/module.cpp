// trafficsplit._core: creates the submodules; each area registers itself.
#include "bindings.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  using namespace trafficsplit::bindings;
  m.doc() = "trafficsplit's C++ core (private: import trafficsplit instead)";
  register_errors(m);
  auto hashing = m.def_submodule("hashing", "Hash contract");
  register_hashing(hashing);
  auto assignment = m.def_submodule("assignment", "Compiled experiments");
  register_assignment(assignment);
  auto stats = m.def_submodule("stats", "Statistics kernels");
  register_stats(stats);
  register_moments(stats);
  register_sequential(stats);
  auto targeting = m.def_submodule("targeting", "Targeting expressions");
  register_targeting(targeting);
  auto bandit = m.def_submodule("bandit", "Bandit policies");
  register_bandit(bandit);
  auto telemetry = m.def_submodule("telemetry", "Per-arm metric recorder");
  register_telemetry(telemetry);
  auto parquet = m.def_submodule("parquet", "Parquet page bodies of backfill output");
  register_parquet(parquet);
}
