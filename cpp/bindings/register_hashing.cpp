// trafficsplit._core.hashing: the contract's hash functions, scalar and over columns.
#include <optional>

#include "bindings.hpp"
#include "trafficsplit/assignment/batch.hpp"
#include "trafficsplit/errors.hpp"
#include "trafficsplit/hashing/digests.hpp"
#include "trafficsplit/hashing/hash.hpp"
#include "units.hpp"

namespace trafficsplit::bindings {

void register_hashing(py::module_& m) {
  register_units(m);
  m.def(
      "simd_path", [] { return std::string(integer_simd_path()); },
      "The instruction set integer columns' digits use: avx512, avx2 or portable.");
  m.def(
      "hash64",
      [](py::handle unit, const std::string& salt, const std::string& algorithm) {
        UnitBytes bytes;
        if (!unit_bytes(unit.ptr(), bytes, 0, false)) {
          throw UnitTypeError(
              "cannot hash a missing unit id (" + std::string(Py_TYPE(unit.ptr())->tp_name) + ")",
              0);
        }
        return Hasher(parse_algorithm(algorithm), salt)(bytes.data, bytes.len);
      },
      py::arg("unit"), py::arg("salt"), py::arg("algorithm") = "xxh3");
  m.def(
      "hash_column",
      [](const Column& column, const std::string& salt, const std::string& algorithm,
         unsigned threads) {
        const size_t n = column.size();
        py::array_t<uint64_t> out(static_cast<py::ssize_t>(n));
        py::array_t<bool> missing(static_cast<py::ssize_t>(n));
        const Algorithm algo = parse_algorithm(algorithm);
        uint64_t* out_ptr = out.mutable_data();
        auto* missing_ptr = reinterpret_cast<uint8_t*>(missing.mutable_data());
        {
          // The column keeps its buffers alive and the outputs are private to this call.
          std::optional<py::gil_scoped_release> release;
          if (n >= 4096) release.emplace();
          hash_batch(algo, salt, column.column(), out_ptr, missing_ptr, threads);
        }
        return py::make_tuple(out, missing);
      },
      py::arg("column"), py::arg("salt"), py::arg("algorithm") = "xxh3", py::arg("threads") = 0);
  m.def(
      "hash_sequence",
      [](py::handle sequence, const std::string& salt, const std::string& algorithm) {
        SequenceRows rows(sequence);
        py::array_t<uint64_t> out(static_cast<py::ssize_t>(rows.size()));
        py::array_t<bool> missing(static_cast<py::ssize_t>(rows.size()));
        hash_rows(parse_algorithm(algorithm), salt, rows.size(), &SequenceRows::read, &rows,
                  out.mutable_data(), reinterpret_cast<uint8_t*>(missing.mutable_data()));
        return py::make_tuple(out, missing);
      },
      py::arg("sequence"), py::arg("salt"), py::arg("algorithm") = "xxh3");
  m.def(
      "digest",
      [](std::string_view algorithm, const py::bytes& data) {
        // The peer modes' digests, for tests against hashlib; the GIL stays held, since the
        // inputs are unit ids of a few dozen bytes.
        const std::string_view view = data;
        uint8_t out[32];
        size_t size = 0;
        if (algorithm == "md5") {
          md5(&view, 1, out);
          size = 16;
        } else if (algorithm == "sha1") {
          sha1(&view, 1, out);
          size = 20;
        } else if (algorithm == "sha256") {
          sha256(&view, 1, out);
          size = 32;
        } else {
          throw InvalidArgument("digest: algorithm must be 'md5', 'sha1' or 'sha256', got '" +
                                std::string(algorithm) + "'");
        }
        return py::bytes(reinterpret_cast<const char*>(out), size);
      },
      py::arg("algorithm"), py::arg("data"));
  m.def("stage_salt", &stage_salt, py::arg("salt"), py::arg("stage"));
  m.def("versioned_salt", &versioned_salt, py::arg("salt"), py::arg("bucket_version"));
  m.def("apportion", &apportion, py::arg("weights"), py::arg("buckets"));
  m.def("exposure_threshold", &exposure_threshold, py::arg("exposure"), py::arg("buckets"));
  m.attr("MAX_BUCKETS") = kMaxBuckets;
  m.attr("MAX_ARMS") = kMaxArms;
}

}  // namespace trafficsplit::bindings
