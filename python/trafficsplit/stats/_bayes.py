"""Bayesian summaries: beta-binomial models of conversion rates and the Gaussian model of an
effect (probability to beat control, expected loss, credible intervals). Arm 0 is the control.

Formulas and sources: ``docs/statistics.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._core import stats as _core
from ..errors import ArgumentError
from ._results import check_alpha
from ._tests import _arm, _lift

__all__ = [
    "BayesResult",
    "beta_binomial",
    "expected_loss",
    "normal_posterior",
    "prob_beat_control",
]


@dataclass(frozen=True)
class BayesResult:
    """Posterior summaries of an experiment; arm 0 is the control.

    ``model`` is ``"beta-binomial"`` or ``"normal"``. For the beta-binomial model ``mean`` and
    ``ci`` are the posterior mean and equal-tailed credible interval of each arm's rate; for
    the normal model they describe the effect (one entry). ``prob_beat_control``,
    ``expected_loss`` (of shipping the treatment instead of the control: E[max(c − t, 0)]) and
    ``expected_loss_control`` (of keeping the control: E[max(t − c, 0)]) have one entry per
    treatment; ``prob_best`` one per arm.
    """

    model: str
    mean: tuple[float, ...]
    ci: tuple[tuple[float, float], ...]
    prob_beat_control: tuple[float, ...]
    expected_loss: tuple[float, ...]
    expected_loss_control: tuple[float, ...]
    prob_best: tuple[float, ...]
    alpha: float = 0.05


def _posteriors(
    fn: str, successes: Sequence[float], trials: Sequence[float], prior: tuple[float, float]
) -> list[tuple[float, float]]:
    x = np.asarray(successes, dtype=np.float64).ravel()
    n = np.asarray(trials, dtype=np.float64).ravel()
    if x.shape != n.shape:
        raise ArgumentError(f"{fn}: {x.size} successes but {n.size} trials")
    if x.size < 2:
        raise ArgumentError(f"{fn}: needs at least two arms (control first), got {x.size}")
    try:
        a0, b0 = (float(v) for v in prior)
    except (TypeError, ValueError):
        raise ArgumentError(f"{fn}: prior must be a pair (a, b), got {prior!r}") from None
    if not (a0 > 0 and b0 > 0 and math.isfinite(a0) and math.isfinite(b0)):
        raise ArgumentError(f"{fn}: prior parameters must be finite and > 0, got {prior!r}")
    for i, (xi, ni) in enumerate(zip(x, n, strict=True)):
        if not (math.isfinite(ni) and ni >= 0):
            raise ArgumentError(f"{fn}: trials[{i}] must be >= 0, got {ni!r}")
        if not (math.isfinite(xi) and 0 <= xi <= ni):
            raise ArgumentError(f"{fn}: successes[{i}] must be in [0, trials={ni:g}], got {xi!r}")
    return [(a0 + float(xi), b0 + float(ni - xi)) for xi, ni in zip(x, n, strict=True)]


def _versus_control(kernel: Callable[..., Any], post: list[tuple[float, float]]) -> list[Any]:
    """``kernel(a, b, a_control, b_control)`` for each treatment's posterior."""
    ac, bc = post[0]
    return [kernel(a, b, ac, bc) for a, b in post[1:]]


def prob_beat_control(
    successes: Sequence[float], trials: Sequence[float], prior: tuple[float, float] = (1.0, 1.0)
) -> np.ndarray:
    """P(p_i > p_0) for each treatment i ≥ 1 under Beta(prior) priors: Evan Miller's exact
    finite sum when the treatment's posterior ``a`` is an integer (≤ 10⁵), else adaptive
    Gauss–Kronrod quadrature.

    >>> prob_beat_control([100, 120], [1000, 1000]).round(6).tolist()
    [0.923183]
    """
    post = _posteriors("prob_beat_control", successes, trials, prior)
    return np.array(_versus_control(_core.beta_prob_greater, post))


def expected_loss(
    successes: Sequence[float], trials: Sequence[float], prior: tuple[float, float] = (1.0, 1.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Expected losses per treatment i ≥ 1: ``(E[max(p_0 − p_i, 0)], E[max(p_i − p_0, 0)])``,
    the loss of shipping the treatment and the loss of keeping the control (their difference
    is ``E[p_i] − E[p_0]``).

    >>> ship, keep = expected_loss([100, 120], [1000, 1000])
    >>> f"{ship[0]:.6e}", f"{keep[0]:.6e}"
    ('4.846139e-04', '2.044469e-02')
    """
    post = _posteriors("expected_loss", successes, trials, prior)
    pairs = _versus_control(_core.beta_expected_loss, post)
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def beta_binomial(
    successes: Sequence[float],
    trials: Sequence[float],
    prior: tuple[float, float] = (1.0, 1.0),
    alpha: float = 0.05,
) -> BayesResult:
    """Beta-binomial model of conversion rates, one arm per entry (control first): posterior
    Beta(a + x, b + n − x) per arm with its mean and equal-tailed ``1 − alpha`` credible
    interval, the probability each treatment beats the control, the expected losses and the
    probability that each arm is best (one-dimensional quadrature). The default prior is
    uniform, Beta(1, 1); Jeffreys' is ``prior=(0.5, 0.5)``.

    >>> r = beta_binomial([100, 120], [1000, 1000])
    >>> round(r.prob_beat_control[0], 6), round(sum(r.prob_best), 12)
    (0.923183, 1.0)
    """
    fn = "beta_binomial"
    check_alpha(fn, alpha)
    post = _posteriors(fn, successes, trials, prior)
    beat = _versus_control(_core.beta_prob_greater, post)
    losses = _versus_control(_core.beta_expected_loss, post)
    return BayesResult(
        model="beta-binomial",
        mean=tuple(float(a / (a + b)) for a, b in post),
        ci=tuple(_core.beta_interval(a, b, alpha) for a, b in post),
        prob_beat_control=tuple(float(p) for p in beat),
        expected_loss=tuple(float(p[0]) for p in losses),
        expected_loss_control=tuple(float(p[1]) for p in losses),
        prob_best=tuple(float(p) for p in _core.beta_prob_best(post)),
        alpha=alpha,
    )


def normal_posterior(
    control: Any,
    treatment: Any,
    prior_mean: float = 0.0,
    prior_sd: float = math.inf,
    relative: bool = False,
    alpha: float = 0.05,
) -> BayesResult:
    """Gaussian model of the effect (gbstats, Eppo, Statsig): the observed difference
    ``Δ̂ ~ N(Δ, SE²)`` (``relative=True``: the relative lift with its delta-method SE), prior
    ``Δ ~ N(prior_mean, prior_sd²)`` (default flat). Posterior precision ``1/SE² + 1/prior_sd²``
    and mean ``(Δ̂/SE² + prior_mean/prior_sd²)/precision``; chance to beat control
    ``P(Δ > 0)``; expected losses ``E[max(−Δ, 0)]`` (shipping) and ``E[max(Δ, 0)]`` (keeping
    the control) in closed form; equal-tailed credible interval.

    ``control``/``treatment``: raw values or :class:`Moments`.

    >>> r = normal_posterior([1.0, 2.0, 3.0, 2.0], [2.0, 3.0, 4.0, 3.0])
    >>> round(r.mean[0], 6)
    1.0
    """
    fn = "normal_posterior"
    check_alpha(fn, alpha)
    c = _arm(fn, "control", control)
    t = _arm(fn, "treatment", treatment)
    if relative:
        d = _lift(fn, c, t, alpha, "delta", "two-sided", False, 0.0)
    else:
        d = _core.ztest_means(*c, *t, alpha, "two-sided", 0.0)
    if not d.se > 0:
        raise ArgumentError(
            f"{fn}: both arms have zero variance; the effect's posterior is degenerate"
        )
    p = _core.normal_effect_posterior(d.estimate, d.se, float(prior_mean), float(prior_sd), alpha)
    win = p.prob_positive
    return BayesResult(
        model="normal",
        mean=(p.mean,),
        ci=((p.ci_low, p.ci_high),),
        prob_beat_control=(win,),
        expected_loss=(p.loss_treatment,),
        expected_loss_control=(p.loss_control,),
        prob_best=(1.0 - win, win),
        alpha=alpha,
    )
