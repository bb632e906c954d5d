"""trafficsplit's exceptions.

Every exception derives from :class:`Error` and from the built-in that fits, so callers can
catch either: ``except trafficsplit.ConfigError`` or ``except ValueError``. A bad configuration
(:class:`ConfigError`) and a bad function argument (:class:`ArgumentError`) are different errors,
both ``ValueError``.
"""

from __future__ import annotations

__all__ = [
    "ArgumentError",
    "ConfigError",
    "Error",
    "TargetingSyntaxError",
    "UnitTypeError",
    "UnitValueError",
]


class Error(Exception):
    """Base class of every trafficsplit exception."""


class ConfigError(Error, ValueError):
    """An experiment, arm, weight or other setting is invalid. The message names it."""


class ArgumentError(Error, ValueError):
    """A function was called with a bad argument: a negative standard deviation, an alpha
    outside (0, 1), an unknown method name, arrays of different lengths. The message names the
    function and the argument."""


class UnitTypeError(Error, TypeError):
    """A unit id has a type the hash contract refuses (float, bool, other objects).

    ``row`` is the position of the first offending id in a batch call (0 for scalar calls).
    """

    def __init__(self, message: str, row: int = 0) -> None:
        super().__init__(message)
        self.row = row


class UnitValueError(Error, ValueError):
    """A unit id of an accepted type that cannot be hashed (a str with a lone surrogate)."""

    def __init__(self, message: str, row: int = 0) -> None:
        super().__init__(message)
        self.row = row


class TargetingSyntaxError(Error, ValueError):
    """A targeting expression that does not compile: syntax, unknown function, wrong arity,
    literal type errors, invalid patterns or versions, limits.

    ``line`` and ``column`` are 1-based (columns count characters), ``expected`` says what
    would have been valid there, ``excerpt`` shows the line with a caret under the column.
    """

    def __init__(
        self, message: str, line: int = 1, column: int = 1, expected: str = "", excerpt: str = ""
    ) -> None:
        super().__init__(message)
        self.line = line
        self.column = column
        self.expected = expected
        self.excerpt = excerpt
