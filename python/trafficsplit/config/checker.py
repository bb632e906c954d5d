"""The checker that collects every problem of a configuration with its file and path, and the
small helpers the section compilers share."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .. import _time
from ..errors import ConfigError, TargetingSyntaxError
from ..targeting import Targeting
from .model import ConfigIssue

ABSENT: Any = object()  # a required key that keys() already reported missing


class Checker:
    def __init__(self) -> None:
        self.issues: list[ConfigIssue] = []
        self.file = ""

    def add(self, path: str, message: str) -> None:
        self.issues.append(ConfigIssue(self.file, path, message))

    def mapping(self, value: Any, path: str) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.add(path, f"expected a mapping, got {kind_of(value)}")
            return None
        return value

    def keys(
        self,
        value: Mapping[str, Any],
        path: str,
        allowed: Sequence[str],
        required: Sequence[str] = (),
    ) -> None:
        for k in value:
            if k not in allowed:
                self.add(child(path, str(k)), f"unknown key; expected one of {', '.join(allowed)}")
        for k in required:
            if k not in value:
                self.add(path, f"missing required key '{k}'")

    def key(self, value: Any, path: str) -> str | None:
        if value is ABSENT:
            return None
        if not isinstance(value, str) or not value.strip():
            self.add(path, f"expected a non-empty string key, got {kind_of(value)}")
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.add(path, "must be valid Unicode")
            return None
        return value

    def number(self, value: Any, path: str, lo: float, hi: float, what: str) -> float | None:
        if value is ABSENT:
            return None
        try:
            ok = (
                isinstance(value, numbers.Real)
                and not isinstance(value, bool)
                and math.isfinite(float(value))
                and lo <= float(value) <= hi
            )
        except (OverflowError, ValueError):
            ok = False
        if not ok:
            self.add(path, f"expected {what}, got {kind_of(value)}")
            return None
        return float(value)

    def buckets(self, value: Any, path: str) -> int | None:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1_000_000:
            self.add(path, f"expected an integer from 1 to 1,000,000, got {kind_of(value)}")
            return None
        return value

    def time(self, value: Any, path: str) -> int | None:
        if value is None:
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
        if value is None:
            return None
        if not isinstance(value, str):
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


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def items_of(checker: Checker, value: Any, path: str) -> list[tuple[str, Any]]:
    """(path, item) for a list section; a missing section is empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        checker.add(path, f"expected a list, got {kind_of(value)}")
        return []
    return [(child(path, i), item) for i, item in enumerate(value)]


def check_unique(checker: Checker, seen: dict[str, str], key: str, path: str, what: str) -> bool:
    if key in seen:
        checker.add(path, f"{what} '{key}' is defined twice (also at {seen[key]})")
        return False
    seen[key] = f"{checker.file}: {path}" if checker.file else path
    return True


def section_entries(
    checker: Checker,
    items: list[tuple[str, str, Any]],
    what: str,
    keys: Callable[[str], tuple[Sequence[str], Sequence[str]]],
) -> Iterator[tuple[str, Mapping[str, Any], str]]:
    """(path, entry, key) for each entry of a section that is a mapping with a valid key not
    used before; `keys(path)` gives the allowed and required keys. Sets the checker's file."""
    seen: dict[str, str] = {}
    for source, path, item in items:
        checker.file = source
        m = checker.mapping(item, path)
        if m is None:
            continue
        allowed, required = keys(path)
        checker.keys(m, path, allowed, required)
        key = checker.key(m.get("key", ABSENT), child(path, "key"))
        if key is None or not check_unique(checker, seen, key, child(path, "key"), what):
            continue
        yield path, m, key
