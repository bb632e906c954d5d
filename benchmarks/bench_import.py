#!/usr/bin/env python
"""Import benchmark: how long a fresh process takes to import trafficsplit and to validate a
configuration, next to numpy's import in the same run.

Run from the repository root:

    .venv/bin/python benchmarks/bench_import.py [--quick] [--markdown docs/benchmarks.md]

Each case is a new interpreter (``python -c ...`` or the ``trafficsplit`` console script),
timed end to end from the parent, started in interleaved rounds so that a burst of load from
another process lands on one repetition of many cases; the figure is the median. Bytecode
caches are written by a first, untimed round into a temporary folder (``PYTHONPYCACHEPREFIX``),
as ``pip install`` writes them for an installed wheel. ``--markdown PATH`` writes (or replaces)
the section between the ``bench_import`` markers in PATH and leaves the rest of the file alone.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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

SECTION = "bench_import"
SECTION_TITLE = "## Import and command-line start-up"

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "tests" / "data" / "config" / "example.yaml"
OPTIONAL = ("pandas", "pyarrow", "polars", "matplotlib", "opentelemetry", "scipy", "redis")

TARGET_IMPORT_OVER_NUMPY_MS = 50.0  # import trafficsplit − import numpy, medians
TARGET_VALIDATE_S = 0.5  # trafficsplit validate <example>, end to end

REPS_FULL = 21
REPS_QUICK = 5


def vector_units() -> str:
    """AVX-512 or AVX2, from the CPU's flags."""
    try:
        flags = next(
            line
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
        ).split()
    except (OSError, StopIteration):
        return "?"
    return "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "neither"


def cases() -> list[tuple[str, list[str]]]:
    python = sys.executable
    script = shutil.which("trafficsplit", path=str(Path(python).parent)) or ""
    out = [
        ("python -c pass (the interpreter alone)", [python, "-c", "pass"]),
        ("python -c 'import numpy'", [python, "-c", "import numpy"]),
        ("python -c 'import trafficsplit'", [python, "-c", "import trafficsplit"]),
        ("python -c 'import pandas' (for scale)", [python, "-c", "import pandas"]),
        (
            "python -m trafficsplit validate example.yaml",
            [python, "-m", "trafficsplit", "validate", str(EXAMPLE)],
        ),
    ]
    if script:
        out.append(("trafficsplit validate example.yaml", [script, "validate", str(EXAMPLE)]))
    return out


def run_all(commands: list[list[str]], reps: int, env: dict[str, str]) -> list[list[float]]:
    """Wall seconds of each command, ``reps`` interleaved rounds after one untimed round."""
    for cmd in commands:  # writes the bytecode caches
        subprocess.run(cmd, env=env, check=True, capture_output=True)
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(reps):
        for cmd, seconds in zip(commands, times, strict=True):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            seconds.append(time.perf_counter() - t0)
    return times


def loaded_after_import(env: dict[str, str]) -> list[str]:
    """The optional libraries in sys.modules after `import trafficsplit` (should be none)."""
    code = (
        "import json, sys, trafficsplit; "
        f"print(json.dumps(sorted(m for m in {OPTIONAL!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, SECTION, argv)
    reps = REPS_QUICK if args.quick else REPS_FULL
    started = time.perf_counter()
    machine, command = start_run(
        {"vector units": vector_units()},
        package={"trafficsplit extension built": extension_built()},
        git_sources=PACKAGE_SOURCES,
    )
    named = cases()
    with tempfile.TemporaryDirectory(prefix="bench-import-pyc-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        times = run_all([cmd for _, cmd in named], reps, env)
        loaded = loaded_after_import(env)
    seconds = finish_run(machine, started)
    medians = {name: statistics.median(t) for (name, _), t in zip(named, times, strict=True)}
    spread = {name: (min(t), max(t)) for (name, _), t in zip(named, times, strict=True)}

    numpy_s = medians["python -c 'import numpy'"]
    ts_s = medians["python -c 'import trafficsplit'"]
    validate_name = (
        "trafficsplit validate example.yaml"
        if "trafficsplit validate example.yaml" in medians
        else "python -m trafficsplit validate example.yaml"
    )
    validate_s = medians[validate_name]
    over_ms = (ts_s - numpy_s) * 1e3
    targets = [
        [
            "`import trafficsplit` − `import numpy` (medians)",
            f"≤ {TARGET_IMPORT_OVER_NUMPY_MS:.0f} ms",
            f"{over_ms:.0f} ms",
            mark(over_ms <= TARGET_IMPORT_OVER_NUMPY_MS),
        ],
        [
            f"`{validate_name}`, end to end",
            f"< {TARGET_VALIDATE_S} s",
            f"{validate_s:.3f} s",
            mark(validate_s < TARGET_VALIDATE_S),
        ],
        [
            "optional libraries imported by `import trafficsplit`",
            "none",
            ", ".join(loaded) or "none",
            mark(not loaded),
        ],
    ]
    rows = [
        [
            f"`{name}`",
            f"{medians[name] * 1e3:.0f} ms",
            f"{spread[name][0] * 1e3:.0f} – {spread[name][1] * 1e3:.0f} ms",
            f"{(medians[name] - medians[named[0][0]]) * 1e3:.0f} ms",
        ]
        for name, _ in named
    ]
    body = environment_lines(command, machine)
    body += targets_table(targets)
    body += [
        f"### Fresh processes, median of {reps} interleaved rounds",
        "",
        *table(["command", "median", "range", "over the bare interpreter"], rows),
        "",
        "The configuration is `tests/data/config/example.yaml` (four experiments, a layer, a "
        "holdout, rollouts and a flag). Bytecode caches were written by an untimed first round, "
        "as for an installed wheel. The machine is shared: the load averages above say how busy "
        f"it was; the run took {seconds:.0f} s.",
        "",
    ]
    publish(body, args.markdown, SECTION, SECTION_TITLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
