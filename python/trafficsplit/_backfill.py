"""Backfills: a whole table of units assigned in streaming batches, in bounded memory.

:func:`backfill` is the library call under ``trafficsplit assign``: it reads Parquet, CSV or a
dataset folder batch by batch (pyarrow.dataset), assigns each batch with
:meth:`Splitter.assign_columns` (the servers' precedence: holdouts, layers, status, targeting,
overrides, history replay), and writes Parquet through a temporary file renamed at the end, so an
interrupted run leaves no output, and the previous file, if any, stays as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _core, _time
from ._optional import require
from .batch import REASONS, BatchAssignment
from .config import Snapshot, as_snapshot
from .errors import ArgumentError

__all__ = ["BackfillProgress", "BackfillSummary", "ExperimentTally", "backfill"]

_ASSIGNED = REASONS.index("assigned")
_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv"}
DEFAULT_BATCH_ROWS = 1 << 20
_CODECS = ("auto", "snappy", "zstd", "lz4", "gzip", "brotli", "none")


@dataclasses.dataclass(frozen=True)
class BackfillProgress:
    """How far a backfill is: given to the ``progress`` callback after every batch."""

    rows: int
    """Rows assigned and handed to the writer so far."""
    total: int | None
    """Rows in the input when its metadata tells (Parquet), else None (CSV)."""
    seconds: float
    """Seconds since the backfill started."""

    @property
    def rate(self) -> float:
        """Rows per second so far."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far, when the total is known."""
        if self.total is None or self.rows == 0:
            return None
        return max(self.total - self.rows, 0) / self.rate


@dataclasses.dataclass(frozen=True)
class ExperimentTally:
    """One experiment's rows in a backfill, per arm and per reason, and its sample-ratio check."""

    key: str
    counts: dict[str, int]
    """Rows per arm, whatever the reason they got it (assigned, override, ...)."""
    reasons: dict[str, int]
    """Rows per reason (every reason listed)."""
    expected: dict[str, float]
    """The share of each arm among randomly assigned rows (reason ``assigned``) that the
    allocation in force at each row's time gives."""
    srm: Any
    """:class:`trafficsplit.stats.SRMResult` over rows with reason ``assigned``, or None when
    fewer than two arms had a share or no row was assigned."""

    def lines(self) -> list[str]:
        with_arm = sum(self.counts.values())
        out = [f"{self.key}:"]
        for arm, n in self.counts.items():
            share = n / with_arm if with_arm else 0.0
            out.append(
                f"  {arm:<20}{n:>14,}{share:>9.2%}  (configured {self.expected.get(arm, 0.0):.2%})"
            )
        others = ", ".join(
            f"{r} {n:,}" for r, n in self.reasons.items() if n and r not in ("assigned",)
        )
        if others:
            out.append(f"  other reasons: {others}")
        if self.srm is not None:
            verdict = "MISMATCH" if self.srm.mismatch else "ok"
            out.append(
                f"  sample-ratio check: chi-square {self.srm.statistic:.3f}, df {self.srm.df}, "
                f"p = {self.srm.pvalue:.4g} -> {verdict}"
            )
        return out


@dataclasses.dataclass(frozen=True)
class BackfillSummary:
    """What a backfill did: rows, time, the file written, and per experiment its tally."""

    rows: int
    seconds: float
    output: Path
    bytes: int
    experiments: dict[str, ExperimentTally]
    exposures: int = 0
    """Exposure records written (with ``exposures=DIR``)."""

    @property
    def mismatch(self) -> bool:
        """True when any experiment's sample-ratio check flags a mismatch."""
        return any(t.srm is not None and t.srm.mismatch for t in self.experiments.values())

    def __str__(self) -> str:
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        head = (
            f"assigned {self.rows:,} rows to {len(self.experiments)} experiment"
            f"{'s' if len(self.experiments) != 1 else ''} in {self.seconds:.1f} s "
            f"({rate / 1e6:.1f} M rows/s) -> {self.output} ({_size(self.bytes)})"
        )
        if self.exposures:
            head += f"; {self.exposures:,} exposure records"
        lines = [head]
        for tally in self.experiments.values():
            lines.extend(tally.lines())
        return "\n".join(lines)


def backfill(
    config: Any,
    input: Any,
    output: str | os.PathLike[str],
    unit: str,
    *,
    experiments: Sequence[str] | None = None,
    at_column: str | None = None,
    at: Any = None,
    attributes: Sequence[str] | None = None,
    keep: Sequence[str] | str | None = None,
    threads: int | None = None,
    exposures: str | os.PathLike[str] | None = None,
    input_format: str | None = None,
    compression: str = "auto",
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Callable[[BackfillProgress], None] | None = None,
) -> BackfillSummary:
    """Assigns every row of ``input`` to the configured experiments and writes Parquet.

    ``config``: a :class:`~trafficsplit.Snapshot`, a :class:`~trafficsplit.Splitter`, a
    configuration file or folder, or a mapping. ``input``: a Parquet or CSV file, a folder of
    them (a pyarrow dataset), or a pyarrow Table, RecordBatchReader or Dataset. CSV unit ids
    are read as text, exactly as written (``007`` stays ``"007"``); an empty CSV field is a
    missing value.

    ``output`` (Parquet) gets the ``keep`` columns of the input (default: the unit and time
    columns; ``"*"`` for all) and, per experiment ``<key>``: the arm (``<key>``, dictionary
    text, null when the row got none), the arm bucket (``<key>_bucket``, int32, null for a
    missing unit) and the reason (``<key>_reason``, dictionary text). The file is written under
    a temporary name in the same folder and renamed when complete.

    ``at_column`` replays the allocation in force at each row's time; ``at`` uses one time for
    every row; neither means now. ``attributes``: the columns targeting reads (default: the
    columns the experiments' targeting names). ``threads``: of the assignment kernels (default:
    the cores less two, at least one: reading and writing run on threads of their own).
    ``exposures``: a folder that receives the
    exposure records of every row that got an arm (Parquet files, moved in at the end).
    ``progress`` is called after every batch with a :class:`BackfillProgress`.
    ``compression``: the output's Parquet codec: ``auto`` (snappy for the kept columns it
    shrinks by at least 15 % on the first batch; random ids, buckets and the bit-packed arm
    and reason codes uncompressed), or one of ``snappy``, ``zstd``, ``lz4``, ``gzip``,
    ``brotli``, ``none`` for every column. Column statistics (min/max) are written for the kept
    columns that are not text or bytes, where distinct ids make them large and of no use for
    pruning.

    Memory is bounded by ``batch_rows`` (at most about six batches in flight: two read ahead,
    two being read, one assigned, one written), not by the input.
    Raises :class:`~trafficsplit.ArgumentError` for a missing or ill-typed column,
    :class:`~trafficsplit.ConfigError` for a bad configuration, ``OSError`` for a file that
    cannot be read or written, naming it; nothing is written then.
    """
    pa = require("pyarrow", extra="backfill", what="trafficsplit.backfill")
    require("pyarrow.parquet", extra="backfill", what="trafficsplit.backfill")
    from .splitter import Splitter

    started = time.perf_counter()
    if not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or batch_rows < 1:
        raise ArgumentError(f"backfill: batch_rows must be a positive integer, got {batch_rows!r}")
    if at is not None and at_column is not None:
        raise ArgumentError("backfill: give at or at_column, not both")
    if compression not in _CODECS:
        raise ArgumentError(
            f"backfill: compression must be one of {', '.join(_CODECS)}; got {compression!r}"
        )
    snapshot = as_snapshot(config, "backfill: config")
    keys = _experiment_keys(snapshot, experiments)
    source = _open(input, unit, input_format)
    columns = _columns(source, snapshot, keys, unit, at_column, attributes, keep)
    out_path = Path(output)
    if out_path.is_dir():
        raise ArgumentError(f"backfill: output {out_path} is a folder; give a file name")
    if not out_path.parent.is_dir():
        raise FileNotFoundError(2, "the output's folder does not exist", str(out_path.parent))
    schema = _output_schema(pa, source.schema, columns.keep, snapshot, keys)

    splitter_kwargs: dict[str, Any] = {}
    staging: Path | None = None
    sink = None
    if exposures is not None:
        from .telemetry.sinks import ParquetSink

        exposure_dir = Path(exposures)
        exposure_dir.mkdir(parents=True, exist_ok=True)
        staging = exposure_dir / f".backfill-{uuid.uuid4().hex[:12]}.tmp"
        staging.mkdir()
        sink = ParquetSink(staging, prefix="backfill", rotate_bytes=None, rotate_seconds=None)
        splitter_kwargs = {"exposures": sink}
    temp = out_path.with_name(f".{out_path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    at_us = None if at is None else _time.to_micros(at)
    if threads is None:  # the reader and the writer keep a core each busy
        threads = max(1, (os.cpu_count() or 1) - 2)
    tallies = {k: _Tally(snapshot, k, None if at_column else at_us) for k in keys}
    # Per-row times matter to the tally only where an allocation changed over time.
    histories = at_column is not None and any(len(t.by_step) > 1 for t in tallies.values())
    rows = 0
    exposure_rows = 0
    splitter = None
    try:
        splitter = Splitter(snapshot, **splitter_kwargs)
        arms = [snapshot.experiments[k].experiment.arm_names for k in keys]
        with _Writer(temp, schema, compression, columns.keep, arms) as writer:
            for batch in source.read_ahead(columns.read, batch_rows):
                table = pa.Table.from_batches([batch])
                result = splitter.assign_columns(
                    table,
                    unit,
                    keys,
                    at_column=at_column,
                    at=at,
                    threads=threads,
                    log_exposures=sink is not None,
                )
                row_us = _row_times(table, at_column) if histories else None
                for key, b in result.items():
                    tallies[key].add(b, row_us)
                    if sink is not None:
                        exposure_rows += int((b.arm_index >= 0).sum())
                writer.put(([_one_array(table.column(c)) for c in columns.keep], result))
                rows += table.num_rows
                if progress is not None:
                    progress(BackfillProgress(rows, source.total, time.perf_counter() - started))
        splitter.close()  # flushes the exposure records
        if sink is not None and staging is not None:
            _publish_exposures(staging, Path(exposures))  # type: ignore[arg-type]
        os.replace(temp, out_path)
    except BaseException:
        if splitter is not None:
            with contextlib.suppress(Exception):
                splitter.close()  # its records go to the staging folder, removed below
        with contextlib.suppress(OSError):
            temp.unlink()
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    return BackfillSummary(
        rows,
        time.perf_counter() - started,
        out_path,
        out_path.stat().st_size,
        {k: t.result() for k, t in tallies.items()},
        exposure_rows,
    )


# -- input --------------------------------------------------------------------------------------


class _Source:
    """The input as a pyarrow dataset (or one in-memory table/reader), read in batches."""

    def __init__(self, dataset: Any, total: int | None, name: str, csv_options: Any = None) -> None:
        self.dataset = dataset
        self.schema = dataset.schema
        self.total = total
        self.name = name
        self.csv_options = csv_options  # (parse options, convert options) of CSV files

    def read_ahead(self, columns: list[str], batch_rows: int) -> Iterator[Any]:
        """The batches in order, read ahead on threads of their own while the caller assigns
        (the readers release the GIL): Parquet files by runs of row groups on two threads
        where there are two cores or more (decoding a column of ids takes as long as
        assigning it), anything else on one."""
        workers = min(2, os.cpu_count() or 1)
        runs = self._parquet_runs(columns, batch_rows) if workers > 1 else None
        if runs is not None and len(runs) > 1:
            return _ordered_read_ahead(runs, workers)
        return _prefetched(self.batches(columns, batch_rows))

    def _parquet_runs(
        self, columns: list[str], batch_rows: int
    ) -> list[Callable[[dict[str, Any]], Iterator[Any]]] | None:
        """Tasks, in order, each reading consecutive row groups of one Parquet file that
        together hold at least ``batch_rows`` rows (or the file's rest); None for inputs that
        are not Parquet files."""
        pa = require("pyarrow")
        if self.csv_options is not None or not hasattr(self.dataset, "files"):
            return None
        if not isinstance(self.dataset, _ParquetFile):
            ds = require("pyarrow.dataset")
            if not isinstance(self.dataset, ds.FileSystemDataset):
                return None
        pq = require("pyarrow.parquet")
        fs = self.dataset.filesystem
        runs: list[Callable[[dict[str, Any]], Iterator[Any]]] = []
        for path in self.dataset.files:
            try:
                with fs.open_input_file(path) as f:
                    meta = pq.ParquetFile(f).metadata
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise ArgumentError(f"{path}: could not be read: {_first_line(exc)}") from None
            run: list[int] = []
            rows = 0
            for r in range(meta.num_row_groups):
                run.append(r)
                rows += meta.row_group(r).num_rows
                if rows >= batch_rows or r == meta.num_row_groups - 1:
                    # The first run in smaller batches: assigning starts once an eighth of a
                    # batch is read, not a whole one.
                    size = batch_rows if runs else max(batch_rows // 8, 1)
                    runs.append(self._run_task(path, run, columns, size))
                    run, rows = [], 0
        return runs

    def _run_task(
        self, path: str, groups: list[int], columns: list[str], batch_rows: int
    ) -> Callable[[dict[str, Any]], Iterator[Any]]:
        """Reads row groups ``groups`` of ``path``; ``files`` is the reading thread's own
        open files (a file is opened once per thread)."""
        pa = require("pyarrow")
        pq = require("pyarrow.parquet")
        fs = self.dataset.filesystem

        def task(files: dict[str, Any]) -> Iterator[Any]:
            try:
                if path not in files:
                    for old in files.values():
                        old[0].close()
                    f = fs.open_input_file(path)
                    # A run's column chunks read whole (pre-buffered), then decoded in place:
                    # a copy fewer than buffered page reads; a run is about a batch.
                    files.clear()
                    files[path] = (f, pq.ParquetFile(f, pre_buffer=True))
                reader = files[path][1]
                for batch in reader.iter_batches(
                    batch_size=batch_rows, row_groups=groups, columns=columns
                ):
                    if batch.num_rows:
                        yield batch
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise ArgumentError(f"{path}: could not be read: {_first_line(exc)}") from None

        return task

    def batches(self, columns: list[str], batch_rows: int) -> Iterator[Any]:
        pa = require("pyarrow")
        if isinstance(self.dataset, _ParquetFile):
            yield from self._files(self.dataset.files, columns, batch_rows)
            return
        ds = require("pyarrow.dataset")
        if isinstance(self.dataset, pa.RecordBatchReader):
            yield from _rebatched(self.dataset, columns, batch_rows)
            return
        if not isinstance(self.dataset, ds.FileSystemDataset):  # an in-memory table
            for batch in self.dataset.to_batches(columns=columns, batch_size=batch_rows):
                if batch.num_rows:
                    yield batch
            return
        yield from self._files(self.dataset.files, columns, batch_rows)

    def _files(self, files: list[str], columns: list[str], batch_rows: int) -> Iterator[Any]:
        """File by file, each as a stream that reads only when asked. (The dataset scanner reads
        Parquet row groups ahead of a slower consumer without bound: 1 GB after 20 M rows.)"""
        pa = require("pyarrow")
        for path in files:
            try:
                yield from self._file_batches(path, columns, batch_rows)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise ArgumentError(f"{path}: could not be read: {_first_line(exc)}") from None

    def _file_batches(self, path: str, columns: list[str], batch_rows: int) -> Iterator[Any]:
        fs = self.dataset.filesystem
        if self.csv_options is None:
            pq = require("pyarrow.parquet")
            with fs.open_input_file(path) as f:
                # Column chunks are read as they are decoded, not pre-buffered a row group whole.
                # buffered 8 MB at a time: a quarter less time than unbuffered page reads
                reader = pq.ParquetFile(f, pre_buffer=False, buffer_size=8 << 20)
                yield from reader.iter_batches(batch_size=batch_rows, columns=columns)
            return
        csv = require("pyarrow.csv")
        parse, convert = self.csv_options
        convert = csv.ConvertOptions(
            column_types=convert.column_types,
            strings_can_be_null=convert.strings_can_be_null,
            include_columns=columns,
        )
        with fs.open_input_stream(path, compression="detect") as f:
            reader = csv.open_csv(
                f,
                read_options=csv.ReadOptions(block_size=32 << 20),
                parse_options=parse,
                convert_options=convert,
            )
            yield from _rebatched(reader, columns, batch_rows)


def _ordered_read_ahead(
    tasks: list[Callable[[dict[str, Any]], Iterator[Any]]], workers: int
) -> Iterator[Any]:
    """The batches of ``tasks`` in task order, the tasks run by ``workers`` threads in turn
    (thread w runs tasks w, w + workers, ...), each thread one batch ahead of the consumer: at
    most ``workers`` batches wait, and as many are being read. A task takes the thread's open
    files (a dict it may fill) and yields batches; an error is raised in the consumer."""
    slots: list[queue.Queue[Any]] = [queue.Queue(maxsize=1) for _ in range(workers)]
    stop = threading.Event()
    end = object()

    def offer(slot: queue.Queue[Any], item: Any) -> bool:
        """Puts the item unless the consumer has stopped; True when it was put."""
        while not stop.is_set():
            try:
                slot.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work(w: int) -> None:
        files: dict[str, Any] = {}
        try:
            for t in range(w, len(tasks), workers):
                batches = tasks[t](files)
                try:
                    for batch in batches:
                        if not offer(slots[w], (batch, None)):
                            return
                finally:
                    close = getattr(batches, "close", None)
                    if close is not None:  # a generator: its open file closed now, not at exit
                        close()
                if not offer(slots[w], (end, None)):
                    return
        except BaseException as exc:  # raised in the consumer, where it can be reported
            offer(slots[w], (end, exc))
        finally:
            for f, _ in files.values():
                f.close()

    threads = [
        threading.Thread(target=work, args=(w,), name=f"trafficsplit-backfill-reader-{w}",
                         daemon=True)
        for w in range(workers)
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    try:
        for index in range(len(tasks)):
            slot = slots[index % workers]
            while True:
                batch, error = slot.get()
                if error is not None:
                    raise error
                if batch is end:
                    break
                yield batch
    finally:
        stop.set()  # a reader waiting to put gives up within 0.1 s
        for thread in threads:
            thread.join()


def _prefetched(batches: Iterator[Any]) -> Iterator[Any]:
    """The batches, the next one read on a thread of its own while this one is assigned (the
    readers release the GIL): one batch ahead, so memory stays bounded."""
    return _ordered_read_ahead([lambda _files: batches], 1)


def _rebatched(reader: Any, columns: list[str], batch_rows: int) -> Iterator[Any]:
    for batch in reader:
        batch = batch.select(columns)
        for start in range(0, batch.num_rows, batch_rows):
            yield batch.slice(start, batch_rows)


class _ParquetFile:
    """One local Parquet file, read without pyarrow.dataset: importing that module imports
    pandas, a fifth of a second of every short backfill's run."""

    def __init__(self, path: Path) -> None:
        fs = require("pyarrow.fs")
        pq = require("pyarrow.parquet")
        self.files = [str(path)]
        self.filesystem = fs.LocalFileSystem()
        f = pq.ParquetFile(str(path))
        self.schema = f.schema_arrow
        self.rows = f.metadata.num_rows


def _open(input: Any, unit: str, input_format: str | None) -> _Source:
    pa = require("pyarrow", extra="backfill", what="trafficsplit.backfill")
    if isinstance(input, str | os.PathLike):
        path = Path(input)
        if path.is_file() and (input_format or _format_of(path)) == "parquet":
            try:
                single = _ParquetFile(path)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise ArgumentError(
                    f"{path}: could not be read as parquet: {_first_line(exc)}"
                ) from None
            return _Source(single, single.rows, str(path))
    ds = require("pyarrow.dataset", extra="backfill", what="trafficsplit.backfill")
    if isinstance(input, pa.Table):
        return _Source(ds.dataset(input), input.num_rows, "the input table")
    if isinstance(input, pa.RecordBatchReader):
        return _Source(input, None, "the input stream")
    if isinstance(input, ds.Dataset):
        return _Source(input, _count(input), "the input dataset")
    if not isinstance(input, str | os.PathLike):
        raise ArgumentError(
            "backfill: input must be a Parquet or CSV file, a folder of them, or a pyarrow "
            f"Table, RecordBatchReader or Dataset; got {type(input).__name__}"
        )
    path = Path(input)
    if not path.exists():
        raise FileNotFoundError(2, "no such file or folder", str(path))
    fmt = input_format or _format_of(path)
    if fmt not in ("parquet", "csv"):
        raise ArgumentError(f"backfill: input_format must be 'parquet' or 'csv', got {fmt!r}")
    file_format: Any = fmt
    csv_options = None
    if fmt == "csv":
        csv = require("pyarrow.csv", extra="backfill", what="trafficsplit.backfill")
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        # Unit ids are text as written: '007' must not become the integer 7. An empty field
        # is a missing value (a missing unit), as pandas reads it.
        csv_options = (
            csv.ParseOptions(delimiter=delimiter),
            csv.ConvertOptions(column_types={unit: pa.string()}, strings_can_be_null=True),
        )
        file_format = ds.CsvFileFormat(parse_options=csv_options[0], convert_options=csv_options[1])
    try:
        dataset = ds.dataset(str(path), format=file_format, exclude_invalid_files=False)
        if path.is_dir() and not dataset.files:
            raise ArgumentError(f"{path}: the folder holds no {fmt} file")
        total = _count(dataset) if fmt == "parquet" else None
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise ArgumentError(f"{path}: could not be read as {fmt}: {_first_line(exc)}") from None
    return _Source(dataset, total, str(path), csv_options)


def _format_of(path: Path) -> str:
    if path.is_dir():
        suffixes = {
            _FORMATS.get(p.suffix.lower())
            for p in path.rglob("*")
            if p.is_file() and not p.name.startswith((".", "_"))
        }
        suffixes.discard(None)
        if len(suffixes) == 1:
            return str(suffixes.pop())
        raise ArgumentError(
            f"{path}: cannot tell the format of the folder's files "
            f"({'mixed' if suffixes else 'no .parquet or .csv file'}); give input_format"
        )
    name = path.name.lower()
    for suffix, fmt in _FORMATS.items():
        if name.endswith(suffix) or name.endswith(suffix + ".gz"):
            return fmt
    raise ArgumentError(
        f"{path}: cannot tell the format from the name (expected .parquet, .pq, .csv or .tsv); "
        "give input_format='parquet' or 'csv'"
    )


def _count(dataset: Any) -> int | None:
    try:
        return int(dataset.count_rows())
    except Exception:  # a format whose count needs a full scan, or an unreadable footer
        return None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _experiment_keys(snapshot: Snapshot, experiments: Sequence[str] | None) -> list[str]:
    if experiments is None:
        keys = list(snapshot.experiments)
    elif isinstance(experiments, str):
        raise ArgumentError("backfill: experiments must be a list of keys, not one string")
    else:
        keys = list(dict.fromkeys(experiments))
    unknown = [k for k in keys if k not in snapshot.experiments]
    if unknown:
        raise ArgumentError(
            f"backfill: no experiment {', '.join(map(repr, unknown))} in the configuration; "
            f"experiments: {', '.join(snapshot.experiments) or '(none)'}"
        )
    if not keys:
        raise ArgumentError("backfill: the configuration has no experiment to assign")
    return keys


@dataclasses.dataclass
class _Columns:
    read: list[str]
    keep: list[str]


def _columns(
    source: _Source,
    snapshot: Snapshot,
    keys: list[str],
    unit: str,
    at_column: str | None,
    attributes: Sequence[str] | None,
    keep: Sequence[str] | str | None,
) -> _Columns:
    """The input columns to read and to keep, each checked for presence and type."""
    pa = require("pyarrow")
    names = list(source.schema.names)

    def need(name: str, what: str) -> None:
        if name not in names:
            raise ArgumentError(
                f"{source.name}: no column {name!r} ({what}); columns: {', '.join(names)}"
            )

    need(unit, "the unit column")
    _check_unit_type(pa, source.name, unit, source.schema.field(unit).type)
    if at_column is not None:
        need(at_column, "the time column")
        t = source.schema.field(at_column).type
        if not (
            pa.types.is_timestamp(t) or pa.types.is_date(t) or _is_text(pa, t, bytes_too=False)
        ):
            raise ArgumentError(
                f"{source.name}: column {at_column!r} (the time column) is {t}; expected a "
                "timestamp, a date or ISO 8601 text"
            )
    if attributes is None:
        wanted: list[str] = []
        for k in keys:
            targeting = snapshot.experiments[k].experiment.targeting
            for name in targeting.attributes if targeting is not None else ():
                top = name.split(".", 1)[0]
                for candidate in (name, top):
                    if candidate in names and candidate not in wanted:
                        wanted.append(candidate)
                        break
    else:
        if isinstance(attributes, str):
            raise ArgumentError("backfill: attributes must be a list of column names")
        wanted = list(dict.fromkeys(attributes))
        for name in wanted:
            need(name, "a targeting attribute")
    if keep is None:
        kept = [unit] + ([at_column] if at_column else [])
    elif keep == "*":
        kept = names
    elif isinstance(keep, str):
        raise ArgumentError("backfill: keep must be a list of column names or '*'")
    else:
        kept = list(dict.fromkeys(keep))
        for name in kept:
            need(name, "a column to keep")
    read = list(dict.fromkeys([unit, *([at_column] if at_column else []), *wanted, *kept]))
    return _Columns(read, kept)


def _check_unit_type(pa: Any, name: str, unit: str, t: Any) -> None:
    base = t.value_type if pa.types.is_dictionary(t) else t
    if not (_is_text(pa, base) or pa.types.is_integer(base)):
        raise ArgumentError(
            f"{name}: column {unit!r} (the unit column) is {t}; expected text, integers or "
            "bytes (floats are refused: 1.0 and 1 would name different units)"
        )


def _is_text(pa: Any, t: Any, bytes_too: bool = True) -> bool:
    """Whether an Arrow type holds text (string, large or view) or, with ``bytes_too``, bytes."""
    kinds = ["string", "large_string", "string_view"]
    if bytes_too:
        kinds += ["binary", "large_binary", "binary_view"]
    return any(getattr(pa.types, f"is_{k}", lambda _: False)(t) for k in kinds)


def _row_times(table: Any, at_column: Any) -> np.ndarray:
    return _time.micros_array(np.asarray(table.column(at_column)), table.num_rows)


# -- output -------------------------------------------------------------------------------------


def _output_schema(
    pa: Any, schema: Any, keep: list[str], snapshot: Snapshot, keys: list[str]
) -> Any:
    fields = [schema.field(c) for c in keep]
    taken = set(keep)
    for key in keys:
        for name, type_, nullable in (
            (key, pa.dictionary(pa.int16(), pa.string()), True),
            (f"{key}_bucket", pa.int32(), True),
            (f"{key}_reason", pa.dictionary(pa.int8(), pa.string()), False),  # every row has one
        ):
            if name in taken:
                raise ArgumentError(
                    f"backfill: the output column {name!r} of experiment {key!r} is also a "
                    "column kept from the input; keep another set of columns or rename it"
                )
            taken.add(name)
            fields.append(pa.field(name, type_, nullable=nullable))
    return pa.schema(fields)


def _one_array(column: Any) -> Any:
    """A ChunkedArray as one array, without a copy when it has one chunk (a batch's columns)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


class _Writer:
    """Parquet writing on a thread of its own, one batch queued: reading, assigning and writing
    overlap, and at most a few batches are in memory.

    A batch is the kept columns' arrays and the assignment results by experiment. The file is
    written by :class:`trafficsplit._parquet.NativeParquetWriter` when it serves every kept
    column's type and the codec, else by pyarrow's writer."""

    def __init__(
        self,
        path: Path,
        schema: Any,
        compression: str,
        kept: list[str],
        arms: Sequence[Sequence[str]],
    ) -> None:
        self.path = path
        self.kept = kept
        self.arms = arms
        self.schema = schema
        self.compression = compression
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="trafficsplit-backfill-writer")
        self.native = False

    def __enter__(self) -> _Writer:
        self._file: Any = None
        self._thread.start()
        return self

    def _open(self, sample: list[Any] | None) -> None:
        """The file, its writer and codecs chosen from the first batch's kept arrays
        (``sample``) under ``auto``: snappy only for the kept columns it shrinks by at least
        15 % (not random ids). The native writer when it serves every kept type and the codec
        (none, snappy, zstd), else pyarrow's."""
        pa = require("pyarrow")
        pq = require("pyarrow.parquet")
        from . import _parquet

        def text(f: Any) -> bool:
            return _is_text(pa, f.type)

        kept = [self.schema.field(c) for c in self.kept]
        shrinks = {
            f.name
            for f, array in zip(kept, sample or [], strict=False)
            if self.compression == "auto" and _snappy_ratio(pa, array) <= 0.85
        }
        if self.compression == "auto":
            codecs = {f.name: "snappy" if f.name in shrinks else "none" for f in self.schema}
        else:
            codecs = {f.name: self.compression for f in self.schema}
        if set(codecs.values()) <= set(_parquet.CODECS) and all(
            _parquet.supported(pa, f.type) for f in kept
        ):
            self._file = _parquet.NativeParquetWriter(
                self.path, self.schema, self.kept, self.arms, codecs=codecs
            )
            self.native = True
            return
        # Dictionary pages for the arm and reason columns only: a column of distinct unit ids
        # gains nothing from one and costs a failed attempt per row group.
        dictionary = [f.name for f in self.schema if pa.types.is_dictionary(f.type)]
        # Min/max statistics only for the kept columns that are not text: a column of
        # distinct ids costs a comparison per row and prunes nothing, nor do arms, buckets and
        # reasons, which every row group holds all of.
        statistics = [f.name for f in kept if not text(f)]
        compression: Any = codecs if self.compression == "auto" else self.compression
        self._file = pq.ParquetWriter(
            str(self.path),
            self.schema,
            compression=compression,
            use_dictionary=dictionary or False,
            write_statistics=statistics or False,
            write_batch_size=1 << 16,  # fewer, larger steps per column: 30 % less time a value
        )

    def put(self, batch: tuple[list[Any], dict[str, BatchAssignment]]) -> None:
        if self._file is None:  # in this thread: the file exists once the first batch is in
            self._open(batch[0])
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(batch, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    raise self._error or RuntimeError("the backfill writer stopped") from None

    def _write(self, batch: tuple[list[Any], dict[str, BatchAssignment]]) -> None:
        arrays, result = batch
        if self.native:
            self._file.write(arrays, list(result.values()))
            return
        pa = require("pyarrow")
        columns = list(arrays)
        for b in result.values():
            columns.extend(b.arrow_columns())
        record = pa.RecordBatch.from_arrays(columns, schema=self.schema)
        self._file.write_batch(record, row_group_size=record.num_rows)

    def _run(self) -> None:
        try:
            while True:
                batch = self._queue.get()
                if batch is None:
                    return
                self._write(batch)
        except BaseException as exc:  # handed to the producer, which raises it
            self._error = exc
            # Drain so a producer blocked on a full queue wakes up and sees the error.
            with contextlib.suppress(queue.Empty):
                while True:
                    self._queue.get_nowait()

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                if kind is not None:  # stop without writing what is queued
                    with contextlib.suppress(queue.Empty):
                        while True:
                            self._queue.get_nowait()
                self._queue.put(None)
            self._thread.join()
        if self._file is None and kind is None:  # no row: a file with the schema alone
            self._open(None)
        if self._file is not None:
            if self.native and (kind is not None or self._error is not None):
                self._file.abort()
            else:
                self._file.close()
        if kind is None and self._error is not None:
            raise self._error
        if kind is None:
            with open(self.path, "rb") as f:
                os.fsync(f.fileno())


def _snappy_ratio(pa: Any, column: Any) -> float:
    """Compressed ÷ raw size of up to 4 MB of a column's values under snappy (the data of
    text and bytes, the values of fixed-width types)."""
    buffers = column.buffers()
    data = buffers[-1] if len(buffers) > 1 else None
    if data is None or data.size == 0:
        return 1.0
    sample = data.slice(0, min(data.size, 4 << 20))
    return len(pa.compress(sample, codec="snappy", asbytes=True)) / sample.size


def _publish_exposures(staging: Path, directory: Path) -> None:
    """Moves the finished exposure files into their folder (each rename is atomic) and removes
    the staging folder."""
    for f in sorted(staging.iterdir()):
        if f.suffix == ".parquet":
            os.replace(f, directory / f.name)
    shutil.rmtree(staging, ignore_errors=True)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


# -- tallies ------------------------------------------------------------------------------------


class _Tally:
    """Rows per arm and reason, and assigned rows per (allocation step, arm), for the summary."""

    def __init__(self, snapshot: Snapshot, key: str, at_us: int | None) -> None:
        """``at_us``: the one time of every row (None: now, or a time per row)."""
        self.key = key
        self.experiment = snapshot.experiments[key].experiment
        arms = len(self.experiment.arm_names)
        steps = len(self.experiment.steps)
        self.arms = np.zeros(arms, np.int64)
        self.reasons = np.zeros(len(REASONS), np.int64)
        self.by_step = np.zeros((steps, arms), np.int64)
        # the allocation of rows without a time of their own (before the first: none assigned)
        self.fixed = steps - 1 if at_us is None else max(self.experiment.step_at(at_us), 0)

    def add(self, b: BatchAssignment, at_us: np.ndarray | None) -> None:
        n_arms = len(self.arms)
        # One count: a cell per (reason, arm or none); arms per reason come out of it.
        table = np.zeros((len(REASONS), n_arms + 1), np.int64)
        _core.assignment.count_results(
            np.ascontiguousarray(b.reason, np.uint8),
            np.ascontiguousarray(b.arm_index, np.int16),
            n_arms,
            table,
        )
        self.arms += table[:, 1:].sum(axis=0)
        self.reasons += table.sum(axis=1)
        if at_us is None or len(self.by_step) == 1:
            self.by_step[self.fixed] += table[_ASSIGNED, 1:]
            return
        assigned = b.reason == _ASSIGNED
        step = self.experiment.steps_at(at_us[assigned]).astype(np.intp)
        by = np.bincount(step * n_arms + b.arm_index[assigned], minlength=self.by_step.size)
        self.by_step += by.reshape(self.by_step.shape)

    def result(self) -> ExperimentTally:
        from .stats import srm

        names = self.experiment.arm_names

        def share(weights: Any) -> np.ndarray:
            w = np.array([float(weights.get(a, 0.0)) for a in names])
            return w / w.sum() if w.sum() > 0 else w

        # The expected count of each arm: each step's assigned rows times its shares.
        used = [i for i in range(len(self.by_step)) if self.by_step[i].sum()]
        expected = np.zeros(len(names))
        for i in used:
            expected += self.by_step[i].sum() * share(self.experiment.steps[i].weights)
        observed = self.by_step.sum(axis=0)
        check = None
        if expected.sum() > 0 and (expected > 0).sum() >= 2:
            check = srm(observed, expected)
        if len(used) == 1:  # one allocation: its shares as configured, without rounding
            shares = share(self.experiment.steps[used[0]].weights)
        elif expected.sum() > 0:
            shares = expected / expected.sum()
        else:  # nothing assigned: the current weights
            shares = share(self.experiment.weights)
        return ExperimentTally(
            self.key,
            {a: int(self.arms[i]) for i, a in enumerate(names)},
            {r: int(self.reasons[i]) for i, r in enumerate(REASONS)},
            {a: float(shares[i]) for i, a in enumerate(names)},
            check,
        )
