#!/usr/bin/env python
"""Peer hashing modes benchmark: batch throughput of every mode beside ts1, and the peers' own
bucketing in Python (their SDKs' code path) on the same units.

Run from the repository root:

    .venv/bin/python benchmarks/bench_peer_modes.py [--quick] [--markdown docs/benchmarks.md]

``Experiment.assign_batch`` of 1,000,000 UUID strings (pyarrow) and 1,000,000 int64 ids, one
thread and all threads, two arms at 50/50 with each mode's default parameters (an exposure of
0.5 where the mode has one), the cases timed interleaved (best and median of the rounds). The
peers' side is each peer's bucketing as its Python SDK computes it, per unit: GrowthBook's
own ``growthbook.core.gbhash`` + ``getBucketRanges`` + ``chooseVariation`` (the PyPI package);
for the others the same hashlib / mmh3 calls their Python SDKs make (Unleash's UnleashClient
``normalized_hash``, Eppo's ``get_shard``, LaunchDarkly's ``_bucket_context``, Statsig's
sha256 of the salted id, flagd's in-process provider), without the rest of an SDK around them,
which would only add time. Every peer result is checked against the mode's on the sample.
``--markdown PATH`` writes (or replaces) the section between the ``bench_peer_modes`` markers.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import mmh3
import numpy as np
import pyarrow as pa

import trafficsplit as ts
from _common import (
    Rate,
    dist_version,
    environment_lines,
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

SEED = 20_261_208
SECTION = "bench_peer_modes"
SECTION_TITLE = "## Peer hashing modes: batch throughput beside ts1 and the peers' own code"
TARGET_ROWS_PER_S = 10e6  # every mode, one thread, UUID strings, AVX-512 and AVX2 alike
TARGET_TS1_RATIO = 5  # "the same speed class as ts1": at most this many times slower

MODES: list[tuple[str, Any, float]] = [
    ("ts1", "ts1", 0.5),
    ("growthbook-v1", "growthbook-v1", 0.5),
    ("growthbook-v2", "growthbook-v2", 0.5),
    ("growthbook-v2, utf8", {"mode": "growthbook-v2", "encoding": "utf8"}, 0.5),
    ("unleash", "unleash", 0.5),
    ("unleash, utf16-low-byte", {"mode": "unleash", "encoding": "utf16-low-byte"}, 0.5),
    ("flagd", "flagd", 1.0),
    ("flagd-legacy", "flagd-legacy", 1.0),
    ("eppo", "eppo", 0.5),
    ("launchdarkly", "launchdarkly", 1.0),
    ("launchdarkly, float32", {"mode": "launchdarkly", "arithmetic": "float32"}, 1.0),
    ("statsig", "statsig", 0.5),
]


def peer_functions() -> dict[str, Callable[[str], int]]:
    """Each peer's bucketing of one unit as its Python SDK computes it: the arm index (-1 for
    none) of the experiment ``exp`` at 50/50 with the modes' default parameters."""
    from growthbook.core import chooseVariation, gbhash, getBucketRanges

    def growthbook(version: int) -> Callable[[str], int]:
        ranges = getBucketRanges(2, 0.5, [0.5, 0.5])

        def f(u: str) -> int:
            return chooseVariation(gbhash("exp", u, version), ranges)

        return f

    def unleash(u: str) -> int:
        if mmh3.hash(f"exp:{u}", 0, signed=False) % 100 + 1 > 50:
            return -1
        return 0 if mmh3.hash(f"exp:{u}", 86028157, signed=False) % 1000 + 1 <= 500 else 1

    def flagd(u: str) -> int:
        return 0 if (mmh3.hash("exp" + u, 0, signed=False) * 100) >> 32 < 50 else 1

    def eppo(u: str) -> int:
        def shard(s: str) -> int:
            return int(hashlib.md5(s.encode()).hexdigest()[:8], 16) % 10_000

        if shard(f"exp-traffic-{u}") >= 5000:
            return -1
        return 0 if shard(f"exp-split-{u}") < 5000 else 1

    def launchdarkly(u: str) -> int:
        h = int(hashlib.sha1(f"exp.exp.{u}".encode()).hexdigest()[:15], 16)
        return 0 if h / float(0xFFFFFFFFFFFFFFF) < 0.5 else 1

    def statsig(u: str) -> int:
        def h(s: str) -> int:
            return int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "big")

        if h(f"exp.exp:rule.{u}") % 10_000 >= 5000:
            return -1
        return 0 if h(f"exp.{u}") % 1000 < 500 else 1

    return {
        "growthbook-v1": growthbook(1),
        "growthbook-v2": growthbook(2),
        "unleash": unleash,
        "flagd": flagd,
        "eppo": eppo,
        "launchdarkly": launchdarkly,
        "statsig": statsig,
    }


def uuid_column(n: int) -> pa.Array:
    rng = np.random.default_rng(SEED)
    return pa.array([str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**63, n)])


def avx2_only(n: int, reps: int) -> dict[str, float]:
    """The one-thread UUID case of every mode in a process capped at AVX2
    (TRAFFICSPLIT_SIMD=avx2), as on a machine without AVX-512: best M rows/s by mode."""
    code = (
        "import json, sys; sys.path.insert(0, 'benchmarks'); import bench_peer_modes as b; "
        f"print(json.dumps(b._rates_in_this_process({n}, {reps})))"
    )
    env = {**os.environ, "TRAFFICSPLIT_SIMD": "avx2"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _rates_in_this_process(n: int, reps: int) -> dict[str, float]:
    column = uuid_column(n)
    experiments = [
        ts.Experiment("exp", {"a": 50, "b": 50}, exposure, hashing=mode)
        for _, mode, exposure in MODES
    ]
    cases = [(n, lambda e=e: e.assign_batch(column, threads=1)) for e in experiments]
    found = rates(cases, reps)
    return {label: r.best for (label, _, _), r in zip(MODES, found, strict=True)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, SECTION, argv)
    n = 100_000 if args.quick else 1_000_000
    sample = 20_000 if args.quick else 100_000
    reps = 3 if args.quick else 5
    started = time.perf_counter()
    machine, command = start_run(
        {"growthbook": dist_version("growthbook"), "mmh3": dist_version("mmh3")}
    )
    rng = np.random.default_rng(SEED)
    with timed_step(f"{n:,} UUID strings and int64 ids"):
        uuids = uuid_column(n)
        ints = rng.integers(0, 2**62, n, dtype=np.int64)
    experiments = {
        label: ts.Experiment("exp", {"a": 50, "b": 50}, exposure, hashing=mode)
        for label, mode, exposure in MODES
    }
    results: dict[tuple[str, str, int], Rate] = {}
    for column_name, column in (("UUID strings", uuids), ("int64", ints)):
        for threads in (1, 0):
            with timed_step(f"{column_name}, threads={threads or 'all'}"):
                cases = [
                    (n, lambda e=e, c=column, t=threads: e.assign_batch(c, threads=t or None))
                    for e in experiments.values()
                ]
                for (label, _, _), rate in zip(MODES, rates(cases, reps), strict=True):
                    results[(label, column_name, threads)] = rate

    with timed_step("UUID strings, one thread, in a process capped at AVX2"):
        capped = avx2_only(n, reps)
    # The peers' own code on a sample, checked against the modes.
    peers = peer_functions()
    units = uuids.slice(0, sample).to_pylist()
    peer_rates: dict[str, float] = {}
    with timed_step(f"the peers' bucketing in Python on {sample:,} units"):
        for label, f in peers.items():
            got = experiments[label].assign_batch(units).arm_index
            t0 = time.perf_counter()
            want = [f(u) for u in units]
            seconds = time.perf_counter() - t0
            if not np.array_equal(got, want):
                bad = int(np.flatnonzero(got != np.array(want))[0])
                raise SystemExit(f"{label}: the mode and the peer disagree on {units[bad]!r}")
            peer_rates[label] = sample / seconds / 1e6
    seconds = finish_run(machine, started)

    ts1 = results[("ts1", "UUID strings", 1)].best
    rows = []
    for label, _, _ in MODES:
        r = [results[(label, c, t)] for c in ("UUID strings", "int64") for t in (1, 0)]
        peer = peer_rates.get(label) if "," not in label else None
        rows.append(
            [
                label,
                *[f"{x.best:.1f} ({x.median:.1f})" for x in r],
                f"{capped[label]:.1f}",
                f"{ts1 / r[0].best:.1f}×",
                "–" if peer is None else f"{peer:.2f}",
                "–" if peer is None else f"{r[0].best / peer:.0f}×",
            ]
        )
    peer_modes = [label for label, _, _ in MODES[1:]]
    slowest = min(
        min(results[(label, "UUID strings", 1)].best, capped[label]) for label in peer_modes
    )
    slowest_label = min(
        peer_modes, key=lambda x: min(results[(x, "UUID strings", 1)].best, capped[x])
    )
    ratio = max(ts1 / results[(label, "UUID strings", 1)].best for label in peer_modes)
    ratio_capped = max(capped["ts1"] / capped[label] for label in peer_modes)
    targets = [
        [
            "every peer mode, UUID strings, one thread, AVX-512 and AVX2",
            f"≥ {TARGET_ROWS_PER_S / 1e6:.0f} M rows/s",
            f"slowest {slowest:.1f} M ({slowest_label})",
            mark(slowest * 1e6 >= TARGET_ROWS_PER_S),
        ],
        [
            "the same speed class as ts1: ts1 ÷ slowest mode, one thread",
            f"≤ {TARGET_TS1_RATIO}×",
            f"{ratio:.1f}× (AVX2: {ratio_capped:.1f}×)",
            mark(max(ratio, ratio_capped) <= TARGET_TS1_RATIO),
        ],
    ]
    body = environment_lines(command, machine)
    body += targets_table(targets)
    body += [
        f"### Millions of rows per second, best (median) of {reps} interleaved rounds",
        "",
        *table(
            [
                "mode",
                "UUID, 1 thread",
                "UUID, all",
                "int64, 1 thread",
                "int64, all",
                "UUID, 1 thread, AVX2 only",
                "ts1 ÷ mode",
                "peer in Python",
                "mode ÷ peer",
            ],
            rows,
        ),
        "",
        f"{n:,} rows per case; the peer column is millions of units per second of the peer's "
        f"own bucketing in Python on {sample:,} of the UUIDs, whose arms equal the mode's on "
        f"every unit. The run took {seconds:.0f} s.",
        "",
    ]
    publish(body, args.markdown, SECTION, SECTION_TITLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
