"""The ``trafficsplit`` command line.

One entry point, one module per group of commands, each with a ``register(sub)`` that adds its
subcommands and sets ``run``:

- ``demo``: synthetic users, assigned and analysed (:mod:`.demo`);
- ``validate FILE...`` and ``plan OLD NEW``: configuration checks (:mod:`.config_commands`);
- ``assign``: a streaming backfill of a Parquet/CSV file or dataset (:mod:`.assign`);
- ``analyze`` and ``sample-size``: statistics from the shell (:mod:`.analyze`);
- ``serve``: the HTTP service (:mod:`.serve`);
- ``import``: GrowthBook, Unleash or flagd definitions as a configuration (:mod:`.import_`).

Exit codes: 0 ok; 1 the answer is "no" (an invalid configuration, a sample-ratio mismatch);
2 the command could not run (a usage error, a missing file or column, a bad configuration for
``assign``), with one line on standard error naming the file and what was wrong.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__

# Imported when the parser is built; each module imports its heavy libraries only when it runs.
_COMMANDS = ("demo", "config_commands", "assign", "analyze", "serve", "import_")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (``trafficsplit --help`` lists them)."""
    parser = argparse.ArgumentParser(
        prog="trafficsplit",
        description="Deterministic traffic splitting: assign, check and analyse experiments.",
        epilog="Exit codes: 0 ok; 1 invalid configuration or sample-ratio mismatch; "
        "2 the command could not run (usage, files, columns). "
        "'trafficsplit COMMAND --help' tells more.",
    )
    parser.add_argument("--version", action="version", version=f"trafficsplit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f".{name}", __name__).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code (usage errors return 2, as from the shell)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # e.g. `trafficsplit validate ... | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
