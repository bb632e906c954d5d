"""The result of an analysis: one :class:`MetricResult` per arm and metric, and
:class:`Analysis` with its summary table, HTML view and plots."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import _display, stats
from .._optional import require
from ..errors import ConfigError
from ..stats import TestResult

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Analysis", "Look", "MetricResult"]


@dataclass(frozen=True)
class MetricResult:
    """One arm compared with control on one metric."""

    metric: str
    arm: str
    kind: str  # "metric", "ratio" or "guardrail"
    method: str  # "welch", "cuped", "ratio", "noninferiority"
    n: int
    mean: float
    control_n: int
    control_mean: float
    absolute: TestResult | None
    relative: TestResult | None
    pvalue: float
    adjusted_pvalue: float
    decision: str
    variance_reduction: float | None = None
    statistic: float = math.nan
    guardrail: TestResult | None = None


@dataclass(frozen=True)
class Look:
    """One look of a sequential analysis: its information fraction and the z statistic of
    each (metric, arm)."""

    information: float
    z: Mapping[tuple[str, str], float]


@dataclass(frozen=True)
class Analysis:
    """The result of :func:`analyze`. ``summary()`` is the table; ``srm`` the sample-ratio check;
    ``plot()`` the forest plot (and the sequential boundaries when a design was given)."""

    results: tuple[MetricResult, ...]
    srm: stats.SRMResult
    control: str
    arms: tuple[str, ...]
    counts: Mapping[str, int]
    alpha: float
    correction: str
    sequential: Any = None
    looks: tuple[Look, ...] = ()
    weights: Mapping[str, float] | None = None  # the split the sample-ratio check expected
    _by_key: dict[tuple[str, str], MetricResult] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._by_key.update({(r.metric, r.arm): r for r in self.results})

    def result(self, metric: str, arm: str) -> MetricResult:
        """The comparison of ``arm`` with control on ``metric``."""
        try:
            return self._by_key[(metric, arm)]
        except KeyError:
            have = sorted({r.metric for r in self.results})
            raise ConfigError(
                f"no result for metric {metric!r} and arm {arm!r}; metrics: {have}, "
                f"arms: {[a for a in self.arms if a != self.control]}"
            ) from None

    def summary(self) -> pd.DataFrame:
        """One row per arm × metric: n, mean, absolute and relative lift with CIs, p-value,
        adjusted p-value and decision (control rows carry n and mean only)."""
        pd = require("pandas", what="Analysis.summary")

        rows = []
        seen_control: set[str] = set()
        for r in self.results:
            if r.metric not in seen_control:
                seen_control.add(r.metric)
                rows.append(_row(r.metric, self.control, r.kind, r.control_n, r.control_mean))
            rows.append(_result_row(r))
        return pd.DataFrame(rows, columns=_COLUMNS)

    def _rows(self) -> list[dict[str, Any]]:
        """The rows of :meth:`summary` as dicts, without pandas (for the displays)."""
        rows = []
        seen_control: set[str] = set()
        for r in self.results:
            if r.metric not in seen_control:
                seen_control.add(r.metric)
                rows.append(_row(r.metric, self.control, r.kind, r.control_n, r.control_mean))
            rows.append(_result_row(r))
        return [dict(zip(_COLUMNS, row, strict=True)) for row in rows]

    def _srm_line(self) -> str:
        srm = self.srm
        if srm.mismatch:
            return (
                f"SAMPLE-RATIO MISMATCH: p = {srm.pvalue:.3g} (chi-square {srm.statistic:.2f}, "
                f"df {srm.df}); the comparisons are not trustworthy"
            )
        return f"sample ratio p = {srm.pvalue:.3g} (no mismatch at {srm.alpha:g})"

    def __repr__(self) -> str:
        """A line (control, alpha, correction, the sample-ratio check), then the summary
        table: per arm and metric n, mean, relative lift with its interval, p-values and the
        decision (the first rows; :meth:`summary` has them all)."""
        rows = self._rows()
        table = _display.text_table(
            _TEXT_COLUMNS,
            [[row[c] if c == "n" else _fmt(c, row[c]) for c in _TEXT_COLUMNS] for row in rows],
        )
        title = (
            f"Analysis: control {_display.shorten(repr(self.control))}, alpha {self.alpha:g}, "
            f"correction {self.correction}; {self._srm_line()}"
        )
        return f"{title}\n{table}"

    def _repr_html_(self) -> str:
        rows = self._rows()
        table = _display.html_table(
            _HTML_COLUMNS,
            [[_fmt(c, row[c]) for c in _HTML_COLUMNS] for row in rows],
            limit=_HTML_ROWS,
            bold=[row["decision"] in ("increase", "decrease", "fail", "harm") for row in rows],
        )
        srm = self.srm
        warn = (
            f'<p style="color:#b00"><b>Sample-ratio mismatch</b>: p = {srm.pvalue:.3g} '
            f"(chi-square {srm.statistic:.2f}, df {srm.df}); the split is not the configured "
            "one, so the comparisons below are not trustworthy.</p>"
            if srm.mismatch
            else f"<p>Sample ratio: p = {srm.pvalue:.3g} (no mismatch at {srm.alpha:g}).</p>"
        )
        return (
            "<div><p><b>Experiment analysis</b>: control "
            f"<code>{_display.escape(self.control)}</code>, "
            f"alpha {self.alpha:g}, correction {_display.escape(self.correction)}.</p>{warn}"
            f"{table}</div>"
        )

    def plot(self, ax: Any = None, relative: bool = True) -> Any:
        """A forest plot of the lifts with their confidence intervals; with a sequential design,
        below it the boundaries and each comparison's observed z path. Returns a matplotlib
        ``Figure`` that pyplot does not hold (a notebook shows it once); ``ax`` draws on your
        own Axes instead (one: the forest plot; two: forest and sequential panels)."""
        from .plots import analysis_figure

        return analysis_figure(self, ax, relative)

    def to_html(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        title: str | None = None,
        allocation: Any = None,
    ) -> str:
        """The analysis as one self-contained HTML page (inline CSS and SVG figures, no script,
        nothing fetched): summary, sample-ratio check, lifts, forest plot, the sequential chart
        with a design, guardrails, and the allocation path of a bandit when ``allocation`` is
        given (an :class:`~trafficsplit.Experiment` whose history the bandit wrote, or a
        :class:`~trafficsplit.bandit.SimulationResult`). Returns the page; with ``path``, also
        writes it to a temporary file beside ``path`` and renames it over ``path``. Without
        matplotlib the page says which extra brings the figures and has everything else."""
        from .report import render, write_atomically

        text = render(self, title=title, allocation=allocation)
        if path is not None:
            write_atomically(path, text)
        return text


_COLUMNS = [
    "metric",
    "arm",
    "kind",
    "method",
    "n",
    "mean",
    "abs_lift",
    "abs_ci_low",
    "abs_ci_high",
    "rel_lift",
    "rel_ci_low",
    "rel_ci_high",
    "pvalue",
    "adj_pvalue",
    "decision",
    "variance_reduction",
]


# The columns of the terminal's table, and the rows a notebook's table shows at most.
_TEXT_COLUMNS = [
    "metric",
    "arm",
    "n",
    "mean",
    "rel_lift",
    "rel_ci_low",
    "rel_ci_high",
    "adj_pvalue",
    "decision",
]
_HTML_ROWS = 200

_HTML_COLUMNS = [
    "metric",
    "arm",
    "n",
    "mean",
    "abs_lift",
    "rel_lift",
    "rel_ci_low",
    "rel_ci_high",
    "pvalue",
    "adj_pvalue",
    "decision",
]


def _row(metric: str, arm: str, kind: str, n: int, mean: float) -> list[Any]:
    nan = math.nan
    return [metric, arm, kind, "control", n, mean, *([nan] * 8), "control", nan]


def _result_row(r: MetricResult) -> list[Any]:
    nan = math.nan
    a, rel = r.absolute, r.relative
    return [
        r.metric,
        r.arm,
        r.kind,
        r.method,
        r.n,
        r.mean,
        a.estimate if a else nan,
        a.ci[0] if a else nan,
        a.ci[1] if a else nan,
        rel.estimate if rel else nan,
        rel.ci[0] if rel else nan,
        rel.ci[1] if rel else nan,
        r.pvalue,
        r.adjusted_pvalue,
        r.decision,
        nan if r.variance_reduction is None else r.variance_reduction,
    ]


def _fmt(column: str, v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        if column.startswith("rel_"):
            return f"{v * 100:+.2f} %"
        if column in ("pvalue", "adj_pvalue"):
            return f"{v:.3g}"
        return f"{v:.4g}"
    return str(v)
