#!/usr/bin/env python
"""Grouped moments benchmark: trafficsplit's one-pass kernel against pandas groupby.

Run from the repository root:

    .venv/bin/python benchmarks/bench_moments.py [--quick] [--markdown docs/benchmarks.md]

Everything is measured in one run, on data generated here with a fixed seed: 100,000,000 rows
(2,000,000 with ``--quick``) of a float64 metric ``y``, a float64 covariate ``x`` and an arm
code in 0..3. Throughputs are the best of several interleaved repetitions (the median is shown
too). GB/s counts the bytes of the value columns read (8 per row and column), not the codes.
``--markdown PATH`` writes (or replaces) the section between the ``bench_moments`` markers in
PATH and leaves the rest of the file alone.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import trafficsplit.stats as tss
from _common import (
    PACKAGE_SOURCES,
    Rate,
    environment_lines,
    extension_built,
    finish_run,
    mark,
    parse_args,
    publish,
    rates,
    start_run,
    table,
    targets_table,
    timed_step,
)
from trafficsplit._core import stats as core

SECTION = "bench_moments"
SECTION_TITLE = "## Grouped moments"
SEED = 20_240_607
ARMS = 4

TARGET_GBPS = 1.0
TARGET_PANDAS_RATIO = 3.0


@dataclass(frozen=True)
class Sizes:
    rows: int
    reps: int


FULL = Sizes(rows=100_000_000, reps=3)
QUICK = Sizes(rows=2_000_000, reps=2)


@dataclass
class Case:
    name: str  # what runs, as code
    group: str  # table it belongs to
    columns: int  # value columns read
    rate: Rate


@dataclass
class Results:
    machine: dict[str, str]
    command: str
    sizes: Sizes
    cases: list[Case] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Data:
    arm: np.ndarray  # int8 codes 0..3
    y: np.ndarray
    x: np.ndarray
    den: np.ndarray  # the denominator of a ratio metric (numerator: y)
    y_nan: np.ndarray  # y with 1% NaN
    frame: pd.DataFrame  # arm (int8), y
    frame_cat: pd.DataFrame  # arm (categorical of "a".."d"), y
    cat: pd.Series


def make_data(sizes: Sizes) -> Data:
    rng = np.random.default_rng(SEED)
    n = sizes.rows
    arm = rng.integers(0, ARMS, n, dtype=np.int8)
    y = rng.standard_normal(n)
    y *= 2.0
    y += 10.0 + 0.1 * arm  # a small treatment effect per arm
    x = rng.standard_normal(n)
    x += y
    den = rng.uniform(1.0, 3.0, n)
    y_nan = y.copy()
    y_nan[rng.random(n) < 0.01] = np.nan
    names = pd.Categorical.from_codes(arm, categories=["a", "b", "c", "d"])
    cat = pd.Series(names, name="arm")
    frame = pd.DataFrame({"arm": arm, "y": y}, copy=False)
    frame_cat = pd.DataFrame({"arm": cat, "y": y}, copy=False)
    return Data(arm, y, x, den, y_nan, frame, frame_cat, cat)


def sanity_check(res: Results, d: Data) -> None:
    """Ours against pandas on the same rows: counts equal, sums and variances to 1e-9."""
    ours = tss.grouped_moments(d.arm, d.y, threads=1)
    ref = d.frame.groupby("arm")["y"].agg(["count", "sum", "var"])
    for g in range(ARMS):
        m = ours[g]
        assert m.n == ref.loc[g, "count"], (g, m.n)
        assert abs(m.sum / ref.loc[g, "sum"] - 1) < 1e-9, (g, m.sum, ref.loc[g, "sum"])
        assert abs(m.var / ref.loc[g, "var"] - 1) < 1e-9, (g, m.var, ref.loc[g, "var"])
    two = tss.grouped_moments(d.arm, d.y, d.x, threads=2)
    for g in range(ARMS):
        sel = d.arm == g
        cov = np.cov(d.y[sel][:1_000_000], d.x[sel][:1_000_000])  # a subsample: order of size
        assert abs(two[g].cov(0, 1) / cov[0, 1] - 1) < 0.05
    res.checks.append(
        "count, sum and var of every arm equal pandas' to 1e-9 relative; covariances agree "
        "with numpy's"
    )


def bench(res: Results, d: Data, sizes: Sizes) -> None:
    n = sizes.rows
    int16, int32, int64 = (d.arm.astype(t) for t in (np.int16, np.int32, np.int64))
    y, x, den = d.y, d.x, d.den

    def pandas_agg(frame: pd.DataFrame) -> Callable[[], Any]:
        return lambda: frame.groupby("arm", observed=True)["y"].agg(["count", "sum", "var"])

    specs: list[tuple[str, str, int, Callable[[], Any]]] = [
        (
            "ts.stats.grouped_moments(arm, y, threads=1)",
            "main",
            1,
            lambda: tss.grouped_moments(d.arm, y, threads=1),
        ),
        (
            "ts.stats.grouped_moments(arm, y, threads=2)",
            "main",
            1,
            lambda: tss.grouped_moments(d.arm, y, threads=2),
        ),
        (
            "ts.stats.grouped_moments(arm_categorical, y, threads=1)",
            "main",
            1,
            lambda: tss.grouped_moments(d.cat, y, threads=1),
        ),
        (
            'df.groupby("arm")["y"].agg(["count", "sum", "var"]), arm int8',
            "pandas",
            1,
            pandas_agg(d.frame),
        ),
        (
            'df.groupby("arm")["y"].agg(["count", "sum", "var"]), arm categorical',
            "pandas",
            1,
            pandas_agg(d.frame_cat),
        ),
        (
            "np.bincount(arm, y) and np.bincount(arm, y * y) (raw sums, no variance)",
            "numpy",
            1,
            lambda: (np.bincount(d.arm, y, ARMS), np.bincount(d.arm, y * y, ARMS)),
        ),
        (
            "ts.stats.grouped_moments(arm, y_nan, threads=1) (1% NaN)",
            "more",
            1,
            lambda: tss.grouped_moments(d.arm, d.y_nan, threads=1),
        ),
        (
            "ts.stats.grouped_moments(arm, y, x, threads=1) (covariate)",
            "more",
            2,
            lambda: tss.grouped_moments(d.arm, y, x, threads=1),
        ),
        (
            "ts.stats.grouped_moments(arm, y, x, threads=2) (covariate)",
            "more",
            2,
            lambda: tss.grouped_moments(d.arm, y, x, threads=2),
        ),
        (
            "ts.stats.grouped_moments(arm, y, den, x, threads=1) (ratio y / den + covariate)",
            "more",
            3,
            lambda: tss.grouped_moments(d.arm, y, den, x, threads=1),
        ),
    ]
    for codes, label in ((d.arm, "int8"), (int16, "int16"), (int32, "int32"), (int64, "int64")):
        specs.append(
            (
                f"_core.stats.grouped_moments({label} codes, [y], 4, threads=1)",
                "codes",
                1,
                (lambda c: lambda: core.grouped_moments(c, [y], ARMS, 1))(codes),
            )
        )
    print(f"timing {len(specs)} cases x {sizes.reps} rounds ...", flush=True)
    measured = rates([(n, fn) for *_, fn in specs], sizes.reps)
    for (name, group, cols, _), rate in zip(specs, measured, strict=True):
        res.cases.append(Case(name, group, cols, rate))
        print(f"  {rate.best:8.1f} M rows/s  {name}", flush=True)


def gbps(case: Case) -> float:
    return case.rate.best * 8 * case.columns / 1e3


def find(res: Results, group: str) -> list[Case]:
    return [c for c in res.cases if c.group == group]


def report(res: Results) -> list[str]:
    n = f"{res.sizes.rows:,}"
    out = environment_lines(res.command, res.machine)
    ours = find(res, "main")[0]
    pandas_best = max(find(res, "pandas"), key=lambda c: c.rate.best)
    ratio = ours.rate.best / pandas_best.rate.best
    out += targets_table(
        [
            [
                f"grouped moments, {n} float64 rows, {ARMS} arms, one thread",
                f"≥ {TARGET_GBPS:g} GB/s",
                f"{gbps(ours):.2f} GB/s",
                mark(gbps(ours) >= TARGET_GBPS),
            ],
            [
                "the same ÷ pandas `groupby(...).agg(['count', 'sum', 'var'])` (its faster arm "
                "column)",
                f"≥ {TARGET_PANDAS_RATIO:g}×",
                f"{ratio:.2f}× ({gbps(ours):.2f} vs {gbps(pandas_best):.2f} GB/s)",
                mark(ratio >= TARGET_PANDAS_RATIO),
            ],
        ]
    )
    out += [f"### Per arm count, mean and variance of `y`, {n} rows, {ARMS} arms", ""]
    out.append(
        "`y` float64 (normal, mean 10 + 0.1 × arm, sd 2), `arm` int8 codes 0..3 uniform (a "
        "pandas categorical of 'a'..'d' for the categorical rows), `x` float64 correlated "
        "with `y`, `den` float64 uniform in [1, 3) (a ratio metric's denominator), `y_nan` "
        "`y` with 1% of the rows NaN at random. "
        "trafficsplit returns per arm n, means, centred co-moments and NaN counts "
        "(`MomentsByGroup`); pandas returns count, sum and var; `np.bincount` only the raw "
        "sums Σy and Σy² (numerically unstable variance, shown for scale). GB/s = 8 bytes × "
        f"value columns × rows / s; ÷ pandas compares rows/s with the faster pandas row. Best "
        f"of {res.sizes.reps} interleaved repetitions, median in brackets; pandas and numpy run "
        "on one thread."
    )
    out.append("")
    rows = []
    for c in [*find(res, "main"), *find(res, "pandas"), *find(res, "numpy"), *find(res, "more")]:
        rows.append(
            [
                f"`{c.name}`",
                str(c.columns),
                f"{c.rate.best:,.1f} ({c.rate.median:,.1f})",
                f"{gbps(c):.2f}",
                f"{c.rate.best / pandas_best.rate.best:.2f}×",
            ]
        )
    out += table(["implementation", "value columns", "M rows/s", "GB/s", "÷ pandas"], rows)
    out.append("")
    out += ["### Group code width (raw kernel, one thread, `y` only)", ""]
    out.append(
        "The same rows with the arm codes stored as int8, int16, int32 and int64 and passed "
        "straight to the C++ kernel (`trafficsplit._core.stats.grouped_moments`, no Python "
        "conversion): narrower codes are fewer bytes to read per row."
    )
    out.append("")
    rows = [
        [
            f"`{c.name}`",
            f"{c.rate.best:,.1f} ({c.rate.median:,.1f})",
            f"{gbps(c):.2f}",
        ]
        for c in find(res, "codes")
    ]
    out += table(["kernel call", "M rows/s", "GB/s of y"], rows)
    out.append("")
    out += [f"Checks before timing: {'; '.join(res.checks)}.", ""]
    out.append(f"Run time: {res.seconds:.0f} s.")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, SECTION, argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    machine, command = start_run(
        package={"trafficsplit extension built": extension_built()}, git_sources=PACKAGE_SOURCES
    )
    res = Results(machine=machine, command=command, sizes=sizes)
    with timed_step("generating data"):
        data = make_data(sizes)
        sanity_check(res, data)
    bench(res, data, sizes)
    res.seconds = finish_run(res.machine, started)
    publish(report(res), args.markdown, SECTION, SECTION_TITLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
