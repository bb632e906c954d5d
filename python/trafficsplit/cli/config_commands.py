"""``trafficsplit validate FILE...`` and ``trafficsplit plan OLD NEW``: configuration checks
for people and for CI. Exit codes: 0 ok, 1 invalid configuration (every problem printed)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from ..config import ConfigValidationError, Snapshot, config_files, load_config
from ..errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
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
    from ..plan import plan

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
