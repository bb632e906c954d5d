"""``analyze``: every arm against control on every metric (Welch, CUPED, ratio metrics), the
multiple-comparison correction, guardrails (non-inferiority) and sequential decisions."""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .. import stats
from .._frames import as_pandas_frame
from .._optional import loaded
from ..errors import ArgumentError, ConfigError
from ..stats import Moments, TestResult
from ..stats._results import check_alpha
from .data import per_arm_moments
from .metrics import (
    Guardrail,
    column_groups,
    column_names,
    column_pairs,
    covariate_columns,
    guardrail_specs,
)
from .result import Analysis, Look, MetricResult

__all__ = ["CORRECTIONS", "analyze"]

CORRECTIONS = ("holm", "bonferroni", "bh", "none")


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
    metric_list = column_names(metrics, "metrics")
    cov = covariate_columns(covariates, metric_list)
    ratios = column_pairs(ratio_metrics, "ratio_metrics")
    guards = guardrail_specs(guardrails)
    if not (metric_list or ratios or guards):
        raise ConfigError("analyze: name at least one metric, ratio metric or guardrail")
    groups = column_groups(metric_list, cov, ratios, guards)
    moments, counts = per_arm_moments(data, arm, groups)
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

    looks: tuple[Look, ...] = ()
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
        w,
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
) -> tuple[Look, ...]:
    if information is None:
        raise ConfigError(
            "analyze: a sequential design needs information= (this look's information "
            "fraction, e.g. units so far / planned units)"
        )
    if not (isinstance(information, float | int) and information > 0):
        raise ConfigError(f"analyze: information must be > 0, got {information!r}")
    looks: list[Look] = []  # earlier analyses carry their own paths: keep each look once
    for p in previous:
        for lk in p.looks:
            if not looks or lk.information > looks[-1].information:
                looks.append(lk)
    now = Look(
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
