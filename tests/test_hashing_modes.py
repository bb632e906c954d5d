"""Peer hashing modes through the API: parameters and their errors, every input shape and
path (scalar, batch, dictionary columns, per-row times, threads, configuration, Splitter,
plan, DuckDB), round trips, and each mode against the independent reference in
tests/peers/reference.py. The peers' own suites are run in test_peer_modes.py."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trafficsplit as ts
from trafficsplit import hashing_modes
from trafficsplit.errors import ConfigError, UnitValueError
from trafficsplit.plan import plan

sys.path.insert(0, str(Path(__file__).parent))
from peers import reference as ref

WEIGHTS = {"control": 30, "treatment": 50, "other": 20}
UNITS = (
    [f"user-{i}" for i in range(3000)]
    + ["", "Jürgen", "日本語", "😀 emoji", "e\u0301", "ascii"]
    + [str(i) for i in range(-50, 50)]
)


def expected(mode: dict[str, Any], key: str, weights: list[float], exposure: float, unit: Any):
    """(arm index or None, bucket, reason) from the reference implementations, given a mode's
    every parameter (``Experiment.hashing``)."""
    return ref.mode_assign(mode["mode"], key, weights, exposure, unit, params=mode)


CASES = [
    ({"mode": "growthbook-v1"}, 0.8),
    ({"mode": "growthbook-v2", "seed": "s33d"}, 0.55),
    ({"mode": "growthbook-v2", "encoding": "utf8", "namespace": ["pricing", 0.2, 0.7]}, 1.0),
    ({"mode": "growthbook-v2", "encoding": "codepoints"}, 1.0),
    ({"mode": "unleash"}, 0.29),
    ({"mode": "unleash", "encoding": "utf16-low-byte", "group_id": "g", "weight_total": 100}, 0.5),
    ({"mode": "flagd"}, 1.0),
    ({"mode": "flagd", "prefix": "", "weight_total": 10}, 1.0),
    ({"mode": "flagd-legacy"}, 1.0),
    ({"mode": "eppo"}, 0.45),
    ({"mode": "launchdarkly"}, 1.0),
    ({"mode": "launchdarkly", "seed": 61, "arithmetic": "float32"}, 1.0),
    ({"mode": "statsig", "rule_salt": "rule"}, 0.7),
]


@pytest.mark.parametrize(("mode", "exposure"), CASES, ids=lambda c: str(c))
def test_every_path_matches_the_reference(mode: dict[str, Any], exposure: float) -> None:
    e = ts.Experiment("exp-key", WEIGHTS, exposure, hashing=mode)
    full = e.hashing
    weights = list(WEIGHTS.values())
    want = [expected(full, "exp-key", weights, exposure, u) for u in UNITS]
    arms = np.array([-1 if a is None else a for a, _, _ in want])
    buckets = np.array([b for _, b, _ in want])
    reasons = [r for _, _, r in want]
    # Scalar.
    for u, (arm, bucket, reason) in zip(UNITS[::7], want[::7], strict=True):
        a = e.assign(u)
        assert (a.arm_index, a.bucket, a.reason) == (-1 if arm is None else arm, bucket, reason)
    # Columns of every shape: list, pyarrow, pandas categorical (dictionary), large strings.
    for column in (
        UNITS,
        pa.array(UNITS),
        pa.array(UNITS, pa.large_string()),
        pd.Series(UNITS, dtype="category"),
        np.array(UNITS, dtype=object),
    ):
        b = e.assign_batch(column)
        assert np.array_equal(b.arm_index, arms)
        assert np.array_equal(b.bucket, buckets)
        assert b.to_pandas()["reason"].astype(str).tolist() == reasons
    # Integer ids are their decimal text, in numpy and Arrow integer columns.
    ints = np.arange(-2000, 2000, dtype=np.int64)
    want_ints = [expected(full, "exp-key", weights, exposure, int(i)) for i in ints]
    for column in (ints, pa.array(ints), ints.astype(np.int32)):
        b = e.assign_batch(column, threads=2)
        assert np.array_equal(b.arm_index, [-1 if a is None else a for a, _, _ in want_ints])
        assert np.array_equal(b.bucket, [x for _, x, _ in want_ints])


def test_a_large_batch_split_over_threads_is_the_same_as_one_thread() -> None:
    units = [f"u{i}" for i in range(300_000)]
    for mode, exposure in CASES:
        e = ts.Experiment("k", WEIGHTS, exposure, hashing=mode)
        one, two = e.assign_batch(units, threads=1), e.assign_batch(units, threads=2)
        assert np.array_equal(one.arm_index, two.arm_index)
        assert np.array_equal(one.bucket, two.bucket)
        assert np.array_equal(one.reason, two.reason)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["growthbook-v1", "growthbook-v2", "unleash", "eppo", "statsig"]),
    st.lists(st.integers(0, 100), min_size=1, max_size=5),
    st.integers(0, 100),
    st.lists(st.text(max_size=12), min_size=1, max_size=40),
)
def test_weights_and_exposures_drawn_at_random(
    name: str, raw: list[int], exposure_pct: int, units: list[str]
) -> None:
    if sum(raw) == 0:
        raw = [1]
    # Whole percents that sum to 100 (the last arm takes the rest).
    scaled = [w * 100 // sum(raw) for w in raw]
    scaled[-1] += 100 - sum(scaled)
    weights = {f"a{i}": float(w) for i, w in enumerate(scaled)}
    exposure = exposure_pct / 100
    e = ts.Experiment("k", weights, exposure, hashing=name)
    b = e.assign_batch(units)
    for i, u in enumerate(units):
        arm, bucket, _ = expected(e.hashing, "k", list(weights.values()), exposure, u)
        assert (b.arm_index[i], b.bucket[i]) == (-1 if arm is None else arm, bucket), u


def test_parameters_default_from_key_and_salt() -> None:
    e = ts.Experiment("feature", {"on": 100}, salt="s", hashing="unleash")
    assert e.hashing == {
        "mode": "unleash",
        "group_id": "s",
        "variant_group": "feature",
        "weight_total": 1000,
        "encoding": "utf8",
    }
    assert ts.Experiment("f", {"a": 100}, hashing="eppo").hashing["traffic_salt"] == "f-traffic"
    assert ts.Experiment("f", {"a": 100}, hashing="ts1").hashing == {"mode": "ts1"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hashing": "growthbook-v3"}, "hashing.mode must be one of"),
        ({"hashing": {"seed": "x"}}, "hashing needs 'mode'"),
        ({"hashing": 7}, "must be a mode name or a mapping"),
        ({"hashing": {"mode": "unleash", "grup_id": "x"}}, "has no parameter 'grup_id'"),
        ({"hashing": {"mode": "ts1", "seed": "x"}}, "mode 'ts1' takes no parameters"),
        (
            {"hashing": {"mode": "growthbook-v2", "encoding": "latin1"}},
            "'utf16': the JavaScript SDK",
        ),
        ({"hashing": {"mode": "unleash", "weight_total": 0}}, "whole number from 1"),
        ({"hashing": {"mode": "launchdarkly", "seed": "61"}}, "must be an integer"),
        (
            {"hashing": {"mode": "growthbook-v1", "namespace": ["n", 0.6, 0.2]}},
            "start 0.6 is after end",
        ),
        (
            {"hashing": {"mode": "growthbook-v1", "namespace": {"id": "n"}}},
            "must be {id, start, end}",
        ),
        ({"hashing": "unleash", "buckets": 100}, "buckets belongs to the ts1 contract"),
        ({"hashing": "eppo", "algorithm": "murmur3"}, "algorithm belongs to the ts1 contract"),
        ({"hashing": "flagd", "exposure": 0.5}, "has no exposure of its own"),
        ({"hashing": "launchdarkly", "exposure": 0.5}, "has no exposure of its own"),
        ({"hashing": "eppo", "exposure": 0.12345}, "not a whole number of traffic shards"),
    ],
)
def test_bad_parameters_are_refused_with_the_place_and_the_expectation(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("{", r"\{")):
        ts.Experiment("k", {"a": 50, "b": 50}, **kwargs)


def test_weights_a_peer_cannot_express_are_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"33.33 % is not a whole number of variant weight out of 1,000"
    ):
        ts.Experiment("k", {"a": 33.33, "b": 66.67}, hashing="unleash")
    with pytest.raises(ConfigError, match="multiples of 1 %"):
        ts.Experiment("k", {"a": 12.5, "b": 87.5}, hashing="flagd-legacy")
    # 12.5 % of 1000 weight units is whole.
    ts.Experiment("k", {"a": 12.5, "b": 87.5}, hashing={"mode": "unleash"})


def test_text_a_mode_cannot_encode_is_a_unit_value_error() -> None:
    e = ts.Experiment("k", {"a": 100}, hashing="growthbook-v2")
    with pytest.raises(UnitValueError, match="not UTF-8 text"):
        e.assign(b"\xff\xfe")
    with pytest.raises(UnitValueError, match="at row 1"):
        e.assign_batch([b"ok", b"\xc3"])
    # UTF-8 modes hash bytes as given.
    utf8 = ts.Experiment("k", {"a": 100}, hashing="flagd")
    assert utf8.assign(b"\xff").arm == "a"
    assert e.assign(b"J\xc3\xbcrgen").bucket == e.assign("Jürgen").bucket


def test_round_trips_keep_the_mode_and_every_assignment() -> None:
    e = ts.Experiment(
        "k",
        WEIGHTS,
        0.6,
        hashing={"mode": "growthbook-v2", "namespace": {"id": "n", "start": 0, "end": 0.5}},
    )
    for copy in (ts.Experiment.from_dict(e.to_dict()), pickle.loads(pickle.dumps(e))):
        assert copy == e
        assert copy.hashing == e.hashing
        assert np.array_equal(copy.assign_batch(UNITS).arm_index, e.assign_batch(UNITS).arm_index)
    assert "growthbook-v2" in repr(e)
    with pytest.raises(ConfigError, match="belongs to the ts1 contract"):
        e.traffic_salt  # noqa: B018


def test_history_replays_each_steps_own_ranges() -> None:
    first = ts.Experiment("k", {"a": 50, "b": 50}, hashing="flagd", allocated_at="2026-01-01")
    later = first.reallocate({"a": 10, "b": 90}, effective="2026-02-01")
    assert later.hashing == first.hashing
    old = later.assign_batch(UNITS, at="2026-01-15")
    new = later.assign_batch(UNITS, at="2026-03-01")
    times = np.where(np.arange(len(UNITS)) % 2 == 0, "2026-01-15", "2026-03-01")
    mixed = later.assign_batch(UNITS, at=pd.to_datetime(times, utc=True))
    for i, u in enumerate(UNITS):
        arm_old, _, _ = ref.flagd_assign(u, [50, 50], prefix="k")
        arm_new, _, _ = ref.flagd_assign(u, [10, 90], prefix="k")
        assert old.arm_index[i] == arm_old and new.arm_index[i] == arm_new
        assert mixed.arm_index[i] == (arm_old if i % 2 == 0 else arm_new)
    assert later.assign("x", at="2025-12-01").reason == "not_started"


def test_probabilities_match_the_share_of_a_large_sample() -> None:
    units = [f"p{i}" for i in range(200_000)]
    for mode, exposure in CASES:
        e = ts.Experiment("k", WEIGHTS, exposure, hashing=mode)
        b = e.assign_batch(units)
        p = e.assignment_probabilities()
        for i, name in enumerate(WEIGHTS):
            share = float(np.mean(b.arm_index == i))
            sigma = (p[name] * (1 - p[name]) / len(units)) ** 0.5
            assert abs(share - p[name]) < 5 * sigma + 1e-9, (mode, name, share, p[name])


def test_bucket_maps_of_small_key_spaces_and_none_for_scaled_buckets() -> None:
    e = ts.Experiment("k", {"a": 25, "b": 75}, 0.5, hashing="growthbook-v2")
    m = e.bucket_map()
    assert len(m) == 10_000
    # Coverage 0.5 keeps each arm's range start: a [0, 0.125), b [0.25, 0.625).
    assert (m[:1250] == 0).all() and (m[1250:2500] == -1).all()
    assert (m[2500:6250] == 1).all() and (m[6250:] == -1).all()
    with pytest.raises(ConfigError, match="has no bucket map"):
        ts.Experiment("k", {"a": 100}, hashing="launchdarkly").bucket_map()


CONFIG = """
holdouts:
  - key: global
    percent: 10
experiments:
  - key: checkout
    holdouts: [global]
    arms: {control: 50, treatment: 50}
    exposure: 0.8
    overrides: {treatment: [vip-1]}
    hashing: {mode: growthbook-v2, seed: checkout-seed}
flags:
  - key: new-ui
    type: bool
    default: false
    rules:
      - rollout: {true: 50, false: 50}
        exposure: 0.3
        hashing: {mode: unleash, weight_total: 100}
"""


def test_configuration_splitter_and_frames_agree(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    sp = ts.Splitter.from_file(path)
    e = sp.snapshot.experiments["checkout"].experiment
    assert e.hashing["seed"] == "checkout-seed"
    frame = sp.assign_frame(pd.DataFrame({"user_id": [*UNITS, "vip-1"]}), "user_id")
    for u, arm, reason in zip(
        [*UNITS, "vip-1"], frame["checkout"], frame["checkout_reason"], strict=True
    ):
        a = sp.assign("checkout", u)
        assert (a.arm, a.reason) == (None if pd.isna(arm) else arm, reason)
    assert sp.assign("checkout", "vip-1").reason == "override"
    # Outside the holdout, the arm is GrowthBook's.
    for u in UNITS[:500]:
        a = sp.assign("checkout", u)
        if a.reason in ("assigned", "not_exposed"):
            arm, _, reason = ref.growthbook_assign(
                u, [50, 50], 0.8, seed="checkout-seed", version=2
            )
            assert (a.arm_index if a.arm_index >= 0 else None, a.reason) == (arm, reason)
    # The flag rule's units outside its exposure fall through to the default.
    for u in UNITS[:500]:
        on = ref.unleash_assign(
            u, [50, 50], 0.3, group_id="new-ui", variant_group="new-ui", weight_total=100
        )
        assert sp.flag("new-ui", u) == (on[0] == 0)


def test_plan_of_peer_modes() -> None:
    def cfg(arms: dict[str, float], exposure: float, hashing: Any) -> Any:
        return ts.parse_config(
            {"experiments": [{"key": "e", "arms": arms, "exposure": exposure, "hashing": hashing}]}
        )

    # GrowthBook coverage up: each range grows from its start, nobody moves.
    p = plan(
        cfg({"a": 50, "b": 50}, 0.5, "growthbook-v2"), cfg({"a": 50, "b": 50}, 1, "growthbook-v2")
    )
    e = p.experiment("e")
    assert (e.exposed_before, e.exposed_after, e.moved, e.entered) == (0.5, 1.0, 0.0, 0.5)
    # Three equal arms to 50/25/25 under contiguous ranges moves more than ts1 would.
    thirds = {"a": 33.333, "b": 33.333, "c": 33.334}
    p = plan(cfg(thirds, 1, "launchdarkly"), cfg({"a": 50, "b": 25, "c": 25}, 1, "launchdarkly"))
    e = p.experiment("e")
    units = [f"q{i}" for i in range(100_000)]
    before = ts.Experiment("e", thirds, hashing="launchdarkly").assign_batch(units).arm_index
    after = (
        ts.Experiment("e", {"a": 50, "b": 25, "c": 25}, hashing="launchdarkly")
        .assign_batch(units)
        .arm_index
    )
    assert e.moved is not None and abs(e.moved - np.mean(before != after)) < 0.005
    assert any("would do" in n for n in e.notes)
    # Changing the mode re-randomises.
    p = plan(cfg({"a": 50, "b": 50}, 1, "flagd"), cfg({"a": 50, "b": 50}, 1, "flagd-legacy"))
    assert p.experiment("e").rerandomised


def test_duckdb_assigns_in_the_mode(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    from trafficsplit.duckdb import register

    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    sp = ts.Splitter.from_file(path)
    con = duckdb.connect()
    register(con, sp)
    con.execute(
        "create table u as select * from (values "
        + ",".join(f"('{u}')" for u in UNITS[:2000])
        + ") t(user_id)"
    )
    rows = con.execute("select user_id, ts_arm('checkout', user_id) from u").fetchall()
    for u, arm in rows:
        assert arm == sp.assign("checkout", u).arm


def test_modes_are_listed_with_the_system_they_reproduce() -> None:
    assert set(hashing_modes.MODES) == {
        "ts1", "growthbook-v1", "growthbook-v2", "unleash", "flagd", "flagd-legacy", "eppo",
        "launchdarkly", "statsig",
    }  # fmt: skip


def test_the_schema_names_every_parameter_of_every_mode() -> None:
    import json

    schema = json.loads((Path(ts.__file__).parent / "config.schema.json").read_text())
    as_mapping = schema["$defs"]["hashing"]["oneOf"][1]
    parameters = set().union(*(set(p) for p in hashing_modes._PARAMETERS.values()))
    assert set(as_mapping["properties"]) == {"mode"} | parameters
    assert as_mapping["properties"]["mode"]["enum"] == list(hashing_modes.MODES)
    assert schema["$defs"]["hashing"]["oneOf"][0]["enum"] == list(hashing_modes.MODES)


def test_growthbook_utf16_is_the_installed_python_sdk_on_every_plane() -> None:
    """The GrowthBook Python SDK (4.x) hashes UTF-16 code units, as JavaScript does: the
    utf16 encoding equals its own gbhash on ASCII, accented, CJK and astral (emoji) ids."""
    gb_core = pytest.importorskip("growthbook.core")
    units = ["user-1", "Jürgen", "日本語", "😀", "a😀b", "𝄞 clef", "", "e\u0301"]
    for version in (1, 2):
        e = ts.Experiment("e", {"a": 100}, hashing={"mode": f"growthbook-v{version}", "seed": "s"})
        buckets = e.assign_batch(units).bucket
        scale = 1000 if version == 1 else 10_000
        for u, b in zip(units, buckets, strict=True):
            assert b == round(gb_core.gbhash("s", u, version) * scale), u
