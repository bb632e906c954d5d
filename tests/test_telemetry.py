"""Metrics per arm: Assignment.labels() and the thread-safe recorder in the core."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trafficsplit as ts
from trafficsplit.stats import Moments


def test_assignment_labels():
    exp = ts.Experiment("ranker", {"control": 50, "treatment": 50}, exposure=0.5)
    labels = [exp.assign(f"u{i}").labels() for i in range(50)]
    assert {tuple(sorted(x)) for x in labels} == {("arm", "experiment", "reason")}
    assert {x["reason"] for x in labels} == {"assigned", "not_exposed"}
    for x in labels:
        assert x["experiment"] == "ranker"
        assert (x["arm"] in ("control", "treatment")) == (x["reason"] == "assigned")
        assert x["arm"] or x["reason"] == "not_exposed"
    assert exp.assign(None).labels() == {
        "experiment": "ranker",
        "arm": "",
        "reason": "missing_unit",
    }


def test_moments_match_numpy():
    rng = np.random.default_rng(3)
    rec = ts.MetricsRecorder()
    values = {
        ("latency", "control"): rng.lognormal(-3, 0.4, 3000),
        ("latency", "treatment"): rng.lognormal(-2.9, 0.4, 2000),
        ("cost", "treatment"): rng.normal(1e6, 3.0, 500),  # large offset, small spread
    }
    for (metric, arm), xs in values.items():
        for x in xs[:100]:
            rec.record(metric, arm, x)
        rec.record_many(metric, arm, xs[100:])
    got = rec.moments()
    assert set(got) == set(values)
    for key, xs in values.items():
        m = got[key]
        assert isinstance(m, Moments) and m.columns == (key[0],)
        assert m.n == len(xs)
        assert m.mean == pytest.approx(xs.mean(), rel=1e-12)
        assert m.var == pytest.approx(xs.var(ddof=1), rel=1e-9)
        assert m.sum == pytest.approx(xs.sum(), rel=1e-12)
    # Merging with the statistics module's own moments gives the moments of the union.
    more = np.array([0.1, 0.2, 0.3])
    merged = got[("latency", "control")].merge(Moments.from_values(more, columns=["latency"]))
    both = np.concatenate([values[("latency", "control")], more])
    assert merged.var == pytest.approx(both.var(ddof=1), rel=1e-9)


def test_concurrent_threads_lose_nothing():
    rec = ts.MetricsRecorder(shards=4)
    threads, per = 8, 20_000
    xs = np.arange(per, dtype=np.float64) % 7  # 0..6 repeating

    def work(t: int) -> None:
        arm = "a" if t % 2 else "b"
        for x in xs[: per // 2]:
            rec.record("latency", arm, x)
        rec.record_many("latency", arm, xs[per // 2 :])
        rec.observe(arm, error=t % 4 == 0, cost=1.0)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    m = rec.moments()
    ref = np.tile(xs, threads // 2)
    for arm in ("a", "b"):
        assert m[("latency", arm)].n == per * threads // 2
        assert m[("latency", arm)].mean == pytest.approx(ref.mean(), rel=1e-12)
        assert m[("latency", arm)].var == pytest.approx(ref.var(ddof=1), rel=1e-12)
        assert m[("cost", arm)].n == threads // 2
    assert m[("errors", "b")].mean == 0.5 and m[("errors", "a")].mean == 0.0


def test_nan_and_inf_are_skipped_and_counted():
    rec = ts.MetricsRecorder()
    rec.record_many("latency", "a", [1.0, np.nan, 3.0, np.inf])
    m = rec.moments()[("latency", "a")]
    assert (m.n, m.mean, m.skipped) == (2, 2.0, 2)


def test_timer_records_seconds_and_errors():
    rec = ts.MetricsRecorder()
    a = ts.Experiment("e", {"x": 100}).assign("u")
    with rec.timer(a):
        sum(range(1000))
    with pytest.raises(KeyError), rec.timer(a):
        raise KeyError("x")
    m = rec.moments()
    assert m[("latency", "x")].n == 2 and 0 <= m[("latency", "x")].mean < 1
    assert m[("errors", "x")].n == 2 and m[("errors", "x")].mean == 0.5


def test_summary_and_reset():
    rec = ts.MetricsRecorder()
    rec.record_many("cost", "b", [1.0, 2.0, 3.0, 4.0])
    rec.record("cost", "a", 5.0)
    df = rec.summary()
    assert list(df.columns) == ["metric", "arm", "n", "mean", "std", "sum", "skipped"]
    row = df.set_index("arm").loc["b"]
    assert (row["n"], row["mean"], row["sum"]) == (4, 2.5, 10.0)
    assert row["std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert np.isnan(df.set_index("arm").loc["a", "std"])
    rec.reset()
    assert rec.summary()["n"].tolist() == [0, 0]
    assert isinstance(rec.summary(), pd.DataFrame)


def test_bad_input():
    rec = ts.MetricsRecorder()
    with pytest.raises(ts.ConfigError):
        rec.record("", "a", 1.0)
    with pytest.raises(ts.ConfigError):
        rec.record("m", 3, 1.0)
    with pytest.raises(ts.ConfigError):
        rec.record_many("m", "a", np.ones((2, 2)))
    with pytest.raises(ts.ConfigError):
        ts.MetricsRecorder(shards=0)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=2, max_size=200),
    st.integers(0, 200),
)
def test_split_recording_equals_numpy(xs, cut):
    rec = ts.MetricsRecorder(shards=2)
    cut = min(cut, len(xs))
    rec.record_many("m", "a", xs[:cut])
    for x in xs[cut:]:
        rec.record("m", "a", x)
    m = rec.moments()[("m", "a")]
    arr = np.array(xs)
    assert m.n == len(xs)
    assert m.mean == pytest.approx(arr.mean(), rel=1e-9, abs=1e-6)
    assert m.comoments[0, 0] == pytest.approx(((arr - arr.mean()) ** 2).sum(), rel=1e-7, abs=1e-3)
