"""The client model servers ask for every decision: experiments, layers, holdouts, flags and
rollouts from one configuration snapshot, swapped atomically on reload."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time as _clock
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _display, _time, _units
from ._core import assignment as _assignment
from ._frames import FrameInput, arrow_override_rows, is_pandas, object_values
from ._optional import loaded
from ._shared.keys import unit_key, unit_key_or_none
from .batch import REASONS, BatchAssignment
from .config import (
    ExperimentConfig,
    FlagConfig,
    Snapshot,
    config_files,
    load_config,
    parse_config,
)
from .errors import ArgumentError, ConfigError
from .experiment import Assignment
from .telemetry.logger import ExposureLogger
from .telemetry.propagation import (
    Propagated,
    PropagationContext,
    PropagationKeys,
    RequestContext,
    Trust,
    check_trust,
    keys_of,
    trust_refusal,
)
from .telemetry.propagation import (
    current as current_request,
)
from .telemetry.records import ExposureInfo, bulk_table
from .telemetry.sinks import ExposureSink

__all__ = ["FlagEvaluation", "Splitter"]

log = logging.getLogger("trafficsplit")

_CODE = {name: i for i, name in enumerate(REASONS)}
_MISSING = object()


@dataclass(frozen=True)
class FlagEvaluation:
    """A flag's value with how it was decided (OpenFeature-style reason and variant)."""

    key: str
    value: Any
    variant: str | None
    reason: str  # disabled, prerequisite_failed, targeting_match, split, default, error
    version: str


class Splitter:
    """Every experiment and flag of a configuration, evaluated on one immutable snapshot.

    >>> sp = Splitter({"experiments": [{"key": "e", "arms": {"a": 50, "b": 50}}]})
    >>> sp.assign("e", "user-1").reason
    'assigned'

    ``config``: a mapping (as loaded from YAML/JSON), a :class:`~trafficsplit.config.Snapshot`,
    or a path. ``sticky``: a :class:`~trafficsplit.sticky.StickyStore`; a unit then keeps its
    first arm (reason ``sticky``) until the experiment's bucket version changes.
    ``exposures``: an :class:`~trafficsplit.ExposureLogger`, or a sink (or list of sinks, or a
    callable) to make one with default settings; every per-request decision with an arm then
    leaves an exposure record (docs/telemetry.md).
    ``trust``: a ceiling on the upstream arms this Splitter honours, whatever a context admits:
    ``"none"``, ``"signed"`` or ``"any"`` (None: what each context's own ``trust`` says; a
    context made from headers admits none unless told). ``propagation_key`` verifies tags when
    the ceiling is ``"signed"`` and a context has no keys of its own (default: the
    ``TRAFFICSPLIT_PROPAGATION_KEYS`` variable).
    """

    def __init__(
        self,
        config: Mapping[str, Any] | Snapshot | str | os.PathLike[str],
        sticky: Any = None,
        exposures: Any = None,
        *,
        trust: Trust | None = None,
        propagation_key: Any = None,
    ) -> None:
        if isinstance(config, Snapshot):
            snapshot = config
        elif isinstance(config, Mapping):
            snapshot = parse_config(config)
        elif isinstance(config, str | os.PathLike):
            snapshot = load_config(config)
        else:
            raise ConfigError(
                f"config must be a mapping, a Snapshot or a path, got {type(config).__name__}"
            )
        self._trust = None if trust is None else check_trust(trust)
        self._keys: PropagationKeys | None = keys_of(propagation_key)
        self._counts: dict[str, int] = {}
        self._counts_lock = threading.Lock()
        self._state = _state(snapshot)
        self._sticky = sticky
        self._exposures: ExposureLogger | None = None
        self._owns_exposures = False
        if isinstance(exposures, ExposureLogger):
            self._exposures = exposures
        elif exposures is not None:
            if not isinstance(exposures, ExposureSink | list | tuple) and not callable(exposures):
                raise ConfigError(
                    "exposures must be an ExposureLogger, a sink, a list of sinks or a "
                    f"callable, got {type(exposures).__name__}"
                )
            self._exposures = ExposureLogger(exposures)
            self._owns_exposures = True
        self._paths: tuple[Path, ...] = ()
        self._watch_interval = 1.0
        self._stamps: dict[Path, tuple[int, ...]] = {}
        # Stamps seen changed by the last poll, waiting to be seen again unchanged.
        self._pending: dict[Path, tuple[int, ...]] | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._lock = threading.Lock()
        self.reload_errors = 0
        self.reloads = 0
        self._listeners: tuple[Callable[..., object], ...] = ()
        self._listeners_lock = threading.Lock()

    # -- construction and reload -------------------------------------------------------------

    @classmethod
    def from_file(
        cls,
        *paths: str | os.PathLike[str],
        watch: bool = False,
        interval: float = 1.0,
        sticky: Any = None,
        exposures: Any = None,
        trust: Trust | None = None,
        propagation_key: Any = None,
    ) -> Splitter:
        """Loads files or folders; with ``watch=True`` a background thread re-reads them when
        they change, swapping in a new snapshot only when it validates (the last good one
        keeps serving otherwise). The watcher restarts itself in children after ``fork()``."""
        sp = cls(
            load_config(*paths), sticky, exposures, trust=trust, propagation_key=propagation_key
        )
        sp._paths = tuple(Path(p) for p in paths)
        sp._watch_interval = interval
        sp._stamps = sp._current_stamps()
        if watch:
            sp._start_watcher()
            _WATCHING.add(sp)
        return sp

    @property
    def version(self) -> str:
        """The version of the snapshot in force (a hash of its configuration)."""
        return self._state[0].version

    @property
    def snapshot(self) -> Snapshot:
        """The configuration snapshot in force."""
        return self._state[0]

    @property
    def stats(self) -> dict[str, Any]:
        """What this Splitter did beyond plain assignments: ``reloads`` and ``reload_errors``;
        ``propagated`` (upstream arms served) and ``propagated_mismatch`` (of those, where this
        service's own evaluation differs); ``propagation_refused``: upstream arms refused, by
        why (untrusted, unsigned, unknown_key, bad_signature, unknown_arm, version_mismatch,
        missing_unit, override, stopped, not_started)."""
        with self._counts_lock:
            counts = dict(self._counts)
        return {
            "reloads": self.reloads,
            "reload_errors": self.reload_errors,
            "propagated": counts.pop("served", 0),
            "propagated_mismatch": counts.pop("mismatch", 0),
            "propagation_refused": dict(sorted(counts.items())),
        }

    def _count(self, what: str, mismatch: bool = False) -> None:
        with self._counts_lock:
            self._counts[what] = self._counts.get(what, 0) + 1
            if mismatch:
                self._counts["mismatch"] = self._counts.get("mismatch", 0) + 1

    @property
    def exposures(self) -> ExposureLogger | None:
        """The exposure logger, if any (its ``counters()`` say what was written)."""
        return self._exposures

    def _current_stamps(self) -> dict[Path, tuple[int, ...]]:
        stamps: dict[Path, tuple[int, ...]] = {}
        for p in self._paths:
            try:
                files = config_files(p)
            except ConfigError:
                stamps[p] = (-1, -1, -1, -1)
                continue
            for f in files:
                try:
                    st = f.stat()
                    # The inode catches files swapped in by rename with an old mtime (cp -p).
                    stamps[f] = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)
                except OSError:
                    stamps[f] = (-1, -1, -1, -1)
        return stamps

    def on_reload(self, callback: Callable[..., object]) -> Callable[[], None]:
        """Calls ``callback(old_version, new_version)`` after each reload that puts a new
        snapshot in force, and ``callback(error)`` after each reload that fails (the last good
        snapshot keeps serving); returns a function that stops the calls. Callbacks run on the
        thread that reloaded (the watcher's, with ``watch=True``), after the swap; one that
        raises is logged and the others still run.

        >>> sp = Splitter({})
        >>> stop = sp.on_reload(print)
        >>> stop()
        """
        with self._listeners_lock:
            self._listeners = (*self._listeners, callback)

        def unsubscribe() -> None:
            with self._listeners_lock:
                self._listeners = tuple(c for c in self._listeners if c is not callback)

        return unsubscribe

    def _notify(self, *args: object) -> None:
        for callback in self._listeners:
            try:
                callback(*args)
            except Exception:  # a listener must not stop a reload or the watcher
                log.exception("trafficsplit: reload listener %r", callback)

    def reload(self) -> bool:
        """Re-reads the files now. True when a new snapshot is in force; on an invalid
        configuration logs every problem, keeps the last good snapshot and returns False. Files
        that change while they are read (a write still going on) are not taken: the watcher
        tries again once they are stable. Listeners (:meth:`on_reload`) are told after."""
        if not self._paths:
            raise ConfigError("reload() needs a Splitter made with from_file()")
        done, event = self._reload()
        if event:
            self._notify(*event)
        return done

    def _reload(self) -> tuple[bool, tuple[object, ...]]:
        """One reload under the lock: whether a new snapshot is in force, and what to tell
        the listeners (nothing, (old, new) or (error,))."""
        with self._lock:
            before = self._current_stamps()
            self._stamps = before
            self._pending = None
            current = self.snapshot
            try:
                snapshot = load_config(*self._paths)
                if self._current_stamps() != before:
                    self._stamps = {}  # seen as changed at the next poll, and read again
                    log.info("trafficsplit: configuration changed while being read; not taken")
                    return False, ()
            except Exception as exc:  # a server keeps serving whatever the files hold
                self.reload_errors += 1
                log.error(
                    "trafficsplit: configuration not reloaded, still serving %s: %s",
                    current.version,
                    exc,
                )
                return False, (exc,)
            if snapshot.version == current.version:
                return False, ()
            if not (snapshot.experiments or snapshot.flags) and (
                current.experiments or current.flags
            ):
                # A file caught mid-write (truncated) reads as an empty configuration; an empty
                # configuration never replaces one that serves something.
                self.reload_errors += 1
                log.error(
                    "trafficsplit: the configuration became empty; still serving %s",
                    current.version,
                )
                empty = ConfigError(
                    f"the configuration became empty; still serving {current.version}"
                )
                return False, (empty,)
            # One reference swap: readers see the old state or the new one, never a mix.
            self._state = _state(snapshot)
            self.reloads += 1
            log.info("trafficsplit: configuration %s in force", snapshot.version)
            return True, (current.version, snapshot.version)

    def _poll(self) -> bool:
        """One look at the files by the watcher: a change is taken once the files are stable,
        unchanged across two polls (an editor's or ``cat >``'s rewrite is never taken half
        done; an atomic rename is taken one interval later)."""
        now = self._current_stamps()
        if now == self._stamps:
            self._pending = None
            return False
        if now != self._pending:
            self._pending = now
            return False
        return self.reload()

    def _start_watcher(self) -> None:
        self._stop.clear()
        ref = weakref.ref(self)

        def run() -> None:
            while True:
                sp = ref()
                if sp is None or sp._stop.wait(sp._watch_interval):
                    return
                try:
                    sp._poll()
                except Exception:  # the watcher must outlive any single failure
                    log.exception("trafficsplit: configuration watcher")
                del sp

        self._watcher = threading.Thread(target=run, name="trafficsplit-watch", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        """Stops the watcher (if any) and writes the queued exposure records: the logger made
        from ``exposures=<sink>`` is closed, a logger passed in is flushed (close it yourself)."""
        self._stop.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout=5)
        self._watcher = None
        _WATCHING.discard(self)
        if self._exposures is not None:
            if self._owns_exposures:
                self._exposures.close()
            else:
                self._exposures.flush()

    def __enter__(self) -> Splitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        """The snapshot in force: a line of counts, then its experiments, flags, layers and
        holdouts (the first rows of each)."""
        title, tables = _display_tables(self.snapshot)
        text = [f"{header}:\n{_display.text_table(cols, rows)}" for header, cols, rows in tables]
        return "\n".join([title, *text])

    def _repr_html_(self) -> str:
        title, tables = _display_tables(self.snapshot)
        parts = []
        for header, cols, rows in tables:
            parts.append(_display.Html(f"<p>{_display.escape(header)}:</p>"))
            parts.append(_display.html_table(cols, rows))
        return _display.block(title, *parts)

    # -- experiments -------------------------------------------------------------------------

    def _experiment(self, snapshot: Snapshot, key: str) -> ExperimentConfig:
        try:
            return snapshot.experiments[key]
        except KeyError:
            raise _unknown_experiment(snapshot, key) from None

    def assign(
        self,
        experiment: str,
        unit: Any = None,
        attributes: Mapping[str, Any] | None = None,
        at: Any = None,
        *,
        context: PropagationContext | RequestContext | None = None,
        request_id: str | None = None,
        log_exposure: bool = True,
    ) -> Assignment:
        """Assigns one unit. ``unit`` defaults to ``attributes[<the experiment's unit>]``.

        Reasons, in order of precedence: missing_unit, override, stopped, not_started,
        propagated, holdout, layer_other, targeting_miss, not_exposed, assigned (sticky when a
        sticky store keeps an earlier arm).

        ``context``: decisions of upstream services (:func:`trafficsplit.propagation.
        from_headers`). An upstream arm that the trust settings admit (a valid tag for this
        unit with ``"signed"``), that names an arm of the experiment and the configured bucket
        version, is served (reason ``propagated``) unless the unit is missing or overridden or
        the experiment is stopped or not started; the exposure record notes whether this
        service's own evaluation agrees, and a refused arm is counted (:attr:`stats`) and named
        on the record (``propagation``). Inside a request served through the middleware the
        request's context is used by default. ``request_id`` goes into the exposure record
        (default: the context's). ``log_exposure=False`` leaves no exposure record.
        """
        snapshot, plans, _ = self._state
        plan = plans.get(experiment)
        if plan is None:
            raise _unknown_experiment(snapshot, experiment)
        # Online, "now" decides: scheduled steps (canaries), start and end take effect on time.
        at_us = _now_us() if at is None else _time.to_micros(at)
        if unit is None and attributes is not None:
            unit = attributes.get(plan.unit)
        ex = self._exposures
        req = current_request()
        if context is None and req is None:
            a = self._assign(plan, unit, attributes, at_us)
            if ex is not None and log_exposure:
                ex.log(at_us, unit, plan.exposure, a, attributes, request_id)
            return a
        return self._decide(
            plan, unit, attributes, at_us, context, req, request_id, ex if log_exposure else None
        )

    def _decide(
        self,
        plan: _Plan,
        unit: Any,
        attributes: Mapping[str, Any] | None,
        at_us: int,
        context: PropagationContext | RequestContext | None,
        req: RequestContext | None,
        request_id: str | None,
        ex: ExposureLogger | None,
    ) -> Assignment:
        """One decision with propagation: an upstream arm the trust settings and the
        configuration admit, this service's own evaluation otherwise; counted, noted in the
        request context and logged."""
        if unit is None and attributes is not None:
            unit = attributes.get(plan.unit)
        if isinstance(context, RequestContext):
            req, context = context, context.incoming
        elif context is None and req is not None:
            context = req.incoming
        upstream, why = (-1, None) if context is None else self._upstream(plan, unit, context)
        evaluated = None
        if upstream >= 0:
            # The core applies the precedence: override, stopped and not_started refuse it.
            a = self._assign(plan, unit, attributes, at_us, upstream=upstream)
            if a.reason == "propagated":
                why = "served"
                # This service's own evaluation (without touching the sticky store), to flag
                # disagreements.
                evaluated = self._assign(plan, unit, attributes, at_us, use_sticky=False)
            else:
                why = a.reason
        else:
            a = self._assign(plan, unit, attributes, at_us)
        if why is not None:
            self._count(why, evaluated is not None and evaluated.arm != a.arm)
        if req is not None and a.arm is not None:
            if why == "served" and context is not None:
                # Passed on as it came, with its tag if any (never signed anew here), and the
                # bucket version it was checked against.
                up = context[plan.key]
                if up.version is None:
                    up = dataclasses.replace(up, version=plan.bucket_version)
                req.decided[plan.key] = up
            else:
                key = unit_key_or_none(unit)  # to sign this decision when it is sent on
                req.decided[plan.key] = Propagated(plan.key, a.arm, plan.bucket_version, unit=key)
        if ex is not None:
            if request_id is None and context is not None:
                request_id = getattr(context, "request_id", None)
            ex.log(at_us, unit, plan.exposure, a, attributes, request_id, evaluated, why)
        return a

    def _upstream(
        self, plan: _Plan, unit: Any, context: PropagationContext
    ) -> tuple[int, str | None]:
        """The index of the upstream arm on offer for this experiment (-1 for none), and why
        one was refused (None when there was none, or it is on offer). The unit's key is made
        only where a tag must be checked against it."""
        p = context.get(plan.key)
        if p is None:
            return -1, context.refused.get(plan.key)
        trust, keys = context.trust, context.propagation_keys
        if self._trust is not None and _TRUST_RANK[self._trust] < _TRUST_RANK[trust]:
            trust, keys = self._trust, keys or self._keys  # the Splitter's ceiling is lower
        key = unit_key_or_none(unit) if trust == "signed" else None
        why = trust_refusal(trust, keys, p, key)
        if why is not None:
            return -1, why
        index = plan.arm_index.get(p.arm)
        if index is None:
            return -1, "unknown_arm"
        if p.version is not None and p.version != plan.bucket_version:
            return -1, "version_mismatch"
        return index, None

    def assign_all(
        self,
        unit: Any = None,
        attributes: Mapping[str, Any] | None = None,
        at: Any = None,
        *,
        context: PropagationContext | RequestContext | None = None,
        request_id: str | None = None,
        log_exposure: bool = True,
    ) -> dict[str, Assignment]:
        """Every experiment, evaluated on one snapshot (atomically with respect to reloads).
        ``context``, ``request_id`` and ``log_exposure`` as for :meth:`assign`."""
        _, plans, _ = self._state
        at_us = _now_us() if at is None else _time.to_micros(at)  # one moment for all of them
        out = {}
        ex = self._exposures if log_exposure else None
        req = current_request()
        if ex is not None or context is not None or req is not None:
            for k, p in plans.items():
                out[k] = self._decide(p, unit, attributes, at_us, context, req, request_id, ex)
            return out
        simple = unit is not None and self._sticky is None
        matched: dict[int, bool] = {}  # a rule shared by several experiments, evaluated once
        if simple and not plans.overrides:  # every experiment in one call into the core
            flags: list[bool] = []
            for t in plans.rules:
                if t is None:
                    flags.append(True)
                    continue
                found = matched.get(id(t))
                flags.append(
                    matched.setdefault(id(t), t.matches(attributes)) if found is None else found
                )
            return dict(
                zip(
                    plans.keys_,
                    _assignment.assign_routes(plans.routes, unit, at_us, flags),
                    strict=True,
                )
            )
        for k, p in plans.items():
            if simple and not p.overrides:  # the common case, without the general path's calls
                t = p.targeting
                if t is None:
                    eligible = True
                else:
                    found = matched.get(id(t))
                    eligible = matched[id(t)] = t.matches(attributes) if found is None else found
                out[k] = p.route.assign(unit, at_us, eligible)
            else:
                out[k] = self._assign(p, unit, attributes, at_us)
        return out

    def _assign(
        self,
        plan: _Plan,
        unit: Any,
        attributes: Mapping[str, Any] | None,
        at_us: int,
        use_sticky: bool = True,
        upstream: int = -1,
    ) -> Assignment:
        """One unit through the core's precedence (the route), with its override and an
        admitted upstream arm as inputs; a sticky store's arm replaces assigned or
        not_exposed after."""
        if unit is None and attributes is not None:
            unit = attributes.get(plan.unit)
        if unit is None:
            return plan.compiled.assign_step(None, 0)
        forced = -1
        if plan.overrides:
            key = unit_key_or_none(unit)
            if key is not None:
                forced = plan.overrides.get(key, -1)
        targeting = plan.targeting
        eligible = targeting is None or targeting.matches(attributes)
        if forced < 0 and upstream < 0:
            a = plan.route.assign(unit, at_us, eligible)
        else:
            a = plan.route.decide(unit, at_us, eligible, forced, upstream)
        if use_sticky and self._sticky is not None and a.reason in ("assigned", "not_exposed"):
            a = self._sticky_one(plan, unit, a)
        return a

    def _sticky_one(self, plan: _Plan, unit: Any, a: Assignment) -> Assignment:
        key = unit_key(unit)
        stored = self._sticky.get_many(plan.key, plan.bucket_version, [key]).get(key)
        if stored is not None and stored in plan.arm_names:
            index = plan.arm_names.index(stored)
            return _assignment.make_assignment(
                plan.key, stored, index, plan.payloads[index], a.bucket, _STICKY
            )
        if a.reason == "assigned":
            self._sticky.put_many(plan.key, plan.bucket_version, {key: a.arm})
        return a

    # -- frames ------------------------------------------------------------------------------

    def assign_frame(
        self,
        df: Any,
        unit_column: str,
        experiments: Iterable[str] | None = None,
        at_column: str | None = None,
        sticky: Any = None,
        threads: int | None = None,
        log_exposures: bool = False,
    ) -> Any:
        """A copy of ``df`` with, per experiment, a categorical column ``<key>`` (the arm) and
        ``<key>_reason``. Targeting reads the frame's columns; ``at_column`` replays history
        row by row. With a sticky store: one read and one write per experiment, not per row.

        ``df``: a pandas DataFrame, a pyarrow Table or a polars DataFrame (read through the
        Arrow C stream interface, without copying); the result is of the same kind, with
        pandas ``Categorical``, Arrow dictionary or polars ``Enum`` columns.

        ``log_exposures=True`` writes an exposure record for every row that got an arm, as one
        Arrow table per experiment (not deduplicated: a backfill states every row)."""
        frame = FrameInput(df, "Splitter.assign_frame")
        results = self._assign_columns(
            frame, unit_column, experiments, at_column, sticky, threads, log_exposures
        )
        added: dict[str, tuple[np.ndarray, list[str]]] = {}
        for key, b in results.items():
            added[key] = (b.arm_index, list(b.arms))
            added[f"{key}_reason"] = (b.reason, list(REASONS))
        return frame.with_columns(added)

    def assign_columns(
        self,
        df: Any,
        unit_column: str,
        experiments: Iterable[str] | None = None,
        at_column: str | None = None,
        sticky: Any = None,
        threads: int | None = None,
        log_exposures: bool = False,
        at: Any = None,
    ) -> dict[str, BatchAssignment]:
        """What :meth:`assign_frame` adds, as arrays: per experiment key, a
        :class:`~trafficsplit.BatchAssignment` (arm index, arm bucket, reason code per row),
        buckets included, without building a new frame. The arguments are those of
        :meth:`assign_frame`, and ``at``: one time for every row (a datetime, ISO text or epoch
        seconds) instead of now, when there is no ``at_column``. ``trafficsplit.backfill`` and
        the DuckDB and Spark adapters assign through here."""
        frame = FrameInput(df, "Splitter.assign_columns")
        if at is not None and at_column is not None:
            raise ArgumentError("Splitter.assign_columns: give at or at_column, not both")
        return self._assign_columns(
            frame, unit_column, experiments, at_column, sticky, threads, log_exposures, at
        )

    def _assign_columns(
        self,
        frame: FrameInput,
        unit_column: str,
        experiments: Iterable[str] | None,
        at_column: str | None,
        sticky: Any,
        threads: int | None,
        log_exposures: bool,
        at: Any = None,
    ) -> dict[str, BatchAssignment]:
        for name, what in ((unit_column, "unit_column"), (at_column, "at_column")):
            if name is not None and name not in frame.columns:
                raise ConfigError(
                    f"{what} '{name}' is not a column of the frame; "
                    f"columns: {', '.join(frame.columns)}"
                )
        snapshot, plans, _ = self._state
        ex = self._exposures
        if log_exposures and ex is None:
            raise ConfigError("log_exposures=True needs a Splitter made with exposures=<sink>")
        keys = list(snapshot.experiments) if experiments is None else list(experiments)
        units = frame.column(unit_column)
        # The unit and time columns are converted once for every experiment.
        batch = _units.UnitBatch.of(units)
        if at_column is None:
            now = _now_us() if at is None else _time.to_micros(at)
            at = _time.from_micros(now)
            # per-row times only for the exposure records
            at_us = np.full(frame.rows, now, np.int64) if log_exposures else None
        else:
            times = frame.column(at_column)
            times = times if frame.kind == "pandas" else np.asarray(times)
            at_us = _time.micros_array(times, frame.rows)
            at = _time.Micros(at_us)
        store = sticky if sticky is not None else self._sticky
        results: dict[str, BatchAssignment] = {}
        for key in keys:
            e = self._experiment(snapshot, key)
            arm, bucket, reason, weights = self._frame_one(
                e, plans[key].route, units, batch, frame.data, at, store, threads
            )
            if log_exposures and ex is not None and at_us is not None:
                rows = np.flatnonzero(arm >= 0)
                ex.log_table(
                    bulk_table(
                        plans[key].exposure,
                        units,
                        rows,
                        at_us,
                        arm,
                        bucket,
                        reason,
                        REASONS,
                        frame.data,
                        ex.attributes,
                    )
                )
            results[key] = BatchAssignment(
                key, e.experiment.arm_names, arm, bucket, reason, weights=weights
            )
        return results

    def _frame_one(
        self,
        e: ExperimentConfig,
        route: Any,
        units: Any,
        batch: _units.UnitBatch,
        df: Any,
        at: Any,
        store: Any,
        threads: int | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, ...] | None]:
        exp = e.experiment
        # Holdouts, the layer range, the status and the time window run in the core with the
        # experiment (the Route of Splitter.assign), row by row.
        b = exp.assign_units(
            batch,
            at=at,
            threads=threads,
            attributes=df if exp.targeting is not None else None,
            route=route,
        )
        arm = b.arm_index.copy()
        reason = b.reason.copy()
        if e.overrides:
            # The forced arm of each row (-1: none), put in by the core's precedence.
            forced = np.full(len(arm), -1, np.int16)
            for i, k in _override_rows(units, e.overrides):
                forced[i] = exp.arm_names.index(e.overrides[k])
            route.apply_overrides(forced, (arm, b.bucket, reason))
        if store is not None:
            candidates = np.flatnonzero(
                (reason == _CODE["assigned"]) | (reason == _CODE["not_exposed"])
            )
            if len(candidates):
                values = object_values(units)
                keys = [unit_key_or_none(values[i]) for i in candidates]
                found = store.get_many(e.key, exp.bucket_version, keys)
                fresh = {}
                for row, key in zip(candidates, keys, strict=True):
                    s = found.get(key)
                    if s is not None and s in exp.arm_names:
                        arm[row] = exp.arm_names.index(s)
                        reason[row] = _CODE["sticky"]
                    elif reason[row] == _CODE["assigned"]:
                        fresh[key] = exp.arm_names[arm[row]]
                if fresh:
                    store.put_many(e.key, exp.bucket_version, fresh)
        return arm, b.bucket, reason, b.weights

    # -- flags -------------------------------------------------------------------------------

    def flag(
        self,
        key: str,
        unit: Any = None,
        attributes: Mapping[str, Any] | None = None,
        default: Any = _MISSING,
        *,
        request_id: str | None = None,
        log_exposure: bool = True,
    ) -> Any:
        """The flag's value for a unit and its attributes. An unknown flag returns
        ``default`` when given, and raises ConfigError otherwise. ``request_id`` and
        ``log_exposure`` as for :meth:`flag_details`."""
        return self.flag_details(
            key, unit, attributes, default, request_id=request_id, log_exposure=log_exposure
        ).value

    def flag_details(
        self,
        key: str,
        unit: Any = None,
        attributes: Mapping[str, Any] | None = None,
        default: Any = _MISSING,
        *,
        request_id: str | None = None,
        log_exposure: bool = True,
    ) -> FlagEvaluation:
        """The flag's value, variant and reason.

        With ``Splitter(exposures=...)``, a value decided by a percentage rollout (reason
        ``split``) leaves an exposure record like an experiment's: experiment
        ``<flag key>/rule<i>`` (the rollout's salt), arm ``v<k>`` for the k-th value of the
        rollout, the unit and the probability of that value. Other reasons decide nothing at
        random and leave no record, and neither do the prerequisites a flag evaluates.
        ``request_id`` goes into the record (default: the current request's); ``log_exposure
        =False`` leaves none for this call."""
        snapshot, _, rollouts = self._state
        flag = snapshot.flags.get(key)
        if flag is None:
            if default is _MISSING:
                known = ", ".join(sorted(snapshot.flags)) or "(none)"
                raise ConfigError(f"unknown flag '{key}'; flags: {known}")
            return FlagEvaluation(key, default, None, "error", snapshot.version)
        ex = self._exposures
        if ex is None or not log_exposure:
            return self._flag(snapshot, flag, unit, attributes, ())
        split: list[tuple[Any, Any, Any]] = []
        result = self._flag(snapshot, flag, unit, attributes, (), split)
        if split:
            rollout, a, unit_used = split[0]
            if request_id is None:
                req = current_request()
                request_id = req.request_id if req is not None else None
            ex.log(_now_us(), unit_used, rollouts[rollout.key], a, attributes, request_id)
        return result

    def _flag(
        self,
        snapshot: Snapshot,
        flag: FlagConfig,
        unit: Any,
        attributes: Mapping[str, Any] | None,
        trail: tuple[str, ...],
        split: list[tuple[Any, Any, Any]] | None = None,
    ) -> FlagEvaluation:
        version = snapshot.version
        key = flag.key
        if not flag.enabled:
            return FlagEvaluation(key, flag.default, "default", "disabled", version)
        for other, expected in flag.prerequisites:
            pre = snapshot.flags.get(other)
            if (
                pre is None
                or other in trail
                or self._flag(snapshot, pre, unit, attributes, (*trail, key)).value != expected
            ):
                return FlagEvaluation(key, flag.default, "default", "prerequisite_failed", version)
        if unit is None and attributes is not None:
            unit = attributes.get(flag.unit)
        for i, rule in enumerate(flag.rules):
            if rule.when is not None and not rule.when.matches(attributes):
                continue
            if rule.rollout is None:
                return FlagEvaluation(key, rule.value, f"rule{i}", "targeting_match", version)
            if unit is None:
                continue  # a percentage needs a unit to hash
            a = rule.rollout.assign(unit)
            if a.arm_index >= 0:
                if split is not None:
                    split.append((rule.rollout, a, unit))
                return FlagEvaluation(
                    key, rule.rollout_values[a.arm_index], f"rule{i}/{a.arm}", "split", version
                )
        return FlagEvaluation(key, flag.default, "default", "default", version)


_STICKY = _CODE["sticky"]
_TRUST_RANK = {"none": 0, "signed": 1, "any": 2}


def _now_us() -> int:
    return _clock.time_ns() // 1000


class _Plan:
    """What one request needs of an experiment, flattened out of the snapshot once."""

    __slots__ = (
        "arm_index",
        "arm_names",
        "bucket_version",
        "compiled",
        "exposure",
        "key",
        "overrides",
        "payloads",
        "route",
        "step",
        "targeting",
        "unit",
    )

    def __init__(self, snapshot: Snapshot, e: ExperimentConfig) -> None:
        exp = e.experiment
        self.key = e.key
        self.unit = e.unit
        self.compiled = exp.compiled
        self.step = len(exp.steps) - 1
        self.bucket_version = exp.bucket_version
        self.arm_names = exp.arm_names
        self.arm_index = {name: i for i, name in enumerate(exp.arm_names)}
        self.payloads = tuple(a.payload for a in exp.arms)
        # Unit key -> the forced arm's index, as the core's precedence takes it.
        self.overrides = {k: self.arm_index[arm] for k, arm in e.overrides.items()}
        self.targeting = exp.targeting
        self.exposure = ExposureInfo(e.key, snapshot.version, exp)
        self.route = e.route  # compiled with the configuration


class _Plans(dict[str, _Plan]):
    """The plans by experiment key, and what assign_all hands the core in one call when no
    experiment has overrides: the keys, routes and targeting rules, in order."""

    keys_: tuple[str, ...] = ()
    routes: tuple[Any, ...] = ()
    rules: tuple[Any, ...] = ()
    overrides: bool = False

    def seal(self) -> None:
        self.keys_ = tuple(self)
        self.routes = tuple(p.route for p in self.values())
        self.rules = tuple(p.targeting for p in self.values())
        self.overrides = any(p.overrides for p in self.values())


def _unknown_experiment(snapshot: Snapshot, key: str) -> ConfigError:
    known = ", ".join(sorted(snapshot.experiments)) or "(none)"
    return ConfigError(f"unknown experiment '{key}'; experiments: {known}")


def _state(
    snapshot: Snapshot,
) -> tuple[Snapshot, _Plans, dict[str, ExposureInfo]]:
    """What a Splitter serves from, made once per configuration: the snapshot, the plan of each
    experiment, and the exposure details of each flag rollout (by its key, ``<flag>/rule<i>``)."""
    plans = _Plans((k, _Plan(snapshot, e)) for k, e in snapshot.experiments.items())
    # Experiments with the same targeting share one Targeting, so that assign_all evaluates a
    # rule once per request however many experiments use it.
    shared: dict[Any, Any] = {}
    for plan in plans.values():
        if plan.targeting is not None:
            plan.targeting = shared.setdefault(plan.targeting, plan.targeting)
    plans.seal()
    rollouts = {
        rule.rollout.key: ExposureInfo(rule.rollout.key, snapshot.version, rule.rollout)
        for flag in snapshot.flags.values()
        for rule in flag.rules
        if rule.rollout is not None
    }
    return snapshot, plans, rollouts


def _override_rows(units: Any, overrides: Mapping[str, str]) -> list[tuple[int, str]]:
    """(row, unit key) of the rows of a unit Series whose key has an override. Integer and
    string columns are matched in bulk (``isin``); other columns key each row in Python.
    Arrow columns (polars frames) are matched by ``pyarrow.compute.is_in``."""
    if not is_pandas(units):
        return arrow_override_rows(units, overrides)
    pd = loaded("pandas")

    dtype = units.dtype
    if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        wanted = {}
        for k in overrides:  # the keys an integer can have: canonical decimal text
            with contextlib.suppress(ValueError):
                if str(int(k)) == k:
                    wanted[int(k)] = k
        rows = np.flatnonzero(units.isin(list(wanted)).to_numpy(dtype=bool, na_value=False))
        return [(int(i), wanted[int(units.iloc[i])]) for i in rows]
    objects = isinstance(dtype, np.dtype) and dtype.kind == "O"  # str only if every row is
    if pd.api.types.is_string_dtype(dtype) and (
        not objects or pd.api.types.infer_dtype(units, skipna=True) in ("string", "empty")
    ):
        rows = np.flatnonzero(units.isin(list(overrides)).to_numpy(dtype=bool, na_value=False))
        return [(int(i), units.iloc[i]) for i in rows]
    keys = [unit_key_or_none(u) for u in units.tolist()]  # None, NA, bad types: no key
    return [(i, k) for i, k in enumerate(keys) if k is not None and k in overrides]


# Splitters watching files, so their watchers can be restarted in a forked child (the thread
# that polled in the parent does not exist there).
_WATCHING: weakref.WeakSet[Splitter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for sp in list(_WATCHING):
        sp._lock = threading.Lock()
        sp._listeners_lock = threading.Lock()
        sp._watcher = None
        sp._start_watcher()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _display_tables(
    snapshot: Snapshot,
) -> tuple[str, list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]]:
    """What a Splitter's displays show: a title, and (header, columns, rows) per table."""
    counts = [
        (len(snapshot.experiments), "experiment"),
        (len(snapshot.flags), "flag"),
        (len(snapshot.layers), "layer"),
        (len(snapshot.holdouts), "holdout"),
    ]
    listed = ", ".join(f"{n:,} {what}{'s' if n != 1 else ''}" for n, what in counts)
    title = f"Splitter: configuration version {_display.shorten(snapshot.version)}, {listed}"
    experiments = [
        (
            key,
            e.status,
            len(e.experiment.arms),
            e.experiment.exposure,
            e.layer or "",
            ", ".join(e.holdouts),
            e.experiment.bucket_version,
        )
        for key, e in snapshot.experiments.items()
    ]
    tables: list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]] = [
        (
            "experiments",
            ("key", "status", "arms", "exposure", "layer", "holdouts", "bucket version"),
            experiments,
        )
    ]
    if snapshot.flags:
        flags = [
            (
                key,
                f.type,
                "on" if f.enabled else "off",
                len(f.rules),
                _display.shorten(repr(f.default)),
            )
            for key, f in snapshot.flags.items()
        ]
        tables.append(("flags", ("key", "type", "enabled", "rules", "default"), flags))
    if snapshot.layers:
        layers = [(key, len(layer.ranges), layer.buckets) for key, layer in snapshot.layers.items()]
        tables.append(("layers", ("key", "experiments", "buckets"), layers))
    if snapshot.holdouts:
        holdouts = [(key, h.percent) for key, h in snapshot.holdouts.items()]
        tables.append(("holdouts", ("key", "percent"), holdouts))
    return title, tables
