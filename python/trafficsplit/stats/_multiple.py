"""Multiple-comparison adjustment of p-values across arms × metrics."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._core import stats as _core
from ..errors import ArgumentError

__all__ = ["adjust_pvalues"]

_METHODS = {
    "bonferroni": "bonferroni",
    "holm": "holm",
    "bh": "bh",
    "fdr_bh": "bh",
    "benjamini-hochberg": "bh",
}


def adjust_pvalues(pvalues: Any, method: str = "holm") -> np.ndarray:
    """Adjusted p-values, same shape as ``pvalues`` (any shape: e.g. arms × metrics).

    ``method``: ``"bonferroni"`` (``m·p``), ``"holm"`` (step-down, controls the family-wise
    error rate like Bonferroni with more power; the default) or ``"bh"`` (aliases ``"fdr_bh"``,
    ``"benjamini-hochberg"``: Benjamini–Hochberg step-up, controls the false discovery rate).
    ``m`` counts the non-NaN entries; NaN entries stay NaN. Matches statsmodels
    ``multipletests(p, method=...)[1]``. Reject where the adjusted p-value is below alpha.

    >>> adjust_pvalues([0.01, 0.04, 0.03, 0.005, 0.20], "holm").round(3).tolist()
    [0.04, 0.09, 0.09, 0.025, 0.2]
    """
    if method not in _METHODS:
        raise ArgumentError(
            "adjust_pvalues: method must be 'bonferroni', 'holm' or 'bh' "
            f"('fdr_bh', 'benjamini-hochberg'), got {method!r}"
        )
    try:
        p = np.asarray(pvalues, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArgumentError("adjust_pvalues: pvalues must be numbers (NaN for missing)") from None
    out = _core.adjust_pvalues(p.ravel().tolist(), _METHODS[method])
    return np.asarray(out, dtype=np.float64).reshape(p.shape)
