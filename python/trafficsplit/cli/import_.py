"""``trafficsplit import {growthbook,unleash,flagd} FILE``: a peer's experiments and flags as a
trafficsplit configuration whose hashing modes keep every unit in its arm. Exit codes: 0 every
entry translated; 1 some entry skipped (2 with --strict); 2 the input could not be read."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..importers import ImportResult

# The largest file read, as for configuration files.
MAX_BYTES = 64 * 1024 * 1024

_MODES = {
    "growthbook": "growthbook-v1 / growthbook-v2 (GrowthBook's hashVersion 1 and 2)",
    "unleash": "unleash (Unleash's flexibleRollout and variants)",
    "flagd": "flagd (flagd's fractional, the scheme from 2026-04)",
    "flagd-legacy": "flagd-legacy (flagd's fractional before 2026-04)",
}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "import",
        help="translate GrowthBook, Unleash or flagd definitions into a configuration",
        description="Reads a GrowthBook SDK payload, an Unleash client payload or a flagd flag\n"
        "file and writes a trafficsplit configuration whose hashing modes reproduce the\n"
        "peer's bucketing, so that no unit changes arm. Every entry that cannot be\n"
        "translated exactly is left out and reported as 'FILE: PATH: message' on\n"
        "standard error (docs/migration.md).",
        epilog="examples:\n"
        "  trafficsplit import growthbook features.json -o config/growthbook.yaml\n"
        "  trafficsplit import unleash toggles.json --json\n"
        "  trafficsplit import flagd flags.json --flagd-scheme legacy -o flags.yaml\n\n"
        "exit codes: 0 every entry translated; 1 some entry skipped (2 with --strict); "
        "2 the input could not be read",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "peer", choices=("growthbook", "unleash", "flagd"), help="the format of FILE"
    )
    parser.add_argument("file", metavar="FILE", help="the peer's JSON definitions")
    parser.add_argument(
        "-o", "--output", metavar="OUT.yaml", help="write the configuration here (default: stdout)"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the report (translated entries, problems, and the configuration when "
        "there is no -o) as JSON",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 2, not 1, when an entry was skipped"
    )
    parser.add_argument(
        "--flagd-scheme",
        choices=("current", "legacy"),
        default="current",
        help="flagd's fractional bucketing to reproduce: current (from 2026-04) or legacy",
    )
    parser.add_argument(
        "--encoding",
        metavar="NAME",
        help="the peer SDK's hashing of non-ASCII ids: growthbook utf16 (JavaScript, "
        "Python 4), codepoints (older Python SDKs) or utf8 (Go, Java); unleash utf8 "
        "(yggdrasil) or utf16-low-byte (Node); default: the mode's",
    )
    parser.set_defaults(run=_run)


def read_peer_file(path: str) -> Any:
    """The JSON document in ``path``; ConfigError with a one-line message when it cannot be
    read (missing, not a regular file, too large, not UTF-8, not JSON, nested too deeply)."""
    p = Path(path)
    try:
        if not p.is_file():
            raise ConfigError(
                f"{path}: not a regular file" if p.exists() else f"{path}: no such file"
            )
        with p.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to read") from None


def translate(
    peer: str, data: Any, *, flagd_scheme: str = "current", encoding: str | None = None
) -> ImportResult:
    """The import of ``data`` in the peer's format."""
    from ..importers import import_flagd, import_growthbook, import_unleash

    if peer == "growthbook":
        return import_growthbook(data, encoding=encoding)
    if peer == "unleash":
        return import_unleash(data, encoding=encoding)
    if encoding is not None:
        raise ConfigError(
            "--encoding: flagd hashes UTF-8 bytes; the option is for growthbook and unleash"
        )
    return import_flagd(data, scheme=flagd_scheme)


def render_yaml(config: dict[str, Any], source: str, mode: str) -> str:
    """The configuration as YAML, under a header naming its source and hashing mode."""
    import yaml

    header = (
        f"# Imported by 'trafficsplit import' from {source}.\n"
        f"# Hashing mode: {mode}: every unit keeps the arm the peer gave it.\n"
        "# New experiments belong on trafficsplit's own ts1 contract (docs/migration.md).\n"
    )
    body = (
        yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100) if config else "{}\n"
    )
    return header + body


def _run(args: argparse.Namespace) -> int:
    from .._shared.files import write_atomically

    try:
        data = read_peer_file(args.file)
        result = translate(args.peer, data, flagd_scheme=args.flagd_scheme, encoding=args.encoding)
    except (ConfigError, ValueError) as exc:
        print(f"trafficsplit import: {exc}", file=sys.stderr)
        return 2
    mode_key = (
        args.peer if args.peer != "flagd" or args.flagd_scheme == "current" else "flagd-legacy"
    )
    text = render_yaml(result.config, args.file, _MODES[mode_key])
    if args.output:
        try:
            write_atomically(args.output, text)
        except OSError as exc:
            print(f"trafficsplit import: {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    for problem in result.problems:
        print(f"{args.file}: {problem}", file=sys.stderr)
    if args.json:
        report: dict[str, Any] = {
            "source": args.file,
            "peer": args.peer,
            "mode": _MODES[mode_key],
            "translated": result.translated,
            "problems": [
                {"path": p.path, "message": p.message, "skipped": p.skipped}
                for p in result.problems
            ],
        }
        if args.output:
            report["output"] = args.output
        else:
            report["config"] = result.config
        print(json.dumps(report, indent=2, ensure_ascii=False))
    elif not args.output:
        sys.stdout.write(text)
    skipped = len(result.skipped)
    summary = (
        f"imported {len(result.translated)} entr{'y' if len(result.translated) == 1 else 'ies'}"
        f", skipped {skipped}" + (f", written to {args.output}" if args.output else "")
    )
    print(summary, file=sys.stderr)
    if skipped:
        return 2 if args.strict else 1
    return 0
