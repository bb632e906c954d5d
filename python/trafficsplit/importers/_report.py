"""What an import returns: the configuration and the report of what could not be translated."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

# Nesting deeper than this in a peer's condition is refused rather than recursed into.
MAX_DEPTH = 200


@dataclasses.dataclass(frozen=True)
class ImportProblem:
    """One thing the import could not translate exactly.

    ``path`` is where it sits in the peer's document (``features.checkout.rules[2].condition``),
    ``message`` says what and why, and ``skipped`` says whether the whole entry (experiment or
    flag) was left out (True) or translated without that part (False).
    """

    path: str
    message: str
    skipped: bool

    def __str__(self) -> str:
        what = "skipped" if self.skipped else "note"
        return f"{self.path}: {what}: {self.message}"


@dataclasses.dataclass(frozen=True)
class ImportResult:
    """A configuration mapping (``experiments`` and ``flags`` sections, ready for
    :func:`trafficsplit.parse_config` or a YAML file) and every problem met on the way."""

    config: dict[str, Any]
    problems: list[ImportProblem]
    translated: list[str] = dataclasses.field(default_factory=list)
    """The peer paths of the entries that were translated, in order."""

    @property
    def skipped(self) -> list[ImportProblem]:
        """The problems that left an entry out."""
        return [p for p in self.problems if p.skipped]

    @property
    def complete(self) -> bool:
        """True when every entry was translated (notes may remain)."""
        return not self.skipped


class Skip(Exception):
    """Raised while translating one entry: the entry is left out, with this reason."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class Report:
    """Collects the entries and problems of one import."""

    def __init__(self) -> None:
        self.problems: list[ImportProblem] = []
        self.translated: list[str] = []
        self.experiments: list[dict[str, Any]] = []
        self.flags: list[dict[str, Any]] = []

    def note(self, path: str, message: str) -> None:
        self.problems.append(ImportProblem(path, message, skipped=False))

    def skip(self, path: str, message: str) -> None:
        self.problems.append(ImportProblem(path, message, skipped=True))

    def result(self) -> ImportResult:
        config: dict[str, Any] = {}
        if self.experiments:
            config["experiments"] = self.experiments
        if self.flags:
            config["flags"] = self.flags
        return ImportResult(config, self.problems, self.translated)


def path_key(base: str, key: str) -> str:
    """``base.key``, or ``base["key"]`` when the key would not read as one path element."""
    if key and all(c.isalnum() or c in "_-$" for c in key):
        return f"{base}.{key}" if base else key
    quoted = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{base}["{quoted}"]'


def expect_mapping(value: Any, path: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Skip(path, f"expected {what} (a JSON object), got {type_name(value)}")
    return value


def expect_list(value: Any, path: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise Skip(path, f"expected {what} (a JSON array), got {type_name(value)}")
    return value


def expect_str(value: Any, path: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise Skip(path, f"expected {what} (a non-empty string), got {type_name(value)}")
    return value


def expect_number(value: Any, path: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Skip(path, f"expected {what} (a number), got {type_name(value)} {short(value)}")
    return value


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def top_mapping(data: Any, peer: str, expected: str) -> Mapping[str, Any]:
    """The peer's document, which must be a JSON object; anything else is a ConfigError."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{peer}: expected {expected} (a JSON object), got {type_name(data)}")
    return data


def flag_type(values: list[Any]) -> str:
    """The trafficsplit flag type that holds every one of ``values``."""
    if values and all(isinstance(v, bool) for v in values):
        return "bool"
    if values and all(isinstance(v, str) for v in values):
        return "string"
    if values and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        return "number"
    return "json"


def percents(weights: list[int], total: int) -> list[float]:
    """Integer weights out of ``total`` as percentages, each ``w * 100 / total`` (whole where
    it can be); the modes turn them back into the same integers with ``weight_total``."""
    return [w * 100 // total if w * 100 % total == 0 else w * 100 / total for w in weights]
