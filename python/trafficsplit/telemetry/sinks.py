"""Where exposure records go (docs/telemetry.md, "Sinks"): JSON Lines and Parquet files,
Python ``logging``, OpenTelemetry events or any callable; and :func:`read_exposures`, which
reads the files back. The logger calls a sink from its writer thread only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .._optional import require
from ..errors import ArgumentError, ConfigError, Error
from .records import (
    EXPOSURE_FIELDS,
    ExposureBatch,
    ExposureRecord,
    exposure_schema,
    table_jsonl,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "CallableSink",
    "ExposureSink",
    "JsonlSink",
    "LoggingSink",
    "OpenTelemetrySink",
    "ParquetSink",
    "WriteReport",
    "read_exposures",
]


class WriteReport(NamedTuple):
    """What a sink call did with its records when it did not write them all (a sink returns
    None when it did). Never holds a record's contents: positions and counts only."""

    set_aside: tuple[int, ...] = ()  # positions in the batch of records it could not encode
    set_aside_why: tuple[str, ...] = ()  # for each, the name of the error that refused it
    failed: int = 0  # records of this call encoded but not stored (full disk, removed file)
    lost: int = 0  # records of earlier calls, then stored, lost now (an unfinished file)
    error: str | None = None  # why records failed or were lost, for the log


def _os_error_text(exc: OSError) -> str:
    """The OS's words for an error (``No space left on device``), without file names."""
    if exc.strerror:
        return f"{type(exc).__name__}: [Errno {exc.errno}] {exc.strerror}"
    return type(exc).__name__


def _report(
    bad: list[int], why: list[str], failed: int = 0, lost: int = 0, error: str | None = None
) -> WriteReport | None:
    if not (bad or failed or lost):
        return None
    return WriteReport(tuple(bad), tuple(why), failed, lost, error)


class ExposureSink:
    """Where exposure records go. Subclasses implement :meth:`write`; the logger calls every
    method from its writer thread only, so a sink needs no locking of its own."""

    def write(self, records: Sequence[ExposureRecord]) -> WriteReport | None:
        """Writes ``records``; returns None when every one was written, else a
        :class:`WriteReport`. Raising means that none of them was written."""
        raise NotImplementedError

    def write_table(self, table: pa.Table) -> WriteReport | None:
        """Bulk records as an Arrow table with :func:`exposure_schema`; by default converted
        to records and passed to :meth:`write`."""
        return self.write(ExposureBatch.from_table(table))

    def flush(self) -> WriteReport | None:
        """Makes what was written durable (called after each batch and before ``fork()``)."""
        return None

    def close(self) -> WriteReport | None:
        """Flushes and releases files and handles."""
        return None

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

    def write(self, records: Sequence[ExposureRecord]) -> WriteReport | None:
        lg, level = self._logger, self._level
        if not lg.isEnabledFor(level):
            return None
        batch = ExposureBatch.of(records)
        # Handlers encode the text they write: a lone surrogate refuses the record here.
        parts, bad, why = batch.encodable(_checked_jsonl)
        good = batch.without(bad)
        # split("\n"), not splitlines(): JSON text may hold U+2028 and other line breaks.
        for r, line in zip(good, "".join(parts).split("\n"), strict=False):
            lg.log(level, "%s", line, extra={"exposure": r})
        return _report(bad, why)


def _checked_jsonl(batch: ExposureBatch) -> str:
    text = batch.jsonl()
    text.encode("utf-8")
    return text


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
    ``timestamp`` in ISO 8601 with ``+00:00``), rotated by size and age.

    Each batch goes to the OS in one ``write`` (one per file when it spans files: a batch that
    would take a file past ``rotate_bytes`` is cut at a line break and continued in a new one);
    what the OS refuses (a full disk) is cut back to the last whole line, so files hold whole
    records only, and the records that did not fit are reported failed. A file removed from
    under the sink (its folder deleted) is noticed after the write, and the batch written again
    into a new file in a recreated folder. Bulk tables (:meth:`write_table`) are written column
    by column (:func:`~trafficsplit.telemetry.records.table_jsonl`), the same bytes as their
    records would be."""

    suffix = ".jsonl"
    _fd: int | None = None  # the open file, after the first write
    _path: Path | None = None
    _size = 0

    def _open(self) -> int:
        path = self._next_path()
        self.directory.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(path, flags, 0o644)
        self._path = path
        self._size = 0
        self._opened = time.monotonic()
        self.files.append(path)
        return self._fd

    def _close_file(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

    def _append(self, view: memoryview) -> tuple[int, str | None]:
        """Appends ``view`` (whole lines); returns the lines not stored and why."""
        try:
            fd = self._fd if self._fd is not None else self._open()
        except OSError as exc:
            return _count_lines(view), _os_error_text(exc)
        start = self._size
        done = 0
        try:
            while done < len(view):
                done += os.write(fd, view[done:])
        except OSError as exc:
            keep = _lines_end(view, done)  # the whole lines the OS took
            if keep < done:
                try:
                    os.ftruncate(fd, start + keep)
                except OSError:
                    # The cut line stays: no more lines after it, in this file.
                    self._close_file()
            self._size = start + keep
            return _count_lines(view[keep:]), _os_error_text(exc)
        self._size = start + done
        return 0, None

    def _write_bytes(self, data: Any) -> tuple[int, str | None]:
        """Writes whole lines (bytes or any buffer of bytes), into as many files as
        ``rotate_bytes`` asks for; returns the lines not stored and why."""
        view = memoryview(data).cast("B")
        error = None
        while len(view):
            piece = self._piece(view)
            failed, why = self._write_piece(piece)
            error = error or why
            view = view[len(piece) :]
            if failed:
                # Not the lines after the refused ones: a file ends with whole lines of its
                # batch's beginning, as one write would leave it.
                return failed + _count_lines(view), error
        return 0, error

    def _piece(self, view: memoryview) -> memoryview:
        """The lines of ``view`` that go into the file in use: all of them, or as many whole
        lines as keep it within ``rotate_bytes``, after closing a file that not one more line
        fits in (a line longer than ``rotate_bytes`` gets a file of its own)."""
        if self.rotate_bytes is None:
            return view
        used = self._size if self._fd is not None else 0
        if used + len(view) <= self.rotate_bytes:
            return view
        cut = _lines_end(view, self.rotate_bytes - used)
        if cut == 0 and used:
            self._close_file()
            cut = _lines_end(view, self.rotate_bytes)
        if cut == 0:
            cut = _first_line_end(view)
        return view[:cut]

    def _write_piece(self, view: memoryview) -> tuple[int, str | None]:
        failed, error = self._append(view)
        if self._fd is not None and _unlinked(self._fd, self._path):
            # Written into a file no one can read any more: again, into a new one.
            self._close_file()
            failed, error = self._append(view)
            error = error or "the file was removed; continued in a new one"
        if self._fd is not None and self._due(self._size):
            self._close_file()
        return failed, error

    def write(self, records: Sequence[ExposureRecord]) -> WriteReport | None:
        batch = ExposureBatch.of(records)
        parts, bad, why = batch.encodable(ExposureBatch.jsonl_bytes)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        failed, error = self._write_bytes(data) if data else (0, None)
        return _report(bad, why, failed, 0, error)

    def write_table(self, table: pa.Table) -> WriteReport | None:
        # Column by column, byte for byte the lines write() gives the same records.
        if not table.num_rows:
            return None
        bad: list[int] = []
        why: list[str] = []
        failed, error = 0, None
        for lines, aside, names in table_jsonl(table):
            bad += aside
            why += names
            if failed:
                # The OS refused lines of this table: the rest are not tried, so that the file
                # ends with whole lines of the table's beginning, as one write would leave it.
                failed += _count_lines(memoryview(lines))
            elif len(lines):
                failed, reason = self._write_bytes(lines)
                error = error or reason
        return _report(bad, why, failed, 0, error)

    def close(self) -> WriteReport | None:
        self._close_file()
        return None

    def after_fork_in_child(self) -> None:
        # Unbuffered: the parent's lines are all in its file; the child continues in its own.
        self._close_file()
        self.files = []


# Lines are looked for in windows of this many bytes, copied out of the buffer.
_WINDOW = 1 << 16


def _lines_end(view: memoryview, limit: int) -> int:
    """The end of the last whole line within ``view[:limit]`` (0: none)."""
    end = min(limit, len(view))
    while end > 0:
        start = max(0, end - _WINDOW)
        at = bytes(view[start:end]).rfind(b"\n")
        if at >= 0:
            return start + at + 1
        end = start
    return 0


def _first_line_end(view: memoryview) -> int:
    """The end of the first line of ``view`` (all of it when it has no line break)."""
    start = 0
    while start < len(view):
        at = bytes(view[start : start + _WINDOW]).find(b"\n")
        if at >= 0:
            return start + at + 1
        start += _WINDOW
    return len(view)


def _count_lines(view: memoryview) -> int:
    """The lines in ``view``; for the paths where a write failed."""
    return bytes(view).count(b"\n")


def _unlinked(fd: int, path: Path | None) -> bool:
    """Whether the open file ``fd`` is no longer the file at ``path`` (removed, replaced)."""
    try:
        st = os.fstat(fd)
        if st.st_nlink == 0:
            return True
        at = os.stat(path) if path is not None else None
    except OSError:
        return True
    return at is None or (at.st_ino, at.st_dev) != (st.st_ino, st.st_dev)


class ParquetSink(_RotatingFiles):
    """Parquet files in a folder (pyarrow), one row group per flush; a file is named
    ``….parquet.inprogress`` while open and renamed to ``….parquet`` only when complete (footer
    written, file fsynced and closed without error), so readers never see a file without its
    footer. A file that cannot be completed (a full disk, a removed folder) is deleted, and its
    records, reported written when their row group was, are reported lost."""

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
        self._rows = 0  # records in the file in progress

    def write(self, records: Sequence[ExposureRecord]) -> WriteReport | None:
        if not records:
            return None
        parts, bad, why = ExposureBatch.of(records).encodable(ExposureBatch.table)
        if not parts:
            return _report(bad, why)
        pa = require("pyarrow", what="ParquetSink.write")
        table = parts[0] if len(parts) == 1 else pa.concat_tables(parts).unify_dictionaries()
        report = self.write_table(table)
        if report is None:
            return _report(bad, why)
        return report._replace(set_aside=tuple(bad), set_aside_why=tuple(why))

    def write_table(self, table: pa.Table) -> WriteReport | None:
        pa = require("pyarrow", what="ParquetSink.write_table")
        pq = require("pyarrow.parquet", what="ParquetSink.write_table")

        n = table.num_rows
        if not n:
            return None
        lost, error = 0, None
        if self._writer is not None and _unlinked(self._file.fileno(), self._in_progress()):
            lost, error = self._abandon(), "the file in progress was removed"
        try:
            if self._writer is None:
                self._path = self._next_path()
                self.directory.mkdir(parents=True, exist_ok=True)
                self._file = open(self._in_progress(), "wb")  # noqa: SIM115
                self._rows = 0
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
            self._writer.write_table(table, row_group_size=n)
            self._file.flush()  # a full disk shows here, not in a later call
        except OSError as exc:
            # A row group cut short leaves the file unreadable: it goes, with its records.
            return WriteReport(failed=n, lost=lost + self._abandon(), error=_os_error_text(exc))
        self._rows += n
        if self._due(self._file.tell()):
            gone, why = self._finish()
            if gone:
                return WriteReport(failed=n, lost=lost + gone - n, error=why)
        return _report([], [], 0, lost, error)

    def _in_progress(self) -> Path:
        assert self._path is not None
        return self._path.with_name(self._path.name + ".inprogress")

    def _abandon(self) -> int:
        """Deletes the file in progress; returns the records that were in it."""
        rows = self._rows
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            with contextlib.suppress(OSError):
                self._file.close()
            with contextlib.suppress(OSError):
                os.unlink(self._in_progress())
        self._writer = self._file = self._path = None
        self._rows = 0
        return rows

    def _finish(self) -> tuple[int, str | None]:
        """Completes and publishes the file in progress; returns the records lost (the file
        deleted) when that fails, and why."""
        if self._writer is None:
            return 0, None
        assert self._path is not None
        try:
            self._writer.close()
            self._file.flush()
            os.fsync(self._file.fileno())
            if _unlinked(self._file.fileno(), self._in_progress()):
                raise FileNotFoundError(2, "No such file or directory")
            self._file.close()
            os.replace(self._in_progress(), self._path)
        except OSError as exc:
            return self._abandon(), _os_error_text(exc)
        with contextlib.suppress(OSError):  # the new name durable too; best effort
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self.files.append(self._path)
        self._writer = self._file = self._path = None
        self._rows = 0
        return 0, None

    def flush(self) -> WriteReport | None:
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as exc:
                return WriteReport(lost=self._abandon(), error=_os_error_text(exc))
        return None

    def close(self) -> WriteReport | None:
        lost, error = self._finish()
        return WriteReport(lost=lost, error=error) if lost else None

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
        self._rows = 0
        self.files = []


def read_exposures(path: str | os.PathLike[str], errors: str = "skip") -> Any:
    """Every exposure record under a folder (``*.jsonl`` and complete ``*.parquet`` files) or
    in one file, as a DataFrame with the columns of :data:`EXPOSURE_FIELDS`.

    A damaged file (a Parquet file that does not read, JSON Lines that do not parse) is
    skipped with a warning naming it under ``errors="skip"``; in a JSON Lines file only the
    lines that do not parse are left out. ``df.attrs["damaged"]`` lists the damaged files.
    ``errors="raise"`` raises :class:`trafficsplit.Error` instead, naming the file."""
    pd = require("pandas", what="read_exposures")
    pa = require("pyarrow", what="read_exposures")
    pq = require("pyarrow.parquet", what="read_exposures")

    if errors not in ("skip", "raise"):
        raise ArgumentError(f"errors must be 'skip' or 'raise', got {errors!r}")
    p = Path(path)
    files = sorted(p.glob("*.jsonl")) + sorted(p.glob("*.parquet")) if p.is_dir() else [p]
    tables = []
    damaged: list[str] = []

    def bad(f: Path, what: str, exc: BaseException) -> None:
        # The error's own text may quote records: its kind only.
        message = f"damaged exposure file {f}: {what} ({type(exc).__name__})"
        if errors == "raise":
            raise Error(message) from None
        damaged.append(str(f))
        warnings.warn(message, UserWarning, stacklevel=3)

    for f in files:
        if f.suffix == ".parquet":
            try:
                tables.append(pq.read_table(f, schema=exposure_schema()))
            except (OSError, pa.ArrowException) as exc:
                bad(f, "not a complete Parquet file of exposure records", exc)
            continue
        with open(f, encoding="utf-8", errors="surrogateescape") as fh:
            rows, skipped, first = [], 0, None
            for line in fh:
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except ValueError as exc:
                    skipped += 1
                    first = first or exc
        try:
            table = ExposureBatch.from_json(rows).table()
        except Exception as exc:
            bad(f, "records that are not exposure records", exc)
            continue
        if first is not None:
            bad(f, f"{skipped} line(s) that are not JSON, left out", first)
        tables.append(table)
    if not tables:
        df = exposure_schema().empty_table().to_pandas()
        df.attrs["damaged"] = damaged
        return df
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
    df.attrs["damaged"] = damaged
    return df
