"""trafficsplit's peer hashing modes (``Experiment(..., hashing=...)``) against the peers'
published test suites (tests/data/peers) and the independent reference of their bucketing
(tests/peers/reference.py, itself checked against every suite case by
tests/test_peer_reference.py).

- Every mode: 200,000 random units (ASCII, non-ASCII BMP, astral, integers; the empty string
  where the peer hashes it) through ``assign_batch`` over a str list, a pyarrow string array, a
  pandas categorical and a numpy int64 array, and through ``assign``, equal the reference's arm,
  bucket and reason, over a grid of weights, exposures and parameters with awkward values
  (33.33/33.33/33.34, zero weights, one arm at 100, 0.01 % steps); hypothesis draws more.
- The golden vectors tests/data/peer_mode_vectors.tsv (from the reference, by
  tests/data/make_peer_mode_vectors.py) are reproduced, among them units on which
  LaunchDarkly's double and float32 arithmetic choose different variations.
- ``Experiment.hashing`` fills in the defaults docs/assignment-spec.md states (from the salt,
  except Unleash's variant group, LaunchDarkly's flag key and Statsig's rule salt).
- The suite cases that describe an experiment or flag a mode can express run through an
  Experiment: GrowthBook ``run`` cases and ``feature`` cases (force rollouts and experiment
  rules, with the bucket GrowthBook reports), Unleash rollout and variant tests, flagd fractional
  scenarios, Eppo UFC subjects (allocation rules evaluated by the reference, bucketing by
  trafficsplit) and LaunchDarkly's eight bucket values. What is not expressible is listed with
  its reason (``*_NOT_EXPRESSIBLE``) and counted, so the counts fail if a case goes missing.
  Statsig's three hash vectors hash strings without the ``salt.`` prefix every Statsig bucket
  input has, so no experiment reproduces them; the reference covers them.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trafficsplit as ts
from peers import reference as ref
from trafficsplit.errors import ConfigError

DATA = Path(__file__).resolve().parent / "data"
PEERS = DATA / "peers"
EMPTY_ALLOWED = {"eppo", "launchdarkly", "statsig"}
NO_EXPOSURE = {"flagd", "flagd-legacy", "launchdarkly"}


def experiment(
    mode: str,
    key: str,
    weights: Sequence[float],
    exposure: float,
    params: Mapping[str, Any] | None = None,
    salt: str | None = None,
    names: Sequence[str] | None = None,
) -> ts.Experiment:
    arm_names = list(names) if names is not None else [f"arm{i}" for i in range(len(weights))]
    return ts.Experiment(
        key,
        dict(zip(arm_names, weights, strict=True)),
        exposure=exposure,
        salt=salt,
        hashing={"mode": mode, **(params or {})},
    )


def expected(
    mode: str,
    key: str,
    weights: Sequence[float],
    exposure: float,
    units: Sequence[ref.Unit],
    params: Mapping[str, Any] | None = None,
    salt: str | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The reference's (arm index with -1 for none, bucket, reason) per unit."""
    arms, buckets, reasons = [], [], []
    for u in units:
        arm, bucket, reason = ref.mode_assign(mode, key, weights, exposure, u, params, salt)
        arms.append(-1 if arm is None else arm)
        buckets.append(bucket)
        reasons.append(reason)
    return np.array(arms, np.int64), np.array(buckets, np.int64), reasons


def assert_batch(batch: Any, want: tuple[np.ndarray, np.ndarray, list[str]], what: str) -> None:
    arms, buckets, reasons = want
    got_reasons = [ts.REASONS[r] for r in batch.reason]
    bad = np.flatnonzero(
        (batch.arm_index.astype(np.int64) != arms)
        | (batch.bucket.astype(np.int64) != buckets)
        | (np.array(got_reasons) != np.array(reasons))
    )
    if len(bad):
        i = int(bad[0])
        raise AssertionError(
            f"{what}: {len(bad)} of {len(arms)} rows differ from the reference; first at row {i}:"
            f" trafficsplit (arm {batch.arm_index[i]}, bucket {batch.bucket[i]}, "
            f"{got_reasons[i]}), reference (arm {arms[i]}, bucket {buckets[i]}, {reasons[i]})"
        )


def assert_single(
    exp: ts.Experiment,
    units: Sequence[ref.Unit],
    want: tuple[np.ndarray, np.ndarray, list[str]],
    what: str,
) -> None:
    arms, buckets, reasons = want
    for u, arm, bucket, reason in zip(units, arms, buckets, reasons, strict=True):
        a = exp.assign(u)
        got = (a.arm_index if a.in_experiment else -1, a.bucket, a.reason)
        assert got == (arm, bucket, reason), f"{what}: unit {u!r}"


# ------------------------------------------------------------------------ random unit ids

ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@:/+ "
BMP = "äöüßéèñçøåæœ€£¥ÆĀŁŒΣЖЯשعक漢字かなカナ한국어中文ﬀ\u0301\u200b"
ASTRAL = "😀🚀🗻🎉🧪𝄞𐍈𠜎🇺🇸"


def random_units(seed: int, n: int, empty: bool) -> tuple[list[str], list[int]]:
    """About 80 % text (ASCII, mixed BMP, with astral characters) and 20 % integers."""
    rng = random.Random(seed)
    texts: list[str] = []
    ints: list[int] = []
    pools = [ASCII, ASCII + BMP, ASCII + BMP + ASTRAL, BMP + ASTRAL]
    for i in range(n):
        r = i % 10
        if r < 2:
            ints.append(rng.randint(-(2**63), 2**63 - 1) if r == 0 else rng.randint(0, 10**7))
        else:
            pool = pools[r % 4]
            texts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 24))))
    if empty:
        texts[0] = ""
    return texts, ints


# (salt, parameters, weights, exposure) per mode: every row gets an equal share of the units.
GRIDS: dict[str, list[tuple[str | None, dict[str, Any], list[float], float]]] = {
    "growthbook-v1": [
        (None, {}, [50, 50], 1.0),
        (None, {"encoding": "utf8"}, [33.33, 33.33, 33.34], 0.8),
        (None, {"encoding": "codepoints"}, [0, 100], 0.5),
        ("other-seed", {}, [100], 0.25),
        (None, {"namespace": {"id": "ns", "start": 0.1, "end": 0.65}}, [0.01, 99.99], 1.0),
        (None, {"encoding": "utf8"}, [10, 20, 30, 40], 0.0),
        (None, {"seed": "s", "encoding": "codepoints"}, [25, 0, 75], 0.333),
    ],
    "unleash": [
        (None, {}, [50, 50], 1.0),
        (None, {"encoding": "utf16-low-byte"}, [33.3, 33.3, 33.4], 0.29),
        (None, {"weight_total": 10000}, [0.01, 99.99], 0.55),
        (None, {"group_id": "g", "variant_group": "v"}, [0, 100], 1.0),
        (None, {}, [100], 0.01),
        (None, {"encoding": "utf16-low-byte", "weight_total": 10000}, [33.33, 33.33, 33.34], 0),
        (None, {"weight_total": 3}, [100 / 3, 100 / 3, 100 / 3], 0.333),
        ("a-salt", {}, [50, 50], 0.5),
    ],
    "flagd": [
        (None, {}, [25, 25, 25, 25], 1.0),
        (None, {"prefix": ""}, [50, 50], 1.0),
        (None, {"weight_total": 10000}, [33.33, 33.33, 33.34], 1.0),
        (None, {}, [0, 100], 1.0),
        (None, {"weight_total": 1}, [100], 1.0),
        (None, {"weight_total": 10000, "prefix": "p"}, [0.01, 99.99], 1.0),
        ("a-salt", {}, [50, 50], 1.0),
    ],
    "flagd-legacy": [
        (None, {}, [25, 25, 25, 25], 1.0),
        (None, {}, [33, 33, 34], 1.0),
        (None, {}, [0, 100], 1.0),
        (None, {}, [100], 1.0),
        (None, {"prefix": "shared-seed"}, [1, 99], 1.0),
        (None, {"prefix": ""}, [50, 0, 50], 1.0),
    ],
    "eppo": [
        (None, {}, [50, 50], 1.0),
        (None, {}, [33.33, 33.33, 33.34], 0.6),
        (None, {"total_shards": 100}, [0, 100], 0.37),
        (None, {"traffic_salt": "t", "arm_salt": "a"}, [100], 0.0001),
        (None, {}, [0.01, 99.99], 0.0),
        (None, {"total_shards": 1000}, [10, 20, 30, 40], 0.333),
        ("a-salt", {"arm_salt": "a"}, [50, 50], 0.5),
    ],
    "launchdarkly": [
        (None, {}, [33.333, 33.333, 33.334], 1.0),
        (None, {"seed": 61}, [0.001, 99.999], 1.0),
        (None, {}, [0, 100], 1.0),
        (None, {}, [100], 1.0),
        ("saltyA", {"flag_key": "hashKey"}, [60, 40], 1.0),
        (None, {"seed": 0}, [50, 50], 1.0),
        (None, {"arithmetic": "float32"}, [33.333, 33.333, 33.334], 1.0),
        ("saltyA", {"arithmetic": "float32", "seed": 61}, [0.001, 99.999], 1.0),
    ],
    "statsig": [
        (None, {}, [50, 50], 1.0),
        (None, {}, [33.3, 33.3, 33.4], 0.5),
        (None, {}, [0.1, 99.9], 0.0001),
        (None, {}, [0, 100], 0.29),
        (None, {"salt": "s", "rule_salt": "r", "spec_salt": "p"}, [100], 0.9999),
        (None, {}, [25, 25, 25, 25], 0.0),
        ("a-salt", {"salt": "s"}, [50, 50], 0.5),
    ],
}
GRIDS["growthbook-v2"] = GRIDS["growthbook-v1"]

N_UNITS = 200_000


@pytest.mark.parametrize("mode", ref.MODES)
def test_mode_equals_reference_on_200k_units(mode: str) -> None:
    pa = pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    texts, ints = random_units(ref.MODES.index(mode) + 1, N_UNITS, mode in EMPTY_ALLOWED)
    grid = GRIDS[mode]
    for g, (salt, params, weights, exposure) in enumerate(grid):
        what = f"{mode} {params} weights {weights} exposure {exposure}"
        exp = experiment(mode, "exp-key", weights, exposure, params, salt)
        t_part, i_part = texts[g :: len(grid)], ints[g :: len(grid)]
        want_t = expected(mode, "exp-key", weights, exposure, t_part, params, salt)
        want_i = expected(mode, "exp-key", weights, exposure, i_part, params, salt)
        assert_batch(exp.assign_batch(t_part), want_t, f"{what}, str list")
        assert_batch(exp.assign_batch(pa.array(t_part)), want_t, f"{what}, pyarrow strings")
        assert_batch(
            exp.assign_batch(pd.Series(t_part, dtype="category")), want_t, f"{what}, categorical"
        )
        assert_batch(exp.assign_batch(np.array(i_part, np.int64)), want_i, f"{what}, int64")
        assert_single(exp, t_part, want_t, what)
        assert_single(exp, i_part, want_i, what)


SIMD_SCRIPT = """
import json, sys
import numpy as np
import trafficsplit as ts
jobs = json.loads(sys.stdin.read())
out = []
for mode, params, salt, weights, exposure, texts, ints in jobs:
    e = ts.Experiment("exp-key", {f"arm{i}": w for i, w in enumerate(weights)}, exposure=exposure,
                      salt=salt, hashing={"mode": mode, **params})
    rows = []
    for b in (e.assign_batch(texts), e.assign_batch(np.array(ints, np.int64))):
        rows.append([b.arm_index.tolist(), b.bucket.tolist(), [ts.REASONS[r] for r in b.reason]])
    out.append(rows)
print(json.dumps(out))
"""


@pytest.mark.parametrize("simd", ["avx2", "none"])
def test_simd_paths_equal_the_reference(simd: str) -> None:
    """The core picks its hashing kernels by CPU (AVX-512 here); TRAFFICSPLIT_SIMD caps them at
    AVX2 or the portable code. In a fresh process under each cap, 20,000 units per mode (two
    grid rows each) equal the reference."""
    jobs, wants = [], []
    for mode in ref.MODES:
        texts, ints = random_units(100 + ref.MODES.index(mode), 20_000, mode in EMPTY_ALLOWED)
        for salt, params, weights, exposure in GRIDS[mode][:2]:
            jobs.append([mode, params, salt, weights, exposure, texts[:8000], ints[:2000]])
            wants.append(
                [
                    expected(mode, "exp-key", weights, exposure, texts[:8000], params, salt),
                    expected(mode, "exp-key", weights, exposure, ints[:2000], params, salt),
                ]
            )
    env = {**os.environ, "TRAFFICSPLIT_SIMD": simd}
    result = subprocess.run(
        [sys.executable, "-c", SIMD_SCRIPT],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    got = json.loads(result.stdout)
    for job, want_pair, got_pair in zip(jobs, wants, got, strict=True):
        for (w_arms, w_buckets, w_reasons), (arms, buckets, reasons) in zip(
            want_pair, got_pair, strict=True
        ):
            what = f"TRAFFICSPLIT_SIMD={simd} {job[0]} {job[1]} {job[3]} {job[4]}"
            assert arms == w_arms.tolist(), what
            assert buckets == w_buckets.tolist(), what
            assert reasons == w_reasons, what


# ------------------------------------------------------------------- hypothesis: the rest


def parts(total: int, k: int) -> st.SearchStrategy[list[int]]:
    """k non-negative integers summing to total."""
    return st.lists(st.integers(0, total), min_size=k - 1, max_size=k - 1).map(
        lambda cuts: [
            b - a for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), total], strict=False)
        ]
    )


@st.composite
def configurations(draw: st.DrawFn, mode: str) -> tuple[dict[str, Any], list[float], float]:
    k = draw(st.integers(1, 5))
    params: dict[str, Any] = {}
    if mode.startswith("growthbook"):
        weights = [p / 100 for p in draw(parts(10000, k))]
        exposure = draw(st.sampled_from([0.0, 0.001, 0.3333, 0.5, 0.999, 1.0]) | st.floats(0, 1))
        params["encoding"] = draw(st.sampled_from(["utf16", "codepoints", "utf8"]))
        if draw(st.booleans()):
            a, b = sorted(draw(st.tuples(st.floats(0, 1), st.floats(0, 1))))
            params["namespace"] = {
                "id": draw(st.text(min_size=1, max_size=6)),
                "start": a,
                "end": b,
            }
    elif mode == "unleash":
        total = draw(st.sampled_from([1000, 10000, 100, 7, 1]))
        weights = [p * 100 / total for p in draw(parts(total, k))]
        exposure = draw(st.integers(0, 10000)) / 10000
        params["weight_total"] = total
        params["encoding"] = draw(st.sampled_from(["utf8", "utf16-low-byte"]))
    elif mode == "flagd":
        total = draw(st.sampled_from([100, 1000, 10000, 7, 1]))
        weights = [p * 100 / total for p in draw(parts(total, k))]
        exposure = 1.0
        params["weight_total"] = total
    elif mode == "flagd-legacy":
        weights = [float(p) for p in draw(parts(100, k))]
        exposure = 1.0
    elif mode == "eppo":
        total = draw(st.sampled_from([10000, 1000, 100]))
        weights = [p * 100 / total for p in draw(parts(total, k))]
        exposure = draw(st.integers(0, total)) / total
        params["total_shards"] = total
    elif mode == "launchdarkly":
        weights = [p / 1000 for p in draw(parts(100000, k))]
        exposure = 1.0
        params["seed"] = draw(st.none() | st.integers(-(2**31), 2**31))
        params["arithmetic"] = draw(st.sampled_from(["double", "float32"]))
    else:
        weights = [p / 10 for p in draw(parts(1000, k))]
        exposure = draw(st.integers(0, 10000)) / 10000
    return params, weights, exposure


unit_strategy = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=20),
    st.integers(-(2**63), 2**63 - 1),
)


@pytest.mark.parametrize("mode", ref.MODES)
def test_mode_equals_reference_drawn(mode: str) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(config=configurations(mode), units=st.lists(unit_strategy, min_size=1, max_size=30))
    def check(config: tuple[dict[str, Any], list[float], float], units: list[ref.Unit]) -> None:
        params, weights, exposure = config
        if mode not in EMPTY_ALLOWED:
            units = [u for u in units if u != ""] or ["x"]
        try:
            want = expected(mode, "k", weights, exposure, units, params)
        except ValueError:
            with pytest.raises(ConfigError):
                experiment(mode, "k", weights, exposure, params)
            return
        exp = experiment(mode, "k", weights, exposure, params)
        assert_batch(exp.assign_batch(list(units)), want, f"{mode} {config}")
        assert_single(exp, units, want, f"{mode} {config}")

    check()


def test_modes_without_exposure_refuse_one() -> None:
    for mode in NO_EXPOSURE:
        with pytest.raises(ConfigError):
            experiment(mode, "k", [50, 50], 0.5)


def test_weights_a_mode_cannot_express_are_refused() -> None:
    cases = [
        ("unleash", {}, [33.33, 33.33, 33.34]),  # 333.3 of 1000
        ("flagd", {}, [33.5, 66.5]),  # 33.5 of 100
        ("flagd-legacy", {}, [50.5, 49.5]),  # whole percents only
        ("eppo", {"total_shards": 100}, [10.5, 89.5]),
        ("launchdarkly", {}, [33.3333, 66.6667]),
        ("statsig", {}, [33.33, 66.67]),
    ]
    for mode, params, weights in cases:
        with pytest.raises(ValueError):
            ref.mode_assign(mode, "k", weights, 1.0, "u", params)
        with pytest.raises(ConfigError):
            experiment(mode, "k", weights, 1.0, params)


# ------------------------------------------------------- every bucket, and the boundaries

BUCKET_MAP_GRID = [
    ("growthbook-v1", {}, [10, 20, 70], 1.0),
    ("growthbook-v1", {}, [33.33, 33.33, 33.34], 0.7),
    ("growthbook-v1", {}, [10, 20, 30, 40], 0.3),
    ("growthbook-v2", {}, [0.01, 99.99], 1.0),
    ("growthbook-v2", {}, [100 / 3, 100 / 3, 100 / 3], 0.999),
    ("growthbook-v2", {}, [25, 0, 75], 0.0001),
    ("unleash", {}, [33.3, 33.3, 33.4], 1.0),
    ("unleash", {"weight_total": 10000}, [0.01, 0, 99.99], 1.0),
    ("unleash", {"weight_total": 7}, [100 * 3 / 7, 100 * 4 / 7], 1.0),
    ("flagd", {}, [1, 2, 97], 1.0),
    ("flagd", {"weight_total": 10000}, [33.33, 33.33, 33.34], 1.0),
    ("flagd", {"weight_total": 3}, [100 / 3, 0, 200 / 3], 1.0),
    ("eppo", {}, [33.33, 33.33, 33.34], 1.0),
    ("eppo", {"total_shards": 7}, [100 * 2 / 7, 100 * 5 / 7], 1.0),
    ("statsig", {}, [0.1, 33.3, 66.6], 1.0),
    ("statsig", {}, [0, 100], 1.0),
]


@pytest.mark.parametrize(("mode", "params", "weights", "exposure"), BUCKET_MAP_GRID)
def test_every_bucket_gets_the_peers_arm(
    mode: str, params: dict, weights: list[float], exposure: float
) -> None:
    exp = experiment(mode, "k", weights, exposure, params)
    want = ref.mode_bucket_arms(mode, weights, exposure, params)
    assert exp.bucket_map().tolist() == want


@pytest.mark.parametrize("arithmetic", ["double", "float32"])
def test_launchdarkly_arithmetic_at_the_boundaries(arithmetic: str) -> None:
    """Units whose bucket value lies next to the end of the first variation: the two
    arithmetics part on some of them, and trafficsplit follows the reference on all."""
    parted = 0
    for i in range(3000):
        u = f"ld-{i}"
        w = round(ref.ld_bucket("flag", "flag", u) * 100_000)
        if not 0 < w < 100_000:
            continue
        weights = [w / 1000, (100_000 - w) / 1000]
        params = {"arithmetic": arithmetic}
        want = expected("launchdarkly", "flag", weights, 1.0, [u], params)
        exp = experiment("launchdarkly", "flag", weights, 1.0, params)
        assert_single(exp, [u], want, f"{arithmetic} {weights}")
        other = "float32" if arithmetic == "double" else "double"
        parted += int(
            want[0][0]
            != ref.mode_assign("launchdarkly", "flag", weights, 1.0, u, {"arithmetic": other})[0]
        )
    assert parted > 0


def test_flagd_legacy_at_the_boundaries() -> None:
    """Units whose legacy value v lies next to a whole percent, and the testbed's edge keys:
    with an empty prefix "6LvT0" or "SI7p-" hashes to 2^31 as an int32's magnitude, v just
    above 100, outside every arm in the legacy scheme (flagd returned no variant)."""
    units = [f"legacy-{i}" for i in range(3000)]
    for u in units:
        v = ref.flagd_legacy_value("color" + u)
        p = min(max(round(v), 1), 99)
        weights = [float(p), float(100 - p)]
        want = expected("flagd-legacy", "color", weights, 1.0, [u], {"prefix": "color"})
        exp = experiment("flagd-legacy", "color", weights, 1.0, {"prefix": "color"})
        assert_single(exp, [u], want, f"{u} {weights}")
    edges = ["ejOoVL", "bY9fO-", "SI7p-", "6LvT0", "ceQdGm"]
    for mode in ("flagd", "flagd-legacy"):
        want = expected(mode, "k", [50, 50], 1.0, edges, {"prefix": ""})
        assert_single(experiment(mode, "k", [50, 50], 1.0, {"prefix": ""}), edges, want, mode)
    beyond = [u for u in edges if ref.flagd_legacy_value(u) > 100]
    assert len(beyond) == 1
    assert ref.mode_assign("flagd-legacy", "k", [50, 50], 1.0, beyond[0], {"prefix": ""})[2] == (
        "not_exposed"
    )


HISTORY: dict[str, tuple[list[float], float, list[float], float, dict[str, Any]]] = {
    # mode: (earlier weights, earlier exposure, current weights, current exposure, parameters)
    "growthbook-v1": ([50, 50], 0.2, [10, 20, 70], 0.9, {}),
    "growthbook-v2": ([100], 1.0, [33.33, 33.33, 33.34], 0.5, {"encoding": "utf8"}),
    "unleash": ([50, 50], 0.1, [20, 80], 0.6, {}),
    "flagd": ([50, 50], 1.0, [25, 75], 1.0, {}),
    "flagd-legacy": ([90, 10], 1.0, [40, 60], 1.0, {}),
    "eppo": ([50, 50], 0.05, [10, 90], 0.5, {}),
    "launchdarkly": ([50, 50], 1.0, [0.001, 99.999], 1.0, {"arithmetic": "float32"}),
    "statsig": ([50, 50], 0.3, [33.3, 66.7], 1.0, {}),
}


@pytest.mark.parametrize("mode", ref.MODES)
def test_allocation_history_replays_each_step(mode: str) -> None:
    """A peer recomputes its ranges from the weights in force: ``assign(..., at=)`` of an
    earlier time gives the reference's answer under the earlier weights and exposure."""
    w0, x0, w1, x1, params = HISTORY[mode]
    names = [f"arm{i}" for i in range(max(len(w0), len(w1)))]

    def pad(w: list[float]) -> list[float]:
        return [*w, *[0.0] * (len(names) - len(w))]

    exp = ts.Experiment(
        "hist",
        dict(zip(names, pad(w1), strict=True)),
        exposure=x1,
        history=[
            {"weights": dict(zip(names, pad(w0), strict=True)), "exposure": x0, "at": 1_700_000_000}
        ],
        allocated_at=1_800_000_000,
        hashing={"mode": mode, **params},
    )
    texts, ints = random_units(300 + ref.MODES.index(mode), 3000, mode in EMPTY_ALLOWED)
    units: list[ref.Unit] = [*texts, *ints]
    for at, weights, exposure in ((1_750_000_000, w0, x0), (1_900_000_000, w1, x1)):
        want = expected(mode, "hist", pad(weights), exposure, units, params)
        batch = exp.assign_batch(texts, at=at)
        n = len(texts)
        assert_batch(batch, (want[0][:n], want[1][:n], want[2][:n]), f"{mode} at {at}")
        arms, buckets, reasons = want
        for i, u in enumerate(units):
            a = exp.assign(u, at=at)
            got = (a.arm_index if a.in_experiment else -1, a.bucket, a.reason)
            assert got == (arms[i], buckets[i], reasons[i]), f"{mode} at {at}: unit {u!r}"


# ------------------------------------------------------------------------- golden vectors


def golden_vectors() -> list[Any]:
    groups: dict[tuple[str, ...], list[tuple[ref.Unit, int, int, str]]] = {}
    for line in (DATA / "peer_mode_vectors.tsv").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line:
            continue
        mode, key, salt, params, weights, exposure, utype, unit, arm, bucket, reason = line.split(
            "\t"
        )
        u: ref.Unit
        if utype == "int":
            u = int(unit)
        elif utype == "bytes":
            u = bytes.fromhex(unit)
        else:
            u = bytes.fromhex(unit).decode("utf-8")
        groups.setdefault((mode, key, salt, params, weights, exposure), []).append(
            (u, int(arm), int(bucket), reason)
        )
    return [pytest.param(k, v, id=f"{k[0]} {k[3]} {k[4]} {k[5]}") for k, v in groups.items()]


GOLDEN = golden_vectors()


def test_golden_vectors_cover_every_mode() -> None:
    assert {p.values[0][0] for p in GOLDEN} == set(ref.MODES)
    assert sum(len(p.values[1]) for p in GOLDEN) == 1589


@pytest.mark.parametrize(("config", "rows"), GOLDEN)
def test_golden_vectors(config: tuple[str, ...], rows: list[Any]) -> None:
    mode, key, salt, params_json, weights_json, exposure = config
    params = json.loads(params_json)
    exp = experiment(
        mode, key, json.loads(weights_json), float(exposure), params, None if salt == "-" else salt
    )
    assert exp.hashing == {"mode": mode, **params}
    units = [r[0] for r in rows]
    want = (
        np.array([r[1] for r in rows], np.int64),
        np.array([r[2] for r in rows], np.int64),
        [r[3] for r in rows],
    )
    assert_single(exp, units, want, f"{mode} {params_json}")
    assert_batch(exp.assign_batch(units), want, f"{mode} {params_json}")


def golden_config(mode: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The golden configurations of a mode as experiment entries of one configuration
    mapping, and their rows by experiment key."""
    entries, rows_by_key = [], {}
    for i, p in enumerate(GOLDEN):
        (m, _, salt, params_json, weights_json, exposure), rows = p.values
        if m != mode:
            continue
        weights = json.loads(weights_json)
        key = f"golden-{i}"
        entry: dict[str, Any] = {
            "key": key,
            "arms": {f"arm{j}": w for j, w in enumerate(weights)},
            "exposure": float(exposure),
            "hashing": {"mode": mode, **json.loads(params_json)},
        }
        if salt != "-":
            entry["salt"] = salt
        entries.append(entry)
        rows_by_key[key] = rows
    return {"experiments": entries}, rows_by_key


@pytest.mark.parametrize("mode", ref.MODES)
def test_golden_vectors_through_a_configuration_and_duckdb(mode: str) -> None:
    pd = pytest.importorskip("pandas")
    duckdb = pytest.importorskip("duckdb")
    import trafficsplit.duckdb as ts_duckdb

    config, rows_by_key = golden_config(mode)
    splitter = ts.Splitter(config)
    con = ts_duckdb.register(duckdb.connect(), splitter)
    for key, rows in rows_by_key.items():
        # A frame column holds one type: text (bytes as their UTF-8 text) and integers apart.
        for kind in (str, int):
            part = [r for r in rows if isinstance(r[0], int) is (kind is int)]
            if not part:
                continue
            units = [ref.unit_text(r[0]) if kind is str else r[0] for r in part]
            want = (
                np.array([r[1] for r in part], np.int64),
                np.array([r[2] for r in part], np.int64),
                [r[3] for r in part],
            )
            frame = pd.DataFrame({"u": units})
            got = splitter.assign_columns(frame, "u", [key])[key]
            assert_batch(got, want, f"{key} Splitter.assign_columns ({kind.__name__})")
            result = con.execute(
                f"SELECT ts_arm('{key}', u), ts_bucket('{key}', u), ts_reason('{key}', u) "
                "FROM frame"
            ).fetchall()
            for (arm, bucket, reason), (u, w_arm, w_bucket, w_reason) in zip(
                result, part, strict=True
            ):
                assert (arm, bucket, reason) == (
                    None if w_arm < 0 else f"arm{w_arm}",
                    w_bucket,
                    w_reason,
                ), f"{key} DuckDB, unit {u!r}"


@pytest.fixture(scope="module")
def spark() -> Any:
    """One local Spark session (local[2], loopback only) for the Spark test of this module."""
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        pytest.skip("Spark needs Java, which is not installed (scripts/setup.sh installs it)")
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        mp.setenv("PYSPARK_PYTHON", sys.executable)
        mp.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder = SparkSession.builder.master("local[2]").appName("trafficsplit-peer-modes")
        for k, v in {
            "spark.ui.enabled": "false",
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.sql.session.timeZone": "UTC",
            "spark.ui.showConsoleProgress": "false",
        }.items():
            builder = builder.config(k, v)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        try:
            yield session
        finally:
            session.stop()


# pyspark's own notice about the pandas of the development environment
@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
@pytest.mark.parametrize("mode", ref.MODES)
def test_golden_vectors_through_spark(spark: Any, mode: str) -> None:
    from trafficsplit import spark as ts_spark

    config, rows_by_key = golden_config(mode)
    records = [
        (key, i, ref.unit_text(r[0]))
        for key, rows in rows_by_key.items()
        for i, r in enumerate(rows)
    ]
    df = spark.createDataFrame(records, "key string, row int, u string")
    out = {(r["key"], r["row"]): r for r in ts_spark.assign(df, config, "u").collect()}
    for key, rows in rows_by_key.items():
        for i, (u, w_arm, w_bucket, w_reason) in enumerate(rows):
            r = out[(key, i)]
            assert (r[key], r[f"{key}_bucket"], r[f"{key}_reason"]) == (
                None if w_arm < 0 else f"arm{w_arm}",
                w_bucket,
                w_reason,
            ), f"{key} Spark, unit {u!r}"


# ------------------------------------------- defaults, as docs/assignment-spec.md states them


@pytest.mark.parametrize("mode", ref.MODES)
def test_default_parameters_from_the_key(mode: str) -> None:
    exp = experiment(mode, "the-key", [100], 1.0)
    assert exp.hashing == {"mode": mode, **ref.mode_parameters(mode, "the-key")}


@pytest.mark.parametrize("mode", ref.MODES)
def test_default_parameters_with_a_salt(mode: str) -> None:
    exp = experiment(mode, "the-key", [100], 1.0, salt="a-salt")
    assert exp.hashing == {"mode": mode, **ref.mode_parameters(mode, "the-key", "a-salt")}


# --------------------------------------------------------------------- GrowthBook run cases

GB = json.loads((PEERS / "growthbook/cases.json").read_text(encoding="utf-8"))
GB_NOT_EXPRESSIBLE = {
    "empty id": "GrowthBook leaves an empty id out; trafficsplit hashes the empty text",
    "single variation": "one variation is never an experiment in GrowthBook",
    "negative forced variation": "force",
    "high forced variation": "force",
    "evaluates conditions - pass": "condition (targeting)",
    "evaluates conditions - fail": "condition (targeting)",
    "globally disabled": "a disabled SDK context",
    "querystring force": "URL forcing",
    "skip inactive experiments": "an inactive experiment",
    "querystring force with inactive": "URL forcing",
    "coverage take precendence over forced": "force",
    "Force variation from context": "forced variations of the context",
    "Skips experiments in QA mode": "QA mode",
    "Works in QA mode if forced in context": "QA mode",
    "Works in QA mode if forced in experiment": "QA mode",
    "Filtered, included": "filters with several ranges and attributes",
    "Filtered, excluded": "filters with several ranges and attributes",
    "Filtered, ignore namespace": "filters with several ranges and attributes",
    "Ranges, ignore coverage and weights": "explicit ranges",
    "Ranges, partial coverage": "explicit ranges",
    "Uses seed and hash version": "explicit ranges",
    "Prerequisite condition passes": "prerequisites",
    "Prerequisite condition fails": "prerequisites",
    "SavedGroups correctly pulled from context for experiment": "condition (saved groups)",
}


def test_growthbook_run_cases_accounted_for() -> None:
    names = [c[0] for c in GB["run"]]
    assert set(GB_NOT_EXPRESSIBLE) <= set(names)
    assert len(names) - len(GB_NOT_EXPRESSIBLE) == 49


@pytest.mark.parametrize(
    "case", [c for c in GB["run"] if c[0] not in GB_NOT_EXPRESSIBLE], ids=lambda c: c[0]
)
def test_growthbook_run_through_an_experiment(case: list[Any]) -> None:
    _, context, e, value, in_experiment, _ = case
    variations = e["variations"]
    n = len(variations)
    ranges = ref.gb_bucket_ranges(n, 1.0, e.get("weights"))  # the weights GrowthBook keeps
    weights = [(b - a) * 100 for a, b in ranges]
    params: dict[str, Any] = {"seed": e.get("seed") or e["key"]}
    if "namespace" in e:
        ns_id, start, end = e["namespace"]
        params["namespace"] = {"id": ns_id, "start": start, "end": end}
    mode = f"growthbook-v{e.get('hashVersion', 1)}"
    exp = experiment(mode, e["key"], weights, e.get("coverage", 1.0), params)
    unit = (context.get("attributes") or {}).get(e.get("hashAttribute") or "id")
    a = exp.assign(unit)
    assert a.in_experiment is in_experiment
    if in_experiment:
        assert variations[a.arm_index] == value


GB_FORCE_KEYS = {"force", "coverage", "hashVersion", "seed", "hashAttribute", "id"}
GB_EXPERIMENT_KEYS = {
    "variations",
    "weights",
    "coverage",
    "key",
    "seed",
    "hashVersion",
    "namespace",
    "hashAttribute",
    "meta",
    "type",
    "banditVersion",
    "id",
}


def gb_feature_case(context: Mapping[str, Any], feature_key: str) -> Any:
    """(default value, steps) of a feature whose rules are unconditional forces, rollouts
    (force with coverage) and experiments, each bucketing step an Experiment; or the reason
    the case is not expressible."""
    for k in ("forcedVariations", "url", "qaMode"):
        if k in context:
            return f"context {k}"
    f = (context.get("features") or {}).get(feature_key)
    if f is None:
        return "an unknown feature"
    steps: list[Any] = []
    for r in f.get("rules") or []:
        hv = r.get("hashVersion", 1)
        if hv not in (1, 2):
            return "an unknown hash version"
        if "force" in r:
            if set(r) - GB_FORCE_KEYS:
                return f"a force rule with {sorted(set(r) - GB_FORCE_KEYS)}"
            if "coverage" not in r:
                steps.append(("value", r["force"]))
                continue
            params = {"seed": r.get("seed") or feature_key}
            exp = experiment(f"growthbook-v{hv}", feature_key, [100], r["coverage"], params)
            steps.append(("rollout", exp, [r["force"]], r.get("hashAttribute") or "id"))
        elif "variations" in r:
            if set(r) - GB_EXPERIMENT_KEYS:
                return f"an experiment rule with {sorted(set(r) - GB_EXPERIMENT_KEYS)}"
            if any(m.get("passthrough") for m in r.get("meta") or []):
                return "a passthrough variation"
            variations = r["variations"]
            ranges = ref.gb_bucket_ranges(len(variations), 1.0, r.get("weights"))
            key = r.get("key") or feature_key
            params = {"seed": r.get("seed") or key}
            if "namespace" in r:
                ns_id, start, end = r["namespace"]
                params["namespace"] = {"id": ns_id, "start": start, "end": end}
            exp = experiment(
                f"growthbook-v{hv}",
                key,
                [(b - a) * 100 for a, b in ranges],
                r.get("coverage", 1.0),
                params,
            )
            steps.append(("experiment", exp, variations, r.get("hashAttribute") or "id"))
        else:
            return f"a rule with {sorted(r)}"
    if not any(step[0] != "value" for step in steps):
        return "no bucketing"
    return f.get("defaultValue"), steps


GB_FEATURES = [pytest.param(c, id=c[0]) for c in GB["feature"]]


def test_growthbook_feature_cases_accounted_for() -> None:
    expressible = [c for c in GB["feature"] if not isinstance(gb_feature_case(c[1], c[2]), str)]
    assert len(GB_FEATURES) == 55
    assert len(expressible) == 17


@pytest.mark.parametrize("case", GB_FEATURES)
def test_growthbook_feature_through_experiments(case: list[Any]) -> None:
    _, context, feature_key, want = case
    built = gb_feature_case(context, feature_key)
    if isinstance(built, str):
        pytest.skip(built)
    default, steps = built
    attributes = context.get("attributes") or {}
    value, bucket = default, None
    for step in steps:
        if step[0] == "value":
            value = step[1]
            break
        _, exp, values, attribute = step
        unit = attributes.get(attribute)
        if unit is None or unit == "":
            continue  # GrowthBook skips a bucketing rule without a hash value
        a = exp.assign(unit)
        if a.in_experiment:
            value, bucket = values[a.arm_index], a.bucket
            break
    assert value == want["value"]
    result = want.get("experimentResult")
    if result and result.get("bucket") is not None:
        scale = 10000 if exp.hashing["mode"] == "growthbook-v2" else 1000
        assert bucket == round(result["bucket"] * scale)


# ------------------------------------------------------------------------ Unleash suites

UNLEASH_SUITES = sorted((PEERS / "unleash/specifications").glob("*.json"))


def unleash_sticky(context: Mapping[str, Any], stickiness: str) -> str | None:
    fields = ["userId", "sessionId", "remoteAddress"] if stickiness == "default" else [stickiness]
    for f in fields:
        v = context.get(f, (context.get("properties") or {}).get(f))
        if v not in (None, ""):
            return str(v)
    return None


def unleash_case(state: Mapping[str, Any], t: Mapping[str, Any]) -> Any:
    """(Experiment, unit, variant names) for a test, or the reason it is not expressible."""
    f = next((x for x in state["features"] if x["name"] == t["toggleName"]), None)
    if f is None:
        return "an unknown feature"
    if not f.get("enabled"):
        return "a disabled feature"
    strategies = f.get("strategies") or []
    if len(strategies) > 1:
        return "several strategies"
    s: dict[str, Any] = strategies[0] if strategies else {"name": "default"}
    if s.get("constraints") or s.get("segments"):
        return "constraints"
    p: dict[str, Any] = s.get("parameters") or {}
    if s["name"] == "default":
        if not f.get("variants"):
            return "the default strategy without variants (no bucketing)"
        exposure, group, stickiness = 1.0, f["name"], "default"
    elif s["name"] == "flexibleRollout":
        exposure = float(p["rollout"]) / 100
        group, stickiness = p.get("groupId") or f["name"], p.get("stickiness", "default")
    elif s["name"] in ("gradualRolloutUserId", "gradualRolloutSessionId"):
        exposure = float(p["percentage"]) / 100
        group = p.get("groupId", "")
        stickiness = "userId" if s["name"] == "gradualRolloutUserId" else "sessionId"
    else:
        return f"strategy {s['name']} (no bucketing)"
    if s.get("variants"):
        variants, variant_group = s["variants"], p.get("groupId") or f["name"]
        variant_stickiness = stickiness
    else:
        variants, variant_group = f.get("variants") or [], f["name"]
        variant_stickiness = variants[0].get("stickiness", "default") if variants else stickiness
    if variant_stickiness != stickiness:
        return "rollout and variants sticky on different fields"
    for v in variants:
        for o in v.get("overrides") or []:
            if unleash_sticky(t["context"], o["contextName"]) in o["values"]:
                return "a variant override"
    unit = unleash_sticky(t["context"], stickiness)
    if unit is None and stickiness == "default" and exposure > 0:
        return "no sticky value (Unleash draws a random one)"
    total = sum(v["weight"] for v in variants) or 1
    names = [v["name"] for v in variants] or ["enabled"]
    weights = [v["weight"] * 100 / total for v in variants] or [100.0]
    exp = experiment(
        "unleash",
        f["name"],
        weights,
        exposure,
        {"group_id": group, "variant_group": variant_group, "weight_total": total},
        names=names,
    )
    return exp, unit, bool(variants)


UNLEASH_CASES = [
    pytest.param(kind, state, t, id=f"{path.stem}: {t['description']}")
    for path in UNLEASH_SUITES
    for suite in [json.loads(path.read_text(encoding="utf-8"))]
    for state in [suite["state"]]
    for kind in ("tests", "variantTests")
    for t in suite.get(kind, [])
]


def unleash_param_case(p: Any) -> Any:
    _, state, t = p.values
    return unleash_case(state, t)


UNLEASH_EXPRESSIBLE = [p for p in UNLEASH_CASES if not isinstance(unleash_param_case(p), str)]


def test_unleash_cases_accounted_for() -> None:
    reasons: dict[str, int] = {}
    for p in UNLEASH_CASES:
        r = unleash_param_case(p)
        if isinstance(r, str):
            reasons[r] = reasons.get(r, 0) + 1
    assert len(UNLEASH_CASES) == 81
    assert reasons == {
        "an unknown feature": 2,
        "a disabled feature": 3,
        "several strategies": 10,
        "constraints": 3,
        "the default strategy without variants (no bucketing)": 6,
        "strategy userWithId (no bucketing)": 4,
        "strategy gradualRolloutRandom (no bucketing)": 2,
        "a variant override": 2,
        "no sticky value (Unleash draws a random one)": 3,
    }
    assert len(UNLEASH_EXPRESSIBLE) == 46


@pytest.mark.parametrize(("kind", "state", "t"), UNLEASH_EXPRESSIBLE)
def test_unleash_through_an_experiment(kind: str, state: dict, t: dict) -> None:
    exp, unit, has_variants = unleash_case(state, t)
    a = exp.assign(unit)
    want = t["expectedResult"]
    if kind == "tests":
        assert a.in_experiment is want
    elif has_variants:
        assert (a.arm if a.in_experiment else "disabled") == want["name"]
        assert a.in_experiment is want["enabled"]
    else:
        assert a.in_experiment is want["feature_enabled"]


# -------------------------------------------------------------------------- flagd scenarios

FLAGD_FLAGS = json.loads((PEERS / "flagd/evaluator/flags/testkit-flags.json").read_text())["flags"]


def flagd_case(flag_key: str, context: Mapping[str, Any], legacy: bool) -> Any:
    """(Experiment, unit, variant names) for a flag whose targeting is one fractional, or the
    reason it is not expressible."""
    targeting = FLAGD_FLAGS[flag_key]["targeting"]
    if "fractional" not in targeting:
        return "fractional inside another operator"
    args = targeting["fractional"]
    first = args[0]
    if isinstance(first, dict) and "cat" in first:
        head, tail = first["cat"]
        prefix = flag_key if head == {"var": "$flagd.flagKey"} else head
        unit = ref._flagd_var(context, tail["var"])
        rest = args[1:]
    elif isinstance(first, dict) and "var" in first:
        prefix = ""
        unit = ref._flagd_var(context, first["var"])
        rest = args[1:]
    else:
        prefix, unit, rest = flag_key, context.get("targetingKey"), args
    if any(not isinstance(v[0], str) or (len(v) > 1 and not isinstance(v[1], int)) for v in rest):
        return "nested expressions as variants or weights"
    names = [v[0] for v in rest]
    ints = [max(0, v[1]) if len(v) > 1 else 1 for v in rest]  # negative weights count as 0
    total = sum(ints)
    if total == 0:
        return "all weights zero (flagd gives the default variant)"
    weights = [w * 100 / total for w in ints]
    if legacy:
        exp = experiment("flagd-legacy", flag_key, weights, 1.0, {"prefix": prefix}, names=names)
    else:
        params = {"prefix": prefix, "weight_total": total}
        exp = experiment("flagd", flag_key, weights, 1.0, params, names=names)
    return exp, unit


def flagd_scenarios() -> list[Any]:
    from test_peer_reference import gherkin_examples

    text = (PEERS / "flagd/evaluator/gherkin/fractional.feature").read_text(encoding="utf-8")
    out = []
    for scenario, tags, steps, row in gherkin_examples(text):

        def fill(m: re.Match[str], row: dict[str, str] = row) -> str:
            return row[m.group(1)]

        filled = [re.sub(r"<([^>]+)>", fill, s) for s in steps]
        out.append(pytest.param(tags, filled, id=f"{scenario} {row}"))
    return out


def flagd_steps(steps: list[str]) -> tuple[str, dict[str, Any], str]:
    context: dict[str, Any] = {}
    flag_key = value = ""
    for s in steps:
        if m := re.fullmatch(r'a \w+-flag with key "([^"]*)" and a fallback value "([^"]*)"', s):
            flag_key = m[1]
        elif m := re.search(
            r'outer key "([^"]*)" and inner key "([^"]*)", with value "([^"]*)"', s
        ):
            context.setdefault(m[1], {})[m[2]] = m[3]
        elif m := re.fullmatch(r'a context containing a targeting key with value "([^"]*)"', s):
            context["targetingKey"] = m[1]
        elif m := re.search(r'a key "([^"]*)", with type "String" and with value "([^"]*)"', s):
            context[m[1]] = m[2]
        elif m := re.fullmatch(r'the resolved details value should be "([^"]*)"', s):
            value = m[1]
    return flag_key, context, value


FLAGD = flagd_scenarios()


def test_flagd_scenarios_accounted_for() -> None:
    reasons: dict[str, int] = {}
    for p in FLAGD:
        tags, steps = p.values
        flag_key, context, _ = flagd_steps(steps)
        r = flagd_case(flag_key, context, "@fractional-v1" in tags)
        if isinstance(r, str):
            reasons[r] = reasons.get(r, 0) + 1
    assert reasons == {
        "nested expressions as variants or weights": 13,
        "fractional inside another operator": 2,
        "all weights zero (flagd gives the default variant)": 1,
    }
    assert len(FLAGD) - sum(reasons.values()) == 38


@pytest.mark.parametrize(("tags", "steps"), FLAGD)
def test_flagd_through_an_experiment(tags: set[str], steps: list[str]) -> None:
    flag_key, context, value = flagd_steps(steps)
    case = flagd_case(flag_key, context, "@fractional-v1" in tags)
    if isinstance(case, str):
        pytest.skip(case)
    exp, unit = case
    a = exp.assign(unit)
    flag = FLAGD_FLAGS[flag_key]
    variant = a.arm if a.in_experiment else flag["defaultVariant"]
    assert flag["variants"][variant] == value


# ----------------------------------------------------------------------------- Eppo UFC

EPPO_FLAGS = json.loads((PEERS / "eppo/ufc/flags-v1.json").read_text(encoding="utf-8"))["flags"]


def eppo_allocation(flag: Mapping[str, Any], alloc: Mapping[str, Any]) -> Any:
    """An Experiment that buckets as this allocation's splits do, or why there is none. A salt
    whose one range [0, T) is the same in every split is the traffic shard (exposure T/total);
    the other salt, if any, is the arm shard, whose ranges must follow one another in split
    order and fill [0, total)."""
    total = flag.get("totalShards", 10000)
    splits = alloc["splits"]
    names = [s["variationKey"] for s in splits]
    if len(set(names)) != len(names):
        return "a variation in several splits"
    per_split: list[dict[str, tuple[int, int]]] = []
    for s in splits:
        d = {}
        for sh in s["shards"]:
            if len(sh["ranges"]) != 1:
                return "a shard with several ranges"
            r = sh["ranges"][0]
            d[sh["salt"]] = (r["start"], r["end"])
        per_split.append(d)
    salts = set().union(*per_split)
    first = per_split[0]
    traffic = [
        x
        for x in salts
        if x in first and first[x][0] == 0 and all(d.get(x) == first[x] for d in per_split)
    ]
    arm = sorted(salts - set(traffic))
    if len(traffic) > 1 or len(arm) > 1:
        return "shards on more than two salts"
    exposure = first[traffic[0]][1] / total if traffic else 1.0
    if arm:
        bounds = [d.get(arm[0]) for d in per_split]
        if any(b is None for b in bounds):
            return "splits without an arm shard"
        edges = [0, *[b[1] for b in bounds if b is not None]]
        if [b[0] for b in bounds if b is not None] != edges[:-1] or edges[-1] != total:
            return "arm shards that do not fill the shard space in split order"
        weights = [(hi - lo) * 100 / total for lo, hi in itertools.pairwise(edges)]
    elif len(splits) == 1:
        weights = [100.0]
    else:
        return "several splits on the same shards"
    params = {
        "traffic_salt": traffic[0] if traffic else "unused",
        "arm_salt": arm[0] if arm else "unused",
        "total_shards": total,
    }
    return experiment("eppo", "eppo-flag", weights, exposure, params, names=names)


def eppo_subjects() -> list[Any]:
    out = []
    for path in sorted((PEERS / "eppo/ufc/tests").glob("*.json")):
        t = json.loads(path.read_text(encoding="utf-8"))
        for s in t["subjects"]:
            out.append(pytest.param(t, s, id=f"{t['flag']}: {s['subjectKey']}"))
    return out


EPPO = eppo_subjects()


def eppo_through_experiments(t: Mapping[str, Any], s: Mapping[str, Any]) -> tuple[Any, str]:
    """The subject's value: allocations in order, rules by the reference, bucketing by
    trafficsplit."""
    flag = EPPO_FLAGS.get(t["flag"])
    if flag is None or not flag["enabled"]:
        return t["defaultValue"], "default"
    attrs = {"id": s["subjectKey"], **s["subjectAttributes"]}
    for alloc in flag["allocations"]:
        if alloc.get("startAt") or alloc.get("endAt"):
            return None, "time windows"
        rules = alloc.get("rules") or []
        if rules and not any(
            all(ref._eppo_condition(attrs, c) for c in r["conditions"]) for r in rules
        ):
            continue
        exp = eppo_allocation(flag, alloc)
        if isinstance(exp, str):
            return None, exp
        a = exp.assign(s["subjectKey"])
        if a.in_experiment:
            value = flag["variations"][a.arm]["value"]
            return (json.loads(value) if t["variationType"] == "JSON" else value), "bucketed"
    return t["defaultValue"], "default"


def test_eppo_subjects_accounted_for() -> None:
    how: dict[str, int] = {}
    for p in EPPO:
        _, h = eppo_through_experiments(*p.values)
        how[h] = how.get(h, 0) + 1
    assert how == {"bucketed": 77, "default": 21}


@pytest.mark.parametrize(("t", "s"), EPPO)
def test_eppo_through_experiments(t: dict, s: dict) -> None:
    value, how = eppo_through_experiments(t, s)
    assert how in ("bucketed", "default"), how
    assert value == s["assignment"]


# -------------------------------------------------------------------------- LaunchDarkly

LD = json.loads((PEERS / "launchdarkly/bucket_values.json").read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", LD, ids=str)
def test_launchdarkly_bucket_values_through_an_experiment(case: dict) -> None:
    params = {"flag_key": case["flag_key"], "salt": case["salt"], "seed": case["seed"]}
    b = case["expected"]
    a = experiment("launchdarkly", "ld", [50, 50], 1.0, params).assign(case["value"])
    assert a.bucket == math.floor(b * 100_000)
    # A rollout whose first variation ends just below the bucket value puts the unit in the
    # second; one that ends just above it, in the first.
    w = math.floor(b * 100_000)
    below = experiment("launchdarkly", "ld", [w / 1000, 100 - w / 1000], 1.0, params)
    above = experiment("launchdarkly", "ld", [(w + 1) / 1000, 100 - (w + 1) / 1000], 1.0, params)
    assert below.assign(case["value"]).arm_index == 1
    assert above.assign(case["value"]).arm_index == 0


def test_launchdarkly_go_test_variation_index() -> None:
    # evaluator_bucketing_test.go TestVariationIndexForUser: rollout 60000/40000 on flag
    # "hashKey", salt "saltyA": userKeyA -> 0, userKeyB -> 1, userKeyC -> 0.
    exp = experiment("launchdarkly", "hashKey", [60, 40], 1.0, {"salt": "saltyA"})
    assert [exp.assign(u).arm_index for u in ("userKeyA", "userKeyB", "userKeyC")] == [0, 1, 0]
