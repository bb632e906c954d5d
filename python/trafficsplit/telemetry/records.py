"""Exposure records: one per decision, with the assignment probability that inverse-propensity
analysis needs, deduplicated in bounded memory and written off the request path
(docs/telemetry.md).

The request path only builds a tuple and appends it to a bounded queue; a background thread
turns tuples into records (:class:`ExposureRecord`), drops duplicates and hands batches to the
sinks. Batch calls (``Splitter.assign_frame(..., log_exposures=True)``) enqueue one Arrow table
per call instead of one object per row.

>>> import tempfile, trafficsplit as ts
>>> folder = tempfile.mkdtemp()
>>> sp = ts.Splitter({"experiments": [{"key": "e", "arms": {"a": 50, "b": 50}}]},
...                  exposures=ts.JsonlSink(folder))
>>> _ = sp.assign("e", "user-1")
>>> sp.close()
>>> ts.read_exposures(folder)[["unit", "experiment", "probability"]].values.tolist()
[['user-1', 'e', 0.5]]
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import json
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ._frames import object_values, without_views
from ._optional import require
from ._shared.keys import unit_key_or_none
from .errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "EXPOSURE_FIELDS",
    "CallableSink",
    "ExposureBatch",
    "ExposureCounters",
    "ExposureLogger",
    "ExposureRecord",
    "ExposureSink",
    "JsonlSink",
    "LoggingSink",
    "OpenTelemetrySink",
    "ParquetSink",
    "exposure_schema",
    "read_exposures",
]

log = logging.getLogger("trafficsplit.exposure")

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


class ExposureRecord(NamedTuple):
    """One exposure: a unit that got an arm. Field order is the column order of every sink."""

    timestamp: _dt.datetime  # the decision's time (``at``), UTC, microseconds
    unit: str | None  # canonical unit text (integers as decimal text, bytes as "b:<hex>")
    experiment: str
    arm: str
    bucket: int  # the unit's arm bucket, -1 when the unit is missing
    reason: str  # assigned, sticky, override or propagated
    version: str  # the configuration snapshot's version
    probability: float  # P(this arm) under the allocation step in force at ``timestamp``
    attributes: dict[str, Any] | None  # the chosen request attributes
    request_id: str | None
    evaluated_arm: str | None  # with reason propagated: this service's own evaluation
    mismatch: bool  # with reason propagated: evaluated_arm differs from arm
    # An upstream arm for this experiment: "served" (reason propagated), or why it was refused
    # (untrusted, unsigned, unknown_key, bad_signature, unknown_arm, version_mismatch, override).
    propagation: str | None = None


EXPOSURE_FIELDS: tuple[str, ...] = ExposureRecord._fields


_DICTIONARY_COLUMNS = ("experiment", "arm", "reason", "version")


def exposure_schema() -> pa.Schema:
    """The Arrow schema of exposure tables (Parquet files, bulk batches): experiment, arm,
    reason and version are dictionary-encoded strings; ``attributes`` is a JSON object in
    text."""
    pa = require("pyarrow", what="exposure_schema")

    names = pa.dictionary(pa.int32(), pa.string())
    return pa.schema(
        [
            ("timestamp", pa.timestamp("us", tz="UTC")),
            ("unit", pa.string()),
            ("experiment", names),
            ("arm", names),
            ("bucket", pa.int32()),
            ("reason", names),
            ("version", names),
            ("probability", pa.float64()),
            ("attributes", pa.string()),
            ("request_id", pa.string()),
            ("evaluated_arm", pa.string()),
            ("mismatch", pa.bool_()),
            ("propagation", pa.string()),
        ]
    )


class ExposureCounters(NamedTuple):
    """What an :class:`ExposureLogger` did since it started (or since ``fork()`` in a child)."""

    written: int  # records handed to every sink without error
    deduplicated: int  # records left out as repeats within the TTL
    dropped: int  # records refused because the queue was full (on_full="drop") or closed
    errors: int  # failed sink calls
    failed: int  # records in failed sink calls
    queued: int  # items waiting in the queue now


class ExposureBatch(Sequence[ExposureRecord]):
    """The records of one flush, as sinks receive them: a sequence of :class:`ExposureRecord`
    (built on first access) that the file sinks read column-wise instead."""

    __slots__ = ("_records", "_rows")

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        # Rows are ExposureRecord fields with the time as int microseconds since the epoch.
        self._rows = rows
        self._records: list[ExposureRecord] | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def _all(self) -> list[ExposureRecord]:
        if self._records is None:
            new = tuple.__new__
            self._records = [
                new(ExposureRecord, (_EPOCH + _dt.timedelta(microseconds=r[0]), *r[1:]))
                for r in self._rows
            ]
        return self._records

    def __getitem__(self, i: Any) -> Any:
        return self._all()[i]

    def __iter__(self) -> Iterator[ExposureRecord]:
        return iter(self._all())

    def jsonl(self) -> str:
        """The records as JSON Lines, with constant parts encoded once per batch."""
        rows = self._rows
        if not rows:
            return ""
        stamps = np.datetime_as_string(
            np.fromiter((r[0] for r in rows), np.int64, len(rows)).view("datetime64[us]"),
            unit="us",
        ).tolist()
        heads: dict[tuple[str, str], str] = {}
        middles: dict[tuple[str, str, float], str] = {}
        plain_tail = '"request_id":null,"evaluated_arm":null,"mismatch":false,"propagation":null}\n'
        out = []
        for r, stamp in zip(rows, stamps, strict=True):
            _, unit, key, arm, bucket, reason, version, p, attrs, rid, evaluated, mismatch, prop = r
            head = heads.get((key, arm))
            if head is None:
                head = heads[(key, arm)] = f'"experiment":{_esc(key)},"arm":{_esc(arm)},"bucket":'
            middle = middles.get((reason, version, p))
            if middle is None:
                middle = middles[(reason, version, p)] = (
                    f',"reason":"{reason}","version":{_esc(version)},"probability":{p!r},'
                    '"attributes":'
                )
            if rid is None and evaluated is None and not mismatch and prop is None:
                tail = plain_tail
            else:
                tail = (
                    f'"request_id":{_json_value(rid)},"evaluated_arm":{_json_value(evaluated)},'
                    f'"mismatch":{"true" if mismatch else "false"},'
                    f'"propagation":{_json_value(prop)}}}\n'
                )
            out.append(
                f'{{"timestamp":"{stamp}+00:00","unit":{"null" if unit is None else _esc(unit)},'
                f"{head}{bucket}{middle}{'null' if attrs is None else _json_value(attrs)},{tail}"
            )
        return "".join(out)

    def table(self) -> pa.Table:
        """The records as an Arrow table with :func:`exposure_schema`."""
        pa = require("pyarrow", what="ExposureBatch.table")

        schema = exposure_schema()
        cols = list(zip(*self._rows, strict=True)) if self._rows else [()] * len(schema)
        arrays = [pa.array(np.asarray(cols[0], np.int64)).cast(schema.field(0).type)]
        arrays += [_column(field, cols[i]) for i, field in enumerate(schema) if i > 0]
        return pa.Table.from_arrays(arrays, schema=schema)


# -- the probability of an arm ---------------------------------------------------------------


class ExposureInfo:
    """What the writer needs of one experiment of one snapshot: key, arm names, version and the
    experiment's per-step arm probabilities (:meth:`Experiment.probability_table`)."""

    __slots__ = ("_compiled", "_experiment", "_only", "arm_names", "key", "version")

    def __init__(self, key: str, version: str, experiment: Any) -> None:
        self.key = key
        self.version = version
        self.arm_names: tuple[str, ...] = tuple(experiment.arm_names)
        self._experiment = experiment
        self._compiled = experiment._compiled
        # the one step's row, for the experiments that never changed their allocation
        self._only: list[float] | None = None

    def probability(self, at_us: int, arm_index: int, reason: str) -> float:
        if reason == "override":
            return 1.0
        only = self._only
        if only is not None:
            return only[arm_index]
        table = self._experiment.probability_table()
        if len(table) == 1:
            self._only = table[0].tolist()
            return self._only[arm_index]
        return float(table[max(self._compiled.step_at(at_us), 0), arm_index])

    def probabilities(self, at_us: np.ndarray, arm_index: np.ndarray) -> np.ndarray:
        table = self._experiment.probability_table()
        if len(table) == 1:
            return table[0].take(arm_index)
        steps = np.maximum(self._compiled.steps_at(np.ascontiguousarray(at_us, np.int64)), 0)
        return table[steps, arm_index]


# -- sinks -----------------------------------------------------------------------------------


class ExposureSink:
    """Where exposure records go. Subclasses implement :meth:`write`; the logger calls every
    method from its writer thread only, so a sink needs no locking of its own."""

    def write(self, records: Sequence[ExposureRecord]) -> None:
        raise NotImplementedError

    def write_table(self, table: pa.Table) -> None:
        """Bulk records as an Arrow table with :func:`exposure_schema`; by default converted
        to records and passed to :meth:`write`."""
        self.write(_records_from_table(table))

    def flush(self) -> None:
        """Makes what was written durable (called after each batch and before ``fork()``)."""

    def close(self) -> None:
        """Flushes and releases files and handles."""

    def after_fork_in_child(self) -> None:
        """Drops state inherited from the parent (open files belong to the parent)."""


class CallableSink(ExposureSink):
    """Calls ``fn(record)`` per record, or ``fn(records)`` per batch with ``batch=True``."""

    def __init__(self, fn: Callable[[Any], Any], batch: bool = False) -> None:
        if not callable(fn):
            raise ConfigError(f"CallableSink needs a callable, got {type(fn).__name__}")
        self._fn = fn
        self._batch = batch

    def write(self, records: Sequence[ExposureRecord]) -> None:
        if self._batch:
            self._fn(list(records))
        else:
            for r in records:
                self._fn(r)


class LoggingSink(ExposureSink):
    """One Python ``logging`` message per record: the record as a JSON object, with the record
    itself in ``extra={"exposure": record}``."""

    def __init__(self, logger: str | logging.Logger = "trafficsplit.exposures", level: int = 20):
        self._logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self._level = level

    def write(self, records: Sequence[ExposureRecord]) -> None:
        lg, level = self._logger, self._level
        if not lg.isEnabledFor(level):
            return
        for r in records:
            lg.log(level, "%s", _json_line(r).rstrip("\n"), extra={"exposure": r})


_OTEL_REASON = {
    "assigned": "split",
    "sticky": "cached",
    "propagated": "cached",
    "override": "targeting_match",
}


class OpenTelemetrySink(ExposureSink):
    """One OpenTelemetry event ``feature_flag.evaluation`` per record (a log record with an
    event name, as the feature-flag semantic conventions define it).

    Attributes: ``feature_flag.key`` (experiment), ``feature_flag.result.variant`` (arm),
    ``feature_flag.result.reason`` (``split``, ``cached`` or ``targeting_match``, see
    docs/telemetry.md), ``feature_flag.context.id`` (unit), ``feature_flag.version`` (config
    version), ``feature_flag.provider.name`` (``trafficsplit``), and ``trafficsplit.reason``,
    ``trafficsplit.bucket``, ``trafficsplit.probability``, ``trafficsplit.request_id``,
    ``trafficsplit.attribute.<name>``, ``trafficsplit.evaluated_arm``, ``trafficsplit.mismatch``,
    ``trafficsplit.propagation``.

    ``logger_provider``: an SDK ``LoggerProvider``; by default the global one.
    """

    def __init__(self, logger_provider: Any = None) -> None:
        _logs = require("opentelemetry._logs", what="OpenTelemetrySink")

        from . import __version__

        provider = logger_provider if logger_provider is not None else _logs.get_logger_provider()
        self._logger = provider.get_logger("trafficsplit", __version__)
        self._severity = _logs.SeverityNumber.INFO

    def write(self, records: Sequence[ExposureRecord]) -> None:
        emit = self._logger.emit
        for r in records:
            attrs: dict[str, Any] = {
                "feature_flag.key": r.experiment,
                "feature_flag.result.variant": r.arm,
                "feature_flag.result.reason": _OTEL_REASON.get(r.reason, "unknown"),
                "feature_flag.version": r.version,
                "feature_flag.provider.name": "trafficsplit",
                "trafficsplit.reason": r.reason,
                "trafficsplit.bucket": r.bucket,
                "trafficsplit.probability": r.probability,
            }
            if r.unit is not None:
                attrs["feature_flag.context.id"] = r.unit
            if r.request_id is not None:
                attrs["trafficsplit.request_id"] = r.request_id
            if r.reason == "propagated":
                attrs["trafficsplit.mismatch"] = r.mismatch
                if r.evaluated_arm is not None:
                    attrs["trafficsplit.evaluated_arm"] = r.evaluated_arm
            if r.propagation is not None:
                attrs["trafficsplit.propagation"] = r.propagation
            if r.attributes:
                for k, v in r.attributes.items():
                    if isinstance(v, str | bool | int | float):
                        attrs[f"trafficsplit.attribute.{k}"] = v
                    elif v is not None:
                        attrs[f"trafficsplit.attribute.{k}"] = str(v)
            ts_ns = int(r.timestamp.timestamp()) * 1_000_000_000 + r.timestamp.microsecond * 1000
            emit(
                timestamp=ts_ns,
                severity_number=self._severity,
                event_name="feature_flag.evaluation",
                attributes=attrs,
            )


class _RotatingFiles(ExposureSink):
    """Files ``<prefix>-<UTC start>-<pid>-<n><suffix>`` in a folder, a new one after
    ``rotate_bytes`` bytes or ``rotate_seconds`` seconds (checked at each write)."""

    suffix = ""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        prefix: str = "exposures",
        rotate_bytes: int | None = 256 * 2**20,
        rotate_seconds: float | None = 3600.0,
    ) -> None:
        if rotate_bytes is not None and (not isinstance(rotate_bytes, int) or rotate_bytes < 1):
            raise ConfigError(f"rotate_bytes must be a positive int or None, got {rotate_bytes!r}")
        if rotate_seconds is not None and not rotate_seconds > 0:
            raise ConfigError(f"rotate_seconds must be positive or None, got {rotate_seconds!r}")
        if not isinstance(prefix, str) or not prefix or "/" in prefix:
            raise ConfigError(f"prefix must be a file name part, got {prefix!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self._seq = 0
        self._opened = 0.0
        self.files: list[Path] = []  # every file this process finished or has open

    def _next_path(self) -> Path:
        self._seq += 1
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return self.directory / f"{self.prefix}-{stamp}-{os.getpid()}-{self._seq:05d}{self.suffix}"

    def _due(self, size: int) -> bool:
        if self.rotate_bytes is not None and size >= self.rotate_bytes:
            return True
        return self.rotate_seconds is not None and time.monotonic() - self._opened >= (
            self.rotate_seconds
        )


class JsonlSink(_RotatingFiles):
    """JSON Lines files in a folder, one object per record (fields of :class:`ExposureRecord`,
    ``timestamp`` in ISO 8601 with ``+00:00``), rotated by size and age."""

    suffix = ".jsonl"
    _file: Any = None  # the open file, after the first write

    def _open(self) -> Any:
        path = self._next_path()
        self._file = open(path, "a", encoding="utf-8", buffering=2**20)  # noqa: SIM115
        self._opened = time.monotonic()
        self.files.append(path)
        return self._file

    def _text(self, text: str) -> None:
        f = self._file if self._file is not None else self._open()
        f.write(text)
        if self._due(f.tell()):
            f.close()
            self._file = None

    def write(self, records: Sequence[ExposureRecord]) -> None:
        if isinstance(records, ExposureBatch):
            text = records.jsonl()
        else:
            text = "".join(_json_line(r) for r in records)
        if text:
            self._text(text)

    def write_table(self, table: pa.Table) -> None:
        if table.num_rows:
            self._text(_batch_from_table(table).jsonl())

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def after_fork_in_child(self) -> None:
        # The parent flushed before the fork, so the inherited buffer is empty: closing it
        # writes nothing; the child continues in a file of its own.
        if self._file is not None:
            self._file.close()
            self._file = None
        self.files = []


class ParquetSink(_RotatingFiles):
    """Parquet files in a folder (pyarrow), one row group per flush; a file is named
    ``….parquet.inprogress`` while open and renamed to ``….parquet`` when complete, so readers
    never see a file without its footer."""

    suffix = ".parquet"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        prefix: str = "exposures",
        rotate_bytes: int | None = 256 * 2**20,
        rotate_seconds: float | None = 3600.0,
        compression: str = "snappy",
    ) -> None:
        super().__init__(directory, prefix, rotate_bytes, rotate_seconds)
        self.compression = compression
        # pyarrow imports modules lazily (pyarrow.compute, pandas) on first use: run that here,
        # in the constructing thread, not on the writer thread where an import can race with
        # os.fork() (the at-fork handlers such imports register would be half applied).
        require("pyarrow.parquet", what="ParquetSink")

        ExposureBatch(
            [(0, "u", "e", "a", 0, "assigned", "v", 1.0, None, None, None, False, None)]
        ).table()
        self._writer: Any = None
        self._file: Any = None
        self._path: Path | None = None

    def write(self, records: Sequence[ExposureRecord]) -> None:
        if isinstance(records, ExposureBatch):
            self.write_table(records.table())
        elif records:
            self.write_table(ExposureBatch([_row(r) for r in records]).table())

    def write_table(self, table: pa.Table) -> None:
        pq = require("pyarrow.parquet", what="ParquetSink.write_table")

        if not table.num_rows:
            return
        if self._writer is None:
            self._path = self._next_path()
            self._file = open(str(self._path) + ".inprogress", "wb")  # noqa: SIM115
            # High-cardinality columns (unit, time, request id) skip the dictionary attempt.
            self._writer = pq.ParquetWriter(
                self._file,
                exposure_schema(),
                compression=self.compression,
                use_dictionary=[*_DICTIONARY_COLUMNS, "probability", "attributes", "evaluated_arm"],
            )
            self._opened = time.monotonic()
        self._writer.write_table(table, row_group_size=table.num_rows)
        if self._due(self._file.tell()):
            self._finish()

    def _finish(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._file.close()
        assert self._path is not None
        os.replace(str(self._path) + ".inprogress", self._path)
        self.files.append(self._path)
        self._writer = self._file = self._path = None

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        self._finish()

    def after_fork_in_child(self) -> None:
        # The open file is the parent's to finish. Point the inherited descriptor at /dev/null
        # so that whatever the abandoned writer still writes (its footer, when collected)
        # cannot reach the parent's file.
        if self._file is not None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self._file.fileno())
            finally:
                os.close(devnull)
        self._writer = self._file = self._path = None
        self.files = []


def read_exposures(path: str | os.PathLike[str]) -> Any:
    """Every exposure record under a folder (``*.jsonl`` and complete ``*.parquet`` files) or
    in one file, as a DataFrame with the columns of :data:`EXPOSURE_FIELDS`."""
    pd = require("pandas", what="read_exposures")
    pa = require("pyarrow", what="read_exposures")
    pq = require("pyarrow.parquet", what="read_exposures")

    p = Path(path)
    files = sorted(p.glob("*.jsonl")) + sorted(p.glob("*.parquet")) if p.is_dir() else [p]
    tables = []
    for f in files:
        if f.suffix == ".parquet":
            tables.append(pq.read_table(f, schema=exposure_schema()))
        else:
            with open(f, encoding="utf-8") as fh:
                rows = [json.loads(line) for line in fh if line.strip()]
            tables.append(_table_from_json_rows(rows))
    if not tables:
        return exposure_schema().empty_table().to_pandas()
    table = pa.concat_tables(tables, promote_options="permissive")
    table = table.cast(
        pa.schema(
            [
                pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type) else f
                for f in table.schema
            ]
        )
    )
    attributes = [None if a is None else json.loads(a) for a in table["attributes"].to_pylist()]
    df = table.drop_columns(["attributes"]).to_pandas()
    at = EXPOSURE_FIELDS.index("attributes")
    df.insert(at, "attributes", pd.Series(attributes, dtype=object))
    return df


# -- record conversions ------------------------------------------------------------------------

_esc = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _json_value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        return _esc(v)
    return json.dumps(v, default=str, ensure_ascii=False)


def _json_line(r: ExposureRecord) -> str:
    p = r.probability
    return (
        f'{{"timestamp":"{r.timestamp.isoformat()}","unit":{_json_value(r.unit)},'
        f'"experiment":{_esc(r.experiment)},"arm":{_esc(r.arm)},"bucket":{r.bucket},'
        f'"reason":"{r.reason}","version":{_esc(r.version)},'
        f'"probability":{p!r},"attributes":{_json_value(r.attributes)},'
        f'"request_id":{_json_value(r.request_id)},'
        f'"evaluated_arm":{_json_value(r.evaluated_arm)},'
        f'"mismatch":{"true" if r.mismatch else "false"},'
        f'"propagation":{_json_value(r.propagation)}}}\n'
    )


def _attributes_text(a: Any) -> str | None:
    return None if a is None else json.dumps(a, default=str, ensure_ascii=False, sort_keys=True)


def _dictionary(values: pa.Array) -> pa.Array:
    pa = require("pyarrow", what="exposure tables")

    d = values.dictionary_encode()
    return pa.DictionaryArray.from_arrays(d.indices.cast(pa.int32()), d.dictionary)


def _row(r: ExposureRecord) -> tuple[Any, ...]:
    t = r.timestamp
    us = (t - _EPOCH) // _dt.timedelta(microseconds=1)
    return (us, *r[1:])


def _table_from_json_rows(rows: list[dict[str, Any]]) -> pa.Table:
    pa = require("pyarrow", what="exposure tables")

    schema = exposure_schema()
    arrays = []
    for field in schema:
        values = [r.get(field.name) for r in rows]
        if field.name == "timestamp":
            values = [_dt.datetime.fromisoformat(v) for v in values]
        arrays.append(_column(field, values))
    return pa.Table.from_arrays(arrays, schema=schema)


def _column(field: pa.Field, values: Sequence[Any]) -> pa.Array:
    """One column of an exposure table from Python values (``attributes`` as objects)."""
    pa = require("pyarrow", what="exposure tables")

    if field.name == "attributes":
        values = [_attributes_text(a) for a in values]
    if pa.types.is_dictionary(field.type):
        return _dictionary(pa.array(values, pa.string()))
    return pa.array(values, type=field.type)


def _batch_from_table(table: pa.Table) -> ExposureBatch:
    cols: list[Any] = [table.column(f).to_pylist() for f in EXPOSURE_FIELDS[1:]]
    at = EXPOSURE_FIELDS.index("attributes") - 1
    cols[at] = [None if a is None else json.loads(a) for a in cols[at]]
    us = table.column("timestamp").cast("int64").to_numpy(zero_copy_only=False).tolist()
    return ExposureBatch(list(zip(us, *cols, strict=True)))


def _records_from_table(table: pa.Table) -> list[ExposureRecord]:
    return list(_batch_from_table(table))


# -- the logger ------------------------------------------------------------------------------


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
        self._poll = min(0.01, self.flush_interval)
        self._seen: OrderedDict[tuple[Any, ...], float] = OrderedDict()
        # Held while a sink runs and taken around fork(); re-entrant for a sink that forks.
        self._sink_lock = threading.RLock()
        self._last_error_log = 0.0
        self._start()
        _LOGGERS.add(self)

    def _start(self) -> None:
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._room = threading.Condition(threading.Lock())
        self._count_lock = threading.Lock()
        self._closed = False
        self._stopping = False
        self.written = self.deduplicated = self.dropped = self.errors = self.failed = 0
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
                self._call(s, "close", 0)
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
        )

    def __enter__(self) -> ExposureLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        c = self.counters()
        return (
            f"ExposureLogger(sinks={[type(s).__name__ for s in self.sinks]}, "
            f"written={c.written}, deduplicated={c.deduplicated}, dropped={c.dropped}, "
            f"errors={c.errors})"
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
                chunk = []
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
            self._wake.wait(self._poll)
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
        for at_us, unit, info, a, attributes, request_id, evaluated, propagation in items:
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
        self.deduplicated += repeats
        return out

    def _call(self, sink: ExposureSink, method: str, rows: int, *args: Any) -> bool:
        try:
            getattr(sink, method)(*args)
            return True
        except Exception as exc:  # a sink must never take the service down
            self.errors += 1
            self.failed += rows
            now = time.monotonic()
            if now - self._last_error_log >= 10.0:
                self._last_error_log = now
                log.error(
                    "trafficsplit: exposure sink %s failed in %s (%d records lost; "
                    "%d failures so far): %r",
                    type(sink).__name__,
                    method,
                    rows,
                    self.errors,
                    exc,
                )
            return False

    def _emit(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        records = ExposureBatch(rows)
        with self._sink_lock:
            ok = all([self._call(s, "write", len(records), records) for s in self.sinks])
        if ok:
            self.written += len(records)

    def _emit_table(self, table: pa.Table) -> None:
        with self._sink_lock:
            ok = all([self._call(s, "write_table", table.num_rows, table) for s in self.sinks])
        if ok:
            self.written += table.num_rows

    def _flush_sinks(self) -> None:
        with self._sink_lock:
            for s in self.sinks:
                self._call(s, "flush", 0)

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


# -- bulk records ----------------------------------------------------------------------------


def bulk_table(
    info: ExposureInfo,
    units: Any,
    rows: np.ndarray,
    at_us: np.ndarray,
    arm: np.ndarray,
    bucket: np.ndarray,
    reason: np.ndarray,
    reason_names: Sequence[str],
    attributes: Any = None,
    attribute_names: Sequence[str] = (),
) -> pa.Table:
    """Exposure records for the ``rows`` of a frame that got an arm, built column by column."""
    pa = require("pyarrow", what="Splitter.assign_frame(log_exposures=True)")

    n = len(rows)
    schema = exposure_schema()
    every = n == len(arm)  # no row left out: no gathers
    take = None if every else pa.array(rows)
    arm_rows = (arm if every else arm[rows]).astype(np.int32)
    reason_rows = (reason if every else reason[rows]).astype(np.int32)
    at_rows = np.ascontiguousarray(at_us if every else at_us[rows], np.int64)
    probability = info.probabilities(at_rows, arm_rows)
    override = reason_names.index("override")
    if (reason_rows == override).any():
        probability = np.where(reason_rows == override, 1.0, probability)
    zeros = pa.array(np.zeros(n, np.int32))

    def constant(value: str) -> pa.Array:
        return pa.DictionaryArray.from_arrays(zeros, pa.array([value]))

    def coded(codes: np.ndarray, names: Sequence[str]) -> pa.Array:
        return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(list(names)))

    nulls = pa.nulls(n, pa.string())
    columns = [
        pa.array(at_rows).cast(schema.field("timestamp").type),
        _unit_texts(units, take),
        constant(info.key),
        coded(arm_rows, info.arm_names),
        pa.array(np.ascontiguousarray(bucket if every else bucket[rows], np.int32)),
        coded(reason_rows, reason_names),
        constant(info.version),
        pa.array(probability, pa.float64()),
        _attribute_objects(attributes, attribute_names, rows) if attribute_names else nulls,
        nulls,
        nulls,
        pa.array(np.zeros(n, np.bool_)),
        nulls,
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _unit_texts(units: Any, take: pa.Array | None) -> pa.Array:
    """Canonical unit text for the taken rows: str as is, integers as decimal text, bytes as
    ``b:<hex>``; one object per row only for mixed or binary columns."""
    pa = require("pyarrow", what="Splitter.assign_frame(log_exposures=True)")

    try:
        arr = pa.array(units, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = None
    if arr is not None:
        arr = without_views(arr)
        if take is not None:
            arr = arr.take(take)
        t = arr.type
        if pa.types.is_dictionary(t):
            arr = arr.dictionary_decode()
            t = arr.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t):
            return arr.cast(pa.string())
    values = object_values(units) if hasattr(units, "to_numpy") else np.asarray(units)
    rows = values if take is None else values[take.to_numpy()]
    return pa.array([unit_key_or_none(v) for v in rows], pa.string())


def _attribute_objects(frame: Any, names: Sequence[str], rows: np.ndarray) -> pa.Array:
    """The chosen columns of each row as JSON object text, encoding each distinct value once."""
    pa = require("pyarrow", what="Splitter.assign_frame(log_exposures=True)")
    pc = require("pyarrow.compute", what="Splitter.assign_frame(log_exposures=True)")
    if not isinstance(frame, pa.Table):
        pd = require("pandas", what="Splitter.assign_frame(log_exposures=True)")

    arrow = isinstance(frame, pa.Table)  # a pyarrow Table, or a polars frame read as one
    present = [c for c in names if c in (frame.column_names if arrow else frame.columns)]
    if not present:
        return pa.nulls(len(rows), pa.string())
    parts: list[Any] = []
    for i, name in enumerate(sorted(present)):
        if arrow:
            column = without_views(frame.column(name)).take(pa.array(rows)).combine_chunks()
            if pa.types.is_dictionary(column.type):
                column = column.dictionary_decode()
            encoded = pc.dictionary_encode(column)
            uniques = encoded.dictionary.to_pylist()
            codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        else:
            codes, uniques = pd.factorize(frame[name].iloc[rows], use_na_sentinel=True)
        texts = [json.dumps(_plain(v), default=str, ensure_ascii=False) for v in uniques]
        texts.append("null")
        codes = np.where(codes < 0, len(texts) - 1, codes).astype(np.int32)
        prefix = ("{" if i == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":"
        parts.append(prefix)
        parts.append(pa.DictionaryArray.from_arrays(codes, texts).cast(pa.string()))
    parts.append("}")
    return pc.binary_join_element_wise(*parts, "")


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


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
