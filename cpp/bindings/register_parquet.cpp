// trafficsplit._core.parquet: Parquet data-page bodies of backfill output (see
// trafficsplit/arrow/parquet.hpp). Each function encodes one page into `out` and returns its
// size, or minus the size `out` must have when it is too small (nothing written then).
#include <cstdint>
#include <string>

#include "bindings.hpp"
#include "trafficsplit/arrow/parquet.hpp"
#include "trafficsplit/errors.hpp"

namespace trafficsplit::bindings {

namespace {

struct Out {
  uint8_t* data;
  size_t capacity;
};

// Checked, not converted: a converted copy would take the page and lose it.
Out writable(py::array& out) {
  if (!out.dtype().is(py::dtype::of<uint8_t>()) || !out.writeable() || out.ndim() != 1 ||
      !(out.flags() & py::array::c_style)) {
    throw InvalidArgument("out must be a writable contiguous uint8 array");
  }
  return {static_cast<uint8_t*>(out.mutable_data()), static_cast<size_t>(out.size())};
}

int64_t result(parquet::Encoded e) {
  return e.fits ? static_cast<int64_t>(e.size) : -static_cast<int64_t>(e.size);
}

// An indices page binding for codes of type T.
template <class T>
int64_t indices(py::array_t<T, py::array::c_style> values, int bit_width, py::array out) {
  const Out w = writable(out);
  py::gil_scoped_release release;
  return result(parquet::indices_page(values.data(), values.size(), bit_width, w.data, w.capacity));
}

void check_rows(int64_t first, int64_t count) {
  if (first < 0 || count < 0) throw InvalidArgument("parquet page: negative row range");
}

// An Arrow validity bitmap covering bits [offset, offset + first + count), or none.
parquet::Bitmap bitmap(const py::object& validity, int64_t offset, int64_t end,
                       py::buffer_info& keep) {
  if (validity.is_none()) return {};
  keep = validity.cast<py::buffer>().request();
  if (offset < 0 || keep.size * keep.itemsize * 8 < offset + end) {
    throw InvalidArgument("parquet page: the validity bitmap is shorter than the rows");
  }
  return {static_cast<const uint8_t*>(keep.ptr), offset};
}

}  // namespace

void register_parquet(py::module_& m) {
  m.def(
      "binary_page",
      [](py::buffer offsets, py::buffer data, py::object validity, int64_t validity_offset,
         int64_t first, int64_t count, bool large, bool optional, py::array out) {
        check_rows(first, count);
        const py::buffer_info o = offsets.request();
        const py::buffer_info d = data.request();
        py::buffer_info v;
        const auto bits = bitmap(validity, validity_offset, first + count, v);
        const int64_t width = large ? 8 : 4;
        if (o.size * o.itemsize < (first + count + 1) * width) {
          throw InvalidArgument("parquet page: the offsets are shorter than the rows");
        }
        const auto* base = static_cast<const uint8_t*>(d.ptr);
        const Out w = writable(out);
        auto end = [&](auto* offs) {
          if (offs[first + count] > d.size * d.itemsize) {
            throw InvalidArgument("parquet page: the offsets point past the data");
          }
        };
        py::gil_scoped_release release;
        if (large) {
          const auto* offs = static_cast<const int64_t*>(o.ptr);
          end(offs);
          return result(
              parquet::binary_page(offs, base, bits, first, count, optional, w.data, w.capacity));
        }
        const auto* offs = static_cast<const int32_t*>(o.ptr);
        end(offs);
        return result(
            parquet::binary_page(offs, base, bits, first, count, optional, w.data, w.capacity));
      },
      py::arg("offsets"), py::arg("data"), py::arg("validity"), py::arg("validity_offset"),
      py::arg("first"), py::arg("count"), py::arg("large"), py::arg("optional"), py::arg("out"),
      "Rows [first, first + count) of an Arrow string/binary array's buffers as a PLAIN "
      "BYTE_ARRAY page body.");
  m.def(
      "fixed_page",
      [](py::buffer values, size_t width, py::object validity, int64_t validity_offset,
         int64_t first, int64_t count, bool optional, py::array out) {
        check_rows(first, count);
        const py::buffer_info b = values.request();
        py::buffer_info v;
        const auto bits = bitmap(validity, validity_offset, first + count, v);
        if (b.size * b.itemsize < (first + count) * static_cast<int64_t>(width)) {
          throw InvalidArgument("parquet page: the values are shorter than the rows");
        }
        const Out w = writable(out);
        py::gil_scoped_release release;
        return result(parquet::fixed_page(static_cast<const uint8_t*>(b.ptr), width, bits, first,
                                          count, optional, w.data, w.capacity));
      },
      py::arg("values"), py::arg("width"), py::arg("validity"), py::arg("validity_offset"),
      py::arg("first"), py::arg("count"), py::arg("optional"), py::arg("out"),
      "Rows [first, first + count) of fixed-width values (4 or 8 bytes) as a PLAIN page body.");
  m.def(
      "nonnegative_page",
      [](py::array_t<int32_t, py::array::c_style> values, py::array out) {
        const Out w = writable(out);
        py::gil_scoped_release release;
        return result(parquet::nonnegative_page(values.data(), values.size(), w.data, w.capacity));
      },
      py::arg("values"), py::arg("out"),
      "INT32 values as a PLAIN page body with definition levels, null where negative.");
  m.def("arm_indices_page", &indices<int16_t>, py::arg("values"), py::arg("bit_width"),
        py::arg("out"),
        "int16 dictionary indices as an RLE_DICTIONARY page body with definition levels, null "
        "where negative.");
  m.def("code_indices_page", &indices<uint8_t>, py::arg("values"), py::arg("bit_width"),
        py::arg("out"),
        "uint8 dictionary indices as an RLE_DICTIONARY page body of a required column.");
  m.def("index_bit_width", &parquet::index_bit_width, py::arg("dictionary_size"),
        "The narrowest bit width, at least 1, of indices below dictionary_size.");
}

}  // namespace trafficsplit::bindings
