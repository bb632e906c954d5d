"""Argument checks that every area shares: thread counts, texts, real numbers."""

from __future__ import annotations

import numbers
from typing import Any

from ..errors import ArgumentError

__all__ = ["check_text", "check_threads", "is_integer", "is_real"]


def is_integer(x: Any) -> bool:
    """An integer (int, numpy integer, any ``numbers.Integral``) that is not a bool."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def is_real(x: Any) -> bool:
    """A real number that is not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def check_text(value: Any, what: str, error: type[Exception] = ArgumentError) -> None:
    """``error`` (an :class:`ArgumentError` unless told) unless value is a str that UTF-8 can
    encode."""
    if not isinstance(value, str):
        raise error(f"{what} must be a str, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise error(
            f"{what} must be valid Unicode (it contains a lone surrogate): {value!r}"
        ) from None


MAX_THREADS = 1024
"""The most threads a kernel call may ask for (the core takes an unsigned 32-bit count, and
more threads than this only cost memory)."""


def check_threads(threads: Any) -> int:
    """The kernels' thread count: 0 (all cores) for None, else an int from 1 to MAX_THREADS."""
    if threads is None:
        return 0
    if not is_integer(threads) or not 1 <= threads <= MAX_THREADS:
        raise ArgumentError(
            f"threads must be None (all cores) or an int >= 1 and <= {MAX_THREADS}, got {threads!r}"
        )
    return int(threads)
