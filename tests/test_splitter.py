"""The Splitter: layers, holdouts, overrides, status, canary and blue-green rollouts, flags,
assign_frame against assign, hot reload under concurrent readers, fork and asyncio."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import select
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

import trafficsplit as ts
from trafficsplit import ConfigError, ConfigValidationError, Splitter, parse_config

from conftest import DATA

EXAMPLE = DATA / "config" / "example.yaml"
ALPHA = 0.001
UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _reasons(out: pd.DataFrame, key: str) -> np.ndarray:
    return out[f"{key}_reason"].astype(str).to_numpy()


def _arms(out: pd.DataFrame, key: str) -> np.ndarray:
    col = out[key].astype(object)
    return col.where(col.notna(), None).to_numpy()


def _layer_bucket(units: np.ndarray, salt: str, buckets: int = 10_000) -> np.ndarray:
    """The layer / holdout stage bucket straight from the spec (xxh3 of salt + stage)."""
    return np.asarray(ts.hash64_batch(units, salt).filled(0) % np.uint64(buckets), dtype=np.int64)


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


@pytest.fixture(scope="module")
def example() -> Splitter:
    return Splitter.from_file(EXAMPLE)


@pytest.fixture(scope="module")
def million() -> pd.DataFrame:
    rng = np.random.default_rng(20261120)
    ids = rng.choice(np.arange(10**12, 10**12 + 50_000_000, dtype=np.int64), 1_000_000, False)
    return pd.DataFrame({"user_id": ids})


# -- construction ---------------------------------------------------------------------------------


def test_splitter_from_mapping_snapshot_and_path(example: Splitter) -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    for sp in (
        Splitter(data),
        Splitter(example.snapshot),
        Splitter(EXAMPLE),
        Splitter(str(EXAMPLE)),
    ):
        assert sp.version == example.version
        assert sp.assign("search-ui", "u-1") == example.assign("search-ui", "u-1")
    with pytest.raises(ConfigError, match="mapping, a Snapshot or a path"):
        Splitter(5)  # type: ignore[arg-type]
    with pytest.raises(ConfigValidationError):
        Splitter({"experiments": [{"key": "e", "arms": {"a": 60}}]})
    with pytest.raises(ConfigError, match="from_file"):
        Splitter(data).reload()


def test_unknown_experiment_and_flag(example: Splitter) -> None:
    with pytest.raises(ConfigError, match=r"unknown experiment 'nope'.*ranker-v2"):
        example.assign("nope", "u")
    with pytest.raises(ConfigError, match=r"unknown flag 'nope'.*new-reranker"):
        example.flag("nope", "u")
    details = example.flag_details("nope", "u", default=3)
    assert (details.value, details.reason, details.version) == (3, "error", example.version)


def test_unit_from_attributes_and_missing_unit(example: Splitter) -> None:
    by_attr = example.assign("ranker-v2", attributes={"user_id": "u-9", "country": "US"})
    assert by_attr == example.assign("ranker-v2", "u-9", {"country": "US"})
    assert example.assign("search-ui").reason == "missing_unit"
    assert example.assign("search-ui", None, {"user_id": None}).reason == "missing_unit"
    with pytest.raises(TypeError):
        example.assign("search-ui", 1.5)


def test_assign_all_covers_every_experiment(example: Splitter) -> None:
    result = example.assign_all("u-3", {"country": "US"})
    assert list(result) == ["ranker-v2", "search-ui", "reranker-canary", "serving-stack"]
    for key, a in result.items():
        assert a == example.assign(key, "u-3", {"country": "US"})


# -- layers ---------------------------------------------------------------------------------------

LAYERED = {
    "layers": [{"key": "ranking"}, {"key": "ui", "salt": "ui-2026"}],
    "experiments": [
        {"key": "ranker", "layer": "ranking", "layer_share": 40, "arms": {"c": 50, "t": 50}},
        {"key": "search", "layer": "ranking", "layer_share": 35, "arms": {"a": 20, "b": 80}},
        {"key": "banner", "layer": "ui", "layer_share": 60, "arms": {"on": 30, "off": 70}},
        {"key": "theme", "layer": "ui", "layer_share": 40, "arms": {"dark": 50, "light": 50}},
        {"key": "free", "arms": {"x": 50, "y": 50}},
    ],
}


@pytest.fixture(scope="module")
def layered(million: pd.DataFrame) -> pd.DataFrame:
    return Splitter(LAYERED).assign_frame(million, "user_id")


def test_layer_experiments_are_mutually_exclusive(layered: pd.DataFrame) -> None:
    ranker = _reasons(layered, "ranker") != "layer_other"
    search = _reasons(layered, "search") != "layer_other"
    assert not (ranker & search).any()
    assert (_reasons(layered, "ranker")[ranker] == "assigned").all()
    assert (_reasons(layered, "search")[search] == "assigned").all()
    # arms are only given inside the experiment's slice
    assert pd.isna(layered["ranker"][~ranker]).all()
    assert pd.isna(layered["search"][~search]).all()
    # units in no experiment of the layer get layer_other from every experiment of it
    neither = ~ranker & ~search
    assert neither.sum() > 200_000
    for key in ("ranker", "search"):
        assert (_reasons(layered, key)[neither] == "layer_other").all()
    # a full layer leaves nobody out
    banner = _reasons(layered, "banner") != "layer_other"
    theme = _reasons(layered, "theme") != "layer_other"
    assert (banner ^ theme).all()
    assert (_reasons(layered, "free") == "assigned").all()


def test_layer_shares_match_layer_share(layered: pd.DataFrame) -> None:
    n = len(layered)
    ranker = int((_reasons(layered, "ranker") != "layer_other").sum())
    search = int((_reasons(layered, "search") != "layer_other").sum())
    for count, share in ((ranker, 0.40), (search, 0.35)):
        assert stats.binomtest(count, n, share).pvalue > ALPHA, (count, share)
    observed = [ranker, search, n - ranker - search]
    assert stats.chisquare(observed, [n * 0.40, n * 0.35, n * 0.25]).pvalue > ALPHA
    banner = int((_reasons(layered, "banner") != "layer_other").sum())
    assert stats.binomtest(banner, n, 0.60).pvalue > ALPHA
    # arms inside a slice follow the experiment's weights
    inside = _arms(layered, "search")
    inside = inside[inside != None]  # noqa: E711
    assert stats.binomtest(int((inside == "a").sum()), len(inside), 0.20).pvalue > ALPHA


def test_layer_slots_follow_the_spec(million: pd.DataFrame, layered: pd.DataFrame) -> None:
    units = million["user_id"].to_numpy()
    slot = _layer_bucket(units, "ranking/layer")
    assert ((slot < 4000) == (_reasons(layered, "ranker") != "layer_other")).all()
    assert (
        ((slot >= 4000) & (slot < 7500)) == (_reasons(layered, "search") != "layer_other")
    ).all()
    ui = _layer_bucket(units, "ui-2026/layer")  # the layer's salt, not its key
    assert ((ui < 6000) == (_reasons(layered, "banner") != "layer_other")).all()


def _slots(out: pd.DataFrame, keys: tuple[str, ...]) -> np.ndarray:
    """Per unit: 'experiment=arm' for the experiment of the layer it is in, else 'none'."""
    labels = np.full(len(out), "none", dtype=object)
    for key in keys:
        arms = _arms(out, key)
        has = arms != None  # noqa: E711
        labels[has] = [f"{key}={a}" for a in arms[has]]
    return labels


def test_layers_are_independent(layered: pd.DataFrame) -> None:
    ranking = _slots(layered, ("ranker", "search"))
    ui = _slots(layered, ("banner", "theme"))
    table = pd.crosstab(ranking, ui)
    assert table.shape == (5, 4)
    assert stats.chi2_contingency(table.to_numpy()).pvalue > ALPHA
    # a layer is also independent of an experiment outside any layer
    table = pd.crosstab(ranking, _arms(layered, "free"))
    assert table.shape == (5, 2)
    assert stats.chi2_contingency(table.to_numpy()).pvalue > ALPHA


def test_layer_scalar_matches_frame(million: pd.DataFrame, layered: pd.DataFrame) -> None:
    sp = Splitter(LAYERED)
    keys = ("ranker", "search", "banner", "theme", "free")
    arms = {k: _arms(layered, k) for k in keys}
    reasons = {k: _reasons(layered, k) for k in keys}
    for i in range(0, len(million), 997):
        unit = int(million["user_id"].iat[i])
        for key in keys:
            a = sp.assign(key, unit)
            assert (a.arm, a.reason) == (arms[key][i], reasons[key][i])


def test_layer_reorder_moves_slots_but_keeps_them_disjoint() -> None:
    flipped = {**LAYERED, "experiments": [LAYERED["experiments"][1], LAYERED["experiments"][0]]}
    sp = Splitter(flipped)
    assert dict(sp.snapshot.layers["ranking"].ranges) == {
        "search": (0, 3500),
        "ranker": (3500, 7500),
    }
    for unit in range(2000):
        reasons = [sp.assign(k, unit).reason for k in ("search", "ranker")]
        assert reasons.count("assigned") <= 1


# -- holdouts -------------------------------------------------------------------------------------

HELD = {
    "layers": [{"key": "ranking"}],
    "holdouts": [{"key": "global", "percent": 5}, {"key": "q4", "percent": 10, "salt": "q4-26"}],
    "experiments": [
        {"key": "a", "holdouts": ["global"], "arms": {"x": 50, "y": 50}},
        {"key": "b", "holdouts": ["global", "q4"], "arms": {"x": 50, "y": 50}},
        {"key": "c", "arms": {"x": 50, "y": 50}},
        {
            "key": "d",
            "layer": "ranking",
            "layer_share": 50,
            "holdouts": ["global"],
            "exposure": 0.3,
            "arms": {"x": 50, "y": 50},
        },
    ],
}


def test_holdouts_exclude_the_same_units_everywhere(million: pd.DataFrame) -> None:
    sp = Splitter(HELD)
    out = sp.assign_frame(million, "user_id")
    units = million["user_id"].to_numpy()
    n = len(units)
    in_global = _layer_bucket(units, "global/holdout") < 500
    in_q4 = _layer_bucket(units, "q4-26/holdout") < 1000
    assert stats.binomtest(int(in_global.sum()), n, 0.05).pvalue > ALPHA
    assert stats.binomtest(int(in_q4.sum()), n, 0.10).pvalue > ALPHA
    held = {k: _reasons(out, k) == "holdout" for k in "abcd"}
    assert (held["a"] == in_global).all()
    assert (held["d"] == in_global).all()  # before the layer: the same units, layer or not
    assert (held["b"] == (in_global | in_q4)).all()
    assert not held["c"].any()
    assert (_reasons(out, "c") == "assigned").all()
    for key in "abd":
        assert pd.isna(out[key][held[key]]).all()
    # holdouts are independent of each other and of the arms
    table = pd.crosstab(in_global, in_q4)
    assert stats.chi2_contingency(table.to_numpy()).pvalue > ALPHA
    table = pd.crosstab(in_global, _arms(out, "c"))
    assert stats.chi2_contingency(table.to_numpy()).pvalue > ALPHA
    # one by one
    arms = {k: _arms(out, k) for k in "abcd"}
    reasons = {k: _reasons(out, k) for k in "abcd"}
    for i in range(0, n, 4999):
        for key in "abcd":
            a = sp.assign(key, int(units[i]))
            assert (a.arm, a.reason) == (arms[key][i], reasons[key][i])


def test_example_holdout(example: Splitter) -> None:
    held = [u for u in range(20_000) if ts.bucket(u, "global-2027/holdout") < 500]
    assert 800 < len(held) < 1200
    for u in held[:200]:
        a = example.assign("ranker-v2", u, {"country": "US"})
        assert (a.reason, a.arm, a.payload, a.in_experiment) == ("holdout", None, None, False)
        assert example.assign("search-ui", u).reason != "holdout"


# -- overrides ------------------------------------------------------------------------------------


def test_example_overrides_ints_and_strings_are_one_unit(example: Splitter) -> None:
    for unit in ("qa-user-1", 42, "42", np.int64(42), np.uint16(42)):
        for attrs in (None, {"country": "DE"}, {"country": "US"}):
            a = example.assign("ranker-v2", unit, attrs)
            assert a.reason == "override"
            assert (a.arm, a.arm_index, a.payload) == ("treatment", 1, {"model": "ranker-v2"})
            assert a == example.assign("ranker-v2", unit, attrs, at="2026-11-02T00:00:00Z")
    assert example.assign("search-ui", 42).reason != "override"
    assert example.assign("ranker-v2", "43").reason != "override"
    assert example.assign("ranker-v2", "qa-user-10").reason != "override"


def test_override_wins_over_every_other_reason() -> None:
    units = range(100_000)
    held = next(u for u in units if ts.bucket(u, "h/holdout") < 5000)
    other = next(
        u for u in units if ts.bucket(u, "h/holdout") >= 5000 and ts.bucket(u, "L/layer") >= 5000
    )
    cfg = {
        "layers": [{"key": "L"}],
        "holdouts": [{"key": "h", "percent": 50}],
        "experiments": [
            {
                "key": "e",
                "layer": "L",
                "layer_share": 50,
                "holdouts": ["h"],
                "exposure": 0,
                "targeting": "tier == 'x'",
                "start": "2026-11-10T00:00:00Z",
                "end": "2026-11-20T00:00:00Z",
                "arms": {"a": 100, "b": 0},
                "overrides": {"b": [held, str(other), "never-exposed"]},
            },
            {"key": "off", "status": "draft", "arms": {"a": 100}, "overrides": {"a": [held]}},
        ],
    }
    sp = Splitter(cfg)
    mid = "2026-11-15T00:00:00Z"
    reasons = {sp.assign("e", f"z{u}", {"tier": "x"}, at=mid).reason for u in range(1000)}
    assert reasons == {"holdout", "layer_other", "not_exposed"}
    for unit in (held, str(held), other, str(other), np.int32(other), "never-exposed"):
        for when in (None, "2026-11-01T00:00:00Z", "2026-11-15T00:00:00Z", "2027-01-01"):
            for attrs in (None, {"tier": "x"}, {"tier": "y"}):
                a = sp.assign("e", unit, attrs, at=when)
                assert (a.arm, a.arm_index, a.reason) == ("b", 1, "override"), (unit, when)
    # a draft experiment gives everyone 'stopped', but overrides still apply
    assert sp.assign("off", held).reason == "override"
    assert sp.assign("off", held + 1).reason == "stopped"
    frame = sp.assign_frame(pd.DataFrame({"u": [held, str(other), "never-exposed"]}), "u")
    assert set(_reasons(frame, "e")) == {"override"}
    assert set(_arms(frame, "e")) == {"b"}


# -- status, start and end ------------------------------------------------------------------------

TIMED = {
    "experiments": [
        {"key": "draft", "status": "draft", "arms": {"a": 50, "b": 50}},
        {"key": "stopped", "status": "stopped", "arms": {"a": 50, "b": 50}},
        {
            "key": "window",
            "start": "2026-11-10T00:00:00Z",
            "end": "2026-11-20T00:00:00Z",
            "arms": {"a": 50, "b": 50},
        },
    ]
}


def test_draft_and_stopped_experiments_assign_nobody() -> None:
    sp = Splitter(TIMED)
    for key in ("draft", "stopped"):
        for unit in range(500):
            for when in (None, "2026-11-15T00:00:00Z"):
                a = sp.assign(key, unit, at=when)
                assert (a.reason, a.arm, a.in_experiment) == ("stopped", None, False)
        assert sp.assign(key, None).reason == "missing_unit"


def test_start_and_end_with_at() -> None:
    sp = Splitter(TIMED)
    cases = [
        ("2026-11-09T23:59:59.999999Z", "not_started"),
        ("2026-11-10T00:00:00Z", "assigned"),
        ("2026-11-19T23:59:59Z", "assigned"),
        ("2026-11-20T00:00:00Z", "stopped"),
        ("2027-01-01T00:00:00Z", "stopped"),
    ]
    for when, reason in cases:
        for form in (when, at(when), np.datetime64(when.rstrip("Z")), at(when).timestamp()):
            for unit in (1, "u-2", "u-3"):
                a = sp.assign("window", unit, at=form)
                assert a.reason == reason, (when, form)
                assert (a.arm is not None) == (reason == "assigned")
    # a naive datetime is UTC
    naive = dt.datetime(2026, 11, 9, 23, 0)
    assert sp.assign("window", 1, at=naive).reason == "not_started"
    plus2 = dt.datetime(2026, 11, 10, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert sp.assign("window", 1, at=plus2).reason == "not_started"


# -- canary, blue-green ---------------------------------------------------------------------------

CANARY_MOMENTS = [
    ("2026-11-20T00:00:00Z", 1),
    ("2026-11-20T00:59:59Z", 1),
    ("2026-11-20T01:00:00Z", 10),
    ("2026-11-21T00:59:59Z", 10),
    ("2026-11-21T01:00:00Z", 50),
    ("2026-11-22T00:00:00Z", 50),
    ("2026-11-22T01:00:00Z", 100),
    ("2027-06-01T00:00:00Z", 100),
]


def test_canary_schedule_shares(example: Splitter) -> None:
    units = pd.DataFrame({"user_id": np.arange(100_000, dtype=np.int64)})
    before = example.assign_frame(
        units.assign(at=pd.Timestamp("2026-11-19T23:59:59Z")), "user_id", ["reranker-canary"], "at"
    )
    assert (_reasons(before, "reranker-canary") == "not_started").all()
    previous: np.ndarray | None = None
    for when, percent in CANARY_MOMENTS:
        frame = units.assign(at=pd.Timestamp(when))
        out = example.assign_frame(frame, "user_id", ["reranker-canary"], at_column="at")
        on = _arms(out, "reranker-canary") == "canary"
        assert (_reasons(out, "reranker-canary") == "assigned").all()
        count = int(on.sum())
        if percent == 100:
            assert count == len(units)
        else:
            assert stats.binomtest(count, len(units), percent / 100).pvalue > ALPHA, when
        if previous is not None:  # minimal movement: nobody leaves the canary as it grows
            assert not (previous & ~on).any(), when
        previous = on
        for u in range(0, 100_000, 3331):
            a = example.assign("reranker-canary", u, at=when)
            assert a.arm == ("canary" if on[u] else "stable")
            assert a.payload == {"model": "reranker-v2" if on[u] else "reranker-v1"}


def test_canary_at_a_datetime(example: Splitter) -> None:
    now = dt.datetime(2026, 11, 20, 0, 30, tzinfo=UTC)
    on = sum(example.assign("reranker-canary", u, at=now).arm == "canary" for u in range(20_000))
    assert stats.binomtest(on, 20_000, 0.01).pvalue > ALPHA


def test_canary_payloads_and_targeting_in_a_rollout() -> None:
    cfg = {
        "rollouts": [
            {
                "key": "r",
                "arms": {"old": {"v": 1}, "new": {"v": 2}},
                "targeting": 'region == "eu"',
                "start": "2026-01-01T00:00:00Z",
                "steps": [{"percent": 0, "hold": "1d"}, {"percent": 25}],
            }
        ]
    }
    sp = Splitter(cfg)
    assert sp.assign("r", "u", {"region": "us"}, at="2026-06-01").reason == "targeting_miss"
    day0 = [sp.assign("r", u, {"region": "eu"}, at="2026-01-01T12:00:00Z") for u in range(4000)]
    assert {a.arm for a in day0} == {"old"}
    later = [sp.assign("r", u, {"region": "eu"}, at="2026-01-05") for u in range(4000)]
    new = sum(a.arm == "new" for a in later)
    assert stats.binomtest(new, 4000, 0.25).pvalue > ALPHA


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_in_place(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:  # truncates, then writes
        f.write(text)


BLUE_GREEN = """\
rollouts:
  - key: stack
    type: blue_green
    arms: {{blue: {{cluster: a}}, green: {{cluster: b}}}}
    active: {active}
"""


def test_blue_green_flip_moves_everyone_in_one_edit(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    _write_atomic(path, BLUE_GREEN.format(active="blue"))
    units = pd.DataFrame({"user_id": np.arange(20_000, dtype=np.int64)})
    with Splitter.from_file(path) as sp:
        assert set(_arms(sp.assign_frame(units, "user_id"), "stack")) == {"blue"}
        v_blue = sp.version
        _write_atomic(path, BLUE_GREEN.format(active="green"))
        assert sp.reload() is True
        out = sp.assign_frame(units, "user_id")
        assert set(_arms(out, "stack")) == {"green"}
        assert (_reasons(out, "stack") == "assigned").all()
        assert sp.assign("stack", "u").payload == {"cluster": "b"}
        assert sp.reload() is False  # nothing changed
        _write_atomic(path, BLUE_GREEN.format(active="blue"))
        assert sp.reload() is True
        assert sp.version == v_blue
        assert set(_arms(sp.assign_frame(units, "user_id"), "stack")) == {"blue"}
        assert sp.reloads == 2


def test_blue_green_default_active_is_the_first_arm(example: Splitter) -> None:
    assert {example.assign("serving-stack", u).arm for u in range(2000)} == {"blue"}


# -- flags ----------------------------------------------------------------------------------------

FLAGS = {
    "flags": [
        {
            "key": "colour",
            "type": "string",
            "default": "grey",
            "rules": [
                {"when": 'tier == "internal"', "value": "black"},
                {"when": 'country == "US"', "value": "red"},
                {"when": 'country == "US" or country == "CA"', "value": "blue"},
                {
                    "when": 'country == "DE"',
                    "rollout": [{"value": "green", "weight": 30}, {"value": "teal", "weight": 70}],
                },
            ],
        },
        {"key": "killed", "type": "bool", "default": False, "enabled": False,
         "rules": [{"value": True}]},
        {"key": "beta", "type": "bool", "default": False,
         "rules": [{"when": 'tier == "beta"', "value": True}]},
        {"key": "beta-ui", "type": "string", "default": "old",
         "prerequisites": [{"flag": "beta", "value": True}],
         "rules": [{"value": "new"}]},
        {"key": "beta-ui-2", "type": "string", "default": "old",
         "prerequisites": [{"flag": "beta-ui", "value": "new"}, {"flag": "killed", "value": False}],
         "rules": [{"value": "newer"}]},
        {"key": "limits", "type": "json", "default": {"rps": 10},
         "rules": [{"when": 'tier == "gold"', "value": {"rps": 100, "burst": [1, 2]}}]},
        {"key": "ratio", "type": "number", "default": 0.5,
         "rules": [{"rollout": [{"value": 0.1, "weight": 50}, {"value": 0.9, "weight": 50}]}]},
    ]
}  # fmt: skip


def test_flag_rules_apply_in_order() -> None:
    sp = Splitter(FLAGS)
    cases = [
        ({"tier": "internal", "country": "US"}, "black", "rule0", "targeting_match"),
        ({"country": "US"}, "red", "rule1", "targeting_match"),
        ({"country": "CA"}, "blue", "rule2", "targeting_match"),
        ({"country": "FR"}, "grey", "default", "default"),
        ({}, "grey", "default", "default"),
        (None, "grey", "default", "default"),
    ]
    for attrs, value, variant, reason in cases:
        d = sp.flag_details("colour", "u-1", attrs)
        assert (d.value, d.variant, d.reason, d.key) == (value, variant, reason, "colour")
        assert d.version == sp.version
        assert sp.flag("colour", "u-1", attrs) == value


def test_kill_switch_returns_the_default() -> None:
    sp = Splitter(FLAGS)
    for unit in range(200):
        d = sp.flag_details("killed", unit, {"tier": "internal"})
        assert (d.value, d.reason, d.variant) == (False, "disabled", "default")


def test_flag_rollout_split_matches_weights() -> None:
    sp = Splitter(FLAGS)
    n = 100_000
    values = [sp.flag_details("colour", u, {"country": "DE"}) for u in range(n)]
    green = sum(d.value == "green" for d in values)
    assert {d.value for d in values} == {"green", "teal"}
    assert {d.reason for d in values} == {"split"}
    assert {d.variant for d in values} == {"rule3/v0", "rule3/v1"}
    assert stats.binomtest(green, n, 0.30).pvalue > ALPHA
    # the split hashes like the experiment '<flag>/rule<i>' with one arm per value (the spec)
    ref = ts.Experiment("colour/rule3", {"v0": 30, "v1": 70})
    for u in range(0, n, 997):
        assert values[u].value == ("green", "teal")[ref.assign(u).arm_index]
    # the attribute named by the flag's unit stands in for the unit
    assert sp.flag("colour", None, {"country": "DE", "user_id": 5}) == values[5].value
    # without a unit a split cannot be made: the default
    assert sp.flag_details("colour", None, {"country": "DE"}).reason == "default"


def test_example_flag_rollout_matches_weights(example: Splitter) -> None:
    n = 100_000
    on = sum(example.flag("new-reranker", f"user-{u}", {"tier": "free"}) for u in range(n))
    assert stats.binomtest(on, n, 0.10).pvalue > ALPHA
    assert all(example.flag("new-reranker", u, {"tier": "internal"}) for u in range(1000))


def test_number_and_json_flags() -> None:
    sp = Splitter(FLAGS)
    ratios = [sp.flag("ratio", u) for u in range(10_000)]
    assert set(ratios) == {0.1, 0.9}
    assert stats.binomtest(ratios.count(0.1), len(ratios), 0.5).pvalue > ALPHA
    gold = sp.flag("limits", "u", {"tier": "gold"})
    assert gold == {"rps": 100, "burst": (1, 2)}
    with pytest.raises(TypeError):
        gold["rps"] = 1
    assert sp.flag("limits", "u", {"tier": "free"}) == {"rps": 10}
    assert sp.flag("limits", "u", {"tier": "free"}) == {"rps": 10}  # not changed by anyone


def test_prerequisites() -> None:
    sp = Splitter(FLAGS)
    beta = {"tier": "beta"}
    assert sp.flag_details("beta-ui", "u", beta).value == "new"
    assert sp.flag_details("beta-ui-2", "u", beta).value == "newer"
    for attrs in ({"tier": "free"}, {}, None):
        d = sp.flag_details("beta-ui", "u", attrs)
        assert (d.value, d.reason) == ("old", "prerequisite_failed")
        d = sp.flag_details("beta-ui-2", "u", attrs)
        assert (d.value, d.reason) == ("old", "prerequisite_failed")


def test_prerequisite_on_a_killed_flag_uses_its_default() -> None:
    cfg = {
        "flags": [
            {"key": "a", "type": "bool", "default": True, "enabled": False, "rules": [
                {"value": False}]},
            {"key": "b", "type": "bool", "default": False, "prerequisites": [
                {"flag": "a", "value": True}], "rules": [{"value": True}]},
        ]
    }  # fmt: skip
    assert Splitter(cfg).flag_details("b", "u").value is True


# -- assign_frame == assign ---------------------------------------------------------------------

FULL = {
    "layers": [{"key": "ranking"}, {"key": "ui"}],
    "holdouts": [{"key": "global", "percent": 5}, {"key": "q4", "percent": 10}],
    "experiments": [
        {
            "key": "ranker",
            "layer": "ranking",
            "layer_share": 40,
            "holdouts": ["global"],
            "targeting": 'country in ["US", "CA"]',
            "exposure": 0.5,
            "arms": {"control": {"weight": 50, "payload": {"m": 1}}, "treatment": 50},
            "allocated_at": "2026-11-15T00:00:00Z",
            "history": [
                {"at": "2026-11-01T00:00:00Z", "weights": {"control": 90, "treatment": 10}}
            ],
            "overrides": {"treatment": ["qa-1", 42], "control": [7]},
        },
        {"key": "search", "layer": "ranking", "layer_share": 30, "holdouts": ["global", "q4"],
         "arms": {"a": 20, "b": 30, "c": 50}},
        {"key": "banner", "layer": "ui", "layer_share": 100,
         "targeting": 'tier == "premium" or age >= 30', "arms": {"on": 50, "off": 50}},
        {"key": "window", "start": "2026-11-10T00:00:00Z", "end": "2026-11-20T00:00:00Z",
         "holdouts": ["q4"], "arms": {"x": 50, "y": 50}, "overrides": {"y": ["qa-1"]}},
        {"key": "paused", "status": "stopped", "arms": {"x": 100}, "overrides": {"x": ["qa-2"]}},
        {"key": "planned", "status": "draft", "arms": {"x": 100}},
    ],
    "rollouts": [
        {"key": "canary", "arms": {"stable": None, "canary": None},
         "start": "2026-11-05T00:00:00Z",
         "steps": [{"percent": 5, "hold": "2d"}, {"percent": 50, "hold": "5d"}, {"percent": 100}]},
        {"key": "stack", "type": "blue_green", "arms": {"blue": None, "green": None},
         "active": "green"},
    ],
}  # fmt: skip
FULL_KEYS = [e["key"] for e in FULL["experiments"] + FULL["rollouts"]]


def _random_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids: list[Any] = []
    for i in range(n):
        r = rng.random()
        if r < 0.05:
            ids.append(None)
        elif r < 0.08:
            ids.append(random.Random(i).choice([42, "42", "qa-1", "qa-2", 7, "7"]))
        elif r < 0.5:
            ids.append(int(rng.integers(-(2**62), 2**62)))
        else:
            ids.append(f"user-{rng.integers(0, 10**9)}-é")
    # from the first allocation step of 'ranker' on (see test_frame_not_started_precedence)
    start = pd.Timestamp("2026-11-01T00:00:00Z").value // 1000
    span = 28 * 86_400 * 1_000_000
    times = pd.to_datetime(start + rng.integers(0, span, n), unit="us", utc=True)
    countries = rng.choice(np.array(["US", "CA", "DE", None], dtype=object), n)
    tiers = rng.choice(np.array(["premium", "free", None], dtype=object), n)
    ages = np.where(rng.random(n) < 0.2, np.nan, rng.integers(15, 70, n).astype(float))
    return pd.DataFrame(
        {"uid": pd.Series(ids, dtype=object), "country": countries, "tier": tiers, "age": ages,
         "at": times}
    )  # fmt: skip


def _attributes(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("country", "tier", "age")}


@pytest.mark.parametrize("replay", [False, True], ids=["latest", "at_column"])
def test_assign_frame_equals_assign_row_by_row(replay: bool) -> None:
    sp = Splitter(FULL)
    df = _random_frame(3000, seed=7 + replay)
    out = sp.assign_frame(df, "uid", at_column="at" if replay else None)
    assert list(out.columns) == [*df.columns, *(c for k in FULL_KEYS for c in (k, f"{k}_reason"))]
    pd.testing.assert_frame_equal(out[df.columns], df)
    seen: set[str] = set()
    arms = {k: _arms(out, k) for k in FULL_KEYS}
    reasons = {k: _reasons(out, k) for k in FULL_KEYS}
    for i, row in enumerate(df.to_dict("records")):
        when = row["at"] if replay else None
        for key in FULL_KEYS:
            a = sp.assign(key, row["uid"], _attributes(row), at=when)
            got = (arms[key][i], reasons[key][i])
            assert got == (a.arm, a.reason), (i, key, row)
            seen.add(a.reason)
    expected = {"assigned", "missing_unit", "holdout", "layer_other", "targeting_miss",
                "not_exposed", "override", "stopped"}  # fmt: skip
    if replay:
        expected.add("not_started")
    assert expected <= seen


@pytest.mark.parametrize(
    "column",
    [
        pd.Series(np.arange(-500, 1500, dtype=np.int64)),
        pd.Series([*range(-500, 1400), *[None] * 100], dtype="Int64"),
        pd.Series([*map(str, range(1900)), *[None] * 100], dtype="string"),
        pd.Series([*range(1000), *map(str, range(1000, 1900)), *[None] * 100], dtype=object),
        pd.Series(np.arange(2000, dtype=np.uint32)),
    ],
    ids=["int64", "Int64", "string", "object", "uint32"],
)
def test_assign_frame_unit_kinds(column: pd.Series) -> None:
    sp = Splitter(FULL)
    df = pd.DataFrame({"uid": column, "country": "US", "tier": "premium", "age": 40.0})
    out = sp.assign_frame(df, "uid", experiments=["ranker", "window", "paused"])
    assert [c for c in out.columns if c not in df.columns] == [
        "ranker", "ranker_reason", "window", "window_reason", "paused", "paused_reason"
    ]  # fmt: skip
    keys = ("ranker", "window", "paused")
    arms = {k: _arms(out, k) for k in keys}
    reasons = {k: _reasons(out, k) for k in keys}
    for i, unit in enumerate(column.tolist()):
        unit = None if pd.isna(unit) else unit
        for key in keys:
            a = sp.assign(key, unit, {"country": "US", "tier": "premium", "age": 40.0})
            assert (arms[key][i], reasons[key][i]) == (a.arm, a.reason), (i, key)
    # 42 and 7 are forced whatever their spelling
    forced = _reasons(out, "ranker") == "override"
    assert set(np.flatnonzero(forced)) == {i for i, u in enumerate(column) if str(u) in ("42", "7")}


def test_frame_not_started_precedence() -> None:
    # before an experiment's first allocation step: not_started wins over holdout and layer
    sp = Splitter(FULL)
    df = pd.DataFrame({"uid": np.arange(2000), "country": "US"})
    df["at"] = pd.Timestamp("2026-10-20T00:00:00Z")  # before ranker's history starts
    out = sp.assign_frame(df, "uid", ["ranker", "search"], at_column="at")
    for i in range(0, 2000, 7):
        a = sp.assign("ranker", i, {"country": "US"}, at="2026-10-20T00:00:00Z")
        assert a.reason in ("not_started", "override")
        assert _reasons(out, "ranker")[i] == a.reason, i
    assert set(_reasons(out, "search")) == {"holdout", "layer_other", "assigned"}


def test_assign_frame_errors() -> None:
    sp = Splitter(FULL)
    df = pd.DataFrame({"uid": [1, 2]})
    with pytest.raises(ConfigError, match=r"unit_column 'user'.*uid"):
        sp.assign_frame(df, "user")
    with pytest.raises(ConfigError, match="unknown experiment 'nope'"):
        sp.assign_frame(df, "uid", experiments=["nope"])


# -- hot reload -----------------------------------------------------------------------------------

WEIGHTS = [(50, 0.5), (70, 0.8), (20, 1.0), (50, 0.3)]  # (control weight, exposure) per version


def _valid(v: int) -> str:
    control, exposure = WEIGHTS[v]
    return f"""\
experiments:
  - key: exp
    exposure: {exposure}
    arms:
      control: {{weight: {control}, payload: {{v: {v}}}}}
      treatment: {{weight: {100 - control}, payload: {{v: {v}}}}}
  - key: other
    targeting: 'tier == "gold"'
    arms: {{a: {{weight: 50, payload: {{v: {v}}}}}, b: {{weight: 50, payload: {{v: {v}}}}}}}
flags:
  - key: marker
    type: string
    default: v{v}
  - key: split
    type: number
    default: -1
    rules:
      - rollout: {{{v}: {10 + 20 * v}, {100 + v}: {90 - 20 * v}}}
"""


INVALID = [
    "experiments:\n  - key: exp\n    arms: {control: 50, treatment: 50\n",  # broken YAML
    _valid(1).replace("weight: 70", "weight: 60"),  # weights summing to 90
    "experiments: [{key: exp, arms: {control: 50, treatment: 50}, exposure: 50}]\n",
]


class _Hammer:
    """Threads calling the splitter in a loop, checking every answer against the valid
    versions; problems are collected, never raised in the thread."""

    def __init__(self, sp: Splitter, threads: int = 8) -> None:
        self.sp = sp
        self.refs = {}
        for v in range(len(WEIGHTS)):
            ref = Splitter(parse_config(yaml.safe_load(_valid(v))))
            self.refs[ref.version] = ref
        self.stop = threading.Event()
        self.problems: list[str] = []
        self.calls = [0] * threads
        self.versions_seen: set[str] = set()
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def __enter__(self) -> _Hammer:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)
            assert not t.is_alive()

    def _problem(self, text: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(text)

    def _run(self, index: int) -> None:
        rng = random.Random(index)
        refs = list(self.refs.values())
        while not self.stop.is_set():
            unit: Any = rng.randrange(10**6) if rng.random() < 0.5 else f"u{rng.randrange(10**6)}"
            attrs = {"tier": rng.choice(["gold", "free"])}
            try:
                a = self.sp.assign("exp", unit, attrs)
                if a not in [r.assign("exp", unit, attrs) for r in refs]:
                    self._problem(f"assign {unit!r}: {a}")
                if a.payload is not None and a.payload["v"] not in range(len(WEIGHTS)):
                    self._problem(f"payload {a.payload}")
                every = self.sp.assign_all(unit, attrs)
                if every not in [r.assign_all(unit, attrs) for r in refs]:
                    self._problem(f"assign_all {unit!r}: {every}")  # a mix of two snapshots
                d = self.sp.flag_details("marker", unit, attrs)
                ref = self.refs.get(d.version)
                if ref is None:
                    self._problem(f"flag from an unknown version {d.version}")
                else:
                    self.versions_seen.add(d.version)
                    if d != ref.flag_details("marker", unit, attrs):
                        self._problem(f"flag {d}")
                value = self.sp.flag("split", unit, attrs)
                if value not in [r.flag("split", unit, attrs) for r in refs]:
                    self._problem(f"split {unit!r}: {value}")
            except BaseException as exc:  # every exception is a failure
                self._problem(f"{type(exc).__name__}: {exc}")
            self.calls[index] += 1
            time.sleep(0)  # let the watcher thread in now and then


def _write_in_place_slowly(path: Path, text: str, pause: float) -> None:
    """An in-place writer that is slow to fill the file it truncated (a large file, a slow
    disk, an editor): the file stays empty for ``pause`` seconds."""
    with open(path, "w", encoding="utf-8") as f:
        f.flush()
        time.sleep(pause)
        f.write(text)


@pytest.mark.parametrize(
    "mode",
    [
        "atomic",
        "in_place",
    ],
)
def test_hot_reload_under_concurrent_readers(tmp_path: Path, mode: str) -> None:
    interval = 0.05
    path = tmp_path / "live.yaml"
    _write_atomic(path, _valid(0))
    sp = Splitter.from_file(path, watch=True, interval=interval)
    versions = {v: parse_config(yaml.safe_load(_valid(v))).version for v in range(len(WEIGHTS))}
    assert sp.version == versions[0]
    invalid_writes = 0
    last_valid = 0
    try:
        with _Hammer(sp) as hammer:
            for i in range(1, 101):
                if i % 2:
                    invalid_writes += 1
                    text = INVALID[(i // 2) % len(INVALID)]
                else:
                    last_valid = (i // 2) % len(WEIGHTS)
                    text = _valid(last_valid)
                if mode == "in_place" and i % 4 in (0, 1):
                    _write_in_place_slowly(path, text, pause=3 * interval)
                else:
                    _write_atomic(path, text)
                if i <= 60:  # wait until the splitter has seen this write
                    if i % 2:
                        assert _wait_for(lambda n=invalid_writes: sp.reload_errors >= n), i
                        if mode == "atomic":
                            assert sp.reload_errors == invalid_writes
                        # the last good snapshot keeps serving
                        assert sp.version == versions[last_valid]
                        assert sp.flag("marker", "u") == f"v{last_valid}"
                    else:
                        assert _wait_for(lambda v=last_valid: sp.version == versions[v]), i
                else:
                    time.sleep(0.003)
            assert i == 100 and last_valid == 50 % len(WEIGHTS)
            assert _wait_for(lambda: sp.version == versions[last_valid])
            time.sleep(4 * interval)  # and stays there
            assert sp.version == versions[last_valid]
            assert sp.flag("marker", "u") == f"v{last_valid}"
        assert hammer.problems == []
        assert min(hammer.calls) > 50
        assert len(hammer.versions_seen) == len(WEIGHTS)
        assert sp.reload_errors >= 30
        if mode == "atomic":
            assert sp.reload_errors <= invalid_writes
        assert sp.reloads >= 30
    finally:
        sp.close()


def test_invalid_file_keeps_the_last_good_snapshot(tmp_path: Path, caplog: Any) -> None:
    path = tmp_path / "live.yaml"
    _write_atomic(path, _valid(1))
    with Splitter.from_file(path) as sp:
        good = sp.version
        before = sp.assign("exp", "u-1")
        for n, text in enumerate(INVALID, 1):
            _write_in_place(path, text)
            with caplog.at_level("ERROR", logger="trafficsplit"):
                assert sp.reload() is False
            assert sp.reload_errors == n
            assert sp.version == good
            assert sp.assign("exp", "u-1") == before
        assert "still serving " + good in caplog.text
        path.unlink()  # a deleted file keeps the last good snapshot too
        assert sp.reload() is False
        assert sp.reload_errors == len(INVALID) + 1
        _write_in_place(path, _valid(2))
        assert sp.reload() is True
        assert sp.version != good
        assert sp.reload_errors == len(INVALID) + 1


def test_in_place_truncating_write_is_picked_up(tmp_path: Path) -> None:
    path = tmp_path / "live.yaml"
    _write_in_place(path, _valid(0))
    with Splitter.from_file(path, watch=True, interval=0.05) as sp:
        for v in (1, 2, 3, 0):
            _write_in_place(path, _valid(v))
            assert _wait_for(lambda v=v: sp.flag("marker", "u") == f"v{v}")
        assert sp.reload_errors == 0


def test_watching_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    _write_atomic(folder / "a.yaml", "layers: [{key: L}]\n")
    _write_atomic(folder / "b.yaml", _valid(0))
    with Splitter.from_file(folder, watch=True, interval=0.05) as sp:
        _write_atomic(folder / "c.yaml", "flags: [{key: extra, type: bool, default: true}]\n")
        assert _wait_for(lambda: sp.flag("extra", "u", default=None) is True)
        _write_atomic(folder / "d.yaml", "flags: [{key: extra, type: bool, default: false}]\n")
        assert _wait_for(lambda: sp.reload_errors == 1)  # a duplicate across files
        assert sp.flag("extra", "u") is True
        (folder / "d.yaml").unlink()
        (folder / "c.yaml").unlink()
        assert _wait_for(lambda: sp.flag("extra", "u", default=None) is None)


def test_close_stops_the_watcher(tmp_path: Path) -> None:
    path = tmp_path / "live.yaml"
    _write_atomic(path, _valid(0))
    sp = Splitter.from_file(path, watch=True, interval=0.02)
    watchers = [t for t in threading.enumerate() if t.name == "trafficsplit-watch"]
    assert watchers
    sp.close()
    sp.close()  # twice is fine
    _write_atomic(path, _valid(1))
    time.sleep(0.15)
    assert sp.flag("marker", "u") == "v0"
    assert sp.reload() is True  # explicit reloads still work
    assert sp.flag("marker", "u") == "v1"


def test_watcher_sees_a_same_size_file_with_the_same_mtime(tmp_path: Path) -> None:
    path = tmp_path / "live.yaml"
    _write_atomic(path, _valid(0))
    with Splitter.from_file(path, watch=True, interval=0.02) as sp:
        old = os.stat(path)
        new = _valid(3)  # same length as version 0: only the exposure digit differs
        assert len(new) == len(_valid(0))
        tmp = tmp_path / "next.yaml"
        tmp.write_text(new, encoding="utf-8")
        os.utime(tmp, ns=(old.st_atime_ns, old.st_mtime_ns))
        os.replace(tmp, path)
        assert _wait_for(lambda: sp.flag("marker", "u") == "v3", timeout=1.0)


# -- fork -----------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork with threads (Python 3.12+)
def test_watcher_restarts_in_a_forked_child(tmp_path: Path) -> None:
    path = tmp_path / "live.yaml"
    _write_atomic(path, _valid(0))
    sp = Splitter.from_file(path, watch=True, interval=0.05)
    report_r, report_w = os.pipe()
    go_r, go_w = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:  # the child writes nothing to the file
            try:
                os.close(report_r)
                os.close(go_w)
                before = sp.flag("marker", "u")
                os.write(report_w, f"ready {before}\n".encode())
                select.select([go_r], [], [], 10)
                t0 = time.monotonic()
                ok = _wait_for(lambda: sp.flag("marker", "u") == "v2", timeout=5.0)
                got = sp.flag("marker", "u")
                os.write(report_w, f"{ok} {got} {time.monotonic() - t0:.3f}\n".encode())
            finally:
                os._exit(0)
        os.close(report_w)
        os.close(go_r)
        assert _read_line(report_r, 10) == "ready v0"
        _write_atomic(path, _valid(2))
        os.write(go_w, b"go")
        line = _read_line(report_r, 15)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        ok, got, elapsed = line.split()
        assert (ok, got) == ("True", "v2"), line
        assert float(elapsed) < 5
        assert _wait_for(lambda: sp.flag("marker", "u") == "v2")  # the parent too
    finally:
        sp.close()
        os.close(report_r)
        os.close(go_w)


def _read_line(fd: int, timeout: float) -> str:
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no answer from the child within {timeout}s: {data!r}")
        chunk = os.read(fd, 1024)
        if not chunk:
            break
        data += chunk
    return data.decode().strip()


# -- asyncio --------------------------------------------------------------------------------------

_AUDIT: dict[str, Any] = {"thread": None, "events": []}
_IO_EVENTS = ("open", "socket.", "os.", "subprocess.", "sqlite3.", "shutil.", "time.sleep")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _AUDIT["thread"] == threading.get_ident() and event.startswith(_IO_EVENTS):
        _AUDIT["events"].append(event)


def test_assign_in_a_coroutine_does_no_io_and_does_not_stall_the_loop(tmp_path: Path) -> None:
    if not _AUDIT.get("installed"):
        sys.addaudithook(_audit)
        _AUDIT["installed"] = True
    path = tmp_path / "example.yaml"
    path.write_bytes(EXAMPLE.read_bytes())
    sp = Splitter.from_file(path, watch=True, interval=0.05)  # a watcher does I/O, elsewhere
    attrs = {"country": "US", "tier": "free"}

    async def main() -> tuple[int, float, int]:
        done = False
        beats = 0
        worst = 0.0

        async def heartbeat() -> None:
            nonlocal beats, worst
            last = time.perf_counter()
            while not done:
                await asyncio.sleep(0)
                now = time.perf_counter()
                worst = max(worst, now - last)
                last = now
                beats += 1

        task = asyncio.create_task(heartbeat())
        await asyncio.sleep(0)
        arms = 0
        _AUDIT["thread"] = threading.get_ident()
        try:
            for i in range(20_000):
                a = sp.assign("ranker-v2", i, attrs, at="2026-11-16T00:00:00Z")
                arms += a.arm is not None
                sp.assign_all(f"u{i}", attrs)
                sp.flag("new-reranker", i, attrs)
                if i % 100 == 0:
                    await asyncio.sleep(0)
        finally:
            _AUDIT["thread"] = None
        done = True
        await task
        return beats, worst, arms

    try:
        beats, worst, arms = asyncio.run(main())
    finally:
        sp.close()
    assert _AUDIT["events"] == []
    assert beats >= 150
    assert worst < 0.5
    assert arms > 0


def test_assign_frame_overrides_match_every_column_kind_like_assign() -> None:
    cfg = {
        "experiments": [
            {
                "key": "e",
                "arms": {"a": 50, "b": 50},
                "overrides": {"b": ["42", "-5", "007", "u-7"], "a": ["18446744073709551615"]},
            }
        ]
    }
    sp = Splitter(cfg)
    ints = [*range(-10, 60), 7, 2**63 - 1]
    columns = {
        "int64": pd.Series(ints, dtype="int64"),
        "Int64 with NA": pd.Series([*ints, None], dtype="Int64"),
        "uint64": pd.Series([18446744073709551615, 42, 7], dtype="uint64"),
        "str": pd.Series(["u-7", "42", "007", "7", None, "x"], dtype="str"),
        "object str": pd.Series(["u-7", "42", "007", "7", "x"], dtype=object),
        "object mixed": pd.Series(["u-7", 42, -5, b"x", None, 7], dtype=object),
    }
    for name, units in columns.items():
        frame = sp.assign_frame(pd.DataFrame({"u": units}), "u")
        expected = [sp.assign("e", None if pd.isna(u) else u) for u in units.tolist()]
        assert _reasons(frame, "e").tolist() == [a.reason for a in expected], name
        assert _arms(frame, "e").tolist() == [a.arm for a in expected], name
        assert "override" in _reasons(frame, "e").tolist(), name


@pytest.mark.parametrize("replay", [False, True], ids=["latest", "at_column"])
def test_assign_frame_with_categorical_units_equals_assign(replay: bool) -> None:
    # Dictionary-encoded ids are assigned once per category; the route (holdouts, layers,
    # status, time window) must still come out row by row as Splitter.assign has it.
    sp = Splitter(FULL)
    df = _random_frame(2000, seed=11 + replay)
    df["uid"] = df["uid"].map(lambda u: None if u is None else str(u)).astype("category")
    out = sp.assign_frame(df, "uid", at_column="at" if replay else None)
    seen = set()
    for key in FULL_KEYS:
        arms, reasons = _arms(out, key), _reasons(out, key)
        for i, row in enumerate(df.to_dict("records")):
            uid = None if pd.isna(row["uid"]) else row["uid"]
            a = sp.assign(key, uid, _attributes(row), at=row["at"] if replay else None)
            assert (arms[i], reasons[i]) == (a.arm, a.reason), (i, key, row)
            seen.add(a.reason)
    assert {"holdout", "layer_other", "stopped", "override", "missing_unit"} <= seen
    if replay:
        assert "not_started" in seen


def test_assign_columns_carries_the_weights_for_the_sample_ratio_check() -> None:
    """Splitter.assign_columns gives what assign_frame adds, buckets included, and the weights
    the rows were assigned under, so a BatchAssignment's SRM p-value is stats.srm's."""
    import pandas as pd

    config = {"experiments": [{"key": "e", "arms": {"a": 30, "b": 70}}]}
    sp = ts.Splitter(ts.parse_config(config))
    df = pd.DataFrame({"u": [f"x{i}" for i in range(20_000)]})
    b = sp.assign_columns(df, "u")["e"]
    frame = sp.assign_frame(df, "u")
    assert list(b.arm) == frame["e"].astype(object).tolist()
    assert (b.bucket == ts.Experiment("e", {"a": 30, "b": 70}).assign_batch(df["u"]).bucket).all()
    assert b.weights == (30.0, 70.0)
    counts = b.counts()
    assert b.srm_pvalue() == pytest.approx(ts.stats.srm(counts, {"a": 30, "b": 70}).pvalue)
    with pytest.raises(ts.ArgumentError, match="give at or at_column, not both"):
        sp.assign_columns(
            df.assign(t=pd.Timestamp("2026-01-01", tz="UTC")), "u", at_column="t", at="2026-01-01"
        )


def _twenty(overrides: bool) -> dict[str, Any]:
    rule = 'country in ["US", "CA"] and age >= 18'
    experiments = []
    for i in range(20):
        e: dict[str, Any] = {"key": f"e{i}", "arms": {"control": 50, "treatment": 50}}
        if i < 16:
            e.update(layer="search" if i < 8 else "ranking", layer_share=12.5)
        e["holdouts"] = ["h"]
        if i % 4 == 0:
            e["targeting"] = rule
        if overrides and i == 5:
            e["overrides"] = {"treatment": ["u-7"]}
        experiments.append(e)
    return {
        "layers": [{"key": "search"}, {"key": "ranking"}],
        "holdouts": [{"key": "h", "percent": 5}],
        "experiments": experiments,
    }


@pytest.mark.parametrize("overrides", [False, True], ids=["one call", "with an override"])
def test_assign_all_equals_assign_per_experiment(overrides: bool) -> None:
    """assign_all hands every experiment to the core in one call (a rule shared by five
    experiments evaluated once) when none has overrides; each answer is assign's."""
    sp = ts.Splitter(ts.parse_config(_twenty(overrides)))
    rng = np.random.default_rng(5)
    at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    reasons = set()
    for i in range(300):
        unit: Any = f"u-{i}" if i % 3 else int(rng.integers(0, 10**12))
        attrs = {"country": ["US", "DE", "CA"][i % 3], "age": int(rng.integers(10, 60))}
        every = sp.assign_all(unit, attrs, at=at)
        assert list(every) == [f"e{i}" for i in range(20)]
        for key, a in every.items():
            one = sp.assign(key, unit, attrs, at=at)
            assert (a.arm, a.bucket, a.reason) == (one.arm, one.bucket, one.reason), (key, unit)
            reasons.add(a.reason)
    assert {"assigned", "targeting_miss", "holdout", "layer_other"} <= reasons
    with pytest.raises(ts.UnitTypeError):
        sp.assign_all(1.5, {"country": "US"})
