"""The ``trafficsplit`` command line.

``validate FILE...`` checks configuration files or folders; ``plan OLD NEW`` shows what a
configuration change does to units; ``demo`` assigns synthetic users. Exit codes: 0 ok,
1 invalid configuration (every problem printed), 2 usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from . import __version__
from ._optional import require
from .config import ConfigValidationError, Snapshot, config_files, load_config
from .errors import ConfigError
from .experiment import Arm, Experiment


def _demo(args: argparse.Namespace) -> int:
    from . import stats

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

    from .analysis import Guardrail, analyze

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


def _load(paths: Sequence[str], problems: list[str]) -> Snapshot | None:
    """The snapshot of these files or folders (merged in order), or None with every problem
    appended to ``problems`` as ``file: path: message``."""
    try:
        return load_config(*paths)
    except ConfigValidationError as exc:
        problems.extend(str(issue) for issue in exc.issues)
    except ConfigError as exc:
        problems.append(f"{', '.join(paths)}: {exc}")
    except OSError as exc:
        problems.append(f"{exc.filename or ', '.join(paths)}: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        problems.append(f"{_undecodable(paths) or ', '.join(paths)}: not UTF-8 text ({exc.reason})")
    except Exception as exc:  # a configuration the validator did not expect
        problems.append(
            f"{', '.join(paths)}: could not be validated ({type(exc).__name__}: {exc}); "
            "this is a bug in trafficsplit's validation"
        )
    return None


def _undecodable(paths: Sequence[str]) -> str | None:
    for path in paths:
        try:
            files = config_files(path)
        except ConfigError:
            continue
        for f in files:
            try:
                f.read_bytes().decode("utf-8")
            except UnicodeDecodeError:
                return str(f)
            except OSError:
                continue
    return None


def _validate(args: argparse.Namespace) -> int:
    problems: list[str] = []
    snapshot = _load(args.files, problems)
    if snapshot is None:
        for problem in problems:
            print(problem)
        count = len(problems)
        print(f"invalid: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    print(
        f"ok: {len(snapshot.experiments)} experiments, {len(snapshot.flags)} flags, "
        f"version {snapshot.version}"
    )
    return 0


def _plan(args: argparse.Namespace) -> int:
    from .plan import plan

    problems: list[str] = []
    old = _load([args.old], problems)
    new = _load([args.new], problems)
    if old is None or new is None:
        for problem in problems:
            print(problem, file=sys.stderr)
        count = len(problems)
        print(f"invalid: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    result = plan(old, new)
    if args.json:
        print(json.dumps(dataclasses.asdict(result), indent=2))
    else:
        print(result)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code (usage errors return 2, as from the shell)."""
    parser = argparse.ArgumentParser(prog="trafficsplit", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"trafficsplit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="assign synthetic users to a three-arm experiment")
    demo.add_argument("--users", type=int, default=1_000_000, help="how many users (1,000,000)")
    demo.add_argument("--exposure", type=float, default=0.9, help="share that enters (0.9)")
    demo.add_argument("--seed", type=int, default=2026, help="seed of the synthetic ids")
    demo.set_defaults(run=_demo)
    validate = sub.add_parser(
        "validate",
        help="check configuration files or folders (merged in order, as one configuration)",
        description="Prints every problem, one per line as 'file: path: message', and exits 1; "
        "exits 0 with 'ok: N experiments, M flags, version V' when there is none.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="a YAML/JSON file or folder")
    validate.set_defaults(run=_validate)
    plan = sub.add_parser(
        "plan",
        help="show what changing the configuration from OLD to NEW does to units",
        description="Per experiment: the share of units exposed before and after, and the share "
        "that moves to another arm, enters or leaves; experiments added and removed; each "
        "layer's occupancy before and after; holdouts and flags that changed.",
    )
    plan.add_argument("old", metavar="OLD", help="the configuration in force (file or folder)")
    plan.add_argument("new", metavar="NEW", help="the configuration to compare (file or folder)")
    plan.add_argument("--json", action="store_true", help="print the figures as JSON")
    plan.set_defaults(run=_plan)
    try:
        args = parser.parse_args(argv)
        if getattr(args, "users", 1) < 1:
            parser.error("--users must be >= 1")
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # e.g. `trafficsplit validate ... | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
