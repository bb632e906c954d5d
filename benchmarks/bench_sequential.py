#!/usr/bin/env python
"""Sequential-design benchmark: group-sequential boundaries and decisions at unplanned looks.

Run from the repository root:

    .venv/bin/python benchmarks/bench_sequential.py [--quick] [--markdown docs/benchmarks.md]

Times ``GroupSequential(...)`` (which computes the boundaries by the Jennison–Turnbull recursion)
for K = 10 equally spaced looks, O'Brien–Fleming-type and Pocock-type spending, one- and
two-sided; ``GroupSequential.decide`` with 10 looks at unplanned information fractions; and many
looks (K = 100, a daily look for 100 days). The peer is spotify-confidence's port of the R
package ldbounds (``sequential_bound_solver.bounds``: power spending alpha t^rho, trapezoid rule),
timed on the same design (rho = 2, two-sided 0.05) in the same run when it is installed; its
bounds are compared with ours. Figures are the median (and best) of interleaved repetitions.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from _common import (
    PACKAGE_SOURCES,
    dist_version,
    environment_lines,
    extension_built,
    finish_run,
    mark,
    parse_args,
    publish,
    start_run,
    table,
    targets_table,
    time_interleaved,
)
from trafficsplit.stats import GroupSequential

SECTION = "bench_sequential"
SECTION_TITLE = "## Sequential designs"

TARGET_MS = 10.0  # "boundaries for K = 10 in under 10 ms"
UNPLANNED = np.array([0.07, 0.16, 0.22, 0.35, 0.41, 0.58, 0.66, 0.79, 0.93, 1.04])


@dataclass
class Case:
    name: str
    fn: Callable[[], Any]
    target_ms: float | None = None
    seconds: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1e3

    @property
    def best_ms(self) -> float:
        return min(self.seconds) * 1e3


def spotify_solver() -> ModuleType | None:
    """spotify-confidence's bound solver, loaded from its file: the package's __init__ imports
    the plotting stack (chartify, bokeh), which the solver itself does not need."""
    spec = importlib.util.find_spec("spotify_confidence")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = (
        Path(next(iter(spec.submodule_search_locations)))
        / "analysis"
        / "frequentist"
        / "sequential_bound_solver.py"
    )
    if not path.exists():
        return None
    mod_spec = importlib.util.spec_from_file_location("_spotify_bound_solver", path)
    if mod_spec is None or mod_spec.loader is None:
        return None
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
    except ImportError:
        return None
    return module


def spotify_bounds(solver: ModuleType, t: np.ndarray, max_nints: int | None) -> np.ndarray:
    res = solver.bounds(t, alpha=0.05, rho=2.0, ztrun=8.0, sides=2, max_nints=max_nints)
    return np.asarray(res.df["zb"].to_numpy(dtype=float))


def spotify_works(solver: ModuleType | None) -> str:
    """'' when the solver runs here, else why not."""
    if solver is None:
        return "not installed"
    try:
        spotify_bounds(solver, np.array([0.5, 1.0]), None)
    except Exception as e:
        return f"fails here: {type(e).__name__}: {e}"
    return ""


def gsdesign_module() -> ModuleType | None:
    try:
        import gsdesign
    except ImportError:
        return None
    return gsdesign


def gsdesign_obf_bounds(gs: ModuleType, t: np.ndarray, alpha: float, r: int = 18) -> np.ndarray:
    """One-sided Lan–DeMets O'Brien–Fleming bounds assembled from the PyPI package gsdesign
    (numpy port of gsDesign's gridpts/h1/hupdate) with scipy's brentq and normal tail: what a
    Python user of that package writes, the same algorithm and grid as ours."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    spent = 2 * norm.sf(norm.isf(alpha / 2) / np.sqrt(t))
    bounds = [float(norm.isf(spent[0]))]
    grid = gs.h1(r=r, theta=0.0, info=t[0], a=-np.inf, b=bounds[0])
    for k in range(1, t.size):
        z_prev, _, h_prev = grid
        sd = np.sqrt(t[k] - t[k - 1])
        target = spent[k] - spent[k - 1]

        def excess(b: float, z_prev=z_prev, h_prev=h_prev, sd=sd, k=k, target=target) -> float:
            tail = norm.sf((b * np.sqrt(t[k]) - z_prev * np.sqrt(t[k - 1])) / sd)
            return float(h_prev @ tail) - target

        bounds.append(brentq(excess, -10.0, 40.0, xtol=1e-12))
        grid = gs.hupdate(r, 0.0, t[k], -np.inf, bounds[-1], 0.0, t[k - 1], grid)
    return np.asarray(bounds)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, SECTION, argv)
    reps = 5 if args.quick else 41
    started = time.perf_counter()
    solver = spotify_solver()
    spotify_problem = spotify_works(solver)
    gs = gsdesign_module()
    machine, command = start_run(
        {
            "spotify-confidence": dist_version("spotify-confidence", "not installed"),
            "gsdesign (PyPI)": dist_version("gsdesign", "not installed"),
            "scipy": dist_version("scipy", "not installed"),
        },
        package={"trafficsplit extension built": extension_built()},
        git_sources=PACKAGE_SOURCES,
    )

    t10 = np.arange(1, 11) / 10
    t100 = np.arange(1, 101) / 100
    design = GroupSequential(10, sides=2)
    z10 = np.linspace(0.2, 1.9, 10)
    cases = [
        Case("K=10 O'Brien–Fleming-type, one-sided", lambda: GroupSequential(10), TARGET_MS),
        Case(
            "K=10 O'Brien–Fleming-type, two-sided",
            lambda: GroupSequential(10, sides=2),
            TARGET_MS,
        ),
        Case(
            "K=10 Pocock-type, one-sided",
            lambda: GroupSequential(10, spending="pocock"),
            TARGET_MS,
        ),
        Case(
            "K=10 Pocock-type, two-sided",
            lambda: GroupSequential(10, sides=2, spending="pocock"),
            TARGET_MS,
        ),
        Case(
            "K=10 power rho=2, two-sided (peer's design)",
            lambda: GroupSequential(10, sides=2, spending="power", rho=2),
        ),
        Case(
            "decide: 10 unplanned looks, OBF two-sided",
            lambda: design.decide(z10, UNPLANNED),
            TARGET_MS,
        ),
        Case("K=100 O'Brien–Fleming-type, two-sided", lambda: GroupSequential(100, sides=2)),
        Case(
            "K=10 classic Pocock (constant solved)",
            lambda: GroupSequential(10, spending="classic-pocock"),
        ),
        Case("inflation(0.8), K=10 OBF two-sided", lambda: design.inflation(0.8)),
    ]
    if gs is not None:
        cases.append(
            Case(
                "gsdesign + scipy K=10 O'Brien–Fleming-type, one-sided",
                lambda: gsdesign_obf_bounds(gs, t10, 0.025),
            )
        )
    if solver is not None and not spotify_problem:
        cases += [
            Case("spotify-confidence K=10 power rho=2", lambda: spotify_bounds(solver, t10, None)),
            Case(
                "spotify-confidence K=10, max_nints=1000",
                lambda: spotify_bounds(solver, t10, 1000),
            ),
        ]
        if not args.quick:
            cases.append(
                Case(
                    "spotify-confidence K=100, max_nints=1000",
                    lambda: spotify_bounds(solver, t100, 1000),
                )
            )
    times = time_interleaved([c.fn for c in cases], reps)
    for c, s in zip(cases, times, strict=True):
        c.seconds = s
        print(f"  {c.name}: median {c.median_ms:.2f} ms (best {c.best_ms:.2f})", flush=True)

    # Accuracy: default grid (r = 18) against a fine one (r = 60), and against the peer.
    fine = GroupSequential(10, sides=2, grid=60).boundaries()
    grid_err = float(np.max(np.abs(GroupSequential(10, sides=2).boundaries() - fine)))
    ours_power = GroupSequential(10, sides=2, spending="power", rho=2).boundaries()
    peer_diff = gs_diff = None
    if gs is not None:
        gs_diff = float(
            np.max(np.abs(gsdesign_obf_bounds(gs, t10, 0.025) - GroupSequential(10).boundaries()))
        )
    if solver is not None and not spotify_problem:
        peer_diff = float(np.max(np.abs(spotify_bounds(solver, t10, None) - ours_power)))
    elapsed = finish_run(machine, started)

    out = environment_lines(command, machine)
    target_rows = [
        [
            c.name,
            f"median < {c.target_ms:g} ms",
            f"{c.median_ms:.2f} ms",
            mark(c.median_ms < c.target_ms),
        ]
        for c in cases
        if c.target_ms is not None
    ]
    target_rows.append(
        [
            "K=10 bounds accurate to 1e-4 (r = 18 vs r = 60)",
            "< 1e-4",
            f"{grid_err:.1e}",
            mark(grid_err < 1e-4),
        ]
    )
    out += targets_table(target_rows)
    out += ["### Time per call (ms)", ""]
    out.append(
        f"Median and best of {reps} interleaved repetitions. `GroupSequential(...)` computes the "
        "bounds at construction (J&T grid r = 18, Simpson rule, root finding per look). "
        f"Unplanned looks: information fractions {UNPLANNED.tolist()} (the last one > 1 is the "
        "final look). Peers: the same one-sided O'Brien–Fleming-type design assembled from the "
        "PyPI package gsdesign (numpy port of gsDesign's grid and density update) with scipy's "
        "brentq; spotify-confidence's ldbounds port on the power-family design (alpha t^2, "
        "two-sided 0.05, truncation at 8), when it runs."
    )
    out.append("")
    pairs = {
        "K=10 power rho=2, two-sided (peer's design)": "spotify-confidence K=10 power rho=2",
        "K=10 O'Brien–Fleming-type, one-sided": (
            "gsdesign + scipy K=10 O'Brien–Fleming-type, one-sided"
        ),
    }
    by_name = {c.name: c for c in cases}
    rows = []
    for c in cases:
        ratio = ""
        peer = by_name.get(pairs.get(c.name, ""))
        if peer is not None:
            ratio = f"{peer.median_ms / c.median_ms:.1f}× faster than `{peer.name.split(' K=')[0]}`"
        rows.append([c.name, f"{c.median_ms:.2f}", f"{c.best_ms:.2f}", ratio])
    out += table(["case", "median ms", "best ms", "vs peer"], rows)
    out.append("")
    out.append(
        f"Largest difference of the K = 10 two-sided OBF bounds between grid r = 18 and r = 60: "
        f"{grid_err:.1e}."
    )
    if gs_diff is not None:
        out.append(
            f"Largest difference from the bounds assembled from gsdesign (same grid, r = 18): "
            f"{gs_diff:.1e}."
        )
    if peer_diff is not None:
        out.append(
            f"Largest difference from spotify-confidence's bounds for the same power-family "
            f"design: {peer_diff:.1e} (its trapezoid rule with step 0.05·√Δ)."
        )
    else:
        out.append(f"spotify-confidence {spotify_problem}: no timing of it in this run.")
    out.append("")
    out.append(f"Run time: {elapsed:.0f} s.")
    publish(out, args.markdown, SECTION, SECTION_TITLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
