#!/usr/bin/env python
"""Splitter benchmark: per-request latency of configured experiments, assign_all, assign_frame
against the raw batch kernels, and GrowthBook's Python SDK on an equivalent experiment.

Run from the repository root:

    .venv/bin/python benchmarks/bench_splitter.py [--quick] [--markdown docs/benchmarks.md]

The GrowthBook rows need the ``growthbook`` package (``.venv/bin/pip install growthbook``; it is
not a dependency of trafficsplit); without it they are skipped. Everything is measured in one
run, on data generated here with a fixed seed. Latencies are the median and p99 of per-call
averages over batches of 1,000 calls, the statements interleaved batch by batch; frame timings
are the best of several interleaved repetitions (the median is shown too). ``--markdown PATH``
writes (or replaces) the section between the ``bench_splitter`` markers in PATH and leaves the
rest of the file alone.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import trafficsplit as ts
from _common import (
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
)

try:
    import growthbook
except ImportError:  # the peer is optional: its rows are skipped
    growthbook = None

SEED = 20_261_126
SECTION = "bench_splitter"
SECTION_TITLE = "## Splitter: requests, frames and GrowthBook"

TARGET_ASSIGN_NS = 2_000
TARGET_ALL_NS = 10_000
TARGET_FRAME_RATIO = 2.0
TARGET_PEER_RATIO = 1.0  # GrowthBook's time / ours: at least as fast as the peer

TARGETING = 'country in ["US", "CA"] and tier == "premium" and age >= 18'
GB_CONDITION = {"country": {"$in": ["US", "CA"]}, "tier": "premium", "age": {"$gte": 18}}
UNIT = "user-12345"
ATTRS = {"user_id": UNIT, "country": "US", "tier": "premium", "age": 30, "app": "ios"}
ATTRS_MISS = {**ATTRS, "country": "DE"}
GB_ATTRS = {"id": UNIT, "country": "US", "tier": "premium", "age": 30, "app": "ios"}


@dataclass(frozen=True)
class Sizes:
    scalar_batches: int  # batches of 1,000 calls per statement
    frame_rows: int
    reps: int  # repetitions of each frame timing


FULL = Sizes(scalar_batches=1_000, frame_rows=1_000_000, reps=7)
QUICK = Sizes(scalar_batches=60, frame_rows=100_000, reps=2)


# -- configurations -----------------------------------------------------------------------------


def config_one() -> dict[str, Any]:
    """One experiment, 50/50, with the 3-clause targeting rule; one flag."""
    return {
        "experiments": [
            {"key": "ranker-v2", "arms": {"control": 50, "treatment": 50}, "targeting": TARGETING}
        ],
        "flags": [
            {
                "key": "new-reranker",
                "type": "bool",
                "default": False,
                "rules": [
                    {"when": 'tier == "internal"', "value": True},
                    {"rollout": {True: 10, False: 90}},
                ],
            }
        ],
    }


def config_twenty() -> dict[str, Any]:
    """20 experiments as a service might run them: 16 in two layers (8 × 12.5 % each), 4
    outside any layer, all behind a 5 % holdout, every fourth one with the 3-clause rule."""
    experiments = []
    for i in range(20):
        e: dict[str, Any] = {
            "key": f"exp-{i:02d}",
            "arms": {"control": 50, "treatment": 50},
            "holdouts": ["global"],
        }
        if i < 16:
            e["layer"] = "search" if i < 8 else "ranking"
            e["layer_share"] = 12.5
        if i % 4 == 0:
            e["targeting"] = TARGETING
        experiments.append(e)
    return {
        "layers": [{"key": "search"}, {"key": "ranking"}],
        "holdouts": [{"key": "global", "percent": 5}],
        "experiments": experiments,
    }


def config_twenty_plain() -> dict[str, Any]:
    return {
        "experiments": [
            {"key": f"exp-{i:02d}", "arms": {"control": 50, "treatment": 50}} for i in range(20)
        ]
    }


FRAME_EXPERIMENTS: list[dict[str, Any]] = [
    {"key": "ranker", "arms": {"control": 50, "treatment": 50}},
    {"key": "three-arms", "arms": {"control": 34, "a": 33, "b": 33}, "exposure": 0.5},
    {"key": "targeted", "arms": {"control": 50, "treatment": 50}, "targeting": TARGETING},
    {"key": "ramp", "arms": {"control": 90, "treatment": 10}},
    {
        "key": "targeted-low",
        "arms": {"control": 50, "treatment": 50},
        "exposure": 0.2,
        "targeting": TARGETING,
    },
]


def config_frame(layered: bool) -> dict[str, Any]:
    if not layered:
        return {"experiments": FRAME_EXPERIMENTS}
    return {
        "layers": [{"key": "L"}],
        "holdouts": [{"key": "global", "percent": 5}],
        "experiments": [
            {**e, "layer": "L", "layer_share": 20, "holdouts": ["global"]}
            for e in FRAME_EXPERIMENTS
        ],
    }


def frame_data(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    ids = rng.integers(0, 10**12, rows)
    return pd.DataFrame(
        {
            "user_id": pd.Series(np.char.add("user-", ids.astype(str)), dtype="str"),
            "user_int": ids,
            "country": pd.Series(rng.choice(["US", "CA", "DE", "FR"], rows), dtype="str"),
            "tier": pd.Series(rng.choice(["premium", "free"], rows), dtype="str"),
            "age": rng.integers(10, 80, rows),
        }
    )


# -- results ------------------------------------------------------------------------------------


@dataclass
class Latency:
    statement: str
    what: str
    median: float
    p99: float
    target: float | None = None


@dataclass
class FrameRow:
    name: str
    best: float  # seconds
    median: float


@dataclass
class Results:
    machine: dict[str, str] = field(default_factory=dict)
    command: str = ""
    latency: list[Latency] = field(default_factory=list)
    frame_rows: int = 0
    kernels: list[FrameRow] = field(default_factory=list)
    kernels_int: list[FrameRow] = field(default_factory=list)
    frames: list[FrameRow] = field(default_factory=list)
    scalar_batches: int = 0
    reps: int = 0
    peer_checks: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def find(self, statement: str) -> Latency | None:
        return next((x for x in self.latency if x.statement == statement), None)


# -- the benchmark ------------------------------------------------------------------------------


def gb_experiment() -> Any:
    return growthbook.Experiment(
        key="ranker-v2",
        variations=["control", "treatment"],
        weights=[0.5, 0.5],
        coverage=1.0,
        condition=GB_CONDITION,
    )


def check_peer(res: Results) -> None:
    """The two experiments are equivalent: the same requests match, and both split the units
    that match about 50/50 (each with its own hash)."""
    if growthbook is None:
        return
    sp = ts.Splitter(config_one())
    exp = gb_experiment()
    cases = {
        "all three clauses true": {"country": "US", "tier": "premium", "age": 30},
        "country outside the list": {"country": "DE", "tier": "premium", "age": 30},
        "another tier": {"country": "CA", "tier": "free", "age": 30},
        "age 17": {"country": "CA", "tier": "premium", "age": 17},
        "age missing": {"country": "US", "tier": "premium"},
    }
    for name, attrs in cases.items():
        ours = sp.assign("ranker-v2", UNIT, attrs).reason == "assigned"
        theirs = growthbook.GrowthBook(attributes={"id": UNIT, **attrs}).run(exp).inExperiment
        if ours != theirs:
            raise AssertionError(f"{name}: trafficsplit {ours}, GrowthBook {theirs}")
    n = 4_000
    ours = sum(sp.assign("ranker-v2", f"user-{i}", ATTRS).arm == "treatment" for i in range(n))
    theirs = sum(
        growthbook.GrowthBook(attributes={**GB_ATTRS, "id": f"user-{i}"}).run(exp).value
        == "treatment"
        for i in range(n)
    )
    for who, count in (("trafficsplit", ours), ("GrowthBook", theirs)):
        if abs(count / n - 0.5) > 0.05:
            raise AssertionError(f"{who} puts {count / n:.1%} in treatment, not about 50 %")
    res.peer_checks = [
        f"the same of {len(cases)} requests match ({', '.join(cases)})",
        f"treatment share among {n:,} matching users: trafficsplit {ours / n:.1%}, "
        f"GrowthBook {theirs / n:.1%}",
    ]


def bench_latency(res: Results, sizes: Sizes) -> None:
    sp = ts.Splitter(config_one())
    namespace: dict[str, Any] = {
        "sp": sp,
        "exp": sp.snapshot.experiments["ranker-v2"].experiment,
        "sp20": ts.Splitter(config_twenty()),
        "sp20plain": ts.Splitter(config_twenty_plain()),
        "attrs": ATTRS,
        "attrs_de": ATTRS_MISS,
        "UNIT": UNIT,
    }
    cases: list[tuple[str, str, float | None]] = [
        (
            'sp.assign("ranker-v2", UNIT, attrs)',
            "one experiment, 3-clause targeting, all true (assigned)",
            TARGET_ASSIGN_NS,
        ),
        (
            'sp.assign("ranker-v2", UNIT, attrs_de)',
            "the same, first clause false (targeting_miss)",
            None,
        ),
        (
            "exp.assign(UNIT, attributes=attrs)",
            "the same Experiment without the Splitter (context)",
            None,
        ),
        (
            "sp20.assign_all(UNIT, attrs)",
            "20 experiments: 2 layers, a holdout, 5 with the 3-clause rule",
            TARGET_ALL_NS,
        ),
        (
            "sp20plain.assign_all(UNIT, attrs)",
            "20 plain 50/50 experiments (context)",
            None,
        ),
        (
            'sp.flag("new-reranker", UNIT, attrs)',
            "bool flag: a rule that misses, then a 10 % rollout (context)",
            None,
        ),
    ]
    if growthbook is not None:
        namespace.update(
            {
                "gb": growthbook.GrowthBook(attributes=GB_ATTRS),
                "gb_exp": gb_experiment(),
                "GrowthBook": growthbook.GrowthBook,
                "Experiment": growthbook.Experiment,
                "GB_ATTRS": GB_ATTRS,
                "COND": GB_CONDITION,
            }
        )
        cases += [
            (
                "gb.run(gb_exp)",
                "GrowthBook: the same experiment, user context built once",
                None,
            ),
            (
                'gb.run(Experiment(key="ranker-v2", variations=["control", "treatment"], '
                "weights=[0.5, 0.5], coverage=1.0, condition=COND))",
                "GrowthBook: the Experiment built in each call",
                None,
            ),
            (
                "GrowthBook(attributes=GB_ATTRS).run(gb_exp)",
                "GrowthBook: a new user context per request",
                None,
            ),
        ]
    figures = scalar_latency([c[0] for c in cases], namespace, sizes.scalar_batches)
    res.scalar_batches = sizes.scalar_batches
    for (stmt, what, target), (median, p99) in zip(cases, figures, strict=True):
        res.latency.append(Latency(stmt, what, median, p99, target))
        print(f"  {stmt}: median {median:,.0f} ns, p99 {p99:,.0f} ns", flush=True)


def check_frame(df: pd.DataFrame) -> None:
    """assign_frame's columns are the raw kernels' answers, row for row."""
    sp = ts.Splitter(config_frame(layered=False))
    out = sp.assign_frame(df, "user_id")
    for key, e in sp.snapshot.experiments.items():
        exp = e.experiment
        b = exp.assign_batch(df["user_id"], attributes=df if exp._targeting is not None else None)
        codes = out[key].cat.codes.to_numpy()
        if not np.array_equal(codes, b.arm_index) or not np.array_equal(
            out[f"{key}_reason"].cat.codes.to_numpy(), b.reason
        ):
            raise AssertionError(f"assign_frame differs from assign_batch for {key}")


def bench_frame(res: Results, sizes: Sizes) -> None:
    df = frame_data(sizes.frame_rows)
    check_frame(df)
    res.frame_rows = len(df)
    res.reps = sizes.reps
    plain = ts.Splitter(config_frame(layered=False))
    layered = ts.Splitter(config_frame(layered=True))
    kernels: list[tuple[str, Callable[[], Any]]] = []
    kernels_int: list[tuple[str, Callable[[], Any]]] = []
    for key, e in plain.snapshot.experiments.items():
        exp = e.experiment
        attributes = df if exp._targeting is not None else None

        def kernel(exp: Any = exp, attributes: Any = attributes) -> Any:
            return exp.assign_batch(df["user_id"], attributes=attributes)

        def kernel_int(exp: Any = exp, attributes: Any = attributes) -> Any:
            return exp.assign_batch(df["user_int"], attributes=attributes)

        kernels.append((key, kernel))
        kernels_int.append((key, kernel_int))
    frames: list[tuple[str, Callable[[], Any]]] = [
        ("assign_frame, str ids", lambda: plain.assign_frame(df, "user_id")),
        ("assign_frame, int64 ids", lambda: plain.assign_frame(df, "user_int")),
        (
            "assign_frame, str ids, all 5 in a layer (20 % each) behind a 5 % holdout",
            lambda: layered.assign_frame(df, "user_id"),
        ),
    ]
    cases = kernels + kernels_int + frames
    times = time_interleaved([fn for _, fn in cases], sizes.reps)
    rows = [
        FrameRow(name, min(t), statistics.median(t))
        for (name, _), t in zip(cases, times, strict=True)
    ]
    k = len(kernels)
    res.kernels = rows[:k]
    res.kernels_int = rows[k : 2 * k]
    res.frames = rows[2 * k :]
    for row in rows:
        print(f"  {row.name}: best {row.best * 1e3:.1f} ms, median {row.median * 1e3:.1f} ms")


# -- reporting ----------------------------------------------------------------------------------


def _kernel_sum(rows: list[FrameRow]) -> tuple[float, float]:
    return sum(r.best for r in rows), sum(r.median for r in rows)


def peer_ratio(res: Results) -> float | None:
    ours = res.find('sp.assign("ranker-v2", UNIT, attrs)')
    theirs = res.find("gb.run(gb_exp)")
    if ours is None or theirs is None:
        return None
    return theirs.median / ours.median


def targets_summary(res: Results) -> list[str]:
    rows = []
    for x in res.latency:
        if x.target is not None:
            rows.append(
                [
                    f"`{x.statement}` median ({x.what})",
                    f"≤ {x.target:,.0f} ns",
                    f"{x.median:,.0f} ns",
                    mark(x.median <= x.target),
                ]
            )
    if res.frames:
        kernels, _ = _kernel_sum(res.kernels)
        frame = res.frames[0]
        ratio = frame.best / kernels
        rows.append(
            [
                f"`assign_frame`, {res.frame_rows:,} rows, 5 experiments ÷ the sum of their "
                "`assign_batch` kernels",
                f"≤ {TARGET_FRAME_RATIO:g}×",
                f"{ratio:.2f}× ({frame.best * 1e3:.0f} vs {kernels * 1e3:.0f} ms)",
                mark(ratio <= TARGET_FRAME_RATIO),
            ]
        )
    ratio = peer_ratio(res)
    theirs = res.find("gb.run(gb_exp)")
    ours = res.find('sp.assign("ranker-v2", UNIT, attrs)')
    if ratio is not None and theirs is not None and ours is not None:
        rows.append(
            [
                "GrowthBook `gb.run(Experiment)` ÷ `sp.assign` (the same experiment)",
                f"≥ {TARGET_PEER_RATIO:g}× (faster than the peer)",
                f"{ratio:.1f}× ({theirs.median:,.0f} vs {ours.median:,.0f} ns)",
                mark(ratio >= TARGET_PEER_RATIO),
            ]
        )
    elif growthbook is None:
        rows.append(["GrowthBook `gb.run(Experiment)` ÷ `sp.assign`", "≥ 1×", "not run", "✗"])
    return targets_table(rows)


def report(res: Results) -> list[str]:
    out = environment_lines(res.command, res.machine)
    out += targets_summary(res)

    out.append("### Per request, from Python (ns per call)")
    out.append("")
    out.append(
        "Each statement runs in batches of 1,000 (a bare `timeit` loop, so the loop's few ns "
        "are included); the figures are the median and 99th percentile of the per-call "
        f"averages of {res.scalar_batches:,} batches per statement, the statements "
        "interleaved batch by batch. `sp` is a `Splitter` of one experiment, "
        "`ranker-v2` (50/50), with the targeting rule "
        f"`{TARGETING}`; `attrs` holds those three attributes (all true), the user id and one "
        "more; `attrs_de` has `country` `DE`. `sp20` holds 20 50/50 experiments: 8 in a layer "
        "`search` and 8 in a layer `ranking` (12.5 % of the layer each), 4 outside any layer, "
        "all listing a 5 % holdout, and every fourth one with the same targeting rule. "
        "GrowthBook (`growthbook` "
        f"{res.machine.get('growthbook', '?')}): `gb = GrowthBook(attributes=...)` with the "
        "same attributes (`id` as the hash attribute) and `gb_exp = Experiment(key=..., "
        'variations=["control", "treatment"], weights=[0.5, 0.5], coverage=1.0, '
        f"condition={GB_CONDITION})`, the same rule in its Mongo-style conditions; no "
        "tracking callback."
    )
    out.append("")
    ours = res.find('sp.assign("ranker-v2", UNIT, attrs)')
    rows = []
    for x in res.latency:
        goal = f"median ≤ {x.target:,.0f} ns" if x.target else ""
        ok = None if x.target is None else x.median <= x.target
        versus = f"{x.median / ours.median:.1f}×" if ours is not None else ""
        rows.append(
            [
                f"`{x.statement}`",
                x.what,
                f"{x.median:,.0f}",
                f"{x.p99:,.0f}",
                versus,
                goal,
                mark(ok),
            ]
        )
    out += table(
        ["statement", "case", "median ns", "p99 ns", "÷ `sp.assign`", "target", "met"], rows
    )
    out.append("")
    if res.peer_checks:
        out.append("Checked before timing: " + "; ".join(res.peer_checks) + ".")
        out.append("")

    if res.frames:
        out.append(f"### `Splitter.assign_frame`, {res.frame_rows:,} rows, 5 experiments (ms)")
        out.append("")
        out.append(
            "The frame has a unit id column (`user_id`: `user-<12 digits>` in the pandas "
            "default `str` dtype; `user_int`: the same ids as int64) and the three targeting "
            "attributes. The 5 experiments: 50/50; 34/33/33 at exposure 0.5; 50/50 with the "
            "3-clause rule; 90/10; 50/50 at exposure 0.2 with the rule. The kernels are "
            "`Experiment.assign_batch(df[col], attributes=df)` of each experiment on the same "
            "column (attributes only for the targeted ones), whose sum is what `assign_frame` "
            "cannot avoid; `assign_frame` adds the copy of the frame and two categorical "
            "columns per experiment. Every call uses all cores (the default `threads=None`). "
            f"Best of {res.reps} interleaved repetitions (median in brackets); "
            "`assign_frame`'s columns were checked equal to the kernels' answers row by row."
        )
        out.append("")
        rows = []
        for r, ri in zip(res.kernels, res.kernels_int, strict=True):
            rows.append(
                [
                    f"`{r.name}.assign_batch`",
                    f"{r.best * 1e3:.1f} ({r.median * 1e3:.1f})",
                    f"{ri.best * 1e3:.1f} ({ri.median * 1e3:.1f})",
                    "",
                ]
            )
        kb, km = _kernel_sum(res.kernels)
        kib, kim = _kernel_sum(res.kernels_int)
        rows.append(
            [
                "sum of the 5 kernels",
                f"{kb * 1e3:.1f} ({km * 1e3:.1f})",
                f"{kib * 1e3:.1f} ({kim * 1e3:.1f})",
                "1.00×",
            ]
        )
        str_frame, int_frame, layered = res.frames
        rows.append(
            [
                "`sp.assign_frame(df, col)`",
                f"{str_frame.best * 1e3:.1f} ({str_frame.median * 1e3:.1f})",
                f"{int_frame.best * 1e3:.1f} ({int_frame.median * 1e3:.1f})",
                f"{str_frame.best / kb:.2f}× / {int_frame.best / kib:.2f}× "
                f"{mark(str_frame.best / kb <= TARGET_FRAME_RATIO)}",
            ]
        )
        rows.append(
            [
                "the same 5 in one layer (20 % each) behind a 5 % holdout (context)",
                f"{layered.best * 1e3:.1f} ({layered.median * 1e3:.1f})",
                "",
                f"{layered.best / kb:.2f}×",
            ]
        )
        out += table(["call", "str ids", "int64 ids", "÷ kernels (str / int64)"], rows)
        out.append("")
        rate = res.frame_rows * 5 / str_frame.best / 1e6
        out.append(
            f"`assign_frame` on the str column: {rate:.1f} M row-experiments/s. Target: within "
            f"{TARGET_FRAME_RATIO:g}× of the kernels (judged on the str column)."
        )
        out.append("")
    out.append(f"Benchmark run time: {res.seconds:.0f} s.")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, SECTION, argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()

    machine, command = start_run({"growthbook": dist_version("growthbook", "not installed")})
    res = Results(machine=machine, command=command)
    if growthbook is None:
        print("growthbook is not installed: its rows are skipped (pip install growthbook)")
    check_peer(res)
    print("per-request latency ...", flush=True)
    bench_latency(res, sizes)
    print("frames ...", flush=True)
    bench_frame(res, sizes)
    res.seconds = finish_run(res.machine, started)

    publish(report(res), args.markdown, SECTION, SECTION_TITLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
