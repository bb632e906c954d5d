// trafficsplit._core.telemetry: the per-arm metric recorder, shadow comparisons and bulk
// exposure records as JSON Lines.
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "bindings.hpp"
#include "trafficsplit/errors.hpp"
#include "trafficsplit/telemetry/jsonl.hpp"
#include "trafficsplit/telemetry/paired.hpp"
#include "trafficsplit/telemetry/recorder.hpp"

namespace trafficsplit::bindings {
using telemetry::Recorder;

namespace {

// An int64 numpy array of a vector's values.
py::array_t<int64_t> int64_array(const std::vector<int64_t>& values) {
  py::array_t<int64_t> out(static_cast<py::ssize_t>(values.size()));
  if (!values.empty()) std::memcpy(out.mutable_data(), values.data(), values.size() * 8);
  return out;
}

// The encoder with the capsules that own the Arrow structs it reads.
struct ExposureLines {
  py::object schema_capsule;
  py::object array_capsule;
  std::unique_ptr<telemetry::ExposureJsonl> encoder;

  ExposureLines(py::object schema, py::object array)
      : schema_capsule(std::move(schema)), array_capsule(std::move(array)) {
    auto* s = static_cast<ArrowSchema*>(PyCapsule_GetPointer(schema_capsule.ptr(), "arrow_schema"));
    if (s == nullptr) throw py::error_already_set();
    auto* a = static_cast<ArrowArray*>(PyCapsule_GetPointer(array_capsule.ptr(), "arrow_array"));
    if (a == nullptr) throw py::error_already_set();
    encoder = std::make_unique<telemetry::ExposureJsonl>(*s, *a);
  }

  py::tuple write(py::buffer out, size_t start) const {
    const py::buffer_info info = out.request(true);  // writable, or a BufferError
    if (info.ndim != 1 || info.itemsize != 1 || info.strides[0] != 1) {
      throw InvalidArgument("the buffer must be contiguous bytes (a uint8 array, a bytearray)");
    }
    char* data = static_cast<char*>(info.ptr);
    const auto capacity = static_cast<size_t>(info.size);
    telemetry::ExposureJsonl::Chunk chunk;
    {
      // `out` (through `info`) and the capsules (through self) are held by this call; the
      // encoder only reads the Arrow buffers and writes `out`.
      py::gil_scoped_release release;
      chunk = encoder->write(start, data, capacity);
    }
    return py::make_tuple(chunk.end, chunk.size, chunk.need, int64_array(chunk.skipped),
                          int64_array(chunk.skipped_at));
  }
};

}  // namespace

void register_telemetry(py::module_& m) {
  py::class_<Recorder>(m, "Recorder",
                       "Count, mean and centred sum of squares per (metric, arm) series; "
                       "thread-safe (internal: use trafficsplit.MetricsRecorder).")
      .def(py::init<size_t>(), py::arg("shards") = 16)
      .def("series", &Recorder::series, py::arg("metric"), py::arg("arm"),
           "The id of a (metric, arm) series, created on first use.")
      .def_property_readonly("series_count", &Recorder::series_count)
      .def("record", &Recorder::record, py::arg("series"), py::arg("value"),
           "Adds one value (NaN and infinities are counted as skipped).")
      .def(
          "record_many",
          [](Recorder& r, uint32_t series, py::array_t<double, py::array::c_style> values) {
            if (values.ndim() != 1) throw InvalidArgument("values must be one-dimensional");
            const double* data = values.data();
            const auto n = static_cast<size_t>(values.shape(0));
            // The array is kept alive by the caller's reference and only read.
            std::optional<py::gil_scoped_release> release;
            if (n >= 4096) release.emplace();
            r.record_many(series, data, n);
          },
          py::arg("series"), py::arg("values"), "Adds an array of float64 values.")
      .def(
          "snapshot",
          [](const Recorder& r) {
            std::vector<telemetry::SeriesSnapshot> snap;
            {
              py::gil_scoped_release release;  // waits on the shard locks only
              snap = r.snapshot();
            }
            py::list out;
            for (const auto& s : snap) {
              out.append(py::make_tuple(s.metric, s.arm, s.moments.n, s.moments.mean, s.moments.m2,
                                        s.moments.skipped));
            }
            return out;
          },
          "[(metric, arm, n, mean, m2, skipped)] per series, merged over the shards.")
      .def("reset", &Recorder::reset, "Zeroes every series (ids are kept).");

  m.def(
      "paired_difference",
      [](py::array_t<double, py::array::c_style | py::array::forcecast> a,
         py::array_t<double, py::array::c_style | py::array::forcecast> b, double confidence) {
        if (a.ndim() != 1 || b.ndim() != 1 || a.shape(0) != b.shape(0)) {
          throw InvalidArgument("paired_difference needs two 1-d arrays of equal length");
        }
        telemetry::PairedDifference r;
        {
          // Both arrays are held by this frame and only read.
          std::optional<py::gil_scoped_release> release;
          if (a.shape(0) >= 4096) release.emplace();
          r = telemetry::paired_difference(a.data(), b.data(), static_cast<size_t>(a.shape(0)),
                                           confidence);
        }
        return py::make_tuple(r.n, r.mean, r.sd, r.t, r.p_value, r.ci_low, r.ci_high);
      },
      py::arg("a"), py::arg("b"), py::arg("confidence") = 0.95,
      "(n, mean, sd, t, p_value, ci_low, ci_high) of b - a over finite pairs.");
  m.def(
      "wilson_interval",
      [](uint64_t k, uint64_t n, double confidence) {
        const auto p = telemetry::wilson_interval(k, n, confidence);
        return py::make_tuple(p.estimate, p.low, p.high);
      },
      py::arg("k"), py::arg("n"), py::arg("confidence") = 0.95,
      "(estimate, low, high): the Wilson score interval of k successes in n trials.");
  py::class_<ExposureLines>(m, "ExposureJsonl",
                            "JSON Lines of an Arrow record batch of exposure records, a chunk at "
                            "a time (internal: use trafficsplit.telemetry.records.table_jsonl).")
      .def(py::init<py::object, py::object>(), py::arg("schema_capsule"), py::arg("array_capsule"),
           "From the batch's __arrow_c_array__ capsules (attributes as dictionary-encoded JSON "
           "text).")
      .def_property_readonly("rows", [](const ExposureLines& e) { return e.encoder->rows(); })
      .def("write", &ExposureLines::write, py::arg("out"), py::arg("start"),
           "(end, size, need, skipped, skipped_at): the lines of rows [start, end) in "
           "out[:size]; the rows left out for the caller to encode and the offsets where "
           "their lines belong; when end == start, the room the next row needs.");
}

}  // namespace trafficsplit::bindings
