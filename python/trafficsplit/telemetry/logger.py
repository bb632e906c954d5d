"""The exposure logger: the request path appends a tuple to a bounded queue; a background
thread turns tuples into records (:class:`~trafficsplit.telemetry.records.ExposureRecord`),
drops duplicates and hands batches to the sinks (docs/telemetry.md). Batch calls
(``Splitter.assign_frame(..., log_exposures=True)``) enqueue one Arrow table per call instead
of one object per row.

The writer sleeps while there is nothing to write: an enqueue wakes it, and while records wait
for their batch it takes the queue every 10 ms, so that requests are written in batches
without a wake-up each.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .._shared.keys import unit_key_or_none
from ..errors import ConfigError
from .records import ExposureBatch, ExposureInfo, ExposureRecord
from .sinks import CallableSink, ExposureSink, WriteReport

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ExposureCounters", "ExposureLogger", "SetAside"]

log = logging.getLogger("trafficsplit.exposure")


class ExposureCounters(NamedTuple):
    """What an :class:`ExposureLogger` did since it started (or since ``fork()`` in a child)."""

    written: int  # records every sink stored
    deduplicated: int  # records left out as repeats within the TTL
    dropped: int  # records refused because the queue was full (on_full="drop") or closed
    errors: int  # sink calls that failed or lost records
    failed: int  # records a sink did not store (failed call, full disk, a file lost)
    queued: int  # items waiting in the queue now
    set_aside: int = 0  # records a sink could not encode, left out alone


class SetAside(NamedTuple):
    """A record left out because a sink could not encode it (``ExposureLogger.set_aside``)."""

    position: int  # its place among the records the logger handed to its sinks, from 0 (-1: none)
    sink: str  # the sink's class name ("ExposureLogger": the decision made no record)
    error: str  # the name of the error that refused it
    record: ExposureRecord | None  # the record itself, for the caller to inspect


class _Bulk:
    __slots__ = ("table",)

    def __init__(self, table: pa.Table) -> None:
        self.table = table


class _Marker:
    """A flush request: the writer sets ``done`` once everything queued before it is written."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class ExposureLogger:
    """Writes exposure records to sinks on a background thread behind a bounded queue.

    ``sinks``: one sink or a list; a plain callable becomes a :class:`CallableSink`.
    ``attributes``: the names of request attributes to copy into each record.
    ``max_queue``: items the queue holds (a bulk table is one item); when full, ``on_full``
    ``"block"`` makes the caller wait for room and ``"drop"`` refuses the record (counted in
    ``dropped``); ``block_timeout`` bounds the wait (then the record is dropped and counted).
    ``dedup_keys`` / ``dedup_ttl``: a record repeating (unit, experiment, arm, config version)
    within ``dedup_ttl`` seconds of the one written is left out (``deduplicated``); at most
    ``dedup_keys`` keys are remembered, least recently seen first out. ``dedup_keys=0``
    writes every record.
    ``batch_size`` / ``flush_interval``: records are handed to the sinks in batches of at most
    ``batch_size``, at least every ``flush_interval`` seconds.

    A failing sink never fails an assignment: its errors are counted and logged. ``close()``
    (also run at exit) writes everything queued; after ``fork()`` the child starts with an
    empty queue and a writer of its own, and file sinks continue in files of their own.
    """

    def __init__(
        self,
        sinks: ExposureSink | Callable[[Any], Any] | Sequence[ExposureSink | Callable[[Any], Any]],
        *,
        attributes: Iterable[str] = (),
        max_queue: int = 100_000,
        on_full: str = "block",
        block_timeout: float | None = None,
        dedup_keys: int = 100_000,
        dedup_ttl: float = 3600.0,
        batch_size: int = 10_000,
        flush_interval: float = 1.0,
    ) -> None:
        raw = list(sinks) if isinstance(sinks, list | tuple) else [sinks]
        if not raw:
            raise ConfigError("ExposureLogger needs at least one sink")
        self.sinks: list[ExposureSink] = []
        for s in raw:
            if isinstance(s, ExposureSink):
                self.sinks.append(s)
            elif callable(s):
                self.sinks.append(CallableSink(s))
            else:
                raise ConfigError(
                    f"an exposure sink must be an ExposureSink or a callable, got "
                    f"{type(s).__name__}"
                )
        if on_full not in ("block", "drop"):
            raise ConfigError(f"on_full must be 'block' or 'drop', got {on_full!r}")
        if block_timeout is not None and not block_timeout >= 0:
            raise ConfigError(f"block_timeout must be seconds >= 0 or None, got {block_timeout!r}")
        for name, value in (("max_queue", max_queue), ("batch_size", batch_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(dedup_keys, int) or isinstance(dedup_keys, bool) or dedup_keys < 0:
            raise ConfigError(f"dedup_keys must be an int >= 0, got {dedup_keys!r}")
        if not dedup_ttl > 0:
            raise ConfigError(f"dedup_ttl must be positive seconds, got {dedup_ttl!r}")
        if not flush_interval > 0:
            raise ConfigError(f"flush_interval must be positive seconds, got {flush_interval!r}")
        self.attributes: tuple[str, ...] = tuple(attributes)
        self.max_queue = max_queue
        self.on_full = on_full
        self.block_timeout = None if block_timeout is None else float(block_timeout)
        self.dedup_keys = dedup_keys
        self.dedup_ttl = float(dedup_ttl)
        self.batch_size = batch_size
        self.flush_interval = float(flush_interval)
        self._poll = min(0.01, self.flush_interval)  # the pace while records wait
        self._seen: OrderedDict[tuple[Any, ...], float] = OrderedDict()
        # Held while a sink runs and taken around fork(); re-entrant for a sink that forks.
        self._sink_lock = threading.RLock()
        self._last_error_log = 0.0
        self._last_aside_log = 0.0
        self._start()
        _LOGGERS.add(self)

    def _start(self) -> None:
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        # True while the writer sleeps with nothing to write: the next enqueue wakes it.
        self._idle = False
        self._room = threading.Condition(threading.Lock())
        self._count_lock = threading.Lock()
        self._closed = False
        self._stopping = False
        self.written = self.deduplicated = self.dropped = self.errors = self.failed = 0
        self.set_aside = 0
        self._position = 0  # records handed to the sinks so far
        self._aside: deque[SetAside] = deque(maxlen=1_000)
        self._spawn()

    def _spawn(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name="trafficsplit-exposures", daemon=True
        )
        self._thread.start()

    def _pause(self) -> None:
        """Stops the writer thread, keeping the queue (benchmarks fill it, then ``_spawn``)."""
        self._stopping = True
        self._wake.set()
        self._thread.join()

    # -- the request path ----------------------------------------------------------------

    def log(
        self,
        at_us: int,
        unit: Any,
        info: ExposureInfo,
        assignment: Any,
        attributes: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        evaluated: Any = None,
        propagation: str | None = None,
    ) -> None:
        """Queues one decision (a cheap append; the record is built on the writer thread).
        Decisions without an arm are not exposures and are skipped there. ``evaluated``: this
        service's own assignment when an upstream arm was served; ``propagation``: what became
        of an upstream arm (``ExposureRecord.propagation``)."""
        if attributes is not None:
            names = self.attributes
            attributes = {k: attributes[k] for k in names if k in attributes} if names else None
        item = (at_us, unit, info, assignment, attributes, request_id, evaluated, propagation)
        q = self._queue
        if len(q) < self.max_queue and not self._closed:
            q.append(item)
            # The append comes before the read of _idle, and the writer sets _idle before it
            # looks at the queue a last time: one of the two sees the other (the GIL orders
            # them), so no record waits for a wake-up that never comes.
            if self._idle:
                self._idle = False
                self._wake.set()
        else:
            self._put_slow(item, 1)

    def log_table(self, table: pa.Table) -> None:
        """Queues bulk records (an Arrow table with :func:`exposure_schema`) as one item."""
        if table.num_rows:
            self._put_slow(_Bulk(table), table.num_rows, force_check=True)

    def _put_slow(self, item: Any, rows: int, force_check: bool = False) -> None:
        q = self._queue
        if not self._closed and (force_check or len(q) >= self.max_queue):
            if self.on_full == "block":
                limit = self.block_timeout
                deadline = None if limit is None else time.monotonic() + limit
                with self._room:
                    while len(q) >= self.max_queue and not self._closed:
                        self._wake.set()
                        left = 0.05 if deadline is None else deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._room.wait(min(left, 0.05))
            if len(q) >= self.max_queue:
                self._count_dropped(rows)
                return
        if self._closed:
            self._count_dropped(rows)
            return
        q.append(item)
        self._wake.set()

    def _count_dropped(self, rows: int) -> None:
        with self._count_lock:
            self.dropped += rows

    # -- control -------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Writes everything queued so far to the sinks and flushes them; True when done
        within ``timeout`` seconds."""
        if self._closed or not self._thread.is_alive():
            return True
        marker = _Marker()
        self._queue.append(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Writes everything queued, stops the writer and closes the sinks. Idempotent."""
        if self._closed:
            return
        self._closed = True  # from here on, new records are refused (and counted)
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        with self._room:
            self._room.notify_all()
        with self._sink_lock:
            for s in self.sinks:
                report = self._call(s, "close", 0)
                if report:
                    self._account(s, "close", report)
        _LOGGERS.discard(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def counters(self) -> ExposureCounters:
        return ExposureCounters(
            self.written,
            self.deduplicated,
            self.dropped,
            self.errors,
            self.failed,
            len(self._queue),
            self.set_aside,
        )

    def set_aside_records(self) -> list[SetAside]:
        """The last 1,000 records set aside (oldest first), with their positions: kept in
        memory, never logged, since their contents are what could not be written."""
        return list(self._aside)

    def __enter__(self) -> ExposureLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        c = self.counters()
        return (
            f"ExposureLogger(sinks={[type(s).__name__ for s in self.sinks]}, "
            f"written={c.written}, deduplicated={c.deduplicated}, dropped={c.dropped}, "
            f"errors={c.errors}, failed={c.failed}, set_aside={c.set_aside})"
        )

    # -- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        q = self._queue
        pop = q.popleft
        pending: list[tuple[Any, ...]] = []
        first = 0.0
        batch = self.batch_size
        while True:
            while q:
                # Consecutive decisions are turned into rows a chunk at a time; a bulk table
                # or a flush marker ends the chunk, so the order of the queue is kept.
                chunk: list[tuple[Any, ...]] = []
                special = None
                while q and len(chunk) < 4096:
                    item = pop()
                    if type(item) is tuple:
                        chunk.append(item)
                    else:
                        special = item
                        break
                rows = self._rows(chunk, time.monotonic()) if chunk else []
                if rows:
                    if not pending:
                        first = time.monotonic()
                    pending += rows
                    while len(pending) >= batch:
                        self._emit(pending[:batch])
                        pending = pending[batch:]
                if special is not None:
                    self._emit(pending)
                    pending = []
                    if type(special) is _Bulk:
                        self._emit_table(special.table)
                    else:  # a flush marker
                        self._flush_sinks()
                        special.done.set()
                with self._room:  # wake producers waiting for room
                    self._room.notify_all()
            if pending and (self._stopping or time.monotonic() - first >= self.flush_interval):
                self._emit(pending)
                pending = []
                self._flush_sinks()
            if self._stopping and not q:
                self._flush_sinks()
                return
            if pending:
                self._wake.wait(self._poll)
            else:
                self._idle = True
                if not q and not self._stopping:
                    # The timeout only bounds the delay should a wake-up ever be missed.
                    self._wake.wait(max(self.flush_interval, 1.0))
                self._idle = False
            self._wake.clear()

    def _rows(self, items: list[tuple[Any, ...]], now: float) -> list[tuple[Any, ...]]:
        """Queued decisions as ExposureBatch rows, leaving out those without an arm and
        repeats within the TTL."""
        out: list[tuple[Any, ...]] = []
        append = out.append
        dedup = self.dedup_keys
        seen = self._seen
        ttl = self.dedup_ttl
        repeats = 0
        for item in items:
            key = None
            try:
                at_us, unit, info, a, attributes, request_id, evaluated, propagation = item
                arm = a.arm
                if arm is None:
                    continue
                if type(unit) is str:
                    text = unit
                elif type(unit) is int:
                    text = str(unit)
                elif unit is None:
                    text = None
                else:
                    text = unit_key_or_none(unit)
                if dedup:
                    key = (text, info.key, arm, info.version)
                    last = seen.get(key)
                    if last is not None:
                        if now - last < ttl:
                            seen.move_to_end(key)
                            repeats += 1
                            continue
                        del seen[key]
                    seen[key] = now
                    if len(seen) > dedup:
                        seen.popitem(last=False)
                reason = a.reason
                if evaluated is None:
                    evaluated_arm = None
                    mismatch = False
                else:
                    evaluated_arm = evaluated.arm
                    mismatch = evaluated_arm != arm
                append(
                    (
                        at_us,
                        text,
                        info.key,
                        arm,
                        a.bucket,
                        reason,
                        info.version,
                        info.probability(at_us, a.arm_index, reason),
                        attributes,
                        request_id,
                        evaluated_arm,
                        mismatch,
                        propagation,
                    )
                )
            except Exception as exc:  # a malformed item must not stop the writer
                if key is not None:
                    seen.pop(key, None)  # it was not written: not a repeat either
                self._unrecorded(exc)

        self.deduplicated += repeats
        return out

    def _unrecorded(self, exc: Exception) -> None:
        """Counts a queued decision that could not become a record (``logger.log`` called with
        something other than what a Splitter passes) among the records set aside."""
        self.set_aside += 1
        self._aside.append(SetAside(-1, "ExposureLogger", type(exc).__name__, None))
        now = time.monotonic()
        if now - self._last_aside_log >= 10.0:
            self._last_aside_log = now
            log.error(
                "trafficsplit: a queued exposure could not become a record (%s; %d set aside "
                "so far)",
                type(exc).__name__,
                self.set_aside,
            )

    def _call(self, sink: ExposureSink, method: str, rows: int, *args: Any) -> Any:
        """Runs a sink method; its WriteReport (None: all written), or False when it raised."""
        try:
            return getattr(sink, method)(*args)
        except Exception as exc:  # a sink must never take the service down
            self.errors += 1
            self._log_error(sink, method, rows, _describe(exc))
            return False

    def _log_error(self, sink: ExposureSink, method: str, rows: int, why: str | None) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= 10.0:
            self._last_error_log = now
            # The exception's kind, never its text: that may quote the records.
            log.error(
                "trafficsplit: exposure sink %s failed in %s (%d records not stored; "
                "%d failures so far): %s",
                type(sink).__name__,
                method,
                rows,
                self.errors,
                why,
            )

    def _deliver(self, method: str, arg: Any, n: int, records: Any) -> None:
        """Hands ``n`` records to every sink and counts what became of them: written by every
        sink, set aside by one (the record itself stays out of every log), or failed."""
        aside: dict[int, tuple[str, str]] = {}
        failed = 0
        with self._sink_lock:
            for s in self.sinks:
                report = self._call(s, method, n, arg)
                if report is False:
                    failed = n
                elif report is not None:
                    self._account(s, method, report)
                    failed = max(failed, report.failed)
                    name = type(s).__name__
                    for pos, why in zip(report.set_aside, report.set_aside_why, strict=False):
                        aside.setdefault(pos, (name, why))
        failed = min(failed, n - len(aside))
        self.written += n - len(aside) - failed
        self.failed += failed
        if aside:
            self._set_aside(aside, records)
        self._position += n

    def _account(self, sink: ExposureSink, method: str, report: WriteReport) -> None:
        if report.lost:
            # Records counted written with an earlier batch, gone with their file.
            lost = min(report.lost, self.written)
            self.written -= lost
            self.failed += lost
        if report.failed or report.lost:
            self.errors += 1
            self._log_error(sink, method, report.failed + report.lost, report.error)

    def _set_aside(self, aside: dict[int, tuple[str, str]], records: Any) -> None:
        self.set_aside += len(aside)
        if callable(records):
            records = records()
        base = self._position
        for pos in sorted(aside):
            sink, why = aside[pos]
            self._aside.append(SetAside(base + pos, sink, why, records[pos]))
        now = time.monotonic()
        if now - self._last_aside_log >= 10.0:
            self._last_aside_log = now
            first = sorted(base + p for p in aside)[:10]
            log.error(
                "trafficsplit: exposure sinks set aside %d record(s) they cannot encode, at "
                "position(s) %s (%d set aside so far; ExposureLogger.set_aside_records() "
                "has them)",
                len(aside),
                ", ".join(map(str, first)) + (", ..." if len(aside) > len(first) else ""),
                self.set_aside,
            )

    def _emit(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        records = ExposureBatch(rows)
        self._deliver("write", records, len(records), records)

    def _emit_table(self, table: pa.Table) -> None:
        self._deliver("write_table", table, table.num_rows, lambda: ExposureBatch.from_table(table))

    def _flush_sinks(self) -> None:
        with self._sink_lock:
            for s in self.sinks:
                report = self._call(s, "flush", 0)
                if report:
                    self._account(s, "flush", report)

    # -- fork ------------------------------------------------------------------------------

    def _before_fork(self) -> None:
        self._sink_lock.acquire()
        for s in self.sinks:
            # The child must not inherit unwritten file buffers; best effort (the writer
            # reports sink errors).
            with contextlib.suppress(Exception):
                s.flush()

    def _after_fork_in_parent(self) -> None:
        self._sink_lock.release()

    def _after_fork_in_child(self) -> None:
        # The writer thread does not exist here and the parent's queued records stay the
        # parent's: start empty, with fresh locks and a writer of our own.
        self._sink_lock = threading.RLock()
        for s in self.sinks:
            try:
                s.after_fork_in_child()
            except Exception:
                log.exception("trafficsplit: exposure sink %s after fork", type(s).__name__)
        if not self._closed:
            self._start()


def _describe(exc: BaseException) -> str:
    """An exception for a log line: its kind, and an OS error's own words (``No space left
    on device``); never other text, which may quote records."""
    if isinstance(exc, OSError):
        if exc.strerror:
            return f"{type(exc).__name__}: [Errno {exc.errno}] {exc.strerror}"
        if len(exc.args) == 1 and isinstance(exc.args[0], str) and len(exc.args[0]) <= 100:
            return f"{type(exc).__name__}: {exc.args[0]}"
    return type(exc).__name__


# -- process-wide: exit and fork -------------------------------------------------------------

_LOGGERS: weakref.WeakSet[ExposureLogger] = weakref.WeakSet()


def _close_all() -> None:
    for lg in list(_LOGGERS):
        try:
            lg.close()
        except Exception:  # at exit, one logger's failure must not stop the others
            log.exception("trafficsplit: closing an exposure logger at exit")


_forking: list[ExposureLogger] = []


def _before_fork() -> None:
    _forking[:] = list(_LOGGERS)
    for lg in _forking:
        lg._before_fork()


def _after_fork_in_parent() -> None:
    for lg in _forking:
        lg._after_fork_in_parent()
    _forking.clear()


def _after_fork_in_child() -> None:
    for lg in _forking:
        lg._after_fork_in_child()
    _forking.clear()


atexit.register(_close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
