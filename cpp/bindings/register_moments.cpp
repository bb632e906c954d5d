// trafficsplit._core.stats: grouped moments over numpy columns.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "trafficsplit/errors.hpp"
#include "trafficsplit/stats/moments.hpp"

namespace trafficsplit::bindings {

namespace {

// Below this many rows the kernel takes less time than releasing and taking back the GIL.
constexpr size_t kReleaseGilRows = 1 << 14;

std::string dtype_name(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

void check_vector(const py::array& a, const std::string& what) {
  if (a.ndim() != 1) {
    throw InvalidArgument(what + " must be one-dimensional, got " + std::to_string(a.ndim()) +
                          " dimensions");
  }
  if (!(a.flags() & py::array::c_style)) throw InvalidArgument(what + " must be contiguous");
  if (!a.dtype().attr("isnative").cast<bool>())
    throw InvalidArgument(what + " must be in native byte order");
}

stats::CodeType code_type(const py::array& codes) {
  const char kind = codes.dtype().kind();
  if (kind == 'i') {
    switch (codes.itemsize()) {
      case 1:
        return stats::CodeType::kInt8;
      case 2:
        return stats::CodeType::kInt16;
      case 4:
        return stats::CodeType::kInt32;
      case 8:
        return stats::CodeType::kInt64;
    }
  }
  throw InvalidArgument(
      "group codes must be a signed integer array (int8, int16, int32 or "
      "int64), got dtype " +
      dtype_name(codes));
}

py::tuple grouped_moments(py::object codes_obj, py::list column_list, int64_t groups,
                          int64_t threads) {
  if (groups < 0) throw InvalidArgument("groups must be >= 0, got " + std::to_string(groups));
  if (threads < 0) throw InvalidArgument("threads must be >= 0, got " + std::to_string(threads));
  const size_t k = column_list.size();
  if (k == 0 || k > stats::kMaxMomentColumns) {
    throw InvalidArgument("moments need 1 to " + std::to_string(stats::kMaxMomentColumns) +
                          " value columns, got " + std::to_string(k));
  }
  // Holding the arrays keeps their buffers alive while the GIL is released.
  std::vector<py::array> arrays;
  arrays.reserve(k + 1);
  const void* codes = nullptr;
  stats::CodeType type = stats::CodeType::kNone;
  size_t rows = 0;
  bool have_rows = false;
  if (!codes_obj.is_none()) {
    if (!py::isinstance<py::array>(codes_obj)) {
      throw InvalidArgument("group codes must be a numpy array or None");
    }
    py::array a = codes_obj.cast<py::array>();
    check_vector(a, "group codes");
    type = code_type(a);
    codes = a.data();
    rows = static_cast<size_t>(a.shape(0));
    have_rows = true;
    arrays.push_back(a);
  }
  std::vector<stats::ValueColumn> columns;
  for (size_t i = 0; i < k; ++i) {
    const std::string what = "value column " + std::to_string(i);
    if (!py::isinstance<py::array>(column_list[i])) {
      throw InvalidArgument(what + " must be a numpy array");
    }
    py::array a = column_list[i].cast<py::array>();
    check_vector(a, what);
    const char kind = a.dtype().kind();
    stats::ValueColumn c;
    if (kind == 'f' && a.itemsize() == 8) {
      c.type = stats::ValueType::kFloat64;
    } else if (kind == 'f' && a.itemsize() == 4) {
      c.type = stats::ValueType::kFloat32;
    } else {
      throw InvalidArgument(what + " must be float64 or float32, got dtype " + dtype_name(a));
    }
    const size_t len = static_cast<size_t>(a.shape(0));
    if (!have_rows) {
      rows = len;
      have_rows = true;
    } else if (len != rows) {
      throw InvalidArgument(what + " has " + std::to_string(len) + " rows, expected " +
                            std::to_string(rows) + (codes ? " (the group codes' length)" : ""));
    }
    c.data = a.data();
    columns.push_back(c);
    arrays.push_back(a);
  }
  stats::GroupedMoments m;
  {
    std::optional<py::gil_scoped_release> release;
    // Safe: the kernel reads only the arrays' buffers, which `arrays` keeps alive.
    if (rows >= kReleaseGilRows) release.emplace();
    m = stats::grouped_moments(codes, type, rows, columns, static_cast<size_t>(groups),
                               static_cast<unsigned>(threads));
  }
  const auto g = static_cast<py::ssize_t>(m.groups);
  const auto kk = static_cast<py::ssize_t>(m.columns);
  py::array_t<int64_t> n(g);
  py::array_t<double> means({g, kk});
  py::array_t<double> comoments({g, kk, kk});
  py::array_t<int64_t> skipped(g);
  std::copy(m.n.begin(), m.n.end(), n.mutable_data());
  std::copy(m.means.begin(), m.means.end(), means.mutable_data());
  std::copy(m.comoments.begin(), m.comoments.end(), comoments.mutable_data());
  std::copy(m.skipped.begin(), m.skipped.end(), skipped.mutable_data());
  return py::make_tuple(n, means, comoments, skipped, m.null_groups);
}

}  // namespace

void register_moments(py::module_& m) {
  m.def("grouped_moments", &grouped_moments, py::arg("codes"), py::arg("columns"),
        py::arg("groups"), py::arg("threads") = 1,
        "Per group: rows used, column means, centred co-moments, rows skipped for a NaN; and "
        "the rows whose group code was negative. codes: None (one group) or a signed integer "
        "array; columns: float64/float32 arrays of the same length.");
}

}  // namespace trafficsplit::bindings
