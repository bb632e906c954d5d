"""What the benchmark scripts share: the machine and command they ran on, the timing helpers, the
markdown table and target marks, the command line and the writer of a script's section of
docs/benchmarks.md.

Not a benchmark: the scripts import it (they run with benchmarks/ first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import importlib.metadata
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

import trafficsplit as ts

DOC_INTRO = (
    "# Benchmarks\n\n"
    "Every figure on this page is produced by a script in `benchmarks/`, run with the command "
    "shown in its section, on the machine shown there. Re-run the command to refresh a "
    "section; the other sections are left as they are.\n"
)


# The configuration of bench_duckdb and bench_spark: three experiments in a layer behind a
# holdout: ranker-v2 with a three-step allocation history
# and overrides, search-ui plain, ranker-us targeted.
SQL_AND_SPARK_CONFIG: dict[str, Any] = {
    "layers": [{"key": "ranking"}],
    "holdouts": [{"key": "global-2027", "percent": 5}],
    "experiments": [
        {
            "key": "ranker-v2",
            "layer": "ranking",
            "layer_share": 40,
            "holdouts": ["global-2027"],
            "exposure": 0.5,
            "arms": {"control": 50, "treatment": 50},
            "allocated_at": "2026-11-15T00:00:00Z",
            "history": [
                {"at": None, "weights": {"control": 90, "treatment": 10}},
                {"at": "2026-11-01T00:00:00Z", "weights": {"control": 70, "treatment": 30}},
            ],
            "overrides": {"treatment": ["qa-user-1", 42]},
        },
        {
            "key": "search-ui",
            "layer": "ranking",
            "layer_share": 20,
            "holdouts": ["global-2027"],
            "arms": {"control": 34, "compact": 33, "dense": 33},
        },
        {
            "key": "ranker-us",
            "layer": "ranking",
            "layer_share": 30,
            "holdouts": ["global-2027"],
            "targeting": 'country in ["US", "CA"]',
            "arms": {"control": 50, "treatment": 50},
        },
    ],
}


# -- measuring ----------------------------------------------------------------------------------


@dataclass
class Rate:
    rows: int
    seconds: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        """Millions of rows per second of the fastest repetition."""
        return self.rows / min(self.seconds) / 1e6

    @property
    def median(self) -> float:
        return self.rows / statistics.median(self.seconds) / 1e6

    @property
    def best_ms(self) -> float:
        return min(self.seconds) * 1e3


def time_interleaved(fns: list[Callable[[], Any]], reps: int) -> list[list[float]]:
    """Wall times in seconds of each ``fn()``, ``reps`` rounds after one warm-up round.

    Each round runs every function once, so that a burst of load from another process
    lands on one repetition of many cases rather than on every repetition of one case.
    """
    for fn in fns:
        fn()  # warm up: page in the input, first-call imports, allocator pools
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(reps):
        for fn, seconds in zip(fns, times, strict=True):
            gc.collect()
            t0 = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - t0)
    return times


@contextlib.contextmanager
def timed_step(what: str) -> Iterator[None]:
    """Prints ``<what> ...`` before the block and the seconds it took after it."""
    print(f"{what} ...", flush=True)
    t0 = time.perf_counter()
    yield
    print(f"  {time.perf_counter() - t0:.1f} s", flush=True)


def rates(cases: list[tuple[int, Callable[[], Any]]], reps: int) -> list[Rate]:
    """One Rate per (rows, fn) case, timed interleaved."""
    times = time_interleaved([fn for _, fn in cases], reps)
    return [Rate(rows, seconds) for (rows, _), seconds in zip(cases, times, strict=True)]


def scalar_latency(
    statements: list[str], namespace: dict[str, Any], batches: int, per_batch: int = 1_000
) -> list[tuple[float, float]]:
    """Median and p99 (ns) of the per-call average over ``batches`` batches of ``per_batch``
    executions of each statement (compiled into a bare loop by timeit, so no extra Python
    call wraps the one measured); batches of the different statements alternate."""
    timers = [timeit.Timer(stmt, globals=namespace) for stmt in statements]
    for timer in timers:
        timer.timeit(per_batch)
    averages: list[list[float]] = [[] for _ in timers]
    for _ in range(batches):
        for timer, avg in zip(timers, averages, strict=True):
            avg.append(timer.timeit(per_batch) / per_batch * 1e9)
    out = []
    for avg in averages:
        avg.sort()
        out.append((statistics.median(avg), avg[round(0.99 * (len(avg) - 1))]))
    return out


# -- environment --------------------------------------------------------------------------------


def dist_version(name: str, missing: str = "?") -> str:
    """The installed version of distribution ``name``, or ``missing``."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return missing


def git_revision(sources: Sequence[str] | None = None) -> str:
    """`` (git <commit>)`` of the checkout the package was imported from, if it is one, noting
    uncommitted changes to tracked files: anywhere in the checkout, or with ``sources`` only
    under those paths (relative to the top of the checkout)."""
    root = Path(ts.__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        if sources is None:
            dirty = git("status", "--porcelain", "--untracked-files=no")
            note = ", with local changes"
        else:
            top = git("rev-parse", "--show-toplevel")
            dirty = git("-C", top, "status", "--porcelain", "--untracked-files=no", "--", *sources)
            note = ", with local changes to the sources"
    except (OSError, subprocess.SubprocessError):
        return ""
    return f" (git {head}{note if dirty else ''})"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (raises OSError or AttributeError where there are
    none)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def add_load_average(info: dict[str, str], when: str) -> None:
    """Records ``load average at <when>`` in ``info``, where the system reports one."""
    with contextlib.suppress(OSError, AttributeError):
        info[f"load average at {when}"] = load_average()


# The package's sources (Python, C++, build files): uncommitted changes to them, and only to
# them, are noted beside the trafficsplit version when a script passes them as ``git_sources``.
PACKAGE_SOURCES = ("python", "cpp", "CMakeLists.txt", "pyproject.toml")


def extension_built() -> str:
    """Modification time (UTC) of the compiled extension that was imported, or ``?``."""
    try:
        from trafficsplit import _core

        when = dt.datetime.fromtimestamp(os.path.getmtime(_core.__file__), dt.UTC)
    except (ImportError, OSError, AttributeError, TypeError):
        return "?"
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def machine_info(
    libraries: Mapping[str, str] | None = None,
    *,
    package: Mapping[str, str] | None = None,
    git_sources: Sequence[str] | None = None,
) -> dict[str, str]:
    """CPU, cores, OS, Python, numpy, pandas and pyarrow; then ``libraries`` (the script's own
    peers), trafficsplit with its git revision (see :func:`git_revision` for
    ``git_sources``), ``package`` (more about trafficsplit) and the load average at start."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    info = {
        "CPU": model,
        "cores": f"{os.cpu_count()} logical, {usable} usable by this process",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
        **(libraries or {}),
        "trafficsplit": f"{ts.__version__}{git_revision(git_sources)}",
        **(package or {}),
    }
    add_load_average(info, "start")
    return info


def finish_run(machine: dict[str, str], started: float) -> float:
    """Records the load average at the end of the run in ``machine`` and returns the seconds
    since ``started`` (a ``time.perf_counter()`` reading): what a script's timing ends with."""
    add_load_average(machine, "end")
    return time.perf_counter() - started


def command_line() -> str:
    """The command that runs this script, the interpreter relative to the working directory."""
    exe = Path(sys.executable)
    with contextlib.suppress(ValueError):
        exe = exe.relative_to(Path.cwd())
    return shlex.join([str(exe), *sys.argv])


def start_run(
    libraries: Mapping[str, str] | None = None,
    *,
    package: Mapping[str, str] | None = None,
    git_sources: Sequence[str] | None = None,
) -> tuple[dict[str, str], str]:
    """The machine (:func:`machine_info`, with these arguments) and the command that runs this
    script (:func:`command_line`), both printed: what a script's ``main()`` starts with."""
    machine = machine_info(libraries, package=package, git_sources=git_sources)
    command = command_line()
    print(f"command: {command}")
    for k, v in machine.items():
        print(f"{k}: {v}")
    return machine, command


# -- reporting ----------------------------------------------------------------------------------


def mark(ok: bool | None) -> str:
    return "" if ok is None else ("✓" if ok else "✗")


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table: the first column left-aligned, the others right-aligned."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def environment_lines(command: str, machine: Mapping[str, str]) -> list[str]:
    """The opening of a section: the command and the machine."""
    out = ["Command:", "", f"    {command}", "", "Machine:", ""]
    out += [f"- {k}: {v}" for k, v in machine.items()]
    out.append("")
    return out


def targets_table(rows: list[list[str]]) -> list[str]:
    """``### Targets: <met> of <all> met`` and the table of (target, goal, measured, met) rows,
    a row counting as met when its last cell is ✓."""
    met = sum(r[-1] == "✓" for r in rows)
    out = [f"### Targets: {met} of {len(rows)} met", ""]
    out += table(["target", "goal", "measured", "met"], rows)
    out.append("")
    return out


# -- command line and output --------------------------------------------------------------------


def parse_args(doc: str | None, section: str, argv: list[str] | None) -> argparse.Namespace:
    """``--quick`` and ``--markdown PATH``; the description is the first line of ``doc``."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument(
        "--markdown",
        type=Path,
        metavar="PATH",
        help=f"write/replace the {section} section of this markdown file",
    )
    return parser.parse_args(argv)


def write_markdown(path: Path, section: str, title: str, body: list[str]) -> None:
    """Writes ``title`` and ``body`` between the ``<!-- section:start -->`` and
    ``<!-- section:end -->`` markers of ``path``, replacing what was there (or appending the
    section, to a new page if there is no file) and leaving the rest of the file alone."""
    mark_start, mark_end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    section_text = "\n".join([mark_start, title, "", *body, mark_end]) + "\n"
    text = path.read_text() if path.exists() else DOC_INTRO
    start, end = text.find(mark_start), text.find(mark_end)
    if start != -1 and end > start:
        tail = text[end + len(mark_end) :].lstrip("\n")
        text = text[:start] + section_text + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section_text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def publish(body: list[str], markdown: Path | None, section: str, title: str) -> None:
    """Prints the report and, with ``--markdown PATH``, writes it as the section of PATH."""
    print()
    print("\n".join(body))
    if markdown:
        write_markdown(markdown, section, title, body)
        print(f"\nwrote the {section} section of {markdown}")
