"""Peers' conditions as trafficsplit targeting expressions.

trafficsplit's targeting is three-valued: a comparison with a missing attribute is *unknown* and
``not unknown`` is unknown, so ``not (country == "US")`` does not match a request without a
country. The peers' languages are two-valued: there the same condition is true. So every
negation is pushed down to the comparisons (De Morgan), and each comparison carries its own
negated spelling that is true where the peer's negation is (``country is null or country !=
"US"``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from ..errors import TargetingSyntaxError
from ..targeting import Targeting

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KEYWORDS = frozenset(
    {"and", "or", "not", "in", "is", "null", "true", "false", "True", "False", "None"}
)


class Untranslatable(Exception):
    """A part of a condition with no exact equivalent; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One comparison: its spelling, and the spelling of its negation."""

    positive: str
    negative: str


@dataclasses.dataclass(frozen=True)
class All:
    items: tuple[Cond, ...]


@dataclasses.dataclass(frozen=True)
class Any_:
    items: tuple[Cond, ...]


@dataclasses.dataclass(frozen=True)
class Not:
    item: Cond


@dataclasses.dataclass(frozen=True)
class Const:
    value: bool


Cond = Leaf | All | Any_ | Not | Const
TRUE = Const(True)
FALSE = Const(False)


def all_of(items: list[Cond]) -> Cond:
    return All(tuple(items)) if len(items) != 1 else items[0]


def any_of(items: list[Cond]) -> Cond:
    return Any_(tuple(items)) if len(items) != 1 else items[0]


def _simplify(cond: Cond, negated: bool) -> Cond:
    """The condition with negations pushed to the leaves and constants folded."""
    if isinstance(cond, Const):
        return Const(cond.value != negated)
    if isinstance(cond, Leaf):
        return Leaf(cond.negative, cond.positive) if negated else cond
    if isinstance(cond, Not):
        return _simplify(cond.item, not negated)
    conjunction = isinstance(cond, All) != negated
    parts: list[Cond] = []
    for item in cond.items:
        part = _simplify(item, negated)
        if isinstance(part, Const):
            if part.value != conjunction:  # false in an and, true in an or
                return part
            continue
        parts.append(part)
    if not parts:
        return Const(conjunction)
    if len(parts) == 1:
        return parts[0]
    return All(tuple(parts)) if conjunction else Any_(tuple(parts))


def _render(cond: Cond, outer: str) -> str:
    if isinstance(cond, Leaf):
        text = cond.positive
        return f"({text})" if outer and " or " in text else text
    assert isinstance(cond, (All, Any_))
    word = " and " if isinstance(cond, All) else " or "
    inner = "and" if isinstance(cond, All) else "or"
    text = word.join(_render(item, inner) for item in cond.items)
    return f"({text})" if outer and outer != inner else text


def render(cond: Cond) -> str | bool:
    """The targeting expression of ``cond``, or True / False when it is a constant."""
    simple = _simplify(cond, False)
    if isinstance(simple, Const):
        return simple.value
    return _render(simple, "")


def check(expression: str, lists: dict[str, list[Any]] | None = None) -> None:
    """Compiles the expression, so that what trafficsplit refuses (an RE2 pattern with
    lookaround, a version it cannot read) is reported as untranslatable."""
    try:
        Targeting(expression, lists=lists or None)
    except TargetingSyntaxError as exc:
        first = str(exc).splitlines()[0].removeprefix("targeting: ")
        raise Untranslatable(f"trafficsplit cannot compile the translation: {first}") from None


def attribute(path: str) -> str:
    """An attribute reference: a plain or dotted name, or a backquoted one."""
    if not isinstance(path, str) or not path:
        raise Untranslatable(f"an attribute name must be a non-empty string, got {path!r}")
    parts = path.split(".")
    if all(_NAME.match(p) and p not in _KEYWORDS for p in parts):
        return path
    if "`" in path or "\n" in path:
        raise Untranslatable(f"the attribute name {path!r} cannot be written in trafficsplit")
    return f"`{path}`"


def literal(value: Any) -> str:
    """A literal of the targeting language."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Untranslatable(f"{value!r} has no literal in the targeting language")
        return repr(value)
    if isinstance(value, str):
        out = ['"']
        for ch in value:
            if ch in '"\\':
                out.append("\\" + ch)
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append("\\t")
            elif ch == "\r":
                out.append("\\r")
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)
    raise Untranslatable(f"a {type(value).__name__} value has no literal in the targeting language")


def scalar(value: Any, what: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise Untranslatable(f"{what}: comparing with an array or object has no equivalent")


# Comparisons. Each positive spelling is true exactly where the peer's comparison is true (for
# attribute values of the type compared with); each negative spelling where it is false.


def equals(attr: str, value: Any) -> Leaf:
    if value is None:
        return Leaf(f"{attr} is null", f"{attr} is not null")
    lit = literal(value)
    return Leaf(f"{attr} == {lit}", f"{attr} is null or {attr} != {lit}")


def one_of(attr: str, values: list[Any]) -> Leaf | Const:
    if not values:
        return FALSE
    if any(v is None for v in values):
        rest = [v for v in values if v is not None]
        if not rest:
            return equals(attr, None)
        items = ", ".join(literal(v) for v in rest)
        return Leaf(
            f"{attr} is null or {attr} in [{items}]",
            f"{attr} is not null and {attr} not in [{items}]",
        )
    items = ", ".join(literal(v) for v in values)
    return Leaf(f"{attr} in [{items}]", f"{attr} is null or {attr} not in [{items}]")


_FLIP = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def compare(attr: str, op: str, value: Any) -> Leaf:
    lit = literal(value)
    return Leaf(f"{attr} {op} {lit}", f"{attr} is null or {attr} {_FLIP[op]} {lit}")


def call(function: str, attr: str, argument: str) -> Leaf:
    """A boolean function of a string attribute: ``startswith(a, "x")``."""
    text = f"{function}({attr}, {literal(argument)})"
    return Leaf(text, f"{attr} is null or not {text}")


def version(attr: str, op: str, target: str) -> Leaf:
    """``semver(attr) op target``; an attribute that is not a version makes the comparison false
    (the negation true)."""
    lit = literal(target)
    inverse = {"==": "!=", "!=": "==", **_FLIP}[op]
    return Leaf(
        f"semver({attr}) {op} {lit}",
        f"semver({attr}) is null or semver({attr}) {inverse} {lit}",
    )


def version_range(attr: str, low: str, high: str) -> Leaf:
    """``low <= semver(attr) < high``."""
    lo, hi = literal(low), literal(high)
    return Leaf(
        f"semver({attr}) >= {lo} and semver({attr}) < {hi}",
        f"semver({attr}) is null or semver({attr}) < {lo} or semver({attr}) >= {hi}",
    )


def regex(attr: str, pattern: str) -> Leaf:
    return call("matches", attr, pattern)
