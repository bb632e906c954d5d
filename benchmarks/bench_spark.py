#!/usr/bin/env python
"""Spark benchmark: trafficsplit.spark.assign (mapInArrow, Arrow batches through the C++ path)
against the row-at-a-time Python UDF over Splitter.assign a user would otherwise write, with
Spark's own hash as the floor and Splitter.assign_frame on the driver for scale.

Run from the repository root (Java on the PATH):

    .venv/bin/python benchmarks/bench_spark.py [--quick] [--markdown docs/benchmarks.md]

One local Spark session (local[2], bound to 127.0.0.1, no UI). The data are generated with a
fixed seed, handed to Spark as an Arrow table and cached in 8 partitions, so that every case
reads memory. Each case assigns one experiment and ends in Spark's ``noop`` sink, which makes
Spark compute every output column of every row and keep none; the cases are timed interleaved
(each round runs every case once) and the best and the median of the rounds are reported.
Before timing, the script checks that Spark's rows equal assign_frame's. ``--markdown PATH``
writes (or replaces) the section between the ``bench_spark`` markers in PATH and leaves the
rest of the file alone.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

import trafficsplit as ts
from _common import (
    PACKAGE_SOURCES,
    SQL_AND_SPARK_CONFIG,
    dist_version,
    environment_lines,
    finish_run,
    parse_args,
    publish,
    start_run,
    table,
    time_interleaved,
)
from trafficsplit import spark as ts_spark

SEED = 20_261_208
SECTION = "bench_spark"
SECTION_TITLE = "## Spark: `trafficsplit.spark.assign` against a Python UDF"
PARTITIONS = 8
MOMENT = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)  # "now" for the cases without per-row times

CONFIG = SQL_AND_SPARK_CONFIG


@dataclass(frozen=True)
class Sizes:
    rows: int
    reps: int


FULL = Sizes(rows=1_000_000, reps=3)
QUICK = Sizes(rows=100_000, reps=1)


@dataclass(frozen=True)
class Case:
    name: str
    key: str
    unit: str
    at: str | None = None  # a time column: history replayed row by row
    attributes: bool = False  # targeting on country


CASES = [
    Case("str ids, one moment", "ranker-v2", "user_id"),
    Case("int64 ids, one moment", "ranker-v2", "user_int"),
    Case("str ids, per-row `at`", "ranker-v2", "user_id", at="seen_at"),
    Case("str ids, targeted on a column", "ranker-us", "user_id", attributes=True),
]


@dataclass
class Timing:
    best: float  # seconds
    median: float


@dataclass
class Row:
    case: Case
    spark: Timing
    udf: Timing
    identity: Timing
    floor: Timing
    driver: Timing


@dataclass
class Results:
    machine: dict[str, str] = field(default_factory=dict)
    command: str = ""
    rows: int = 0
    reps: int = 0
    results: list[Row] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    seconds: float = 0.0


def make_data(rows: int) -> pa.Table:
    rng = np.random.default_rng(SEED)
    ids = rng.integers(0, 10**12, rows)
    first = int(dt.datetime(2026, 10, 20, tzinfo=dt.UTC).timestamp() * 1e6)
    span = 40 * 86_400 * 10**6
    return pa.table(
        {
            "row": pa.array(np.arange(rows)),
            "user_id": pa.array(np.char.add("user-", ids.astype(str)).tolist(), pa.string()),
            "user_int": pa.array(ids),
            "country": pa.array(rng.choice(["US", "CA", "DE", "FR"], rows).tolist()),
            "seen_at": pa.array(first + rng.integers(0, span, rows), pa.timestamp("us", tz="UTC")),
        }
    )


def session() -> Any:
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("bench_spark")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def columns_of(case: Case) -> list[str]:
    return (
        ["row", case.unit]
        + ([case.at] if case.at else [])
        + (["country"] if case.attributes else [])
    )


def python_udf(case: Case) -> Any:
    """The UDF a user writes without trafficsplit.spark: ``Splitter.assign`` row by row, the
    configuration shipped as JSON and compiled once per task."""
    from pyspark.sql import functions

    text = ts.Splitter(CONFIG).snapshot.to_json()
    key, moment = case.key, MOMENT

    def assign_one(unit: Any, at: Any = None, country: Any = None) -> tuple:
        splitter = compiled.get(text)
        if splitter is None:
            from trafficsplit.config import snapshot_from_json

            splitter = compiled[text] = ts.Splitter(snapshot_from_json(text))
        a = splitter.assign(
            key,
            unit,
            None if country is None else {"country": country},
            at=moment if at is None else at,
            log_exposure=False,
        )
        return a.arm, a.bucket if unit is not None else None, a.reason

    compiled: dict[str, ts.Splitter] = {}
    return functions.udf(assign_one, "arm string, bucket int, reason string")


def _unchanged(batches: Any) -> Any:
    """mapInArrow's own cost: every batch to Python and back, untouched."""
    yield from batches


def check(spark_rows: pa.Table, data: pa.Table, case: Case, what: str) -> None:
    got = spark_rows.sort_by("row")
    frame = data.select(columns_of(case))
    at_column = case.at
    if at_column is None:
        frame = frame.append_column("at", pa.array([MOMENT] * data.num_rows, pa.timestamp("us")))
        at_column = "at"
    want = ts.Splitter(CONFIG).assign_frame(frame, case.unit, [case.key], at_column=at_column)
    for ours, theirs in ((case.key, case.key), (f"{case.key}_reason", f"{case.key}_reason")):
        if got.column(ours).to_pylist() != want.column(theirs).cast(pa.string()).to_pylist():
            raise SystemExit(f"{case.name}: the {what}'s {ours} differs from assign_frame's")


def bench(res: Results, data: pa.Table, sizes: Sizes) -> None:
    from pyspark.sql import functions

    spark = session()
    cached = spark.createDataFrame(data).repartition(PARTITIONS).cache()
    cached.count()
    splitter = ts.Splitter(CONFIG)
    for case in CASES:
        df = cached.select(*columns_of(case))
        at = None if case.at else MOMENT
        assigned = ts_spark.assign(df, CONFIG, case.unit, [case.key], at_column=case.at, at=at)

        args = [functions.col(case.unit)]
        if case.at or case.attributes:
            args.append(functions.col(case.at) if case.at else functions.lit(None))
        if case.attributes:
            args.append(functions.col("country"))
        by_row = df.withColumn("a", python_udf(case)(*args)).select(
            *df.columns,
            functions.col("a.arm").alias(case.key),
            functions.col("a.bucket").alias(f"{case.key}_bucket"),
            functions.col("a.reason").alias(f"{case.key}_reason"),
        )
        check(assigned.toArrow(), data, case, "trafficsplit.spark")
        check(by_row.toArrow(), data, case, "Python UDF")
        res.checked.append(f"{case.name}: {data.num_rows:,} rows equal")
        floor = df.withColumn("bucket", functions.xxhash64(case.unit) % 10_000)
        local = data.select(columns_of(case))
        if case.at is None:
            local = local.append_column("at", pa.array([MOMENT] * len(local), pa.timestamp("us")))

        identity = df.mapInArrow(_unchanged, df.schema)

        def sink(frame: Any) -> Callable[[], None]:
            return lambda: frame.write.format("noop").mode("overwrite").save()

        def on_driver(case: Case = case, local: pa.Table = local) -> Any:
            return splitter.assign_columns(local, case.unit, [case.key], at_column=case.at or "at")

        print(f"  {case.name} ...", flush=True)
        fns = [sink(assigned), sink(by_row), sink(identity), sink(floor), on_driver]
        times = time_interleaved(fns, sizes.reps)
        ours, udf, same, base, driver = (Timing(min(t), float(np.median(t))) for t in times)
        res.results.append(Row(case, ours, udf, same, base, driver))
    spark.stop()


def report(res: Results) -> list[str]:
    out = environment_lines(res.command, res.machine)
    out.append(f"### {res.rows:,} rows, Spark `local[2]`, {PARTITIONS} cached partitions")
    out.append("")
    out.append(
        f"{res.rows:,} rows (`user_id`: `user-<12 digits>`; `user_int`: the same ids as int64; "
        "`country`; `seen_at`, a timestamp over 40 days) cached in Spark. `ranker-v2` takes 40 % "
        "of a layer behind a 5 % holdout, at exposure 0.5, with a three-step allocation history "
        'and overrides; `ranker-us` takes 30 % of the layer with `country in ["US", "CA"]`. '
        "Every case writes the unit, arm, bucket and reason of every row to Spark's `noop` "
        "sink. **trafficsplit.spark**: `assign(df, config, unit, [key], at_column=...)` "
        "(Arrow batches of 10,000 rows through `Splitter.assign_columns`). **Python UDF**: "
        "`F.udf` returning a struct of `Splitter.assign(key, unit, attributes, at=...)`, row "
        "by row. **mapInArrow alone**: the same columns through `mapInArrow` to Python and "
        "back, untouched: what Spark's Arrow round trip costs before any work. **Spark floor**: "
        "`xxhash64(unit) % 10000`, a split in the JVM that follows no contract, for what "
        "scanning and the sink cost. **Driver**: "
        "`Splitter.assign_columns` on the same rows as a pyarrow Table in the driver process "
        f"(both cores), no Spark. Best of {res.reps} interleaved rounds, the median in "
        "brackets; M rows/s from the best."
    )
    out.append("")
    rows = []
    for r in res.results:

        def cell(t: Timing) -> str:
            return f"{t.best * 1e3:,.0f} ({t.median * 1e3:,.0f})"

        rows.append(
            [
                r.case.name,
                cell(r.spark),
                f"{res.rows / r.spark.best / 1e6:.2f}",
                cell(r.udf),
                f"{res.rows / r.udf.best / 1e6:.3f}",
                f"{r.udf.best / r.spark.best:.1f}×",
                cell(r.identity),
                cell(r.floor),
                cell(r.driver),
            ]
        )
    out += table(
        [
            "case",
            "trafficsplit.spark ms",
            "M rows/s",
            "Python UDF ms",
            "UDF M rows/s",
            "UDF ÷ trafficsplit.spark",
            "mapInArrow alone ms",
            "Spark floor ms",
            "driver, no Spark ms",
        ],
        rows,
    )
    out.append("")
    out.append(
        "Checked before timing, for trafficsplit.spark and the UDF against `assign_frame`: "
        + "; ".join(res.checked)
        + "."
    )
    out.append("")
    out.append(f"Whole run: {res.seconds:.0f} s.")
    out.append("")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, SECTION, argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    machine, command = start_run(
        {"pyspark": dist_version("pyspark"), "Java": java_version()},
        git_sources=PACKAGE_SOURCES,
    )
    res = Results(machine=machine, command=command, rows=sizes.rows, reps=sizes.reps)
    print("making the data ...", flush=True)
    data = make_data(sizes.rows)
    print("timing ...", flush=True)
    bench(res, data, sizes)
    res.seconds = finish_run(res.machine, started)
    publish(report(res), args.markdown, SECTION, SECTION_TITLE)
    return 0


def java_version() -> str:
    import subprocess

    try:
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=60)
    except OSError:
        return "?"
    first = (done.stderr or done.stdout).splitlines()
    return first[0].strip() if first else "?"


if __name__ == "__main__":
    sys.exit(main())
