#!/usr/bin/env python
"""Assignment benchmark: scalar latency, batch throughput, baselines, peak memory.

Run from the repository root:

    .venv/bin/python benchmarks/bench_assign.py [--quick] [--markdown docs/benchmarks.md]

Everything is measured in one run, on data generated here with a fixed seed. Throughputs are
the best of several repetitions (the median is shown too); latencies are the median and p99 of
per-call averages over batches of 1,000 calls. ``--markdown PATH`` writes (or replaces) the
section between the ``bench_assign`` markers in PATH and leaves the rest of the file alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import gc
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mmh3
import numpy as np
import pandas as pd
import pyarrow as pa
import xxhash

import trafficsplit as ts
from _common import (
    Rate,
    dist_version,
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
    timed_step,
)
from trafficsplit._core import hashing as _core_hashing

KEY = "ranker-v2"
ARMS = {"control": 34, "a": 33, "b": 33}
BUCKETS = 10_000
SEED = 20_240_601

SECTION = "bench_assign"
SECTION_TITLE = "## Assignment"

TARGET_SCALAR_NS = 1_000
TARGET_INT_MPS = 100
TARGET_ARROW_MPS = 50
TARGET_LIST_MPS = 20
TARGET_BASELINE_RATIO = 20
# "Output arrays plus a small constant": at most 1 MiB beyond the outputs, whatever the rows.
TARGET_MEM_CONSTANT = 1 << 20
# Python objects in a numpy object array or a pandas object Series: time within 1.3x of the
# same objects in a list.
TARGET_OBJECTS_VS_LIST = 1.3
# Integer ids: hash64_batch at least as fast as pandas.util.hash_array on the same int64 array,
# on every vector path (AVX-512 and AVX2).
TARGET_INT_VS_HASH_ARRAY = 1.0


@dataclass(frozen=True)
class Sizes:
    batch: int  # rows of the numpy / Arrow / pandas inputs
    listed: int  # rows of the list-of-str input
    loop: int  # rows of the baselines (Python loops and pandas.util.hash_array)
    distinct: int  # categories of the categorical input
    scalar_batches: int  # batches of 1,000 scalar calls
    reps: int  # repetitions of each batch timing


FULL = Sizes(
    batch=10_000_000,
    listed=2_000_000,
    loop=1_000_000,
    distinct=100_000,
    scalar_batches=2_000,
    reps=5,
)
QUICK = Sizes(
    batch=500_000, listed=200_000, loop=50_000, distinct=10_000, scalar_batches=150, reps=2
)


# -- measuring memory ---------------------------------------------------------------------------


def _out_nbytes(result: Any) -> int:
    return result.arm_index.nbytes + result.bucket.nbytes + result.reason.nbytes


def traced_overhead(fn: Callable[[], Any]) -> int:
    """Peak bytes tracemalloc saw during ``fn()`` beyond what was live before it, minus the
    returned BatchAssignment's arrays (numpy reports its buffers to tracemalloc; memory that
    C++ allocates with new/malloc is invisible to it)."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base - _out_nbytes(result)


def _status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_overhead(fn: Callable[[], Any]) -> int | None:
    """Growth of the peak resident set during ``fn()`` beyond the resident set before it, minus
    the returned arrays: sees every allocation (C++ included) that is touched. Linux only
    (resets the high-water mark through /proc/self/clear_refs)."""
    gc.collect()
    release_free_heap()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    before = _status_kib("VmRSS")
    result = fn()
    peak = _status_kib("VmHWM")
    if before is None or peak is None:
        return None
    return (peak - before) * 1024 - _out_nbytes(result)


def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def fresh_large_allocations() -> None:
    """Makes glibc serve every large block with a fresh mmap (no dynamic threshold), so that
    freed-but-resident heap memory cannot hide an allocation from the resident-set figure; and
    turns transparent huge pages off for this process, so that the output arrays are resident
    to the 4 KiB page, not rounded to 2 MiB ones (which would count as growth beyond them)."""
    libc = _libc()
    with contextlib.suppress(AttributeError):
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 128 * 1024)
        libc.mallopt(m_trim_threshold, 128 * 1024)
        pr_set_thp_disable = 41
        libc.prctl(pr_set_thp_disable, 1, 0, 0, 0)


def release_free_heap() -> None:
    """Returns glibc's free heap pages to the system, so that reusing them shows as growth
    of the resident set."""
    with contextlib.suppress(AttributeError):
        _libc().malloc_trim(0)


# -- data ---------------------------------------------------------------------------------------


def uuid_strings(n: int, rng: np.random.Generator) -> pa.StringArray:
    """``n`` random UUID-like 36-byte strings (8-4-4-4-12 lowercase hex) as an Arrow array."""
    hexdigits = np.frombuffer(b"0123456789abcdef", np.uint8)
    byte = np.arange(256)
    pairs = hexdigits[byte >> 4].astype(np.uint16) | (
        hexdigits[byte & 15].astype(np.uint16) << 8
    )  # little-endian: high nibble first
    raw = np.frombuffer(rng.bytes(16 * n), np.uint8)
    hexed = pairs[raw].view(np.uint8).reshape(n, 32)
    del raw
    text = np.empty((n, 36), np.uint8)
    text[:, [8, 13, 18, 23]] = ord("-")
    for src, dst in ((0, 0), (8, 9), (12, 14), (16, 19), (20, 24)):
        width = {0: 8, 8: 4, 12: 4, 16: 4, 20: 12}[src]
        text[:, dst : dst + width] = hexed[:, src : src + width]
    del hexed
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text.reshape(-1)))


@dataclass
class Data:
    ints: np.ndarray
    small_ints: np.ndarray
    strings: pa.StringArray
    large_strings: pa.Array
    view_strings: pa.Array | None
    listed: list[str]
    objects: np.ndarray
    object_array: np.ndarray  # the list's objects in a numpy object array
    object_series: pd.Series  # and in a pandas object Series
    mixed: list[Any]  # str, int, None, NaN and pd.NA ids
    pd_str: pd.Series
    pd_cat: pd.Series
    pd_int: pd.Series


def make_data(sizes: Sizes) -> Data:
    rng = np.random.default_rng(SEED)
    n = sizes.batch
    ints = rng.integers(0, 2**63 - 1, n, dtype=np.int64)
    small_ints = rng.integers(0, 10**9, n, dtype=np.int64)
    strings = uuid_strings(n, rng)
    large_strings = strings.cast(pa.large_string())
    try:
        view_strings = strings.cast(pa.string_view())
    except (AttributeError, NotImplementedError, pa.ArrowNotImplementedError):
        view_strings = None
    listed = strings.slice(0, sizes.listed).to_pylist()
    objects = np.array(listed[: sizes.loop], dtype=object)
    object_array = np.empty(len(listed), dtype=object)
    object_array[:] = listed
    object_series = pd.Series(object_array, dtype=object, copy=False)
    # 80% UUID strings, 15% integers, 5% missing (None, NaN, pd.NA): what an object column
    # read from mixed sources holds.
    kind = rng.random(len(listed))
    ints_as_objects = rng.integers(0, 10**12, len(listed)).tolist()
    missing = [None, float("nan"), pd.NA]
    mixed = [
        listed[i] if k < 0.8 else ints_as_objects[i] if k < 0.95 else missing[i % 3]
        for i, k in enumerate(kind.tolist())
    ]
    pd_str = strings.to_pandas()  # the pandas 3 default string dtype ("str")
    distinct = pd.Index(uuid_strings(sizes.distinct, rng).to_pylist())
    codes = rng.integers(0, sizes.distinct, n).astype(np.int32)
    pd_cat = pd.Series(pd.Categorical.from_codes(codes, categories=distinct))
    mask = rng.random(n) < 0.01
    pd_int = pd.Series(pd.arrays.IntegerArray(ints.copy(), mask))
    return Data(
        ints,
        small_ints,
        strings,
        large_strings,
        view_strings,
        listed,
        objects,
        object_array,
        object_series,
        mixed,
        pd_str,
        pd_cat,
        pd_int,
    )


# -- the benchmark ------------------------------------------------------------------------------


@dataclass
class BatchRow:
    name: str
    exposure: float
    one: Rate
    two: Rate
    target: float | None  # M ids/s with one thread


@dataclass
class ObjectRow:
    """One shape of the same Python objects (list, object array, object Series), one thread."""

    ids: str  # which ids: "UUID strings" or "mixed"
    shape: str
    rate: Rate
    list_rate: Rate  # the list of the same objects, same run
    traced: int | None = None  # peak bytes beyond the outputs
    rss: int | None = None


@dataclass
class SimdRow:
    """Integer ids on one vector path, in a process of its own: medians (best) in M ids/s."""

    path: str
    setting: str
    # per id range ("[0, 2^63)", "[0, 10^9)"): assign_batch, hash64_batch, hash_array
    figures: dict[str, dict[str, tuple[float, float]]]


@dataclass
class Results:
    machine: dict[str, str] = field(default_factory=dict)
    command: str = ""
    scalar: list[tuple[str, float, float, float | None]] = field(default_factory=list)
    batch: list[BatchRow] = field(default_factory=list)
    baselines: list[tuple[str, int, Rate]] = field(default_factory=list)
    memory: list[tuple[str, int, int, int | None, bool]] = field(default_factory=list)
    split: list[tuple[str, int, float, float, float, float]] = field(default_factory=list)
    simd: list[SimdRow] = field(default_factory=list)
    objects: list[ObjectRow] = field(default_factory=list)
    scalar_batches: int = 0
    seconds: float = 0.0


def bench_scalar(res: Results, sizes: Sizes) -> None:
    namespace = {
        "exp": ts.Experiment(KEY, ARMS, exposure=1.0),
        "when": dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC),
        "ts": ts,
        "KEY": KEY,
    }
    cases: list[tuple[str, float | None]] = [
        ('exp.assign("user-12345")', TARGET_SCALAR_NS),
        ("exp.assign(12345)", None),
        ('exp.assign("user-12345", at=when)', None),
        ('ts.hash64("user-12345", KEY)', None),
    ]
    figures = scalar_latency([stmt for stmt, _ in cases], namespace, sizes.scalar_batches)
    res.scalar_batches = sizes.scalar_batches
    for (stmt, target), (median, p99) in zip(cases, figures, strict=True):
        res.scalar.append((stmt, median, p99, target))
        print(f"  scalar {stmt}: median {median:.0f} ns, p99 {p99:.0f} ns", flush=True)


def batch_inputs(data: Data) -> list[tuple[str, Any, float | None]]:
    n_int = f"{len(data.ints):,}"
    inputs: list[tuple[str, Any, float | None]] = [
        (f"numpy int64, {n_int} random ids in [0, 2^63)", data.ints, TARGET_INT_MPS),
        (f"numpy int64, {n_int} random ids in [0, 10^9)", data.small_ints, TARGET_INT_MPS),
        (f"pyarrow string, {len(data.strings):,} UUIDs (36 B)", data.strings, TARGET_ARROW_MPS),
        (
            f"pyarrow large_string, {len(data.strings):,} UUIDs",
            data.large_strings,
            TARGET_ARROW_MPS,
        ),
    ]
    if data.view_strings is not None:
        inputs.append(
            (
                f"pyarrow string_view, {len(data.strings):,} UUIDs",
                data.view_strings,
                TARGET_ARROW_MPS,
            )
        )
    storage = (
        data.pd_str.array.__arrow_array__().type
        if hasattr(data.pd_str.array, "__arrow_array__")
        else data.pd_str.dtype
    )
    inputs += [
        (f"list of str, {len(data.listed):,} UUIDs", data.listed, TARGET_LIST_MPS),
        (
            f"pandas Series dtype {data.pd_str.dtype} ({storage}), {len(data.pd_str):,} UUIDs",
            data.pd_str,
            None,
        ),
        (
            f"pandas Series category, {len(data.pd_cat):,} rows of "
            f"{len(data.pd_cat.cat.categories):,} UUIDs",
            data.pd_cat,
            None,
        ),
        (f"pandas Series Int64 (1% NA), {len(data.pd_int):,} ids in [0, 2^63)", data.pd_int, None),
    ]
    return inputs


def bench_batch(res: Results, data: Data, sizes: Sizes) -> None:
    inputs = batch_inputs(data)
    cases = []
    for exposure in (1.0, 0.5):
        exp = ts.Experiment(KEY, ARMS, exposure=exposure)
        for name, units, target in inputs:
            for threads in (1, 2):
                cases.append(lambda u=units, e=exp, t=threads: e.assign_batch(u, threads=t))
            res.batch.append(BatchRow(name, exposure, Rate(len(units)), Rate(len(units)), target))
    times = time_interleaved(cases, sizes.reps)
    for i, row in enumerate(res.batch):
        row.one.seconds, row.two.seconds = times[2 * i], times[2 * i + 1]
        print(
            f"  batch exposure {row.exposure:g} {row.name}: {row.one.best:.1f} M/s "
            f"(1 thread), {row.two.best:.1f} M/s (2 threads)",
            flush=True,
        )


ARM_OF_BUCKET = [name for name, w in ARMS.items() for _ in range(w * BUCKETS // 100)]
ARM_TABLE = np.array(list(ARMS))[
    np.repeat(np.arange(len(ARMS)), [w * BUCKETS // 100 for w in ARMS.values()])
]


def loop_xxhash(strings: list[str], seed: int) -> list[str]:
    h, arms = xxhash.xxh3_64_intdigest, ARM_OF_BUCKET
    return [arms[h(s.encode(), seed) % BUCKETS] for s in strings]


def loop_mmh3(strings: list[str], seed: int) -> list[str]:
    h, arms = mmh3.hash, ARM_OF_BUCKET
    return [arms[h(s, seed, signed=False) % BUCKETS] for s in strings]


def vector_hash_array(objects: np.ndarray) -> np.ndarray:
    return ARM_TABLE[pd.util.hash_array(objects) % BUCKETS]


def bench_baselines(res: Results, data: Data, sizes: Sizes) -> None:
    subset = data.listed[: sizes.loop]
    xx_seed = xxhash.xxh3_64_intdigest(f"{KEY}/arm".encode())
    mm_seed = mmh3.hash(f"{KEY}/arm", 0, signed=False)
    assert len(ARM_OF_BUCKET) == BUCKETS and len(ARM_TABLE) == BUCKETS
    reps = max(2, sizes.reps - 2)
    cases = [
        (
            "Python loop: xxhash.xxh3_64_intdigest(s.encode(), seed) % 10000 -> arm",
            len(subset),
            lambda: loop_xxhash(subset, xx_seed),
        ),
        (
            "Python loop: mmh3.hash(s, seed, signed=False) % 10000 -> arm",
            len(subset),
            lambda: loop_mmh3(subset, mm_seed),
        ),
        (
            "pandas.util.hash_array(object array) % 10000 -> arm (vectorised)",
            len(data.objects),
            lambda: vector_hash_array(data.objects),
        ),
    ]
    times = time_interleaved([fn for _, _, fn in cases], reps)
    for (name, rows, _), seconds in zip(cases, times, strict=True):
        rate = Rate(rows, seconds)
        res.baselines.append((name, rows, rate))
        print(f"  baseline {name}: {rate.best:.2f} M/s", flush=True)


def mixed_shapes(data: Data) -> tuple[np.ndarray, pd.Series]:
    array = np.empty(len(data.mixed), dtype=object)
    array[:] = data.mixed
    return array, pd.Series(array, dtype=object, copy=False)


def object_cases(data: Data) -> list[tuple[str, str, Any, list[Any]]]:
    """(ids, shape, the unit ids, the list of the same objects)."""
    mixed_array, mixed_series = mixed_shapes(data)
    uuids = f"{len(data.listed):,} UUID strings"
    mixed = f"{len(data.mixed):,} mixed ids (80% str, 15% int, 5% None / NaN / NA)"
    return [
        (uuids, "numpy object array", data.object_array, data.listed),
        (uuids, "pandas Series, dtype object", data.object_series, data.listed),
        (mixed, "numpy object array", mixed_array, data.mixed),
        (mixed, "pandas Series, dtype object", mixed_series, data.mixed),
    ]


def bench_objects(res: Results, data: Data, sizes: Sizes) -> None:
    """The same Python objects as a list, a numpy object array and a pandas object Series, one
    thread, exposure 1, interleaved in one run."""
    exp = ts.Experiment(KEY, ARMS, exposure=1.0)
    cases = object_cases(data)
    lists = [data.listed, data.mixed]
    fns = [lambda u=units: exp.assign_batch(u, threads=1) for units in lists]
    fns += [lambda u=units: exp.assign_batch(u, threads=1) for _, _, units, _ in cases]
    times = time_interleaved(fns, max(sizes.reps, 7))
    list_rates = [Rate(len(units), t) for units, t in zip(lists, times[:2], strict=True)]
    for (ids, shape, units, same), t in zip(cases, times[2:], strict=True):
        row = ObjectRow(ids, shape, Rate(len(units), t), list_rates[0 if same is lists[0] else 1])
        res.objects.append(row)
        print(
            f"  objects {ids}, {shape}: {row.rate.median:.1f} M/s "
            f"(list {row.list_rate.median:.1f})",
            flush=True,
        )


def bench_memory(res: Results, data: Data) -> None:
    exp = ts.Experiment(KEY, ARMS, exposure=1.0)
    cases = [
        ("numpy int64", data.ints, True),
        ("pyarrow string", data.strings, True),
        ("numpy object array of str", data.object_array, True),
        ("pandas Series of str, dtype object", data.object_series, True),
        ("list of str (contrast)", data.listed, False),
        ("pandas category (contrast)", data.pd_cat, False),
    ]
    for name, units, has_target in cases:
        exp.assign_batch(units[:1000], threads=1)
        traced = traced_overhead(lambda u=units: exp.assign_batch(u, threads=1))
        rss = rss_overhead(lambda u=units: exp.assign_batch(u, threads=1))
        res.memory.append((name, len(units), traced, rss, has_target))
        rss_text = "n/a" if rss is None else f"{rss / len(units):.2f} B/row"
        print(
            f"  memory {name}: tracemalloc {traced / len(units):.2f} B/row, RSS {rss_text}",
            flush=True,
        )


def bench_split(res: Results, data: Data, sizes: Sizes) -> None:
    """Where the time of a one-thread batch call goes: building the column the kernel reads,
    the assignment kernel (with its own output arrays), the rest of assign_batch; and
    ts.hash64_batch on the same data (one hash per row, no allocation lookup)."""
    exp = ts.Experiment(KEY, ARMS, exposure=1.0)
    try:
        from trafficsplit import _units

        chunks_of = _units.chunks_of
        step = len(exp._steps) - 1
        assign_chunk = exp._assign_chunk
    except (ImportError, AttributeError) as exc:  # internals moved: skip the split
        print(f"  split skipped: {exc}")
        return
    inputs = batch_inputs(data)
    fns = []
    for _, units, _ in inputs:
        chunks = chunks_of(units)
        fns += [
            lambda u=units: chunks_of(u),
            lambda c=chunks: [assign_chunk(k, step, None, 1) for k in c],
            lambda u=units: exp.assign_batch(u, threads=1),
            lambda u=units: ts.hash64_batch(u, KEY, threads=1),
        ]
    times = [min(t) for t in time_interleaved(fns, sizes.reps)]
    for i, (name, units, _) in enumerate(inputs):
        build, kernel, total, hashed = times[4 * i : 4 * i + 4]
        res.split.append((name, len(units), build, kernel, total, hashed))
        print(
            f"  split {name}: column {build * 1e3:.1f} ms, kernel {kernel * 1e3:.1f} ms, "
            f"assign_batch {total * 1e3:.1f} ms, hash64_batch {hashed * 1e3:.1f} ms",
            flush=True,
        )


def sanity_check(data: Data) -> None:
    """The inputs agree with each other and with the scalar path (a cheap guard that the
    benchmark measures real work)."""
    exp = ts.Experiment(KEY, ARMS, exposure=0.5)
    k = min(2_000, len(data.listed))
    ref = exp.assign_batch(data.listed[:k], threads=1)
    for other in (data.strings.slice(0, k), data.large_strings.slice(0, k), data.pd_str[:k]):
        got = exp.assign_batch(other, threads=2)
        assert np.array_equal(got.arm_index, ref.arm_index), type(other)
        assert np.array_equal(got.bucket, ref.bucket), type(other)
    for i in range(0, k, 97):
        a = exp.assign(data.listed[i])
        assert (a.arm_index, a.bucket) == (ref.arm_index[i], ref.bucket[i])
    for _, _, units, same in object_cases(data):
        got, want = exp.assign_batch(units[:k]), exp.assign_batch(same[:k])
        assert np.array_equal(got.bucket, want.bucket) and np.array_equal(got.reason, want.reason)
    for i in range(0, k, 89):
        a = exp.assign(data.mixed[i])
        assert a.bucket == exp.assign_batch(data.mixed[i : i + 1]).bucket[0]


# -- reporting ----------------------------------------------------------------------------------


def _fmt_bytes_per_row(b: int | None, rows: int) -> str:
    if b is None:
        return "n/a"
    total = f"{b / 2**20:.1f} MiB" if abs(b) >= 2**20 else f"{b / 1024:.0f} KiB"
    return f"{total} ({b / rows:.2f} B/row)"


def report(res: Results) -> list[str]:
    out = environment_lines(res.command, res.machine)
    out += targets_summary(res)

    out.append("### Scalar `Experiment.assign` from Python (ns per call)")
    out.append("")
    out.append(
        "Each statement runs in batches of 1,000 (a bare `timeit` loop, so the loop's "
        "few ns are included); the figures are the median and 99th percentile of the "
        f"per-call averages of {res.scalar_batches:,} batches per statement. "
        '`exp = ts.Experiment("ranker-v2", {"control": 34, "a": 33, '
        '"b": 33})`; `when` is a timezone-aware datetime; `ts.hash64` (the contract '
        "hash alone) is there for context."
    )
    out.append("")
    rows = []
    for name, median, p99, target in res.scalar:
        goal = f"median ≤ {target:,.0f} ns" if target else ""
        ok = None if target is None else median <= target
        rows.append([f"`{name}`", f"{median:,.0f}", f"{p99:,.0f}", goal, mark(ok)])
    out += table(["call", "median ns", "p99 ns", "target", "met"], rows)
    out.append("")

    out.append("### Batch `Experiment.assign_batch` (millions of ids per second)")
    out.append("")
    out.append("Best of the repetitions (median in brackets); target applies to one thread.")
    out.append("")
    rows = []
    for b in res.batch:
        goal = f"≥ {b.target:g} M/s" if b.target else ""
        ok = None if b.target is None else b.one.best >= b.target
        rows.append(
            [
                b.name,
                f"{b.exposure:g}",
                f"{b.one.best:.1f} ({b.one.median:.1f})",
                f"{b.two.best:.1f} ({b.two.median:.1f})",
                f"{b.two.best / b.one.best:.2f}×",
                goal,
                mark(ok),
            ]
        )
    out += table(["input", "exposure", "threads=1", "threads=2", "2 / 1", "target", "met"], rows)
    out.append("")

    out.append("### Baselines a user would write today (same strings, same run)")
    out.append("")
    arrow2 = _batch_rate(res, "pyarrow string", 1.0, threads=2)
    arrow = _batch_rate(res, "pyarrow string", 1.0)
    listed = _batch_rate(res, "list of str", 1.0)
    out.append(
        f"Ratios: trafficsplit `assign_batch`, exposure 1, on the pyarrow string column with "
        f"{_default_threads_note()} ({arrow2:.1f} M/s) and with threads=1 ({arrow:.1f} M/s), "
        f"and on the list of str ({listed:.1f} M/s, which reads Python objects under the GIL "
        f"and so runs on one thread whatever `threads` says), divided by the baseline's rate. "
        f"Target: ≥ {TARGET_BASELINE_RATIO}× the Python-loop baselines, judged on the "
        "columnar strings at the default thread count, the call a user makes; a Python loop "
        "holds the GIL and cannot use a second core. The one-thread and list ratios are "
        "shown, not judged."
    )
    out.append("")
    rows = []
    for name, n, rate in res.baselines:
        python_loop = name.startswith("Python loop")
        r_arrow2, r_arrow = arrow2 / rate.best, arrow / rate.best
        ok = r_arrow2 >= TARGET_BASELINE_RATIO if python_loop else None
        rows.append(
            [
                name,
                f"{n:,}",
                f"{rate.best:.2f}",
                f"{r_arrow2:.1f}× {mark(ok)}",
                f"{r_arrow:.1f}×",
                f"{listed / rate.best:.1f}×",
            ]
        )
    out += table(
        [
            "baseline",
            "rows",
            "M ids/s",
            "arrow, threads=2 ÷ baseline",
            "arrow, threads=1 ÷ baseline",
            "list ÷ baseline",
        ],
        rows,
    )
    out.append("")

    if res.objects:
        out.append(
            "### Python objects: a list, a numpy object array, a pandas object Series "
            "(threads=1, exposure 1)"
        )
        out.append("")
        out.append(
            "The same Python objects in each shape, `assign_batch` with one thread, timed "
            "interleaved in one run; M ids/s of the median repetition (best in brackets). "
            "Arrays and Series are read where they are (their buffer of object pointers), as a "
            "list is, with the GIL held. Target: the time of an array or Series within "
            f"{TARGET_OBJECTS_VS_LIST:g}× the time of the list of the same objects."
        )
        out.append("")
        rows = []
        for o in res.objects:
            ratio = o.list_rate.median / o.rate.median
            rows.append(
                [
                    o.ids,
                    o.shape,
                    f"{o.rate.median:.1f} ({o.rate.best:.1f})",
                    f"{o.list_rate.median:.1f} ({o.list_rate.best:.1f})",
                    f"{ratio:.2f}×",
                    f"≤ {TARGET_OBJECTS_VS_LIST:g}×",
                    mark(ratio <= TARGET_OBJECTS_VS_LIST),
                ]
            )
        out += table(
            ["ids", "shape", "M ids/s", "list, M ids/s", "time ÷ list", "target", "met"], rows
        )
        out.append("")

    if res.simd:
        out.append("### Integer ids by instruction set and `pandas.util.hash_array` (threads=1)")
        out.append("")
        out.append(
            "Integer columns become decimal text and then XXH3 in vector registers: AVX-512 (F, "
            "BW, DQ) or AVX2 where the CPU has them, portable code otherwise; "
            "`TRAFFICSPLIT_SIMD` caps the choice. Each path runs in its own process on "
            f"{res.batch[0].one.rows:,} int64 ids per range (the same ids as above), next to "
            "`pandas.util.hash_array` on the same array in the same process: CPU time, "
            "interleaved, M ids/s of the median repetition (best in brackets). `hash64_batch` "
            "is one contract hash per row (uint64 and a mask), what `hash_array` gives (uint64); "
            "`assign_batch` (exposure 1) adds the bucket, the arm and three output arrays. "
            f"Target: `hash64_batch` ≥ {TARGET_INT_VS_HASH_ARRAY:g}× `hash_array` on the "
            "AVX-512 and AVX2 paths. The first row is the path this machine takes by default, "
            "the one every other table on this page used."
        )
        out.append("")
        rows = []
        for r in res.simd:
            for name, f in r.figures.items():
                ratio = f["hash64_batch"][0] / f["hash_array"][0]
                judged = r.path in ("avx512", "avx2")
                rows.append(
                    [
                        r.path,
                        r.setting,
                        name,
                        *(f"{f[k][0]:.1f} ({f[k][1]:.1f})" for k in INT_FIGURES),
                        f"{ratio:.2f}×",
                        mark(ratio >= TARGET_INT_VS_HASH_ARRAY if judged else None),
                    ]
                )
        out += table(
            [
                "digits",
                "setting",
                "ids",
                "`assign_batch`",
                "`hash64_batch`",
                "`hash_array`",
                "hash64 ÷ hash_array",
                "met",
            ],
            rows,
        )
        out.append("")

    out.append("### Peak memory of one batch call, beyond its output arrays")
    out.append("")
    out.append(
        "`tracemalloc`: peak traced bytes during the call minus the output arrays (7 B "
        "per row); sees numpy and Python allocations, not C++ `new`/`malloc`. RSS: "
        "growth of the peak resident set during the call minus the output arrays; sees "
        "everything that is touched. Target: output arrays plus a small constant "
        f"(≤ {TARGET_MEM_CONSTANT // 2**20} MiB), no Python object per row."
    )
    out.append("")
    rows = []
    for name, n, traced, rss, has_target in res.memory:
        worst = max(traced, rss or 0)
        ok = worst <= TARGET_MEM_CONSTANT if has_target else None
        rows.append(
            [name, f"{n:,}", _fmt_bytes_per_row(traced, n), _fmt_bytes_per_row(rss, n), mark(ok)]
        )
    out += table(["input (threads=1)", "rows", "tracemalloc", "RSS", "met"], rows)
    out.append("")

    if res.split:
        out.append("### Where the time goes (threads=1, exposure 1, best run, ms)")
        out.append("")
        out.append(
            "column: turning the input into the buffers the kernel reads; kernel: the "
            "assignment over those buffers, with its own output arrays; rest: the "
            "remainder of `assign_batch` (Python, output handling); `hash64_batch`: one "
            "contract hash per row on the same input (uint64 output and mask), for "
            "comparison. Each figure is the best of separate calls, so they need not add "
            "up exactly."
        )
        out.append("")
        rows = []
        for name, n, build, kernel, total, hashed in res.split:
            rest = max(0.0, total - build - kernel)
            rows.append(
                [
                    name,
                    f"{build * 1e3:.1f}",
                    f"{kernel * 1e3:.1f}",
                    f"{rest * 1e3:.1f}",
                    f"{total * 1e3:.1f}",
                    f"{n / kernel / 1e6:.1f}",
                    f"{hashed * 1e3:.1f}",
                ]
            )
        out += table(
            ["input", "column", "kernel", "rest", "assign_batch", "kernel M/s", "hash64_batch"],
            rows,
        )
        out.append("")
    out.append(f"Benchmark run time: {res.seconds:.0f} s.")
    return out


def targets_summary(res: Results) -> list[str]:
    """One line per target with the figure it is judged on (exposure 1, one thread)."""
    rows = []
    for name, median, _, target in res.scalar:
        if target is not None:
            rows.append(
                [
                    f"`{name}` median latency",
                    f"≤ {target:,.0f} ns",
                    f"{median:,.0f} ns",
                    mark(median <= target),
                ]
            )
    for b in res.batch:
        if b.target is not None and b.exposure == 1.0:
            rows.append(
                [
                    f"{b.name}, threads=1",
                    f"≥ {b.target:g} M ids/s",
                    f"{b.one.best:.1f} M ids/s",
                    mark(b.one.best >= b.target),
                ]
            )
    arrow2 = _batch_rate(res, "pyarrow string", 1.0, threads=2)
    for name, _, rate in res.baselines:
        if name.startswith("Python loop"):
            short = name.removeprefix("Python loop: ").split("(")[0]
            ratio = arrow2 / rate.best
            rows.append(
                [
                    f"pyarrow string, threads=2 ÷ Python loop over `{short}`",
                    f"≥ {TARGET_BASELINE_RATIO}×",
                    f"{ratio:.1f}×",
                    mark(ratio >= TARGET_BASELINE_RATIO),
                ]
            )
    for o in res.objects:
        ratio = o.list_rate.median / o.rate.median
        rows.append(
            [
                f"{o.ids}, {o.shape}: time ÷ the list's",
                f"≤ {TARGET_OBJECTS_VS_LIST:g}×",
                f"{ratio:.2f}×",
                mark(ratio <= TARGET_OBJECTS_VS_LIST),
            ]
        )
    for r in res.simd:
        if r.path not in ("avx512", "avx2"):
            continue
        for name, f in r.figures.items():
            ratio = f["hash64_batch"][0] / f["hash_array"][0]
            rows.append(
                [
                    f"int64 ids in {name}, {r.path}: `hash64_batch` ÷ `pandas.util.hash_array`",
                    f"≥ {TARGET_INT_VS_HASH_ARRAY:g}×",
                    f"{ratio:.2f}× ({f['hash64_batch'][0]:.0f} vs {f['hash_array'][0]:.0f} M/s)",
                    mark(ratio >= TARGET_INT_VS_HASH_ARRAY),
                ]
            )
    for name, n, traced, rss, has_target in res.memory:
        if has_target:
            worst = max(traced, rss or 0)
            rows.append(
                [
                    f"peak memory beyond the outputs, {name}",
                    f"≤ {TARGET_MEM_CONSTANT // 2**20} MiB",
                    _fmt_bytes_per_row(worst, n),
                    mark(worst <= TARGET_MEM_CONSTANT),
                ]
            )
    out = targets_table(rows)
    out.append(
        "Throughput targets are judged at exposure 1 with one thread; the ratios to the "
        f"Python loops with {_default_threads_note()} (the baselines section gives the "
        "one-thread ratios too). The tables below mark the exposure 0.5 rows against the "
        "same goals."
    )
    out.append("")
    return out


def _batch_rate(res: Results, prefix: str, exposure: float, threads: int = 1) -> float:
    for b in res.batch:
        if b.name.startswith(prefix) and b.exposure == exposure:
            return (b.one if threads == 1 else b.two).best
    return float("nan")


def _default_threads_note() -> str:
    """What threads=2 means next to the default threads=None on this machine."""
    cores = os.cpu_count() or 1
    if cores == 2:
        return "threads=2, which is what the default `threads=None` (all cores) gives here"
    return f"threads=2 (the default `threads=None` would use all {cores} cores here)"


_SIMD_CODE = """
import json, sys, time, numpy as np, pandas as pd, trafficsplit as ts
from trafficsplit._core import hashing
n, reps, seed, key = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(seed)
cases = {"[0, 2^63)": rng.integers(0, 2**63 - 1, n, dtype=np.int64),
         "[0, 10^9)": rng.integers(0, 10**9, n, dtype=np.int64)}
exp = ts.Experiment(key, {"control": 34, "a": 33, "b": 33})
out = {}
for name, ids in cases.items():
    head = ids[:2000]
    assert ts.hash64_batch(head, key).data.tolist() == [ts.hash64(int(v), key) for v in head]
    fns = {"assign_batch": lambda: exp.assign_batch(ids, threads=1),
           "hash64_batch": lambda: ts.hash64_batch(ids, key, threads=1),
           "hash_array": lambda: pd.util.hash_array(ids)}
    times = {k: [] for k in fns}
    for f in fns.values():
        f()
    for _ in range(reps):  # interleaved: a burst of load lands on one repetition of each
        for k, f in fns.items():
            t = time.process_time()
            f()
            times[k].append(time.process_time() - t)
    out[name] = {k: (n / float(np.median(v)) / 1e6, n / min(v) / 1e6) for k, v in times.items()}
print(json.dumps({"path": hashing.simd_path(), "figures": out}))
"""

INT_FIGURES = ("assign_batch", "hash64_batch", "hash_array")


def bench_simd(res: Results, sizes: Sizes) -> None:
    """numpy int64 ids with each instruction set the CPU has (TRAFFICSPLIT_SIMD), one thread,
    each in its own process (the choice is made once per process), next to
    pandas.util.hash_array on the same arrays in the same process (CPU time, interleaved)."""
    import json
    import subprocess

    reps = max(sizes.reps + 4, 7)
    for cap in ("", "avx2", "none"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAFFICSPLIT_S")}
        if cap:
            env["TRAFFICSPLIT_SIMD"] = cap
        out = json.loads(
            subprocess.run(
                [sys.executable, "-c", _SIMD_CODE, str(sizes.batch), str(reps), str(SEED), KEY],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        if any(r.path == out["path"] for r in res.simd):
            continue  # the CPU lacks the wider set: the cap changed nothing
        setting = f"TRAFFICSPLIT_SIMD={cap}" if cap else "(unset)"
        figures = {name: {k: tuple(v) for k, v in f.items()} for name, f in out["figures"].items()}
        res.simd.append(SimdRow(out["path"], setting, figures))  # type: ignore[arg-type]
        for name, f in figures.items():
            print(
                f"  integer digits {out['path']} {name}: "
                + ", ".join(f"{k} {f[k][0]:.1f}" for k in INT_FIGURES)
                + " M/s (medians)",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, SECTION, argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()

    machine, command = start_run(
        {"xxhash": xxhash.VERSION, "mmh3": dist_version("mmh3")},
        package={"integer digits": _core_hashing.simd_path()},
    )
    res = Results(machine=machine, command=command)
    with timed_step("generating data"):
        data = make_data(sizes)
        sanity_check(data)

    bench_scalar(res, sizes)
    bench_batch(res, data, sizes)
    bench_baselines(res, data, sizes)
    bench_objects(res, data, sizes)
    bench_split(res, data, sizes)
    bench_simd(res, sizes)
    fresh_large_allocations()  # last: it changes the allocator for the rest of the process
    bench_memory(res, data)
    res.seconds = finish_run(res.machine, started)

    publish(report(res), args.markdown, SECTION, SECTION_TITLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
