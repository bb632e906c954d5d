#!/usr/bin/env python
"""Configuration loading benchmark: how long ``load_config`` (read, validate and compile in one
pass) takes for large generated configurations, as every hot reload pays it.

Run from the repository root:

    .venv/bin/python benchmarks/bench_config.py [--quick] [--markdown docs/benchmarks.md]

Each size is a YAML file of that many experiments, in two shapes: plain (a key and two
weighted arms, about 90 bytes an experiment, the shape the targets are set for) and rich (four
arms with payloads, a targeting expression, a layer for half, a holdout for a third, an
allocation history step for a tenth: about 500 bytes an experiment). The figure is the best of
several loads in this process, with the share spent in the YAML parser (libyaml's
``CSafeLoader`` when PyYAML has it) beside it. ``--markdown PATH``
writes (or replaces) the section between the ``bench_config`` markers in PATH.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from pathlib import Path

import yaml

import trafficsplit as ts
from _common import (
    PACKAGE_SOURCES,
    environment_lines,
    extension_built,
    finish_run,
    mark,
    parse_args,
    publish,
    start_run,
    table,
    targets_table,
)
from trafficsplit.config.files import read_file

SECTION = "bench_config"
SECTION_TITLE = "## Loading large configurations"

TARGETS_S = {2_000: 1.0, 20_000: 10.0}  # experiments -> seconds to load


def plain_configuration(n: int) -> str:
    """``n`` experiments of a key and two weighted arms."""
    doc = {
        "experiments": [
            {"key": f"exp-{i:05d}", "arms": {"control": 50, "treatment": 50}} for i in range(n)
        ]
    }
    return yaml.safe_dump(doc, sort_keys=False)


def configuration(n: int) -> str:
    """A YAML file of ``n`` rich experiments, written as people write them (block style)."""
    layers = [{"key": f"layer-{i}"} for i in range(max(1, n // 200))]
    holdouts = [{"key": "global", "percent": 5}]
    experiments = []
    for i in range(n):
        e: dict = {
            "key": f"exp-{i:05d}",
            "arms": {
                "control": {"weight": 40, "payload": {"model": "ranker-v1", "k": 10}},
                "a": {"weight": 20, "payload": {"model": "ranker-v2", "k": 10}},
                "b": {"weight": 20, "payload": {"model": "ranker-v2", "k": 20}},
                "c": {"weight": 20, "payload": {"model": "ranker-v3", "k": 20}},
            },
            "targeting": f'country in ["US", "CA"] and tier != "free" and app_build >= {i % 97}',
            "exposure": 0.5,
        }
        if i % 2 == 0:
            e["layer"] = f"layer-{(i // 2) % len(layers)}"
            e["layer_share"] = 0.5
        if i % 3 == 0:
            e["holdouts"] = ["global"]
        if i % 10 == 0:
            e["allocated_at"] = "2026-11-01T00:00:00Z"
            e["history"] = [
                {"at": "2026-10-01T00:00:00Z", "weights": {"control": 100, "a": 0, "b": 0, "c": 0}}
            ]
        experiments.append(e)
    doc = {"layers": layers, "holdouts": holdouts, "experiments": experiments}
    return yaml.safe_dump(doc, sort_keys=False)


def _without_gc(fn, *args):  # type: ignore[no-untyped-def]
    gc.disable()
    try:
        return fn(*args)
    finally:
        gc.enable()


def best_of(reps: int, fn) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, SECTION, argv)
    sizes = [2_000] if args.quick else [200, 2_000, 20_000]
    started = time.perf_counter()
    machine, command = start_run(
        {"libyaml": str(hasattr(yaml, "CSafeLoader"))},
        package={"trafficsplit extension built": extension_built()},
        git_sources=PACKAGE_SOURCES,
    )
    rows = []
    results = {}
    shapes = (("plain", plain_configuration), ("rich", configuration))
    with tempfile.TemporaryDirectory(prefix="bench-config-") as tmp:
        for (shape, make), n in ((s, n) for s in shapes for n in sizes):
            path = Path(tmp) / f"config-{shape}-{n}.yaml"
            path.write_text(make(n))
            reps = 3 if n >= 20_000 else 5
            load_s = best_of(reps, lambda p=path: ts.load_config(p))
            # Parsed alone as load_config parses it: with the garbage collector paused.
            parse_s = best_of(reps, lambda p=path: _without_gc(read_file, p))
            snapshot = ts.load_config(path)
            assert len(snapshot.experiments) == n
            results[(shape, n)] = load_s
            rows.append(
                [
                    shape,
                    f"{n:,}",
                    f"{path.stat().st_size / 1e6:.1f} MB",
                    f"{load_s:.3f} s",
                    f"{parse_s:.3f} s ({parse_s / load_s:.0%})",
                    f"{load_s / n * 1e6:.0f} µs",
                ]
            )
    seconds = finish_run(machine, started)
    targets = [
        [
            f"`load_config`, {n:,} plain experiments",
            f"< {limit:g} s",
            f"{results[('plain', n)]:.2f} s",
            mark(results[("plain", n)] < limit),
        ]
        for n, limit in TARGETS_S.items()
        if ("plain", n) in results
    ]
    body = environment_lines(command, machine)
    body += targets_table(targets)
    body += [
        "### Best of several loads in one process",
        "",
        *table(
            ["shape", "experiments", "file", "load_config", "YAML parsing", "per experiment"],
            rows,
        ),
        "",
        "Plain: a key and two weighted arms; rich: four arms with payloads and a targeting "
        "expression, half in a layer, a third in a holdout, a tenth with a history step. "
        f"The run took {seconds:.0f} s.",
        "",
    ]
    publish(body, args.markdown, SECTION, SECTION_TITLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
