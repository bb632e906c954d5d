"""Experiments: arms with weights, an exposure, and an allocation history that moves the
fewest units when weights change (docs/assignment-spec.md)."""

from __future__ import annotations

import copy
import datetime as _dt
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _display, _time, _units, hashing_modes
from ._core import assignment as _assignment
from ._core import hashing as _hashing
from ._frozen import FrozenDict, freeze
from ._shared.checks import check_text, check_threads, is_integer, is_real
from .batch import BatchAssignment
from .errors import ConfigError
from .targeting import Targeting

Assignment = _assignment.Assignment
Assignment.__module__ = "trafficsplit"

ALGORITHMS = ("xxh3", "murmur3")
MAX_BUCKETS: int = _hashing.MAX_BUCKETS
MAX_ARMS: int = _hashing.MAX_ARMS


@dataclass(frozen=True)
class Arm:
    """One version of the service: a unique name, a weight in percent, an optional payload.

    >>> Arm("treatment", 50, {"model": "ranker-v2"})
    Arm(name='treatment', weight=50, payload={'model': 'ranker-v2'})
    """

    name: str
    weight: float
    payload: Any = None


@dataclass(frozen=True)
class AllocationStep:
    """The weights (percent per arm) and exposure in force from ``effective`` on.

    ``effective=None`` is allowed only for the first step: it has always been in force.
    ``exposure=None`` in a history step means "the experiment's current exposure".
    """

    weights: Mapping[str, float]
    exposure: float | None = None
    effective: _dt.datetime | None = None
    _effective_us: int | None = field(default=None, repr=False, compare=False)


def _check_weight(value: Any, path: str) -> float:
    if not is_real(value):
        raise ConfigError(
            f"{path} must be a number (percent), got {type(value).__name__} {value!r}"
        )
    w = float(value)
    if not math.isfinite(w) or w < 0 or w > 100:
        raise ConfigError(f"{path} must be a percentage between 0 and 100, got {value!r}")
    return w


def _check_exposure(value: Any, path: str) -> float:
    if not is_real(value):
        raise ConfigError(
            f"{path} must be a number between 0 and 1, got {type(value).__name__} {value!r}"
        )
    x = float(value)
    if not math.isfinite(x) or x < 0 or x > 1:
        hint = f"; did you mean {x / 100:g} ({x:g} percent)?" if 1 < x <= 100 else ""
        raise ConfigError(f"{path} is a share of units between 0 and 1, got {value!r}{hint}")
    return x


def _check_sum(weights: Mapping[str, float], path: str) -> None:
    total = math.fsum(weights.values())
    if abs(total - 100.0) > 1e-9:
        listing = ", ".join(f"{k}={v:g}" for k, v in weights.items())
        hint = ""
        if abs(total - 1.0) <= 1e-9:
            hint = "; they look like fractions: give percentages (e.g. 50, 50)"
        raise ConfigError(
            f"{path} must sum to 100 (percent) within 1e-9, got {total:.10g} ({listing}){hint}"
        )


def _parse_arms(arms: Any) -> list[Arm]:
    if isinstance(arms, Mapping):
        items = [Arm(str(k) if isinstance(k, str) else k, v) for k, v in arms.items()]
    elif isinstance(arms, Iterable) and not isinstance(arms, str | bytes):
        items = []
        for i, a in enumerate(arms):
            if isinstance(a, Arm):
                items.append(a)
            elif isinstance(a, tuple) and len(a) in (2, 3):
                items.append(Arm(*a))
            else:
                raise ConfigError(
                    f"arms[{i}] must be an Arm(name, weight, payload) or a "
                    f"(name, weight) tuple, got {type(a).__name__}"
                )
    else:
        raise ConfigError(
            "arms must be a dict of name -> weight (percent) or a list of Arm, "
            f"got {type(arms).__name__}"
        )
    if not items:
        raise ConfigError("arms must name at least one arm")
    if len(items) > MAX_ARMS:
        raise ConfigError(f"at most {MAX_ARMS} arms are supported, got {len(items)}")
    seen: set[str] = set()
    out = []
    for i, a in enumerate(items):
        if not isinstance(a.name, str) or not a.name:
            raise ConfigError(f"arms[{i}].name must be a non-empty str, got {a.name!r}")
        # Arm names go into records, headers and Parquet files: valid Unicode only.
        check_text(a.name, f"arms[{i}].name", ConfigError)
        if a.name in seen:
            raise ConfigError(f"arms[{i}].name {a.name!r} is used twice; arm names must be unique")
        seen.add(a.name)
        weight = _check_weight(a.weight, f"arms[{i}].weight ({a.name!r})")
        out.append(Arm(a.name, weight, freeze(a.payload, f"arms[{i}].payload ({a.name!r})")))
    return out


def _parse_step(raw: Any, path: str, arm_names: Sequence[str]) -> AllocationStep:
    if isinstance(raw, AllocationStep):
        weights, exposure, effective = raw.weights, raw.exposure, raw.effective
    elif isinstance(raw, Mapping):
        unknown = set(raw) - {"weights", "exposure", "effective", "at"}
        if unknown:
            raise ConfigError(
                f"{path} has unknown keys {sorted(unknown)}; expected weights, exposure, at"
            )
        if "weights" not in raw:
            raise ConfigError(f"{path} needs 'weights'")
        weights = raw["weights"]
        exposure = raw.get("exposure")
        effective = raw.get("at", raw.get("effective"))
    else:
        raise ConfigError(f"{path} must be an AllocationStep or a dict, got {type(raw).__name__}")
    if not isinstance(weights, Mapping):
        raise ConfigError(f"{path}.weights must be a dict of arm name -> percent")
    checked = {}
    for name, w in weights.items():
        if name not in arm_names:
            raise ConfigError(
                f"{path}.weights names arm {name!r}, which is not among the arms "
                f"{list(arm_names)}; keep retired arms with weight 0"
            )
        checked[name] = _check_weight(w, f"{path}.weights[{name!r}]")
    _check_sum(checked, f"{path}.weights")
    full = FrozenDict({n: checked.get(n, 0.0) for n in arm_names})
    exp = None if exposure is None else _check_exposure(exposure, f"{path}.exposure")
    eff_us = None if effective is None else _time.to_micros(effective, f"{path}.at")
    eff = None if eff_us is None else _time.from_micros(eff_us)
    return AllocationStep(full, exp, eff, eff_us)


class Experiment:
    """An experiment: arms, exposure and allocation history, compiled once into the C++ core.

    >>> exp = Experiment("ranker-v2", {"control": 50, "treatment": 50}, exposure=0.2)
    >>> a = exp.assign("user-42")
    >>> a.reason in ("assigned", "not_exposed")
    True

    ``arms``: dict name -> weight in percent, or a list of :class:`Arm` (with payloads).
    ``exposure``: share of units that enter (0..1); raising it only adds units.
    ``salt``: defaults to ``key``; ``bucket_version`` >= 2 re-randomises on purpose.
    ``history``: earlier allocations, oldest first (:class:`AllocationStep` or dicts with
    ``weights``, ``exposure`` and ``at``); ``allocated_at``: when the current weights took effect.
    ``hashing``: ``"ts1"`` (trafficsplit's contract, the default) or a peer hashing mode that
    reproduces another system's bucketing, as a name or ``{"mode": name, **parameters}``
    (``"growthbook-v2"``, ``"unleash"``, ``"flagd"``, ...; docs/migration.md).
    """

    __slots__ = (
        "_algorithm",
        "_arms",
        "_bucket_version",
        "_buckets",
        "_compiled",
        "_hashing",
        "_key",
        "_peer",
        "_probabilities",
        "_salt",
        "_steps",
        "_targeting",
    )
    _algorithm: str
    _arms: tuple[Arm, ...]
    _bucket_version: int
    _buckets: int
    _compiled: _assignment.CompiledExperiment
    _hashing: hashing_modes.HashingMode | None
    _key: str
    _peer: dict[str, Any] | None
    _probabilities: np.ndarray | None
    _salt: str
    _steps: tuple[AllocationStep, ...]
    _targeting: Targeting | None

    def __init__(
        self,
        key: str,
        arms: Mapping[str, float] | Sequence[Arm],
        exposure: float = 1.0,
        salt: str | None = None,
        buckets: int = 10_000,
        algorithm: str = "xxh3",
        *,
        history: Sequence[AllocationStep | Mapping[str, Any]] = (),
        allocated_at: Any = None,
        bucket_version: int = 1,
        targeting: str | Targeting | None = None,
        hashing: str | Mapping[str, Any] | hashing_modes.HashingMode = "ts1",
    ) -> None:
        if not isinstance(key, str) or not key:
            raise ConfigError(f"key must be a non-empty str, got {key!r}")
        check_text(key, "key", ConfigError)
        if salt is None:
            salt = key
        if not isinstance(salt, str) or not salt:
            raise ConfigError(f"salt must be a non-empty str, got {salt!r}")
        check_text(salt, "salt", ConfigError)
        if not is_integer(buckets):
            raise ConfigError(f"buckets must be an int, got {type(buckets).__name__} {buckets!r}")
        if not 1 <= int(buckets) <= MAX_BUCKETS:
            raise ConfigError(f"buckets must be between 1 and {MAX_BUCKETS:,}, got {buckets}")
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
        if not is_integer(bucket_version) or not 1 <= int(bucket_version) < 2**32:
            raise ConfigError(f"bucket_version must be an int >= 1, got {bucket_version!r}")
        mode = hashing_modes.resolve(hashing, key, salt)
        if mode is not None:
            for name, value, default in (
                ("buckets", buckets, 10_000),
                ("algorithm", algorithm, "xxh3"),
                ("bucket_version", bucket_version, 1),
            ):
                if value != default:
                    raise ConfigError(
                        f"{name} belongs to the ts1 contract; hashing mode {mode.name!r} fixes "
                        f"its own (re-randomise through the mode's seed or salt), got {value!r}"
                    )
        parsed_arms = _parse_arms(arms)
        names = [a.name for a in parsed_arms]
        current_exposure = _check_exposure(exposure, "exposure")
        _check_sum({a.name: a.weight for a in parsed_arms}, "arm weights")

        if isinstance(history, Mapping | str | bytes) or not isinstance(history, Iterable):
            raise ConfigError("history must be a list of allocation steps, oldest first")
        steps = [_parse_step(h, f"history[{i}]", names) for i, h in enumerate(history)]
        steps = [
            AllocationStep(
                s.weights,
                current_exposure if s.exposure is None else s.exposure,
                s.effective,
                s._effective_us,
            )
            for s in steps
        ]
        current_us = None if allocated_at is None else _time.to_micros(allocated_at, "allocated_at")
        if steps and current_us is None:
            raise ConfigError(
                "allocated_at is required when history is given: it says when "
                "the current weights took effect"
            )
        steps.append(
            AllocationStep(
                FrozenDict({a.name: a.weight for a in parsed_arms}),
                current_exposure,
                None if current_us is None else _time.from_micros(current_us),
                current_us,
            )
        )
        for i in range(1, len(steps)):
            label = f"history[{i}]" if i < len(steps) - 1 else "allocated_at"
            at_us, before_us = steps[i]._effective_us, steps[i - 1]._effective_us
            if at_us is None:
                raise ConfigError(f"{label} needs a time: only the first allocation may omit it")
            if before_us is not None and at_us < before_us:
                raise ConfigError(
                    f"{label} ({_time.from_micros(at_us).isoformat()}) is earlier than the step "
                    f"before it ({_time.from_micros(before_us).isoformat()}); "
                    "history runs oldest first"
                )

        self._targeting = None if targeting is None else Targeting(targeting)
        self._key = key
        self._salt = salt
        self._hashing = mode
        self._buckets = int(buckets) if mode is None else mode.buckets
        self._peer = peer = (
            None
            if mode is None
            else mode.compile(names, [([s.weights[n] for n in names], _exposure(s)) for s in steps])
        )
        self._algorithm = algorithm
        self._bucket_version = int(bucket_version)
        self._arms = tuple(parsed_arms)
        self._steps = tuple(steps)
        self._probabilities = None  # per step and arm, made on first use
        self._compiled = _assignment.CompiledExperiment(
            key,
            salt,
            self._bucket_version,
            algorithm,
            self._buckets,
            tuple(names),
            tuple(a.payload for a in parsed_arms),
            [(s._effective_us, _exposure(s), [s.weights[n] for n in names]) for s in steps],
            peer,
        )

    # -- assignment -------------------------------------------------------------------------

    def assign(
        self,
        unit: str | int | bytes | None,
        at: Any = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Assignment:
        """Assigns one unit; a missing unit (None, NaN, pandas NA) gives reason 'missing_unit'.

        ``at``: replay the allocation in force at that time (datetime, ISO string, epoch
        seconds); before the first allocation the reason is 'not_started'.
        ``attributes``: the request's attributes, for the experiment's targeting; a unit
        outside the cohort gets reason 'targeting_miss'.
        Raises UnitTypeError for floats, bools and other types.

        >>> Experiment("e", {"a": 100}).assign("u1").arm
        'a'
        """
        eligible = self._targeting is None or self._targeting.matches(attributes)
        if at is None:
            return self._compiled.assign_step(unit, len(self._steps) - 1, eligible)
        return self._compiled.assign(unit, _time.to_micros(at), eligible)

    def assign_batch(
        self, units: Any, at: Any = None, threads: int | None = None, attributes: Any = None
    ) -> BatchAssignment:
        """Assigns every unit of a column; row i equals ``assign(units[i])``.

        ``units``: list, numpy array (integers, str, bytes, object), pandas Series or Index
        (numpy-backed, nullable, string, Arrow-backed, categorical), pyarrow (chunked) array.
        ``at``: one time for all rows, or one time per row (replay).
        ``threads``: None for all cores; results do not depend on it.
        ``attributes``: a table with one row per unit (DataFrame, pyarrow Table, dict of
        arrays) for the experiment's targeting; rows outside the cohort get 'targeting_miss'.
        """
        return self.assign_units(_units.UnitBatch.of(units), at, threads, attributes)

    def assign_units(
        self,
        units: _units.UnitBatch,
        at: Any = None,
        threads: int | None = None,
        attributes: Any = None,
        route: Any = None,
    ) -> BatchAssignment:
        """:meth:`assign_batch` on unit ids converted once (``UnitBatch.of(units)``), so that
        several experiments share the conversion; ``at`` may also be per-row times converted
        once (``trafficsplit._time.Micros``). ``route``: a configuration's stages around the
        experiment (a core ``Route``: holdouts, layer, status and time window), applied by the
        core first, as ``Route.assign`` does (the Splitter's ``assign_frame``)."""
        nthreads = check_threads(threads)
        chunks = units.chunks
        n = units.rows
        step = len(self._steps) - 1
        at_us = None
        now_us = None  # the route's time for every row
        if isinstance(at, _time.Micros):
            if len(at.rows) != n:
                raise ConfigError(
                    f"at must hold one time per unit id: {n} unit ids, {len(at.rows)}"
                )
            at_us = at.rows
        elif at is not None:
            if _is_scalar_time(at):
                now_us = _time.to_micros(at)
                step = self._compiled.step_at(now_us)
            else:
                at_us = _time.micros_array(at, n)
        routing = None if route is None else (route, now_us)
        eligible = None
        if self._targeting is not None:
            eligible = self._targeting.mask(
                {} if attributes is None else attributes, threads=threads
            )
            if len(eligible) != n:
                raise ConfigError(
                    f"attributes have {len(eligible)} rows but there are {n} "
                    "unit ids; give one row of attributes per unit"
                )
        elif attributes is not None and len(attributes) and _rows(attributes) != n:
            raise ConfigError(
                f"attributes have {_rows(attributes)} rows but there are {n} "
                "unit ids; give one row of attributes per unit"
            )
        if len(chunks) == 1 and not isinstance(chunks[0], _units.DictionaryChunk):
            arm, bucket, reason = self._assign_chunk(
                chunks[0], step, at_us, nthreads, None, eligible, routing
            )
        else:
            arm = np.empty(n, np.int16)
            bucket = np.empty(n, np.int32)
            reason = np.empty(n, np.uint8)
            start = 0
            for chunk in chunks:
                end = start + len(chunk)
                times = None if at_us is None else at_us[start:end]
                out = (arm[start:end], bucket[start:end], reason[start:end])
                mask = None if eligible is None else eligible[start:end]
                self._assign_chunk(chunk, step, times, nthreads, out, mask, routing)
                start = end
        index = units.index
        # The weights every row was assigned under: SRM of the batch checks its counts on them.
        weights = (
            None if at_us is not None or step < 0 else tuple(self._steps[step].weights.values())
        )
        return BatchAssignment(
            self._key,
            tuple(a.name for a in self._arms),
            arm,
            bucket,
            reason,
            index=index,
            weights=weights,
        )

    def _assign_chunk(
        self,
        chunk: _units.Chunk,
        step: int,
        at_us: np.ndarray | None,
        threads: int,
        out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        eligible: np.ndarray | None = None,
        routing: tuple[Any, int | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One chunk through the core; ``routing`` = (Route, the time of every row or None)."""
        if isinstance(chunk, _units.DictionaryChunk):
            arm, bucket, reason = self._assign_dictionary(chunk, step, at_us, threads, out, routing)
            if eligible is not None:
                # Each distinct id was assigned once; targeting is the row's, in its place in
                # the core's order.
                _assignment.apply_row_reasons(eligible, None, (arm, bucket, reason))
            return arm, bucket, reason
        # A Route runs the experiment's kernels with its stages first; it takes the time of
        # every row as one more argument.
        core, extra = (self._compiled, ()) if routing is None else (routing[0], (routing[1],))
        if isinstance(chunk, _units.SequenceChunk):
            return core.assign_sequence(chunk.values, step, at_us, out, eligible, *extra)
        return core.assign_column(chunk, step, at_us, threads, out, eligible, *extra)

    def _assign_dictionary(
        self,
        chunk: _units.DictionaryChunk,
        step: int,
        at_us: np.ndarray | None,
        threads: int,
        out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        routing: tuple[Any, int | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Assigns each distinct id once, then gathers by code (code -1 reads the sentinel
        'missing' entry appended at the end), in the core: the codes are read at their own
        width and the results written straight into the outputs."""
        codes = chunk.codes
        missing = (-1, -1, _REASON_CODE["missing_unit"])
        dtypes = (np.int16, np.int32, np.uint8)

        def parts(s: int) -> list[tuple[np.ndarray, ...]]:
            # With per-row times the route's time window is applied to the rows below.
            return [
                self._assign_chunk(c, s, None, threads, None, None, routing) for c in chunk.values
            ]

        if at_us is None:
            arm, bucket, reason = _units.spread_by_codes(
                parts(step), missing, dtypes, codes, threads, out
            )
            return arm, bucket, reason
        if out is None:
            n = len(codes)
            out = (np.empty(n, dtypes[0]), np.empty(n, dtypes[1]), np.empty(n, dtypes[2]))
        steps = self._compiled.steps_at(at_us)
        for s in np.unique(steps):
            rows = np.flatnonzero(steps == s)
            picked = np.ascontiguousarray(codes[rows])
            gathered = _units.spread_by_codes(parts(int(s)), missing, dtypes, picked, threads)
            for target, values in zip(out, gathered, strict=True):
                target[rows] = values
        if routing is not None:
            # The route's time window is the row's own (its time), in its place in the order.
            _assignment.apply_row_reasons(None, routing[0].window_reasons(at_us), out)
        return out

    # -- re-allocation ----------------------------------------------------------------------

    def reallocate(
        self,
        weights: Mapping[str, float] | Sequence[Arm] | None = None,
        *,
        exposure: float | None = None,
        effective: Any = None,
    ) -> Experiment:
        """A new experiment with one more allocation step: these weights (and/or exposure)
        from ``effective`` on (default: now). Units move only where they must: the moved share
        is the total-variation distance between the old and new weights.

        ``weights`` must give every current arm a weight (0 retires one); names not yet among
        the arms add arms (pass :class:`Arm` objects to give them payloads).
        """
        arms = list(self._arms)
        current = self._steps[-1]
        if weights is None:
            new_weights = dict(current.weights)
        else:
            if isinstance(weights, Mapping):
                new_weights = {}
                for name, w in weights.items():
                    if not isinstance(name, str) or not name:
                        raise ConfigError(f"weights keys must be arm names, got {name!r}")
                    new_weights[name] = _check_weight(w, f"weights[{name!r}]")
                payloads: dict[str, Any] = {}
            else:
                new_arms = _parse_arms(weights)
                new_weights = {a.name: a.weight for a in new_arms}
                payloads = {a.name: a.payload for a in new_arms}
            missing = [a.name for a in arms if a.name not in new_weights]
            if missing:
                raise ConfigError(
                    f"weights must give every arm a weight; missing {missing} "
                    "(give 0 to retire an arm)"
                )
            _check_sum(new_weights, "weights")
            known = {a.name for a in arms}
            arms = [Arm(a.name, new_weights[a.name], a.payload) for a in arms]
            for name, w in new_weights.items():
                if name not in known:
                    arms.append(Arm(name, w, payloads.get(name)))
        new_exposure = (
            _exposure(current) if exposure is None else _check_exposure(exposure, "exposure")
        )
        eff = _dt.datetime.now(_dt.UTC) if effective is None else effective
        history = [AllocationStep(s.weights, s.exposure, s.effective) for s in self._steps]
        return Experiment(
            self._key,
            arms,
            new_exposure,
            self._salt,
            self._buckets if self._hashing is None else 10_000,  # a mode fixes its own
            self._algorithm,
            history=history,
            allocated_at=eff,
            bucket_version=self._bucket_version,
            targeting=self._targeting,
            hashing=self._hashing or "ts1",
        )

    def moved_fraction(self, other: Experiment) -> float:
        """The share of buckets whose arm (by name) differs between this experiment's current
        allocation and ``other``'s. Both must hash alike (salt, buckets, algorithm, version)."""
        if not isinstance(other, Experiment):
            raise TypeError(f"moved_fraction compares two Experiments, got {type(other).__name__}")
        for attr in ("salt", "buckets", "algorithm", "bucket_version", "hashing"):
            if getattr(self, attr) != getattr(other, attr):
                raise ConfigError(
                    f"moved_fraction compares two allocations of one experiment, but {attr} "
                    f"differs ({getattr(self, attr)!r} vs {getattr(other, attr)!r}): every unit "
                    "is re-randomised"
                )
        mine = np.array([a.name for a in self._arms], dtype=object)[self.bucket_map()]
        theirs = np.array([a.name for a in other._arms], dtype=object)[other.bucket_map()]
        return float(np.count_nonzero(mine != theirs)) / self._buckets

    # -- inspection -------------------------------------------------------------------------

    def _step_index(self, at: Any) -> int:
        if at is None:
            return len(self._steps) - 1
        step = self._compiled.step_at(_time.to_micros(at))
        if step < 0:
            raise ConfigError(f"the experiment had no allocation at {at!r}")
        return int(step)

    def step_at(self, at_us: int) -> int:
        """The index in :attr:`steps` of the allocation in force at ``at_us`` (microseconds
        since the epoch, UTC); -1 before the first step."""
        return int(self._compiled.step_at(at_us))

    def steps_at(self, at_us: np.ndarray) -> np.ndarray:
        """:meth:`step_at` of each time of an array."""
        return self._compiled.steps_at(np.ascontiguousarray(at_us, np.int64))

    def bucket_map(self, at: Any = None) -> np.ndarray:
        """Arm index (int16) for each arm bucket 0..buckets-1, at a time or now (-1 for a
        bucket outside a peer mode's coverage)."""
        step = self._step_index(at)
        if self._hashing is None:
            return self._compiled.bucket_map(step)
        return hashing_modes.bucket_map(self._hashing, self._peer_spec(), step)

    def arm_buckets(self, at: Any = None) -> dict[str, np.ndarray]:
        """The sorted arm buckets each arm owns, at a time or now."""
        m = self.bucket_map(at)
        return {a.name: np.flatnonzero(m == i).astype(np.int32) for i, a in enumerate(self._arms)}

    def exposed_buckets(self, at: Any = None) -> int:
        """How many traffic buckets enter: traffic bucket < this number means exposed."""
        self._ts1_only("exposed_buckets")
        return int(self._compiled.threshold(self._step_index(at)))

    def _ts1_only(self, what: str) -> None:
        if self._hashing is not None:
            raise ConfigError(
                f"{what} belongs to the ts1 contract; experiment {self._key!r} hashes in mode "
                f"{self._hashing.name!r} (see Experiment.hashing and docs/assignment-spec.md)"
            )

    @property
    def peer_spec(self) -> dict[str, Any] | None:
        """A peer hashing mode's compiled form (its key functions and, per allocation step,
        the key ranges of each arm: what the core evaluates); None under ts1. A copy."""
        return None if self._peer is None else copy.deepcopy(self._peer)

    def _peer_spec(self) -> dict[str, Any]:
        assert self._peer is not None
        return self._peer

    def probability_table(self) -> np.ndarray:
        """``[step, arm]``: the probability that a unit reaching the experiment is served the
        arm under the allocation step: (exposed traffic buckets / B) x (arm buckets / B). What
        exposure records log as ``probability``. Read-only, made once."""
        table = self._probabilities
        if table is None:
            c = self._compiled
            arms = len(self._arms)
            table = np.zeros((len(self._steps), arms))
            if self._hashing is not None:
                table[:] = hashing_modes.probabilities(self._hashing, self._peer_spec(), arms)
            for s in range(len(self._steps) if self._hashing is None else 0):
                m = c.bucket_map(s)
                owned = np.bincount(m[m >= 0], minlength=arms)[:arms]
                table[s] = (c.threshold(s) / self._buckets) * (owned / self._buckets)
            table.flags.writeable = False
            self._probabilities = table
        return table

    def assignment_probabilities(self, at: Any = None) -> dict[str, float]:
        """Each arm's row of :meth:`probability_table` for the step in force at ``at`` (default:
        the current step)."""
        row = self.probability_table()[self._step_index(at)]
        return dict(zip(self.arm_names, row.tolist(), strict=True))

    @property
    def key(self) -> str:
        return self._key

    @property
    def salt(self) -> str:
        return self._salt

    @property
    def buckets(self) -> int:
        return self._buckets

    @property
    def algorithm(self) -> str:
        return self._algorithm

    @property
    def hashing(self) -> dict[str, Any]:
        """The hashing mode: ``{"mode": "ts1"}``, or a peer mode with every parameter."""
        return {"mode": "ts1"} if self._hashing is None else self._hashing.as_dict()

    @property
    def bucket_version(self) -> int:
        return self._bucket_version

    @property
    def arms(self) -> tuple[Arm, ...]:
        """The arms with their current weights."""
        return self._arms

    @property
    def arm_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self._arms)

    @property
    def weights(self) -> dict[str, float]:
        """Current weights in percent."""
        return dict(self._steps[-1].weights)

    @property
    def exposure(self) -> float:
        """Current exposure (0..1)."""
        return _exposure(self._steps[-1])

    @property
    def steps(self) -> tuple[AllocationStep, ...]:
        """The allocation history including the current step, oldest first."""
        return self._steps

    @property
    def allocated_at(self) -> _dt.datetime | None:
        return self._steps[-1].effective

    @property
    def targeting(self) -> Targeting | None:
        """The compiled targeting expression, or None for everyone."""
        return self._targeting

    @property
    def compiled(self) -> _assignment.CompiledExperiment:
        """The core's compiled form (bucket maps per step, seeded hashers): what a
        configuration's route wraps and the batch kernels evaluate."""
        return self._compiled

    @property
    def traffic_salt(self) -> str:
        """The salt of the exposure stage (see docs/assignment-spec.md)."""
        self._ts1_only("traffic_salt")
        return self._compiled.traffic_salt

    @property
    def arm_salt(self) -> str:
        """The salt of the arm stage."""
        self._ts1_only("arm_salt")
        return self._compiled.arm_salt

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description from which ``Experiment.from_dict`` rebuilds this one."""
        out = {
            "key": self._key,
            "salt": self._salt,
            "buckets": self._buckets,
            "algorithm": self._algorithm,
            "bucket_version": self._bucket_version,
            "exposure": self.exposure,
            "arms": [
                {"name": a.name, "weight": a.weight, "payload": a.payload} for a in self._arms
            ],
            "targeting": None if self._targeting is None else self._targeting.expression,
            "targeting_lists": None if self._targeting is None else self._targeting.lists,
            "allocated_at": None if self.allocated_at is None else self.allocated_at.isoformat(),
            "history": [
                {
                    "at": None if s.effective is None else s.effective.isoformat(),
                    "weights": dict(s.weights),
                    "exposure": s.exposure,
                }
                for s in self._steps[:-1]
            ],
        }
        if self._hashing is not None:
            out["hashing"] = self._hashing.as_dict()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Experiment:
        """Rebuilds an experiment from :meth:`to_dict` output."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"Experiment.from_dict needs a mapping, got {type(d).__name__}")
        missing = [k for k in ("key", "arms") if k not in d]
        if missing:
            raise ConfigError(
                f"Experiment.from_dict: missing {', '.join(map(repr, missing))}; expected "
                "the output of Experiment.to_dict()"
            )
        arms = []
        for i, a in enumerate(d["arms"]):
            if not isinstance(a, Mapping) or "name" not in a or "weight" not in a:
                raise ConfigError(
                    f"Experiment.from_dict: arms[{i}] must be a mapping with 'name' and "
                    f"'weight', got {a!r:.80}"
                )
            arms.append(Arm(a["name"], a["weight"], a.get("payload")))
        return cls(
            d["key"],
            arms,
            d.get("exposure", 1.0),
            d.get("salt"),
            d.get("buckets", 10_000) if "hashing" not in d else 10_000,
            d.get("algorithm", "xxh3"),
            history=d.get("history", ()),
            allocated_at=d.get("allocated_at"),
            bucket_version=d.get("bucket_version", 1),
            targeting=None
            if d.get("targeting") is None
            else Targeting(d["targeting"], d.get("targeting_lists")),
            hashing=d.get("hashing", "ts1"),
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.to_dict(),))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Experiment):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def _arm_rows(self) -> list[tuple[Any, ...]]:
        probabilities = self.probability_table()[-1]
        if self._hashing is not None and self._hashing.scaled:
            owned = np.zeros(len(self._arms), np.int64)  # buckets are a view of a finer key
        else:
            m = self.bucket_map()
            owned = np.bincount(m[m >= 0], minlength=len(self._arms))
        return [
            (a.name, a.weight, int(owned[i]), float(probabilities[i]))
            for i, a in enumerate(self._arms)
        ]

    def _title(self) -> str:
        n, steps = len(self._arms), len(self._steps)
        return (
            f"Experiment {_display.shorten(repr(self._key))}: {n} arm{'s' if n != 1 else ''}, "
            f"exposure {self.exposure:g}, {self._buckets:,} buckets, "
            f"{self._algorithm if self._hashing is None else self._hashing.name}, "
            f"{steps} allocation step{'s' if steps != 1 else ''}"
        )

    def _step_rows(self) -> list[tuple[Any, ...]]:
        # Newest first: the current allocation, then the ones before it.
        rows = []
        for i in range(len(self._steps) - 1, -1, -1):
            s = self._steps[i]
            at = "always" if s.effective is None else s.effective.isoformat()
            weights = ", ".join(
                f"{_display.shorten(n, 20)} {w:g}" for n, w in list(s.weights.items())[:8]
            )
            if len(s.weights) > 8:
                weights += f", ... {len(s.weights) - 8} more"
            rows.append((i, at, _exposure(s), weights))
        return rows

    def __repr__(self) -> str:
        """One line, then the arms: weight (percent), arm buckets owned and the share of
        units that reach the experiment and get the arm (exposure x arm buckets / buckets)."""
        rows = [(name, w, b, _display.percent(p)) for name, w, b, p in self._arm_rows()]
        table = _display.text_table(("arm", "weight %", "buckets", "share of units"), rows)
        return f"{self._title()}\n{table}"

    def _repr_html_(self) -> str:
        rows = self._arm_rows()
        bar = _display.bar(
            [(name, p) for name, _, _, p in rows], rest=f"not exposed ({1 - self.exposure:g})"
        )
        arms = _display.html_table(
            ("arm", "weight %", "buckets", "share of units"),
            [(name, w, b, _display.percent(p)) for name, w, b, p in rows],
        )
        extra = f"salt {self._salt!r}, bucket version {self._bucket_version}"
        if self._targeting is not None:
            extra += f", targeting {self._targeting.expression}"
        history = _display.html_table(
            ("step", "from", "exposure", "weights %"), self._step_rows(), limit=10
        )
        return _display.block(
            self._title(),
            _display.shorten(extra, 300),
            bar,
            _display.legend([name for name, *_ in rows]),
            arms,
            _display.Html("<p>Allocation history, newest first:</p>")
            if len(self._steps) > 1
            else "",
            history if len(self._steps) > 1 else "",
        )


def _exposure(step: AllocationStep) -> float:
    # An experiment gives each of its steps an exposure when it is built.
    assert step.exposure is not None
    return step.exposure


def _rebuild(d: Mapping[str, Any]) -> Experiment:
    return Experiment.from_dict(d)


_REASON_CODE = {name: i for i, name in enumerate(_assignment.REASONS)}


def _rows(table: Any) -> int:
    if hasattr(table, "num_rows"):
        return int(table.num_rows)
    if isinstance(table, Mapping):
        return len(next(iter(table.values())))
    return len(table)


def _is_scalar_time(at: Any) -> bool:
    if isinstance(at, str | bytes | _dt.date | np.datetime64 | numbers.Real):
        return True
    return np.ndim(at) == 0
