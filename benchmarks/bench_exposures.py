#!/usr/bin/env python
"""Exposure logging benchmark: what logging adds to Splitter.assign, how fast the writer thread
turns queued decisions into files, and exposures per second into Parquet and JSON Lines from
batch calls.

Run from the repository root:

    .venv/bin/python benchmarks/bench_exposures.py [--quick] [--markdown docs/benchmarks.md]

Latencies are the median and p99 of per-call averages over batches of 1,000 calls, the
statements interleaved batch by batch (as in bench_splitter.py), with the logger's writer
thread running. The baseline is what a service writes without trafficsplit's logger: a dict per
exposure put on a ``queue.SimpleQueue`` for a thread of its own. Writer throughput is measured
on a queue filled while the writer was paused. Bulk figures time ``assign_frame(...,
log_exposures=True)`` plus the flush that writes the Parquet row group, best of several
repetitions; the baseline bulk path is ``pyarrow.Table.from_pylist`` of one dict per row.
Bulk JSON Lines time the same call into a JsonlSink, a ParquetSink and a ``json.dumps`` loop
over one dict per exposure, interleaved round by round (median and best of the rounds), and
the sink's ``write_table`` alone on the tables ``assign_frame`` queues, against the record
path it replaces (``JsonlSink.write`` of the table's records), after checking that both write
the same bytes.
``--markdown PATH`` writes (or replaces) the section between the ``bench_exposures`` markers.
"""

from __future__ import annotations

import json
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import trafficsplit as ts
from _common import (
    environment_lines,
    finish_run,
    mark,
    parse_args,
    publish,
    scalar_latency,
    start_run,
    table,
    targets_table,
    time_interleaved,
)

SEED = 20_261_126
SECTION = "bench_exposures"
SECTION_TITLE = "## Exposure logging: request path, writer, bulk Parquet and JSON Lines"

TARGET_ADDED_NS = 1_000
TARGET_BULK_PER_S = 1_000_000

UNIT = "user-12345"
CONFIG = {"experiments": [{"key": "ranker-v2", "arms": {"control": 50, "treatment": 50}}]}
FRAME_CONFIG = {
    "experiments": [
        {"key": "ranker-v2", "arms": {"control": 50, "treatment": 50}},
        {"key": "three-arms", "arms": {"control": 34, "a": 33, "b": 33}, "exposure": 0.5},
    ]
}


@dataclass(frozen=True)
class Sizes:
    scalar_batches: int
    writer_records: int
    bulk_rows: tuple[int, ...]
    reps: int


FULL = Sizes(scalar_batches=600, writer_records=300_000, bulk_rows=(1_000_000, 10_000_000), reps=3)
QUICK = Sizes(scalar_batches=40, writer_records=30_000, bulk_rows=(200_000,), reps=2)


@dataclass
class Results:
    machine: dict[str, str] = field(default_factory=dict)
    command: str = ""
    latency: list[tuple[str, str, float, float]] = field(default_factory=list)
    writer: list[tuple[str, float]] = field(default_factory=list)
    bulk: list[tuple[int, int, float, float, float, float | None]] = field(default_factory=list)
    # rows, exposures, then seconds per round of: JSONL, Parquet, no logging, json.dumps loop
    jsonl: list[tuple[int, int, list[float], list[float], list[float], list[float]]] = field(
        default_factory=list
    )
    # exposures, bytes, then seconds per round of write_table: JSONL, Parquet, JSONL record path
    sink_only: tuple[int, int, list[float], list[float], list[float]] | None = None
    file_bytes: list[tuple[int, int, int]] = field(default_factory=list)  # rows, JSONL, Parquet
    folder: str = ""
    scalar_batches: int = 0
    reps: int = 0
    seconds: float = 0.0


def bench_latency(res: Results, sizes: Sizes, folder: Path) -> None:
    plain = ts.Splitter(CONFIG)
    logged = ts.Splitter(CONFIG, exposures=ts.ParquetSink(folder / "latency"))
    baseline_queue: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
    counter = iter(range(10**12))

    def baseline(unit: str) -> Any:
        a = plain.assign("ranker-v2", unit)
        if a.arm is not None:
            baseline_queue.put(
                {
                    "ts": time.time(),
                    "unit": unit,
                    "experiment": a.experiment,
                    "arm": a.arm,
                    "bucket": a.bucket,
                    "reason": a.reason,
                }
            )
        return a

    def drain() -> None:  # the baseline's consumer, so its queue stays short
        while True:
            item = baseline_queue.get()
            if item is None:
                return

    consumer = threading.Thread(target=drain, daemon=True)
    consumer.start()
    ns = {
        "plain": plain,
        "logged": logged,
        "baseline": baseline,
        "UNIT": UNIT,
        "counter": counter,
    }
    cases = [
        ('plain.assign("ranker-v2", UNIT)', "no exposure logging"),
        (
            'logged.assign("ranker-v2", UNIT)',
            "exposure logging (repeats deduplicated by the writer)",
        ),
        (
            'plain.assign("ranker-v2", next(counter))',
            "no exposure logging, a new int unit per call",
        ),
        (
            'logged.assign("ranker-v2", next(counter))',
            "exposure logging, a new int unit per call (every call written)",
        ),
        ("baseline(UNIT)", "baseline: assign, then a dict on a SimpleQueue"),
    ]
    figures = scalar_latency([c[0] for c in cases], ns, sizes.scalar_batches)
    res.scalar_batches = sizes.scalar_batches
    for (stmt, what), (median, p99) in zip(cases, figures, strict=True):
        res.latency.append((stmt, what, median, p99))
        print(f"  {stmt}: median {median:,.0f} ns, p99 {p99:,.0f} ns", flush=True)
    logged.close()
    baseline_queue.put(None)  # type: ignore[arg-type]
    consumer.join(10)


def bench_writer(res: Results, sizes: Sizes, folder: Path) -> None:
    """Records per second the writer thread turns into files, from a full queue."""
    n = sizes.writer_records
    for name, make in (
        ("JSONL", lambda p: ts.JsonlSink(p)),
        ("Parquet", lambda p: ts.ParquetSink(p)),
    ):
        lg = ts.ExposureLogger(make(folder / f"writer-{name}"), max_queue=n + 10)
        lg._pause()  # the queue fills first, then the writer drains it
        sp = ts.Splitter(CONFIG, exposures=lg)
        for i in range(n):
            sp.assign("ranker-v2", f"user-{i}")
        lg._spawn()
        t0 = time.perf_counter()
        assert lg.flush(600)
        seconds = time.perf_counter() - t0
        lg.close()
        assert lg.counters().written == n
        res.writer.append((name, n / seconds))
        print(f"  writer into {name}: {n / seconds:,.0f} records/s", flush=True)


def frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    ids = rng.integers(0, 10**12, rows)
    return pd.DataFrame({"user_id": pd.Series(np.char.add("user-", ids.astype(str)), dtype="str")})


def bench_bulk(res: Results, sizes: Sizes, folder: Path) -> None:
    res.reps = sizes.reps
    for rows in sizes.bulk_rows:
        bench_bulk_rows(res, sizes, folder, rows)


def bench_bulk_rows(res: Results, sizes: Sizes, folder: Path, rows: int) -> None:
    df = frame(rows)
    plain = ts.Splitter(FRAME_CONFIG)
    sink = ts.ParquetSink(folder / f"bulk-{rows}", rotate_bytes=None, rotate_seconds=None)
    lg = ts.ExposureLogger(sink)
    logged = ts.Splitter(FRAME_CONFIG, exposures=lg)
    exposures = int(
        sum(plain.assign_frame(df, "user_id")[k].notna().sum() for k in ("ranker-v2", "three-arms"))
    )

    def with_logging() -> None:
        logged.assign_frame(df, "user_id", log_exposures=True)
        lg.flush(600)

    def without() -> None:
        plain.assign_frame(df, "user_id")

    cases = [with_logging, without]
    baseline_rows = min(rows, 1_000_000)
    if rows == baseline_rows:

        def baseline() -> None:
            out = plain.assign_frame(df, "user_id")
            now = pd.Timestamp.now(tz="UTC")
            for key in ("ranker-v2", "three-arms"):
                arm = out[key]
                keep = arm.notna().to_numpy()
                records = [
                    {"timestamp": now, "unit": u, "experiment": key, "arm": a}
                    for u, a in zip(df["user_id"][keep], arm[keep], strict=True)
                ]
                pq.write_table(pa.Table.from_pylist(records), folder / f"base-{key}.parquet")

        cases.append(baseline)
    times = time_interleaved(cases, sizes.reps)
    lg.close()
    logged_s, plain_s = min(times[0]), min(times[1])
    base_s = min(times[2]) if len(times) > 2 else None
    written = pq.ParquetFile(sink.files[0]).metadata.num_rows
    assert written == exposures * (sizes.reps + 1), (written, exposures)
    res.bulk.append((rows, exposures, logged_s, plain_s, exposures / logged_s, base_s))
    print(
        f"  {rows:,} rows, {exposures:,} exposures: {logged_s:.3f} s with logging "
        f"({exposures / logged_s:,.0f}/s), {plain_s:.3f} s without"
        + ("" if base_s is None else f", baseline {base_s:.3f} s"),
        flush=True,
    )
    shutil.rmtree(folder / f"bulk-{rows}", ignore_errors=True)


class _Tables(ts.ExposureSink):
    """Keeps the tables a logger hands over, to time the sinks on them alone."""

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []

    def write(self, records: Any) -> None:
        return None

    def write_table(self, table: pa.Table) -> None:
        self.tables.append(table)


def _lines(paths: list[Path]) -> int:
    count = 0
    for p in paths:
        with open(p, "rb") as f:
            while chunk := f.read(1 << 24):
                count += chunk.count(b"\n")
    return count


def _remove(paths: list[Path]) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def bench_jsonl(res: Results, sizes: Sizes, folder: Path) -> None:
    res.folder = str(folder)
    for rows in sizes.bulk_rows:
        bench_jsonl_rows(res, sizes, folder, rows)
    bench_jsonl_sink(res, sizes, folder, sizes.bulk_rows[0])


def bench_jsonl_rows(res: Results, sizes: Sizes, folder: Path, rows: int) -> None:
    """``assign_frame(..., log_exposures=True)`` plus the flush into JSONL and Parquet files,
    no logging, and a json.dumps loop; interleaved round by round, the files removed after
    each round (untimed) once their lines are counted."""
    df = frame(rows)
    plain = ts.Splitter(FRAME_CONFIG)
    out = plain.assign_frame(df, "user_id")
    keys = ("ranker-v2", "three-arms")
    exposures = int(sum(out[k].notna().sum() for k in keys))
    jsonl_sink = ts.JsonlSink(folder / f"jsonl-{rows}", rotate_seconds=None)
    jsonl_log = ts.ExposureLogger(jsonl_sink)
    jsonl = ts.Splitter(FRAME_CONFIG, exposures=jsonl_log)
    parquet_sink = ts.ParquetSink(folder / f"parquet-{rows}", rotate_seconds=None)
    parquet_log = ts.ExposureLogger(parquet_sink)
    parquet = ts.Splitter(FRAME_CONFIG, exposures=parquet_log)
    base_path = folder / f"dumps-{rows}.jsonl"

    def into_jsonl() -> None:
        jsonl.assign_frame(df, "user_id", log_exposures=True)
        assert jsonl_log.flush(3600)

    def into_parquet() -> None:
        parquet.assign_frame(df, "user_id", log_exposures=True)
        assert parquet_log.flush(3600)

    def without() -> None:
        plain.assign_frame(df, "user_id")

    def dumps_loop() -> None:
        # What a user writes without a sink: a dict per exposure, json.dumps, one file.
        got = plain.assign_frame(df, "user_id")
        now = pd.Timestamp.now(tz="UTC").isoformat()
        dumps = json.dumps
        with open(base_path, "w", encoding="utf-8") as f:
            for key in keys:
                arm, reason = got[key], got[f"{key}_reason"]
                keep = arm.notna().to_numpy()
                f.writelines(
                    dumps(
                        {"timestamp": now, "unit": u, "experiment": key, "arm": a, "reason": r},
                        ensure_ascii=False,
                    )
                    + "\n"
                    for u, a, r in zip(df["user_id"][keep], arm[keep], reason[keep], strict=True)
                )

    cases: list[tuple[str, Any]] = [
        ("jsonl", into_jsonl),
        ("parquet", into_parquet),
        ("without", without),
    ]
    if rows <= 1_000_000:
        cases.append(("dumps", dumps_loop))
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for rep in range(sizes.reps + 1):  # the first round warms up
        for name, fn in cases:
            gc_collect()
            t0 = time.perf_counter()
            fn()
            seconds = time.perf_counter() - t0
            if rep:
                times[name].append(seconds)
        # Untimed: every exposure is in the files, then the files go.
        jsonl_sink.close()
        assert jsonl_log.counters().written == exposures * (rep + 1)
        assert _lines(jsonl_sink.files) == exposures, rows
        if rep == 0:
            jsonl_bytes = sum(f.stat().st_size for f in jsonl_sink.files)
        _remove(jsonl_sink.files)
        jsonl_sink.files = []
        parquet_sink.close()  # the footer and fsync, untimed as for the Parquet figures above
        done = [f for f in parquet_sink.files if f.exists()]
        assert sum(pq.ParquetFile(f).metadata.num_rows for f in done) == exposures
        if rep == 0:
            res.file_bytes.append((rows, jsonl_bytes, sum(f.stat().st_size for f in done)))
        _remove(done)
        parquet_sink.files = []
        if base_path.exists():
            assert _lines([base_path]) == exposures
            base_path.unlink()
    jsonl_log.close()
    parquet_log.close()
    res.jsonl.append(
        (
            rows,
            exposures,
            times["jsonl"],
            times["parquet"],
            times["without"],
            times.get("dumps", []),
        )
    )
    print(
        f"  {rows:,} rows, {exposures:,} exposures: JSONL {exposures / min(times['jsonl']):,.0f}/s,"
        f" Parquet {exposures / min(times['parquet']):,.0f}/s"
        + (f", json.dumps {exposures / min(times['dumps']):,.0f}/s" if "dumps" in times else ""),
        flush=True,
    )


def bench_jsonl_sink(res: Results, sizes: Sizes, folder: Path, rows: int) -> None:
    """write_table alone, on the tables assign_frame queues: JSONL column by column, Parquet,
    and the JSONL record path (what write_table did before), after checking that the two JSONL
    paths write the same bytes."""
    from trafficsplit.telemetry.records import ExposureBatch

    keep = _Tables()
    lg = ts.ExposureLogger(keep)
    ts.Splitter(FRAME_CONFIG, exposures=lg).assign_frame(frame(rows), "user_id", log_exposures=True)
    lg.close()
    tables = keep.tables
    exposures = sum(t.num_rows for t in tables)

    def files_of(make: Any, name: str) -> Any:
        def run() -> list[Path]:
            sink = make(folder / f"sink-{name}")
            for t in tables:
                if name == "records":
                    sink.write(ExposureBatch.from_table(t))
                else:
                    sink.write_table(t)
            sink.close()
            return list(sink.files)

        return run

    jsonl = files_of(lambda p: ts.JsonlSink(p, rotate_bytes=None), "jsonl")
    parquet = files_of(lambda p: ts.ParquetSink(p, rotate_bytes=None), "parquet")
    records = files_of(lambda p: ts.JsonlSink(p, rotate_bytes=None), "records")
    bulk_files, record_files = jsonl(), records()
    data = b"".join(f.read_bytes() for f in bulk_files)
    assert data == b"".join(f.read_bytes() for f in record_files), "JSONL paths differ"
    assert data.count(b"\n") == exposures
    size = len(data)
    del data
    _remove(bulk_files + record_files)
    times: list[list[float]] = [[], [], []]
    for rep in range(sizes.reps + 1):
        for fn, seconds in zip((jsonl, parquet, records), times, strict=True):
            if fn is records and rep > 1:
                continue  # the record path is slow: one timed round is enough
            gc_collect()
            t0 = time.perf_counter()
            written = fn()
            took = time.perf_counter() - t0
            if rep:
                seconds.append(took)
            _remove(written)
    res.sink_only = (exposures, size, *times)  # type: ignore[assignment]
    print(
        f"  write_table of {exposures:,} records: JSONL {exposures / min(times[0]):,.0f}/s, "
        f"Parquet {exposures / min(times[1]):,.0f}/s, JSONL record path "
        f"{exposures / min(times[2]):,.0f}/s",
        flush=True,
    )


def gc_collect() -> None:
    import gc

    gc.collect()


def report(res: Results) -> list[str]:
    out = environment_lines(res.command, res.machine)
    out += [
        "### `Splitter.assign` with and without exposure logging",
        "",
        f"Median and p99 of per-call averages over {res.scalar_batches:,} batches of 1,000 "
        "calls, statements interleaved; the logger's writer thread runs meanwhile.",
        "",
    ]
    out += table(
        ["statement", "what", "median ns", "p99 ns"],
        [[f"`{s}`", w, f"{m:,.0f}", f"{p:,.0f}"] for s, w, m, p in res.latency],
    )
    by = {s: m for s, _, m, _ in res.latency}
    added_same = by['logged.assign("ranker-v2", UNIT)'] - by['plain.assign("ranker-v2", UNIT)']
    added_new = (
        by['logged.assign("ranker-v2", next(counter))']
        - by['plain.assign("ranker-v2", next(counter))']
    )
    out += [
        "",
        f"Added by logging: {added_same:,.0f} ns (repeated unit), {added_new:,.0f} ns (a new "
        "unit per call).",
        "",
        "### Writer thread",
        "",
        "Records per second from a full queue to the files (dedup, probability, encoding, "
        "writing); the thread shares the interpreter with the request threads.",
        "",
    ]
    out += table(["sink", "records/s"], [[n, f"{r:,.0f}"] for n, r in res.writer])
    out += [
        "",
        "### Bulk exposures into Parquet",
        "",
        "`assign_frame(df, 'user_id', log_exposures=True)` on two experiments (the second "
        "at exposure 0.5), then the flush that writes one row group per experiment; best of "
        f"{res.reps} repetitions. Baseline: a dict per exposure and `pyarrow.Table.from_pylist`.",
        "",
    ]
    out += table(
        ["rows", "exposures", "with logging s", "exposures/s", "without logging s", "baseline s"],
        [
            [
                f"{rows:,}",
                f"{n:,}",
                f"{lg_s:.3f}",
                f"{rate:,.0f}",
                f"{pl_s:.3f}",
                "" if base is None else f"{base:.3f}",
            ]
            for rows, n, lg_s, pl_s, rate, base in res.bulk
        ],
    )
    out.append("")
    out += jsonl_report(res)
    worst_bulk = min(r[4] for r in res.bulk)
    worst_jsonl = min(n / statistics.median(j) for _, n, j, *_ in res.jsonl)
    targets = [
        [
            "exposure logging added to `Splitter.assign` (median)",
            f"≤ {TARGET_ADDED_NS:,} ns",
            f"{max(added_same, added_new):,.0f} ns",
            mark(max(added_same, added_new) <= TARGET_ADDED_NS),
        ],
        [
            "exposures into Parquet from `assign_frame` (slowest size)",
            f"≥ {TARGET_BULK_PER_S:,}/s",
            f"{worst_bulk:,.0f}/s",
            mark(worst_bulk >= TARGET_BULK_PER_S),
        ],
        [
            "exposures into JSONL from `assign_frame` (slowest size, median round)",
            f"≥ {TARGET_BULK_PER_S:,}/s",
            f"{worst_jsonl:,.0f}/s",
            mark(worst_jsonl >= TARGET_BULK_PER_S),
        ],
    ]
    out += targets_table(targets)
    out.append(f"Total run time: {res.seconds:.0f} s.")
    out.append("")
    return out


def jsonl_report(res: Results) -> list[str]:
    def rate(n: int, seconds: list[float]) -> str:
        if not seconds:
            return ""
        return f"{n / statistics.median(seconds):,.0f} ({n / min(seconds):,.0f})"

    out = [
        "### Bulk exposures into JSON Lines",
        "",
        "The same `assign_frame(df, 'user_id', log_exposures=True)` plus the flush, into a "
        "`JsonlSink` and into a `ParquetSink`, against `assign_frame` without logging and a "
        "`json.dumps` loop (a dict per exposure with five of the record's thirteen fields: "
        "time, unit, experiment, arm, reason; written to one file). The cases are interleaved "
        f"round by round, {res.reps} rounds after a warm-up round; the files of a round are "
        "checked (every exposure one line, or one row) and removed after it, untimed. Exposures "
        "per second: median round (best round). The files go to a temporary folder on the "
        "machine's disk (through the page cache, not fsynced); "
        + ", ".join(
            f"{rows:,} rows: {j / 2**20:,.0f} MiB of JSON Lines, {p / 2**20:,.0f} MiB of Parquet"
            for rows, j, p in res.file_bytes
        )
        + ".",
        "",
    ]
    out += table(
        ["rows", "exposures", "JSONL /s", "Parquet /s", "without logging s", "json.dumps loop /s"],
        [
            [
                f"{rows:,}",
                f"{n:,}",
                rate(n, j),
                rate(n, p),
                f"{statistics.median(w):.3f}",
                rate(n, d),
            ]
            for rows, n, j, p, w, d in res.jsonl
        ],
    )
    ratios = [
        f"{statistics.median(d) / statistics.median(j):.0f}× the json.dumps loop"
        for _, _, j, _, _, d in res.jsonl
        if d
    ]
    if ratios:
        out += ["", f"JSONL from `assign_frame` runs at {', '.join(ratios)} (median rounds)."]
    if res.sink_only is not None:
        n, size, jsonl, parquet, records = res.sink_only
        out += [
            "",
            f"The sinks alone: `write_table` of the two tables `assign_frame` queues for "
            f"{n:,} exposures ({size / n:.0f} bytes a JSON line), files removed after each "
            "round. The record path is what `JsonlSink.write_table` ran before: the table "
            "converted to records, then `JsonlSink.write`; both JSONL paths were checked to "
            "write the same bytes.",
            "",
        ]
        out += table(
            ["write_table", "records/s, median (best)"],
            [
                ["JSONL, column by column (C++)", rate(n, jsonl)],
                ["Parquet", rate(n, parquet)],
                ["JSONL, record path (before)", rate(n, records)],
            ],
        )
        out += [
            "",
            f"Column by column: {statistics.median(records) / statistics.median(jsonl):.0f}× "
            "the record path.",
        ]
    out.append("")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, SECTION, argv)
    sizes = QUICK if args.quick else FULL
    machine, command = start_run()
    res = Results(machine=machine, command=command)
    t0 = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="bench-exposures-"))
    try:
        print("Splitter.assign latency:", flush=True)
        bench_latency(res, sizes, folder)
        print("writer thread:", flush=True)
        bench_writer(res, sizes, folder)
        print("bulk into Parquet:", flush=True)
        bench_bulk(res, sizes, folder)
        print("bulk into JSON Lines:", flush=True)
        bench_jsonl(res, sizes, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    res.seconds = finish_run(res.machine, t0)
    publish(report(res), args.markdown, SECTION, SECTION_TITLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
