#include "trafficsplit/telemetry/recorder.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>

#include "trafficsplit/errors.hpp"
#include "trafficsplit/stats/moments.hpp"

namespace trafficsplit::telemetry {

void SeriesMoments::add(double x) noexcept {
  if (!std::isfinite(x)) {
    ++skipped;
    return;
  }
  ++n;
  const double delta = x - mean;
  mean += delta / static_cast<double>(n);
  m2 += delta * (x - mean);
}

void SeriesMoments::merge(const SeriesMoments& other) noexcept {
  skipped += other.skipped;
  stats::merge_moments(1, n, &mean, &m2, other.n, &other.mean, &other.m2);
}

Recorder::Recorder(size_t shards) {
  if (shards == 0 || shards > 1024) throw InvalidArgument("shards must be between 1 and 1024");
  shards_.reserve(shards);
  for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

uint32_t Recorder::series(const std::string& metric, const std::string& arm) {
  if (metric.empty()) throw InvalidArgument("metric must be a non-empty name");
  // The length prefix keeps ("a\0b", "c") and ("a", "b\0c") apart.
  std::string key = std::to_string(metric.size()) + ':' + metric + arm;
  std::lock_guard<std::mutex> lock(names_mutex_);
  auto it = ids_.find(key);
  if (it != ids_.end()) return it->second;
  const auto id = static_cast<uint32_t>(names_.size());
  names_.emplace_back(metric, arm);
  ids_.emplace(std::move(key), id);
  count_.store(id + 1, std::memory_order_release);
  return id;
}

size_t Recorder::series_count() const { return count_.load(std::memory_order_acquire); }

Recorder::Shard& Recorder::shard_for_this_thread() {
  // Threads take shards round-robin on first use, so concurrent writers rarely share a lock.
  static std::atomic<size_t> next{0};
  thread_local const size_t slot = next.fetch_add(1, std::memory_order_relaxed);
  return *shards_[slot % shards_.size()];
}

void Recorder::check(uint32_t series) const {
  if (series >= series_count()) {
    throw InvalidArgument("unknown series id " + std::to_string(series));
  }
}

void Recorder::record(uint32_t series, double value) {
  check(series);
  Shard& shard = shard_for_this_thread();
  std::lock_guard<std::mutex> lock(shard.mutex);
  if (shard.series.size() <= series) shard.series.resize(series + 1);
  shard.series[series].add(value);
}

void Recorder::record_many(uint32_t series, const double* values, size_t n) {
  check(series);
  // Accumulate privately, then merge once: the lock is held for one merge, not n adds.
  SeriesMoments local;
  for (size_t i = 0; i < n; ++i) local.add(values[i]);
  Shard& shard = shard_for_this_thread();
  std::lock_guard<std::mutex> lock(shard.mutex);
  if (shard.series.size() <= series) shard.series.resize(series + 1);
  shard.series[series].merge(local);
}

std::vector<SeriesSnapshot> Recorder::snapshot() const {
  std::vector<SeriesSnapshot> out;
  {
    std::lock_guard<std::mutex> lock(names_mutex_);
    out.reserve(names_.size());
    for (const auto& [metric, arm] : names_) out.push_back({metric, arm, {}});
  }
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mutex);
    const size_t k = std::min(shard->series.size(), out.size());
    for (size_t i = 0; i < k; ++i) out[i].moments.merge(shard->series[i]);
  }
  return out;
}

void Recorder::reset() {
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mutex);
    shard->series.assign(shard->series.size(), SeriesMoments{});
  }
}

}  // namespace trafficsplit::telemetry
