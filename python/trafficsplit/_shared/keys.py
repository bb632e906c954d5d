"""The canonical text of a unit id, as stores, records and signed propagation key it."""

from __future__ import annotations

from typing import Any

from ..errors import UnitTypeError, UnitValueError
from .checks import is_integer

__all__ = ["unit_key", "unit_key_or_none"]


def unit_key(unit: str | int | bytes) -> str:
    """The canonical text under which stores keep a unit id.

    ``str`` → itself; ``int`` (Python or numpy, not ``bool``) → its decimal text, so ``123``
    and ``"123"`` are one unit, as in the hash contract; ``bytes`` → ``"b:"`` + lowercase hex.
    Anything else (floats, bools, ``None``) raises :class:`trafficsplit.UnitTypeError`, a
    ``TypeError``; a str with a lone surrogate raises :class:`trafficsplit.UnitValueError`.

    >>> unit_key("user-1"), unit_key(123), unit_key(b"\\x00\\xff")
    ('user-1', '123', 'b:00ff')
    """
    if isinstance(unit, str):
        try:
            unit.encode("utf-8")
        except UnicodeEncodeError:
            raise UnitValueError(
                f"unit id {unit!r} contains a lone surrogate and is not valid Unicode; "
                "pass it as bytes"
            ) from None
        return str.__str__(unit)
    if is_integer(unit):
        return str(int(unit))
    if isinstance(unit, bytes):
        return "b:" + unit.hex()
    if unit is None:
        raise UnitTypeError("unit id is None (a missing unit): it has no sticky key")
    raise UnitTypeError(
        f"unit id has type {type(unit).__name__!r} ({unit!r}); sticky keys are made from "
        "str, int or bytes unit ids"
    )


def unit_key_or_none(unit: Any) -> str | None:
    """:func:`unit_key`, or None where a unit has no key (missing, a float, a lone surrogate):
    for records and lookups that keep going past such a row."""
    try:
        return unit_key(unit)
    except (TypeError, ValueError):
        return None
