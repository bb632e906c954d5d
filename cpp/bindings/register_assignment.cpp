// trafficsplit._core.assignment: compiled experiments, scalar and batch assignment.
#include <array>
#include <optional>

#include "bindings.hpp"
#include "trafficsplit/assignment/batch.hpp"
#include "trafficsplit/assignment/experiment.hpp"
#include "trafficsplit/errors.hpp"
#include "units.hpp"

namespace trafficsplit::bindings {

namespace {

using ReasonNames = std::array<py::object, kReasonCount>;

// The reason names as Python strings, made once per process and never destroyed, so a scalar
// assignment creates no string.
const ReasonNames& reason_names() {
  PYBIND11_CONSTINIT static py::gil_safe_call_once_and_store<ReasonNames> storage;
  return storage
      .call_once_and_store_result([] {
        ReasonNames names;
        for (size_t r = 0; r < kReasonCount; ++r) {
          names[r] = py::str(reason_name(static_cast<Reason>(r)));
        }
        return names;
      })
      .get_stored();
}

struct Assignment {
  py::object experiment;
  py::object arm;
  py::object payload;
  int arm_index = -1;
  int bucket = -1;
  uint8_t reason = 0;

  // An arm is served, whatever decided it (hash, override, sticky store or upstream service).
  bool in_experiment() const { return arm_index >= 0; }
  py::object reason_name() const { return reason_names()[reason]; }
};

// A compiled experiment plus the Python objects it hands out (arm names, payloads), so a
// scalar assignment creates no new strings.
class PyExperiment {
 public:
  PyExperiment(
      py::str key, std::string salt, uint32_t bucket_version, const std::string& algorithm,
      uint32_t buckets, py::tuple arm_names, py::tuple payloads,
      const std::vector<std::tuple<std::optional<int64_t>, double, std::vector<double>>>& steps,
      const py::object& peer = py::none())
      : key_(std::move(key)),
        arm_names_(std::move(arm_names)),
        payloads_(std::move(payloads)),
        core_(as_config([&] {
          ExperimentSpec spec =
              make_spec(std::move(salt), bucket_version, algorithm, buckets, steps);
          if (!peer.is_none()) spec.peer = peer_spec(peer.cast<py::dict>());
          return CompiledExperiment(spec);
        })) {
    if (py::len(arm_names_) != core_.arm_count() || py::len(payloads_) != core_.arm_count()) {
      throw InvalidConfig("arm names and payloads must match the arms in the allocation history");
    }
  }

  Assignment assign(py::handle unit, std::optional<int64_t> at_us, bool eligible) const {
    const int32_t step = at_us ? core_.step_at(*at_us) : core_.current_step();
    return assign_step(unit, step, eligible);
  }

  Assignment assign_step(py::handle unit, int32_t step, bool eligible) const {
    UnitBytes bytes;
    if (!unit_bytes(unit.ptr(), bytes, 0, false)) {
      Assignment a;
      a.experiment = key_;
      a.arm = py::none();
      a.payload = py::none();
      a.reason = static_cast<uint8_t>(Reason::missing_unit);
      return a;
    }
    return assign_bytes(bytes, step, eligible);
  }

  // A present unit's bytes, already encoded (the route encodes them once for its stages too).
  Assignment assign_bytes(const UnitBytes& bytes, int32_t step, bool eligible) const {
    Assignment a;
    a.experiment = key_;
    const ScalarResult r = core_.assign(bytes.data, bytes.len, step, eligible);
    a.bucket = r.bucket;
    a.arm_index = r.arm;
    a.reason = static_cast<uint8_t>(r.reason);
    if (r.arm >= 0) {
      a.arm = arm_names_[static_cast<size_t>(r.arm)];
      a.payload = payloads_[static_cast<size_t>(r.arm)];
    } else {
      a.arm = py::none();
      a.payload = py::none();
    }
    return a;
  }

  // An assignment to a given arm decided outside the hash (override, upstream service).
  Assignment with_arm(int16_t arm, int32_t bucket, Reason reason) const {
    Assignment a;
    a.experiment = key_;
    a.arm = arm_names_[static_cast<size_t>(arm)];
    a.payload = payloads_[static_cast<size_t>(arm)];
    a.arm_index = arm;
    a.bucket = bucket;
    a.reason = static_cast<uint8_t>(reason);
    return a;
  }

  // An arm index from Python: -1 (none) or one of the experiment's arms.
  int16_t arm_or_none(int arm, const char* what) const {
    if (arm < -1 || arm >= static_cast<int>(core_.arm_count())) {
      throw InvalidArgument(std::string(what) + " arm index " + std::to_string(arm) +
                            " is out of range: the experiment has " +
                            std::to_string(core_.arm_count()) + " arms");
    }
    return static_cast<int16_t>(arm);
  }

  py::tuple assign_column(const Column& column, int32_t step, py::object at_us, unsigned threads,
                          py::object out_arrays, py::object eligible,
                          const RouteSpec* route = nullptr,
                          std::optional<int64_t> now_us = std::nullopt) const {
    const size_t n = column.size();
    Outputs out(n, out_arrays);
    BatchContext time = batch_time(step, at_us, eligible, n, out);
    time.route = route;
    time.now_us = now_us;
    {
      // Safe without the GIL: the column holds references to every buffer it reads, the
      // outputs are fresh arrays no other thread has seen, and the core is immutable.
      std::optional<py::gil_scoped_release> release;
      if (n >= 4096) release.emplace();
      assign_batch(core_, column.column(), time, out.view(), threads);
    }
    return out.result();
  }

  // Python objects are read where they live, in one pass with the GIL held: converting them
  // into a column first would touch every object twice (a cache miss each time).
  py::tuple assign_sequence(py::handle sequence, int32_t step, py::object at_us,
                            py::object out_arrays, py::object eligible,
                            const RouteSpec* route = nullptr,
                            std::optional<int64_t> now_us = std::nullopt) const {
    SequenceRows rows(sequence);
    Outputs out(rows.size(), out_arrays);
    BatchContext time = batch_time(step, at_us, eligible, rows.size(), out);
    time.route = route;
    time.now_us = now_us;
    assign_rows(core_, rows.size(), &SequenceRows::read, &rows, time, out.view());
    return out.result();
  }

  py::array_t<int16_t> bucket_map(int32_t step) const {
    const auto& map = core_.bucket_map(step);
    py::array_t<int16_t> out(static_cast<py::ssize_t>(map.size()));
    std::copy(map.begin(), map.end(), out.mutable_data());
    return out;
  }

  const CompiledExperiment& core() const { return core_; }
  py::str key() const { return key_; }

 private:
  // Fresh output arrays, or the caller's (`out` = (arm, bucket, reason) slices of a larger
  // result, so that chunked inputs are written in place without a second copy).
  struct Outputs {
    Outputs(size_t n, const py::object& out) {
      if (out.is_none()) {
        arm = py::array_t<int16_t>(static_cast<py::ssize_t>(n));
        bucket = py::array_t<int32_t>(static_cast<py::ssize_t>(n));
        reason = py::array_t<uint8_t>(static_cast<py::ssize_t>(n));
        return;
      }
      const auto t = out.cast<py::tuple>();
      if (t.size() != 3) throw InvalidArgument("out must be (arm, bucket, reason) arrays");
      arm = checked<int16_t>(t[0], n);
      bucket = checked<int32_t>(t[1], n);
      reason = checked<uint8_t>(t[2], n);
    }
    template <typename T>
    static py::array_t<T> checked(py::handle h, size_t n) {
      if (!py::isinstance<py::array_t<T>>(h))
        throw InvalidArgument("out arrays have the wrong dtype");
      auto a = py::reinterpret_borrow<py::array_t<T>>(h);
      if (a.ndim() != 1 || static_cast<size_t>(a.shape(0)) != n || !a.writeable() ||
          !(a.flags() & py::array::c_style)) {
        throw InvalidArgument("out arrays must be writable, contiguous and of the input's length");
      }
      return a;
    }
    BatchOutput view() {
      return {arm.mutable_data(), bucket.mutable_data(), reason.mutable_data()};
    }
    py::tuple result() const { return py::make_tuple(arm, bucket, reason); }
    py::array_t<int16_t> arm;
    py::array_t<int32_t> bucket;
    py::array_t<uint8_t> reason;
    py::array_t<int64_t, py::array::c_style> at;  // keeps per-row times alive
    py::array eligible;                           // and the eligibility mask
  };

  BatchContext batch_time(int32_t step, py::object at_us, py::object eligible, size_t n,
                          Outputs& out) const {
    BatchContext time;
    time.step = step;
    if (!eligible.is_none()) {
      out.eligible = eligible.cast<py::array>();
      if (out.eligible.dtype().kind() != 'b' || out.eligible.ndim() != 1 ||
          static_cast<size_t>(out.eligible.shape(0)) != n ||
          !(out.eligible.flags() & py::array::c_style)) {
        throw InvalidArgument(
            "the targeting mask must be a contiguous bool array with one entry per unit id");
      }
      time.eligible = static_cast<const uint8_t*>(out.eligible.data());
    }
    if (!at_us.is_none()) {
      out.at = at_us.cast<py::array_t<int64_t, py::array::c_style>>();
      if (out.at.ndim() != 1 || static_cast<size_t>(out.at.shape(0)) != n) {
        throw InvalidArgument("'at' must have one time per unit id: " + std::to_string(n) +
                              " unit ids, " + std::to_string(out.at.size()) + " times");
      }
      time.at_us = out.at.data();
    }
    return time;
  }

  // A peer hashing mode as python/trafficsplit/hashing_modes.py compiles it: key functions as
  // dicts ({hash, encoding, prefix, suffix, seed, reduce, modulus}) and segments as
  // (cuts, labels) pairs.
  static KeySpec key_spec(const py::dict& d) {
    KeySpec k;
    k.hash = parse_peer_hash(d["hash"].cast<std::string>());
    k.encoding = parse_text_encoding(d["encoding"].cast<std::string>());
    k.prefix = d["prefix"].cast<std::string>();
    k.suffix = d["suffix"].cast<std::string>();
    k.seed = d["seed"].cast<uint32_t>();
    k.reduce = parse_key_reduce(d["reduce"].cast<std::string>());
    k.modulus = d["modulus"].cast<uint64_t>();
    return k;
  }
  static Segments segments(const py::handle& pair) {
    const auto t = pair.cast<std::pair<std::vector<uint64_t>, std::vector<int16_t>>>();
    return Segments{t.first, t.second};
  }
  static PeerSpec peer_spec(const py::dict& d) {
    PeerSpec p;
    p.arm = key_spec(d["arm"].cast<py::dict>());
    if (!d["traffic"].is_none()) p.traffic = key_spec(d["traffic"].cast<py::dict>());
    if (!d["gate"].is_none()) {
      p.gate = key_spec(d["gate"].cast<py::dict>());
      p.gate_segments = segments(d["gate_segments"]);
    }
    for (const auto& s : d["arm_steps"]) p.arm_steps.push_back(segments(s));
    for (const auto& s : d["traffic_steps"]) p.traffic_steps.push_back(segments(s));
    p.bucket_scale = d["bucket_scale"].cast<double>();
    return p;
  }

  static ExperimentSpec make_spec(
      std::string salt, uint32_t bucket_version, const std::string& algorithm, uint32_t buckets,
      const std::vector<std::tuple<std::optional<int64_t>, double, std::vector<double>>>& steps) {
    ExperimentSpec spec;
    spec.salt = std::move(salt);
    spec.bucket_version = bucket_version;
    spec.algorithm = parse_algorithm(algorithm);
    spec.buckets = buckets;
    for (const auto& [at, exposure, weights] : steps) {
      spec.steps.push_back(AllocationStepSpec{at, exposure, weights});
    }
    return spec;
  }

  py::str key_;
  py::tuple arm_names_;
  py::tuple payloads_;
  CompiledExperiment core_;
};

// The stages the configuration puts before an experiment (holdouts, a layer range, a status),
// evaluated in one call with the experiment's own stages: a request pays one crossing into C++.
class PyRoute {
 public:
  PyRoute(const PyExperiment& experiment, py::object owner,
          const std::vector<std::tuple<std::string, uint32_t, uint32_t>>& holdouts,
          std::optional<std::tuple<std::string, uint32_t, uint32_t, uint32_t>> layer, bool stopped,
          std::optional<int64_t> start_us, std::optional<int64_t> end_us)
      : experiment_(experiment), owner_(std::move(owner)) {
    for (const auto& [salt, buckets, threshold] : holdouts) {
      if (buckets == 0) throw InvalidConfig("holdout buckets must be >= 1");
      // The stage salts are the contract's (docs/assignment-spec.md): "<salt>/holdout".
      spec_.holdouts.push_back(
          {Hasher(Algorithm::xxh3, stage_salt(salt, "holdout")), buckets, threshold, 0});
    }
    if (layer) {
      const auto& [salt, buckets, lo, hi] = *layer;
      if (buckets == 0) throw InvalidConfig("layer buckets must be >= 1");
      spec_.layer = RouteStage{Hasher(Algorithm::xxh3, stage_salt(salt, "layer")), buckets, lo, hi};
    }
    spec_.stopped = stopped;
    spec_.start_us = start_us;
    spec_.end_us = end_us;
  }

  // One unit through the whole precedence (route_impl.hpp): `forced` is an override's arm,
  // `upstream` a trusted upstream service's arm (-1: none).
  Assignment assign(py::handle unit, std::optional<int64_t> at_us, bool eligible, int forced,
                    int upstream) const {
    const auto& core = experiment_.core();
    const int16_t forced_arm = experiment_.arm_or_none(forced, "override");
    const int16_t upstream_arm = experiment_.arm_or_none(upstream, "upstream");
    const int32_t step = at_us ? core.step_at(*at_us) : core.current_step();
    UnitBytes bytes;
    if (!unit_bytes(unit.ptr(), bytes, 0, false))
      return experiment_.assign_step(unit, step, eligible);
    // The arm bucket is hashed here only when the experiment's own evaluation does not run
    // (it hashes it itself): one hash per request on the common path.
    if (RouteSpec::with_override(Reason::assigned, forced_arm) == Reason::override)
      return experiment_.with_arm(forced_arm, core.bucket(bytes.data, bytes.len), Reason::override);
    const Reason reason = spec_.reason(bytes.data, bytes.len, at_us, step, upstream_arm >= 0);
    if (reason == Reason::assigned) return experiment_.assign_bytes(bytes, step, eligible);
    const int32_t bucket = core.bucket(bytes.data, bytes.len);
    if (reason == Reason::propagated)
      return experiment_.with_arm(upstream_arm, bucket, Reason::propagated);
    Assignment a;
    a.experiment = experiment_.key();
    a.arm = py::none();
    a.payload = py::none();
    a.bucket = bucket;
    a.reason = static_cast<uint8_t>(reason);
    return a;
  }

  // Overrides over batch results, in place: rows with a forced arm (>= 0) that have a unit.
  void apply_overrides(py::array_t<int16_t, py::array::c_style> forced, py::tuple out) const {
    if (out.size() != 3) throw InvalidArgument("out must be (arm, bucket, reason) arrays");
    auto arm = out[0].cast<py::array_t<int16_t, py::array::c_style>>();
    auto reason = out[2].cast<py::array_t<uint8_t, py::array::c_style>>();
    const py::ssize_t n = forced.size();
    if (arm.size() != n || reason.size() != n)
      throw InvalidArgument("overrides, arms and reasons must have one entry per row");
    const int16_t* f = forced.data();
    int16_t* a = arm.mutable_data();
    uint8_t* r = reason.mutable_data();
    for (py::ssize_t i = 0; i < n; ++i) {
      if (f[i] < -1 || f[i] >= static_cast<int>(experiment_.core().arm_count()))
        throw InvalidArgument("override arm index " + std::to_string(f[i]) + " out of range");
      const Reason now = RouteSpec::with_override(static_cast<Reason>(r[i]), f[i]);
      if (now == Reason::override) {
        a[i] = f[i];
        r[i] = static_cast<uint8_t>(now);
      }
    }
  }

  // The experiment's batch kernels with the route applied first, row by row; `now_us` is the
  // time of every row when there are no per-row times.
  py::tuple assign_column(const Column& column, int32_t step, py::object at_us, unsigned threads,
                          py::object out, py::object eligible,
                          std::optional<int64_t> now_us) const {
    return experiment_.assign_column(column, step, std::move(at_us), threads, std::move(out),
                                     std::move(eligible), &spec_, now_us);
  }
  py::tuple assign_sequence(py::handle sequence, int32_t step, py::object at_us, py::object out,
                            py::object eligible, std::optional<int64_t> now_us) const {
    return experiment_.assign_sequence(sequence, step, std::move(at_us), std::move(out),
                                       std::move(eligible), &spec_, now_us);
  }

  // The reason the status and time window alone give each time (0 where they give none):
  // stopped or not_started.
  py::array_t<uint8_t> window_reasons(py::array_t<int64_t, py::array::c_style> at_us) const {
    py::array_t<uint8_t> out(at_us.size());
    const int64_t* at = at_us.data();
    uint8_t* o = out.mutable_data();
    for (py::ssize_t i = 0; i < at_us.size(); ++i) {
      // Step -1: the holdouts and the layer are not consulted.
      o[i] = static_cast<uint8_t>(spec_.reason(nullptr, 0, at[i], -1));
    }
    return out;
  }

 private:
  const PyExperiment& experiment_;
  py::object owner_;  // keeps the experiment alive
  RouteSpec spec_;
};

py::object assignment_repr(const Assignment& a) {
  return py::str(
             "Assignment(experiment={!r}, arm={!r}, arm_index={}, payload={!r}, bucket={}, "
             "in_experiment={}, reason={!r})")
      .format(a.experiment, a.arm, a.arm_index, a.payload, a.bucket, a.in_experiment(),
              a.reason_name());
}

}  // namespace

void register_assignment(py::module_& m) {
  py::tuple names(kReasonCount);
  for (size_t r = 0; r < kReasonCount; ++r) names[r] = reason_names()[r];
  m.attr("REASONS") = names;

  py::class_<Assignment>(m, "Assignment",
                         "The result of assigning one unit to one experiment (immutable).")
      .def_property_readonly(
          "experiment", [](const Assignment& a) { return a.experiment; }, "The experiment's key.")
      .def_property_readonly(
          "arm", [](const Assignment& a) { return a.arm; },
          "The arm's name, or None when the unit is not in the experiment.")
      .def_property_readonly(
          "arm_index", [](const Assignment& a) { return a.arm_index; },
          "The arm's position in Experiment.arms, or -1.")
      .def_property_readonly(
          "payload", [](const Assignment& a) { return a.payload; },
          "The arm's payload (read-only), or None.")
      .def_property_readonly(
          "bucket", [](const Assignment& a) { return a.bucket; },
          "The unit's arm bucket in [0, buckets), or -1 for a missing unit.")
      .def_property_readonly("in_experiment", &Assignment::in_experiment,
                             "True when the unit got an arm.")
      .def_property_readonly("reason", &Assignment::reason_name,
                             "Why the unit got what it got: one of trafficsplit.REASONS.")
      .def("__repr__", &assignment_repr)
      .def("__eq__",
           [](const Assignment& a, py::object other) -> py::object {
             if (!py::isinstance<Assignment>(other))
               return py::reinterpret_borrow<py::object>(Py_NotImplemented);
             const auto& b = other.cast<const Assignment&>();
             return py::bool_(a.arm_index == b.arm_index && a.bucket == b.bucket &&
                              a.reason == b.reason && a.experiment.equal(b.experiment) &&
                              a.arm.equal(b.arm) && a.payload.equal(b.payload));
           })
      .def(
          "to_dict",
          [](const Assignment& a) {
            py::dict d;
            d["experiment"] = a.experiment;
            d["arm"] = a.arm;
            d["arm_index"] = a.arm_index;
            d["payload"] = a.payload;
            d["bucket"] = a.bucket;
            d["in_experiment"] = a.in_experiment();
            d["reason"] = a.reason_name();
            return d;
          },
          "The fields as a plain dict.")
      .def(
          "labels",
          [](const Assignment& a) {
            // Metric labels must be strings: no arm is the empty label (absent in Prometheus).
            py::dict d;
            d["experiment"] = a.experiment;
            d["arm"] = a.arm.is_none() ? py::str("") : a.arm;
            d["reason"] = a.reason_name();
            return d;
          },
          "Labels for Prometheus or OpenTelemetry metrics: experiment, arm ('' when none) and "
          "reason.")
      .def(py::pickle(
          [](const Assignment& a) {
            return py::make_tuple(a.experiment, a.arm, a.payload, a.arm_index, a.bucket, a.reason);
          },
          [](py::tuple t) {
            if (t.size() != 6) throw InvalidArgument("bad Assignment pickle");
            Assignment a;
            a.experiment = t[0];
            a.arm = t[1];
            a.payload = t[2];
            a.arm_index = t[3].cast<int>();
            a.bucket = t[4].cast<int>();
            a.reason = t[5].cast<uint8_t>();
            if (a.reason >= kReasonCount) throw InvalidArgument("bad Assignment pickle");
            return a;
          }));
  m.attr("Assignment").attr("__hash__") = py::none();
  m.def(
      "make_assignment",
      [](py::object experiment, py::object arm, int arm_index, py::object payload, int bucket,
         uint8_t reason) {
        if (reason >= kReasonCount) throw InvalidArgument("unknown reason code");
        Assignment a;
        a.experiment = std::move(experiment);
        a.arm = std::move(arm);
        a.arm_index = arm_index;
        a.payload = std::move(payload);
        a.bucket = bucket;
        a.reason = reason;
        return a;
      },
      py::arg("experiment"), py::arg("arm"), py::arg("arm_index"), py::arg("payload"),
      py::arg("bucket"), py::arg("reason"), "An Assignment decided outside the core (internal).");

  m.def(
      "apply_row_reasons",
      [](py::object eligible, py::object window, py::tuple out) {
        if (out.size() != 3) throw InvalidArgument("out must be (arm, bucket, reason) arrays");
        auto arm = out[0].cast<py::array_t<int16_t, py::array::c_style>>();
        auto reason = out[2].cast<py::array_t<uint8_t, py::array::c_style>>();
        const size_t n = static_cast<size_t>(reason.size());
        auto rows_of = [n](const py::object& a, const char* what) -> const uint8_t* {
          if (a.is_none()) return nullptr;
          auto arr = a.cast<py::array>();
          if (arr.itemsize() != 1 || arr.ndim() != 1 || static_cast<size_t>(arr.shape(0)) != n ||
              !(arr.flags() & py::array::c_style)) {
            throw InvalidArgument(std::string(what) +
                                  " must be a contiguous 1-byte array with one entry per row");
          }
          return static_cast<const uint8_t*>(arr.data());
        };
        if (static_cast<size_t>(arm.size()) != n)
          throw InvalidArgument("arms and reasons must have one entry per row");
        apply_row_reasons(rows_of(eligible, "eligible"), rows_of(window, "window"), n,
                          BatchOutput{arm.mutable_data(), nullptr, reason.mutable_data()});
      },
      py::arg("eligible"), py::arg("window"), py::arg("out"),
      "Each row's time window and targeting over its unit's reason, in place (internal).");

  m.def(
      "count_results",
      [](py::array_t<uint8_t, py::array::c_style> reason,
         py::array_t<int16_t, py::array::c_style> arm, size_t arms, py::array counts) {
        if (arm.size() != reason.size()) {
          throw InvalidArgument("arms and reasons must have one entry per row");
        }
        // checked, not converted: a converted copy would take the counts and lose them
        if (!counts.dtype().is(py::dtype::of<int64_t>()) || !counts.writeable() ||
            !(counts.flags() & py::array::c_style) || counts.ndim() != 2 ||
            counts.shape(0) != static_cast<py::ssize_t>(kReasonCount) ||
            counts.shape(1) != static_cast<py::ssize_t>(arms + 1)) {
          throw InvalidArgument(
              "counts must be a writable contiguous int64 array of shape (reasons, arms + 1)");
        }
        auto* out = static_cast<int64_t*>(counts.mutable_data());
        py::gil_scoped_release release;
        count_results(reason.data(), arm.data(), static_cast<size_t>(reason.size()), arms, out);
      },
      py::arg("reason"), py::arg("arm"), py::arg("arms"), py::arg("counts"),
      "Adds a batch's rows per (reason, arm or none) into counts, in place (internal).");

  m.def(
      "take_by_codes",
      [](py::array table, py::array codes, py::array out, unsigned threads) {
        auto check = [](const py::array& a, const char* name) {
          if (a.ndim() != 1 || !(a.flags() & py::array::c_style)) {
            throw InvalidArgument(std::string(name) + " must be a contiguous 1-D array");
          }
        };
        check(table, "table");
        check(codes, "codes");
        check(out, "out");
        if (!out.writeable() || !out.dtype().is(table.dtype()) || out.size() != codes.size()) {
          throw InvalidArgument("out must be a writable array of the table's dtype, one per code");
        }
        static const IntKind kinds[] = {IntKind::i8,  IntKind::i16, IntKind::i16, IntKind::i32,
                                        IntKind::i32, IntKind::i32, IntKind::i32, IntKind::i64};
        const auto width = static_cast<size_t>(codes.itemsize());
        if (codes.dtype().kind() != 'i' || width == 0 || width > 8 || (width & (width - 1))) {
          throw InvalidArgument("dictionary codes must be signed integers, got " +
                                py::str(codes.dtype()).cast<std::string>());
        }
        const auto n = static_cast<size_t>(codes.size());
        std::optional<py::gil_scoped_release> release;
        if (n >= 4096) release.emplace();
        take_by_codes(table.data(), static_cast<size_t>(table.size()),
                      static_cast<size_t>(table.itemsize()), codes.data(), kinds[width - 1], n,
                      out.mutable_data(), threads);
      },
      py::arg("table"), py::arg("codes"), py::arg("out"), py::arg("threads") = 0,
      "out[i] = table[codes[i]], code -1 reading the last (missing-unit) entry (internal).");

  py::class_<PyRoute>(m, "Route", "Configuration stages around an experiment (internal).")
      .def(py::init([](py::object experiment,
                       const std::vector<std::tuple<std::string, uint32_t, uint32_t>>& holdouts,
                       std::optional<std::tuple<std::string, uint32_t, uint32_t, uint32_t>> layer,
                       bool stopped, std::optional<int64_t> start_us,
                       std::optional<int64_t> end_us) {
             const auto& e = experiment.cast<const PyExperiment&>();
             return new PyRoute(e, experiment, holdouts, layer, stopped, start_us, end_us);
           }),
           py::arg("experiment"), py::arg("holdouts"), py::arg("layer"), py::arg("stopped"),
           py::arg("start_us") = py::none(), py::arg("end_us") = py::none())
      // Two entry points to one precedence: the request path's three arguments cost less to
      // dispatch than five (about 70 ns a call, 20 calls per assign_all).
      .def(
          "assign",
          [](const PyRoute& r, py::handle unit, std::optional<int64_t> at_us, bool eligible) {
            return r.assign(unit, at_us, eligible, -1, -1);
          },
          py::arg("unit"), py::arg("at_us") = py::none(), py::arg("eligible") = true)
      .def("decide", &PyRoute::assign, py::arg("unit"), py::arg("at_us"), py::arg("eligible"),
           py::arg("forced"), py::arg("upstream"))
      .def("apply_overrides", &PyRoute::apply_overrides, py::arg("forced"), py::arg("out"))
      .def("assign_column", &PyRoute::assign_column, py::arg("column"), py::arg("step"),
           py::arg("at_us") = py::none(), py::arg("threads") = 0, py::arg("out") = py::none(),
           py::arg("eligible") = py::none(), py::arg("now_us") = py::none())
      .def("assign_sequence", &PyRoute::assign_sequence, py::arg("sequence"), py::arg("step"),
           py::arg("at_us") = py::none(), py::arg("out") = py::none(),
           py::arg("eligible") = py::none(), py::arg("now_us") = py::none())
      .def("window_reasons", &PyRoute::window_reasons, py::arg("at_us"));

  // Every experiment of one request in one call: what Splitter.assign_all asks of each route,
  // without a Python call per experiment (about 100 ns each, 20 per request).
  m.def(
      "assign_routes",
      [](py::sequence routes, py::handle unit, std::optional<int64_t> at_us,
         py::sequence eligible) {
        const py::ssize_t n = py::len(routes);
        if (py::len(eligible) != static_cast<size_t>(n))
          throw InvalidArgument("assign_routes: one eligible flag per route");
        py::list out(n);
        for (py::ssize_t i = 0; i < n; ++i) {
          const auto& route = routes[i].cast<const PyRoute&>();
          const bool ok = PyObject_IsTrue(eligible[i].ptr()) == 1;
          out[i] = py::cast(route.assign(unit, at_us, ok, -1, -1));
        }
        return out;
      },
      py::arg("routes"), py::arg("unit"), py::arg("at_us"), py::arg("eligible"),
      "[route.assign(unit, at_us, e) for route, e in zip(routes, eligible)] (internal).");

  py::class_<PyExperiment>(m, "CompiledExperiment", "An immutable compiled experiment (internal).")
      .def(py::init<
               py::str, std::string, uint32_t, const std::string&, uint32_t, py::tuple, py::tuple,
               const std::vector<std::tuple<std::optional<int64_t>, double, std::vector<double>>>&,
               const py::object&>(),
           py::arg("key"), py::arg("salt"), py::arg("bucket_version"), py::arg("algorithm"),
           py::arg("buckets"), py::arg("arm_names"), py::arg("payloads"), py::arg("steps"),
           py::arg("peer") = py::none())
      .def("assign", &PyExperiment::assign, py::arg("unit"), py::arg("at_us") = py::none(),
           py::arg("eligible") = true)
      .def("assign_step", &PyExperiment::assign_step, py::arg("unit"), py::arg("step"),
           py::arg("eligible") = true)
      .def(
          "assign_column",
          [](const PyExperiment& e, const Column& column, int32_t step, py::object at_us,
             unsigned threads, py::object out, py::object eligible) {
            return e.assign_column(column, step, std::move(at_us), threads, std::move(out),
                                   std::move(eligible));
          },
          py::arg("column"), py::arg("step"), py::arg("at_us") = py::none(), py::arg("threads") = 0,
          py::arg("out") = py::none(), py::arg("eligible") = py::none())
      .def(
          "assign_sequence",
          [](const PyExperiment& e, py::handle sequence, int32_t step, py::object at_us,
             py::object out, py::object eligible) {
            return e.assign_sequence(sequence, step, std::move(at_us), std::move(out),
                                     std::move(eligible));
          },
          py::arg("sequence"), py::arg("step"), py::arg("at_us") = py::none(),
          py::arg("out") = py::none(), py::arg("eligible") = py::none())
      .def("step_at", [](const PyExperiment& e, int64_t at_us) { return e.core().step_at(at_us); })
      .def(
          "steps_at",
          [](const PyExperiment& e, py::array_t<int64_t, py::array::c_style> at_us) {
            py::array_t<int32_t> out(at_us.size());
            const int64_t* in = at_us.data();
            int32_t* o = out.mutable_data();
            for (py::ssize_t i = 0; i < at_us.size(); ++i) o[i] = e.core().step_at(in[i]);
            return out;
          },
          py::arg("at_us"), "The allocation step in force at each time (-1 before the first).")
      .def_property_readonly("current_step",
                             [](const PyExperiment& e) { return e.core().current_step(); })
      .def_property_readonly("step_count",
                             [](const PyExperiment& e) { return e.core().step_count(); })
      .def("threshold",
           [](const PyExperiment& e, int32_t step) { return e.core().threshold(step); })
      .def("bucket_map", &PyExperiment::bucket_map, py::arg("step"))
      .def_property_readonly("traffic_salt",
                             [](const PyExperiment& e) { return e.core().traffic_salt(); })
      .def_property_readonly("arm_salt", [](const PyExperiment& e) { return e.core().arm_salt(); });
}

}  // namespace trafficsplit::bindings
