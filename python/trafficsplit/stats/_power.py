"""Power, sample size and minimum detectable effect (MDE) for proportions and means.

Normal approximations throughout; sizes are units per arm, ``ratio = n_treatment / n_control``.
With ``arms > 2`` every treatment is compared with the control at the Bonferroni level
``alpha / (arms - 1)``. Formulas and sources: ``docs/statistics.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._core import stats as _core
from ..errors import ArgumentError
from ._results import check_alpha

__all__ = [
    "SampleSize",
    "days_needed",
    "mde_means",
    "mde_proportions",
    "power_means",
    "power_proportions",
    "sample_size_means",
    "sample_size_proportions",
]


@dataclass(frozen=True)
class SampleSize:
    """Units needed: ``control`` and ``treatment`` per arm (rounded up), ``total`` over all
    arms (control + (arms - 1) treatments); ``exact`` and ``exact_treatment`` are the unrounded
    per-arm sizes (inflation included)."""

    control: int
    treatment: int
    total: int
    exact: float
    exact_treatment: float
    arms: int = 2


def _ceil(x: float) -> int:
    # Absorb floating error in results that are integers analytically (e.g. 392.00000000001).
    return math.ceil(x * (1 - 1e-12))


def _design(fn: str, alpha: float, sides: int, ratio: float, arms: int) -> float:
    check_alpha(fn, alpha)
    if sides not in (1, 2):
        raise ArgumentError(f"{fn}: sides must be 1 or 2, got {sides!r}")
    _check_positive(fn, "ratio (n_treatment / n_control)", ratio)
    if not isinstance(arms, int) or isinstance(arms, bool) or arms < 2:
        raise ArgumentError(f"{fn}: arms must be an integer >= 2, got {arms!r}")
    return alpha / (arms - 1)


def _check_positive(fn: str, name: str, x: float) -> None:
    if not isinstance(x, (int, float)) or not math.isfinite(x) or x <= 0:
        raise ArgumentError(f"{fn}: {name} must be > 0, got {x!r}")


def _check_power(fn: str, power: float) -> None:
    if not isinstance(power, (int, float)) or not 0 < power < 1:
        raise ArgumentError(f"{fn}: power must be in (0, 1), got {power!r}")


def _sizes(control: float, treatment: float, arms: int, inflation: float, fn: str) -> SampleSize:
    if not isinstance(inflation, (int, float)) or not math.isfinite(inflation) or inflation < 1:
        raise ArgumentError(f"{fn}: inflation must be a finite number >= 1, got {inflation!r}")
    c, t = control * inflation, treatment * inflation
    nc, nt = _ceil(c), _ceil(t)
    return SampleSize(nc, nt, nc + (arms - 1) * nt, c, t, arms)


def _check_baseline(fn: str, baseline: float) -> None:
    if not isinstance(baseline, (int, float)) or not 0 < baseline < 1:
        raise ArgumentError(f"{fn}: baseline must be a proportion in (0, 1), got {baseline!r}")


def _abs_proportion_mde(fn: str, baseline: float, mde: float, relative: bool) -> float:
    _check_baseline(fn, baseline)
    diff = mde * baseline if relative else mde
    if not math.isfinite(diff) or diff == 0 or not 0 < baseline + diff < 1:
        raise ArgumentError(
            f"{fn}: mde must be nonzero with baseline + effect in (0, 1), got mde={mde!r} "
            f"({'relative' if relative else 'absolute'}) on baseline {baseline!r}"
        )
    return float(diff)


def _mean_scale(fn: str, mean: float | None) -> float:
    """``|mean|``, the unit of a relative effect on a mean."""
    if mean is None or not math.isfinite(mean) or mean == 0:
        raise ArgumentError(f"{fn}: relative=True needs the baseline mean (nonzero), got {mean!r}")
    return abs(mean)


def _abs_mean_mde(fn: str, mde: float, relative: bool, mean: float | None) -> float:
    if relative:
        mde = mde * _mean_scale(fn, mean)
    if not isinstance(mde, (int, float)) or not math.isfinite(mde) or mde == 0:
        raise ArgumentError(f"{fn}: mde must be a finite nonzero number, got {mde!r}")
    return float(mde)


def _check_std(fn: str, std: float) -> None:
    _check_positive(fn, "std", std)


def _check_n(fn: str, n: float) -> None:
    _check_positive(fn, "n (control units)", n)


def sample_size_proportions(
    baseline: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    sides: int = 2,
    ratio: float = 1.0,
    relative: bool = False,
    arms: int = 2,
    inflation: float = 1.0,
) -> SampleSize:
    """Units per arm to detect a change ``mde`` of a conversion rate ``baseline`` (Fleiss):
    ``n_c = (z_{1-α/s}·√(p̄q̄(1+1/r)) + z_{power}·√(p_c q_c + p_t q_t/r))² / δ²`` with the pooled
    ``p̄`` under H0. Equals statsmodels ``samplesize_proportions_2indep_onetail`` and R
    ``power.prop.test``.

    ``relative=True`` reads ``mde`` as a fraction of ``baseline``. ``arms > 2`` uses the
    Bonferroni level ``alpha / (arms - 1)``. ``inflation`` multiplies the sizes (e.g. a group
    sequential design's inflation factor).

    >>> sample_size_proportions(0.10, 0.01).control
    14751
    """
    fn = "sample_size_proportions"
    a = _design(fn, alpha, sides, ratio, arms)
    _check_power(fn, power)
    diff = _abs_proportion_mde(fn, baseline, mde, relative)
    c, t = _core.sample_size_proportions(baseline, diff, a, power, sides, ratio)
    return _sizes(c, t, arms, inflation, fn)


def sample_size_means(
    std: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    sides: int = 2,
    ratio: float = 1.0,
    relative: bool = False,
    mean: float | None = None,
    arms: int = 2,
    inflation: float = 1.0,
) -> SampleSize:
    """Units per arm to detect a change ``mde`` of a mean with standard deviation ``std``
    (z test): the ``n_c`` solving ``power = Φ(δ√n_c/σ' - z) + Φ(-δ√n_c/σ' - z)`` with
    ``σ' = σ√(1 + 1/r)``, as statsmodels ``NormalIndPower.solve_power`` (close to the closed
    form ``(z_{1-α/2} + z_{power})² σ'² / δ²``, which ignores the far tail).

    ``relative=True`` reads ``mde`` as a fraction of ``mean``. ``arms > 2`` uses the Bonferroni
    level ``alpha / (arms - 1)``; ``inflation`` multiplies the sizes.

    >>> sample_size_means(1.0, 0.2).control
    393
    """
    fn = "sample_size_means"
    a = _design(fn, alpha, sides, ratio, arms)
    _check_power(fn, power)
    _check_std(fn, std)
    diff = _abs_mean_mde(fn, mde, relative, mean)
    c, t = _core.sample_size_means(std, diff, a, power, sides, ratio)
    return _sizes(c, t, arms, inflation, fn)


def mde_proportions(
    baseline: float,
    n: float,
    alpha: float = 0.05,
    power: float = 0.8,
    sides: int = 2,
    ratio: float = 1.0,
    relative: bool = False,
    arms: int = 2,
) -> float:
    """Smallest increase of ``baseline`` detectable with ``n`` control units (treatment
    ``ratio·n``): the inverse of :func:`sample_size_proportions`. Absolute, or a fraction of
    ``baseline`` with ``relative=True``.

    >>> round(mde_proportions(0.10, 14750.79), 5)
    0.01
    """
    fn = "mde_proportions"
    a = _design(fn, alpha, sides, ratio, arms)
    _check_power(fn, power)
    _check_baseline(fn, baseline)
    _check_n(fn, n)
    d = float(_core.mde_proportions(baseline, float(n), a, power, sides, ratio))
    return d / baseline if relative else d


def mde_means(
    std: float,
    n: float,
    alpha: float = 0.05,
    power: float = 0.8,
    sides: int = 2,
    ratio: float = 1.0,
    relative: bool = False,
    mean: float | None = None,
    arms: int = 2,
) -> float:
    """Smallest change of a mean detectable with ``n`` control units: the inverse of
    :func:`power_means` (absolute, or a fraction of ``mean`` with ``relative=True``).

    >>> round(mde_means(1.0, 10000), 5)
    0.03962
    """
    fn = "mde_means"
    a = _design(fn, alpha, sides, ratio, arms)
    _check_power(fn, power)
    _check_std(fn, std)
    _check_n(fn, n)
    d = float(_core.mde_means(std, float(n), a, power, sides, ratio))
    return d / _mean_scale(fn, mean) if relative else d


def power_proportions(
    baseline: float,
    mde: float,
    n: float,
    alpha: float = 0.05,
    sides: int = 2,
    ratio: float = 1.0,
    relative: bool = False,
    arms: int = 2,
) -> float:
    """Power of the pooled two-proportion z test with ``n`` control units (both tails when
    ``sides=2``), as statsmodels ``power_proportions_2indep``.

    >>> round(power_proportions(0.10, 0.01, 14751), 6)
    0.800007
    """
    fn = "power_proportions"
    a = _design(fn, alpha, sides, ratio, arms)
    diff = _abs_proportion_mde(fn, baseline, mde, relative)
    _check_n(fn, n)
    return float(_core.power_proportions(baseline, diff, float(n), a, sides, ratio))


def power_means(
    std: float,
    mde: float,
    n: float,
    alpha: float = 0.05,
    sides: int = 2,
    ratio: float = 1.0,
    relative: bool = False,
    mean: float | None = None,
    arms: int = 2,
) -> float:
    """Power of the z test of two means with ``n`` control units, as statsmodels
    ``NormalIndPower().power(mde/std, n, alpha, ratio)``.

    >>> round(power_means(1.0, 0.05, 5000), 6)
    0.705418
    """
    fn = "power_means"
    a = _design(fn, alpha, sides, ratio, arms)
    _check_std(fn, std)
    diff = _abs_mean_mde(fn, mde, relative, mean)
    _check_n(fn, n)
    return float(_core.power_means(std, diff, float(n), a, sides, ratio))


def days_needed(sample_size: SampleSize | int, daily_units: float, exposure: float = 1.0) -> int:
    """Days until ``sample_size`` units (a :class:`SampleSize`: its ``total``) have been seen,
    at ``daily_units`` new units a day of which a share ``exposure`` enters the experiment.

    >>> days_needed(sample_size_proportions(0.10, 0.01), daily_units=5000, exposure=0.5)
    12
    """
    total = sample_size.total if isinstance(sample_size, SampleSize) else sample_size
    if not isinstance(total, (int, float)) or not math.isfinite(total) or total < 0:
        raise ArgumentError(
            f"days_needed: sample_size must be a SampleSize or units >= 0, got {total!r}"
        )
    _check_positive("days_needed", "daily_units", daily_units)
    if not isinstance(exposure, (int, float)) or not 0 < exposure <= 1:
        raise ArgumentError(f"days_needed: exposure must be in (0, 1], got {exposure!r}")
    return _ceil(total / (daily_units * exposure))
