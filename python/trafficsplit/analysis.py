"""Experiment analysis: per-arm metrics, absolute and relative lifts with confidence intervals,
multiple-comparison adjustment, guardrails (non-inferiority) and sequential decisions.

``analyze`` reads unit-level data (one row per unit) or a table of per-arm sufficient
statistics (what a SQL ``GROUP BY arm`` or a Spark aggregation produces); both give the same
numbers because everything is computed from mergeable :class:`~trafficsplit.stats.Moments`.
"""

from __future__ import annotations

import contextlib
import html
import itertools
import math
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import stats
from ._frames import as_pandas_frame
from ._optional import loaded, require
from .errors import ArgumentError, ConfigError
from .stats import Moments, TestResult
from .stats._results import check_alpha

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "Analysis",
    "Guardrail",
    "MetricResult",
    "analyze",
    "sufficient_statistics",
]

CORRECTIONS = ("holm", "bonferroni", "bh", "none")


@dataclass(frozen=True)
class Guardrail:
    """A metric that must not get worse by more than ``margin``.

    ``margin`` is a share of the control mean when ``relative`` (0.05: at most 5 % worse) or an
    amount in the metric's unit otherwise. Guardrails are usually costs (latency, errors), so
    ``higher_is_better`` defaults to False.
    """

    margin: float
    relative: bool = True
    higher_is_better: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.margin, int | float) and math.isfinite(self.margin)):
            raise ConfigError(f"Guardrail: margin must be a finite number, got {self.margin!r}")
        if self.margin < 0:
            raise ConfigError(f"Guardrail: margin must be >= 0, got {self.margin!r}")


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
class _Look:
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
    looks: tuple[_Look, ...] = ()
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

    def _repr_html_(self) -> str:
        s = self.summary()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in _HTML_COLUMNS)
        body = []
        for _, row in s.iterrows():
            cells = []
            for c in _HTML_COLUMNS:
                v = row[c]
                cells.append(f"<td>{html.escape(_fmt(c, v))}</td>")
            style = ""
            if row["decision"] in ("increase", "decrease", "fail", "harm"):
                style = ' style="font-weight:bold"'
            body.append(f"<tr{style}>{''.join(cells)}</tr>")
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
            f"<code>{html.escape(self.control)}</code>, "
            f"alpha {self.alpha:g}, correction {html.escape(self.correction)}.</p>{warn}"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
        )

    def plot(self, ax: Any = None, relative: bool = True) -> Any:
        """A forest plot of the lifts with their confidence intervals; with a sequential design,
        a second panel with the boundaries and each comparison's observed z path. Returns the
        matplotlib figure."""
        plt = require("matplotlib.pyplot", what="Analysis.plot")

        items = self.results
        seq = self.sequential is not None
        if ax is None:
            fig, axes = plt.subplots(
                1, 2 if seq else 1, figsize=(11 if seq else 6.5, 0.45 * len(items) + 1.6)
            )
            axes = np.atleast_1d(axes)
        else:
            axes = np.atleast_1d(ax)
            fig = axes[0].figure
        a0 = axes[0]
        labels, est, lo, hi = [], [], [], []
        for r in items:
            t = r.relative if relative else r.absolute
            labels.append(f"{r.metric} · {r.arm}")
            est.append(t.estimate if t else math.nan)
            lo.append(t.ci[0] if t else math.nan)
            hi.append(t.ci[1] if t else math.nan)
        y = np.arange(len(items))[::-1]
        est_a, lo_a, hi_a = (np.asarray(v, dtype=float) for v in (est, lo, hi))
        scale = 100.0 if relative else 1.0
        colours = ["#1f77b4" if r.decision not in ("fail", "harm") else "#d62728" for r in items]
        a0.hlines(y, lo_a * scale, hi_a * scale, colors=colours, lw=2)
        a0.scatter(est_a * scale, y, color=colours, zorder=3)
        a0.axvline(0, color="grey", lw=1, ls="--")
        a0.set_yticks(y, labels)
        a0.set_xlabel("relative lift (%)" if relative else "absolute lift")
        a0.set_title(f"Lift vs {self.control} ({(1 - self.alpha) * 100:g} % CI)")
        if seq and len(axes) > 1:
            a1 = axes[1]
            design = self.sequential
            timing = np.asarray(design.timing, dtype=float)
            b = np.asarray(design.boundaries(), dtype=float)
            a1.plot(timing, b, "k-o", label="efficacy boundary")
            if getattr(design, "sides", 1) == 2:
                a1.plot(timing, -b, "k-o")
            info = [lk.information for lk in self.looks]
            for r in items:
                if r.kind == "guardrail":
                    continue
                path = [lk.z.get((r.metric, r.arm), math.nan) for lk in self.looks]
                a1.plot(info, path, "-x", label=f"{r.metric} · {r.arm}")
            a1.set_xlabel("information fraction")
            a1.set_ylabel("z")
            a1.set_xlim(0, 1.05)
            a1.set_title("Sequential boundaries and observed z")
            a1.legend(fontsize="small")
        fig.tight_layout()
        return fig


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


# -- input -----------------------------------------------------------------------------------


def _names(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    out = list(value)
    for v in out:
        if not isinstance(v, str) or not v:
            raise ConfigError(f"analyze: {what} must be column names (strings), got {v!r}")
    return out


def _pairs(value: Any, what: str) -> dict[str, tuple[str, str]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"analyze: {what} must map a name to (numerator, denominator), got "
            f"{type(value).__name__}"
        )
    out = {}
    for k, v in value.items():
        if not (isinstance(v, Sequence) and not isinstance(v, str) and len(v) == 2):
            raise ConfigError(
                f"analyze: {what}[{k!r}] must be a (numerator, denominator) pair, got {v!r}"
            )
        out[str(k)] = (str(v[0]), str(v[1]))
    return out


def _covariates(value: Any, metrics: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        out = {str(k): str(v) for k, v in value.items()}
        unknown = [k for k in out if k not in metrics]
        if unknown:
            raise ConfigError(
                f"analyze: covariates name metrics {unknown} that are not in metrics {metrics}"
            )
        return out
    cols = _names(value, "covariates")
    if len(cols) != len(metrics):
        raise ConfigError(
            "analyze: covariates must be a mapping metric -> pre-period column, or a list with "
            f"one column per metric ({len(metrics)}), got {len(cols)}"
        )
    return dict(zip(metrics, cols, strict=True))


def _guardrails(value: Any) -> dict[str, Guardrail]:
    if value is None:
        return {}
    if isinstance(value, str) or not isinstance(value, Mapping):
        raise ConfigError(
            "analyze: guardrails must map a metric to a Guardrail(margin, ...) or to a relative "
            f"margin (0.05 = 5 % worse at most), got {type(value).__name__}"
        )
    out = {}
    for k, g in value.items():
        if isinstance(g, Guardrail):
            out[str(k)] = g
        elif isinstance(g, int | float) and not isinstance(g, bool):
            out[str(k)] = Guardrail(float(g))
        elif isinstance(g, Mapping):
            out[str(k)] = Guardrail(**g)
        else:
            raise ConfigError(f"analyze: guardrails[{k!r}] must be a Guardrail or a number")
    return out


def _is_sums_table(df: Any, columns: list[str]) -> bool:
    cols = set(map(str, df.columns))
    if "n" in cols and all(f"sum__{c}" in cols for c in columns):
        return not all(c in cols for c in columns)
    return False


def _arm_codes(values: Any) -> tuple[np.ndarray, list[str]]:
    """Small integer codes per row (-1: no arm) and the arm of each code, in first-seen order
    (categories order for a categorical)."""
    pd = require("pandas", what="analyze")

    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = np.asarray(s.cat.codes.to_numpy())
        labels = [str(c) for c in s.cat.categories]
    else:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        labels = [str(u) for u in uniques]
    dtype = np.int8 if len(labels) < 2**7 else np.int32
    return np.ascontiguousarray(codes, dtype=dtype), labels


def _float_column(df: Any, name: str) -> np.ndarray:
    pd = require("pandas", what="analyze")

    if name not in df.columns:
        raise ConfigError(f"analyze: no column {name!r} in the data; columns: {list(df.columns)}")
    col = df[name]
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.astype("float64").to_numpy()
    if not pd.api.types.is_numeric_dtype(col.dtype):
        raise ConfigError(
            f"analyze: column {name!r} must be numeric (or boolean), got dtype {col.dtype}"
        )
    out = col.to_numpy(dtype=np.float64, na_value=np.nan)
    inf = np.isinf(out)
    if inf.any():
        rows = np.flatnonzero(inf)
        raise ConfigError(
            f"analyze: column {name!r} has {len(rows)} infinite value(s), first at row "
            f"{int(rows[0])} ({out[rows[0]]}); use NaN for a missing value"
        )
    return out


def _moments_from_units(
    df: Any, arm: str, groups: dict[str, tuple[str, ...]]
) -> tuple[dict[str, dict[str, Moments]], dict[str, int]]:
    if arm not in df.columns:
        raise ConfigError(
            f"analyze: no arm column {arm!r} in the data; columns: {list(df.columns)}"
        )
    codes, labels = _arm_codes(df[arm])
    counts_arr = np.bincount(codes[codes >= 0], minlength=len(labels))
    # arms without a single unit (unused categories) are not compared
    counts = {lab: int(c) for lab, c in zip(labels, counts_arr, strict=True) if c > 0}
    out: dict[str, dict[str, Moments]] = {}
    cache: dict[str, np.ndarray] = {}
    for name, cols in groups.items():
        arrays = []
        for c in cols:
            if c not in cache:
                cache[c] = _float_column(df, c)
            arrays.append(cache[c])
        per = _grouped(codes, labels, arrays, cols)
        out[name] = {a: per[a] for a in counts}
    return out, counts


def _grouped(
    codes: np.ndarray, labels: list[str], arrays: list[np.ndarray], cols: tuple[str, ...]
) -> Mapping[Hashable, Moments]:
    """Per-arm moments of ``arrays`` in one pass of the core kernel (negative codes: rows
    without an arm, left out; arms without rows are absent)."""
    from .stats._moments import moments_by_codes

    return moments_by_codes(
        codes, labels, [np.ascontiguousarray(a, dtype=np.float64) for a in arrays], cols
    )


def _moments_from_sums(
    df: Any, arm: str, groups: dict[str, tuple[str, ...]]
) -> tuple[dict[str, dict[str, Moments]], dict[str, int]]:
    for c in (arm, "n"):
        if c not in df.columns:
            raise ConfigError(
                f"analyze: a sufficient-statistics table needs column {c!r}; columns: "
                f"{list(df.columns)}"
            )

    def col(name: str) -> np.ndarray:
        if name not in df.columns:
            raise ConfigError(
                f"analyze: the sufficient-statistics table lacks column {name!r} "
                "(see trafficsplit.sufficient_statistics for the layout)"
            )
        return df[name].to_numpy(dtype=np.float64)

    arms = [str(a) for a in df[arm].tolist()]
    n = col("n")
    out: dict[str, dict[str, Moments]] = {}
    for name, cols in groups.items():
        k = len(cols)
        sums = np.stack([col(f"sum__{c}") for c in cols], axis=1)
        prods = np.empty((len(arms), k, k))
        for i in range(k):
            prods[:, i, i] = col(f"sumsq__{cols[i]}")
            for j in range(i + 1, k):
                prods[:, i, j] = prods[:, j, i] = col(_prod_name(cols[i], cols[j]))
        per: dict[str, Moments] = {}
        for r, a in enumerate(arms):
            m = Moments.from_sums(int(n[r]), sums[r], prods[r], columns=cols)
            per[a] = per[a].merge(m) if a in per else m  # partitions of one arm merge
        out[name] = per
    counts: dict[str, int] = {}
    for a, v in zip(arms, n, strict=True):
        counts[a] = counts.get(a, 0) + int(v)
    return out, counts


def _moments_from_mapping(
    data: Mapping[str, Any], groups: dict[str, tuple[str, ...]]
) -> tuple[dict[str, dict[str, Moments]], dict[str, int]]:
    out: dict[str, dict[str, Moments]] = {}
    for name, cols in groups.items():
        per = data.get(name)
        if not isinstance(per, Mapping) or not per:
            raise ConfigError(
                f"analyze: no moments for {name!r}; the mapping has {sorted(map(str, data))}"
            )
        checked = {}
        for a, m in per.items():
            if not isinstance(m, Moments):
                raise ConfigError(
                    f"analyze: data[{name!r}][{a!r}] must be Moments, got {type(m).__name__}"
                )
            if len(m.columns) < len(cols):
                raise ConfigError(
                    f"analyze: data[{name!r}][{a!r}] has {len(m.columns)} column(s); "
                    f"{name!r} needs {len(cols)} ({', '.join(cols)})"
                )
            checked[str(a)] = m
        out[name] = checked
    # units per arm for the sample-ratio check: the first metric's counts
    first = next(iter(out.values()))
    return out, {a: m.n for a, m in first.items()}


def _prod_name(a: str, b: str) -> str:
    return f"sumprod__{a}__{b}"


def _groups(
    metrics: list[str],
    covariates: dict[str, str],
    ratio_metrics: dict[str, tuple[str, str]],
    guardrails: dict[str, Guardrail],
) -> dict[str, tuple[str, ...]]:
    groups: dict[str, tuple[str, ...]] = {}
    for m in metrics:
        groups[m] = (m, covariates[m]) if m in covariates else (m,)
    for name, (num, den) in ratio_metrics.items():
        groups[name] = (num, den)
    for g in guardrails:
        if g not in groups:
            groups[g] = (g,)
    return groups


def sufficient_statistics(
    data: pd.DataFrame,
    arm: str = "arm",
    metrics: Sequence[str] = (),
    covariates: Mapping[str, str] | Sequence[str] | None = None,
    ratio_metrics: Mapping[str, tuple[str, str]] | None = None,
    guardrails: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The per-arm table ``analyze`` also accepts: one row per arm with ``n``, and for every
    column ``c`` used ``sum__c`` and ``sumsq__c``, and ``sumprod__a__b`` for each metric and
    its covariate and each ratio's numerator and denominator. The same table from SQL::

        SELECT arm, COUNT(*) AS n, SUM(revenue) AS sum__revenue,
               SUM(revenue * revenue) AS sumsq__revenue, ...
        FROM units GROUP BY arm

    Rows with the same arm (per-partition aggregates) are merged by ``analyze``. Values must be
    complete: NaN in a used column is an error here (``analyze`` on units skips them instead).
    ``data`` may also be a polars DataFrame or a pyarrow Table (read as pandas).
    """
    pd = require("pandas", what="sufficient_statistics")
    data = as_pandas_frame(data, "sufficient_statistics")

    metric_list = _names(metrics, "metrics")
    cov = _covariates(covariates, metric_list)
    ratios = _pairs(ratio_metrics, "ratio_metrics")
    guards = _guardrails(guardrails)
    groups = _groups(metric_list, cov, ratios, guards)
    if arm not in data.columns:
        raise ConfigError(f"no arm column {arm!r} in the data; columns: {list(data.columns)}")
    codes, labels = _arm_codes(data[arm])
    cols: list[str] = []
    for g in groups.values():
        cols.extend(c for c in g if c not in cols)
    arrays = {c: _float_column(data, c) for c in cols}
    for c, values in arrays.items():
        bad = int(np.isnan(values).sum())
        if bad:
            raise ConfigError(
                f"sufficient_statistics: column {c!r} has {bad} missing values; fill or drop "
                "them first (sums of incomplete rows would not be consistent)"
            )
    per = _grouped(codes, labels, list(arrays.values()), tuple(cols))
    present = [lab for lab in labels if lab in per]  # unused categories have no row
    # raw sums from the centred moments: Σx = n·mean, Σxy = comoment + n·mean_x·mean_y
    sums = {lab: per[lab].n * per[lab].means for lab in present}
    prods = {
        lab: per[lab].comoments + per[lab].n * np.outer(per[lab].means, per[lab].means)
        for lab in present
    }
    table: dict[str, Any] = {arm: present, "n": [per[lab].n for lab in present]}
    for i, c in enumerate(cols):
        table[f"sum__{c}"] = [sums[lab][i] for lab in present]
        table[f"sumsq__{c}"] = [prods[lab][i, i] for lab in present]
    for g in groups.values():
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                a, b = cols.index(g[i]), cols.index(g[j])
                table[_prod_name(g[i], g[j])] = [prods[lab][a, b] for lab in present]
    return pd.DataFrame(table)


# -- analysis --------------------------------------------------------------------------------


def analyze(
    data: Any,
    arm: str = "arm",
    metrics: Sequence[str] | str = (),
    control: str = "control",
    covariates: Mapping[str, str] | Sequence[str] | None = None,
    ratio_metrics: Mapping[str, tuple[str, str]] | None = None,
    guardrails: Mapping[str, Any] | None = None,
    alpha: float = 0.05,
    correction: str = "auto",
    sequential: Any = None,
    *,
    information: float | None = None,
    previous: Sequence[Analysis] = (),
    weights: Mapping[str, float] | None = None,
    srm_alpha: float = 0.001,
) -> Analysis:
    """Compares every arm with ``control`` on every metric.

    - ``data``: a DataFrame with one row per unit (an ``arm`` column and numeric metric
      columns), or a per-arm sufficient-statistics table (see :func:`sufficient_statistics`).
      pandas, polars and pyarrow tables are read (polars and Arrow through the Arrow C stream
      interface, as pandas); a mapping metric -> {arm: Moments} needs neither.
    - ``metrics``: mean metrics, tested with Welch's t-test; relative lifts by the delta method.
    - ``covariates``: metric → pre-period column; those metrics use CUPED (θ pooled over arms).
    - ``ratio_metrics``: name → (numerator, denominator) per unit, by the delta method.
    - ``guardrails``: metric → :class:`Guardrail` (or a relative margin): one-sided
      non-inferiority tests, not part of the multiple-comparison correction.
    - ``correction``: ``"holm"`` (the default without a sequential design), ``"bonferroni"``,
      ``"bh"`` or ``"none"`` (the default with one), across arms × metrics (guardrails
      excluded). A design spends its own alpha per comparison, so a correction other than
      ``"none"`` with ``sequential`` is refused.
    - ``sequential``: a :class:`~trafficsplit.stats.GroupSequential` design; ``information``
      is this look's information fraction and ``previous`` the analyses of earlier looks, whose
      z statistics form the path the design decides on.
    - ``weights``: the configured arm weights for the sample-ratio check (default: equal).
    """
    data = as_pandas_frame(data, "analyze")
    pd = loaded("pandas")
    check_alpha("analyze", alpha)
    if correction == "auto":
        correction = "none" if sequential is not None else "holm"
    corr = {"fdr_bh": "bh", "benjamini-hochberg": "bh", None: "none"}.get(correction, correction)
    if corr not in CORRECTIONS:
        raise ConfigError(f"analyze: correction must be one of {CORRECTIONS}, got {correction!r}")
    if sequential is not None and corr != "none":
        raise ArgumentError(
            f"analyze: correction={correction!r} does not combine with a sequential design (the "
            "design's boundaries spend its alpha per comparison); use one primary metric per "
            "design, or correction='none'"
        )
    if not (isinstance(data, Mapping) or (pd is not None and isinstance(data, pd.DataFrame))):
        raise ConfigError(
            "analyze: data must be a pandas DataFrame (units or per-arm sums) or a mapping "
            f"metric -> {{arm: Moments}}, got {type(data).__name__}"
        )
    metric_list = _names(metrics, "metrics")
    cov = _covariates(covariates, metric_list)
    ratios = _pairs(ratio_metrics, "ratio_metrics")
    guards = _guardrails(guardrails)
    if not (metric_list or ratios or guards):
        raise ConfigError("analyze: name at least one metric, ratio metric or guardrail")
    groups = _groups(metric_list, cov, ratios, guards)
    plain = [c for g in groups.values() for c in g]
    if isinstance(data, Mapping):
        moments, counts = _moments_from_mapping(data, groups)
    elif _is_sums_table(data, plain):
        moments, counts = _moments_from_sums(data, arm, groups)
    else:
        moments, counts = _moments_from_units(data, arm, groups)
    arms = tuple(counts)
    if control not in counts:
        raise ConfigError(
            f"analyze: control arm {control!r} is not in the data; arms: {list(arms)}"
        )
    if len(arms) < 2:
        raise ConfigError(f"analyze: need control and at least one other arm, got {list(arms)}")
    treatments = [a for a in arms if a != control]

    if weights is None:
        w = {a: 1.0 for a in arms}
    else:
        missing = [a for a in arms if a not in weights]
        if missing:
            raise ConfigError(f"analyze: weights lack arms {missing}; weights: {dict(weights)}")
        w = {str(a): float(v) for a, v in weights.items()}  # a configured arm may have no units
    srm = stats.srm({a: counts.get(a, 0) for a in w}, w, alpha=srm_alpha)

    results: list[dict[str, Any]] = []
    for name in [*metric_list, *ratios]:
        for t in treatments:
            with _context(name, t, control):
                results.append(
                    _compare(name, t, moments[name], control, cov.get(name), name in ratios, alpha)
                )
    # multiple comparisons across arms x metrics (guardrails excluded)
    pvals = np.array([r["pvalue"] for r in results], dtype=float)
    if corr == "none" or not len(pvals):
        adj = pvals
    else:
        adj = np.asarray(stats.adjust_pvalues(pvals, method=corr), dtype=float)
    for r, a in zip(results, adj, strict=True):
        r["adjusted_pvalue"] = float(a)
        r["decision"] = _decision(r, alpha)
    for g, spec in guards.items():
        for t in treatments:
            with _context(g, t, control):
                results.append(_guard(g, t, moments[g], control, spec, alpha))

    looks: tuple[_Look, ...] = ()
    if sequential is not None:
        looks = _sequential(results, sequential, information, previous)
    final = tuple(MetricResult(**r) for r in results)
    return Analysis(
        final,
        srm,
        control,
        arms,
        dict(counts),
        float(alpha),
        corr,
        sequential,
        looks,
    )


@contextlib.contextmanager
def _context(metric: str, arm: str, control: str) -> Iterator[None]:
    """Names the comparison in an error raised while computing it."""
    try:
        yield
    except (ArgumentError, ConfigError) as exc:
        kind = ArgumentError if isinstance(exc, ArgumentError) else ConfigError
        raise kind(f"analyze: metric {metric!r}, arm {arm!r} vs {control!r}: {exc}") from None


def _relative(fn: Any, c: Moments, t: Moments, mean: float, **kw: Any) -> TestResult | None:
    """A relative lift, or None when the control mean is 0 (undefined)."""
    return None if mean == 0 else fn(c, t, **kw)


def _compare(
    name: str,
    arm: str,
    per: Mapping[str, Moments],
    control: str,
    covariate: str | None,
    ratio: bool,
    alpha: float,
) -> dict[str, Any]:
    c, t = per[control], per[arm]
    vr = None
    if ratio:
        method = "ratio"
        absolute = stats.ratio_test(c, t, alpha=alpha)
        cm = c.means[0] / c.means[1] if c.means[1] else math.nan
        tm = t.means[0] / t.means[1] if t.means[1] else math.nan
        relative = _relative(stats.ratio_test, c, t, cm, relative=True, alpha=alpha)
    elif covariate is not None:
        method = "cuped"
        absolute = stats.cuped(c, t, alpha=alpha)
        relative = _relative(stats.cuped, c, t, c.mean, relative=True, alpha=alpha)
        vr = float(absolute.variance_reduction)
        cm, tm = c.mean, t.mean
    else:
        method = "welch"
        absolute = stats.welch_ttest(c, t, alpha=alpha)
        relative = _relative(stats.relative_lift, c, t, c.mean, alpha=alpha)
        cm, tm = c.mean, t.mean
    return {
        "metric": name,
        "arm": arm,
        "kind": "ratio" if ratio else "metric",
        "method": method,
        "n": t.n,
        "mean": float(tm),
        "control_n": c.n,
        "control_mean": float(cm),
        "absolute": absolute,
        "relative": relative,
        "pvalue": float(absolute.pvalue),
        "variance_reduction": vr,
        "statistic": float(absolute.statistic),
    }


def _decision(r: dict[str, Any], alpha: float) -> str:
    p = r["adjusted_pvalue"]
    if not p < alpha:
        return "no difference"
    return "increase" if r["absolute"].estimate > 0 else "decrease"


def _guard(
    name: str, arm: str, per: Mapping[str, Moments], control: str, g: Guardrail, alpha: float
) -> dict[str, Any]:
    c, t = per[control], per[arm]
    ni = stats.noninferiority(
        c, t, g.margin, relative=g.relative, higher_is_better=g.higher_is_better, alpha=alpha
    )
    absolute = stats.welch_ttest(c, t, alpha=alpha)
    relative = _relative(stats.relative_lift, c, t, c.mean, alpha=alpha)
    # harm: the arm is worse than control at all (one-sided at alpha), whatever the margin
    harm_side = "smaller" if g.higher_is_better else "larger"
    harm = stats.welch_ttest(c, t, alpha=alpha, alternative=harm_side)
    if ni.pvalue < alpha:
        decision = "pass"
    elif harm.pvalue < alpha:
        decision = "harm"
    else:
        decision = "inconclusive"
    return {
        "metric": name,
        "arm": arm,
        "kind": "guardrail",
        "method": "noninferiority",
        "n": t.n,
        "mean": t.mean,
        "control_n": c.n,
        "control_mean": c.mean,
        "absolute": absolute,
        "relative": relative,
        "pvalue": float(ni.pvalue),
        "adjusted_pvalue": float(ni.pvalue),
        "decision": decision,
        "statistic": float(ni.statistic),
        "guardrail": ni,
    }


def _sequential(
    results: list[dict[str, Any]],
    design: Any,
    information: float | None,
    previous: Sequence[Analysis],
) -> tuple[_Look, ...]:
    if information is None:
        raise ConfigError(
            "analyze: a sequential design needs information= (this look's information "
            "fraction, e.g. units so far / planned units)"
        )
    if not (isinstance(information, float | int) and information > 0):
        raise ConfigError(f"analyze: information must be > 0, got {information!r}")
    looks: list[_Look] = []  # earlier analyses carry their own paths: keep each look once
    for p in previous:
        for lk in p.looks:
            if not looks or lk.information > looks[-1].information:
                looks.append(lk)
    now = _Look(
        float(information),
        {(r["metric"], r["arm"]): r["statistic"] for r in results if r["kind"] != "guardrail"},
    )
    looks.append(now)
    info = [lk.information for lk in looks]
    if any(b <= a for a, b in itertools.pairwise(info)):
        raise ConfigError(f"analyze: information fractions must increase over looks, got {info}")
    for r in results:
        if r["kind"] == "guardrail":
            continue
        key = (r["metric"], r["arm"])
        z = [lk.z.get(key, math.nan) for lk in looks]
        d = design.decide(z, info)
        if d.reject:
            r["decision"] = "increase" if r["statistic"] > 0 else "decrease"
        else:
            r["decision"] = "no difference" if info[-1] >= 1 else "continue"
    return tuple(looks)
