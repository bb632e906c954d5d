"""``trafficsplit demo``: assigns synthetic users to a three-arm experiment, checks the
sample ratio and analyses simulated outcomes."""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from .. import __version__
from .._optional import require
from ..experiment import Arm, Experiment
from ._args import count


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="assign synthetic users to a three-arm experiment")
    demo.add_argument("--users", type=count, default=1_000_000, help="how many users (1,000,000)")
    demo.add_argument("--exposure", type=float, default=0.9, help="share that enters (0.9)")
    demo.add_argument("--seed", type=int, default=2026, help="seed of the synthetic ids")
    demo.set_defaults(run=_demo)


def _demo(args: argparse.Namespace) -> int:
    from .. import stats

    exp = Experiment(
        "ranker-v2",
        [
            Arm("control", 50, {"model": "ranker-v1"}),
            Arm("challenger-a", 30, {"model": "ranker-v2"}),
            Arm("challenger-b", 20, {"model": "ranker-v2-distilled"}),
        ],
        exposure=args.exposure,
    )
    n = args.users
    rng = np.random.default_rng(args.seed)
    users = rng.integers(0, 2**62, n, dtype=np.int64)
    print(f"trafficsplit {__version__} demo: {exp!r}")
    print(
        f"assigning {n:,} synthetic users (int64 ids, seed {args.seed}) "
        f"on {os.cpu_count()} cores ..."
    )
    start = time.perf_counter()
    result = exp.assign_batch(users)
    elapsed = time.perf_counter() - start
    counts = result.counts()
    entered = sum(counts.values())
    print()
    print(f"{'arm':<14}{'users':>12}{'share':>10}{'expected':>10}   payload")
    for arm in exp.arms:
        share = counts[arm.name] / entered if entered else 0.0
        print(
            f"{arm.name:<14}{counts[arm.name]:>12,}{share:>10.3%}{arm.weight / 100:>10.3%}"
            f"   {dict(arm.payload)}"
        )
    print(
        f"{'not exposed':<14}{n - entered:>12,}{(n - entered) / n:>10.3%}{1 - exp.exposure:>10.3%}"
    )
    check = stats.srm(counts, exp.weights)
    verdict = "MISMATCH" if check.mismatch else "ok"
    print()
    print(
        f"sample-ratio check: chi-square = {check.statistic:.3f}, df = {check.df}, "
        f"p = {check.pvalue:.4f} -> {verdict} (flags at p < {check.alpha})"
    )
    print(f"time: {elapsed * 1e3:.1f} ms for {n:,} users ({n / elapsed / 1e6:.1f} M users/s)")
    one = exp.assign("user-42")
    print(
        f"one request: exp.assign('user-42') -> arm={one.arm!r}, bucket={one.bucket}, "
        f"reason={one.reason!r}"
    )
    if entered >= 100:
        try:
            _demo_analysis(exp, result, rng)
        except ImportError as exc:  # the analysis needs pandas, an extra
            print(f"\nanalysis skipped: {exc}")
    return 1 if check.mismatch else 0


def _demo_analysis(exp: Experiment, result: object, rng: np.random.Generator) -> None:
    """Simulated outcomes for the assigned users, analysed as an analyst would."""
    pd = require("pandas", what="the demo's analysis")

    from ..analysis import Guardrail, analyze

    idx = result.arm_index  # type: ignore[attr-defined]
    idx = idx[idx >= 0].astype(np.int64)
    n = len(idx)
    arm = pd.Categorical.from_codes(idx, categories=list(exp.arm_names))
    a, b = idx == 1, idx == 2
    pre = rng.gamma(3.0, 10.0, n)  # minutes last month: the CUPED covariate
    converted = rng.random(n) < np.where(a, 0.104, 0.100)  # +4 % relative on challenger-a
    minutes = 0.8 * pre + rng.normal(0.0, 8.0, n) + np.where(a, 0.3, 0.0)  # +1.25 % on a
    latency = rng.lognormal(np.log(80.0), 0.3, n) * np.where(b, 1.08, 1.0)  # b is 8 % slower
    df = pd.DataFrame(
        {
            "arm": arm,
            "converted": converted,
            "minutes": minutes,
            "minutes_pre": pre,
            "latency_ms": latency,
        }
    )
    print()
    print(
        f"simulated outcomes for the {n:,} exposed users (challenger-a converts 4 % more, "
        "and watches 1.25 % longer, challenger-b answers 8 % slower); analysis:"
    )
    start = time.perf_counter()
    res = analyze(
        df,
        metrics=["converted", "minutes"],
        covariates={"minutes": "minutes_pre"},
        guardrails={"latency_ms": Guardrail(0.05)},
        weights=exp.weights,
    )
    took = time.perf_counter() - start
    print()
    print(
        f"{'metric':<12}{'arm':<14}{'mean':>10}{'rel. lift':>11}{'95 % CI':>20}{'p':>10}   decision"
    )
    for r in res.results:
        rel = r.relative
        ci = f"[{rel.ci[0]:+.1%}, {rel.ci[1]:+.1%}]" if rel else ""
        print(
            f"{r.metric:<12}{r.arm:<14}{r.mean:>10.4g}{rel.estimate if rel else 0:>+11.2%}"
            f"{ci:>20}{r.adjusted_pvalue:>10.3g}   {r.decision}"
            + (f" (CUPED: variance -{r.variance_reduction:.0%})" if r.variance_reduction else "")
        )
    print(
        f"analysis time: {took * 1e3:.0f} ms; p is Holm-adjusted for metrics and the "
        "non-inferiority p-value (5 % margin) for the latency guardrail"
    )
