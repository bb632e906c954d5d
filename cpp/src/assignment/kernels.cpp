// The batch kernels: a column of units assigned (or hashed) a block of rows at a time, split over
// threads; each row's result depends on the row alone, so not on the thread count.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "assignment/digits.hpp"
#include "assignment/readers.hpp"
#include "assignment/route_impl.hpp"
#include "hashing/hash_impl.hpp"
#include "parallel.hpp"
#include "trafficsplit/assignment/batch.hpp"
#include "trafficsplit/errors.hpp"

namespace trafficsplit {

namespace {

using namespace detail;

// Rows per thread below which a thread costs more than it saves (its start is tens of
// microseconds; a row is a few nanoseconds).
constexpr size_t kMinRowsPerThread = size_t{1} << 16;

// A stage's hash with the per-seed work done once per thread (detail::Xxh3Keys).
struct RowHasher {
  explicit RowHasher(const Hasher& h)
      : xxh3(h.algorithm() == Algorithm::xxh3),
        keys(h.seed()),
        murmur_seed(static_cast<uint32_t>(h.seed())) {}
  __attribute__((always_inline)) uint64_t operator()(const Bytes& t) const noexcept {
    if (xxh3) return detail::xxh3_keyed(keys, t.data, t.len);
    return detail::murmur3_inline(t.data, t.len, murmur_seed);
  }
  __attribute__((always_inline)) uint64_t operator()(const DigitText& t) const noexcept {
    if (xxh3) return xxh3_digits(keys, t);
    char text[24];
    std::memcpy(text, t.w, 24);
    return detail::murmur3_inline(text + 24 - t.len, t.len, murmur_seed);
  }
  bool xxh3;
  detail::Xxh3Keys keys;
  uint32_t murmur_seed;
};

// Records the first bad row across threads.
struct FirstBad {
  std::atomic<size_t> row{std::numeric_limits<size_t>::max()};
  void note(size_t i) {
    size_t seen = row.load(std::memory_order_relaxed);
    while (i < seen && !row.compare_exchange_weak(seen, i, std::memory_order_relaxed)) {
    }
  }
  void raise_if_any(const char* what) const {
    const size_t r = row.load();
    if (r != std::numeric_limits<size_t>::max()) {
      throw UnitValueError(std::string(what) + " at row " + std::to_string(r), r);
    }
  }
};

// The default bucket count as a compile-time divisor: the compiler's multiply-shift beats
// FastMod's 128-bit products, and 10,000 is what almost every experiment uses.
struct DefaultBucketsMod {
  uint32_t operator()(uint64_t a) const noexcept { return static_cast<uint32_t>(a % 10000); }
};

// The route's stage hashers of one thread, and each stage's bucket of a row.
struct RouteHashers {
  explicit RouteHashers(const RouteSpec* route) {
    if (route == nullptr) return;
    for (const auto& h : route->holdouts) add(h);
    if (route->layer) add(*route->layer);
  }
  void add(const RouteStage& s) {
    hashers.emplace_back(s.hasher);
    mods.emplace_back(s.buckets);
    default_buckets.push_back(s.buckets == 10000);
  }
  // Stage s's bucket of a row; the usual 10,000 buckets by a constant, with half the
  // multiplications of FastMod's.
  template <typename Text>
  __attribute__((always_inline)) uint32_t bucket(size_t s, const Text& text) const {
    const uint64_t h = hashers[s](text);
    return default_buckets[s] ? DefaultBucketsMod{}(h) : mods[s](h);
  }
  template <typename Text>
  Reason reason(const RouteSpec& route, const int64_t* at_us, int32_t step,
                const Text& text) const {
    return detail::route_reason(route, at_us, step, false,
                                [&](size_t s) { return bucket(s, text); });
  }
  size_t stages() const { return hashers.size(); }
  std::vector<RowHasher> hashers;
  std::vector<FastMod> mods;
  std::vector<uint8_t> default_buckets;
};

// Rows with their own time (`at` per row): the step, and so the map, can change on every row.
template <typename Reader, typename Mod>
void assign_range(const CompiledExperiment& e, const Reader& reader, const BatchContext& time,
                  const BatchOutput& out, size_t begin, size_t end, FirstBad& bad, Mod mod) {
  Scratch scratch;
  const RowHasher arm_hasher(e.arm_hasher());
  const RowHasher traffic_hasher(e.traffic_hasher());
  const RouteHashers route(time.route);
  const uint32_t buckets = e.buckets();
  for (size_t i = begin; i < end; ++i) {
    typename Reader::Text text;
    const Row row = reader.read(i, text, scratch);
    if (row != Row::kOk) {
      if (row == Row::kBad) bad.note(i);
      out.arm[i] = -1;
      out.bucket[i] = -1;
      out.reason[i] = static_cast<uint8_t>(Reason::missing_unit);
      continue;
    }
    const uint32_t bucket = mod(arm_hasher(text));
    out.bucket[i] = static_cast<int32_t>(bucket);
    out.arm[i] = -1;
    const int32_t step = e.step_at(time.at_us[i]);
    if (time.route != nullptr) {
      const Reason r = route.reason(*time.route, time.at_us + i, step, text);
      if (r != Reason::assigned) {
        out.reason[i] = static_cast<uint8_t>(r);
        continue;
      }
    }
    const Reason r =
        detail::experiment_reason(step >= 0, time.eligible == nullptr || time.eligible[i], [&] {
          const uint32_t threshold = e.threshold(step);
          return threshold < buckets && mod(traffic_hasher(text)) >= threshold;
        });
    if (r == Reason::assigned) out.arm[i] = e.bucket_map(step)[bucket];
    out.reason[i] = static_cast<uint8_t>(r);
  }
}

// The common case, one allocation step for every row: rows are hashed a block at a time, then
// decided, which keeps each loop's state in registers.
template <typename Reader, bool kTraffic, typename Mod>
void assign_range_fixed(const CompiledExperiment& e, const Reader& reader, const BatchContext& time,
                        const BatchOutput& out, size_t begin, size_t end, FirstBad& bad, Mod mod) {
  constexpr size_t kBlock = kIntBlock;
  Scratch scratch;
  const RowHasher arm_hasher(e.arm_hasher());
  const RowHasher traffic_hasher(e.traffic_hasher());
  const int16_t* __restrict const map = time.step >= 0 ? e.bucket_map(time.step).data() : nullptr;
  const uint32_t threshold = time.step >= 0 ? e.threshold(time.step) : 0;
  int16_t* __restrict const arm_out = out.arm;
  int32_t* __restrict const bucket_out = out.bucket;
  uint8_t* __restrict const reason_out = out.reason;
  const uint8_t* __restrict const eligible = time.eligible;
  const RouteSpec* const route_spec = time.route;
  const RouteHashers route(route_spec);
  const int64_t* const now = time.now_us ? &*time.now_us : nullptr;
  uint32_t arm_bucket[kBlock];
  uint32_t traffic_bucket[kBlock];
  Reason route_reason[kBlock];
  Row rows[kBlock];
  // A route of a few stages: every stage's bucket of every row hashed in the block loop, where
  // the hashes of neighbouring rows overlap, and the route decided afterwards (a stage a held
  // out row did not need costs less than a hash waiting on the branch before it).
  constexpr size_t kMaxStages = 8;
  const size_t stages = route_spec != nullptr ? route.stages() : 0;
  const bool staged = route_spec != nullptr && stages <= kMaxStages;
  uint32_t stage_bucket[kMaxStages][kBlock];
  // Integer ids under XXH3 with no route: a block's digits made once for both stages and hashed
  // where they were made (xxh3_integer_block).
  const bool integer_blocks = is_int_reader<Reader>::value && arm_hasher.xxh3 &&
                              (!kTraffic || traffic_hasher.xxh3) && route_spec == nullptr;
  const Xxh3Keys* const stage_keys[kMaxIntKeys] = {&arm_hasher.keys, &traffic_hasher.keys};
  for (size_t b = begin; b < end; b += kBlock) {
    const size_t n = std::min(kBlock, end - b);
    bool all_ok = true;
    if constexpr (is_int_reader<Reader>::value) {
      if (integer_blocks) {
        uint64_t hashes[kMaxIntKeys][kBlock];
        uint64_t* const outs[kMaxIntKeys] = {hashes[0], hashes[1]};
        xxh3_integer_block(reader.values + b, n, stage_keys, kTraffic ? 2 : 1, outs);
        for (size_t k = 0; k < n; ++k) {
          arm_bucket[k] = mod(hashes[0][k]);
          if constexpr (kTraffic) traffic_bucket[k] = mod(hashes[1][k]);
        }
        if (reader.has_missing()) {
          for (size_t k = 0; k < n; ++k) {
            rows[k] = reader.is_missing(b + k) ? Row::kMissing : Row::kOk;
            all_ok &= rows[k] == Row::kOk;
          }
        } else {
          std::fill(rows, rows + n, Row::kOk);
        }
      }
    }
    for (size_t k = 0; k < n && !integer_blocks; ++k) {
      typename Reader::Text text;
      rows[k] = reader.read(b + k, text, scratch);
      if (rows[k] != Row::kOk) {
        all_ok = false;
        continue;
      }
      arm_bucket[k] = mod(arm_hasher(text));
      if (staged) {
        for (size_t s = 0; s < stages; ++s) stage_bucket[s][k] = route.bucket(s, text);
      } else if (route_spec != nullptr) {
        route_reason[k] = route.reason(*route_spec, now, time.step, text);
      }
      if constexpr (kTraffic) traffic_bucket[k] = mod(traffic_hasher(text));
    }
    if (staged) {
      for (size_t k = 0; k < n; ++k) {
        if (rows[k] != Row::kOk) continue;
        route_reason[k] = detail::route_reason(*route_spec, now, time.step, false,
                                               [&](size_t s) { return stage_bucket[s][k]; });
      }
    }
    if (!kTraffic && all_ok && map != nullptr && eligible == nullptr && route_spec == nullptr) {
      for (size_t k = 0; k < n; ++k) {
        bucket_out[b + k] = static_cast<int32_t>(arm_bucket[k]);
        arm_out[b + k] = map[arm_bucket[k]];
        reason_out[b + k] = static_cast<uint8_t>(Reason::assigned);
      }
      continue;
    }
    for (size_t k = 0; k < n; ++k) {
      const size_t i = b + k;
      if (rows[k] != Row::kOk) {
        if (rows[k] == Row::kBad) bad.note(i);
        arm_out[i] = -1;
        bucket_out[i] = -1;
        reason_out[i] = static_cast<uint8_t>(Reason::missing_unit);
        continue;
      }
      bucket_out[i] = static_cast<int32_t>(arm_bucket[k]);
      // detail::experiment_reason's precedence, written out: through the helper this loop
      // measured 3 to 5 percent slower at an exposure below 1.
      Reason reason = Reason::assigned;
      if (route_spec != nullptr && route_reason[k] != Reason::assigned) {
        reason = route_reason[k];
      } else if (map == nullptr) {
        reason = Reason::not_started;
      } else if (eligible != nullptr && !eligible[i]) {
        reason = Reason::targeting_miss;
      } else if (kTraffic && traffic_bucket[k] >= threshold) {
        reason = Reason::not_exposed;
      }
      arm_out[i] = reason == Reason::assigned ? map[arm_bucket[k]] : int16_t{-1};
      reason_out[i] = static_cast<uint8_t>(reason);
    }
  }
}

// A row's bytes, wherever the reader left them.
inline Bytes text_bytes(const Bytes& t) { return t; }
inline Bytes text_bytes(const DigitText& t) {
  return Bytes{reinterpret_cast<const char*>(t.w) + 24 - t.len, t.len};
}

// A peer hashing mode (CompiledExperiment::peer): a block of rows is read (each row's bytes
// copied into the block where the reader re-encodes rows into one scratch buffer), keyed a block at
// a time (KeyFunction::keys, which the digests can run several rows abreast), then decided row
// by row; fixed or per-row steps, the route and targeting all in one loop.
template <typename Reader>
void assign_range_peer(const CompiledExperiment& e, const Reader& reader, const BatchContext& time,
                       const BatchOutput& out, size_t begin, size_t end, FirstBad& bad,
                       FirstBad& not_text) {
  constexpr size_t kBlock = 64;
  const PeerScheme& peer = *e.peer();
  const KeyFunction* const traffic = peer.traffic_function();
  const KeyFunction* const gate = peer.gate_function();
  Scratch scratch;
  const RouteHashers route(time.route);
  const int64_t* const now = time.now_us ? &*time.now_us : nullptr;
  std::string arena;
  const char* data[kBlock];
  size_t len[kBlock];
  size_t offset[kBlock];
  size_t index[kBlock];  // the block's present rows
  int32_t step[kBlock];  // each present row's allocation step
  Reason route_reason[kBlock];
  uint64_t arm_key[kBlock], traffic_key[kBlock] = {}, gate_key[kBlock] = {};
  uint8_t ok[kBlock], traffic_ok[kBlock], gate_ok[kBlock];
  for (size_t b = begin; b < end; b += kBlock) {
    const size_t n = std::min(kBlock, end - b);
    size_t m = 0;
    arena.clear();
    for (size_t k = 0; k < n; ++k) {
      const size_t i = b + k;
      typename Reader::Text text;
      const Row row = reader.read(i, text, scratch);
      out.arm[i] = -1;
      if (row != Row::kOk) {
        if (row == Row::kBad) bad.note(i);
        out.bucket[i] = -1;
        out.reason[i] = static_cast<uint8_t>(Reason::missing_unit);
        continue;
      }
      const Bytes bytes = text_bytes(text);
      if constexpr (has_stable_bytes<Reader>::value) {
        data[m] = bytes.data;
      } else {
        offset[m] = arena.size();
        arena.append(bytes.data, bytes.len);
      }
      len[m] = bytes.len;
      index[m] = i;
      step[m] = time.at_us != nullptr ? e.step_at(time.at_us[i]) : time.step;
      route_reason[m] = Reason::assigned;
      if (time.route != nullptr) {
        const int64_t* at = time.at_us != nullptr ? time.at_us + i : now;
        route_reason[m] = route.reason(*time.route, at, step[m], text);
      }
      ++m;
    }
    if constexpr (!has_stable_bytes<Reader>::value) {
      for (size_t j = 0; j < m; ++j) data[j] = arena.data() + offset[j];
    }
    peer.arm_function().keys(data, len, m, arm_key, ok);
    if (traffic != nullptr) traffic->keys(data, len, m, traffic_key, traffic_ok);
    if (gate != nullptr) gate->keys(data, len, m, gate_key, gate_ok);
    for (size_t j = 0; j < m; ++j) {
      const size_t i = index[j];
      if (!ok[j]) {
        not_text.note(i);
        out.bucket[i] = -1;
        out.reason[i] = static_cast<uint8_t>(Reason::missing_unit);
        continue;
      }
      out.bucket[i] = peer.bucket_of(arm_key[j]);
      if (route_reason[j] != Reason::assigned) {
        out.reason[i] = static_cast<uint8_t>(route_reason[j]);
        continue;
      }
      const bool eligible = time.eligible == nullptr || time.eligible[i];
      out.reason[i] = static_cast<uint8_t>(peer.decide_keys(arm_key[j], traffic_key[j], gate_key[j],
                                                            step[j], eligible, &out.arm[i]));
    }
  }
}

template <typename Reader>
void run_assign(const CompiledExperiment& e, const Reader& reader, size_t n,
                const BatchContext& time, const BatchOutput& out, unsigned threads) {
  if (time.at_us == nullptr && time.step >= static_cast<int32_t>(e.step_count())) {
    throw InvalidArgument("allocation step out of range");
  }
  FirstBad bad;
  if (e.peer() != nullptr) {
    FirstBad not_text;
    // A row costs tens to hundreds of nanoseconds here (FNV over UTF-16, the digests): a
    // thread pays for itself on fewer rows than under ts1.
    parallel_for(n, threads, kMinRowsPerThread / 16, [&](size_t begin, size_t end) {
      assign_range_peer<Reader>(e, reader, time, out, begin, end, bad, not_text);
    });
    bad.raise_if_any("unit id cannot be encoded as UTF-8 (lone surrogate or invalid code point)");
    not_text.raise_if_any(
        "unit id is not UTF-8 text, which this peer hashing mode hashes as characters");
    return;
  }
  const bool default_buckets = e.buckets() == 10000;
  const bool traffic = time.step >= 0 && e.threshold(time.step) < e.buckets();
  parallel_for(n, threads, kMinRowsPerThread, [&](size_t begin, size_t end) {
    auto fixed = [&](auto mod) {
      if (traffic) {
        assign_range_fixed<Reader, true>(e, reader, time, out, begin, end, bad, mod);
      } else {
        assign_range_fixed<Reader, false>(e, reader, time, out, begin, end, bad, mod);
      }
    };
    if (time.at_us != nullptr) {
      assign_range<Reader>(e, reader, time, out, begin, end, bad, e.modulus());
    } else if (default_buckets) {
      fixed(DefaultBucketsMod{});
    } else {
      fixed(e.modulus());
    }
  });
  bad.raise_if_any("unit id cannot be encoded as UTF-8 (lone surrogate or invalid code point)");
}

// Integer ids under XXH3: a block of digits at a time, hashed where they were made, written
// straight into the output (xxh3_integer_block).
template <typename T>
void hash_integers(const Hasher& hasher, const IntReader<T>& reader, size_t n, uint64_t* out,
                   uint8_t* missing, unsigned threads) {
  parallel_for(
      n, threads, kMinRowsPerThread,
      [&](size_t begin, size_t end) {
        const Xxh3Keys keys(hasher.seed());
        const Xxh3Keys* const key_list[1] = {&keys};
        for (size_t b = begin; b < end; b += kIntBlock) {
          const size_t m = std::min(kIntBlock, end - b);
          uint64_t* const outs[1] = {out + b};
          xxh3_integer_block(reader.values + b, m, key_list, 1, outs);
          if (!reader.has_missing()) {
            std::memset(missing + b, 0, m);
            continue;
          }
          for (size_t i = b; i < b + m; ++i) {
            missing[i] = reader.is_missing(i);
            if (missing[i]) out[i] = 0;
          }
        }
      },
      kIntBlock);
}

template <typename Reader>
void run_hash(const Hasher& hasher, const Reader& reader, size_t n, uint64_t* out, uint8_t* missing,
              unsigned threads) {
  if constexpr (is_int_reader<Reader>::value) {
    if (hasher.algorithm() == Algorithm::xxh3) {
      hash_integers(hasher, reader, n, out, missing, threads);
      return;
    }
  }
  FirstBad bad;
  parallel_for(n, threads, kMinRowsPerThread, [&](size_t begin, size_t end) {
    Scratch scratch;
    const RowHasher row_hasher(hasher);
    for (size_t i = begin; i < end; ++i) {
      typename Reader::Text text;
      const Row row = reader.read(i, text, scratch);
      if (row != Row::kOk) {
        if (row == Row::kBad) bad.note(i);
        out[i] = 0;
        missing[i] = 1;
        continue;
      }
      out[i] = row_hasher(text);
      missing[i] = 0;
    }
  });
  bad.raise_if_any("unit id cannot be encoded as UTF-8 (lone surrogate or invalid code point)");
}

template <typename Item, typename Code>
void take_typed(const Item* table, size_t table_size, const Code* codes, size_t n, Item* out,
                unsigned threads) {
  const auto last = static_cast<int64_t>(table_size) - 1;  // the missing-unit entry
  FirstBad bad;
  parallel_for(n, threads, kMinRowsPerThread, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      int64_t code = static_cast<int64_t>(codes[i]);
      if (code == -1) code = last;
      if (code < 0 || code > last || (code == last && codes[i] != -1)) {
        bad.note(i);
        code = last;
      }
      out[i] = table[code];
    }
  });
  const size_t row = bad.row.load();
  if (row != std::numeric_limits<size_t>::max()) {
    throw InvalidArgument("dictionary code " + std::to_string(static_cast<int64_t>(codes[row])) +
                          " at row " + std::to_string(row) +
                          " is out of range: the dictionary has " + std::to_string(table_size - 1) +
                          " entries (codes 0 to " + std::to_string(last - 1) + ", -1 for missing)");
  }
}

template <typename Item>
void take_items(const Item* table, size_t table_size, const void* codes, IntKind kind, size_t n,
                Item* out, unsigned threads) {
  switch (kind) {
    case IntKind::i8:
      return take_typed(table, table_size, static_cast<const int8_t*>(codes), n, out, threads);
    case IntKind::i16:
      return take_typed(table, table_size, static_cast<const int16_t*>(codes), n, out, threads);
    case IntKind::i32:
      return take_typed(table, table_size, static_cast<const int32_t*>(codes), n, out, threads);
    case IntKind::i64:
      return take_typed(table, table_size, static_cast<const int64_t*>(codes), n, out, threads);
    default:
      throw InvalidArgument("dictionary codes must be signed integers");
  }
}

}  // namespace

void assign_batch(const CompiledExperiment& experiment, const UnitColumn& units,
                  const BatchContext& time, const BatchOutput& out, unsigned threads) {
  visit_column(units, [&](const auto& reader, size_t n) {
    run_assign(experiment, reader, n, time, out, threads);
  });
}

void hash_batch(Algorithm algorithm, const std::string& salt, const UnitColumn& units,
                uint64_t* out, uint8_t* missing, unsigned threads) {
  const Hasher hasher(algorithm, salt);
  visit_column(units, [&](const auto& reader, size_t n) {
    run_hash(hasher, reader, n, out, missing, threads);
  });
}

void take_by_codes(const void* table, size_t table_size, size_t item_size, const void* codes,
                   IntKind code_kind, size_t n, void* out, unsigned threads) {
  if (table_size == 0) throw InvalidArgument("a dictionary's result table needs its missing entry");
  switch (item_size) {
    case 1:
      return take_items(static_cast<const uint8_t*>(table), table_size, codes, code_kind, n,
                        static_cast<uint8_t*>(out), threads);
    case 2:
      return take_items(static_cast<const uint16_t*>(table), table_size, codes, code_kind, n,
                        static_cast<uint16_t*>(out), threads);
    case 4:
      return take_items(static_cast<const uint32_t*>(table), table_size, codes, code_kind, n,
                        static_cast<uint32_t*>(out), threads);
    case 8:
      return take_items(static_cast<const uint64_t*>(table), table_size, codes, code_kind, n,
                        static_cast<uint64_t*>(out), threads);
    default:
      throw InvalidArgument("dictionary results must be 1, 2, 4 or 8 bytes wide");
  }
}

void assign_rows(const CompiledExperiment& experiment, size_t rows, RowReader reader, void* context,
                 const BatchContext& time, const BatchOutput& out) {
  run_assign(experiment, CallbackReader{reader, context}, rows, time, out, 1);
}

void hash_rows(Algorithm algorithm, const std::string& salt, size_t rows, RowReader reader,
               void* context, uint64_t* out, uint8_t* missing) {
  run_hash(Hasher(algorithm, salt), CallbackReader{reader, context}, rows, out, missing, 1);
}

}  // namespace trafficsplit
