#!/usr/bin/env python
"""Backfill benchmark: `trafficsplit assign` end to end on a large Parquet file of string ids,
with the I/O alone and the in-memory path beside it in the same run.

Run from the repository root:

    .venv/bin/python benchmarks/bench_backfill.py [--quick] [--markdown docs/benchmarks.md]

The input is generated once with a fixed seed and kept in build/bench-data: 50,000,000 UUID
strings (36 bytes) in row groups of 1,048,576 rows, snappy-compressed, and a 100,000,000-row
file for the memory bound. Each case runs in a fresh process, which reports its own peak
resident set (``ru_maxrss``); wall time is measured from the parent, the median of the
repetitions, interleaved. The configuration has three experiments: a 50/50 test, a 3-arm test
at 50 % exposure in a layer behind a 5 % holdout, and a 10 % canary.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from _common import (
    PACKAGE_SOURCES,
    environment_lines,
    finish_run,
    mark,
    parse_args,
    publish,
    start_run,
    table,
    targets_table,
)

SECTION = "bench_backfill"
SECTION_TITLE = "## Backfills: `trafficsplit assign` on a large Parquet file"
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "build" / "bench-data"

ROWS_FULL = 50_000_000
ROWS_MEMORY = 100_000_000
ROWS_QUICK = 2_000_000
REPS_FULL = 3
REPS_QUICK = 1
TARGET_RATE = 10e6  # rows per second, end to end
TARGET_PEAK = 2**30  # bytes

CONFIG = """\
layers:
  - key: ranking
holdouts:
  - key: global-2027
    percent: 5
experiments:
  - key: ranker-v2
    arms: {control: 50, treatment: 50}
  - key: reranker
    layer: ranking
    layer_share: 60
    holdouts: [global-2027]
    exposure: 0.5
    arms: {control: 40, a: 30, b: 30}
  - key: canary
    exposure: 0.1
    arms: {stable: 0, canary: 100}
"""

RUNNER = textwrap.dedent(
    """\
    import json, resource, sys, time
    case, args = sys.argv[1], json.loads(sys.argv[2])
    t0 = time.perf_counter()
    report = {}
    if case == "assign":
        from trafficsplit.cli import main
        code = main(args)
        assert code == 0, code
    elif case == "copy":  # the I/O alone: stream the row groups in and out
        import pyarrow.parquet as pq
        src = pq.ParquetFile(args[0])
        with pq.ParquetWriter(args[1], src.schema_arrow) as w:
            for batch in src.iter_batches(batch_size=1 << 20):
                w.write_batch(batch, row_group_size=batch.num_rows)
    elif case == "in-memory":  # what one writes without a backfill: read all, assign, write
        import pyarrow.parquet as pq, trafficsplit as ts
        table = pq.read_table(args[0])
        out = ts.Splitter(ts.load_config(args[2])).assign_frame(table, "user_id")
        pq.write_table(out, args[1], compression="snappy")
    elif case == "writers":  # the output columns of one batch, written 48 times by each writer
        import pyarrow as pa, pyarrow.parquet as pq, trafficsplit as ts
        from trafficsplit import _backfill, _parquet
        src, out, config, batches = args[0], args[1], args[2], int(args[3])
        batch = next(pq.ParquetFile(src).iter_batches(batch_size=1 << 20, columns=["user_id"]))
        snap = ts.load_config(config)
        keys = list(snap.experiments)
        result = ts.Splitter(snap).assign_columns(pa.Table.from_batches([batch]), "user_id")
        results = [result[k] for k in keys]
        schema = _backfill._output_schema(pa, batch.schema, ["user_id"], snap, keys)
        # the second round counts: the first pays each writer's first use of its memory
        rounds = [("nine", []), ("ten", ["user_id"])] * 2
        for name, kept in rounds:
            sub = pa.schema([f for f in schema if f.name in kept or f.name not in ("user_id",)])
            arrays = [batch.column(0)] if kept else []
            c0 = time.process_time()
            w = _parquet.NativeParquetWriter(out, sub, kept, [r.arms for r in results])
            for _ in range(batches):
                w.write(arrays, results)
            w.close()
            report[f"trafficsplit {name}"] = time.process_time() - c0
            c0 = time.process_time()
            columns = list(arrays) + [c for r in results for c in r.arrow_columns()]
            record = pa.RecordBatch.from_arrays(columns, schema=sub)
            codecs = {f.name: "none" for f in sub}
            with pq.ParquetWriter(out, sub, compression=codecs, write_statistics=False,
                                  use_dictionary=[f.name for f in sub
                                                  if pa.types.is_dictionary(f.type)],
                                  write_batch_size=1 << 16) as pw:
                for _ in range(batches):
                    pw.write_batch(record, row_group_size=record.num_rows)
            report[f"pyarrow {name}"] = time.process_time() - c0
        report["rows"] = batches * batch.num_rows
    took = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak, cpu = usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime
    print(json.dumps({"seconds": took, "peak": peak, "cpu": cpu, **report}), file=sys.stderr)
    """
)

# What a machine with AVX2 and no AVX-512 runs: trafficsplit's kernels, Arrow's and glibc's
# string functions each capped at AVX2.
AVX2_ONLY = {
    "TRAFFICSPLIT_SIMD": "avx2",
    "ARROW_USER_SIMD_LEVEL": "avx2",
    "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD",
}


def uuids(rng: np.random.Generator, n: int) -> pa.Array:
    """n random UUID-like strings (8-4-4-4-12 hex digits), built without a Python object each."""
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", np.uint8)
    h = np.empty((n, 32), np.uint8)
    h[:, 0::2], h[:, 1::2] = digits[raw >> 4], digits[raw & 15]
    out = np.full((n, 36), ord("-"), np.uint8)
    for dst, src in (((0, 8), (0, 8)), ((9, 13), (8, 12)), ((14, 18), (12, 16)),
                     ((19, 23), (16, 20)), ((24, 36), (20, 32))):  # fmt: skip
        out[:, dst[0] : dst[1]] = h[:, src[0] : src[1]]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out))


def short_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """n ids like ``user-48213507`` (5 to 13 bytes), as many services name users."""
    import pyarrow.compute as pc

    numbers = pa.array(rng.integers(0, 10**8, n)).cast(pa.string())
    return pc.binary_join_element_wise("user-", numbers, "")


def input_file(rows: int, kind: str = "uuid") -> Path:
    path = DATA / f"users-{kind}-{rows}.parquet"
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2026)
    tmp = path.with_suffix(".tmp")
    step = 1 << 20
    print(f"writing {path} ({rows:,} rows) ...", flush=True)
    schema = pa.schema([("user_id", pa.string())])
    with pq.ParquetWriter(tmp, schema, compression="snappy", use_dictionary=False) as w:
        for start in range(0, rows, step):
            n = min(step, rows - start)
            ids = uuids(rng, n) if kind == "uuid" else short_ids(rng, n)
            w.write_table(pa.table({"user_id": ids}), row_group_size=n)
    os.replace(tmp, path)
    return path


def run(case: str, args: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", RUNNER, case, json.dumps(args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{case} failed:\n{r.stdout}\n{r.stderr}")
    report = json.loads(r.stderr.strip().splitlines()[-1])
    report["wall"] = wall
    return report


MAIN = "`trafficsplit assign` (3 experiments)"
SHORT = "the same, ids like `user-48213507` instead of UUIDs"
THREADS = "the same, `--threads 2`"
AVX2 = "the same, capped at AVX2 (trafficsplit, Arrow and glibc)"
REPLACE = "the same, replacing the previous output"
COPY = "pyarrow with its defaults: stream the row groups in and out, nothing else"
COPY_SHORT = "pyarrow, the same with ids like `user-48213507`"
IN_MEMORY = "read whole, `Splitter.assign_frame`, write whole"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, SECTION, argv)
    rows = ROWS_QUICK if args.quick else ROWS_FULL
    reps = REPS_QUICK if args.quick else REPS_FULL
    started = time.perf_counter()
    machine, command = start_run(git_sources=PACKAGE_SOURCES)
    src = input_file(rows)
    short = input_file(rows, "short")
    big = input_file(ROWS_QUICK * 2 if args.quick else ROWS_MEMORY)
    with tempfile.TemporaryDirectory(prefix="bench-backfill-", dir=DATA) as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(CONFIG)
        out = Path(tmp) / "out.parquet"

        def assign(source: Path) -> list[str]:
            return [
                "assign", "--config", str(config), "--input", str(source), "--unit", "user_id",
                "--output", str(out), "--quiet",
            ]  # fmt: skip

        # Every case writes a new file, removed after it (not timed), but REPLACE, which writes
        # over the one MAIN left: replacing a file costs its deletion, which on a filesystem
        # with online discard is not small.
        cases: dict[str, tuple[str, list[str], dict[str, str] | None]] = {
            MAIN: ("assign", assign(src), None),
            REPLACE: ("assign", assign(src), None),
            SHORT: ("assign", assign(short), None),
            THREADS: ("assign", [*assign(src), "--threads", "2"], None),
            AVX2: ("assign", assign(src), AVX2_ONLY),
            COPY: ("copy", [str(src), str(out)], None),
            COPY_SHORT: ("copy", [str(short), str(out)], None),
            IN_MEMORY: ("in-memory", [str(src), str(out), str(config)], None),
        }
        # The two cases that hold gigabytes run once, after the others: memory a process frees
        # costs the next one that touches fresh memory (the host takes it back).
        once = (COPY, IN_MEMORY)
        order = [n for n in cases if n not in once] * reps + list(once)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
        out_rows = out_bytes = 0
        for name in order:
            case, case_args, env = cases[name]
            results[name].append(run(case, case_args, env))
            print(f"{name}: {results[name][-1]}", flush=True)
            if name == MAIN:
                out_rows = pq.ParquetFile(out).metadata.num_rows
                out_bytes = out.stat().st_size
                continue  # REPLACE writes over it
            out.unlink()
        big_run = run("assign", assign(big))
        print(f"{ROWS_MEMORY:,} rows: {big_run}", flush=True)
        out.unlink()
        writers = run("writers", [str(src), str(out), str(config), str(rows >> 20)])
        print(f"writers: {writers}", flush=True)
    seconds = finish_run(machine, started)

    def med(name: str, key: str = "wall") -> float:
        return statistics.median(r[key] for r in results[name])

    rate = rows / med(MAIN)
    capped = rows / med(AVX2)
    peak = max(r["peak"] for r in results[MAIN])
    short_rate = rows / med(SHORT)
    floor = rows / med(COPY)
    big_rows = pq.ParquetFile(big).metadata.num_rows
    targets = [
        [
            f"`trafficsplit assign`, {rows:,} string ids, 3 experiments, end to end",
            "≥ 10 M rows/s",
            f"{rate / 1e6:.1f} M rows/s",
            mark(rate >= TARGET_RATE),
        ],
        [
            "the same on AVX2 without AVX-512",
            "≥ 10 M rows/s",
            f"{capped / 1e6:.1f} M rows/s",
            mark(capped >= TARGET_RATE),
        ],
        [
            f"the same, {rows:,} ids like `user-48213507`",
            "≥ 10 M rows/s",
            f"{short_rate / 1e6:.1f} M rows/s",
            mark(short_rate >= TARGET_RATE),
        ],
        [
            "its peak resident memory",
            "< 1 GiB",
            f"{peak / 2**20:.0f} MiB",
            mark(peak < TARGET_PEAK),
        ],
        [
            f"peak resident memory for {big_rows:,} rows",
            "< 1 GiB",
            f"{big_run['peak'] / 2**20:.0f} MiB ({big_rows / big_run['wall'] / 1e6:.1f} M rows/s)",
            mark(big_run["peak"] < TARGET_PEAK),
        ],
    ]
    n = writers["rows"]
    body = environment_lines(command, machine)
    body += targets_table(targets)
    body += [
        f"### {rows:,} UUID strings ({src.stat().st_size / 1e9:.2f} GB Parquet), median of "
        f"{reps} (the last two cases: one run)",
        "",
        *table(
            ["case", "wall time", "rows/s", "CPU time", "peak resident memory"],
            [
                [
                    name,
                    f"{med(name):.2f} s",
                    f"{rows / med(name) / 1e6:.1f} M",
                    f"{med(name, 'cpu'):.2f} s",
                    f"{max(r['peak'] for r in results[name]) / 2**20:.0f} MiB",
                ]
                for name in cases
            ],
        ),
        "",
        "Wall time includes the interpreter's start and imports; CPU time is user and system "
        f"time of the process. The output had {out_rows:,} rows "
        f"({out_bytes / 1e9:.2f} GB). The run took {seconds:.0f} s.",
        "",
        f"For scale: pyarrow with its defaults (snappy, statistics, dictionary attempts), "
        f"reading the UUID file and writing its one column again with nothing done in "
        f"between, runs at {floor / 1e6:.1f} M rows/s on one thread; "
        "`trafficsplit assign` reads the same column on two threads, assigns three experiments "
        "(seven seeded hashes of each id), and writes it with nine more columns (arm, bucket, "
        "reason per experiment) on a third.",
        "",
        f"### Writing the output columns: {n:,} rows, CPU time a row",
        "",
        *table(
            ["columns", "pyarrow's writer", "trafficsplit's writer"],
            [
                [
                    label,
                    f"{writers[f'pyarrow {k}'] / n * 1e9:.1f} ns",
                    f"{writers[f'trafficsplit {k}'] / n * 1e9:.1f} ns",
                ]
                for k, label in (
                    ("nine", "arm, bucket and reason of three experiments"),
                    ("ten", "the same and the UUID column"),
                )
            ],
        ),
        "",
        "One batch's assignment results written again and again, uncompressed, dictionary "
        "pages for the arms and reasons, no statistics, with each writer "
        "([backfill.md](backfill.md#how-the-output-is-written)).",
        "",
    ]
    publish(body, args.markdown, SECTION, SECTION_TITLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
