"""Bayesian summaries against published values and independent scipy integration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

import trafficsplit.stats as ts
from trafficsplit._core import stats as core
from trafficsplit.errors import ArgumentError


def test_beta_binomial_treatments_in_order_against_scipy():
    x, n, prior = [30, 45, 20], [400, 410, 390], (1.0, 1.0)
    r = ts.beta_binomial(x, n, prior=prior)
    control = stats.beta(1 + 30, 1 + 370)
    for i in (1, 2):
        t = stats.beta(1 + x[i], 1 + n[i] - x[i])
        beat = integrate.quad(lambda p, t=t: t.pdf(p) * control.cdf(p), 0, 1)[0]
        # E[max(pc - pt, 0)] = ∫ P(pt < s < pc) ds for independent posteriors
        ship = integrate.quad(lambda s, t=t: t.cdf(s) * control.sf(s), 0, 1)[0]
        assert r.prob_beat_control[i - 1] == pytest.approx(beat, abs=1e-7)
        assert r.expected_loss[i - 1] == pytest.approx(ship, abs=1e-7)
    assert r.prob_beat_control == tuple(ts.prob_beat_control(x, n, prior))
    assert (r.expected_loss, r.expected_loss_control) == tuple(
        tuple(v) for v in ts.expected_loss(x, n, prior)
    )


def test_beta_binomial_reference():
    r = ts.beta_binomial([100, 120], [1000, 1000])
    assert r.model == "beta-binomial"
    assert r.prob_beat_control[0] == pytest.approx(0.923183, abs=1e-6)
    assert r.expected_loss[0] == pytest.approx(4.846139e-04, rel=1e-6)
    assert r.expected_loss_control[0] == pytest.approx(2.044469e-02, rel=1e-6)
    assert r.expected_loss_control[0] - r.expected_loss[0] == pytest.approx(1.996008e-02, rel=1e-6)
    assert r.prob_best == pytest.approx((1 - 0.923183, 0.923183), abs=1e-6)
    assert r.mean == pytest.approx((101 / 1002, 121 / 1002), rel=1e-12)
    lo, hi = r.ci[1]
    assert (lo, hi) == pytest.approx(stats.beta(121, 881).ppf([0.025, 0.975]), rel=1e-9)
    assert ts.prob_beat_control([100, 120], [1000, 1000])[0] == pytest.approx(0.923183, abs=1e-6)
    ship, keep = ts.expected_loss([100, 120], [1000, 1000])
    assert (ship[0], keep[0]) == pytest.approx((4.846139e-04, 2.044469e-02), rel=1e-6)


def _scipy_prob_greater(at, bt, ac, bc):
    t, c = stats.beta(at, bt), stats.beta(ac, bc)
    lo, hi = c.ppf(1e-15), c.ppf(1 - 1e-15)
    pts = c.ppf([1e-9, 1e-4, 0.01, 0.5, 0.99, 1 - 1e-4, 1 - 1e-9])
    val, _ = integrate.quad(
        lambda x: c.pdf(x) * t.sf(x), lo, hi, points=pts, limit=500, epsabs=1e-13
    )
    return val


@settings(max_examples=40, deadline=None)
@given(
    n=st.tuples(st.integers(1, 50000), st.integers(1, 50000)),
    f=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    prior=st.sampled_from([(1.0, 1.0), (0.5, 0.5), (2.0, 30.0)]),
)
def test_prob_beat_control_matches_scipy_quadrature(n, f, prior):
    x = [round(f[0] * n[0]), round(f[1] * n[1])]
    p = ts.prob_beat_control(x, list(n), prior=prior)[0]
    a0, b0 = prior
    ref = _scipy_prob_greater(a0 + x[1], b0 + n[1] - x[1], a0 + x[0], b0 + n[0] - x[0])
    assert p == pytest.approx(ref, abs=1e-8)


@settings(max_examples=40, deadline=None)
@given(
    at=st.integers(1, 3000),
    bt=st.floats(0.5, 5000),
    ac=st.floats(0.5, 3000),
    bc=st.floats(0.5, 5000),
)
@example(at=2, bt=0.5, ac=1.0, bc=1.0)  # ibeta_inv's root finder stops short near u = 1
def test_closed_form_sum_equals_quadrature(at, bt, ac, bc):
    s = core.beta_prob_greater(at, bt, ac, bc, "sum")
    q = core.beta_prob_greater(at, bt, ac, bc, "quadrature")
    assert s == pytest.approx(q, abs=1e-9)


def test_prob_best_three_arms_matches_scipy():
    succ, trials = [50, 58, 61], [1000, 1000, 1000]
    r = ts.beta_binomial(succ, trials, prior=(0.5, 0.5))
    d = [stats.beta(0.5 + x, 0.5 + n - x) for x, n in zip(succ, trials, strict=True)]
    for i in range(3):
        others = [d[j] for j in range(3) if j != i]
        val, _ = integrate.quad(
            lambda x, i=i, others=others: d[i].pdf(x) * math.prod(o.cdf(x) for o in others),
            0,
            0.2,
            points=[0.04, 0.05, 0.06, 0.07],
            limit=500,
            epsabs=1e-12,
        )
        assert r.prob_best[i] == pytest.approx(val, abs=1e-8)
    assert sum(r.prob_best) == pytest.approx(1.0, abs=1e-12)
    assert len(r.prob_beat_control) == len(r.expected_loss) == 2
    assert r.prob_beat_control[1] == pytest.approx(_scipy_prob_greater(61.5, 939.5, 50.5, 950.5))


def test_expected_loss_matches_double_integral():
    t, c = stats.beta(31, 171), stats.beta(26, 176)
    ship, keep = ts.expected_loss([25, 30], [200, 200])

    def excess(y, x):  # E[(Y - x)+]
        return integrate.quad(lambda v: (v - x) * y.pdf(v), x, 1, epsabs=1e-13)[0]

    ref_keep = integrate.quad(lambda x: c.pdf(x) * excess(t, x), 0, 1, epsabs=1e-12, limit=200)[0]
    ref_ship = integrate.quad(lambda x: t.pdf(x) * excess(c, x), 0, 1, epsabs=1e-12, limit=200)[0]
    assert keep[0] == pytest.approx(ref_keep, rel=1e-6)
    assert ship[0] == pytest.approx(ref_ship, rel=1e-6)
    assert keep[0] - ship[0] == pytest.approx(t.mean() - c.mean(), rel=1e-9)


def test_normal_posterior_flat_and_informative():
    rng = np.random.default_rng(1)
    c, t = rng.normal(10, 2, 400), rng.normal(10.3, 2, 400)
    z = ts.ztest_means(c, t)
    flat = ts.normal_posterior(c, t)
    assert flat.mean[0] == pytest.approx(z.estimate, rel=1e-12)
    assert flat.ci[0] == pytest.approx(z.ci, rel=1e-9)
    assert flat.prob_beat_control[0] == pytest.approx(stats.norm.cdf(z.estimate / z.se), rel=1e-9)
    assert flat.prob_best == pytest.approx(
        (1 - flat.prob_beat_control[0], flat.prob_beat_control[0])
    )
    # Prior N(0, 0.1²): precision-weighted mean; losses are truncated-normal means.
    r = ts.normal_posterior(c, t, prior_mean=0.0, prior_sd=0.1)
    prec = 1 / z.se**2 + 1 / 0.01
    m, s = (z.estimate / z.se**2) / prec, math.sqrt(1 / prec)
    assert r.mean[0] == pytest.approx(m, rel=1e-12)
    post = stats.norm(m, s)
    assert r.ci[0] == pytest.approx(post.ppf([0.025, 0.975]), rel=1e-9)
    keep = integrate.quad(lambda d: d * post.pdf(d), 0, np.inf)[0]
    ship = integrate.quad(lambda d: -d * post.pdf(d), -np.inf, 0)[0]
    assert r.expected_loss_control[0] == pytest.approx(keep, rel=1e-7)
    assert r.expected_loss[0] == pytest.approx(ship, rel=1e-7)


def test_normal_posterior_relative():
    rel = ts.normal_posterior([10.0, 12, 11, 9], [11.0, 13, 12, 12], relative=True)
    lift = ts.relative_lift([10.0, 12, 11, 9], [11.0, 13, 12, 12], use_t=False)
    assert rel.mean[0] == pytest.approx(lift.estimate)
    assert rel.prob_beat_control[0] == pytest.approx(stats.norm.cdf(lift.estimate / lift.se))
    # gbstats-style chance to win on a relative lift of 0.2 with SE 0.1534 (flat prior).
    p = core.normal_effect_posterior(0.2, 0.1534, 0.0, math.inf, 0.05)
    assert p.prob_positive == pytest.approx(stats.norm.cdf(0.2 / 0.1534), rel=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ts.beta_binomial([1, 2], [10]), "2 successes but 1 trials"),
        (
            lambda: ts.beta_binomial([11, 2], [10, 10]),
            r"successes\[0\] must be in \[0, trials=10\]",
        ),
        (lambda: ts.beta_binomial([1, 2], [10, -1]), r"trials\[1\] must be >= 0"),
        (lambda: ts.beta_binomial([1], [10]), "at least two arms"),
        (lambda: ts.beta_binomial([1, 2], [10, 10], prior=(0, 1)), "prior parameters must be"),
        (lambda: ts.beta_binomial([1, 2], [10, 10], alpha=2), r"alpha must be in \(0, 1\), got 2"),
        (lambda: ts.normal_posterior([1.0, 2], [1.0, 3], prior_sd=0), "prior_sd must be > 0"),
        (lambda: ts.normal_posterior([1.0, 1], [1.0, 1]), "zero variance"),
        (lambda: ts.normal_posterior([0.0, 0], [1.0, 3], relative=True), "control mean is 0"),
    ],
)
def test_bad_inputs(call, message):
    with pytest.raises(ArgumentError, match=message):
        call()


@pytest.mark.slow
def test_prob_beat_control_against_monte_carlo():
    rng = np.random.default_rng(2026)
    for x, n in (([30, 45], [400, 420]), ([500, 540], [10000, 10000]), ([0, 2], [50, 50])):
        p = ts.prob_beat_control(x, n, prior=(0.5, 0.5))[0]
        draws = 2_000_000
        c = rng.beta(0.5 + x[0], 0.5 + n[0] - x[0], draws)
        t = rng.beta(0.5 + x[1], 0.5 + n[1] - x[1], draws)
        mc = (t > c).mean()
        assert abs(p - mc) < 4 * math.sqrt(p * (1 - p) / draws) + 1e-9


@pytest.mark.parametrize(
    ("successes", "trials", "prior"),
    [
        ([0, 3, 1, 1], [1, 4, 5, 6], (0.01, 1.0)),  # quantiles below double range
        ([65166, 12807, 195019, 31446], [87577, 72265, 502541, 499972], (1.0, 1.0)),  # far apart
        ([2, 9, 53, 7], [56, 47, 91, 26], (0.5, 0.5)),
        ([0, 0], [0, 0], (1.0, 1.0)),  # no data: the prior
    ],
)
def test_extreme_posteriors_stay_consistent(successes, trials, prior):
    r = ts.beta_binomial(successes, trials, prior=prior)
    assert sum(r.prob_best) == pytest.approx(1.0, abs=1e-12)
    assert all(0 <= p <= 1 for p in r.prob_beat_control)
    a0, b0 = prior
    post = [stats.beta(a0 + x, b0 + n - x) for x, n in zip(successes, trials, strict=True)]
    for i in range(1, len(post)):
        # keep − ship = E[p_i] − E[p_0]; both losses are >= 0.
        assert r.expected_loss_control[i - 1] - r.expected_loss[i - 1] == pytest.approx(
            post[i].mean() - post[0].mean(), abs=1e-12
        )
        assert min(r.expected_loss[i - 1], r.expected_loss_control[i - 1]) >= 0
        if a0 >= 0.5:  # scipy's quad itself fails on the shape-0.01 densities
            assert r.prob_beat_control[i - 1] == pytest.approx(
                _scipy_prob_greater(*post[i].args, *post[0].args), abs=1e-7
            )
