"""Power, sample size and MDE against statsmodels (normal approximations) and published values."""

from __future__ import annotations

import math

import pytest
import statsmodels.stats.proportion as smp
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.power import NormalIndPower

import trafficsplit.stats as ts
from trafficsplit.errors import ArgumentError

REL = 1e-6


def test_published_sample_sizes():
    s = ts.sample_size_proportions(0.10, 0.01)
    assert s.exact == pytest.approx(14750.79, abs=0.01)
    assert (s.control, s.treatment, s.total) == (14751, 14751, 29502)
    # R power.prop.test(p1=.03, p2=.02, power=.8): n = 3825.15
    assert ts.sample_size_proportions(0.02, 0.01).exact == pytest.approx(3825.1497, rel=1e-7)
    assert ts.sample_size_means(1.0, 0.2).exact == pytest.approx(392.4430233, rel=1e-8)
    assert ts.sample_size_means(1.0, 0.2, sides=1).exact == pytest.approx(309.1278616, rel=1e-8)
    assert ts.power_proportions(0.10, 0.01, 14751) == pytest.approx(0.8000065, abs=1e-7)
    assert ts.power_means(1.0, 0.05, 5000) == pytest.approx(0.7054180011, rel=1e-8)


ALT = {1: "larger", 2: "two-sided"}


@settings(max_examples=120, deadline=None)
@given(
    p=st.floats(0.01, 0.9),
    rel=st.floats(-0.5, 0.5).filter(lambda r: abs(r) > 0.01),
    alpha=st.floats(0.001, 0.2),
    power=st.floats(0.5, 0.99),
    sides=st.sampled_from([1, 2]),
    ratio=st.floats(0.2, 5.0),
)
def test_sample_size_proportions_matches_statsmodels(p, rel, alpha, power, sides, ratio):
    diff = p * rel
    if not 0 < p + diff < 1:
        return
    s = ts.sample_size_proportions(p, diff, alpha=alpha, power=power, sides=sides, ratio=ratio)
    # One-sided power is in the direction of the effect.
    alt = ALT[sides] if sides == 2 or diff > 0 else "smaller"
    # statsmodels: sample 1 is the treatment (prop2 + diff), ratio = n_control / n_treatment.
    n_t = smp.samplesize_proportions_2indep_onetail(
        diff, p, power, ratio=1 / ratio, alpha=alpha, alternative=alt
    )
    assert s.exact_treatment == pytest.approx(n_t, rel=REL)
    assert s.exact == pytest.approx(n_t / ratio, rel=REL)
    pw = ts.power_proportions(p, diff, s.exact, alpha=alpha, sides=sides, ratio=ratio)
    ref = smp.power_proportions_2indep(
        diff, p, n_t, ratio=1 / ratio, alpha=alpha, alternative=alt, return_results=False
    )
    assert pw == pytest.approx(ref, rel=REL)
    if diff > 0:
        assert ts.mde_proportions(
            p, s.exact, alpha=alpha, power=power, sides=sides, ratio=ratio
        ) == pytest.approx(diff, rel=1e-7)


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::Warning:statsmodels")
@settings(max_examples=120, deadline=None)
@given(
    d=st.floats(0.01, 2.0),
    alpha=st.floats(0.001, 0.2),
    power=st.floats(0.5, 0.99),
    sides=st.sampled_from([1, 2]),
    ratio=st.floats(0.2, 5.0),
    std=st.floats(0.1, 100.0),
)
def test_means_match_normal_ind_power(d, alpha, power, sides, ratio, std):
    s = ts.sample_size_means(std, d * std, alpha=alpha, power=power, sides=sides, ratio=ratio)
    # The exact n solves NormalIndPower's own power equation (its solve_power stops earlier).
    ref = NormalIndPower().power(d, s.exact, alpha, ratio=ratio, alternative=ALT[sides])
    assert ref == pytest.approx(power, rel=1e-9)
    assert s.exact_treatment == pytest.approx(s.exact * ratio, rel=1e-12)
    solved = NormalIndPower().solve_power(
        effect_size=d, alpha=alpha, power=power, ratio=ratio, alternative=ALT[sides]
    )
    if math.isfinite(solved):  # its root finder gives up on n of a few units
        assert s.exact == pytest.approx(solved, rel=1e-4)
    n = s.exact
    pw = ts.power_means(std, d * std, n, alpha=alpha, sides=sides, ratio=ratio)
    assert pw == pytest.approx(
        NormalIndPower().power(d, n, alpha, ratio=ratio, alternative=ALT[sides]), rel=REL
    )
    mde = ts.mde_means(std, n, alpha=alpha, power=power, sides=sides, ratio=ratio)
    assert mde == pytest.approx(d * std, rel=1e-7)


def test_one_sided_means_closed_form():
    z = 1.6448536269514722 + 0.8416212335729143  # z_0.95 + z_0.8
    assert ts.sample_size_means(2.0, 0.5, sides=1).exact == pytest.approx(
        2 * z * z * 4 / 0.25, rel=1e-12
    )


def test_relative_arms_ratio_and_inflation():
    abs_ = ts.sample_size_proportions(0.10, 0.01)
    rel = ts.sample_size_proportions(0.10, 0.10, relative=True)
    assert rel.exact == pytest.approx(abs_.exact, rel=1e-12)
    m = ts.sample_size_means(4.0, 0.05, relative=True, mean=10.0)
    assert m.exact == pytest.approx(ts.sample_size_means(4.0, 0.5).exact, rel=1e-12)
    # Three arms: each comparison at alpha / 2; total = control + two treatments.
    three = ts.sample_size_proportions(0.10, 0.01, arms=3)
    assert three.exact == pytest.approx(
        ts.sample_size_proportions(0.10, 0.01, alpha=0.025).exact, rel=1e-12
    )
    assert three.total == three.control + 2 * three.treatment
    unequal = ts.sample_size_means(1.0, 0.2, ratio=2.0)
    assert unequal.exact_treatment == pytest.approx(2 * unequal.exact, rel=1e-12)
    infl = ts.sample_size_means(1.0, 0.2, inflation=1.1)
    assert infl.exact == pytest.approx(1.1 * ts.sample_size_means(1.0, 0.2).exact, rel=1e-12)
    assert ts.mde_proportions(0.10, abs_.exact, relative=True) == pytest.approx(0.1, rel=1e-7)
    assert ts.mde_means(4.0, 1000, relative=True, mean=8.0) == pytest.approx(
        ts.mde_means(4.0, 1000) / 8.0, rel=1e-12
    )


def test_days_needed():
    s = ts.sample_size_proportions(0.10, 0.01)  # total 29502
    assert ts.days_needed(s, daily_units=3000) == 10
    assert ts.days_needed(s, daily_units=2950.2) == 10
    assert ts.days_needed(s, daily_units=3000, exposure=0.5) == 20
    assert ts.days_needed(29502, 29502) == 1
    with pytest.raises(ArgumentError, match="daily_units must be > 0, got 0"):
        ts.days_needed(s, 0)
    with pytest.raises(ArgumentError, match=r"exposure must be in \(0, 1\], got 1.5"):
        ts.days_needed(s, 10, exposure=1.5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: ts.sample_size_proportions(1.2, 0.01),
            r"baseline must be a proportion in \(0, 1\)",
        ),
        (lambda: ts.sample_size_proportions(0.95, 0.1), "baseline \\+ effect in \\(0, 1\\)"),
        (lambda: ts.sample_size_proportions(0.1, 0.0), "mde must be nonzero"),
        (lambda: ts.sample_size_means(1.0, 0.1, alpha=1.0), r"alpha must be in \(0, 1\), got 1.0"),
        (lambda: ts.sample_size_means(1.0, 0.1, power=1.0), r"power must be in \(0, 1\)"),
        (lambda: ts.sample_size_means(1.0, 0.1, sides=3), "sides must be 1 or 2, got 3"),
        (lambda: ts.sample_size_means(1.0, 0.1, ratio=0), "ratio .* must be > 0, got 0"),
        (lambda: ts.sample_size_means(1.0, 0.1, arms=1), "arms must be an integer >= 2, got 1"),
        (lambda: ts.sample_size_means(-1.0, 0.1), "std must be > 0, got -1.0"),
        (lambda: ts.power_means(math.inf, 0.1, 100), r"^power_means: std must be > 0, got inf$"),
        (
            lambda: ts.days_needed(100, math.nan),
            r"^days_needed: daily_units must be > 0, got nan$",
        ),
        (lambda: ts.sample_size_means(1.0, 0.1, relative=True), "needs the baseline mean"),
        (lambda: ts.sample_size_means(1.0, 0.1, inflation=0.5), "inflation must be .* >= 1"),
        (lambda: ts.mde_means(1.0, 0), r"n \(control units\) must be > 0, got 0"),
        (
            lambda: ts.mde_means(1.0, 100, relative=True, mean=0.0),
            r"mde_means: relative=True needs the baseline mean \(nonzero\), got 0.0",
        ),
        (
            lambda: ts.mde_proportions(0.0, 100),
            r"mde_proportions: baseline must be a proportion in \(0, 1\), got 0.0",
        ),
        (lambda: ts.mde_proportions(0.5, 3), "too small to detect"),
        (lambda: ts.sample_size_means(1.0, 0.1, power=0.01), "power must exceed"),
    ],
)
def test_bad_inputs(call, message):
    with pytest.raises(ArgumentError, match=message):
        call()


def test_power_is_monotone_and_inverts_sample_size():
    ns = [100, 1000, 10000, 100000]
    pw = [ts.power_proportions(0.05, 0.005, n) for n in ns]
    assert pw == sorted(pw) and pw[-1] > 0.99
    s = ts.sample_size_means(3.0, 0.1, power=0.9)
    assert ts.power_means(3.0, 0.1, s.exact) == pytest.approx(0.9, rel=1e-10)
    assert math.isclose(ts.power_means(3.0, -0.1, s.exact), 0.9, rel_tol=1e-10)
