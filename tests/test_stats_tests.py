"""Frequentist tests and intervals against scipy, statsmodels and published fixtures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.stats.proportion as smp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

import trafficsplit.stats as ts
from trafficsplit.errors import ArgumentError
from trafficsplit.stats import Moments

REL = 1e-6


def moments(n: int, mean: float, std: float) -> Moments:
    """One-column Moments with the given count, mean and sample standard deviation."""
    return Moments(n, np.array([mean]), np.array([[std * std * (n - 1)]]))


# -- Welch t and z ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("c", "t", "stat", "p"),
    [
        ((100, 10.0, 2.0), (120, 10.5, 2.5), 1.6477051091, 0.1008560122),
        ((100, 0.41, 3.92), (90, 0.70, 6.24), 0.3787359837, 0.7054311173),
        ((10, 5.0, 1.0), (12, 6.0, 3.0), 1.0846522891, 0.2966241989),
    ],
)
def test_welch_published_values(c, t, stat, p):
    # scipy ttest_ind_from_stats(control..., treatment..., equal_var=False) has the other sign.
    r = ts.welch_ttest(moments(*c), moments(*t))
    assert r.statistic == pytest.approx(stat, rel=1e-8)
    assert r.pvalue == pytest.approx(p, rel=1e-8)


def test_welch_gbstats_fixture():
    # gbstats tests/frequentist/test_tests.py: sums 1396.87 / 2422.7, sums of squares, n.
    c = Moments.from_sums(3407, 1396.87, 52377.9767)
    t = Moments.from_sums(3461, 2422.7, 134698.29)
    r = ts.welch_ttest(c, t)
    assert r.estimate == pytest.approx(0.29, abs=1e-5)
    assert r.se == pytest.approx(0.12478, abs=1e-5)
    assert r.ci == pytest.approx((0.04538, 0.53462), abs=1e-5)
    assert r.pvalue == pytest.approx(0.0201584026, rel=1e-6)


def test_welch_raw_values_match_scipy_ttest_ind():
    r = ts.welch_ttest(list(range(1, 11)), [3, 5, 7, 9, 11, 13, 15])
    assert r.statistic == pytest.approx(1.8489469033, rel=1e-8)
    assert r.pvalue == pytest.approx(0.0940805597, rel=1e-8)


arm = st.tuples(
    st.integers(2, 100_000),
    st.floats(-1e3, 1e3, allow_nan=False),
    st.floats(1e-3, 1e3, allow_nan=False),
)


@settings(max_examples=150, deadline=None)
@given(
    c=arm,
    t=arm,
    alpha=st.floats(0.001, 0.5),
    alt=st.sampled_from(["two-sided", "larger", "smaller"]),
)
def test_welch_matches_scipy_randomized(c, t, alpha, alt):
    r = ts.welch_ttest(moments(*c), moments(*t), alpha=alpha, alternative=alt)
    ref = stats.ttest_ind_from_stats(
        t[1],
        t[2],
        t[0],
        c[1],
        c[2],
        c[0],
        equal_var=False,
        alternative={"two-sided": "two-sided", "larger": "greater", "smaller": "less"}[alt],
    )
    assert r.statistic == pytest.approx(ref.statistic, rel=REL, abs=1e-12)
    assert r.pvalue == pytest.approx(ref.pvalue, rel=REL, abs=1e-300)
    # The interval holds the null difference exactly when the test does not reject it.
    lo, hi = r.ci
    assert (lo <= 0 <= hi) == (r.pvalue >= alpha) or abs(r.pvalue - alpha) < 1e-9


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    nc=st.integers(2, 300),
    nt=st.integers(2, 300),
    alt=st.sampled_from(["two-sided", "larger", "smaller"]),
    null=st.floats(-1, 1),
)
def test_welch_and_z_match_statsmodels_on_raw_values(seed, nc, nt, alt, null):
    rng = np.random.default_rng(seed)
    c, t = rng.normal(0, 1, nc), rng.lognormal(0, 1, nt)
    cm = CompareMeans(DescrStatsW(t), DescrStatsW(c))
    w = ts.welch_ttest(c, t, alternative=alt, null=null)
    stat, p, df = cm.ttest_ind(usevar="unequal", alternative=alt, value=null)
    assert (w.statistic, w.pvalue, w.df) == pytest.approx((stat, p, df), rel=REL)
    assert w.ci == pytest.approx(cm.tconfint_diff(usevar="unequal", alternative=alt), rel=REL)
    z = ts.ztest_means(c, t, alternative=alt, null=null)
    zs, zp = cm.ztest_ind(usevar="unequal", alternative=alt, value=null)
    assert (z.statistic, z.pvalue) == pytest.approx((zs, zp), rel=REL)
    assert z.ci == pytest.approx(cm.zconfint_diff(usevar="unequal", alternative=alt), rel=REL)
    assert z.df is None


def test_zero_variance_is_decided_not_nan():
    same = ts.welch_ttest([1.0, 1.0, 1.0], [1.0, 1.0])
    assert (same.statistic, same.pvalue) == (0.0, 1.0)
    apart = ts.welch_ttest([1.0, 1.0, 1.0], [2.0, 2.0])
    assert apart.statistic == math.inf and apart.pvalue == 0.0


# -- proportions ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("x", "n", "z", "p"),
    [
        ((1000, 1100), (10000, 10000), 2.3066347738, 0.0210751893),
        ((200, 250), (2000, 2000), 2.5019554168, 0.0123509477),
        ((14, 16), (28, 30), 0.2538591035, 0.7996044106),
    ],
)
def test_pooled_proportions_published(x, n, z, p):
    r = ts.proportions_ztest(x, n)
    assert r.statistic == pytest.approx(z, rel=1e-8)
    assert r.pvalue == pytest.approx(p, rel=1e-8)


def test_proportions_wald_interval_and_unpooled_test():
    r = ts.proportions_ztest((1000, 1100), (10000, 10000))
    assert r.ci == pytest.approx((0.0015040591, 0.0184959409), rel=1e-7)
    u = ts.proportions_ztest((1000, 1100), (10000, 10000), pooled=False)
    assert u.pvalue == pytest.approx(0.0210580732, rel=1e-8)
    # z² is Pearson's χ² on the 2×2 table without Yates' correction.
    chi2 = stats.chi2_contingency([[1100, 8900], [1000, 9000]], correction=False)
    assert r.statistic**2 == pytest.approx(chi2.statistic, rel=1e-12)
    assert r.pvalue == pytest.approx(chi2.pvalue, rel=1e-8)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # statsmodels on p = 0 or 1 arms
@settings(max_examples=150, deadline=None)
@given(
    nc=st.integers(1, 10**6),
    nt=st.integers(1, 10**6),
    fc=st.floats(0.001, 0.999),
    ft=st.floats(0.001, 0.999),
    alt=st.sampled_from(["two-sided", "larger", "smaller"]),
    pooled=st.booleans(),
)
def test_proportions_match_statsmodels_randomized(nc, nt, fc, ft, alt, pooled):
    xc, xt = round(fc * nc), round(ft * nt)
    if xc + xt in (0, nc + nt):
        return  # degenerate: both arms all 0 or all 1
    r = ts.proportions_ztest((xc, xt), (nc, nt), pooled=pooled, alternative=alt)
    if pooled:
        z, p = smp.proportions_ztest([xt, xc], [nt, nc], alternative=alt)
    else:
        res = smp.test_proportions_2indep(xt, nt, xc, nc, method="wald", alternative=alt)
        z, p = res.statistic, res.pvalue
    if not math.isfinite(z):
        return
    assert r.statistic == pytest.approx(z, rel=REL, abs=1e-12)
    assert r.pvalue == pytest.approx(p, rel=REL, abs=1e-300)


def test_proportion_inputs_are_checked():
    with pytest.raises(
        ArgumentError, match=r"treatment successes must be in \[0, trials=10\], got 11"
    ):
        ts.proportions_ztest((1, 11), (10, 10))
    with pytest.raises(ArgumentError, match="control trials must be > 0"):
        ts.proportions_ztest((0, 1), (0, 10))
    with pytest.raises(ArgumentError, match="control successes"):
        ts.proportions_ztest((-1, 1), (10, 10))
    with pytest.raises(ArgumentError, match="successes must be a pair"):
        ts.proportions_ztest(5, (10, 10))


# -- relative lift ----------------------------------------------------------------------------
def test_relative_lift_reference_values():
    c, t = moments(1000, 10, 5), moments(1000, 10.5, 5)
    d = ts.relative_lift(c, t, use_t=False)
    assert d.estimate == pytest.approx(0.05, rel=1e-12)
    assert d.se == pytest.approx(0.022927, abs=1e-6)
    assert d.ci == pytest.approx((0.005065, 0.094935), abs=2e-6)
    f = ts.relative_lift(c, t, method="fieller", use_t=False)
    assert f.ci == pytest.approx((0.006041, 0.095977), abs=1e-6) and f.bounded
    lg = ts.relative_lift(c, t, method="log", use_t=False)
    assert lg.ci == pytest.approx((0.006013, 0.095911), abs=1e-6)


def test_relative_lift_gbstats_fixture():
    c = Moments.from_sums(3407, 1396.87, 52377.9767)
    t = Moments.from_sums(3461, 2422.7, 134698.29)
    r = ts.relative_lift(c, t)
    assert r.estimate == pytest.approx(0.70732, abs=1e-5)
    assert r.se == pytest.approx(0.37879, abs=1e-5)
    assert r.df == pytest.approx(5841.74, abs=0.01)
    assert r.ci == pytest.approx((-0.03526, 1.44989), abs=1e-5)
    assert r.pvalue == pytest.approx(0.06191, abs=1e-5)


def test_relative_lift_of_proportions_matches_log_ratio_interval():
    # Proportions as means with variance p(1-p) (SE² = p(1-p)/n): the log method is statsmodels'
    # Katz log interval of the risk ratio, minus 1.
    nc = nt = 10000

    def arm(n, p):
        return Moments(n, np.array([p]), np.array([[p * (1 - p) * (n - 1)]]))

    r = ts.relative_lift(arm(nc, 0.1), arm(nt, 0.11), method="log", use_t=False)
    lo, hi = smp.confint_proportions_2indep(1100, nt, 1000, nc, compare="ratio", method="log")
    assert (r.ci[0] + 1, r.ci[1] + 1) == pytest.approx((lo, hi), rel=1e-9)
    assert (lo, hi) == pytest.approx((1.0143854989, 1.1928403958), rel=1e-9)
    c = np.r_[np.ones(1000), np.zeros(nc - 1000)]
    t = np.r_[np.ones(1100), np.zeros(nt - 1100)]
    assert ts.relative_lift(c, t).estimate == pytest.approx(0.1, rel=1e-12)


def test_fieller_unbounded_and_negative_control():
    r = ts.relative_lift(moments(10, 0.1, 5), moments(10, 1.0, 5), method="fieller")
    assert not r.bounded and r.ci == (-math.inf, math.inf)
    # A negative control mean: the lift is (m_t - m_c)/|m_c| and Fieller's ends keep the order.
    n = ts.relative_lift(
        moments(1000, -10, 5), moments(1000, -9.5, 5), method="fieller", use_t=False
    )
    d = ts.relative_lift(moments(1000, -10, 5), moments(1000, -9.5, 5), use_t=False)
    assert n.estimate == pytest.approx(0.05) and d.estimate == pytest.approx(0.05)
    assert n.ci[0] < 0.05 < n.ci[1]
    assert n.ci[0] == pytest.approx(d.ci[0], abs=2e-3)


def test_fieller_one_sided_and_pivot_statistic():
    c, t = moments(500, 10, 5), moments(500, 10.6, 5)
    f = ts.relative_lift(c, t, method="fieller", alternative="larger")
    assert f.ci[1] == math.inf
    w = ts.welch_ttest(c, t, alternative="larger")
    assert f.statistic == pytest.approx(w.statistic, rel=1e-12)
    assert f.pvalue == pytest.approx(w.pvalue, rel=1e-12)


def test_relative_lift_errors():
    with pytest.raises(ArgumentError, match="control mean is 0"):
        ts.relative_lift([0.0, 0.0, 0.0], [1.0, 2.0])
    with pytest.raises(
        ArgumentError, match="method must be 'delta', 'fieller' or 'log', got 'bogus'"
    ):
        ts.relative_lift([1.0, 2.0], [1.0, 2.0], method="bogus")
    with pytest.raises(ArgumentError, match="positive means"):
        ts.relative_lift([1.0, 2.0], [-1.0, -2.0], method="log")


# -- ratio metrics ----------------------------------------------------------------------------
def test_ratio_metric_from_sums_reference():
    m = Moments.from_sums(5000, [6087, 24895], [[25005, 54693], [54693, 227499]])
    r, se = ts.ratio_metric(m)
    assert r == pytest.approx(0.244507, abs=1e-6)
    assert se == pytest.approx(4.374971e-03, rel=1e-6)
    naive = math.sqrt(r * (1 - r) / 24895)
    assert se / naive == pytest.approx(1.606, abs=1e-3)


def test_ratio_metric_matches_linearisation():
    # Delta method = the SE of the mean of the linearised values (X - R·Y)/Ȳ.
    rng = np.random.default_rng(7)
    y = rng.poisson(5, 2000) + 1.0
    x = rng.binomial(y.astype(int), 0.3).astype(float)
    r, se = ts.ratio_metric((x, y))
    lin = (x - r * y) / y.mean()
    assert r == pytest.approx(x.sum() / y.sum(), rel=1e-12)
    assert se == pytest.approx(lin.std(ddof=1) / math.sqrt(len(x)), rel=1e-8)


def test_ratio_test_difference_and_relative():
    rng = np.random.default_rng(3)
    arms = []
    for p in (0.30, 0.33):
        y = rng.poisson(4, 5000) + 1.0
        arms.append(Moments.from_values(rng.binomial(y.astype(int), p).astype(float), y))
    rc, sc = ts.ratio_metric(arms[0])
    rt, st_ = ts.ratio_metric(arms[1])
    r = ts.ratio_test(arms[0], arms[1])
    assert r.estimate == pytest.approx(rt - rc, rel=1e-12)
    assert r.se == pytest.approx(math.hypot(sc, st_), rel=1e-12)
    assert r.pvalue == pytest.approx(2 * stats.norm.sf(abs(r.estimate / r.se)), rel=1e-8)
    rel = ts.ratio_test(arms[0], arms[1], relative=True)
    assert rel.estimate == pytest.approx(rt / rc - 1, rel=1e-12)
    assert rel.se == pytest.approx(rt / rc * math.sqrt((sc / rc) ** 2 + (st_ / rt) ** 2), rel=1e-8)
    with pytest.raises(ArgumentError, match="a ratio needs two"):
        ts.ratio_test(Moments.from_values([1.0, 2.0]), arms[1])
    with pytest.raises(
        ArgumentError, match="control must be Moments with numerator and denominator"
    ):
        ts.ratio_test([1.0, 2.0], arms[1])
    with pytest.raises(ArgumentError, match="denominator mean is 0"):
        ts.ratio_metric(([1.0, 2.0], [0.0, 0.0]))


# -- CUPED ------------------------------------------------------------------------------------
def test_cuped_reference_theta_and_variance_factor():
    x = np.arange(1.0, 9.0)
    y = np.array([2.1, 3.9, 6.2, 7.8, 10.1, 12.2, 13.8, 16.1])
    r = ts.cuped((y[::2], x[::2]), (y[1::2], x[1::2]))
    assert r.theta == pytest.approx(1.997619, abs=1e-6)  # pooled over both arms = one sample
    ycv = y - r.theta * x
    assert ycv.var(ddof=1) / y.var(ddof=1) == pytest.approx(0.027823 / 23.970714, rel=1e-4)


def test_cuped_equals_welch_on_adjusted_values():
    rng = np.random.default_rng(11)
    xc, xt = rng.normal(10, 3, 800), rng.normal(10, 3, 900)
    yc = 2 + 0.8 * xc + rng.normal(0, 1, 800)
    yt = 2.3 + 0.8 * xt + rng.normal(0, 1, 900)
    r = ts.cuped((yc, xc), (yt, xt))
    xall, yall = np.r_[xc, xt], np.r_[yc, yt]
    theta = np.cov(xall, yall)[0, 1] / xall.var(ddof=1)
    assert r.theta == pytest.approx(theta, rel=1e-10)
    ref = stats.ttest_ind(yt - theta * xt, yc - theta * xc, equal_var=False)
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-8)
    assert r.pvalue == pytest.approx(ref.pvalue, rel=1e-6)
    un = stats.ttest_ind(yt, yc, equal_var=False)
    assert r.unadjusted.statistic == pytest.approx(un.statistic, rel=1e-8)
    assert r.variance_reduction == pytest.approx(1 - r.se**2 / r.unadjusted.se**2, rel=1e-12)
    assert r.variance_reduction > 0.8
    # Moments input (metric column 0, covariate by name) gives the same result.
    mc = Moments.from_values(yc, xc, columns=["y", "pre"])
    mt = Moments.from_values(yt, xt, columns=["y", "pre"])
    assert ts.cuped(mc, mt, covariate="pre").statistic == pytest.approx(r.statistic, rel=1e-12)


def test_cuped_relative_variance_formula():
    # growthbook PR #3610: V = [s²_B + θ²s²_xB − 2θc_B]/(n_B μ_A²)
    #                        + [s²_A μ_B²/μ_A² − 2θ c_A μ_B/μ_A + θ² s²_xA]/(n_A μ_A²)
    rng = np.random.default_rng(5)
    xc, xt = rng.gamma(2, 5, 3000), rng.gamma(2, 5, 3000)
    yc, yt = xc * 0.7 + rng.gamma(2, 2, 3000), xt * 0.7 + rng.gamma(2, 2.2, 3000)
    r = ts.cuped((yc, xc), (yt, xt), relative=True)
    th = r.theta
    ma, mb = yc.mean(), yt.mean()
    ca, cb = np.cov(yc, xc)[0, 1], np.cov(yt, xt)[0, 1]
    vb = (yt.var(ddof=1) + th**2 * xt.var(ddof=1) - 2 * th * cb) / (3000 * ma**2)
    va = (yc.var(ddof=1) * mb**2 / ma**2 - 2 * th * ca * mb / ma + th**2 * xc.var(ddof=1)) / (
        3000 * ma**2
    )
    est = ((yt.mean() - th * xt.mean()) - (yc.mean() - th * xc.mean())) / ma
    assert r.estimate == pytest.approx(est, rel=1e-10)
    assert r.se == pytest.approx(math.sqrt(va + vb), rel=1e-10)
    assert r.unadjusted.estimate == pytest.approx(mb / ma - 1, rel=1e-12)
    assert 0 < r.variance_reduction < 1


def test_cuped_errors():
    with pytest.raises(ArgumentError, match=r"covariate column 0 must be one of columns 1\.\.1"):
        ts.cuped(
            Moments.from_values([1.0, 2, 3], [1.0, 2, 4]),
            Moments.from_values([1.0, 2, 3], [1.0, 2, 4]),
            covariate=0,
        )
    with pytest.raises(ArgumentError, match="must be Moments"):
        ts.cuped([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ArgumentError, match=r"cuped: treatment needs n >= 2 units, got n=1"):
        ts.cuped(([1.0, 2.0], [1.0, 3.0]), ([1.0], [2.0]))


def test_two_column_summaries_need_two_units():
    one = Moments.from_values([1.0], [2.0])
    two = Moments.from_values([1.0, 2.0], [2.0, 3.0])
    with pytest.raises(ArgumentError, match=r"ratio_test: control needs n >= 2 units, got n=1"):
        ts.ratio_test(one, two)
    with pytest.raises(ArgumentError, match=r"ratio_metric: moments needs n >= 2 units, got n=1"):
        ts.ratio_metric(one)


# -- non-inferiority --------------------------------------------------------------------------
def test_noninferiority_proportions_statsmodels():
    r = ts.noninferiority((1020, 10000), (1000, 10000), margin=0.01, kind="proportion")
    assert r.statistic == pytest.approx(1.877314, abs=1e-6)
    assert r.pvalue == pytest.approx(0.0302376, abs=1e-7)
    assert r.alternative == "larger" and r.ci[1] == math.inf


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    margin=st.floats(0.01, 1.0),
    higher=st.booleans(),
)
def test_noninferiority_means_is_a_shifted_one_sided_welch(seed, margin, higher):
    rng = np.random.default_rng(seed)
    c, t = rng.normal(5, 2, 200), rng.normal(5, 2.5, 150)
    r = ts.noninferiority(c, t, margin=margin, higher_is_better=higher)
    shift = margin if higher else -margin
    ref = stats.ttest_ind(
        t + shift, c, equal_var=False, alternative="greater" if higher else "less"
    )
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-8)
    assert r.pvalue == pytest.approx(ref.pvalue, rel=REL)


def test_noninferiority_relative_margin():
    c, t = moments(5000, 10, 4), moments(5000, 9.9, 4)
    r = ts.noninferiority(c, t, margin=0.03, relative=True)
    lift = ts.relative_lift(c, t)
    assert r.estimate == pytest.approx(lift.estimate)
    assert r.statistic == pytest.approx((lift.estimate + 0.03) / lift.se, rel=1e-12)
    p = ts.noninferiority((1000, 10000), (990, 10000), margin=0.1, relative=True, kind="proportion")
    se = math.sqrt(0.099 * 0.901 / 10000 / 0.01 + 0.099**2 * 0.09 / 10000 / 0.1**4)
    assert p.statistic == pytest.approx((-0.01 + 0.1) / se, rel=1e-8)
    with pytest.raises(ArgumentError, match=r"margin must be a finite number > 0, got -0\.1"):
        ts.noninferiority(c, t, margin=-0.1)
    with pytest.raises(ArgumentError, match="kind must be 'mean' or 'proportion', got 'ratio'"):
        ts.noninferiority(c, t, margin=0.1, kind="ratio")
    zero = Moments.from_values([-1.0, 1.0, 0.0])
    with pytest.raises(
        ArgumentError, match=r"^noninferiority: control mean is 0, the relative lift is undefined$"
    ):
        ts.noninferiority(zero, t, margin=0.1, relative=True)
    with pytest.raises(
        ArgumentError,
        match=r"^noninferiority: control proportion is 0, the relative lift is undefined$",
    ):
        ts.noninferiority((0, 100), (3, 100), margin=0.1, relative=True, kind="proportion")


# -- input checks -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ts.welch_ttest([1.0], [1.0, 2.0]), "control needs n >= 2 values.*got n=1"),
        (
            lambda: ts.welch_ttest([1.0, 2], [1.0, 2], alpha=1.5),
            r"alpha must be in \(0, 1\), got 1.5",
        ),
        (lambda: ts.welch_ttest([1.0, 2], [1.0, 2], alpha=0), r"alpha must be in \(0, 1\), got 0"),
        (
            lambda: ts.ztest_means([1.0, 2], [1.0, 2], alternative="greater"),
            "alternative must be one of",
        ),
        (lambda: ts.welch_ttest([1.0, 2], [1.0, 2], null=math.nan), "null must be finite"),
    ],
)
def test_bad_inputs_raise_argument_error(call, message):
    with pytest.raises(ArgumentError, match=message):
        call()


# -- A/A simulation ---------------------------------------------------------------------------
def _aa_rejections(reps: int, seed: int, n: int) -> tuple[int, int]:
    rng = np.random.default_rng(seed)
    welch = rel = 0
    for _ in range(reps):
        c, t = rng.exponential(2.0, n), rng.exponential(2.0, n + 7)
        welch += ts.welch_ttest(c, t).pvalue < 0.05
        rel += ts.relative_lift(c, t).pvalue < 0.05
    return welch, rel


def test_aa_false_positive_rate():
    reps = 2000
    welch, rel = _aa_rejections(reps, 2026, 200)
    bound = 3.5 * math.sqrt(0.05 * 0.95 / reps) * reps
    assert abs(welch - 0.05 * reps) < bound
    assert abs(rel - 0.05 * reps) < bound


@pytest.mark.slow
def test_aa_false_positive_rate_large():
    reps = 40000
    welch, rel = _aa_rejections(reps, 7, 300)
    bound = 3.5 * math.sqrt(0.05 * 0.95 / reps) * reps
    assert abs(welch - 0.05 * reps) < bound
    assert abs(rel - 0.05 * reps) < bound


# -- interval coverage ------------------------------------------------------------------------
def _coverage(reps: int, seed: int) -> dict[str, int]:
    """How often each interval covers the true relative lift 0.05 (CUPED, delta, Fieller) and
    the true difference of ratio metrics."""
    rng = np.random.default_rng(seed)
    hits = {"cuped": 0, "delta": 0, "fieller": 0, "ratio": 0}
    n = 400
    for _ in range(reps):
        xc, xt = rng.gamma(2, 5, n), rng.gamma(2, 5, n)
        yc = 0.7 * xc + rng.gamma(2, 2, n)
        yt = 1.05 * (0.7 * xt + rng.gamma(2, 2, n))
        lo, hi = ts.cuped((yc, xc), (yt, xt), relative=True).ci
        hits["cuped"] += lo <= 0.05 <= hi
        lo, hi = ts.relative_lift(yc, yt).ci
        hits["delta"] += lo <= 0.05 <= hi
        lo, hi = ts.relative_lift(yc, yt, method="fieller").ci
        hits["fieller"] += lo <= 0.05 <= hi
        dc, dt = rng.poisson(3, n) + 1.0, rng.poisson(3, n) + 1.0
        mc = ts.Moments.from_values(rng.binomial(dc.astype(int), 0.2).astype(float), dc)
        mt = ts.Moments.from_values(rng.binomial(dt.astype(int), 0.2).astype(float), dt)
        lo, hi = ts.ratio_test(mc, mt).ci
        hits["ratio"] += lo <= 0.0 <= hi
    return hits


def test_interval_coverage():
    reps = 2000
    hits = _coverage(reps, 99)
    bound = 3.5 * math.sqrt(0.05 * 0.95 / reps) * reps
    for name, h in hits.items():
        assert abs(h - 0.95 * reps) < bound, (name, h)


@pytest.mark.slow
def test_interval_coverage_large():
    reps = 50000
    hits = _coverage(reps, 123)
    bound = 3.5 * math.sqrt(0.05 * 0.95 / reps) * reps
    for name, h in hits.items():
        assert abs(h - 0.95 * reps) < bound, (name, h)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=30),
    st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=30),
    st.integers(0, 5),
    st.integers(0, 5),
)
def test_nan_values_are_left_out_and_counted(c, t, nan_c, nan_t):
    c_arr = np.array(c + [np.nan] * nan_c)
    t_arr = np.array(t + [np.nan] * nan_t)
    assume(np.var(c) > 1e-6 and np.var(t) > 1e-6)
    for fn in (ts.welch_ttest, ts.ztest_means):
        r = fn(c_arr, t_arr)
        assert r.skipped == nan_c + nan_t
        clean = fn(np.array(c), np.array(t))
        # The same values in another block layout: equal up to rounding.
        assert clean.skipped == 0 and r.pvalue == pytest.approx(clean.pvalue, rel=1e-12)
    ref = stats.ttest_ind(t, c, equal_var=False)
    assert ts.welch_ttest(c_arr, t_arr).pvalue == pytest.approx(ref.pvalue, rel=1e-6)
