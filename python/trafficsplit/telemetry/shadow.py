"""Shadow testing (dark launches): serve the primary model, run a candidate on a sampled copy
of the requests in the background, and log both outputs and latencies (docs/telemetry.md).

>>> import trafficsplit as ts
>>> log = ts.ShadowLog()
>>> with ts.Shadow(lambda x: x * 2, lambda x: x + x, sample=1.0, sink=log) as model:
...     [model(i) for i in range(3)]
[0, 2, 4]
>>> log.wait(3)
True
>>> float(ts.compare_shadow(log)["agreement"].iloc[0])
1.0
"""

from __future__ import annotations

import copy
import datetime as _dt
import logging
import math
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import numpy as np

from .. import _display
from .._core import telemetry as _telemetry
from .._optional import require
from ..errors import ConfigError
from ..hashing import bucket

__all__ = ["Shadow", "ShadowCounters", "ShadowLog", "ShadowRecord", "compare_shadow"]

log = logging.getLogger("trafficsplit.shadow")


class ShadowRecord(NamedTuple):
    """One sampled request: both sides' outputs, latencies (seconds) and statuses."""

    timestamp: _dt.datetime  # when the request started, UTC
    name: str
    request_id: str | None
    primary_output: Any
    candidate_output: Any  # None unless candidate_status is "ok"
    primary_latency: float
    candidate_latency: float | None  # None on timeout
    primary_status: str  # ok, error
    candidate_status: str  # ok, error, timeout
    candidate_error: str | None  # repr of the candidate's exception
    agree: bool | None  # compare(primary, candidate) when both are ok


class ShadowCounters(NamedTuple):
    sampled: int  # requests picked for the candidate
    started: int  # candidate calls started
    completed: int  # candidate calls that returned
    errors: int  # candidate calls that raised
    timeouts: int  # candidate calls that missed the timeout
    overloaded: int  # sampled requests skipped because max_in_flight calls were running
    sink_errors: int  # failed sink calls
    in_flight: int  # candidate calls running now


class ShadowLog:
    """A bounded, thread-safe, in-memory sink of shadow records (the newest ``maxlen``)."""

    def __init__(self, maxlen: int = 100_000) -> None:
        self._records: deque[ShadowRecord] = deque(maxlen=maxlen)
        self._cond = threading.Condition()

    def __call__(self, record: ShadowRecord) -> None:
        with self._cond:
            self._records.append(record)
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._records)

    def records(self) -> list[ShadowRecord]:
        with self._cond:
            return list(self._records)

    def wait(self, n: int, timeout: float = 10.0) -> bool:
        """Waits until at least ``n`` records arrived; True if they did within ``timeout``."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._records) >= n, timeout)

    def to_frame(self) -> Any:
        pd = require("pandas", what="ShadowLog.to_frame")

        return pd.DataFrame(self.records(), columns=list(ShadowRecord._fields))

    def _summary(self) -> tuple[str, list[tuple[Any, ...]]]:
        """A title and, per shadow name: records, candidate outcomes and agreement."""
        records = self.records()
        by_name: dict[str, list[int]] = {}
        for r in records:
            c = by_name.setdefault(r.name, [0, 0, 0, 0, 0, 0])
            c[0] += 1
            c[1] += r.candidate_status == "ok"
            c[2] += r.candidate_status == "error"
            c[3] += r.candidate_status == "timeout"
            c[4] += r.agree is not None
            c[5] += r.agree is True
        maxlen = self._records.maxlen or 0
        n = len(records)
        title = f"ShadowLog: {n:,} record{'s' if n != 1 else ''} (keeps the newest {maxlen:,})"
        rows = [
            (name, c[0], c[1], c[2], c[3], _display.percent(c[5] / c[4]) if c[4] else "")
            for name, c in sorted(by_name.items())
        ]
        return title, rows

    _HEADER = ("name", "records", "candidate ok", "errors", "timeouts", "agreement")

    def __repr__(self) -> str:
        """One line, then per shadow name the records, the candidate's outcomes and how often
        it agreed with the primary."""
        title, rows = self._summary()
        return f"{title}\n{_display.text_table(self._HEADER, rows)}" if rows else title

    def _repr_html_(self) -> str:
        title, rows = self._summary()
        return _display.block(title, _display.html_table(self._HEADER, rows) if rows else "")


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    return bool(a == b)


class _Pair:
    """One sampled request while its two sides run: the candidate's arguments, then each side's
    output, latency and status as it completes."""

    __slots__ = (
        "args",
        "candidate",
        "candidate_error",
        "candidate_latency",
        "candidate_status",
        "deadline",
        "kwargs",
        "primary",
        "primary_latency",
        "primary_status",
        "request_id",
        "sides",
        "started",
        "timestamp",
    )

    args: tuple[Any, ...]  # empty once the record is made
    kwargs: dict[str, Any]
    request_id: str | None
    timestamp: _dt.datetime
    sides: int  # sides completed: 2 makes the record
    primary: Any
    candidate: Any
    candidate_error: str | None
    primary_latency: float
    candidate_latency: float | None  # None on timeout
    primary_status: str  # "" until the side completes
    candidate_status: str
    started: float  # perf_counter when the candidate started
    deadline: float

    def __init__(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], request_id: str | None
    ) -> None:
        self.args = args
        self.kwargs = kwargs
        self.request_id = request_id
        self.timestamp = _dt.datetime.now(_dt.UTC)
        self.sides = 0
        self.primary = self.candidate = self.candidate_error = None
        self.primary_latency = 0.0
        self.candidate_latency = None
        self.primary_status = self.candidate_status = ""
        self.started = 0.0
        self.deadline = math.inf


class Shadow:
    """Wraps a primary callable; a sampled share of calls also runs ``candidate`` with a copy
    of the same arguments, in the background.

    The caller always gets the primary's result (or its exception). On the primary path the
    wrapper adds a sampling draw, a counter check under a lock, a deep copy of the arguments
    (``copy=True``) and one queue put per sampled call; it never waits for the candidate.
    Candidate errors, timeouts and overload are counted, never raised. Candidates run in
    ``max_in_flight`` worker threads: when all are busy the sampled call is skipped
    (``overloaded``). A candidate still running ``timeout`` seconds after it started is logged
    with status ``timeout`` (its thread stays busy until it returns). Records go to ``sink``
    (a callable taking a :class:`ShadowRecord`, e.g. a :class:`ShadowLog`) from a thread of
    their own.

    ``sample``: share of calls (0..1) sent to the candidate; ``key``: a function of the call's
    arguments giving a unit id, to sample the same units every time (hash bucket of the unit
    with salt ``name``) instead of at random. ``compare(primary, candidate) -> bool`` decides
    agreement (default ``==``, ``numpy.array_equal`` for arrays). ``request_id``: a function
    of the arguments giving the request id to log.
    """

    def __init__(
        self,
        primary: Callable[..., Any],
        candidate: Callable[..., Any],
        sample: float = 0.1,
        max_in_flight: int = 4,
        timeout: float = 1.0,
        sink: Callable[[ShadowRecord], Any] | None = None,
        *,
        compare: Callable[[Any, Any], bool] | None = None,
        key: Callable[..., Any] | None = None,
        request_id: Callable[..., Any] | None = None,
        name: str = "shadow",
        copy: bool = True,
        seed: int | None = None,
    ) -> None:
        if not callable(primary) or not callable(candidate):
            raise ConfigError("Shadow needs a callable primary and a callable candidate")
        if not isinstance(sample, int | float) or not 0.0 <= sample <= 1.0:
            raise ConfigError(f"sample must be a share between 0 and 1, got {sample!r}")
        if not isinstance(max_in_flight, int) or not 1 <= max_in_flight <= 256:
            raise ConfigError(f"max_in_flight must be an int in 1..256, got {max_in_flight!r}")
        if not isinstance(timeout, int | float) or not timeout > 0 or math.isinf(timeout):
            raise ConfigError(f"timeout must be positive finite seconds, got {timeout!r}")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"name must be a non-empty str, got {name!r}")
        self.primary = primary
        self.candidate = candidate
        self.sample = float(sample)
        self.max_in_flight = max_in_flight
        self.timeout = float(timeout)
        self.sink = sink if sink is not None else ShadowLog()
        self.compare = compare if compare is not None else _equal
        self.name = name
        self._key = key
        self._request_id = request_id
        self._copy = copy
        self._threshold = round(self.sample * 10_000)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._tasks: queue.SimpleQueue[_Pair | None] = queue.SimpleQueue()
        self._emits: queue.SimpleQueue[_Pair | None] = queue.SimpleQueue()
        self._running: set[_Pair] = set()
        self._closed = False
        self.sampled = self.started = self.completed = self.errors = 0
        self.timeouts = self.overloaded = self.sink_errors = 0
        self._in_flight = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"trafficsplit-shadow-{i}", daemon=True)
            for i in range(max_in_flight)
        ]
        self._threads.append(
            threading.Thread(target=self._emit_loop, name="trafficsplit-shadow-sink", daemon=True)
        )
        self._threads.append(
            threading.Thread(target=self._watch, name="trafficsplit-shadow-timer", daemon=True)
        )
        for t in self._threads:
            t.start()

    # -- the primary path ----------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        pair = self._submit(args, kwargs) if self._picked(args, kwargs) else None
        t0 = time.perf_counter()
        try:
            out = self.primary(*args, **kwargs)
        except BaseException:
            if pair is not None:
                self._primary_done(pair, None, time.perf_counter() - t0, "error")
            raise
        if pair is not None:
            self._primary_done(pair, out, time.perf_counter() - t0, "ok")
        return out

    def _picked(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        if self._threshold <= 0 or self._closed:
            return False
        if self._key is None:
            return self._random.random() < self.sample
        try:
            return bucket(self._key(*args, **kwargs), self.name) < self._threshold
        except Exception:  # a key that cannot be hashed only loses the shadow call
            return False

    def _submit(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Pair | None:
        with self._lock:
            self.sampled += 1
            if self._in_flight >= self.max_in_flight:
                self.overloaded += 1
                return None
            self._in_flight += 1
        try:
            pair = _Pair(
                copy.deepcopy(args) if self._copy else args,
                copy.deepcopy(kwargs) if self._copy else kwargs,
                None if self._request_id is None else str(self._request_id(*args, **kwargs)),
            )
        except Exception:
            with self._lock:
                self._in_flight -= 1
            log.exception("trafficsplit: shadow %s could not copy a request", self.name)
            return None
        self._tasks.put(pair)
        return pair

    def _primary_done(self, pair: _Pair, out: Any, latency: float, status: str) -> None:
        with self._lock:
            pair.primary, pair.primary_latency, pair.primary_status = out, latency, status
            pair.sides += 1
            complete = pair.sides == 2
        if complete:
            self._emits.put(pair)

    def _candidate_done(self, pair: _Pair, out: Any, latency: float | None, status: str) -> None:
        with self._lock:
            if pair.candidate_status:  # already timed out
                return
            pair.candidate, pair.candidate_latency, pair.candidate_status = out, latency, status
            pair.sides += 1
            complete = pair.sides == 2
        if complete:
            self._emits.put(pair)

    # -- background --------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            pair = self._tasks.get()
            if pair is None:
                return
            with self._lock:
                self.started += 1
                pair.started = time.perf_counter()
                pair.deadline = pair.started + self.timeout
                self._running.add(pair)
            status, out, error = "ok", None, None
            try:
                out = self.candidate(*pair.args, **pair.kwargs)
            except Exception as exc:
                status, error = "error", repr(exc)
            latency = time.perf_counter() - pair.started
            with self._lock:
                self._running.discard(pair)
                self._in_flight -= 1
                if status == "ok":
                    self.completed += 1
                else:
                    self.errors += 1
            pair.candidate_error = error
            self._candidate_done(pair, out, latency, status)

    def _watch(self) -> None:
        tick = min(self.timeout / 4, 0.05)
        while not self._closed:
            time.sleep(tick)
            now = time.perf_counter()
            with self._lock:
                late = [p for p in self._running if p.deadline <= now]
                for p in late:
                    self._running.discard(p)
                    self.timeouts += 1
            for p in late:
                self._candidate_done(p, None, None, "timeout")

    def _emit_loop(self) -> None:
        while True:
            pair = self._emits.get()
            if pair is None:
                return
            agree = None
            if pair.primary_status == "ok" and pair.candidate_status == "ok":
                try:
                    agree = bool(self.compare(pair.primary, pair.candidate))
                except Exception:
                    agree = None
            record = ShadowRecord(
                pair.timestamp,
                self.name,
                pair.request_id,
                pair.primary,
                pair.candidate,
                pair.primary_latency,
                pair.candidate_latency,
                pair.primary_status,
                pair.candidate_status,
                pair.candidate_error,
                agree,
            )
            pair.args, pair.kwargs = (), {}  # the arguments are not kept past the record
            try:
                self.sink(record)
            except Exception:
                self.sink_errors += 1
                log.exception("trafficsplit: shadow %s sink failed", self.name)

    # -- control -------------------------------------------------------------------------

    def counters(self) -> ShadowCounters:
        with self._lock:
            return ShadowCounters(
                self.sampled,
                self.started,
                self.completed,
                self.errors,
                self.timeouts,
                self.overloaded,
                self.sink_errors,
                self._in_flight,
            )

    def close(self, timeout: float = 5.0) -> None:
        """Stops sampling, lets running candidates finish (up to ``timeout`` seconds) and
        writes their records. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for _ in range(self.max_in_flight):
            self._tasks.put(None)
        deadline = time.monotonic() + timeout
        for t in self._threads[: self.max_in_flight]:
            t.join(max(0.0, deadline - time.monotonic()))
        self._emits.put(None)
        self._threads[self.max_in_flight].join(max(0.0, deadline - time.monotonic()))

    def _title(self) -> str:
        state = "closed" if self._closed else "running"
        return (
            f"Shadow({_display.shorten(repr(self.name))}, sample={self.sample:g}, "
            f"max_in_flight={self.max_in_flight}, timeout={self.timeout:g}s): {state}; "
            f"primary {_display.shorten(_callable_name(self.primary))}, "
            f"candidate {_display.shorten(_callable_name(self.candidate))}"
        )

    def __repr__(self) -> str:
        """The settings and state on one line, then the counters."""
        counters = self.counters()
        return f"{self._title()}\n" + _display.text_table(ShadowCounters._fields, [tuple(counters)])

    def _repr_html_(self) -> str:
        counters = self.counters()
        return _display.block(
            self._title(), _display.html_table(ShadowCounters._fields, [tuple(counters)])
        )

    def __enter__(self) -> Shadow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _callable_name(f: Any) -> str:
    return str(getattr(f, "__qualname__", None) or type(f).__name__)


# -- analysis --------------------------------------------------------------------------------

_PERCENTILES = (50, 90, 99)


def _frame(log_: Any) -> Any:
    pd = require("pandas", what="compare_shadow")

    if isinstance(log_, ShadowLog):
        return log_.to_frame()
    if isinstance(log_, pd.DataFrame):
        return log_
    if isinstance(log_, Iterable):
        rows = list(log_)
        if rows and isinstance(rows[0], dict):
            return pd.DataFrame(rows)
        return pd.DataFrame(rows, columns=list(ShadowRecord._fields))
    raise ConfigError(
        f"compare_shadow needs a ShadowLog, a DataFrame or records, got {type(log_).__name__}"
    )


def compare_shadow(log: Any, confidence: float = 0.95) -> Any:
    """One row per shadow ``name``: how often the candidate agreed with the primary (with a
    Wilson interval), the latency percentiles of each side, and a paired t test of the latency
    difference ``candidate - primary`` over requests where both sides succeeded.

    Columns: name, requests, paired, agreement, agreement_low, agreement_high,
    primary_p50/p90/p99, candidate_p50/p90/p99 (seconds), latency_diff, latency_diff_low,
    latency_diff_high, t, p_value, candidate_errors, candidate_timeouts, primary_errors.
    """
    pd = require("pandas", what="compare_shadow")

    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be between 0 and 1, got {confidence!r}")
    df = _frame(log)
    missing = {"name", "primary_latency", "candidate_latency", "candidate_status"} - set(df.columns)
    if missing:
        raise ConfigError(f"compare_shadow: the log has no column(s) {sorted(missing)}")
    rows = []
    for name, g in df.groupby("name", sort=True):
        p_ok = g[g["primary_status"] == "ok"]
        c_ok = g[g["candidate_status"] == "ok"]
        both = g[(g["primary_status"] == "ok") & (g["candidate_status"] == "ok")]
        primary = p_ok["primary_latency"].to_numpy(np.float64)
        candidate = c_ok["candidate_latency"].to_numpy(np.float64)
        agree = both["agree"].dropna().astype(bool)
        est, lo, hi = _telemetry.wilson_interval(int(agree.sum()), len(agree), confidence)
        n, diff, _sd, t, p, d_lo, d_hi = _telemetry.paired_difference(
            both["primary_latency"].to_numpy(np.float64),
            both["candidate_latency"].to_numpy(np.float64),
            confidence,
        )
        row: dict[str, Any] = {
            "name": name,
            "requests": len(g),
            "paired": int(n),
            "agreement": est,
            "agreement_low": lo,
            "agreement_high": hi,
        }
        for side, values in (("primary", primary), ("candidate", candidate)):
            qs = np.percentile(values, _PERCENTILES) if len(values) else [np.nan] * 3
            for q, v in zip(_PERCENTILES, qs, strict=True):
                row[f"{side}_p{q}"] = float(v)
        row.update(
            latency_diff=diff,
            latency_diff_low=d_lo,
            latency_diff_high=d_hi,
            t=t,
            p_value=p,
            candidate_errors=int((g["candidate_status"] == "error").sum()),
            candidate_timeouts=int((g["candidate_status"] == "timeout").sum()),
            primary_errors=int((g["primary_status"] == "error").sum()),
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=_COMPARE_COLUMNS)


_COMPARE_COLUMNS = [
    "name",
    "requests",
    "paired",
    "agreement",
    "agreement_low",
    "agreement_high",
    *(f"{side}_p{q}" for side in ("primary", "candidate") for q in _PERCENTILES),
    "latency_diff",
    "latency_diff_low",
    "latency_diff_high",
    "t",
    "p_value",
    "candidate_errors",
    "candidate_timeouts",
    "primary_errors",
]
