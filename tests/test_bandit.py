"""Bandit policies (docs/bandits.md): samplers, probability best, floor and cap, policies,
regret, serialisation and merging."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

import trafficsplit as ts
from trafficsplit import bandit
from trafficsplit._core import bandit as core
from trafficsplit.bandit import (
    UCB1,
    BernoulliThompson,
    EpsilonGreedy,
    FixedSplit,
    NormalThompson,
    limit_weights,
    probability_best,
    simulate,
)
from trafficsplit.errors import ArgumentError

ARMS = ["a", "b", "c"]
M64 = (1 << 64) - 1


# -- the generator: a Python transcription of the published algorithms -------------------------


def splitmix64(state: int) -> tuple[int, int]:
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def xoshiro_uniforms(seed: int, n: int) -> list[float]:
    s, state = [], seed
    for _ in range(4):
        state, out = splitmix64(state)
        s.append(out)

    def rotl(x: int, k: int) -> int:
        return ((x << k) | (x >> (64 - k))) & M64

    values = []
    for _ in range(n):
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        values.append((result >> 11) * 2.0**-53)
    return values


def test_uniforms_are_xoshiro256starstar_seeded_by_splitmix64():
    for seed in (0, 1, 2**63 + 12345):
        got = core.sample("uniform", n=20, seed=seed)
        assert got.tolist() == xoshiro_uniforms(seed, 20)


def test_epoch_seed_formula():
    for seed, epoch in ((0, 0), (7, 1), (2**64 - 1, 123456)):
        _, mixed = splitmix64(epoch)
        _, expected = splitmix64(seed ^ mixed)
        assert bandit.epoch_seed(seed, epoch) == expected
    assert bandit.epoch_seed(7, 1) != bandit.epoch_seed(7, 2)


@pytest.mark.parametrize(
    ("dist", "a", "b", "ref"),
    [
        ("normal", 0, 0, stats.norm()),
        ("gamma", 0.3, 0, stats.gamma(0.3)),
        ("gamma", 1.0, 0, stats.gamma(1.0)),
        ("gamma", 7.5, 0, stats.gamma(7.5)),
        ("gamma", 5000, 0, stats.gamma(5000)),
        ("beta", 2, 5, stats.beta(2, 5)),
        ("beta", 41, 961, stats.beta(41, 961)),
        ("beta", 0.5, 0.5, stats.beta(0.5, 0.5)),
        ("student_t", 3, 0, stats.t(3)),
        ("student_t", 40, 0, stats.t(40)),
    ],
)
def test_samplers_match_scipy_distributions(dist, a, b, ref):
    x = core.sample(dist, a, b, n=100_000, seed=11)
    # Kolmogorov-Smirnov at 100,000 draws: a sampler off by 0.6 % in any quantile fails.
    assert stats.kstest(x, ref.cdf).pvalue > 1e-4
    assert x.mean() == pytest.approx(ref.mean(), abs=6 * ref.std() / math.sqrt(len(x)))


def test_normal_tail_and_wedges_are_visited():
    x = core.sample("normal", n=400_000, seed=3)
    beyond = np.mean(np.abs(x) > 3.442619855899)  # the ziggurat's tail
    assert beyond == pytest.approx(2 * stats.norm.sf(3.442619855899), rel=0.15)
    assert np.mean(x > 2) == pytest.approx(stats.norm.sf(2), rel=0.03)


def test_samplers_are_seeded():
    a = core.sample("beta", 3, 4, n=1000, seed=5)
    assert np.array_equal(a, core.sample("beta", 3, 4, n=1000, seed=5))
    assert not np.array_equal(a, core.sample("beta", 3, 4, n=1000, seed=6))


# -- probability best --------------------------------------------------------------------------


def beta_best_by_quadrature(params: list[tuple[float, float]]) -> list[float]:
    out = []
    for k, (a, b) in enumerate(params):
        others = [stats.beta(x, y) for j, (x, y) in enumerate(params) if j != k]

        def f(x, a=a, b=b, others=others):
            return stats.beta.pdf(x, a, b) * math.prod(d.cdf(x) for d in others)

        out.append(integrate.quad(f, 0, 1, limit=200, points=[a / (a + b)])[0])
    return out


@pytest.mark.parametrize(
    "params",
    [
        [(41, 961), (51, 951)],
        [(1, 1), (2, 1)],
        [(5, 95), (5, 95)],
        [(120, 880), (100, 900)],
        [(3, 30), (4, 28), (2, 40)],
    ],
)
def test_probability_best_beta_agrees_with_numerical_integration(params):
    exact = beta_best_by_quadrature(params)
    a, b = zip(*params, strict=True)
    mc = probability_best("beta", a, b, draws=20_000, seed=3)
    assert mc.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(mc, exact, atol=0.01)


def test_probability_best_student_agrees_with_numerical_integration():
    loc, scale, dof = [1.0, 1.1, 0.9], [0.1, 0.15, 0.2], [8.0, 5.0, 30.0]
    dists = [stats.t(d, m, s) for m, s, d in zip(loc, scale, dof, strict=True)]
    exact = []
    for k, d in enumerate(dists):
        others = [o for j, o in enumerate(dists) if j != k]
        exact.append(
            integrate.quad(
                lambda x, d=d, o=others: d.pdf(x) * math.prod(q.cdf(x) for q in o), -np.inf, np.inf
            )[0]
        )
    mc = probability_best("student_t", loc, scale, dof, draws=20_000, seed=9)
    np.testing.assert_allclose(mc, exact, atol=0.01)


def test_probability_best_does_not_depend_on_threads():
    a = [10 + i for i in range(10)]
    b = [200 - 3 * i for i in range(10)]
    one = probability_best("beta", a, b, draws=10_000, seed=4, threads=1)
    assert np.array_equal(one, probability_best("beta", a, b, draws=10_000, seed=4, threads=2))
    assert np.array_equal(one, probability_best("beta", a, b, draws=10_000, seed=4, threads=3))
    assert not np.array_equal(one, probability_best("beta", a, b, draws=10_000, seed=5))


def test_probability_best_refuses_bad_parameters():
    with pytest.raises(ArgumentError, match="arm 1"):
        probability_best("beta", [1, 0], [1, 1])
    with pytest.raises(ts.ConfigError, match="draws"):
        probability_best("beta", [1, 1], [1, 1], draws=0)
    with pytest.raises(ts.ConfigError, match="posterior"):
        probability_best("gamma", [1], [1])


# -- floor and cap -----------------------------------------------------------------------------


def test_floor_renormalises_the_others_in_proportion():
    w = limit_weights([0.9, 0.1, 0.0], floor=0.05)
    np.testing.assert_allclose(w, [0.855, 0.095, 0.05])
    w = limit_weights([0.98, 0.01, 0.01], floor=0.05)
    np.testing.assert_allclose(w, [0.9, 0.05, 0.05])


def test_cap_limits_each_move():
    w = limit_weights([1.0, 0.0, 0.0], previous=[1 / 3, 1 / 3, 1 / 3], floor=0.0, max_change=0.1)
    np.testing.assert_allclose(w, [1 / 3 + 0.1 + 0.0, 1 / 3 - 0.05, 1 / 3 - 0.05], atol=1e-12)
    # Target arms with nothing would sit at the lower cap; the remainder goes to them by room.
    assert w.sum() == pytest.approx(1.0)


def test_floor_wins_over_the_cap():
    w = limit_weights([0.5, 0.5, 0.0], previous=[0.5, 0.5, 0.0], floor=0.1, max_change=0.01)
    assert w[2] == pytest.approx(0.1)
    assert w.sum() == pytest.approx(1.0)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=2, max_size=8),
    st.lists(st.floats(0.001, 1), min_size=8, max_size=8),
    st.floats(0, 1),
    st.floats(0.001, 1),
    st.booleans(),
)
def test_limit_weights_properties(target, prev_raw, floor_frac, cap, with_previous):
    k = len(target)
    if sum(target) == 0:
        target[0] = 1.0
    floor = floor_frac / k
    prev = np.array(prev_raw[:k])
    prev = np.maximum(prev / prev.sum(), floor)
    prev = prev / prev.sum()
    w = limit_weights(target, prev if with_previous else None, floor, cap)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert (w >= floor - 1e-12).all()
    if with_previous and (prev >= floor - 1e-12).all():
        assert (np.abs(w - prev) <= cap + 1e-9).all()
    # Arms strictly between their bounds keep the target's proportions.
    lo = np.full(k, floor) if not with_previous else np.maximum(floor, prev - cap)
    hi = np.ones(k) if not with_previous else np.minimum(1, prev + cap)
    t = np.array(target) / sum(target)
    free = (w > lo + 1e-9) & (w < hi - 1e-9) & (t > 0)
    if free.sum() >= 2:
        ratios = w[free] / t[free]
        assert ratios.max() == pytest.approx(ratios.min(), rel=1e-6)


def test_limit_weights_refuses_an_impossible_floor():
    with pytest.raises(ArgumentError, match="floor"):
        limit_weights([0.5, 0.5], floor=0.6)
    with pytest.raises(ArgumentError, match="floor"):
        BernoulliThompson(ARMS, floor=0.4)


# -- policies ----------------------------------------------------------------------------------


def observations(seed: int = 1, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    arms = rng.choice(ARMS, n)
    means = {"a": 0.04, "b": 0.05, "c": 0.07}
    rewards = (rng.random(n) < np.array([means[a] for a in arms])).astype(float)
    return arms, rewards


def test_bernoulli_posterior_is_prior_plus_counts():
    arms, rewards = observations()
    p = BernoulliThompson(ARMS, prior_alpha=0.5, prior_beta=2.0)
    p.update(arms, rewards)
    post = p.posterior()
    for a in ARMS:
        r = rewards[arms == a]
        assert post[a] == (0.5 + r.sum(), 2.0 + len(r) - r.sum())
    w = p.weights(epoch=3)
    alpha, beta = zip(*post.values(), strict=True)
    expected = probability_best(
        "beta", alpha, beta, seed=bandit.epoch_seed(p.seed, 3), draws=p.draws
    )
    np.testing.assert_array_equal(list(w.values()), expected)


def test_normal_posterior_is_the_normal_inverse_gamma_update():
    rng = np.random.default_rng(2)
    arms = rng.choice(ARMS, 500)
    rewards = rng.normal(10, 3, 500) + (arms == "c")
    mu0, k0, a0, b0 = 8.0, 0.5, 2.0, 10.0
    p = NormalThompson(ARMS, mu0=mu0, kappa0=k0, alpha0=a0, beta0=b0)
    p.update(arms, rewards)
    for a, (loc, scale, dof) in p.posterior().items():
        x = rewards[arms == a]
        n, xbar = len(x), x.mean()
        kn = k0 + n
        mun = (k0 * mu0 + n * xbar) / kn
        an = a0 + n / 2
        bn = b0 + 0.5 * ((x - xbar) ** 2).sum() + k0 * n * (xbar - mu0) ** 2 / (2 * kn)
        assert loc == pytest.approx(mun, rel=1e-12)
        assert scale == pytest.approx(math.sqrt(bn / (an * kn)), rel=1e-12)
        assert dof == pytest.approx(2 * an)


def test_ucb1_puts_weight_on_the_largest_index():
    p = UCB1(ARMS, c=1.0, floor=0.02)
    assert p.weights() == pytest.approx({a: 1 / 3 for a in ARMS})  # all untried: a tie
    p.update_aggregates({"a": (100, 10, 10), "b": (10, 1.5, 1.5)})
    assert p.target() == {"a": 0.0, "b": 0.0, "c": 1.0}  # the untried arm first
    p.update_aggregates({"c": (200, 30, 30)})
    n = 310
    index = {
        "a": 0.10 + math.sqrt(2 * math.log(n) / 100),
        "b": 0.15 + math.sqrt(2 * math.log(n) / 10),
        "c": 0.15 + math.sqrt(2 * math.log(n) / 200),
    }
    best = max(index, key=index.get)
    w = p.weights()
    assert w[best] == pytest.approx(0.96)
    assert all(w[a] == pytest.approx(0.02) for a in ARMS if a != best)


def test_epsilon_greedy_weights():
    p = EpsilonGreedy(ARMS, epsilon=0.3)
    p.update_aggregates({"a": (100, 10, 10), "b": (100, 12, 12), "c": (100, 11, 11)})
    assert p.weights() == pytest.approx({"a": 0.1, "b": 0.8, "c": 0.1})
    p.update_aggregates({"a": (100, 14, 14)})  # a: 24/200 = 0.12, a tie with b
    assert p.weights() == pytest.approx({"a": 0.45, "b": 0.45, "c": 0.1})


def test_weights_are_seeded_by_epoch():
    p = BernoulliThompson(ARMS, seed=42)
    p.update_aggregates({"a": (200, 10, 10), "b": (200, 11, 11), "c": (200, 12, 12)})
    q = BernoulliThompson.from_json(p.to_json())
    assert p.weights(epoch=5) == q.weights(epoch=5)  # another replica, same state and seed
    assert p.weights(epoch=5) != p.weights(epoch=6)


def test_update_aggregates_and_merge_equal_one_batch():
    arms, rewards = observations(n=4000)
    whole = NormalThompson(ARMS)
    whole.update(arms, rewards)
    left, right = NormalThompson(ARMS), NormalThompson(ARMS)
    left.update(arms[:1500], rewards[:1500])
    right.update(arms[1500:], rewards[1500:])
    merged = left.merge(right)
    sums = NormalThompson(ARMS)
    sums.update_aggregates(
        {
            a: (
                int((arms == a).sum()),
                float(rewards[arms == a].sum()),
                float((rewards[arms == a] ** 2).sum()),
            )
            for a in ARMS
        }
    )
    for a in ARMS:
        x = rewards[arms == a]
        for p in (whole, merged, sums):
            s = p.stats[a]
            assert s["count"] == len(x)
            assert s["sum"] == pytest.approx(x.sum(), rel=1e-12)
            assert s["m2"] == pytest.approx(((x - x.mean()) ** 2).sum(), rel=1e-9)
    assert left.stats["a"]["count"] < whole.stats["a"]["count"]  # merge made a new policy


def test_serialisation_round_trip():
    arms, rewards = observations()
    for p in (
        BernoulliThompson(ARMS, floor=0.05, max_change=0.2, seed=3, prior_alpha=2),
        NormalThompson(ARMS, mu0=1, kappa0=2, seed=4),
        UCB1(ARMS, c=0.5),
        EpsilonGreedy(ARMS, epsilon=0.2, floor=0.01),
        FixedSplit(ARMS, [1, 1, 2]),
    ):
        p.update(arms, rewards)
        text = p.to_json()
        q = bandit.policy_from_dict(json.loads(text))
        assert type(q) is type(p)
        assert q == p
        assert q.weights(epoch=2, previous=[0.3, 0.3, 0.4]) == p.weights(
            epoch=2, previous=[0.3, 0.3, 0.4]
        )


def test_fixed_split_description_and_statistics():
    p = FixedSplit(ARMS, [1, 1, 2])
    d = p.to_dict()
    assert (d["kind"], d["floor"], d["max_change"], d["seed"], d["draws"], d["params"]) == (
        "fixed",
        0.0,
        None,
        0,
        1,
        {},
    )
    assert d["weights"] == [0.25, 0.25, 0.5]
    assert p.weights(epoch=5, previous=[0.9, 0.05, 0.05]) == {"a": 0.25, "b": 0.25, "c": 0.5}
    p.update(["a", "a", "c"], [1.0, 3.0, 2.0])
    assert p.stats["a"] == {"count": 2.0, "sum": 4.0, "m2": 2.0, "mean": 2.0}
    merged = p.merge(FixedSplit(ARMS, [1, 1, 2]))
    assert merged.stats["a"]["count"] == 2.0 and merged.stats["c"]["sum"] == 2.0
    with pytest.raises(ts.ConfigError, match="arms"):
        FixedSplit("abc")


def test_merge_refuses_different_policies():
    with pytest.raises(ts.ConfigError, match="arms"):
        BernoulliThompson(ARMS).merge(BernoulliThompson(["a", "b"]))
    with pytest.raises(ts.ConfigError, match="parameters"):
        BernoulliThompson(ARMS).merge(BernoulliThompson(ARMS, prior_alpha=2))
    with pytest.raises(ts.ConfigError, match="merge"):
        BernoulliThompson(ARMS).merge(UCB1(ARMS))


def test_update_refuses_bad_rows():
    p = BernoulliThompson(ARMS)
    with pytest.raises(ts.ConfigError, match=r"arms\[1\].*'z'"):
        p.update(["a", "z"], [0, 1])
    with pytest.raises(ArgumentError, match=r"rewards\[1\] is 2.*between 0 and 1"):
        p.update(["a", "b"], [0, 2])
    with pytest.raises(ArgumentError, match=r"rewards\[0\] is nan"):
        NormalThompson(ARMS).update(["a"], [math.nan])
    with pytest.raises(ts.ConfigError, match=r"arms\[0\] is arm index 3"):
        p.update(np.array([3]), [1.0])
    with pytest.raises(ts.ConfigError, match=r"one value per row \(1 rows\), got shape \(2,\)"):
        p.update(["a"], [1.0, 0.0])
    with pytest.raises(ArgumentError, match="between 0 and count"):
        p.update_aggregates({"a": (10, 11, 11)})
    assert p.stats["a"]["count"] == 0  # nothing half-applied


# -- regret against the equal split ------------------------------------------------------


def test_regret_against_the_equal_split():
    means = [0.04, 0.05, 0.07]
    equal = simulate(FixedSplit(ARMS), means, 100_000, 1_000, seed=2026)
    thompson = simulate(BernoulliThompson(ARMS, seed=1), means, 100_000, 1_000, seed=2026)
    ucb = simulate(UCB1(ARMS), means, 100_000, 1_000, seed=2026)
    greedy = simulate(EpsilonGreedy(ARMS), means, 100_000, 1_000, seed=2026)
    # The equal split's regret is (0.03 + 0.02 + 0) / 3 per round on average.
    assert equal.total_regret == pytest.approx(100_000 * 0.05 / 3, rel=0.02)
    assert thompson.total_regret < 0.25 * equal.total_regret
    assert ucb.total_regret < equal.total_regret
    assert greedy.total_regret < equal.total_regret
    assert thompson.pulls.sum() == 100_000 and len(thompson.weights) == 100
    np.testing.assert_allclose(thompson.weights.sum(axis=1), 1.0)
    assert thompson.weights[-1, 2] > 0.9  # the allocation moved to the best arm
    gaps = 0.07 - np.array(means)
    assert thompson.total_regret == pytest.approx(float(thompson.pulls @ gaps))


def test_normal_thompson_beats_the_equal_split_on_real_rewards():
    means = [10.0, 10.5, 11.0]
    kw = {"noise_sd": 4.0, "seed": 5}
    equal = simulate(FixedSplit(ARMS), means, 30_000, 500, **kw)
    normal = simulate(NormalThompson(ARMS, mu0=10, beta0=16, seed=2), means, 30_000, 500, **kw)
    assert normal.total_regret < 0.3 * equal.total_regret


def test_cap_and_floor_hold_along_the_simulated_path():
    r = simulate(
        BernoulliThompson(ARMS, floor=0.05, max_change=0.1, seed=3),
        [0.04, 0.05, 0.07],
        20_000,
        1_000,
        seed=1,
    )
    assert (r.weights >= 0.05 - 1e-12).all()
    assert (np.abs(np.diff(r.weights, axis=0)) <= 0.1 + 1e-9).all()


def test_simulate_leaves_the_policy_alone():
    p = BernoulliThompson(ARMS)
    simulate(p, [0.1, 0.2, 0.3], 2_000, 500, seed=1)
    assert p.stats["a"]["count"] == 0
    with pytest.raises(ts.ConfigError, match="true_means"):
        simulate(p, [0.1, 0.2], 2_000, 500)


def test_regret_ordering_holds_across_seeds():
    means = [0.04, 0.05, 0.07]
    for seed in range(8):
        equal = simulate(FixedSplit(ARMS), means, 100_000, 1_000, seed=seed).total_regret
        thompson = simulate(BernoulliThompson(ARMS, seed=seed), means, 100_000, 1_000, seed=seed)
        assert thompson.total_regret < 0.25 * equal, seed
        assert simulate(UCB1(ARMS), means, 100_000, 1_000, seed=seed).total_regret < equal
        assert simulate(EpsilonGreedy(ARMS), means, 100_000, 1_000, seed=seed).total_regret < equal


def test_merge_order_gives_the_same_bernoulli_weights():
    parts = []
    for seed in range(3):
        p = BernoulliThompson(ARMS, seed=11)
        p.update(*observations(seed, 1000))
        parts.append(p)
    one = parts[0].merge(parts[1], parts[2])
    other = parts[2].merge(parts[0], parts[1])
    for a in ARMS:  # counts and sums of 0/1 rewards are exact in any order
        assert (
            one.stats[a]["count"]
            == other.stats[a]["count"]
            == sum(p.stats[a]["count"] for p in parts)
        )
        assert one.stats[a]["sum"] == other.stats[a]["sum"]
    assert one.weights(epoch=4) == other.weights(epoch=4)  # Beta posteriors use count and sum


def test_parameters_are_checked():
    with pytest.raises(ArgumentError, match="prior_alpha must be positive"):
        BernoulliThompson(ARMS, prior_alpha=0)
    with pytest.raises(ts.ConfigError, match="epsilon must be a finite number"):
        EpsilonGreedy(ARMS, epsilon="x")
    with pytest.raises(ArgumentError, match="epsilon must be between 0 and 1"):
        EpsilonGreedy(ARMS, epsilon=1.5)
    with pytest.raises(ts.ConfigError, match="max_change"):
        BernoulliThompson(ARMS, max_change=0)
    with pytest.raises(ts.ConfigError, match="unique"):
        BernoulliThompson(["a", "a"])
    with pytest.raises(TypeError, match="base class"):
        bandit.Policy(ARMS)
