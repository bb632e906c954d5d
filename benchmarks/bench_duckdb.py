#!/usr/bin/env python
"""DuckDB benchmark: ts_arm / ts_reason in SQL over a Parquet file against the in-process path
(pyarrow reads the file, Splitter.assign_frame assigns it), with DuckDB's own hash as the floor.

Run from the repository root:

    .venv/bin/python benchmarks/bench_duckdb.py [--quick] [--markdown docs/benchmarks.md]

Everything is measured in one run, on a Parquet file written here from data generated with a
fixed seed. Each case reads the same file and ends with an Arrow table of the unit id, the arm
and the reason of every row; the cases are timed interleaved (each round runs every case once)
and the best and the median of the rounds are reported. Before timing, the script checks that
DuckDB's rows equal assign_frame's. ``--markdown PATH`` writes (or replaces) the section between
the ``bench_duckdb`` markers in PATH and leaves the rest of the file alone.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import trafficsplit as ts
from _common import (
    PACKAGE_SOURCES,
    SQL_AND_SPARK_CONFIG,
    environment_lines,
    finish_run,
    parse_args,
    publish,
    start_run,
    table,
    time_interleaved,
)
from trafficsplit.duckdb import register

SEED = 20_261_207
SECTION = "bench_duckdb"
SECTION_TITLE = "## SQL on DuckDB: `ts_arm` against `assign_frame`"

CONFIG = SQL_AND_SPARK_CONFIG


@dataclass(frozen=True)
class Sizes:
    rows: int
    reps: int


FULL = Sizes(rows=2_000_000, reps=7)
QUICK = Sizes(rows=200_000, reps=2)


@dataclass(frozen=True)
class Case:
    """One workload: the experiment, the unit column and what else the SQL call passes."""

    name: str
    key: str
    unit: str
    at: str | None = None  # a time column: history replayed row by row
    attributes: bool = False  # targeting on country


CASES = [
    Case("str ids, now", "ranker-v2", "user_id"),
    Case("int64 ids, now", "ranker-v2", "user_int"),
    Case("int64 ids, now, no overrides", "search-ui", "user_int"),
    Case("str ids, per-row `at`", "ranker-v2", "user_id", at="seen_at"),
    Case("str ids, targeted (STRUCT attributes)", "ranker-us", "user_id", attributes=True),
]


@dataclass
class Timing:
    best: float  # seconds
    median: float


@dataclass
class Row:
    case: Case
    sql: Timing
    frame: Timing
    floor: Timing


@dataclass
class Split:
    """Where the time of one SQL query goes (seconds, medians of the rounds)."""

    case: Case
    total: float  # the query through a UDF that times itself
    inside: float  # of which inside that UDF: trafficsplit's work on each vector
    idle: float  # the same query through a UDF that returns a ready result


@dataclass
class Results:
    machine: dict[str, str] = field(default_factory=dict)
    command: str = ""
    rows: int = 0
    reps: int = 0
    threads: int = 0
    results: list[Row] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    splits: list[Split] = field(default_factory=list)
    seconds: float = 0.0


def write_data(path: Path, rows: int) -> None:
    rng = np.random.default_rng(SEED)
    ids = rng.integers(0, 10**12, rows)
    first = int(dt.datetime(2026, 10, 20, tzinfo=dt.UTC).timestamp() * 1e6)
    span = 40 * 86_400 * 10**6
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array(np.char.add("user-", ids.astype(str)).tolist(), pa.string()),
                "user_int": pa.array(ids),
                "country": pa.array(rng.choice(["US", "CA", "DE", "FR"], rows).tolist()),
                "seen_at": pa.array(
                    first + rng.integers(0, span, rows), pa.timestamp("us", tz="UTC")
                ),
            }
        ),
        path,
        row_group_size=1 << 17,
    )


def sql_of(case: Case) -> str:
    args = f"'{case.key}', {case.unit}"
    if case.at or case.attributes:
        args += f", {case.at or 'now()'}"
    if case.attributes:
        args += ", {'country': country}"
    return f"{case.unit}, ts_arm({args}) AS arm, ts_reason({args}) AS reason"


def columns_of(case: Case) -> list[str]:
    return [case.unit] + ([case.at] if case.at else []) + (["country"] if case.attributes else [])


def to_arrow(result: Any) -> Any:
    """The query's rows as an Arrow table (``to_arrow_table`` in DuckDB 2, before it
    ``fetch_arrow_table``)."""
    fetch = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
    return fetch()


def check(con: Any, splitter: ts.Splitter, path: Path, case: Case) -> str:
    """DuckDB's rows equal assign_frame's (in the file's order) before anything is timed."""
    got = to_arrow(con.execute(f"SELECT {sql_of(case)} FROM read_parquet('{path}')"))
    data = pq.read_table(path, columns=columns_of(case))
    want = splitter.assign_frame(data, case.unit, [case.key], at_column=case.at)
    arms = want.column(case.key).cast(pa.string()).to_pylist()
    reasons = want.column(f"{case.key}_reason").cast(pa.string()).to_pylist()
    if got.column("arm").to_pylist() != arms or got.column("reason").to_pylist() != reasons:
        raise SystemExit(f"{case.name}: DuckDB's rows differ from assign_frame's")
    return f"{case.name}: {len(arms):,} rows equal"


def bench(res: Results, path: Path, sizes: Sizes) -> None:
    splitter = ts.Splitter(CONFIG)
    con = register(duckdb.connect(), splitter)
    res.threads = int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
    for case in CASES:
        res.checked.append(check(con, splitter, path, case))
    for case in CASES:
        query = f"SELECT {sql_of(case)} FROM read_parquet('{path}')"
        floor = (
            f"SELECT {case.unit}, hash({case.unit}) % 10000 AS bucket FROM read_parquet('{path}')"
        )

        def in_process(case: Case = case) -> Any:
            data = pq.read_table(path, columns=columns_of(case))
            return splitter.assign_frame(data, case.unit, [case.key], at_column=case.at)

        fns: list[Callable[[], Any]] = [
            lambda q=query: to_arrow(con.execute(q)),
            in_process,
            lambda q=floor: to_arrow(con.execute(q)),
        ]
        print(f"  {case.name} ...", flush=True)
        times = time_interleaved(fns, sizes.reps)
        sql, frame, base = (Timing(min(t), float(np.median(t))) for t in times)
        res.results.append(Row(case, sql, frame, base))


def where_the_time_goes(res: Results, path: Path, sizes: Sizes) -> None:
    """The int64 cases through UDFs of the same signature as trafficsplit's: one that runs the
    module's own per-vector function and times it, and one that returns a ready result, for
    what DuckDB's side costs. Uses package internals; skipped if they move."""
    try:
        from trafficsplit.duckdb import _UDF_RESULT, _assign_rows
    except ImportError as e:
        print(f"  where the time goes: skipped ({e})")
        return
    splitter = ts.Splitter(CONFIG)
    con = duckdb.connect()
    con.execute("SET threads = 1").fetchall()  # one thread: the time inside adds up
    inside = [0.0]

    def timed(experiment: Any, unit: Any, at_us: Any) -> Any:
        t0 = time.perf_counter()
        out = _assign_rows(splitter, "ts_", experiment, unit, at_us, None)
        inside[0] += time.perf_counter() - t0
        return out

    ready = _assign_rows(
        splitter,
        "ts_",
        pa.array(["search-ui"] * 2048),
        pa.array(np.arange(2048)),
        pa.array(np.full(2048, 1_796_000_000_000_000)),
        None,
    )

    def idle(experiment: Any, unit: Any, at_us: Any) -> Any:
        return ready if len(experiment) == len(ready) else ready.slice(0, len(experiment))

    for name, fn in (("bench_timed", timed), ("bench_idle", idle)):
        con.create_function(
            name,
            fn,
            ["VARCHAR", "BIGINT", "BIGINT"],
            _UDF_RESULT,
            type="arrow",
            null_handling="special",
        )
    for case in CASES:
        if case.unit != "user_int":
            continue

        def query(udf: str, key: str = case.key) -> str:
            return (
                f"SELECT user_int, r.arm, r.reason FROM (SELECT user_int, {udf}('{key}', "
                f"user_int, epoch_us(now())) AS r FROM read_parquet('{path}'))"
            )

        totals: list[float] = []
        insides: list[float] = []
        idles: list[float] = []
        for _ in range(sizes.reps):
            inside[0] = 0.0
            t0 = time.perf_counter()
            to_arrow(con.execute(query("bench_timed")))
            totals.append(time.perf_counter() - t0)
            insides.append(inside[0])
            t0 = time.perf_counter()
            to_arrow(con.execute(query("bench_idle")))
            idles.append(time.perf_counter() - t0)
        res.splits.append(
            Split(
                case,
                float(np.median(totals)),
                float(np.median(insides)),
                float(np.median(idles)),
            )
        )


def report(res: Results) -> list[str]:
    out = environment_lines(res.command, res.machine)
    out.append(f"### {res.rows:,} rows from Parquet, DuckDB threads = {res.threads}")
    out.append("")
    out.append(
        f"One Parquet file of {res.rows:,} rows (`user_id`: `user-<12 digits>`; `user_int`: "
        "the same ids as int64; `country`; `seen_at`, a TIMESTAMPTZ over 40 days). "
        "`ranker-v2` takes 40 % of a layer behind a 5 % holdout, at exposure 0.5, with a "
        "three-step allocation history and overrides; `search-ui` takes 20 % of the layer "
        "(three arms, nothing else); `ranker-us` takes 30 % of the layer with "
        '`country in ["US", "CA"]`. **SQL**: `SELECT unit, ts_arm(...) AS arm, '
        "ts_reason(...) AS reason FROM read_parquet(...)` fetched as an Arrow table (the two "
        "functions share one UDF call per vector of 2,048 rows). **In process**: "
        "`pyarrow.parquet.read_table` of the columns used, then "
        "`Splitter.assign_frame(table, unit, [key], at_column=...)` (all cores). **DuckDB's "
        "floor**: `SELECT unit, hash(unit) % 10000 FROM read_parquet(...)`, a split that "
        "follows no contract, for what reading and fetching cost. Best of "
        f"{res.reps} interleaved rounds, the median in brackets; M rows/s from the best."
    )
    out.append("")
    rows = []
    for r in res.results:
        ratio = r.sql.best / r.frame.best
        rows.append(
            [
                r.case.name,
                f"`{sql_of(r.case).split(', ', 1)[1].split(' AS arm')[0]}`",
                f"{r.sql.best * 1e3:,.0f} ({r.sql.median * 1e3:,.0f})",
                f"{res.rows / r.sql.best / 1e6:.1f}",
                f"{r.frame.best * 1e3:,.0f} ({r.frame.median * 1e3:,.0f})",
                f"{res.rows / r.frame.best / 1e6:.1f}",
                f"{ratio:.1f}×",
                f"{r.floor.best * 1e3:,.0f} ({r.floor.median * 1e3:,.0f})",
            ]
        )
    out += table(
        [
            "case",
            "SQL call",
            "SQL ms",
            "SQL M rows/s",
            "in process ms",
            "in process M rows/s",
            "SQL ÷ in process",
            "DuckDB floor ms",
        ],
        rows,
    )
    out.append("")
    if res.splits:
        out.append("### Where the time goes (int64 ids)")
        out.append("")
        out.append(
            "DuckDB calls a Python function once per vector of 2,048 rows, handing each "
            "argument over as an Arrow array and taking the result back. The same queries "
            "through two Arrow UDFs of the same signature as trafficsplit's: one that runs the "
            "module's per-vector function (`trafficsplit.duckdb._assign_rows`) and times it, "
            "and one that returns a ready result, for what reading, handing vectors to Python "
            "and back, and fetching cost. DuckDB on one thread here, so that the time inside "
            "adds up; medians of the rounds; ns per row."
        )
        out.append("")
        rows = []
        for x in res.splits:
            n = res.rows
            rows.append(
                [
                    x.case.name,
                    f"{x.total / n * 1e9:,.0f}",
                    f"{x.inside / n * 1e9:,.0f}",
                    f"{x.inside / n * 2048 * 1e6:,.0f}",
                    f"{x.idle / n * 1e9:,.0f}",
                ]
            )
        out += table(
            [
                "case",
                "query ns/row",
                "inside the UDF ns/row",
                "µs per vector",
                "with a ready result ns/row",
            ],
            rows,
        )
        out.append("")
    out.append("Checked before timing: " + "; ".join(res.checked) + ".")
    out.append("")
    out.append(f"Whole run: {res.seconds:.0f} s.")
    out.append("")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, SECTION, argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    machine, command = start_run({"duckdb": duckdb.__version__}, git_sources=PACKAGE_SOURCES)
    res = Results(machine=machine, command=command, rows=sizes.rows, reps=sizes.reps)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "users.parquet"
        print("writing the data ...", flush=True)
        write_data(path, sizes.rows)
        print("timing ...", flush=True)
        bench(res, path, sizes)
        print("where the time goes ...", flush=True)
        where_the_time_goes(res, path, sizes)
    res.seconds = finish_run(res.machine, started)
    publish(report(res), args.markdown, SECTION, SECTION_TITLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
