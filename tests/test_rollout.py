"""RolloutController: guardrail decisions written atomically into real configuration files and
picked up by a Splitter's reload."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

import trafficsplit as ts
from trafficsplit import stats
from trafficsplit.analysis import Guardrail

START = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def _canary_file(tmp_path: Path, steps: list[dict] | None = None, suffix: str = ".yaml") -> Path:
    doc = {
        "rollouts": [
            {
                "key": "reranker",
                "arms": {"stable": {"model": "v1"}, "canary": {"model": "v2"}},
                "start": "2026-11-20T00:00:00Z",
                "steps": steps or [{"percent": 5}],
            }
        ],
        "experiments": [{"key": "other", "arms": {"control": 50, "treatment": 50}}],
    }
    path = tmp_path / f"config{suffix}"
    path.write_text(json.dumps(doc) if suffix == ".json" else yaml.safe_dump(doc, sort_keys=False))
    return path


def _data(
    n_stable: int, n_canary: int, slowdown: float, seed: int = 0
) -> dict[tuple[str, str], stats.Moments]:
    rng = np.random.default_rng(seed)
    return {
        ("latency", "stable"): stats.Moments.from_values(rng.normal(100, 20, n_stable)),
        ("latency", "canary"): stats.Moments.from_values(
            rng.normal(100 * (1 + slowdown), 20, n_canary)
        ),
    }


POLICY = ts.RolloutPolicy(guardrails={"latency": Guardrail(0.05)}, steps=(5, 25, 50, 100))


def _share(path: Path, at: dt.datetime) -> float:
    sp = ts.Splitter.from_file(path, watch=False)
    arms = [sp.assign("reranker", f"u{i}", at=at).arm for i in range(4000)]
    return arms.count("canary") / len(arms)


def test_advance_writes_the_next_step_and_servers_follow(tmp_path: Path) -> None:
    path = _canary_file(tmp_path)
    sp = ts.Splitter.from_file(path, watch=False)
    ctl = ts.RolloutController(path, "reranker", POLICY)
    now = START + dt.timedelta(hours=2)
    assert ctl.current_percent(now) == 5
    d = ctl.step(_data(9500, 500, 0.0), now=now)
    assert (d.action, d.percent_before, d.percent_after, d.written) == ("advance", 5, 25, True)
    entry = yaml.safe_load(path.read_text())["rollouts"][0]
    assert entry["steps"] == [{"percent": 5, "hold": "7200s"}, {"percent": 25}]
    assert sp.reload()  # the running server sees the new file
    later = now + dt.timedelta(minutes=1)
    assert sp.assign("reranker", "u1", at=later).reason == "assigned"
    assert 0.22 < _share(path, later) < 0.28
    # units that had the canary at 5 % keep it at 25 %
    before = {i for i in range(4000) if sp.assign("reranker", f"u{i}", at=now).arm == "canary"}
    after = {i for i in range(4000) if sp.assign("reranker", f"u{i}", at=later).arm == "canary"}
    assert before <= after
    assert ctl.current_percent(later) == 25


def test_harm_rolls_back_to_zero(tmp_path: Path) -> None:
    path = _canary_file(tmp_path, [{"percent": 1, "hold": "1h"}, {"percent": 5}])
    ctl = ts.RolloutController(path, "reranker", POLICY)
    now = START + dt.timedelta(hours=3)
    d = ctl.step(_data(9500, 500, 0.3), now=now)
    assert d.action == "rollback" and d.percent_after == 0 and "latency" in d.reason
    steps = yaml.safe_load(path.read_text())["rollouts"][0]["steps"]
    assert steps == [
        {"percent": 1, "hold": "1h"},  # steps that have run are kept as written
        {"percent": 5, "hold": "7200s"},
        {"percent": 0},
    ]
    assert _share(path, now + dt.timedelta(seconds=1)) == 0.0
    assert 0.03 < _share(path, now - dt.timedelta(minutes=1)) < 0.07  # history replays
    again = ctl.step(_data(9500, 500, 0.0), now=now + dt.timedelta(hours=1))
    assert again.action == "hold" and "rolled back" in again.reason and not again.written


def test_inconclusive_or_small_samples_hold_and_freeze_the_schedule(tmp_path: Path) -> None:
    path = _canary_file(tmp_path, [{"percent": 5}])
    before = path.read_bytes()
    ctl = ts.RolloutController(path, "reranker", POLICY)
    now = START + dt.timedelta(hours=1)
    d = ctl.step(_data(50, 10, 0.0), now=now)
    assert d.action == "hold" and "too few" in d.reason
    d = ctl.step(_data(2000, 100, 0.02), now=now)
    assert d.action == "hold" and "not yet shown non-inferior" in d.reason
    assert path.read_bytes() == before and not d.written
    # a planned schedule is frozen on hold: time alone does not advance a controlled canary
    (tmp_path / "planned").mkdir()
    path2 = _canary_file(tmp_path / "planned", [{"percent": 5, "hold": "1h"}, {"percent": 50}])
    ctl2 = ts.RolloutController(path2, "reranker", POLICY)
    d2 = ctl2.step(_data(2000, 100, 0.02), now=START + dt.timedelta(minutes=30))
    assert d2.action == "hold" and d2.written
    assert yaml.safe_load(path2.read_text())["rollouts"][0]["steps"] == [{"percent": 5}]
    assert ctl2.current_percent(START + dt.timedelta(days=3)) == 5


def test_min_hold_and_last_step(tmp_path: Path) -> None:
    path = _canary_file(tmp_path, [{"percent": 5}])
    policy = ts.RolloutPolicy(guardrails={"latency": 0.05}, steps=(5, 100), min_hold=3600)
    ctl = ts.RolloutController(path, "reranker", policy)
    d = ctl.step(_data(9500, 500, 0.0), now=START + dt.timedelta(minutes=10))
    assert d.action == "hold" and "minimum" in d.reason
    assert d.reason == "the step has lasted 600s of the 3600s minimum"
    d = ctl.step(_data(9500, 500, 0.0), now=START + dt.timedelta(hours=2))
    assert (d.action, d.percent_after) == ("advance", 100)
    d = ctl.step(_data(5000, 5000, 0.0), now=START + dt.timedelta(hours=3))
    assert d.action == "hold" and "last step" in d.reason


def test_experiment_exposure_advances_and_rolls_back(tmp_path: Path) -> None:
    doc = {"experiments": [{"key": "ranker", "exposure": 0.05, "arms": {"control": 50, "t": 50}}]}
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(doc))
    policy = ts.RolloutPolicy(guardrails={"latency": 0.05}, steps=(5, 25, 100))
    ctl = ts.RolloutController(path, "ranker", policy, treatment="t")
    rng = np.random.default_rng(3)
    ok = {
        ("latency", "control"): stats.Moments.from_values(rng.normal(100, 20, 5000)),
        ("latency", "t"): stats.Moments.from_values(rng.normal(100, 20, 5000)),
    }
    assert ctl.step(ok).action == "advance"
    assert json.loads(path.read_text())["experiments"][0]["exposure"] == 0.25
    bad = dict(ok)
    bad[("latency", "t")] = stats.Moments.from_values(rng.normal(130, 20, 5000))
    assert ctl.step(bad).action == "rollback"
    assert json.loads(path.read_text())["experiments"][0]["exposure"] == 0
    sp = ts.Splitter.from_file(path, watch=False)
    assert {sp.assign("ranker", f"u{i}").reason for i in range(500)} == {"not_exposed"}


def test_srm_holds(tmp_path: Path) -> None:
    path = _canary_file(tmp_path, [{"percent": 5}])
    ctl = ts.RolloutController(path, "reranker", POLICY)
    d = ctl.step(_data(9000, 1000, 0.0), now=START + dt.timedelta(hours=1))  # 10 % seen at 5 %
    assert d.action == "hold" and "sample-ratio mismatch" in d.reason


def test_a_bad_file_is_never_half_written(tmp_path: Path) -> None:
    path = _canary_file(tmp_path, [{"percent": 5}])
    ctl = ts.RolloutController(path, "reranker", POLICY)
    path.write_text("rollouts: [ {key: reranker, \n")  # someone broke the file meanwhile
    broken = path.read_bytes()
    with pytest.raises(ts.ConfigValidationError, match=r"invalid YAML"):
        ctl.step(_data(9500, 500, 0.0), now=START + dt.timedelta(hours=1))
    assert path.read_bytes() == broken
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_change_that_makes_the_config_invalid_is_refused(tmp_path: Path) -> None:
    path = _canary_file(tmp_path, [{"percent": 5}])
    ctl = ts.RolloutController(path, "reranker", POLICY)
    decision = ts.RolloutDecision("advance", "test", 5, 250, None, at=START + dt.timedelta(hours=1))
    before = path.read_bytes()
    invalid = r"(?s)would make the configuration invalid.*steps\[1\]\.percent.*250"
    with pytest.raises(ts.ConfigError, match=invalid):
        ctl.apply(decision)
    assert path.read_bytes() == before


def test_json_round_trip_and_file_mode(tmp_path: Path) -> None:
    path = _canary_file(tmp_path, [{"percent": 5}], suffix=".json")
    os.chmod(path, 0o640)
    ctl = ts.RolloutController(path, "reranker", POLICY)
    ctl.step(_data(9500, 500, 0.0), now=START + dt.timedelta(hours=1))
    assert json.loads(path.read_text())["rollouts"][0]["steps"][-1] == {"percent": 25}
    assert path.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"guardrails": {}}, r"at least one guardrail"),
        ({"guardrails": {"latency": 0.05}, "steps": (5, 1)}, r"steps must increase"),
        ({"guardrails": {"latency": 0.05}, "steps": (0, 50)}, r"percents in \(0, 100\]"),
        ({"guardrails": {"latency": 0.05}, "alpha": 0}, r"alpha must be in"),
    ],
)
def test_bad_policy(kwargs: dict, message: str) -> None:
    with pytest.raises(ts.ConfigError, match=message):
        ts.RolloutPolicy(**kwargs)


def test_unknown_key_and_blue_green(tmp_path: Path) -> None:
    path = _canary_file(tmp_path)
    with pytest.raises(ts.ConfigError, match=r"no rollout or experiment 'nope'"):
        ts.RolloutController(path, "nope", POLICY)
    doc = {"rollouts": [{"key": "bg", "type": "blue_green", "arms": {"blue": 1, "green": 2}}]}
    (tmp_path / "bg.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ts.ConfigError, match=r"only canary rollouts and experiments"):
        ts.RolloutController(tmp_path / "bg.yaml", "bg", POLICY)


def test_a_metrics_recorder_feeds_the_controller(tmp_path: Path) -> None:
    """The server-side loop: requests record latency per arm, the controller reads it."""
    path = _canary_file(tmp_path, [{"percent": 5}])
    sp = ts.Splitter.from_file(path, watch=False)
    rec = ts.MetricsRecorder()
    rng = np.random.default_rng(4)
    now = START + dt.timedelta(hours=1)
    for i in range(20_000):
        a = sp.assign("reranker", f"user-{i}", at=now)
        slow = 1.3 if a.arm == "canary" else 1.0
        rec.record("latency", a, float(rng.normal(100 * slow, 20)))
    moments = rec.moments()
    assert moments[("latency", "canary")].n + moments[("latency", "stable")].n == 20_000
    ctl = ts.RolloutController(path, "reranker", POLICY)
    d = ctl.step(rec, now=now)
    assert d.action == "rollback" and d.written
    assert sp.reload()
    later = now + dt.timedelta(seconds=1)
    assert {sp.assign("reranker", f"user-{i}", at=later).arm for i in range(300)} == {"stable"}
