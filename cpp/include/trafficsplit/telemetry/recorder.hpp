// A thread-safe, in-process recorder of guardrail metrics per arm (latency, errors, cost):
// per (metric, arm) it keeps the count, mean and centred sum of squares (Welford), so readers
// get sufficient statistics for tests and rollout decisions without storing values.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace trafficsplit::telemetry {

// Sufficient statistics of one series: n values, their mean, and Σ (x - mean)².
struct SeriesMoments {
  int64_t n = 0;
  double mean = 0.0;
  double m2 = 0.0;
  uint64_t skipped = 0;  // NaN or infinite values left out

  void add(double x) noexcept;
  // The moments of the union of both value sets (the statistics kernels' Chan update).
  void merge(const SeriesMoments& other) noexcept;
};

struct SeriesSnapshot {
  std::string metric;
  std::string arm;
  SeriesMoments moments;
};

class Recorder {
 public:
  // `shards`: independent locks; each thread writes to one shard and readers merge them.
  explicit Recorder(size_t shards = 16);

  // The id of a (metric, arm) series, created on first use; ids are dense from 0 and stable.
  uint32_t series(const std::string& metric, const std::string& arm);
  size_t series_count() const;

  // Thread-safe. Throws InvalidArgument for an unknown series id.
  void record(uint32_t series, double value);
  void record_many(uint32_t series, const double* values, size_t n);

  // Every series merged over the shards, in id order.
  std::vector<SeriesSnapshot> snapshot() const;
  void reset();

 private:
  struct Shard {
    mutable std::mutex mutex;
    std::vector<SeriesMoments> series;
  };
  Shard& shard_for_this_thread();
  void check(uint32_t series) const;

  mutable std::mutex names_mutex_;
  std::atomic<uint32_t> count_{0};  // series registered; read without the lock
  std::vector<std::pair<std::string, std::string>> names_;
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace trafficsplit::telemetry
