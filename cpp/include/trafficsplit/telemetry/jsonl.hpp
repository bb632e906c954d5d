// Exposure records as JSON Lines, written column by column from an Arrow record batch: the same
// bytes, line for line, as the per-record encoder of python/trafficsplit/telemetry/records.py
// (ExposureBatch.jsonl): its key order, its escaping (Python's json.encoder.encode_basestring:
// `"`, `\` and the control characters escaped, everything else as UTF-8), Python's repr of the
// probability and numpy's text of the timestamp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "trafficsplit/arrow/c_data.hpp"

namespace trafficsplit::telemetry {

// The rows of an Arrow struct array (an exported record batch) with the 13 fields of the
// exposure schema in order: timestamp[us] (any time zone), unit utf8, experiment and arm
// dictionary<int32, utf8>, bucket int32, reason and version dictionary<int32, utf8>, probability
// float64, attributes dictionary<int32, utf8> whose values are finished JSON text copied as
// they are (a null value: that text could not be made), request_id and evaluated_arm utf8,
// mismatch bool, propagation utf8; written as JSON Lines a chunk at a time into the caller's
// buffer, so that memory stays bounded and warm however many rows there are.
//
// A row the per-record encoder would refuse or write in a form this one does not produce is
// skipped, not guessed: a null where the record needs a value (timestamp, experiment, arm,
// bucket, reason, version, probability), text that is not valid UTF-8, a probability that is
// not finite, a time outside the years 0000-9999, attributes whose dictionary value is null.
//
// The array must outlive the encoder, which reads its buffers in place; dictionary values are
// escaped once, when it is made. write() only reads the encoder: threads may share it.
class ExposureJsonl {
 public:
  // Throws InvalidArgument when the array does not have that layout.
  ExposureJsonl(const ArrowSchema& schema, const ArrowArray& array);
  ExposureJsonl(const ExposureJsonl&) = delete;
  ExposureJsonl& operator=(const ExposureJsonl&) = delete;
  ~ExposureJsonl();

  size_t rows() const noexcept;

  struct Chunk {
    size_t end = 0;                   // the rows [start, end) were written or skipped
    size_t size = 0;                  // bytes of `out` holding their lines
    size_t need = 0;                  // end == start: the room the row `start` needs
    std::vector<int64_t> skipped;     // rows left out, ascending: the caller encodes them
    std::vector<int64_t> skipped_at;  // for each, the offset in `out` where its line belongs
  };
  // The lines of the rows from `start` on that surely fit in out[0, capacity), in row order.
  Chunk write(size_t start, char* out, size_t capacity) const;

 private:
  struct Columns;
  std::unique_ptr<Columns> columns_;
};

// Appends `text` as a JSON string the way Python's json.encoder.encode_basestring writes it
// (lowercase \u00XX for the control characters without a short escape). False, with `out`
// unchanged, when `text` is not valid UTF-8 (a surrogate, an overlong form, a cut sequence).
bool append_json_string(std::string& out, std::string_view text);

// Appends Python's repr() of a finite double: the shortest text that reads back as the same
// double, in exponent form (`1e-05`, `1.5e+16`) when the decimal exponent is below -4 or above
// 15, else positional with at least one digit after the point (`0.5`, `100.0`).
void append_python_float(std::string& out, double value);

}  // namespace trafficsplit::telemetry
