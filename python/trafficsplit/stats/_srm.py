"""Sample-ratio mismatch: chi-square goodness of fit of arm counts against configured weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .._core import stats as _stats
from ..errors import ArgumentError

__all__ = ["SRMResult", "srm"]


@dataclass(frozen=True)
class SRMResult:
    """Pearson chi-square goodness of fit of observed counts against expected weights."""

    statistic: float
    pvalue: float
    df: int
    observed: tuple[float, ...]
    expected: tuple[float, ...]
    alpha: float

    @property
    def mismatch(self) -> bool:
        """True when the split is implausible under the configured weights (p < alpha)."""
        return self.pvalue < self.alpha


def srm(
    counts: Sequence[float] | Mapping[str, float] | np.ndarray,
    weights: Sequence[float] | Mapping[str, float] | np.ndarray,
    alpha: float = 0.001,
) -> SRMResult:
    """Sample-ratio mismatch check: chi-square goodness of fit, df = arms with weight - 1.

    ``counts`` and ``weights`` are sequences in the same order, or dicts keyed by arm name.
    Weights can be on any scale (percent or fractions). Flags at ``p < alpha`` (0.001).

    >>> srm([5050, 4950], [50, 50]).mismatch
    False
    """
    if isinstance(counts, Mapping) or isinstance(weights, Mapping):
        if not (isinstance(counts, Mapping) and isinstance(weights, Mapping)):
            raise ArgumentError("srm: give counts and weights both as dicts or both as sequences")
        if set(counts) != set(weights):
            raise ArgumentError(
                f"srm: counts name arms {sorted(counts)} but weights name {sorted(weights)}"
            )
        names = list(weights)
        counts = [counts[k] for k in names]
        weights = [weights[k] for k in names]
    c = np.asarray(counts, dtype=float).ravel()
    w = np.asarray(weights, dtype=float).ravel()
    if not 0 < alpha < 1:
        raise ArgumentError(f"srm: alpha must be in (0, 1), got {alpha!r}")
    stat, p, df, expected = _stats.srm_chi_square(c.tolist(), w.tolist())
    return SRMResult(float(stat), float(p), int(df), tuple(c.tolist()), tuple(expected), alpha)
