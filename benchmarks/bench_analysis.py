#!/usr/bin/env python
"""Analysis benchmark: trafficsplit.analyze on 10 M units × 5 metrics, against the same
comparisons done with pandas groupby + scipy's Welch test, in the same run.

Run from the repository root:

    .venv/bin/python benchmarks/bench_analysis.py [--quick] [--markdown docs/benchmarks.md]

The data (fixed seed): an arm column with 3 arms (as a pandas categorical, as assignment frames
produce, and as plain strings), 5 float64 metrics, one of them with a pre-period covariate
(CUPED) and one ratio metric. Timings are the best of several interleaved repetitions (the
median is shown too). ``--markdown PATH`` writes (or replaces) the section between the
``bench_analysis`` markers in PATH and leaves the rest of the file alone.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

import trafficsplit as ts
from _common import (
    dist_version,
    environment_lines,
    finish_run,
    mark,
    parse_args,
    publish,
    start_run,
    table,
    targets_table,
    time_interleaved,
)

SEED = 20_261_126
SECTION = "bench_analysis"
SECTION_TITLE = "## Analysis: analyze() on 10 M units × 5 metrics"
TARGET_SECONDS = 2.0


@dataclass(frozen=True)
class Sizes:
    rows: int
    reps: int


FULL = Sizes(rows=10_000_000, reps=5)
QUICK = Sizes(rows=300_000, reps=2)

METRICS = ["revenue", "sessions", "converted", "latency", "minutes"]


def make_data(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    codes = rng.integers(0, 3, size=rows, dtype=np.int8)
    arm = pd.Categorical.from_codes(codes, categories=["control", "a", "b"])
    pre = rng.gamma(2.0, 5.0, size=rows)
    return pd.DataFrame(
        {
            "arm": arm,
            "revenue": 0.8 * pre + rng.normal(0, 3, size=rows),
            "revenue_pre": pre,
            "sessions": rng.poisson(4, size=rows).astype(np.float64),
            "converted": (rng.random(rows) < 0.1).astype(np.float64),
            "latency": rng.lognormal(3.0, 0.4, size=rows),
            "minutes": rng.exponential(12.0, size=rows),
        }
    )


def run_ours(df: pd.DataFrame) -> ts.Analysis:
    return ts.analyze(
        df,
        metrics=METRICS,
        covariates={"revenue": "revenue_pre"},
        ratio_metrics={"minutes_per_session": ("minutes", "sessions")},
        guardrails={"latency": 0.05},
    )


def run_plain(df: pd.DataFrame) -> ts.Analysis:
    return ts.analyze(df, metrics=METRICS)


def run_pandas_scipy(df: pd.DataFrame) -> list[float]:
    """What an analyst writes by hand: per-arm count/mean/var with groupby, Welch's test from
    the summary statistics with scipy (no CUPED, no ratio metric, no guardrail)."""
    g = df.groupby("arm", observed=True)[METRICS].agg(["count", "mean", "var"])
    out = []
    for m in METRICS:
        c = g.loc["control", m]
        for a in ("a", "b"):
            t = g.loc[a, m]
            r = sps.ttest_ind_from_stats(
                t["mean"],
                np.sqrt(t["var"]),
                t["count"],
                c["mean"],
                np.sqrt(c["var"]),
                c["count"],
                equal_var=False,
            )
            out.append(float(r.pvalue))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, SECTION, argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    machine, command = start_run({"scipy": dist_version("scipy")})
    df = make_data(sizes.rows)
    df_str = df.assign(arm=df["arm"].astype(str).astype(object))

    # the same numbers both ways
    ours = run_plain(df)
    ref = run_pandas_scipy(df)
    got = [r.pvalue for r in ours.results if r.kind == "metric"]
    agree = float(np.max(np.abs(np.array(got) - np.array(ref)) / np.maximum(np.array(ref), 1e-300)))
    print(f"p-values agree with pandas+scipy to {agree:.1e} relative")

    fns = [
        lambda: run_ours(df),
        lambda: run_plain(df),
        lambda: run_ours(df_str),
        lambda: run_pandas_scipy(df),
    ]
    print("timing ...", flush=True)
    times = time_interleaved(fns, sizes.reps)
    elapsed = finish_run(machine, started)
    names = [
        "analyze: 5 metrics + CUPED + ratio + guardrail, categorical arm",
        "analyze: 5 metrics (Welch), categorical arm",
        "analyze: 5 metrics + CUPED + ratio + guardrail, string arm",
        "pandas groupby(count, mean, var) + scipy Welch, 5 metrics",
    ]
    rows = [
        [n, f"{min(t):.3f}", f"{statistics.median(t):.3f}"]
        for n, t in zip(names, times, strict=True)
    ]
    best = min(times[0])
    body = environment_lines(command, machine)
    body += [
        f"{sizes.rows:,} units, 3 arms; p-values equal pandas+scipy's to {agree:.1e} relative.",
        "",
    ]
    body += table(["statement", "best s", "median s"], rows)
    body.append("")
    ok = best < TARGET_SECONDS if not args.quick else None
    body += targets_table(
        [
            [
                "analyze 10 M rows × 5 metrics",
                f"< {TARGET_SECONDS:g} s",
                f"{best:.2f} s (pandas+scipy, fewer methods: {min(times[3]):.2f} s)",
                mark(ok),
            ]
        ]
    )
    body.append(f"Total benchmark time {elapsed:.0f} s.")
    publish(body, args.markdown, SECTION, SECTION_TITLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
