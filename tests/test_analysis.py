"""trafficsplit.analyze: values against scipy/statsmodels, units == sums, corrections, CUPED,
ratio metrics, guardrails, SRM, sequential decisions, output forms and errors."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

import trafficsplit as ts
from trafficsplit import stats
from trafficsplit.analysis import Guardrail
from trafficsplit.errors import ArgumentError

matplotlib.use("Agg")


def _units(n: int = 20_000, seed: int = 7, lift: float = 0.02) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "a", "b"], size=n)
    pre = rng.gamma(2.0, 5.0, size=n)
    effect = np.where(arm == "a", 1 + lift, np.where(arm == "b", 1 - lift, 1.0))
    revenue = (0.8 * pre + rng.normal(0, 3, size=n)) * effect
    views = rng.poisson(8, size=n) + 1
    clicks = rng.binomial(views, np.where(arm == "a", 0.11, 0.10))
    latency = rng.lognormal(3.0, 0.4, size=n) * np.where(arm == "b", 1.25, 1.0)
    converted = (rng.random(n) < np.where(arm == "a", 0.12, 0.10)).astype(float)
    return pd.DataFrame(
        {
            "arm": arm,
            "revenue": revenue,
            "revenue_pre": pre,
            "clicks": clicks,
            "views": views,
            "latency": latency,
            "converted": converted,
        }
    )


def test_welch_rows_match_scipy() -> None:
    df = _units()
    res = ts.analyze(df, metrics=["revenue", "converted"], correction="none")
    for metric in ("revenue", "converted"):
        for arm in ("a", "b"):
            r = res.result(metric, arm)
            x = df.loc[df.arm == "control", metric].to_numpy()
            y = df.loc[df.arm == arm, metric].to_numpy()
            ref = sps.ttest_ind(y, x, equal_var=False)
            assert r.pvalue == pytest.approx(ref.pvalue, rel=1e-6)
            assert r.absolute.statistic == pytest.approx(ref.statistic, rel=1e-6)
            ci = ref.confidence_interval(0.95)
            assert r.absolute.ci == pytest.approx((ci.low, ci.high), rel=1e-6)
            assert r.mean == pytest.approx(y.mean(), rel=1e-12)
            assert r.control_mean == pytest.approx(x.mean(), rel=1e-12)
            assert r.relative.estimate == pytest.approx(y.mean() / x.mean() - 1, rel=1e-9)


def test_holm_adjustment_matches_statsmodels() -> None:
    df = _units(seed=3)
    for method, sm in (("holm", "holm"), ("bonferroni", "bonferroni"), ("bh", "fdr_bh")):
        res = ts.analyze(df, metrics=["revenue", "converted", "latency"], correction=method)
        rows = [r for r in res.results if r.kind == "metric"]
        raw = np.array([r.pvalue for r in rows])
        expected = multipletests(raw, method=sm)[1]
        assert [r.adjusted_pvalue for r in rows] == pytest.approx(expected, rel=1e-12)


def test_units_and_sums_tables_give_the_same_analysis() -> None:
    df = _units(seed=11)
    kw = dict(
        metrics=["revenue", "converted"],
        covariates={"revenue": "revenue_pre"},
        ratio_metrics={"ctr": ("clicks", "views")},
        guardrails={"latency": 0.05},
    )
    a = ts.analyze(df, **kw).summary()
    sums = ts.sufficient_statistics(df, **kw)
    assert set(sums["arm"]) == {"control", "a", "b"}
    assert sums.loc[sums.arm == "a", "n"].item() == (df.arm == "a").sum()
    b = ts.analyze(sums, **kw).summary()
    # per-partition sums (what Spark produces) merge to the same numbers
    halves = [ts.sufficient_statistics(part, **kw) for part in (df.iloc[::2], df.iloc[1::2])]
    c = ts.analyze(pd.concat(halves, ignore_index=True), **kw).summary()
    num = [c for c in a.columns if a[c].dtype.kind == "f"]
    for other in (b, c):
        pd.testing.assert_frame_equal(a[num], other[num], rtol=1e-9, atol=1e-12)
        assert list(a["decision"]) == list(other["decision"])


def test_cuped_reduces_variance_and_reports_it() -> None:
    df = _units(seed=5)
    plain = ts.analyze(df, metrics=["revenue"], correction="none")
    adj = ts.analyze(
        df, metrics=["revenue"], covariates={"revenue": "revenue_pre"}, correction="none"
    )
    r0, r1 = plain.result("revenue", "a"), adj.result("revenue", "a")
    assert r1.method == "cuped"
    rho = np.corrcoef(df.revenue, df.revenue_pre)[0, 1]
    assert r1.variance_reduction == pytest.approx(rho**2, abs=0.02)
    assert r1.absolute.se < r0.absolute.se * math.sqrt(1 - rho**2) * 1.05
    assert r1.absolute.estimate == pytest.approx(r0.absolute.estimate, abs=3 * r0.absolute.se)


def test_ratio_metric_is_ratio_of_sums() -> None:
    df = _units(seed=9)
    res = ts.analyze(df, ratio_metrics={"ctr": ("clicks", "views")}, correction="none")
    r = res.result("ctr", "a")
    c, t = df[df.arm == "control"], df[df.arm == "a"]
    assert r.control_mean == pytest.approx(c.clicks.sum() / c.views.sum(), rel=1e-12)
    assert r.mean == pytest.approx(t.clicks.sum() / t.views.sum(), rel=1e-12)
    assert r.absolute.estimate == pytest.approx(r.mean - r.control_mean, rel=1e-9)
    assert r.decision == "increase"  # 0.11 vs 0.10 per view on ~8,000 units per arm


def test_guardrails_pass_harm_and_inconclusive() -> None:
    df = _units(n=60_000, seed=1)
    res = ts.analyze(df, guardrails={"latency": Guardrail(0.05)})
    assert res.result("latency", "a").decision == "pass"  # same latency, 5 % margin
    assert res.result("latency", "b").decision == "harm"  # 25 % slower
    small = ts.analyze(df.iloc[:300], guardrails={"latency": Guardrail(0.01)})
    assert small.result("latency", "a").decision == "inconclusive"
    # a margin in the metric's unit
    res2 = ts.analyze(df, guardrails={"latency": Guardrail(5.0, relative=False)})
    assert res2.result("latency", "a").decision == "pass"


def test_srm_fires_on_a_biased_split_and_not_on_a_fair_one() -> None:
    rng = np.random.default_rng(2)
    n = 1_000_000
    y = rng.normal(size=n)
    biased = pd.DataFrame({"arm": np.where(rng.random(n) < 0.505, "control", "t"), "y": y})
    fair = pd.DataFrame({"arm": np.where(rng.random(n) < 0.5, "control", "t"), "y": y})
    assert ts.analyze(biased, metrics=["y"]).srm.mismatch
    assert not ts.analyze(fair, metrics=["y"]).srm.mismatch
    # configured 90/10 weights: a 90/10 split is not a mismatch
    skew = pd.DataFrame({"arm": np.where(rng.random(n) < 0.9, "control", "t"), "y": y})
    assert ts.analyze(skew, metrics=["y"]).srm.mismatch
    assert not ts.analyze(skew, metrics=["y"], weights={"control": 90, "t": 10}).srm.mismatch


def test_nan_values_are_skipped_per_metric() -> None:
    df = _units(seed=4)
    df.loc[df.index[::7], "revenue"] = np.nan
    res = ts.analyze(df, metrics=["revenue", "converted"])
    keep = df[(df.arm == "a") & df.revenue.notna()]
    assert res.result("revenue", "a").n == len(keep)
    assert res.result("converted", "a").n == (df.arm == "a").sum()
    assert res.counts["a"] == (df.arm == "a").sum()


def test_summary_html_and_plot() -> None:
    df = _units(seed=6)
    res = ts.analyze(df, metrics=["revenue", "converted"], guardrails={"latency": 0.05})
    s = res.summary()
    assert len(s) == 3 * 3  # 3 metrics x (control + 2 arms)
    assert list(s.loc[s.arm == "control", "decision"].unique()) == ["control"]
    assert s.loc[(s.metric == "revenue") & (s.arm == "a"), "adj_pvalue"].item() >= (
        s.loc[(s.metric == "revenue") & (s.arm == "a"), "pvalue"].item()
    )
    page = res._repr_html_()
    assert page.count("<tr") == len(s) + 1 and "Sample ratio" in page
    assert "alpha 0.05, correction holm.</p>" in page
    fig = res.plot()
    ax = fig.axes[0]
    xs = np.sort(np.asarray(ax.collections[-1].get_offsets())[:, 0]).tolist()
    expected = sorted(r.relative.estimate * 100 for r in res.results)
    assert xs == pytest.approx(expected)


def test_sequential_decisions_follow_the_design() -> None:
    design = stats.GroupSequential(3, alpha=0.025, sides=1, spending="obrien-fleming")
    bounds = design.boundaries()
    rng = np.random.default_rng(0)
    n = 30_000
    arm = np.where(rng.random(n) < 0.5, "control", "t")
    y = rng.normal(size=n) + np.where(arm == "t", 0.06, 0.0)
    df = pd.DataFrame({"arm": arm, "y": y})
    looks = []
    for k, frac in enumerate((1 / 3, 2 / 3, 1.0)):
        part = df.iloc[: int(n * frac)]
        res = ts.analyze(
            part, metrics=["y"], sequential=design, information=frac, previous=looks[-1:]
        )
        looks.append(res)
        z = res.result("y", "t").statistic
        d = res.result("y", "t").decision
        assert d == ("increase" if z >= bounds[k] else ("continue" if k < 2 else "no difference"))
    assert [lk.information for lk in looks[-1].looks] == pytest.approx([1 / 3, 2 / 3, 1.0])
    fig = looks[-1].plot()
    assert len(fig.axes) == 2


# The level is checked by the statistics (a bad argument); the rest describe the data and
# the analysis (ConfigError).
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": ["nope"]}, r"no column 'nope'"),
        ({"metrics": ["arm"]}, r"column 'arm' must be numeric"),
        ({"metrics": ["revenue"], "control": "ctl"}, r"control arm 'ctl' is not in the data"),
        ({"metrics": ["revenue"], "correction": "sidak"}, r"correction must be one of"),
        ({"metrics": ["revenue"], "alpha": 1.5}, r"alpha must be in \(0, 1\)"),
        (
            {"metrics": ["revenue"], "alpha": "0.05"},
            r"^analyze: alpha must be in \(0, 1\), got '0.05'$",
        ),
        ({"metrics": []}, r"at least one metric"),
        ({"metrics": ["revenue"], "covariates": {"x": "revenue_pre"}}, r"not in metrics"),
        ({"ratio_metrics": {"ctr": "clicks"}}, r"\(numerator, denominator\) pair"),
        ({"guardrails": {"latency": -1}}, r"margin must be >= 0"),
        ({"metrics": ["revenue"], "arm": "variant"}, r"no arm column 'variant'"),
    ],
)
def test_bad_input_is_named(kwargs: dict, message: str) -> None:
    df = _units(n=2000)
    error = ArgumentError if "alpha" in kwargs else ts.ConfigError
    with pytest.raises(error, match=message):
        ts.analyze(df, **kwargs)


def test_sufficient_statistics_names_a_missing_arm_column() -> None:
    with pytest.raises(ts.ConfigError, match=r"^no arm column 'variant' in the data; columns: "):
        ts.sufficient_statistics(_units(n=100), arm="variant", metrics=["revenue"])


def test_sums_table_missing_a_column_is_named() -> None:
    sums = ts.sufficient_statistics(_units(n=2000), metrics=["revenue"])
    with pytest.raises(ts.ConfigError, match=r"lacks column 'sumsq__revenue'"):
        ts.analyze(sums.drop(columns=["sumsq__revenue"]), metrics=["revenue"])
    with pytest.raises(ts.ConfigError, match=r"missing values"):
        df = _units(n=2000)
        df.loc[3, "revenue"] = np.nan
        ts.sufficient_statistics(df, metrics=["revenue"])


def test_mapping_of_moments_is_accepted() -> None:
    df = _units(seed=8)
    per = {
        "revenue": {
            a: stats.Moments.from_values(df.loc[df.arm == a, "revenue"])
            for a in ("control", "a", "b")
        }
    }
    a = ts.analyze(per, metrics=["revenue"]).result("revenue", "a")
    b = ts.analyze(df, metrics=["revenue"]).result("revenue", "a")
    assert a.pvalue == pytest.approx(b.pvalue, rel=1e-9)
    assert a.adjusted_pvalue == pytest.approx(b.adjusted_pvalue, rel=1e-9)


def test_edge_cases_are_named_or_handled() -> None:
    one = pd.DataFrame({"arm": ["control", "t"], "y": [1.0, 2.0]})
    with pytest.raises(ArgumentError, match=r"metric 'y', arm 't' vs 'control': .*n >= 2"):
        ts.analyze(one, metrics=["y"])
    inf = pd.DataFrame({"arm": ["control", "t"] * 3, "y": [1.0, np.inf, 2, 3, 4, 5]})
    with pytest.raises(
        ts.ConfigError, match=r"column 'y' has 1 infinite value\(s\), first at row 1"
    ):
        ts.analyze(inf, metrics=["y"])
    # a zero control mean leaves the relative lift undefined, the rest is computed
    zero = pd.DataFrame({"arm": ["control", "t"] * 4, "y": [0.0, 1, 0, 2, 0, 3, 0, 2]})
    r = ts.analyze(zero, metrics=["y"]).result("y", "t")
    assert r.relative is None and r.absolute.estimate == pytest.approx(2.0)
    row = ts.analyze(zero, metrics=["y"]).summary().iloc[-1]
    assert math.isnan(row["rel_lift"]) and row["abs_lift"] == pytest.approx(2.0)


def test_a_correction_does_not_combine_with_a_sequential_design():
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"arm": rng.choice(["control", "t"], 4000), "y": rng.normal(size=4000)})
    design = ts.stats.GroupSequential(3, alpha=0.025, sides=1)
    with pytest.raises(ArgumentError, match="does not combine with a sequential design"):
        ts.analyze(df, metrics=["y"], sequential=design, information=0.5, correction="holm")
    quiet = ts.analyze(df, metrics=["y"], sequential=design, information=0.5)
    explicit = ts.analyze(df, metrics=["y"], sequential=design, information=0.5, correction="none")
    pd.testing.assert_frame_equal(quiet.summary(), explicit.summary())
    # Without a design, Holm stays the default.
    two = ts.analyze(df.assign(z=df["y"] * 2 + 1), metrics=["y", "z"])
    assert two.summary()["adj_pvalue"].max() >= two.summary()["pvalue"].max()
