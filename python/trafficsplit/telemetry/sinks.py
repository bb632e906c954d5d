"""Where exposure records go (docs/telemetry.md, "Sinks"): JSON Lines and Parquet files,
Python ``logging``, OpenTelemetry events or any callable; and :func:`read_exposures`, which
reads the files back. The logger calls a sink from its writer thread only.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._optional import require
from ..errors import ConfigError
from .records import EXPOSURE_FIELDS, ExposureBatch, ExposureRecord, exposure_schema

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "CallableSink",
    "ExposureSink",
    "JsonlSink",
    "LoggingSink",
    "OpenTelemetrySink",
    "ParquetSink",
    "read_exposures",
]


class ExposureSink:
    """Where exposure records go. Subclasses implement :meth:`write`; the logger calls every
    method from its writer thread only, so a sink needs no locking of its own."""

    def write(self, records: Sequence[ExposureRecord]) -> None:
        raise NotImplementedError

    def write_table(self, table: pa.Table) -> None:
        """Bulk records as an Arrow table with :func:`exposure_schema`; by default converted
        to records and passed to :meth:`write`."""
        self.write(list(ExposureBatch.from_table(table)))

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
        batch = ExposureBatch.of(records)
        # split("\n"), not splitlines(): JSON text may hold U+2028 and other line breaks.
        for r, line in zip(batch, batch.jsonl().split("\n"), strict=False):
            lg.log(level, "%s", line, extra={"exposure": r})


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

        provider = logger_provider if logger_provider is not None else _logs.get_logger_provider()
        self._logger = provider.get_logger("trafficsplit", _package_version())
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


def _package_version() -> str | None:
    """The installed distribution's version, for the instrumentation scope; None when the
    package runs from a source tree that was never installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trafficsplit")
    except PackageNotFoundError:
        return None


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
        text = ExposureBatch.of(records).jsonl()
        if text:
            self._text(text)

    def write_table(self, table: pa.Table) -> None:
        if table.num_rows:
            self._text(ExposureBatch.from_table(table).jsonl())

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
        if records:
            self.write_table(ExposureBatch.of(records).table())

    def write_table(self, table: pa.Table) -> None:
        pa = require("pyarrow", what="ParquetSink.write_table")
        pq = require("pyarrow.parquet", what="ParquetSink.write_table")

        if not table.num_rows:
            return
        if self._writer is None:
            self._path = self._next_path()
            self._file = open(str(self._path) + ".inprogress", "wb")  # noqa: SIM115
            schema = exposure_schema()
            coded = [f.name for f in schema if pa.types.is_dictionary(f.type)]
            # High-cardinality columns (unit, time, request id) skip the dictionary attempt.
            self._writer = pq.ParquetWriter(
                self._file,
                schema,
                compression=self.compression,
                use_dictionary=[*coded, "probability", "attributes", "evaluated_arm"],
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
            tables.append(ExposureBatch.from_json(rows).table())
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
