"""The ``trafficsplit`` command line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from . import __version__, stats
from .experiment import Arm, Experiment


def _demo(args: argparse.Namespace) -> int:
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
    return 1 if check.mismatch else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trafficsplit", description=__doc__)
    parser.add_argument("--version", action="version", version=f"trafficsplit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="assign synthetic users to a three-arm experiment")
    demo.add_argument("--users", type=int, default=1_000_000, help="how many users (1,000,000)")
    demo.add_argument("--exposure", type=float, default=0.9, help="share that enters (0.9)")
    demo.add_argument("--seed", type=int, default=2026, help="seed of the synthetic ids")
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    if getattr(args, "users", 1) < 1:
        parser.error("--users must be >= 1")
    return int(args.run(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
