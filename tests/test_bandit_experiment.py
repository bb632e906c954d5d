"""Bandits driving experiments (docs/bandits.md): each epoch is an allocation step, units
move only with their buckets, epochs replay, sticky stores keep first arms, the configuration
is rewritten for a Splitter; exposure logs give IPW estimates; the contextual policy."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

import trafficsplit as ts
from trafficsplit.bandit import (
    BernoulliThompson,
    FeatureEncoder,
    LinearThompson,
    assignment_probabilities,
    ipw_estimate,
    policy_from_dict,
    write_allocation,
)
from trafficsplit.errors import ArgumentError
from trafficsplit.sticky import MemoryStickyStore, assign_sticky

ARMS = ["control", "b", "c"]
MEANS = {"control": 0.04, "b": 0.05, "c": 0.07}
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
UNITS = np.arange(20_000, dtype=np.int64)


def epochs(n: int, seed: int = 1) -> tuple[list[ts.Experiment], BernoulliThompson]:
    """An experiment driven by Thompson sampling for ``n`` daily epochs of simulated traffic."""
    rng = np.random.default_rng(seed)
    policy = BernoulliThompson(ARMS, floor=0.02, seed=9)
    exp = ts.Experiment("ranker", {"control": 33.34, "b": 33.33, "c": 33.33}, allocated_at=T0)
    history = [exp]
    for e in range(1, n):
        served = exp.assign_batch(UNITS[rng.permutation(len(UNITS))[:5000]])
        arms = served.arm
        rewards = rng.random(len(arms)) < np.array([MEANS[a] for a in arms])
        policy.update(arms, rewards.astype(float))
        exp = policy.next_step(exp, at=T0 + dt.timedelta(days=e))
        history.append(exp)
    return history, policy


@pytest.fixture(scope="module")
def driven() -> tuple[list[ts.Experiment], BernoulliThompson]:
    return epochs(6)


def test_each_epoch_is_a_new_step_with_the_policy_weights(driven):
    history, policy = driven
    last = history[-1]
    assert len(last.steps) == 6
    assert [s.effective for s in last.steps] == [T0 + dt.timedelta(days=e) for e in range(6)]
    # The step's weights are the policy's weights for that epoch rounded to whole buckets.
    prev = history[-2]
    w = policy.weights(epoch=5, previous={a: prev.weights[a] / 100 for a in ARMS})
    counts = {a: round(last.weights[a] * last.buckets / 100) for a in ARMS}
    assert sum(counts.values()) == last.buckets
    for a in ARMS:
        assert abs(counts[a] - w[a] * last.buckets) < 1  # largest-remainder rounding
        assert counts[a] >= 0.02 * last.buckets - 1  # the floor, within a bucket
    assert last.weights["c"] > 60


def test_units_move_only_with_their_buckets(driven):
    history, _ = driven
    for before, after in itertools.pairwise(history):
        old = before.assign_batch(UNITS)
        new = after.assign_batch(UNITS)
        moved_units = old.arm != new.arm
        bucket_changed = before.bucket_map() != after.bucket_map()
        assert np.array_equal(moved_units, bucket_changed[new.bucket])
        # The fewest possible: the total-variation distance between the bucket counts.
        old_counts = np.bincount(before.bucket_map(), minlength=3)
        new_counts = np.bincount(after.bucket_map(), minlength=3)
        tv = np.abs(old_counts - new_counts).sum() / 2 / before.buckets
        assert before.moved_fraction(after) == pytest.approx(tv)


def test_same_unit_same_arm_within_an_epoch(driven):
    history, _ = driven
    exp = history[3]
    batch = exp.assign_batch(UNITS[:2000]).arm
    again = [exp.assign(int(u)).arm for u in UNITS[:2000]]
    assert list(batch) == again
    assert list(exp.assign_batch(UNITS[:2000]).arm) == list(batch)


def test_assign_at_replays_every_epoch(driven):
    history, _ = driven
    last = history[-1]
    for e, exp in enumerate(history):
        at = T0 + dt.timedelta(days=e, hours=12)
        assert np.array_equal(last.assign_batch(UNITS, at=at).arm, exp.assign_batch(UNITS).arm)
        assert np.array_equal(last.bucket_map(at), exp.bucket_map())


def test_a_sticky_store_keeps_first_arms(driven):
    history, _ = driven
    store = MemoryStickyStore()
    units = [int(u) for u in UNITS[:5000]]
    first = assign_sticky(history[0], units, store)
    later = assign_sticky(history[-1], units, store)
    assert later == first
    fresh = [int(u) for u in UNITS[5000:10000]]
    assert assign_sticky(history[-1], fresh, store) == list(history[-1].assign_batch(fresh).arm)


def test_next_step_refuses_other_arms():
    policy = BernoulliThompson(["x", "y"])
    with pytest.raises(ts.ConfigError, match="arms"):
        policy.next_step(ts.Experiment("e", {"x": 50, "z": 50}), at=T0)


def test_assignment_probabilities_are_bucket_shares(driven):
    history, _ = driven
    last = history[-1]
    for e in (0, 5):
        probs = assignment_probabilities(last, T0 + dt.timedelta(days=e, hours=1))
        assert probs == pytest.approx({a: history[e].weights[a] / 100 for a in ARMS})


def test_assignment_probabilities_equal_the_exposure_records() -> None:
    """One definition: what the bandit helper says is what the exposure log records."""
    exp = ts.Experiment("p", {"a": 30, "b": 70}, exposure=0.5)
    probs = assignment_probabilities(exp)
    assert probs == pytest.approx({"a": 0.15, "b": 0.35})
    records: list = []
    sp = ts.Splitter(
        ts.parse_config(
            {"experiments": [{"key": "p", "arms": {"a": 30, "b": 70}, "exposure": 0.5}]}
        ),
        exposures=records.append,
    )
    for i in range(200):
        sp.assign("p", f"u{i}")
    sp.close()
    assert records and all(r.probability == pytest.approx(probs[r.arm]) for r in records)


# -- the configuration -------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_write_allocation_updates_the_config_a_splitter_reloads(tmp_path, suffix):
    config = {
        "experiments": [
            {"key": "other", "arms": {"x": 100}},
            {
                "key": "ranker",
                "arms": {
                    "control": {"weight": 34, "payload": {"model": "v1"}},
                    "b": {"weight": 33, "payload": {"model": "v2"}},
                    "c": {"weight": 33, "payload": {"model": "v3"}},
                },
                "allocated_at": "2026-11-01T00:00:00Z",
            },
        ]
    }
    path = tmp_path / f"config{suffix}"
    path.write_text(
        json.dumps(config) if suffix == ".json" else yaml.safe_dump(config, sort_keys=False)
    )
    sp = ts.Splitter.from_file(path)
    exp = sp.snapshot.experiments["ranker"].experiment
    policy = BernoulliThompson(ARMS, floor=0.05, seed=1)
    policy.update_aggregates(
        {"control": (2000, 80, 80), "b": (2000, 100, 100), "c": (2000, 140, 140)}
    )
    new = policy.next_step(exp, at="2026-11-02T00:00:00Z")
    write_allocation(path, new)
    assert sp.reload()
    loaded = sp.snapshot.experiments["ranker"].experiment
    assert loaded.weights == new.weights
    assert len(loaded.steps) == 2
    assert np.array_equal(loaded.bucket_map(), new.bucket_map())
    assert {a.name: a.payload for a in loaded.arms}["control"] == {"model": "v1"}
    assert sp.snapshot.experiments["other"].experiment.weights == {"x": 100}
    units = [f"user-{i}" for i in range(500)]
    assert [sp.assign("ranker", u).arm for u in units] == list(new.assign_batch(units).arm)
    # A second epoch appends again.
    newer = policy.next_step(loaded, at="2026-11-03T00:00:00Z")
    write_allocation(path, newer)
    assert sp.reload()
    assert len(sp.snapshot.experiments["ranker"].experiment.steps) == 3


def test_write_allocation_needs_the_experiment(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"experiments": [{"key": "x", "arms": {"a": 100}}]}))
    with pytest.raises(ts.ConfigError, match="ranker"):
        write_allocation(path, ts.Experiment("ranker", {"a": 100}))


# -- off-policy estimates ----------------------------------------------------------------------


def simulated_log(seed: int, n_per_epoch: int = 20_000) -> pd.DataFrame:
    """Exposures under three allocations (changing weights), Bernoulli rewards."""
    rng = np.random.default_rng(seed)
    frames = []
    for weights in ([1 / 3, 1 / 3, 1 / 3], [0.2, 0.2, 0.6], [0.05, 0.15, 0.8]):
        arms = rng.choice(ARMS, n_per_epoch, p=weights)
        p = np.array(weights)[[ARMS.index(a) for a in arms]]
        reward = (rng.random(n_per_epoch) < np.array([MEANS[a] for a in arms])).astype(float)
        frames.append(pd.DataFrame({"arm": arms, "reward": reward, "probability": p}))
    return pd.concat(frames, ignore_index=True)


def test_ipw_estimates_match_their_formulas():
    log = simulated_log(1)
    est = ipw_estimate(log)
    n = len(log)
    for a in ARMS:
        w = np.where(log.arm == a, 1 / log.probability, 0.0)
        t = w * log.reward
        assert est.loc[a, "ipw"] == pytest.approx(t.mean(), rel=1e-12)
        assert est.loc[a, "ipw_se"] == pytest.approx(t.std(ddof=1) / math.sqrt(n), rel=1e-9)
        hajek = t.sum() / w.sum()
        assert est.loc[a, "hajek"] == pytest.approx(hajek, rel=1e-12)
        se = math.sqrt((w**2 * (log.reward - hajek) ** 2).sum()) / w.sum()
        assert est.loc[a, "hajek_se"] == pytest.approx(se, rel=1e-9)
        assert est.loc[a, "rows"] == (log.arm == a).sum()
        assert est.loc[a, "ipw_high"] - est.loc[a, "ipw"] == pytest.approx(
            1.959964 * t.std(ddof=1) / math.sqrt(n), rel=1e-5
        )


def test_ipw_recovers_the_true_means():
    covered = {"ipw": 0, "hajek": 0}
    reps = 40
    for seed in range(reps):
        est = ipw_estimate(simulated_log(100 + seed, 5_000))
        for kind in covered:
            covered[kind] += sum(
                est.loc[a, f"{kind}_low"] <= MEANS[a] <= est.loc[a, f"{kind}_high"] for a in ARMS
            )
    # 95 % intervals: of 120 intervals, about 114 cover (binomial sd ~2.4).
    for kind, hits in covered.items():
        assert hits >= 105, (kind, hits)
    # The naive per-arm mean is right too here (rewards do not depend on time), but a log whose
    # allocation followed a drifting reward is where weighting matters; see docs/bandits.md.
    est = ipw_estimate(simulated_log(7))
    for a in ARMS:
        assert abs(est.loc[a, "hajek"] - MEANS[a]) < 4 * est.loc[a, "hajek_se"]


def test_ipw_takes_a_mapping_and_other_column_names():
    log = simulated_log(2, 2000)
    est = ipw_estimate(
        {"served": log.arm.to_numpy(), "y": log.reward.to_numpy(), "p": log.probability.to_numpy()},
        arm="served",
        reward="y",
        probability="p",
        arms=ARMS,
    )
    assert list(est.index) == ARMS
    pd.testing.assert_frame_equal(est, ipw_estimate(log).loc[ARMS])


def test_ipw_refuses_bad_logs():
    log = simulated_log(3, 100)
    with pytest.raises(ts.ConfigError, match="probability column 'prob'"):
        ipw_estimate(log, probability="prob")
    bad = log.copy()
    bad.loc[5, "probability"] = 0.0
    with pytest.raises(ArgumentError, match=r"probability\[5\] is 0"):
        ipw_estimate(bad)


# -- the contextual policy ---------------------------------------------------------------------


ENCODER = FeatureEncoder(categorical={"device": ["phone", "desktop"]}, numeric={"age": (40, 12)})


def test_feature_encoding():
    x = ENCODER.encode_frame(
        pd.DataFrame({"device": ["phone", "tablet", None, "desktop"], "age": [52, 40, None, 16]})
    )
    np.testing.assert_allclose(
        x,
        [[1, 1, 0, 1], [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 1, -2]],
    )
    assert ENCODER.names == ("intercept", "device=phone", "device=desktop", "age")
    assert FeatureEncoder.from_dict(json.loads(json.dumps(ENCODER.to_dict()))) == ENCODER


def contextual_data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Phones convert best on arm b, desktops on arm c; arms served uniformly."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"device": rng.choice(["phone", "desktop"], n), "age": rng.normal(40, 12, n)}
    )
    arms = rng.choice(ARMS, n)
    rate = np.where(
        frame.device == "phone",
        np.select([arms == "b"], [0.12], 0.05),
        np.select([arms == "c"], [0.12], 0.05),
    )
    rewards = (rng.random(n) < rate).astype(float)
    return frame, arms, rewards


def test_linear_thompson_coefficients_are_ridge_regression():
    frame, arms, rewards = contextual_data(3000, 1)
    policy = LinearThompson(ARMS, ENCODER, ridge=2.0)
    policy.update(frame, arms, rewards)
    x = ENCODER.encode_frame(frame)
    for a, theta in policy.coefficients().items():
        xa, ra = x[arms == a], rewards[arms == a]
        expected = np.linalg.solve(2.0 * np.eye(4) + xa.T @ xa, xa.T @ ra)
        np.testing.assert_allclose(theta, expected, rtol=1e-9, atol=1e-12)


def test_linear_thompson_learns_the_best_arm_per_context():
    frame, arms, rewards = contextual_data(20_000, 2)
    policy = LinearThompson(ARMS, ENCODER, seed=3, floor=0.01, draws=2000)
    policy.update(frame, arms, rewards)
    p = policy.probabilities([{"device": "phone", "age": 30}, {"device": "desktop", "age": 30}])
    assert p[0, 1] > 0.8 and p[1, 2] > 0.8
    assert (p >= 0.01 - 1e-12).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    w = policy.weights(frame.head(1000))
    share_phone = (frame.head(1000).device == "phone").mean()
    assert w["b"] == pytest.approx(share_phone, abs=0.1)


def test_linear_thompson_choose_is_stable_within_an_epoch_and_logs_its_probability():
    frame, arms, rewards = contextual_data(5000, 4)
    policy = LinearThompson(ARMS, ENCODER, seed=5, draws=2000)
    policy.update(frame, arms, rewards)
    request = {"device": "phone", "age": 25}
    picks = [policy.choose(request, f"user-{i}", epoch=1) for i in range(300)]
    assert picks == [policy.choose(request, f"user-{i}", epoch=1) for i in range(300)]
    probs = dict(zip(ARMS, policy.probabilities(request, epoch=1)[0], strict=True))
    for arm, prob in picks:
        assert prob == probs[arm]
    share = sum(arm == "b" for arm, _ in picks) / len(picks)
    assert share == pytest.approx(probs["b"], abs=0.1)


def test_linear_thompson_merges_and_serialises():
    frame, arms, rewards = contextual_data(4000, 6)
    whole = LinearThompson(ARMS, ENCODER, seed=1, draws=1000)
    whole.update(frame, arms, rewards)
    left = LinearThompson(ARMS, ENCODER, seed=1, draws=1000)
    right = LinearThompson(ARMS, ENCODER, seed=1, draws=1000)
    left.update(frame[:1000], arms[:1000], rewards[:1000])
    right.update(frame[1000:], arms[1000:], rewards[1000:])
    merged = left.merge(right)
    for a in ARMS:
        np.testing.assert_allclose(merged.coefficients()[a], whole.coefficients()[a], rtol=1e-9)
    again = policy_from_dict(json.loads(whole.to_json()))
    assert isinstance(again, LinearThompson)
    test = frame.head(50)
    assert np.array_equal(again.probabilities(test, epoch=2), whole.probabilities(test, epoch=2))


def test_every_policy_is_a_bandit_policy_and_a_description_rebuilds_its_kind():
    frame, arms, rewards = contextual_data(500, 2)
    linear = LinearThompson(ARMS, ENCODER, seed=1, draws=500)
    linear.update(frame, arms, rewards)
    thompson = BernoulliThompson(ARMS, seed=4)
    thompson.update(arms, rewards)
    assert isinstance(linear, ts.bandit.BanditPolicy) and isinstance(thompson, ts.bandit.Policy)
    assert not isinstance(linear, ts.bandit.Policy)  # its updates need the features
    rebuilt = ts.bandit.BanditPolicy.from_json(linear.to_json())
    assert type(rebuilt) is LinearThompson and type(linear.copy()) is LinearThompson
    assert rebuilt.to_dict() == linear.to_dict() == linear.copy().to_dict()
    again = ts.bandit.Policy.from_json(thompson.to_json())
    assert type(again) is BernoulliThompson and again == thompson
    with pytest.raises(ts.ConfigError, match="is a LinearThompson, not a Policy"):
        ts.bandit.Policy.from_json(linear.to_json())
    with pytest.raises(ts.ConfigError, match="is a BernoulliThompson, not a LinearThompson"):
        LinearThompson.from_dict(thompson.to_dict())
    with pytest.raises(ts.ConfigError, match="unknown policy kind 'nope'"):
        policy_from_dict({"kind": "nope", "arms": ARMS})


def test_linear_thompson_refuses_bad_features():
    policy = LinearThompson(ARMS, 3)
    with pytest.raises(ts.ConfigError, match="3 columns"):
        policy.update(np.ones((2, 4)), ["b", "c"], [0.0, 1.0])
    with pytest.raises(ArgumentError, match="not finite"):
        policy.update(np.array([[1.0, np.nan, 0.0]]), ["b"], [0.0])


def test_write_allocation_from_an_experiment_without_a_start_time(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"experiments": [{"key": "e", "arms": {"a": 50, "b": 50}}]}))
    sp = ts.Splitter.from_file(path)
    policy = BernoulliThompson(["a", "b"], floor=0.1)
    policy.update_aggregates({"a": (100, 5, 5), "b": (100, 20, 20)})
    new = policy.next_step(sp.snapshot.experiments["e"].experiment, at="2026-11-02")
    assert new.weights == {"a": 10.0, "b": 90.0}  # P(b best) ~ 1, a held at the floor
    write_allocation(path, new)
    assert sp.reload()
    loaded = sp.snapshot.experiments["e"].experiment
    assert loaded.weights == new.weights
    assert loaded.steps[0].effective is None and loaded.steps[0].weights == {"a": 50, "b": 50}


def test_linear_thompson_drives_an_experiment():
    frame, arms, rewards = contextual_data(20_000, 8)
    policy = LinearThompson(ARMS, ENCODER, seed=2, floor=0.05, draws=1000)
    policy.update(frame, arms, rewards)
    exp = ts.Experiment("ctx", {"control": 34, "b": 33, "c": 33}, allocated_at=T0)
    population = frame.sample(500, random_state=1)
    new = policy.next_step(exp, population, at=T0 + dt.timedelta(days=1))
    w = policy.weights(population, epoch=1)
    for a in ARMS:
        assert new.weights[a] == pytest.approx(100 * w[a], abs=100 / exp.buckets)
    assert new.weights["control"] == pytest.approx(5, abs=0.5)  # never best: the floor
    assert exp.moved_fraction(new) == pytest.approx(
        sum(abs(new.weights[a] - exp.weights[a]) for a in ARMS) / 200
    )


def test_ipw_with_exposure_below_one_needs_the_units_that_reached() -> None:
    """Records carry exposed share × arm share; unexposed units leave no record."""
    rng = np.random.default_rng(11)
    n = 40_000
    exposed = rng.random(n) < 0.5
    arm = np.where(rng.random(n) < 0.3, "a", "b")
    true = {"a": 0.2, "b": 0.6}
    reward = (rng.random(n) < np.where(arm == "a", true["a"], true["b"])).astype(float)
    log = pd.DataFrame(
        {
            "arm": arm[exposed],
            "reward": reward[exposed],
            "probability": np.where(arm[exposed] == "a", 0.5 * 0.3, 0.5 * 0.7),
        }
    )
    right = ipw_estimate(log, units=n)
    wrong = ipw_estimate(log)
    for a, mu in true.items():
        assert abs(right.loc[a, "ipw"] - mu) < 4 * right.loc[a, "ipw_se"]
        assert abs(right.loc[a, "hajek"] - mu) < 4 * right.loc[a, "hajek_se"]
        assert wrong.loc[a, "ipw"] == pytest.approx(2 * right.loc[a, "ipw"], rel=0.05)
    with pytest.raises(ts.ConfigError, match="units must be an int >="):
        ipw_estimate(log, units=10)
