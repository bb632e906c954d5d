"""The checker that collects every problem of a configuration with its file and path, and the
small helpers the section compilers share.

The shape of each document (sections, keys, types, ranges, enums) is checked first by the
shipped JSON Schema (``schema.py``); the section compilers then check what a schema cannot say
(references, sums, order, targeting, times that do not exist, YAML values that are not JSON),
and only where the schema found nothing wrong: :meth:`Checker.ok`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .. import _time
from ..errors import ConfigError, TargetingSyntaxError
from ..targeting import Targeting
from .model import ConfigIssue
from .schema import Issue, format_path, kind_of

__all__ = ["Checker", "check_unique", "child", "items_of", "kind_of", "section_entries"]


class Checker:
    def __init__(self) -> None:
        self.issues: list[ConfigIssue] = []
        self.file = ""
        # Per file: every path where the schema found a problem, and every path above one.
        self._flagged: dict[str, set[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.issues.append(ConfigIssue(self.file, path, message))

    def structure(self, issues: list[Issue]) -> None:
        """Records the schema's issues of the current file."""
        flagged = self._flagged.setdefault(self.file, set())
        for parts, message in issues:
            self.add(format_path(parts), message)
            for end in range(len(parts) + 1):
                flagged.add(format_path(parts[:end]))

    def ok(self, path: str) -> bool:
        """Whether the schema found nothing wrong at `path` or inside it: the semantic checks
        of a value run only then, so that no problem is reported twice."""
        flagged = self._flagged.get(self.file)
        return not flagged or path not in flagged

    def amend(self, path: str, suffix: str) -> None:
        """Adds a hint to the issue already reported at `path` in the current file."""
        for i, issue in enumerate(self.issues):
            if issue.file == self.file and issue.path == path:
                self.issues[i] = ConfigIssue(issue.file, path, issue.message + suffix)

    def text(self, value: Any, path: str, what: str) -> str | None:
        """A string the schema accepted. YAML can type a value the schema sees as a string
        (an unquoted date), and a str can hold a lone surrogate: both are refused here."""
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                if self.ok(path):
                    self.add(path, "must be valid Unicode")
                return None
            return value
        if value is not None and self.ok(path):
            self.add(path, f"expected {what}, got {kind_of(value)}")
        return None

    def time(self, value: Any, path: str) -> int | None:
        """A time the schema accepted, parsed: a date that does not exist or a time out of range
        fits the schema's pattern and is refused here."""
        if value is None or not self.ok(path):
            return None
        try:
            return _time.to_micros(value, path)
        except ConfigError:
            self.add(
                path,
                f"expected a time (ISO-8601 such as 2026-11-15T00:00:00Z), got {kind_of(value)}",
            )
            return None

    def targeting(
        self, value: Any, path: str, lists: Mapping[str, Any] | None = None
    ) -> Targeting | None:
        if value is None or not self.ok(path):
            return None
        if not isinstance(value, str):  # a YAML date
            self.add(path, f"expected a targeting expression (a string), got {kind_of(value)}")
            return None
        try:
            return Targeting(value, lists)
        except TargetingSyntaxError as exc:
            first = str(exc).splitlines()[0].removeprefix("targeting: ")
            self.add(path, f"{first}\n{exc.excerpt}" if exc.excerpt else first)
        except ConfigError as exc:
            self.add(path, str(exc))
        return None


def child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def items_of(value: Any, path: str) -> list[tuple[str, Any]]:
    """(path, item) for a list section; anything else (reported by the schema) is empty."""
    if not isinstance(value, list):
        return []
    return [(child(path, i), item) for i, item in enumerate(value)]


def check_unique(checker: Checker, seen: dict[str, str], key: str, path: str, what: str) -> bool:
    if key in seen:
        checker.add(path, f"{what} '{key}' is defined twice (also at {seen[key]})")
        return False
    seen[key] = f"{checker.file}: {path}" if checker.file else path
    return True


def section_entries(
    checker: Checker, items: list[tuple[str, str, Any]], what: str
) -> Iterator[tuple[str, Mapping[str, Any], str]]:
    """(path, entry, key) for each entry of a section that is a mapping with a key not used
    before (the schema reports the others). Sets the checker's file."""
    seen: dict[str, str] = {}
    for source, path, item in items:
        checker.file = source
        if not isinstance(item, Mapping):
            continue
        key_path = child(path, "key")
        key = checker.text(item.get("key"), key_path, "a non-empty string key")
        if key is None or not checker.ok(key_path):
            continue
        if not check_unique(checker, seen, key, key_path, what):
            continue
        yield path, item, key
