"""``trafficsplit assign``: a streaming backfill of a Parquet/CSV file or dataset
(:func:`trafficsplit.backfill` on the command line), with a progress bar, a summary and the
sample-ratio check per experiment."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

from ..errors import Error
from ._args import count, names

EPILOG = """\
examples:
  trafficsplit assign --config experiments.yaml --input users.parquet --unit user_id \\
      --output assignments.parquet
  trafficsplit assign --config conf/ --input events/ --unit user_id --at-column ts \\
      --experiments ranker-v2,search-ui --keep user_id,ts,country --output replay.parquet

The output has, per experiment KEY, the columns KEY (the arm; empty when the row got none),
KEY_bucket and KEY_reason. It is written under a temporary name and renamed when complete: an
interrupted run (Ctrl-C, kill) leaves no output. Exit codes: 0 written; 2 nothing written (a
missing file or column, a wrong column type, a bad configuration); 130/143 interrupted.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "assign",
        help="assign every row of a Parquet/CSV file or dataset (a backfill) and write Parquet",
        description="Reads the input in streaming batches (memory bounded by --batch-rows, "
        "whatever the input's size), assigns each row exactly as a server would (holdouts, "
        "layers, targeting, overrides, the allocation in force at the row's time) and writes "
        "Parquet. Prints a summary: rows, time, and per experiment the rows per arm against "
        "the configured shares with the sample-ratio check.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        required=True,
        metavar="PATH",
        nargs="+",
        help="configuration file(s) or folder(s), merged in order: conf/experiments.yaml",
    )
    p.add_argument(
        "--input",
        required=True,
        metavar="PATH",
        help="a .parquet or .csv file, or a folder of them: users.parquet, events/",
    )
    p.add_argument(
        "--unit",
        required=True,
        metavar="COLUMN",
        help="the column of unit ids (text or integers): user_id",
    )
    p.add_argument(
        "--output",
        required=True,
        metavar="PATH",
        help="the Parquet file to write (replaced only when complete): out.parquet",
    )
    p.add_argument(
        "--experiments",
        metavar="KEYS",
        type=names,
        help="comma-separated experiment keys (default: every experiment): a,b",
    )
    when = p.add_mutually_exclusive_group()
    when.add_argument(
        "--at-column",
        metavar="COLUMN",
        help="replay the allocation in force at each row's time (a timestamp, "
        "date or ISO 8601 text column): event_time",
    )
    when.add_argument(
        "--at", metavar="TIME", help="one time for every row instead of now: 2026-11-20T00:00:00Z"
    )
    p.add_argument(
        "--attributes-from",
        metavar="COLUMNS",
        type=names,
        help="columns targeting reads (default: those the targeting names): country,tier",
    )
    p.add_argument(
        "--keep",
        metavar="COLUMNS",
        help="input columns copied to the output, comma-separated, or '*' for all "
        "(default: the unit and time columns): user_id,country",
    )
    p.add_argument(
        "--exposures",
        metavar="DIR",
        help="also write an exposure record per row that got an arm, as Parquet "
        "files in DIR (moved in when complete)",
    )
    p.add_argument(
        "--format",
        choices=("parquet", "csv"),
        dest="input_format",
        help="the input's format when its name does not tell",
    )
    p.add_argument(
        "--compression",
        default="auto",
        choices=("auto", "snappy", "zstd", "lz4", "gzip", "brotli", "none"),
        help="the output's Parquet codec (default: auto, snappy for the kept columns it "
        "shrinks by at least 15 %%, uncompressed for the rest: random ids, buckets, arm and "
        "reason codes; zstd is smaller, none is fastest)",
    )
    p.add_argument(
        "--threads",
        type=count,
        metavar="N",
        help="threads of the assignment kernels (default: the cores less two, at least one; "
        "reading and writing have threads of their own)",
    )
    p.add_argument(
        "--batch-rows",
        type=count,
        default=1 << 20,
        metavar="N",
        help="rows per batch; memory grows with it (default: 1048576)",
    )
    p.add_argument(
        "--progress-every",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="when standard error is not a terminal, a progress line this often (default: 10)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress, only the summary")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=_assign)


# Arrow's allocator (mimalloc) returns freed memory to the system 10 ms after it is freed; a
# backfill frees and allocates its batches' buffers every tenth of a second, and memory handed
# back and touched again is zeroed again (on the benchmarks' virtual machine, fetched again from
# the host too). Kept for a second, it is reused as it is. Effective only before pyarrow is
# loaded, which this command does after; the user's own setting wins.
ALLOCATOR = {"MIMALLOC_PURGE_DELAY": "1000"}


def _assign(args: argparse.Namespace) -> int:
    if "pyarrow" not in sys.modules:
        for name, value in ALLOCATOR.items():
            os.environ.setdefault(name, value)
    from .._backfill import backfill
    from ..config import ConfigValidationError, load_config

    keep: Any = None
    if args.keep is not None:
        keep = "*" if args.keep.strip() == "*" else names(args.keep)
    try:
        snapshot = load_config(*args.config)
    except ConfigValidationError as exc:
        for issue in exc.issues:
            print(f"trafficsplit assign: {issue}", file=sys.stderr)
        return 2
    except (Error, OSError) as exc:
        return _fail(exc)
    reporter = _Progress(args.quiet, args.progress_every)
    try:
        with _terminated_as_interrupt(), reporter:
            summary = backfill(
                snapshot,
                args.input,
                args.output,
                args.unit,
                experiments=args.experiments,
                at_column=args.at_column,
                at=args.at,
                attributes=args.attributes_from,
                keep=keep,
                threads=args.threads,
                exposures=args.exposures,
                input_format=args.input_format,
                compression=args.compression,
                batch_rows=args.batch_rows,
                progress=reporter,
            )
    except KeyboardInterrupt as exc:
        code = 143 if getattr(exc, "signal", None) == signal.SIGTERM else 130
        print("trafficsplit assign: interrupted; nothing written", file=sys.stderr)
        return code
    except (Error, OSError, ImportError) as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(_as_json(summary), indent=2))
    else:
        print(summary)
    if summary.mismatch:
        print(
            "trafficsplit assign: warning: a sample-ratio check flags a mismatch (duplicate "
            "unit ids or a filtered input?); the output is complete",
            file=sys.stderr,
        )
    return 0


def _fail(exc: BaseException) -> int:
    if isinstance(exc, OSError) and exc.filename is not None:
        message = f"{exc.filename}: {exc.strerror or exc}"
    else:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    print(f"trafficsplit assign: error: {message}; nothing written", file=sys.stderr)
    return 2


def _as_json(summary: Any) -> dict[str, Any]:
    return {
        "rows": summary.rows,
        "seconds": summary.seconds,
        "output": str(summary.output),
        "bytes": summary.bytes,
        "exposures": summary.exposures,
        "experiments": {
            key: {
                "counts": t.counts,
                "reasons": t.reasons,
                "expected": t.expected,
                "srm": None
                if t.srm is None
                else {
                    "statistic": t.srm.statistic,
                    "df": t.srm.df,
                    "pvalue": t.srm.pvalue,
                    "mismatch": t.srm.mismatch,
                },
            }
            for key, t in summary.experiments.items()
        },
    }


class _Interrupted(KeyboardInterrupt):
    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signal = signum


@contextlib.contextmanager
def _terminated_as_interrupt() -> Iterator[None]:
    """SIGTERM (kill) raises like Ctrl-C while the backfill runs, so that its temporary file is
    removed on the way out."""

    def on_term(signum: int, frame: Any) -> None:
        raise _Interrupted(signum)

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _columns() -> int:
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        return 0


class _Progress:
    """A tqdm bar (rows, rows/s, ETA) when standard error is a terminal; otherwise a plain line
    every ``every`` seconds; nothing with ``quiet``."""

    def __init__(self, quiet: bool, every: float) -> None:
        self.quiet = quiet
        self.every = every
        self.bar: Any = None
        self.last = 0.0

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def __call__(self, p: Any) -> None:
        if self.quiet:
            return
        if sys.stderr.isatty():
            if self.bar is None:
                from .._optional import require

                tqdm = require("tqdm", what="the progress bar of trafficsplit assign")
                self.bar = tqdm.tqdm(
                    total=p.total,
                    unit=" rows",
                    unit_scale=True,
                    file=sys.stderr,
                    smoothing=0.1,
                    # a terminal that reports no size (a bare pty) still gets a bar
                    **({} if _columns() > 0 else {"ncols": 80, "nrows": 24}),
                )
            self.bar.update(p.rows - self.bar.n)
            return
        now = time.monotonic()
        if now - self.last < self.every and (p.total is None or p.rows < p.total):
            return
        self.last = now
        total = f" of {p.total:,} ({p.rows / p.total:.0%})" if p.total else ""
        eta = f", about {p.eta:.0f} s left" if p.eta is not None and p.rows != p.total else ""
        print(
            f"trafficsplit assign: {p.rows:,} rows{total} in {p.seconds:.1f} s "
            f"({p.rate / 1e6:.2f} M rows/s){eta}",
            file=sys.stderr,
            flush=True,
        )
