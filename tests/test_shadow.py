"""Shadow testing: the primary path is never failed or held up by the candidate; both sides are
logged; compare_shadow against numpy, scipy and statsmodels."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

import trafficsplit as ts
from trafficsplit.shadow import ShadowRecord

# The documented bound on what the shadow adds to a primary call, generous for loaded CI
# machines; the candidates below take 100-1000 times longer than this.
BOUND = 0.05


def test_serves_the_primary_and_logs_both_sides():
    log = ts.ShadowLog()
    with ts.Shadow(
        lambda x: x * 2, lambda x: x * 2 + (x == 3), sample=1.0, max_in_flight=8, sink=log
    ) as s:
        assert [s(i) for i in range(6)] == [0, 2, 4, 6, 8, 10]
        assert log.wait(6)
    recs = sorted(log.records(), key=lambda r: r.primary_output)
    assert [r.primary_output for r in recs] == [0, 2, 4, 6, 8, 10]
    assert [r.candidate_output for r in recs] == [0, 2, 4, 7, 8, 10]
    assert [r.agree for r in recs] == [True, True, True, False, True, True]
    assert all(r.primary_status == r.candidate_status == "ok" for r in recs)
    assert all(r.primary_latency >= 0 and r.candidate_latency >= 0 for r in recs)
    c = s.counters()
    assert (c.sampled, c.started, c.completed, c.errors, c.timeouts, c.overloaded) == (
        6,
        6,
        6,
        0,
        0,
        0,
    )


def test_the_candidate_gets_a_copy_of_the_arguments():
    seen = []

    def primary(d):
        d["touched"] = True
        return len(d)

    def candidate(d):
        time.sleep(0.02)  # runs after the primary mutated its own argument
        seen.append(dict(d))
        return len(d)

    log = ts.ShadowLog()
    with ts.Shadow(primary, candidate, sample=1.0, sink=log) as s:
        assert s({"a": 1}) == 2
        assert log.wait(1)
    assert seen == [{"a": 1}]
    assert log.records()[0].agree is False


def test_a_raising_candidate_never_fails_or_slows_the_primary():
    def candidate(x):
        raise RuntimeError(f"boom {x}")

    log = ts.ShadowLog()
    s = ts.Shadow(lambda x: x + 1, candidate, sample=1.0, max_in_flight=2, sink=log)
    t0 = time.perf_counter()
    for i in range(50):
        assert s(i) == i + 1
    assert time.perf_counter() - t0 < 50 * BOUND
    s.close()
    recs = log.records()
    c = s.counters()
    assert c.errors == len(recs) == c.started and c.sampled == 50
    assert c.errors + c.overloaded == 50
    assert all(r.candidate_status == "error" and r.agree is None for r in recs)
    assert recs[0].candidate_error.startswith("RuntimeError('boom")


def test_a_slow_candidate_times_out_and_overload_is_counted():
    release = threading.Event()

    def candidate(x):
        release.wait(5)
        return x

    log = ts.ShadowLog()
    s = ts.Shadow(lambda x: x, candidate, sample=1.0, max_in_flight=2, timeout=0.1, sink=log)
    worst = 0.0
    for i in range(20):
        t0 = time.perf_counter()
        assert s(i) == i
        worst = max(worst, time.perf_counter() - t0)
    assert worst < BOUND  # no call waited for the 5-second candidate
    assert log.wait(2, timeout=5)  # the two running candidates time out
    c = s.counters()
    assert (c.sampled, c.started, c.overloaded) == (20, 2, 18)
    assert c.timeouts == 2 and c.in_flight == 2  # their threads are still busy
    assert [r.candidate_status for r in log.records()] == ["timeout", "timeout"]
    assert all(r.candidate_latency is None and r.candidate_output is None for r in log.records())
    release.set()
    s.close()
    c = s.counters()
    assert c.completed == 2 and c.in_flight == 0
    assert len(log) == 2  # a late answer does not log the request twice


def test_primary_errors_propagate_and_are_logged():
    def primary(x):
        raise ValueError("primary failed")

    log = ts.ShadowLog()
    with ts.Shadow(primary, lambda x: x, sample=1.0, sink=log) as s:
        with pytest.raises(ValueError, match="primary failed"):
            s(1)
        assert log.wait(1)
    (r,) = log.records()
    assert (r.primary_status, r.candidate_status, r.candidate_output, r.agree) == (
        "error",
        "ok",
        1,
        None,
    )


def test_a_failing_sink_is_counted():
    def sink(record):
        raise OSError("no space")

    with ts.Shadow(lambda x: x, lambda x: x, sample=1.0, sink=sink) as s:
        s(1)
        deadline = time.monotonic() + 5
        while s.counters().sink_errors < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert s.counters().sink_errors == 1


def test_sampling_by_key_is_deterministic_and_near_the_share():
    log = ts.ShadowLog()
    with ts.Shadow(
        lambda u: u, lambda u: u, sample=0.2, key=lambda u: u, name="rank", sink=log
    ) as s:
        for u in range(5000):
            s(f"user-{u}")
        n = s.counters().sampled
    expected = {f"user-{u}" for u in range(5000) if ts.bucket(f"user-{u}", "rank") < 2000}
    assert n == len(expected)
    assert abs(n / 5000 - 0.2) < 5 * np.sqrt(0.2 * 0.8 / 5000)
    with ts.Shadow(lambda u: u, lambda u: u, sample=0.3, seed=1) as s:
        for u in range(4000):
            s(u)
        assert abs(s.counters().sampled / 4000 - 0.3) < 5 * np.sqrt(0.3 * 0.7 / 4000)
    with ts.Shadow(lambda u: u, lambda u: u, sample=0.0) as s:
        s(1)
        assert s.counters().sampled == 0


def test_bad_settings_are_refused():
    f = lambda x: x  # noqa: E731
    for kwargs in ({"sample": 1.5}, {"max_in_flight": 0}, {"timeout": 0}, {"name": ""}):
        with pytest.raises(ts.ConfigError):
            ts.Shadow(f, f, **kwargs)
    with pytest.raises(ts.ConfigError):
        ts.Shadow(f, None)


# -- compare_shadow ------------------------------------------------------------------------------


def synthetic_log(n: int, seed: int) -> list[ShadowRecord]:
    rng = np.random.default_rng(seed)
    primary = rng.lognormal(-4, 0.5, n)
    candidate = primary * rng.lognormal(0.1, 0.2, n)
    agree = rng.random(n) < 0.9
    status = np.where(rng.random(n) < 0.05, "error", "ok").astype(object)
    status[:3] = "timeout"
    t = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
    out = []
    for i in range(n):
        ok = status[i] == "ok"
        out.append(
            ShadowRecord(
                t,
                "m",
                None,
                1,
                (1 if agree[i] else 2) if ok else None,
                float(primary[i]),
                None if status[i] == "timeout" else float(candidate[i]),
                "ok",
                str(status[i]),
                None,
                bool(agree[i]) if ok else None,
            )
        )
    return out


def test_compare_shadow_against_numpy_scipy_and_statsmodels():
    recs = synthetic_log(2000, 7)
    df = ts.compare_shadow(recs)
    (row,) = df.to_dict("records")
    frame = pd.DataFrame(recs)
    both = frame[frame["candidate_status"] == "ok"]
    k, n = int(both["agree"].sum()), len(both)
    assert (row["name"], row["requests"], row["paired"]) == ("m", 2000, n)
    assert row["agreement"] == pytest.approx(k / n, abs=1e-15)
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert (row["agreement_low"], row["agreement_high"]) == (
        pytest.approx(lo, abs=1e-12),
        pytest.approx(hi, abs=1e-12),
    )
    for q in (50, 90, 99):
        assert row[f"primary_p{q}"] == pytest.approx(
            np.percentile(frame["primary_latency"], q), rel=1e-12
        )
        assert row[f"candidate_p{q}"] == pytest.approx(
            np.percentile(both["candidate_latency"], q), rel=1e-12
        )
    ref = sps.ttest_rel(both["candidate_latency"], both["primary_latency"])
    ci = ref.confidence_interval(0.95)
    assert row["t"] == pytest.approx(ref.statistic, rel=1e-9)
    assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)
    assert row["latency_diff"] == pytest.approx(
        (both["candidate_latency"] - both["primary_latency"]).mean(), rel=1e-12
    )
    assert (row["latency_diff_low"], row["latency_diff_high"]) == (
        pytest.approx(ci.low, rel=1e-9),
        pytest.approx(ci.high, rel=1e-9),
    )
    assert row["candidate_timeouts"] == 3
    assert row["candidate_errors"] == int((frame["candidate_status"] == "error").sum())
    assert row["primary_errors"] == 0


def test_compare_shadow_groups_by_name_and_reads_a_shadow_log():
    log = ts.ShadowLog()
    with (
        ts.Shadow(
            lambda x: x, lambda x: x, sample=1.0, max_in_flight=32, sink=log, name="same"
        ) as a,
        ts.Shadow(
            lambda x: x, lambda x: -x, sample=1.0, max_in_flight=32, sink=log, name="negated"
        ) as b,
    ):
        for i in range(1, 21):
            a(i)
            b(i)
        assert log.wait(40)
    df = ts.compare_shadow(log).set_index("name")
    assert df.loc["same", "agreement"] == 1.0 and df.loc["negated", "agreement"] == 0.0
    assert (df["paired"] == 20).all()
    with pytest.raises(ts.ConfigError):
        ts.compare_shadow(pd.DataFrame({"x": [1]}))
