#!/usr/bin/env python
"""Targeting benchmark: per-request latency, columnar masks, string membership and functions.

Run from the repository root:

    .venv/bin/python benchmarks/bench_targeting.py [--quick] [--markdown docs/benchmarks.md]

Everything is measured in one run, on data generated here with a fixed seed, against the
baselines a user would write today (``DataFrame.query``, a numpy expression, ``Series.isin``,
the pandas string methods) on the same data. Throughputs are the best of several interleaved
repetitions (the median is shown too); latencies are the median and p99 of per-call averages
over batches of 1,000 calls. ``--markdown PATH`` writes (or replaces) the section between the
``bench_targeting`` markers in PATH and leaves the rest of the file alone.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

import trafficsplit as ts
from _common import (
    PACKAGE_SOURCES,
    Rate,
    dist_version,
    environment_lines,
    extension_built,
    finish_run,
    mark,
    parse_args,
    publish,
    rates,
    scalar_latency,
    start_run,
    table,
    targets_table,
    time_interleaved,
    timed_step,
)

SEED = 20_240_615

SECTION = "bench_targeting"
SECTION_TITLE = "## Targeting expressions"

TARGET_MATCHES_NS = 1_000
TARGET_QUERY_RATIO = 2.0  # Targeting.mask ÷ DataFrame.query, threads=1
TARGET_NUMPY_RATIO = 0.5  # Targeting.mask ÷ hand-written numpy expression, threads=1
TARGET_IN_MPS = 50  # M rows/s, `in` with 1,000 strings, threads=1
TARGET_ISIN_RATIO = 1.0  # Targeting.mask ÷ Series.isin on the same Python-object column

# -- expressions --------------------------------------------------------------------------------

EXPR_1 = 'country == "US"'
EXPR_4 = (
    'country in ["US", "CA"] and tier == "premium" and semver(app_version) >= "2.3.0" and age >= 18'
)
NUMERIC_CLAUSES = ("a > 0.5", "b < 0.3", "c >= 10", "d != 3")
EXPR_NUMERIC = " and ".join(NUMERIC_CLAUSES)
NUMPY_NUMERIC = "(a > 0.5) & (b < 0.3) & (c >= 10) & (d != 3)"
IN_ITEMS = 1_000
# (expression, the pandas method a user would write, that method on a Series)
STRING_FUNCTIONS: tuple[tuple[str, str, Callable[[pd.Series], Any]], ...] = (
    ('startswith(email, "a")', '.str.startswith("a")', lambda s: s.str.startswith("a")),
    (
        r'matches(email, "@example\\.com$")',
        r'.str.contains(r"@example\.com$")',
        lambda s: s.str.contains(r"@example\.com$"),
    ),
    (
        'endswith(email, "@example.com")',
        '.str.endswith("@example.com")',
        lambda s: s.str.endswith("@example.com"),
    ),
)
DOMAINS = ("example.com", "gmail.com", "mail.example.org", "example.co.uk", "corp.example.com")


@dataclass(frozen=True)
class Sizes:
    rows: int  # rows of the numeric and `in` inputs
    function_rows: int  # rows of the string-function inputs
    vocabulary: int  # distinct strings of the `in` column
    scalar_batches: int  # batches of 1,000 `.matches` calls
    reps: int  # repetitions of each columnar timing


FULL = Sizes(
    rows=10_000_000, function_rows=1_000_000, vocabulary=10_000, scalar_batches=2_000, reps=7
)
QUICK = Sizes(rows=1_000_000, function_rows=200_000, vocabulary=10_000, scalar_batches=400, reps=3)


# -- data ---------------------------------------------------------------------------------------


def random_words(n: int, rng: np.random.Generator, low: int, high: int) -> list[str]:
    """``n`` distinct random lowercase words of ``low`` to ``high`` letters."""
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8)
    words: dict[str, None] = {}
    while len(words) < n:
        lengths = rng.integers(low, high + 1, n)
        raw = rng.choice(letters, int(lengths.sum())).tobytes().decode()
        ends = np.cumsum(lengths)
        for start, end in zip(ends - lengths, ends, strict=True):
            words[raw[start:end]] = None
            if len(words) == n:
                break
    return list(words)


@dataclass
class Data:
    rows: int
    arrays: dict[str, np.ndarray]  # a, b (float64), c, d (int64)
    df: pd.DataFrame  # numpy-backed columns
    df_nullable: pd.DataFrame  # Float64 / Int64 with 1% NA per column
    table: pa.Table  # the numpy columns, no nulls
    table_nulls: pa.Table  # the nullable columns, nulls as Arrow validity
    in_items: list[str]
    vocabulary: list[str]
    city_codes: np.ndarray  # row -> index in the vocabulary
    city_arrow: pa.Table  # one pyarrow `string` column
    city_str: pd.DataFrame  # one pandas default `str` column
    city_cat: pd.DataFrame  # one categorical column
    city_obj: pd.DataFrame  # one `object` column (Python str objects)
    city_pystr: pd.DataFrame  # one `string[python]` column (Python str objects)
    emails: pd.DataFrame  # one pandas default `str` column
    emails_arrow: pa.Table


def make_data(sizes: Sizes) -> Data:
    rng = np.random.default_rng(SEED)
    n = sizes.rows
    arrays = {
        "a": rng.random(n),
        "b": rng.random(n),
        "c": rng.integers(0, 20, n, dtype=np.int64),
        "d": rng.integers(0, 6, n, dtype=np.int64),
    }
    df = pd.DataFrame(arrays, copy=False)
    nullable = {}
    for name, values in arrays.items():
        missing = rng.random(n) < 0.01
        cls = pd.arrays.FloatingArray if values.dtype.kind == "f" else pd.arrays.IntegerArray
        nullable[name] = cls(values.copy(), missing)
    df_nullable = pd.DataFrame(nullable, copy=False)
    table = pa.table(arrays)
    table_nulls = pa.Table.from_pandas(df_nullable, preserve_index=False)

    # `in`: a column of n strings drawn from a vocabulary; the list holds every 20th word of
    # the vocabulary (500 words) and 500 words absent from the data: about 5% of rows match.
    vocabulary = random_words(sizes.vocabulary, rng, 6, 20)
    present = vocabulary[:: max(1, len(vocabulary) // (IN_ITEMS // 2))][: IN_ITEMS // 2]
    absent = [w.upper() for w in random_words(IN_ITEMS - len(present), rng, 6, 20)]
    in_items = present + absent
    codes = rng.integers(0, len(vocabulary), n).astype(np.int32)
    city = pa.array(vocabulary, pa.string()).take(pa.array(codes))
    city_str = pd.DataFrame({"city": city.to_pandas()})  # pandas 3 default string dtype
    categorical = pd.Categorical.from_codes(codes, categories=pd.Index(vocabulary))
    city_cat = pd.DataFrame({"city": categorical})
    # Python str objects, one per word of the vocabulary shared by its rows, as pandas makes
    # them from Python data: an `object` column and a `string[python]` one.
    objects = np.array(vocabulary, dtype=object)[codes]
    city_obj = pd.DataFrame({"city": pd.Series(objects, dtype=object, copy=False)})
    city_pystr = pd.DataFrame({"city": pd.Series(objects, dtype="string[python]")})

    m = sizes.function_rows
    locals_ = pa.array(random_words(50_000, rng, 4, 12), pa.string())
    local = locals_.take(pa.array(rng.integers(0, len(locals_), m)))
    domain = pa.array([f"@{d}" for d in DOMAINS]).take(pa.array(rng.integers(0, len(DOMAINS), m)))
    email = pc.binary_join_element_wise(local, domain, "")
    emails_arrow = pa.table({"email": email})
    emails = pd.DataFrame({"email": email.to_pandas()})
    return Data(
        n,
        arrays,
        df,
        df_nullable,
        table,
        table_nulls,
        in_items,
        vocabulary,
        codes,
        pa.table({"city": city}),
        city_str,
        city_cat,
        city_obj,
        city_pystr,
        emails,
        emails_arrow,
    )


def in_expression(items: list[str]) -> str:
    return "city in [" + ", ".join(f'"{w}"' for w in items) + "]"


# -- environment --------------------------------------------------------------------------------


def query_engine() -> str:
    """The engine ``DataFrame.query`` uses by default: numexpr when it is installed."""
    installed = importlib.util.find_spec("numexpr") is not None
    with contextlib.suppress(ImportError, AttributeError):
        from pandas.core.computation import check

        installed = bool(check.NUMEXPR_INSTALLED)
    if installed:
        return f"numexpr {dist_version('numexpr')}"
    return "python (numexpr is not installed)"


# -- the benchmark ------------------------------------------------------------------------------


@dataclass
class Row:
    """One timed case of a columnar table."""

    name: str
    input: str
    threads: int | None  # None: not trafficsplit
    rate: Rate
    target: str | None = None  # which target this row is judged against, if any


@dataclass
class Results:
    machine: dict[str, str] = field(default_factory=dict)
    command: str = ""
    sizes: Sizes = FULL
    scalar: list[tuple[str, str, float, float, float | None]] = field(default_factory=list)
    numeric: list[Row] = field(default_factory=list)
    numeric_split: list[tuple[str, list[float], float, float]] = field(default_factory=list)
    clauses: list[tuple[str, str, Rate, Rate]] = field(default_factory=list)
    membership: list[Row] = field(default_factory=list)
    membership_split: list[tuple[str, float, float, float]] = field(default_factory=list)
    membership_context: list[tuple[str, float]] = field(default_factory=list)
    str_storage: str = "?"
    selectivity: dict[str, float] = field(default_factory=dict)
    functions: list[tuple[str, str, Rate, Rate, Rate]] = field(default_factory=list)
    object_memory: tuple[int, int, int, int, int] | None = None  # rows, traced, RSS, Arrow, copy
    seconds: float = 0.0


def bench_scalar(res: Results, sizes: Sizes) -> None:
    extra = {"user_id": "u-8812734", "device": "phone", "email": "ann@example.com"}
    namespace = {
        "t1": ts.Targeting(EXPR_1),
        "t4": ts.Targeting(EXPR_4),
        "req": {"country": "US", "tier": "premium", "app_version": "2.10.1", "age": 30, **extra},
        "req_fr": {"country": "FR", "tier": "premium", "app_version": "2.10.1", "age": 30, **extra},
        "req_none": dict(extra),
        "US_CA": frozenset(("US", "CA")),
    }
    # (statement, what it shows, target ns, expected result)
    cases: list[tuple[str, str, float | None, bool]] = [
        (
            "t4.matches(req)",
            "4 clauses, all true (every clause evaluated)",
            TARGET_MATCHES_NS,
            True,
        ),
        ("t1.matches(req)", "1 clause (`t1`), true", None, True),
        ("t4.matches(req_fr)", "4 clauses, first clause false", None, False),
        ("t4.matches(req_none)", "4 clauses, all four attributes missing", None, False),
        (
            'req["country"] in US_CA and req["tier"] == "premium" and req["age"] >= 18',
            "hand-written Python, 3 of the clauses (no semver), for scale",
            None,
            True,
        ),
    ]
    for stmt, _, _, expected in cases:
        got = eval(stmt, dict(namespace))
        assert got is expected, (stmt, got)
    figures = scalar_latency([stmt for stmt, *_ in cases], namespace, sizes.scalar_batches)
    for (stmt, what, target, _), (median, p99) in zip(cases, figures, strict=True):
        res.scalar.append((stmt, what, median, p99, target))
        print(f"  matches {stmt}: median {median:.0f} ns, p99 {p99:.0f} ns", flush=True)


def pyarrow_numeric(table: pa.Table) -> np.ndarray:
    """The four clauses with pyarrow.compute, nulls as False, as a numpy bool array."""
    m = pc.and_kleene(
        pc.and_kleene(pc.greater(table["a"], 0.5), pc.less(table["b"], 0.3)),
        pc.and_kleene(pc.greater_equal(table["c"], 10), pc.not_equal(table["d"], 3)),
    )
    return pc.fill_null(m, False).to_numpy(zero_copy_only=False)


def numpy_numeric(arrays: dict[str, np.ndarray]) -> np.ndarray:
    a, b, c, d = arrays["a"], arrays["b"], arrays["c"], arrays["d"]
    return (a > 0.5) & (b < 0.3) & (c >= 10) & (d != 3)


NUMERIC_INPUTS = (
    ("pandas DataFrame, float64 / int64", "df"),
    ("pandas DataFrame, Float64 / Int64 (1% NA)", "df_nullable"),
    ("pyarrow Table, double / int64", "table"),
    ("pyarrow Table, double / int64 (1% null)", "table_nulls"),
)
NUMPY_INPUT = "the same numpy arrays"
TS_MASK = "trafficsplit `Targeting.mask`"
QUERY = "pandas `DataFrame.query`"


def time_rows(
    what: str,
    rows: list[Row],
    cases: list[tuple[int, Callable[[], Any]]],
    baselines: list[tuple[str, str, Callable[[], Any]]],
    n: int,
    reps: int,
) -> None:
    """Appends a row and an ``n``-row case per (name, input, fn) baseline, times every case
    interleaved (``cases[i]`` is ``rows[i]``) and sets and prints each row's rate."""
    for name, label, fn in baselines:
        rows.append(Row(name, label, None, Rate(n)))
        cases.append((n, fn))
    for row, rate in zip(rows, rates(cases, reps), strict=True):
        row.rate = rate
        threads = "" if row.threads is None else f", threads={row.threads}"
        print(
            f"  {what} {row.name} on {row.input}{threads}: {rate.best:.1f} M rows/s "
            f"(median {rate.median:.1f})",
            flush=True,
        )


def bench_numeric(res: Results, data: Data, sizes: Sizes) -> None:
    t4 = ts.Targeting(EXPR_NUMERIC)
    n = data.rows
    cases: list[tuple[int, Callable[[], Any]]] = []
    for label, attr in NUMERIC_INPUTS:
        frame = getattr(data, attr)
        for threads in (1, 2):
            target = "numeric" if attr == "df" and threads == 1 else None
            res.numeric.append(Row(TS_MASK, label, threads, Rate(n), target))
            cases.append((n, lambda f=frame, k=threads: t4.mask(f, threads=k)))
    baselines: list[tuple[str, str, Callable[[], Any]]] = [
        (QUERY, NUMERIC_INPUTS[0][0], lambda: data.df.query(EXPR_NUMERIC)),
        (
            "pandas `DataFrame.eval` (the mask only)",
            NUMERIC_INPUTS[0][0],
            lambda: data.df.eval(EXPR_NUMERIC),
        ),
        (f"numpy `{NUMPY_NUMERIC}`", NUMPY_INPUT, lambda: numpy_numeric(data.arrays)),
        (QUERY, NUMERIC_INPUTS[1][0], lambda: data.df_nullable.query(EXPR_NUMERIC)),
        (
            "pyarrow.compute `and_kleene` of the four comparisons, to numpy",
            NUMERIC_INPUTS[3][0],
            lambda: pyarrow_numeric(data.table_nulls),
        ),
    ]
    time_rows("numeric", res.numeric, cases, baselines, n, sizes.reps)


def bench_numeric_split(res: Results, data: Data, sizes: Sizes) -> None:
    """Where the time of a one-thread numeric mask goes: turning each column into the form
    the evaluator reads (``targeting._column``), the C++ evaluation over those columns, and
    each clause alone against numpy's comparison on the same array."""
    try:
        from trafficsplit import targeting as tg

        column_of, table_of = tg._column, tg._table
        t4 = ts.Targeting(EXPR_NUMERIC)
        compiled_mask = t4._compiled.mask
    except (ImportError, AttributeError) as exc:  # internals moved: skip the split
        print(f"  split skipped: {exc}")
        return
    n = data.rows
    names = list(t4.attributes)
    fns: list[Callable[[], Any]] = []
    for _, attr in NUMERIC_INPUTS:
        frame = getattr(data, attr)
        _, lookup = table_of(frame)
        values = [lookup(name) for name in names]
        columns = [column_of(v, n, name) for v, name in zip(values, names, strict=True)]
        fns += [
            lambda v=v, name=name: column_of(v, n, name)
            for v, name in zip(values, names, strict=True)
        ]
        fns.append(lambda cols=columns: compiled_mask(cols, n, 1))
        fns.append(lambda f=frame: t4.mask(f, threads=1))
    width = len(names) + 2
    clause_fns: list[Callable[[], Any]] = []
    for clause in NUMERIC_CLAUSES:
        t = ts.Targeting(clause)
        name, op, literal = clause.split()
        array = data.arrays[name]
        numpy_op = {">": np.greater, "<": np.less, ">=": np.greater_equal, "!=": np.not_equal}[op]
        lit = float(literal) if "." in literal else int(literal)
        clause_fns.append(lambda t=t: t.mask(data.df, threads=1))
        clause_fns.append(lambda f=numpy_op, x=array, v=lit: f(x, v))
    times = time_interleaved(fns + clause_fns, sizes.reps)
    split_times = [min(t) for t in times[: len(fns)]]
    for i, (label, _) in enumerate(NUMERIC_INPUTS):
        chunk = split_times[width * i : width * (i + 1)]
        res.numeric_split.append((label, chunk[: len(names)], chunk[-2], chunk[-1]))
        print(
            f"  split {label}: columns "
            + ", ".join(f"{x * 1e3:.3f}" for x in chunk[: len(names)])
            + f" ms, C++ {chunk[-2] * 1e3:.1f} ms, mask {chunk[-1] * 1e3:.1f} ms",
            flush=True,
        )
    clause_times = times[len(fns) :]
    for k, clause in enumerate(NUMERIC_CLAUSES):
        ours, theirs = Rate(n, clause_times[2 * k]), Rate(n, clause_times[2 * k + 1])
        dtype = str(data.arrays[clause.split()[0]].dtype)
        res.clauses.append((clause, dtype, ours, theirs))
        print(
            f"  clause {clause} ({dtype}): trafficsplit {ours.best_ms:.1f} ms, "
            f"numpy {theirs.best_ms:.1f} ms",
            flush=True,
        )


MEMBERSHIP_INPUTS = (
    ("pyarrow Table, `string`", "city_arrow"),
    ("pandas DataFrame, default `str` dtype", "city_str"),
    ("pandas DataFrame, `category`", "city_cat"),
    ("pandas DataFrame, `object` dtype", "city_obj"),
    ("pandas DataFrame, `string[python]`", "city_pystr"),
)
# The inputs whose strings are Python objects: judged against Series.isin on the same column.
OBJECT_INPUTS = ("city_obj", "city_pystr")
ISIN = "pandas `Series.isin(list)`"


def bench_membership(res: Results, data: Data, sizes: Sizes) -> None:
    t = ts.Targeting(in_expression(data.in_items))
    n = data.rows
    items = data.in_items
    value_set = pa.array(items, pa.string())
    cases: list[tuple[int, Callable[[], Any]]] = []
    for label, attr in MEMBERSHIP_INPUTS:
        frame = getattr(data, attr)
        for threads in (1, 2):
            target = None if threads != 1 else "isin" if attr in OBJECT_INPUTS else "in"
            res.membership.append(Row(TS_MASK, label, threads, Rate(n), target))
            cases.append((n, lambda f=frame, k=threads: t.mask(f, threads=k)))
    baselines: list[tuple[str, str, Callable[[], Any]]] = [
        (
            "pyarrow.compute `is_in`, to numpy",
            MEMBERSHIP_INPUTS[0][0],
            lambda: pc.is_in(data.city_arrow["city"], value_set=value_set).to_numpy(
                zero_copy_only=False
            ),
        ),
    ]
    for label, attr in MEMBERSHIP_INPUTS[1:]:
        column = getattr(data, attr)["city"]
        baselines.append((ISIN, label, lambda c=column: c.isin(items)))
    time_rows("in", res.membership, cases, baselines, n, sizes.reps)


def bench_membership_split(res: Results, data: Data, sizes: Sizes) -> None:
    try:
        from trafficsplit import targeting as tg

        column_of, table_of = tg._column, tg._table
        t = ts.Targeting(in_expression(data.in_items))
        compiled_mask = t._compiled.mask
    except (ImportError, AttributeError) as exc:
        print(f"  split skipped: {exc}")
        return
    n = data.rows
    fns: list[Callable[[], Any]] = []
    for _, attr in MEMBERSHIP_INPUTS:
        frame = getattr(data, attr)
        _, lookup = table_of(frame)
        values = lookup("city")
        column = column_of(values, n, "city")
        fns += [
            lambda v=values: column_of(v, n, "city"),
            lambda c=column: compiled_mask([c], n, 1),
            lambda f=frame: t.mask(f, threads=1),
        ]
    # Context for the Arrow string path: the same evaluation over the same rows sorted by value
    # (identical work per row, but the branches of the hash lookup become predictable), and
    # over the same column with a one-item list (hashing and one probe, nearly always empty).
    vocabulary = pa.array(data.vocabulary, pa.string())
    ordered = column_of(vocabulary.take(pa.array(np.sort(data.city_codes))), n, "city")
    plain = column_of(data.city_arrow.column("city"), n, "city")
    one_item = ts.Targeting(in_expression(data.in_items[:1]))._compiled.mask
    context = [
        ("pyarrow `string`, the same rows sorted by value", lambda: compiled_mask([ordered], n, 1)),
        ("pyarrow `string`, a one-item list", lambda: one_item([plain], n, 1)),
    ]
    timed = [min(x) for x in time_interleaved(fns + [fn for _, fn in context], sizes.reps)]
    times, extra = timed[: len(fns)], timed[len(fns) :]
    for i, (label, _) in enumerate(MEMBERSHIP_INPUTS):
        build, kernel, total = times[3 * i : 3 * i + 3]
        res.membership_split.append((label, build, kernel, total))
        print(
            f"  split in {label}: column {build * 1e3:.1f} ms, C++ {kernel * 1e3:.1f} ms, "
            f"mask {total * 1e3:.1f} ms",
            flush=True,
        )
    for (label, _), seconds in zip(context, extra, strict=True):
        res.membership_context.append((label, seconds))
        print(f"  split in {label}: C++ {seconds * 1e3:.1f} ms", flush=True)


_OBJECT_MEMORY_CODE = """
import ctypes, gc, json, sys, tracemalloc
import numpy as np, pandas as pd, pyarrow as pa, trafficsplit as ts
n, vocabulary = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(7)
words = np.array([f"city-{i}-{'x' * int(rng.integers(0, 14))}" for i in range(vocabulary)], object)
frame = pd.DataFrame({"city": pd.Series(words[rng.integers(0, vocabulary, n)], dtype=object)})
t = ts.Targeting("city in @cities", lists={"cities": list(words[::20])})
t.mask(frame.iloc[:1000])

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

gc.collect()
ctypes.CDLL("libc.so.6").malloc_trim(0)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
tracemalloc.start()
base, _ = tracemalloc.get_traced_memory()
mask = t.mask(frame, threads=1)
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
rss = status("VmHWM") - before - mask.nbytes
arrow_peak = pa.default_memory_pool().max_memory()
copy = pa.array(frame["city"].to_numpy(), pa.large_string()).nbytes
print(json.dumps([n, peak - base - mask.nbytes, rss, arrow_peak, copy]))
"""


def bench_object_memory(res: Results, sizes: Sizes) -> None:
    """Peak memory of `.mask` on an `object` column beyond its output, in a fresh process (its
    Arrow allocator has allocated nothing before): Python allocations (tracemalloc), Arrow's
    allocator (the peak of its default pool) and the peak resident set (Linux)."""
    import json
    import subprocess

    try:
        out = subprocess.run(
            [sys.executable, "-c", _OBJECT_MEMORY_CODE, str(sizes.rows), str(sizes.vocabulary)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"  object memory skipped: {exc}")
        return
    rows, traced, rss, arrow_peak, copy = json.loads(out)
    res.object_memory = (rows, traced, rss, arrow_peak, copy)
    print(
        f"  object memory: tracemalloc {traced / rows:.3f} B/row, RSS {rss / rows:.3f} B/row, "
        f"Arrow pool peak {arrow_peak} B (an Arrow copy: {copy / rows:.1f} B/row)",
        flush=True,
    )


def bench_functions(res: Results, data: Data, sizes: Sizes) -> None:
    m = len(data.emails)
    df = data.emails
    cases: list[tuple[int, Callable[[], Any]]] = []
    for expr, _, method in STRING_FUNCTIONS:
        t = ts.Targeting(expr)
        cases += [
            (m, lambda t=t: t.mask(df, threads=1)),
            (m, lambda t=t: t.mask(df, threads=2)),
            (m, lambda f=method: f(df["email"])),
        ]
    measured = rates(cases, sizes.reps)
    for k, (expr, pandas_stmt, _) in enumerate(STRING_FUNCTIONS):
        one, two, theirs = measured[3 * k : 3 * k + 3]
        res.functions.append((expr, pandas_stmt, one, two, theirs))
        print(
            f"  function {expr}: {one.best:.1f} M rows/s (threads=1), {two.best:.1f} "
            f"(threads=2); {pandas_stmt}: {theirs.best:.1f} M rows/s",
            flush=True,
        )


def sanity_check(res: Results, data: Data) -> None:
    """Every implementation computes the same rows (a guard that the benchmark measures real
    work, with the same selectivity everywhere)."""
    t4 = ts.Targeting(EXPR_NUMERIC)
    expected = numpy_numeric(data.arrays)
    for _, attr in NUMERIC_INPUTS[::2]:
        got = t4.mask(getattr(data, attr), threads=2)
        assert got.dtype == np.bool_ and np.array_equal(got, expected), attr
    assert np.array_equal(data.df.eval(EXPR_NUMERIC).to_numpy(), expected)
    assert np.array_equal(data.df.query(EXPR_NUMERIC).index.to_numpy(), np.flatnonzero(expected))
    nullable = t4.mask(data.df_nullable, threads=1)
    assert np.array_equal(nullable, t4.mask(data.table_nulls, threads=1))
    assert np.array_equal(nullable, pyarrow_numeric(data.table_nulls))
    queried = data.df_nullable.query(EXPR_NUMERIC).index.to_numpy()
    assert np.array_equal(queried, np.flatnonzero(nullable))
    res.selectivity["numeric"] = float(expected.mean())
    res.selectivity["numeric nullable"] = float(nullable.mean())

    t = ts.Targeting(in_expression(data.in_items))
    isin = data.city_str["city"].isin(data.in_items).to_numpy()
    for _, attr in MEMBERSHIP_INPUTS:
        assert np.array_equal(t.mask(getattr(data, attr), threads=2), isin), attr
    res.selectivity["in"] = float(isin.mean())
    res.str_storage = str(getattr(data.city_str["city"].dtype, "storage", "numpy object"))

    for expr, _, method in STRING_FUNCTIONS:
        got = ts.Targeting(expr).mask(data.emails, threads=1)
        theirs = np.asarray(method(data.emails["email"]), dtype=bool)
        assert np.array_equal(got, theirs), expr
        assert np.array_equal(got, ts.Targeting(expr).mask(data.emails_arrow, threads=2)), expr
        res.selectivity[expr] = float(got.mean())

    # The scalar path agrees with the columnar one.
    sample = data.df_nullable.iloc[:300]
    rows = [
        {k: (None if v is pd.NA else v) for k, v in r.items()}
        for r in sample.to_dict(orient="records")
    ]
    assert [t4.matches(r) for r in rows] == nullable[:300].tolist()


# -- reporting ----------------------------------------------------------------------------------


def _rate(rate: Rate) -> str:
    return f"{rate.best:,.1f} ({rate.median:,.1f})"


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 1 else f"{ms:,.1f}"


def _baseline(res: Results, name_prefix: str, input_: str) -> Row | None:
    for r in res.numeric:
        if r.threads is None and r.name.startswith(name_prefix) and r.input == input_:
            return r
    return None


def numeric_refs(res: Results) -> tuple[Row | None, Row | None]:
    """The DataFrame.query and numpy rows the numeric targets are judged against."""
    return _baseline(res, QUERY, NUMERIC_INPUTS[0][0]), _baseline(res, "numpy", NUMPY_INPUT)


def isin_row(res: Results, input_: str) -> Row | None:
    """The Series.isin row of an input of the membership table."""
    for r in res.membership:
        if r.threads is None and r.name == ISIN and r.input == input_:
            return r
    return None


def targets_summary(res: Results) -> list[str]:
    rows = []
    for stmt, _, median, _, target in res.scalar:
        if target is not None:
            rows.append(
                [
                    f"`{stmt}` (4 clauses) median latency",
                    f"≤ {target:,.0f} ns",
                    f"{median:,.0f} ns",
                    mark(median <= target),
                ]
            )
    query, numpy_row = numeric_refs(res)
    for r in res.numeric:
        if r.target != "numeric":
            continue
        for ref, goal, label in (
            (query, TARGET_QUERY_RATIO, "`DataFrame.query`"),
            (numpy_row, TARGET_NUMPY_RATIO, "the numpy expression"),
        ):
            if ref is None:
                continue
            ratio = r.rate.best / ref.rate.best
            rows.append(
                [
                    f"`.mask`, 4 numeric clauses, {r.rate.rows:,} rows, {r.input}, threads=1 "
                    f"÷ {label}",
                    f"≥ {goal:g}×",
                    f"{ratio:.2f}× ({r.rate.best * 4:,.0f} vs {ref.rate.best * 4:,.0f} "
                    "M row-clauses/s)",
                    mark(ratio >= goal),
                ]
            )
    for r in res.membership:
        if r.target == "in":
            rows.append(
                [
                    f"`in` {IN_ITEMS:,} strings, {r.rate.rows:,} rows, {r.input}, threads=1",
                    f"≥ {TARGET_IN_MPS} M rows/s",
                    f"{r.rate.best:.1f} M rows/s",
                    mark(r.rate.best >= TARGET_IN_MPS),
                ]
            )
        isin = isin_row(res, r.input)
        if r.target == "isin" and isin is not None:
            ratio = r.rate.median / isin.rate.median
            rows.append(
                [
                    f"`in` {IN_ITEMS:,} strings, {r.rate.rows:,} rows, {r.input}, threads=1 "
                    "÷ `Series.isin` on the same column",
                    f"≥ {TARGET_ISIN_RATIO:g}×",
                    f"{ratio:.2f}× ({r.rate.median:.1f} vs {isin.rate.median:.1f} M rows/s, "
                    "medians)",
                    mark(ratio >= TARGET_ISIN_RATIO),
                ]
            )
    out = targets_table(rows)
    out.append(
        "Throughputs are judged on the best repetition of each case (the tables below give "
        "the median too); every ratio compares two figures from this run on the same data."
    )
    out.append("")
    return out


def report(res: Results) -> list[str]:
    s = res.sizes
    out = environment_lines(res.command, res.machine)
    out += targets_summary(res)

    out += ["### Per-request `Targeting.matches` from Python (ns per call)", ""]
    out.append(
        "Each statement runs in batches of 1,000 (a bare `timeit` loop, so the loop's few ns "
        "are included); the figures are the median and 99th percentile of the per-call "
        f"averages of {s.scalar_batches:,} batches per statement. `t4 = ts.Targeting('{EXPR_4}')`"
        f", `t1 = ts.Targeting('{EXPR_1}')`. `req` is a dict of 7 attributes (the four read, "
        'all matching: `"US"`, `"premium"`, `"2.10.1"`, `30`, and three others); `req_fr` '
        'has `country="FR"`; `req_none` holds only the three others.'
    )
    out.append("")
    rows = []
    for stmt, what, median, p99, target in res.scalar:
        goal = f"median ≤ {target:,.0f} ns" if target else ""
        ok = None if target is None else median <= target
        rows.append([f"`{stmt}`", what, f"{median:,.0f}", f"{p99:,.0f}", goal, mark(ok)])
    out += table(["statement", "case", "median ns", "p99 ns", "target", "met"], rows)
    out.append("")

    n = f"{s.rows:,}"
    out += [f"### `Targeting.mask`, four numeric clauses, {n} rows", ""]
    out.append(
        f"`ts.Targeting('{EXPR_NUMERIC}')`: `a`, `b` uniform float64 in [0, 1), `c` int64 "
        f"in [0, 20), `d` int64 in [0, 6); "
        f"{res.selectivity.get('numeric', float('nan')):.1%} of rows match "
        f"({res.selectivity.get('numeric nullable', float('nan')):.1%} with the nulls). The "
        "nullable frame holds the same values with 1% NA per column (independently); the "
        "pyarrow Tables are `pa.table(arrays)` (zero copy) and `pa.Table.from_pandas` of the "
        "nullable frame. Output: a numpy bool array per row, except `DataFrame.query`, which "
        "returns the matching rows (what a user of it gets). `DataFrame.query` engine: "
        f"{res.machine.get('DataFrame.query engine', '?')}. M rows/s: best of "
        f"{s.reps} interleaved repetitions (median in brackets); row-clauses/s = 4 × rows/s."
    )
    out.append("")
    query, numpy_row = numeric_refs(res)
    rows = []
    for r in res.numeric:
        vs_query = f"{r.rate.best / query.rate.best:.2f}×" if query else ""
        vs_numpy = f"{r.rate.best / numpy_row.rate.best:.2f}×" if numpy_row else ""
        goal, ok = "", None
        if r.target == "numeric":
            goal = f"≥ {TARGET_QUERY_RATIO:g}× query, ≥ {TARGET_NUMPY_RATIO:g}× numpy"
            ok = bool(
                query
                and numpy_row
                and r.rate.best >= TARGET_QUERY_RATIO * query.rate.best
                and r.rate.best >= TARGET_NUMPY_RATIO * numpy_row.rate.best
            )
        rows.append(
            [
                r.name,
                r.input,
                "" if r.threads is None else str(r.threads),
                _rate(r.rate),
                f"{r.rate.best * 4:,.0f}",
                vs_query,
                vs_numpy,
                goal,
                mark(ok),
            ]
        )
    out += table(
        [
            "implementation",
            "input",
            "threads",
            "M rows/s",
            "M row-clauses/s",
            "÷ query",
            "÷ numpy",
            "target",
            "met",
        ],
        rows,
    )
    out.append("")

    if res.numeric_split:
        out += ["### Where the time of a numeric mask goes (threads=1, best run, ms)", ""]
        out.append(
            "`_column(x)`: `trafficsplit.targeting._column`, which turns one input column into "
            "the buffers the C++ evaluator reads (done by `Targeting.mask` once per attribute, "
            "under the GIL); C++: the compiled expression's `mask` over those columns "
            "(evaluation and output array); `.mask`: the whole public call. Each figure is the "
            "best of separate calls, so they need not add up exactly."
        )
        out.append("")
        rows = []
        for label, columns, kernel, total in res.numeric_split:
            rest = max(0.0, total - kernel - sum(columns))
            rows.append([label, *(_ms(c) for c in columns), _ms(kernel), _ms(rest), _ms(total)])
        out += table(
            [
                "input",
                "`_column(a)`",
                "`_column(b)`",
                "`_column(c)`",
                "`_column(d)`",
                "C++",
                "rest",
                "`.mask`",
            ],
            rows,
        )
        out.append("")
    if res.clauses:
        out.append(
            "Each clause alone (`Targeting(clause).mask(df, threads=1)` on the numpy-backed "
            "frame) against numpy's comparison of the same array (`np.greater(a, 0.5)`, ...), "
            "and the four together:"
        )
        out.append("")
        rows = []
        for clause, dtype, ours, theirs in res.clauses:
            rows.append(
                [
                    f"`{clause}`",
                    dtype,
                    f"{ours.best_ms:,.1f}",
                    f"{ours.best:,.0f}",
                    f"{theirs.best_ms:,.1f}",
                    f"{theirs.best:,.0f}",
                    f"{ours.best_ms / theirs.best_ms:.1f}×",
                ]
            )
        ours_all = next((r for r in res.numeric if r.target == "numeric"), None)
        if ours_all is not None and numpy_row is not None:
            ours_sum = sum(c[2].best_ms for c in res.clauses)
            theirs_sum = sum(c[3].best_ms for c in res.clauses)
            rows.append(
                [
                    "the four clauses alone, summed",
                    "",
                    f"{ours_sum:,.1f}",
                    "",
                    f"{theirs_sum:,.1f}",
                    "",
                    f"{ours_sum / theirs_sum:.1f}×",
                ]
            )
            rows.append(
                [
                    "all four in one expression",
                    "",
                    f"{ours_all.rate.best_ms:,.1f}",
                    f"{ours_all.rate.best:,.0f}",
                    f"{numpy_row.rate.best_ms:,.1f}",
                    f"{numpy_row.rate.best:,.0f}",
                    f"{ours_all.rate.best_ms / numpy_row.rate.best_ms:.1f}×",
                ]
            )
        out += table(
            [
                "clause",
                "column",
                "trafficsplit ms",
                "M rows/s",
                "numpy ms",
                "M rows/s",
                "time ratio",
            ],
            rows,
        )
        out.append("")

    out += [f"### `in` with a list of {IN_ITEMS:,} strings, {n} rows", ""]
    out.append(
        f"`city in [...]` with {IN_ITEMS // 2} words of the column's vocabulary and "
        f"{IN_ITEMS - IN_ITEMS // 2} absent ones; the column draws {s.rows:,} rows uniformly "
        f"from {s.vocabulary:,} random lowercase words of 6-20 letters "
        f"({res.selectivity.get('in', float('nan')):.1%} of rows match). The pandas `str` "
        f"column (storage: {res.str_storage}) is `to_pandas()` of the Arrow one; the "
        "categorical has the vocabulary as its categories; the `object` and `string[python]` "
        "columns hold Python str objects (one per word, shared by its rows), which "
        "`Targeting.mask` reads where they are, with the GIL held and so on one thread "
        "whatever `threads` says. "
        f"Targets: ≥ {TARGET_IN_MPS} M rows/s with one thread; on the Python-object columns, "
        f"≥ {TARGET_ISIN_RATIO:g}× `Series.isin` on the same column (medians)."
    )
    out.append("")
    rows = []
    for r in res.membership:
        isin = isin_row(res, r.input) if r.target == "isin" else None
        if r.target == "in":
            goal, ok = f"≥ {TARGET_IN_MPS} M rows/s", r.rate.best >= TARGET_IN_MPS
        elif isin is not None:
            ratio = r.rate.median / isin.rate.median
            goal, ok = f"≥ {TARGET_ISIN_RATIO:g}× isin ({ratio:.2f}×)", ratio >= TARGET_ISIN_RATIO
        else:
            goal, ok = "", None
        rows.append(
            [
                r.name,
                r.input,
                "" if r.threads is None else str(r.threads),
                _rate(r.rate),
                goal,
                mark(ok),
            ]
        )
    out += table(["implementation", "input", "threads", "M rows/s", "target", "met"], rows)
    out.append("")
    if res.membership_split:
        out.append("Where the time goes (threads=1, best run, ms), as above:")
        out.append("")
        rows = []
        for label, build, kernel, total in res.membership_split:
            rows.append(
                [
                    label,
                    _ms(build),
                    _ms(kernel),
                    _ms(max(0.0, total - build - kernel)),
                    _ms(total),
                    f"{s.rows / kernel / 1e6:,.0f}",
                ]
            )
        for label, kernel in res.membership_context:
            rate = f"{s.rows / kernel / 1e6:,.0f}"
            rows.append([f"context: {label}", "", _ms(kernel), "", "", rate])
        out += table(["input", "`_column(city)`", "C++", "rest", "`.mask`", "C++ M rows/s"], rows)
        out.append("")

    if res.object_memory is not None:
        rows_, traced, rss, arrow_peak, copy = res.object_memory
        out.append(
            f"Peak memory of `.mask` on an `object` column of {rows_:,} rows (threads=1), "
            "beyond its output, in a fresh process: Python allocations (`tracemalloc`) "
            f"{traced / 1024:,.0f} KiB ({traced / rows_:.3f} B/row); Arrow's allocator "
            f"{arrow_peak / 1024:,.0f} KiB at its peak (an Arrow copy of the column would be "
            f"{copy / rows_:.1f} B/row); resident set {rss / 1024:,.0f} KiB "
            f"({rss / rows_:.3f} B/row). The column is read where it is."
        )
        out.append("")

    out += [f"### String functions, {s.function_rows:,} rows (context)", ""]
    out.append(
        "`email` is a pandas default `str` column of `<4-12 random letters>@<domain>` with "
        f"{len(DOMAINS)} domains drawn uniformly ({', '.join(DOMAINS)}); `Targeting(expr)"
        ".mask(df)` against the pandas string method a user would write, on the same frame."
    )
    out.append("")
    rows = []
    for expr, pandas_stmt, one, two, theirs in res.functions:
        rows.append(
            [
                f"`{expr}`",
                f"{res.selectivity.get(expr, float('nan')):.1%}",
                _rate(one),
                _rate(two),
                f"{two.best / one.best:.2f}×",
                f'`df["email"]{pandas_stmt}`',
                _rate(theirs),
                f"{one.best / theirs.best:.2f}×",
            ]
        )
    out += table(
        [
            "expression",
            "match",
            "threads=1 M rows/s",
            "threads=2",
            "2 / 1",
            "pandas",
            "M rows/s",
            "1 thread ÷ pandas",
        ],
        rows,
    )
    out.append("")
    out.append(f"Benchmark run time: {res.seconds:.0f} s.")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, SECTION, argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()

    machine, command = start_run(
        {"DataFrame.query engine": query_engine()},
        package={"trafficsplit extension built": extension_built()},
        git_sources=PACKAGE_SOURCES,
    )
    res = Results(machine=machine, command=command, sizes=sizes)
    with timed_step("generating data"):
        data = make_data(sizes)
        sanity_check(res, data)

    bench_scalar(res, sizes)
    bench_numeric(res, data, sizes)
    bench_numeric_split(res, data, sizes)
    bench_membership(res, data, sizes)
    bench_membership_split(res, data, sizes)
    bench_object_memory(res, sizes)
    bench_functions(res, data, sizes)
    res.seconds = finish_run(res.machine, started)

    publish(report(res), args.markdown, SECTION, SECTION_TITLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
