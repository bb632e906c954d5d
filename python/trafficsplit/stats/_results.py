"""Result objects and argument checks shared by the statistical tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ArgumentError

__all__ = ["TestResult"]

ALTERNATIVES = ("two-sided", "larger", "smaller")


def check_alpha(fn: str, alpha: float) -> None:
    """A test level: a number in (0, 1); otherwise an ArgumentError naming ``fn``."""
    if not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ArgumentError(f"{fn}: alpha must be in (0, 1), got {alpha!r}")


def check_level(alpha: float, where: str, upper: float = 0.5) -> float:
    """A level per side: a number (not a bool) in (0, ``upper``), returned as a float."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)):
        raise ArgumentError(f"{where}: alpha must be a number, got {alpha!r}")
    a = float(alpha)
    if not 0 < a < upper:
        raise ArgumentError(f"{where}: alpha must be in (0, {upper:g}), got {alpha!r}")
    return a


def float_array(values: Any, what: str) -> np.ndarray:
    """``values`` as a flat float64 array; an ArgumentError naming ``what`` if they are not
    numbers."""
    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ArgumentError(f"{what} must be a sequence of numbers, got {values!r}") from None
    return arr


@dataclass(frozen=True)
class TestResult:
    """The outcome of one test or interval estimate.

    ``estimate`` is the effect on the scale the test names (a difference of means, a relative
    lift, a ratio, ...); ``ci`` is the ``(low, high)`` confidence interval at level ``1 - alpha``
    for the same ``alternative`` (one-sided intervals have an infinite end); ``se`` the standard
    error of ``estimate``; ``statistic`` the test statistic (t or z); ``df`` the degrees of
    freedom when the reference distribution is Student's t, else ``None``.
    """

    __test__ = False  # not a pytest class

    estimate: float
    ci: tuple[float, float]
    pvalue: float
    statistic: float
    se: float
    df: float | None = None
    alpha: float = 0.05
    alternative: str = "two-sided"
    method: str = ""
    # Values left out of raw-value inputs because they were NaN or infinite (scipy's tests
    # would return NaN instead); 0 for Moments inputs, which count their own.
    skipped: int = 0

    @property
    def significant(self) -> bool:
        """True when ``pvalue < alpha``."""
        return self.pvalue < self.alpha
