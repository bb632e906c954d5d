"""Experiment analysis: per-arm metrics, absolute and relative lifts with confidence intervals,
multiple-comparison adjustment, guardrails (non-inferiority) and sequential decisions.

``analyze`` reads unit-level data (one row per unit) or a table of per-arm sufficient
statistics (what a SQL ``GROUP BY arm`` or a Spark aggregation produces); both give the same
numbers because everything is computed from mergeable :class:`~trafficsplit.stats.Moments`.

``metrics`` reads what is compared (metrics, covariates, ratio metrics, guardrails), ``data``
turns the data into per-arm moments, ``compare`` runs the comparisons (``analyze``) and
``result`` holds what they return (``Analysis``: summary table, HTML view, plots).
"""

from __future__ import annotations

from .compare import CORRECTIONS as CORRECTIONS
from .compare import analyze
from .data import sufficient_statistics
from .metrics import Guardrail
from .result import Analysis, MetricResult

__all__ = [
    "Analysis",
    "Guardrail",
    "MetricResult",
    "analyze",
    "sufficient_statistics",
]

# The functions report the path users import them from; the classes keep their defining
# module, where typing resolves their annotations.
analyze.__module__ = __name__
sufficient_statistics.__module__ = __name__
