"""Always-valid inference for continuous monitoring: the mixture sequential probability ratio
test (mSPRT) with its always-valid p-values and intervals, and asymptotic confidence sequences.
Unlike a group-sequential design these need no plan of looks: the p-value stays valid however
often one looks. The formulas and sources are in ``docs/statistics-sequential.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._core import stats as _stats
from ..errors import ArgumentError
from ._moments import Moments, as_moments
from ._results import TestResult, check_level, float_array

__all__ = [
    "AlwaysValidPath",
    "AlwaysValidResult",
    "confidence_sequence",
    "confidence_sequence_from_estimate",
    "msprt",
    "msprt_path",
    "msprt_path_from_estimates",
]

DEFAULT_TUNING = 5000.0


@dataclass(frozen=True)
class AlwaysValidResult(TestResult):
    """A :class:`TestResult` that stays valid under continuous monitoring.

    ``pvalue`` is always valid (P(ever <= alpha) <= alpha under the null, however often one
    looks) and ``ci`` is one look of a confidence sequence. ``likelihood_ratio`` is the mixture
    likelihood ratio (the e-value) Lambda of the look, ``tau2`` the mixing variance used and
    ``tuning`` the N* it came from (``None`` when ``tau2`` was given).
    """

    likelihood_ratio: float | None = None
    tau2: float | None = None
    tuning: float | None = None


@dataclass(frozen=True, eq=False)
class AlwaysValidPath:
    """The mSPRT over a sequence of looks (one entry per look in each array).

    ``pvalue`` is the running always-valid p-value p_n = min(p_{n-1}, 1/Lambda_n) and
    ``ci_low``/``ci_high`` the running intersection of the always-valid intervals;
    ``likelihood_ratio`` is Lambda_n (``inf`` where it overflows; ``log_likelihood_ratio`` is
    exact).
    """

    estimate: np.ndarray
    se: np.ndarray
    tau2: np.ndarray
    log_likelihood_ratio: np.ndarray
    pvalue: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    alpha: float
    null: float

    @property
    def likelihood_ratio(self) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.exp(self.log_likelihood_ratio)

    @property
    def reject(self) -> bool:
        """True once the always-valid p-value has fallen to ``alpha`` or below."""
        return bool(self.pvalue.size and self.pvalue[-1] <= self.alpha)

    @property
    def first_rejection(self) -> int | None:
        """Index of the first look with p <= alpha, or ``None``."""
        hits = np.flatnonzero(self.pvalue <= self.alpha)
        return int(hits[0]) if hits.size else None


def _two_arms(control: Any, treatment: Any, where: str) -> tuple[Moments, Moments]:
    c, t = as_moments(control), as_moments(treatment)
    for name, m in (("control", c), ("treatment", t)):
        if m.n < 2:
            raise ArgumentError(f"{where}: {name} needs at least 2 observations, has {m.n}")
        if not (math.isfinite(m.var) and m.var >= 0):
            raise ArgumentError(f"{where}: {name} variance is not finite ({m.var!r})")
    return c, t


def _difference(c: Moments, t: Moments, where: str) -> tuple[float, float, float]:
    """(estimate, variance of the estimate, total n) of mean(treatment) - mean(control)."""
    var = c.var / c.n + t.var / t.n
    if not var > 0:
        raise ArgumentError(f"{where}: both arms have zero variance; the test is undefined")
    return t.mean - c.mean, var, float(c.n + t.n)


def _mixing_variance(
    tau2: float | None,
    effect: float | None,
    tuning: float | None,
    alpha: float,
    variance: float,
    n: float,
    where: str,
) -> tuple[float, float | None]:
    """The mSPRT mixing variance and the N* behind it (None when given directly)."""
    if tau2 is not None:
        if effect is not None:
            raise ArgumentError(f"{where}: give tau2 or effect, not both")
        t2 = float(tau2)
        if not (t2 > 0 and math.isfinite(t2)):
            raise ArgumentError(f"{where}: tau2 must be finite and > 0, got {tau2!r}")
        return t2, None
    if effect is not None:
        e = float(effect)
        if not (e != 0 and math.isfinite(e)):
            raise ArgumentError(f"{where}: effect must be finite and non-zero, got {effect!r}")
        return e * e, None
    nstar = DEFAULT_TUNING if tuning is None else float(tuning)
    return _tuned_tau2(alpha, nstar, variance, n), nstar


def _tuned_tau2(alpha: float, nstar: float, variance: float, n: float) -> float:
    """The N* rule: tau2 = n · variance · rho^2 with rho^2 = (-2 ln alpha + ln(1 - 2 ln alpha)) / N*
    (two-sided), so that the mixture is tightest near n = N*."""
    return n * variance * _stats.confidence_sequence_rho2(alpha, nstar, 2)


def msprt(
    control: Any,
    treatment: Any,
    tau2: float | None = None,
    alpha: float = 0.05,
    null: float = 0.0,
    *,
    effect: float | None = None,
    tuning: float | None = None,
) -> AlwaysValidResult:
    """Mixture sequential probability ratio test (Johari et al. 2017/2022) of
    mean(treatment) - mean(control), two-sided, for normal (or large-sample) data.

    With the difference estimate D ~ N(theta, v), v = var_T/n_T + var_C/n_C, and the mixing
    distribution theta ~ N(null, tau2),
    ``Lambda = sqrt(v/(v+tau2)) exp(tau2 (D - null)^2 / (2 v (v + tau2)))``; the always-valid
    p-value is ``min(1, 1/Lambda)`` and the interval ``D ± sqrt(2v(v+tau2)/tau2 ·
    ln(sqrt((v+tau2)/v)/alpha))``. With n units per arm and V = var_C + var_T, v = V/n gives
    Johari's formula.

    Choosing ``tau2`` (the mixing variance, on the squared scale of the effect): the test has
    most power against effects near sqrt(tau2) at the sample size of interest. Either

    - ``tau2=`` directly;
    - ``effect=``: the effect you expect or care about, tau2 = effect**2 (Johari et al.'s
      heuristic); or
    - by default the GrowthBook/Eppo tuning: tau2 = rho^2 · n · v with n = n_C + n_T and
      rho^2 = (-2 ln alpha + ln(1 - 2 ln alpha)) / N*, ``tuning`` = N* = 5000 total units,
      which makes the result identical to :func:`confidence_sequence` with the same N* (the
      interval is tightest near n = N*: set N* to the sample size you expect to stop at).

    >>> control, treatment = [0.0, 1.0, 2.0, 3.0] * 50, [0.2, 1.2, 2.2, 3.2] * 50
    >>> r = msprt(control, treatment, tau2=0.1)
    >>> round(r.statistic, 2), round(r.pvalue, 4)  # z = 1.78 is not enough when peeking
    (1.78, 0.7276)
    """
    where = "msprt"
    a = check_level(alpha, where, 1.0)
    c, t = _two_arms(control, treatment, where)
    est, var, n = _difference(c, t, where)
    t2, nstar = _mixing_variance(tau2, effect, tuning, a, var, n, where)
    return _two_sided_mixture(est, var, t2, a, null, "mSPRT (normal mixture)", nstar)


def _two_sided_mixture(
    est: float, var: float, t2: float, a: float, null: float, method: str, nstar: float | None
) -> AlwaysValidResult:
    """The normal-mixture likelihood ratio, always-valid p-value and interval at one look."""
    log_lr, p, lo, hi, _ = _stats.msprt_path([est], [var], [t2], a, float(null))
    se = math.sqrt(var)
    return AlwaysValidResult(
        estimate=est,
        ci=(float(lo[0]), float(hi[0])),
        pvalue=float(p[0]),
        statistic=(est - float(null)) / se,
        se=se,
        df=None,
        alpha=a,
        alternative="two-sided",
        method=method,
        likelihood_ratio=_exp(float(log_lr[0])),
        tau2=t2,
        tuning=nstar,
    )


def _exp(x: float) -> float:
    return math.exp(x) if x < 709.0 else math.inf


def msprt_path_from_estimates(
    estimate: Sequence[float] | np.ndarray,
    variance: Sequence[float] | np.ndarray,
    tau2: float | Sequence[float] | np.ndarray,
    alpha: float = 0.05,
    null: float = 0.0,
) -> AlwaysValidPath:
    """mSPRT over looks given the effect estimate and its variance (se**2) at each look;
    ``tau2`` is one mixing variance for all looks (the usual choice) or one per look."""
    a = check_level(alpha, "msprt_path", 1.0)
    est = float_array(estimate, "msprt_path: estimate")
    var = float_array(variance, "msprt_path: variance")
    t2 = float_array(tau2, "msprt_path: tau2")
    log_lr, p, lo, hi, _ = _stats.msprt_path(est.tolist(), var.tolist(), t2.tolist(), a, null)
    return AlwaysValidPath(
        estimate=est,
        se=np.sqrt(var),
        tau2=np.broadcast_to(t2, est.shape).copy() if t2.size == 1 else t2,
        log_likelihood_ratio=np.asarray(log_lr),
        pvalue=np.asarray(p),
        ci_low=np.asarray(lo),
        ci_high=np.asarray(hi),
        alpha=a,
        null=float(null),
    )


def msprt_path(
    controls: Sequence[Any],
    treatments: Sequence[Any],
    tau2: float | None = None,
    alpha: float = 0.05,
    null: float = 0.0,
    *,
    effect: float | None = None,
    tuning: float | None = None,
) -> AlwaysValidPath:
    """mSPRT at each look of a monitored experiment: ``controls[k]`` and ``treatments[k]`` are
    the *cumulative* data (``Moments`` or raw values) up to look k. The p-value is the running
    p_n = min(p_{n-1}, 1/Lambda_n), the interval the running intersection.

    ``tau2`` and ``effect`` fix the mixing variance for every look, as the theory asks. With
    neither, each look uses the N* rule of :func:`msprt` on that look's variance estimate (the
    asymptotic confidence sequence of Waudby-Smith et al., whose validity is asymptotic too).
    """
    if len(controls) != len(treatments):
        raise ArgumentError(
            f"msprt_path: {len(controls)} control looks but {len(treatments)} treatment looks"
        )
    if len(controls) == 0:
        raise ArgumentError("msprt_path: no looks")
    a = check_level(alpha, "msprt_path", 1.0)
    ests, vars_, taus = [], [], []
    for k, (ctl, trt) in enumerate(zip(controls, treatments, strict=True)):
        where = f"msprt_path (look {k})"
        c, t = _two_arms(ctl, trt, where)
        est, var, n = _difference(c, t, where)
        t2, _ = _mixing_variance(tau2, effect, tuning, a, var, n, where)
        ests.append(est)
        vars_.append(var)
        taus.append(t2)
    return msprt_path_from_estimates(ests, vars_, taus, a, null)


def confidence_sequence_from_estimate(
    estimate: float,
    se: float,
    n: float,
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
    sides: int = 2,
    null: float = 0.0,
    alternative: str | None = None,
) -> AlwaysValidResult:
    """Asymptotic confidence sequence (Waudby-Smith et al. 2024, as in GrowthBook) for any
    asymptotically normal estimate with standard error ``se`` from ``n`` units in total (e.g. a
    relative lift by the delta method). See :func:`confidence_sequence`."""
    a = check_level(alpha, "confidence_sequence", 1.0 if sides == 2 else 0.5)
    if isinstance(sides, bool) or sides not in (1, 2):
        raise ArgumentError(f"confidence_sequence: sides must be 1 or 2, got {sides!r}")
    est, s = float(estimate), float(se)
    if not (math.isfinite(est) and math.isfinite(s) and s > 0):
        raise ArgumentError(
            f"confidence_sequence: need a finite estimate and se > 0, got {estimate!r}, {se!r}"
        )
    nn = float(n)
    if not (nn > 0 and math.isfinite(nn)):
        raise ArgumentError(f"confidence_sequence: n must be finite and > 0, got {n!r}")
    nstar = float(tuning)
    var = s * s
    if sides == 2:
        if alternative not in (None, "two-sided"):
            raise ArgumentError("confidence_sequence: sides=2 is the two-sided alternative")
        t2 = _tuned_tau2(a, nstar, var, nn)
        return _two_sided_mixture(est, var, t2, a, null, "asymptotic confidence sequence", nstar)
    alt = "larger" if alternative is None else alternative
    if alt not in ("larger", "smaller"):
        raise ArgumentError(
            f"confidence_sequence: one-sided alternative must be 'larger' or 'smaller', "
            f"got {alternative!r}"
        )
    hw = _stats.one_sided_cs_half_width(var, nn, a, nstar)
    distance = est - float(null) if alt == "larger" else float(null) - est
    p1 = _stats.one_sided_cs_pvalue(distance, var, nn, a, nstar)
    ci = (est - hw, math.inf) if alt == "larger" else (-math.inf, est + hw)
    return AlwaysValidResult(
        estimate=est,
        ci=ci,
        pvalue=float(p1),
        statistic=(est - float(null)) / s,
        se=s,
        alpha=a,
        alternative=alt,
        method="asymptotic confidence sequence",
        likelihood_ratio=None,
        tau2=None,
        tuning=nstar,
    )


def confidence_sequence(
    control: Any,
    treatment: Any,
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
    sides: int = 2,
    null: float = 0.0,
    alternative: str | None = None,
) -> AlwaysValidResult:
    """Asymptotic confidence sequence for mean(treatment) - mean(control) (Waudby-Smith,
    Arbour, Sinha, Kennedy, Ramdas 2024; GrowthBook's sequential test, Eppo's with N* = 10000).

    With n = n_C + n_T, se the standard error of the difference, s^2 = n se^2 and
    rho^2 = (-2 ln alpha + ln(1 - 2 ln alpha)) / N* (``tuning`` = N*), the two-sided half-width
    is ``s sqrt(2 (n rho^2 + 1) / (n^2 rho^2) ln(sqrt(n rho^2 + 1) / alpha))`` and the p-value
    min(1, 1/E) with E the mSPRT likelihood ratio for tau2 = s^2 rho^2 (the same object as
    :func:`msprt`). The interval is tightest near n = N*: set N* to the total number of units
    you expect when you stop. ``sides=1`` uses the one-sided bound
    ``s sqrt(2 (n rho^2 + 1)/(n^2 rho^2) ln(1 + sqrt(n rho^2 + 1)/(2 alpha)))`` (rho from
    2 alpha), ``alternative`` "larger" (default) or "smaller".

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> r = confidence_sequence(rng.normal(0, 1, 2000), rng.normal(0.3, 1, 2000))
    >>> r.ci[0] > 0
    True
    """
    where = "confidence_sequence"
    c, t = _two_arms(control, treatment, where)
    est, var, n = _difference(c, t, where)
    return confidence_sequence_from_estimate(
        est, math.sqrt(var), n, alpha, tuning, sides, null, alternative
    )
