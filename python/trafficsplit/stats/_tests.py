"""Frequentist tests and intervals: Welch t and z tests of means, two proportions, relative lift,
ratio metrics, CUPED and non-inferiority. Each function reduces its inputs to per-arm sufficient
statistics (:class:`Moments`) and calls one closed-form kernel of the C++ core.

Formulas, defaults and sources: ``docs/statistics.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._core import stats as _core
from ..errors import ArgumentError
from ._moments import Moments, as_moments
from ._results import ALTERNATIVES, TestResult, check_alpha

__all__ = [
    "CupedResult",
    "LiftResult",
    "cuped",
    "noninferiority",
    "proportions_ztest",
    "ratio_metric",
    "ratio_test",
    "relative_lift",
    "welch_ttest",
    "ztest_means",
]

LIFT_METHODS = ("delta", "fieller", "log")


@dataclass(frozen=True)
class LiftResult(TestResult):
    """A relative-lift result. ``bounded`` is False when Fieller's interval is not a finite
    interval (the control mean is not significantly different from 0 at ``alpha``): then
    ``ci == (-inf, inf)``."""

    bounded: bool = True


@dataclass(frozen=True)
class CupedResult(TestResult):
    """A CUPED-adjusted test. ``theta`` is the regression coefficient of the metric on the
    covariate pooled over both arms; ``variance_reduction`` the achieved
    ``1 - se_adjusted² / se_unadjusted²``; ``unadjusted`` the same test without the covariate."""

    theta: float = 0.0
    variance_reduction: float = 0.0
    unadjusted: TestResult | None = None


# -- input checks and conversions -------------------------------------------------------------
def _check(fn: str, alpha: float, alternative: str) -> None:
    check_alpha(fn, alpha)
    if alternative not in ALTERNATIVES:
        raise ArgumentError(
            f"{fn}: alternative must be one of {', '.join(map(repr, ALTERNATIVES))}, "
            f"got {alternative!r}"
        )


class _Arm(tuple[float, float, float]):
    """(n, mean, variance) of one arm, and how many of its values were left out."""

    skipped: int

    def __new__(cls, n: float, mean: float, var: float, skipped: int) -> _Arm:
        arm = super().__new__(cls, (n, mean, var))
        arm.skipped = skipped
        return arm


def _arm(fn: str, name: str, x: Any) -> _Arm:
    m = as_moments(x)
    if m.n < 2:
        raise ArgumentError(f"{fn}: {name} needs n >= 2 values to estimate a variance, got n={m.n}")
    # Moments given as such count their own skipped rows; raw values report theirs here.
    skipped = 0 if isinstance(x, Moments) else int(m.skipped)
    return _Arm(float(m.n), m.mean, m.var, skipped)


def _result(
    r: _core.TestStat,
    alpha: float,
    alternative: str,
    method: str,
    cls: type = TestResult,
    **extra: Any,
) -> Any:
    return cls(
        estimate=r.estimate,
        ci=(r.ci_low, r.ci_high),
        pvalue=r.pvalue,
        statistic=r.statistic,
        se=r.se,
        df=None if math.isinf(r.df) else r.df,
        alpha=alpha,
        alternative=alternative,
        method=method,
        **extra,
    )


def _lift(
    fn: str,
    c: tuple[float, float, float],
    t: tuple[float, float, float],
    alpha: float,
    method: str,
    alternative: str,
    use_t: bool,
    null: float,
    what: str = "mean",
) -> _core.TestStat:
    """The core's relative lift of two ``(n, mean, var)`` summaries; refused when the control
    mean (``what``) is 0."""
    if c[1] == 0:
        raise ArgumentError(f"{fn}: control {what} is 0, the relative lift is undefined")
    return _core.relative_lift(*c, *t, alpha, method, alternative, use_t, null)


def _pair(fn: str, name: str, value: Any) -> tuple[float, float]:
    try:
        a, b = value
        return float(a), float(b)
    except (TypeError, ValueError):
        raise ArgumentError(
            f"{fn}: {name} must be a pair (control, treatment), got {value!r}"
        ) from None


# -- means ------------------------------------------------------------------------------------
def welch_ttest(
    control: Any,
    treatment: Any,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    null: float = 0.0,
) -> TestResult:
    """Welch's t test of ``mean_t - mean_c`` against ``null`` (Welch–Satterthwaite df).

    ``control`` and ``treatment`` are raw values or :class:`Moments`. ``alternative`` is
    ``"two-sided"``, ``"larger"`` (H1: difference > null) or ``"smaller"``. Matches
    ``scipy.stats.ttest_ind(treatment, control, equal_var=False)``.

    >>> r = welch_ttest([1, 2, 3, 4], [2, 3, 4, 5, 6])
    >>> round(r.estimate, 3), r.df is not None
    (1.5, True)
    """
    _check("welch_ttest", alpha, alternative)
    c = _arm("welch_ttest", "control", control)
    t = _arm("welch_ttest", "treatment", treatment)
    d = _core.welch_ttest(*c, *t, alpha, alternative, float(null))
    return _result(d, alpha, alternative, "welch t", skipped=c.skipped + t.skipped)


def ztest_means(
    control: Any,
    treatment: Any,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    null: float = 0.0,
) -> TestResult:
    """z test of ``mean_t - mean_c`` with the unpooled standard error ``√(s_t²/n_t + s_c²/n_c)``
    referred to the normal (large samples; statsmodels
    ``CompareMeans.ztest_ind(usevar='unequal')``).

    >>> ztest_means([1, 2, 3, 4], [2, 3, 4, 5, 6]).df is None
    True
    """
    _check("ztest_means", alpha, alternative)
    c = _arm("ztest_means", "control", control)
    t = _arm("ztest_means", "treatment", treatment)
    d = _core.ztest_means(*c, *t, alpha, alternative, float(null))
    return _result(d, alpha, alternative, "z", skipped=c.skipped + t.skipped)


# -- proportions ------------------------------------------------------------------------------
def proportions_ztest(
    successes: Sequence[float],
    trials: Sequence[float],
    pooled: bool = True,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    null: float = 0.0,
) -> TestResult:
    """Two-proportion z test of ``p_t - p_c``; ``successes`` and ``trials`` are
    ``(control, treatment)`` pairs.

    ``pooled=True`` (default) computes the statistic with the pooled SE under H0,
    ``√(p̄(1-p̄)(1/n_c + 1/n_t))``: it is the standard test (z² is Pearson's 2×2 χ² without
    Yates' correction) and equals statsmodels ``proportions_ztest``. ``pooled=False`` uses the
    unpooled (Wald) SE, as gbstats and statsmodels ``test_proportions_2indep(method="wald")``.
    The confidence interval always uses the Wald SE: pooling assumes H0, which an interval for
    the difference must not.

    >>> r = proportions_ztest((1000, 1100), (10000, 10000))
    >>> round(r.statistic, 6), round(r.pvalue, 6)
    (2.306635, 0.021075)
    """
    fn = "proportions_ztest"
    _check(fn, alpha, alternative)
    xc, xt = _pair(fn, "successes", successes)
    nc, nt = _pair(fn, "trials", trials)
    d = _core.proportions_ztest(xc, nc, xt, nt, bool(pooled), alpha, alternative, float(null))
    return _result(
        d, alpha, alternative, "two-proportion z (" + ("pooled" if pooled else "wald") + ")"
    )


# -- relative lift ----------------------------------------------------------------------------
def relative_lift(
    control: Any,
    treatment: Any,
    alpha: float = 0.05,
    method: str = "delta",
    alternative: str = "two-sided",
    *,
    use_t: bool = True,
    null: float = 0.0,
) -> LiftResult:
    """Relative lift ``(mean_t - mean_c)/|mean_c|`` (= ``mean_t/mean_c - 1`` for a positive
    control mean) with a confidence interval.

    ``method``: ``"delta"`` (default; symmetric, the control mean's noise included),
    ``"fieller"`` (exact for a ratio of normal means; asymmetric; when the control mean is not
    significantly nonzero the interval is unbounded: ``ci == (-inf, inf)`` and
    ``bounded=False``) or ``"log"`` (interval on log(mean_t/mean_c), positive means only).
    The statistic belongs to the method's pivot at no lift. ``use_t`` refers it to Student's t
    with Welch df (gbstats), else to the normal. ``null`` (delta method only) is the relative
    lift under H0, as for a relative non-inferiority margin.

    >>> r = relative_lift([10, 11, 9, 10], [11, 12, 10, 11])
    >>> round(r.estimate, 3)
    0.1
    """
    fn = "relative_lift"
    _check(fn, alpha, alternative)
    if method not in LIFT_METHODS:
        raise ArgumentError(f"{fn}: method must be 'delta', 'fieller' or 'log', got {method!r}")
    c = _arm(fn, "control", control)
    t = _arm(fn, "treatment", treatment)
    d = _lift(fn, c, t, alpha, method, alternative, bool(use_t), float(null))
    return _result(
        d,
        alpha,
        alternative,
        f"relative lift ({method})",
        LiftResult,
        bounded=d.bounded,
        skipped=c.skipped + t.skipped,
    )


def _is_pair_of_arrays(x: Any) -> bool:
    return isinstance(x, (tuple, list)) and len(x) == 2 and all(np.ndim(v) == 1 for v in x)


# ``(n, mean_i, mean_j, var_i, var_j, cov_ij)``, the core's two-column summary.
_Six = tuple[float, float, float, float, float, float]


def _pair_summary(fn: str, name: str, m: Moments, i: int, j: int) -> _Six:
    """``(n, mean_i, mean_j, var_i, var_j, cov_ij)``: what the core's two-column kernels read."""
    if m.n < 2:
        raise ArgumentError(f"{fn}: {name} needs n >= 2 units, got n={m.n}")
    return (float(m.n), float(m.means[i]), float(m.means[j]), m.cov(i, i), m.cov(j, j), m.cov(i, j))


# -- ratio metrics ----------------------------------------------------------------------------
def _ratio_moments(fn: str, name: str, x: Any) -> Moments:
    if isinstance(x, Moments):
        m = x
    elif _is_pair_of_arrays(x):
        m = Moments.from_values(x[0], x[1])
    else:
        raise ArgumentError(
            f"{fn}: {name} must be Moments with numerator and denominator columns "
            "or a pair (numerator values, denominator values)"
        )
    if len(m.columns) < 2:
        raise ArgumentError(f"{fn}: {name} has {len(m.columns)} column; a ratio needs two")
    return m


def _ratio_summary(
    fn: str, name: str, m: Moments, numerator: int | str, denominator: int | str
) -> _Six:
    i, j = m.index(numerator), m.index(denominator)
    k = len(m.columns)
    for label, col in (("numerator", i), ("denominator", j)):
        if not 0 <= col < k:
            raise ArgumentError(f"{fn}: {label} column {col} out of range for {k} columns")
    return _pair_summary(fn, name, m, i, j)


def ratio_metric(
    moments: Any, numerator: int | str = 0, denominator: int | str = 1
) -> tuple[float, float]:
    """A ratio metric ``ΣX/ΣY`` over randomisation units and its delta-method standard error
    ``√((s_X²/Ȳ² - 2X̄ s_XY/Ȳ³ + X̄² s_Y²/Ȳ⁴)/n)`` (Deng et al., KDD 2018).

    ``moments`` holds one row per randomisation unit (numerator and denominator columns), or is
    a pair ``(numerator values, denominator values)``.

    >>> r, se = ratio_metric(([1, 2, 0, 3], [2, 4, 1, 5]))
    >>> round(r, 4)
    0.5
    """
    m = _ratio_moments("ratio_metric", "moments", moments)
    s = _ratio_summary("ratio_metric", "moments", m, numerator, denominator)
    r, se = _core.ratio_metric(s)
    return float(r), float(se)


def ratio_test(
    control: Any,
    treatment: Any,
    numerator: int | str = 0,
    denominator: int | str = 1,
    relative: bool = False,
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> TestResult:
    """z test of the difference (``relative=True``: relative difference) of two ratio metrics,
    each with its delta-method SE (numerator/denominator covariance included)."""
    fn = "ratio_test"
    _check(fn, alpha, alternative)
    c = _ratio_summary(
        fn, "control", _ratio_moments(fn, "control", control), numerator, denominator
    )
    t = _ratio_summary(
        fn, "treatment", _ratio_moments(fn, "treatment", treatment), numerator, denominator
    )
    d = _core.ratio_test(c, t, bool(relative), alpha, alternative)
    return _result(d, alpha, alternative, "ratio (delta)" + (" relative" if relative else ""))


# -- CUPED ------------------------------------------------------------------------------------
def _cuped_summary(fn: str, name: str, x: Any, covariate: int | str) -> _Six:
    if isinstance(x, Moments):
        m = x
    elif _is_pair_of_arrays(x):
        m = Moments.from_values(x[0], x[1])
        covariate = 1
    else:
        raise ArgumentError(
            f"{fn}: {name} must be Moments (metric in column 0, covariate column) "
            "or a pair (metric values, covariate values)"
        )
    j = m.index(covariate)
    if not 0 < j < len(m.columns):
        raise ArgumentError(
            f"{fn}: covariate column {covariate!r} must be one of columns 1..{len(m.columns) - 1}"
        )
    return _pair_summary(fn, name, m, 0, j)


def cuped(
    control: Any,
    treatment: Any,
    covariate: int | str = 1,
    alpha: float = 0.05,
    relative: bool = False,
    alternative: str = "two-sided",
) -> CupedResult:
    """CUPED (Deng, Xu, Kohavi, Walker 2013): the Welch test of ``y - θ·x`` where ``x`` is a
    pre-period covariate and ``θ = Cov(y, x)/Var(x)`` is pooled over both arms (gbstats).

    ``control``/``treatment``: :class:`Moments` with the metric in column 0 and the covariate in
    column ``covariate``, or pairs ``(y values, x values)``. ``relative=True`` tests the relative
    lift with the CUPED delta-method variance of growthbook PR #3610.

    >>> x = [1, 2, 3, 4, 5, 6]
    >>> r = cuped(([2.0, 4.1, 6.0, 8.2, 9.9, 12.0], x), ([3.1, 5.0, 7.1, 9.0, 11.2, 13.0], x))
    >>> round(r.theta, 2), r.variance_reduction > 0.9
    (1.99, True)
    """
    fn = "cuped"
    _check(fn, alpha, alternative)
    c = _cuped_summary(fn, "control", control, covariate)
    t = _cuped_summary(fn, "treatment", treatment, covariate)
    if relative and c[1] == 0:
        raise ArgumentError(f"{fn}: control mean is 0, the relative lift is undefined")
    d = _core.cuped(c, t, alpha, bool(relative), alternative)
    kind = "relative" if relative else "absolute"
    unadjusted = _result(d.unadjusted, alpha, alternative, f"welch t ({kind})")
    return _result(
        d.adjusted,
        alpha,
        alternative,
        f"cuped welch t ({kind})",
        CupedResult,
        theta=d.theta,
        variance_reduction=d.variance_reduction,
        unadjusted=unadjusted,
    )


# -- non-inferiority --------------------------------------------------------------------------
def noninferiority(
    control: Any,
    treatment: Any,
    margin: float,
    relative: bool = False,
    higher_is_better: bool = True,
    alpha: float = 0.05,
    kind: str = "mean",
) -> TestResult:
    """One-sided non-inferiority test for a guardrail metric.

    With ``higher_is_better`` H0 is "the treatment is worse by at least ``margin``"
    (``Δ ≤ -margin``) and H1 ``Δ > -margin``; otherwise H0 ``Δ ≥ margin``, H1 ``Δ < margin``.
    ``Δ`` is the difference ``t - c`` or, with ``relative=True``, the relative lift (delta
    method) and ``margin`` a fraction (0.02 = 2 %). A small p-value shows non-inferiority.

    ``kind="mean"``: raw values or :class:`Moments`, Welch t. ``kind="proportion"``:
    ``(successes, trials)`` pairs per arm, Wald z (statsmodels
    ``test_proportions_2indep(..., value=-margin, alternative="larger", method="wald")``).

    >>> r = noninferiority((1020, 10000), (1000, 10000), margin=0.01, kind="proportion")
    >>> round(r.pvalue, 5)
    0.03024
    """
    fn = "noninferiority"
    _check(fn, alpha, "larger")
    if not isinstance(margin, (int, float)) or not math.isfinite(margin) or margin <= 0:
        raise ArgumentError(f"{fn}: margin must be a finite number > 0, got {margin!r}")
    if kind not in ("mean", "proportion"):
        raise ArgumentError(f"{fn}: kind must be 'mean' or 'proportion', got {kind!r}")
    alternative = "larger" if higher_is_better else "smaller"
    null = -float(margin) if higher_is_better else float(margin)
    scale = "relative" if relative else "absolute"
    method = f"non-inferiority ({kind}, {scale} margin {margin:g})"
    if kind == "proportion":
        xc, nc = _pair(fn, "control", control)
        xt, nt = _pair(fn, "treatment", treatment)
        if not relative:
            d = _core.proportions_ztest(xc, nc, xt, nt, False, alpha, alternative, null)
            return _result(d, alpha, alternative, method)
        for name, x, n in (("control", xc, nc), ("treatment", xt, nt)):
            if not (n >= 2 and 0 <= x <= n):
                raise ArgumentError(
                    f"{fn}: {name} must have trials >= 2 and 0 <= successes <= "
                    f"trials, got ({x!r}, {n!r})"
                )
        pc, pt = xc / nc, xt / nt
        c = (nc, pc, pc * (1 - pc))
        t = (nt, pt, pt * (1 - pt))
        d = _lift(fn, c, t, alpha, "delta", alternative, False, null, "proportion")
        return _result(d, alpha, alternative, method)
    c = _arm(fn, "control", control)
    t = _arm(fn, "treatment", treatment)
    if relative:
        d = _lift(fn, c, t, alpha, "delta", alternative, True, null)
    else:
        d = _core.welch_ttest(*c, *t, alpha, alternative, null)
    return _result(d, alpha, alternative, method, skipped=c.skipped + t.skipped)
