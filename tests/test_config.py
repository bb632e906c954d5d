"""Configuration files: loading YAML/JSON files and folders, validation that reports every
problem at once (file, path inside it, what was expected), and what a valid configuration
compiles to (layers, holdouts, overrides, rollouts, flags)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

import trafficsplit as ts
from trafficsplit import ConfigError, ConfigIssue, ConfigValidationError, load_config, parse_config

from conftest import DATA

CONFIG = DATA / "config"
EXAMPLE = CONFIG / "example.yaml"

Expected = Sequence[tuple[str, str]]  # (path inside the file, regex on the message)


def _exp(key: str = "e", **fields: Any) -> dict[str, Any]:
    return {"key": key, "arms": {"control": 50, "treatment": 50}, **fields}


def _one(**fields: Any) -> dict[str, Any]:
    """A configuration with one experiment."""
    return {"experiments": [_exp(**fields)]}


def _flag(key: str = "f", **fields: Any) -> dict[str, Any]:
    return {"key": key, "type": "bool", "default": False, **fields}


def _canary(**fields: Any) -> dict[str, Any]:
    return {
        "rollouts": [
            {
                "key": "r",
                "arms": {"stable": {"model": "v1"}, "canary": {"model": "v2"}},
                "start": "2026-11-20T00:00:00Z",
                "steps": [{"percent": 1, "hold": "1h"}, {"percent": 100}],
                **fields,
            }
        ]
    }


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _write(path: Path, config: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(config), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _issues(*paths: str | Path) -> tuple[ConfigIssue, ...]:
    with pytest.raises(ConfigValidationError) as info:
        load_config(*paths)
    assert isinstance(info.value, ConfigError)
    assert isinstance(info.value, ValueError)
    return info.value.issues


def _check(issues: Sequence[ConfigIssue], expected: Expected, file: str | None = None) -> None:
    """The issues are exactly the expected ones: the same multiset of paths, and each message
    matches the regex given for its path."""
    got = sorted(i.path for i in issues)
    assert got == sorted(p for p, _ in expected), "\n".join(map(str, issues))
    remaining = list(issues)
    for path, pattern in expected:
        match = next(
            (i for i in remaining if i.path == path and re.search(pattern, i.message, re.S)),
            None,
        )
        assert match is not None, f"no issue at {path!r} matching {pattern!r} in:\n" + "\n".join(
            map(str, issues)
        )
        remaining.remove(match)
    if file is not None:
        assert {i.file for i in issues} == {file}
    for issue in issues:
        assert issue.message
        assert issue.path in str(issue)
        assert issue.file in str(issue)


# -- every broken configuration: (config, expected issues) --------------------------------------

THREE = {
    "experiments": [
        _exp("a"),
        _exp("b", arms={"x": 100}),
        _exp(
            "c",
            arms={"control": {"weight": 50}, "treatment": {"weight": "50%", "payload": {"m": 2}}},
        ),
    ]
}

BROKEN: dict[str, tuple[dict[str, Any], Expected]] = {
    "weights-not-summing-to-100": (
        _one(arms={"control": 50, "treatment": 40}),
        [("experiments[0].arms", r"sum to 100.*got 90.*control=50, treatment=40")],
    ),
    "weights-not-summing-long-form": (
        _one(arms={"control": {"weight": 60.5}, "treatment": {"weight": 40}}),
        [("experiments[0].arms", r"sum to 100.*got 100\.5")],
    ),
    "negative-weight": (
        _one(arms={"control": 110, "treatment": {"weight": -10}}),
        [
            ("experiments[0].arms.control", r"weight.*between 0 and 100.*got int 110"),
            ("experiments[0].arms.treatment.weight", r"weight.*between 0 and 100.*got int -10"),
        ],
    ),
    "weight-over-100": (
        _one(arms={"control": {"weight": 100.5}}),
        [("experiments[0].arms.control.weight", r"between 0 and 100.*got float 100\.5")],
    ),
    "non-numeric-weight-in-third-experiment": (
        THREE,
        [("experiments[2].arms.treatment.weight", r"expected a weight.*got str '50%'")],
    ),
    "boolean-weight": (
        _one(arms={"control": True, "treatment": 50}),
        [("experiments[0].arms.control", r"expected a weight.*got bool True")],
    ),
    "exposure-50-is-not-a-share": (
        _one(exposure=50),
        [("experiments[0].exposure", r"between 0 and 1.*share.*got int 50")],
    ),
    "unknown-arm-in-overrides": (
        _one(overrides={"treatmnet": ["qa-user-1"]}),
        [("experiments[0].overrides.treatmnet", r"unknown arm 'treatmnet'.*control, treatment")],
    ),
    "unit-forced-into-two-arms": (
        _one(overrides={"control": ["qa-1", 7], "treatment": ["7"]}),
        [("experiments[0].overrides.treatment[0]", r"'7'.*two arms.*'control'.*'treatment'")],
    ),
    "override-unit-of-wrong-type": (
        _one(overrides={"control": [1.5, True]}),
        [
            ("experiments[0].overrides.control[0]", r"string or an integer.*float 1\.5"),
            ("experiments[0].overrides.control[1]", r"string or an integer.*bool True"),
        ],
    ),
    "unknown-layer": (
        {"layers": [{"key": "ranking"}], "experiments": [_exp(layer="rankng", layer_share=10)]},
        [("experiments[0].layer", r"unknown layer 'rankng'.*ranking")],
    ),
    "layer-share-without-layer": (
        _one(layer_share=10),
        [("experiments[0].layer_share", r"'layer' is required with 'layer_share'")],
    ),
    "layer-share-out-of-range": (
        {"layers": [{"key": "L"}], "experiments": [_exp(layer="L", layer_share=140)]},
        [("experiments[0].layer_share", r"percent of the layer.*0-100.*got int 140")],
    ),
    "over-booked-layer": (
        {
            "layers": [{"key": "L"}],
            "experiments": [
                _exp("a", layer="L", layer_share=60),
                _exp("b", layer="L", layer_share=30),
                _exp("c", layer="L", layer_share=20),
            ],
        },
        [("experiments[2].layer_share", r"'L' is over-booked.*110.*a=60, b=30, c=20.*at most 100")],
    ),
    "unknown-holdout": (
        {"holdouts": [{"key": "global", "percent": 5}], "experiments": [_exp(holdouts=["glob"])]},
        [("experiments[0].holdouts[0]", r"unknown holdout 'glob'.*global")],
    ),
    "holdout-percent-120": (
        {"holdouts": [{"key": "global", "percent": 120}]},
        [("holdouts[0].percent", r"percentage between 0 and 100.*got int 120")],
    ),
    "bad-targeting": (
        _one(targeting='country == "US" and tier =='),
        [("experiments[0].targeting", r"expected an operand.*line 1, column 28")],
    ),
    "targeting-not-a-string": (
        _one(targeting=["US"]),
        [("experiments[0].targeting", r"targeting expression \(a string\)")],
    ),
    "targeting-unknown-list": (
        _one(targeting="user_id in @beta"),
        [("experiments[0].targeting", r"unknown list '@beta'.*line 1, column 12")],
    ),
    "bad-status": (
        _one(status="paused"),
        [("experiments[0].status", r"one of draft, running, stopped.*'paused'")],
    ),
    "end-before-start": (
        _one(start="2026-11-10T00:00:00Z", end="2026-11-01T00:00:00Z"),
        [("experiments[0].end", r"end must be after start")],
    ),
    "unparseable-time": (
        _one(start="next tuesday"),
        [("experiments[0].start", r"ISO-8601.*'next tuesday'")],
    ),
    "unknown-top-level-key": (
        {"experiment": [_exp()], "experiments": []},
        [("experiment", r"unknown key.*layers, holdouts, experiments, flags, rollouts")],
    ),
    "unknown-experiment-key": (
        _one(weights={"control": 50}),
        [("experiments[0].weights", r"unknown key.*arms.*exposure.*overrides")],
    ),
    "duplicate-experiment-key": (
        {"experiments": [_exp("e"), _exp("other"), _exp("e")]},
        [("experiments[2].key", r"experiment 'e' is defined twice.*experiments\[0\]\.key")],
    ),
    "rollout-reuses-an-experiment-key": (
        {"experiments": [_exp("e")], "rollouts": [{"key": "e", "type": "blue_green"}]},
        [("rollouts[0].key", r"'e' is defined twice.*experiments\[0\]\.key")],
    ),
    "duplicate-layer-holdout-and-flag": (
        {
            "layers": [{"key": "L"}, {"key": "L"}],
            "holdouts": [{"key": "h", "percent": 1}, {"key": "h", "percent": 2}],
            "flags": [_flag("f"), _flag("f")],
        },
        [
            ("layers[1].key", r"layer 'L' is defined twice.*layers\[0\]"),
            ("holdouts[1].key", r"holdout 'h' is defined twice.*holdouts\[0\]"),
            ("flags[1].key", r"flag 'f' is defined twice.*flags\[0\]"),
        ],
    ),
    "history-step-without-at": (
        _one(
            allocated_at="2026-11-15T00:00:00Z",
            history=[{"weights": {"control": 90, "treatment": 10}}],
        ),
        [("experiments[0].history[0]", r"missing required key 'at'")],
    ),
    "section-not-a-list": (
        {"experiments": {"key": "e"}},
        [("experiments", r"expected a list, got dict")],
    ),
    "flag-default-of-wrong-type": (
        {"flags": [_flag(default="no")]},
        [("flags[0].default", r"expected a bool value, got str 'no'")],
    ),
    "flag-values-of-wrong-type": (
        {
            "flags": [
                {"key": "n", "type": "number", "default": True, "rules": [{"value": "3"}]},
                {"key": "s", "type": "string", "default": 3},
            ]
        },
        [
            ("flags[0].default", r"expected a number value, got bool True"),
            ("flags[0].rules[0].value", r"expected a number value, got str '3'"),
            ("flags[1].default", r"expected a string value, got int 3"),
        ],
    ),
    "flag-unknown-type": (
        {"flags": [{"key": "f", "type": "boolean", "default": False}]},
        [("flags[0].type", r"one of bool, string, number, json.*'boolean'")],
    ),
    "flag-rule-with-value-and-rollout": (
        {"flags": [_flag(rules=[{"value": True, "rollout": {True: 50, False: 50}}])]},
        [("flags[0].rules[0]", r"exactly one of the keys 'value' or 'rollout', got both")],
    ),
    "flag-rule-with-neither": (
        {"flags": [_flag(rules=[{"when": 'tier == "a"'}])]},
        [("flags[0].rules[0]", r"exactly one of the keys 'value' or 'rollout', got neither")],
    ),
    "flag-rule-bad-targeting": (
        {"flags": [_flag(rules=[{"when": "tier = 'a'", "value": True}])]},
        [("flags[0].rules[0].when", r"line 1, column 6")],
    ),
    "flag-rollout-weights-not-summing-to-100": (
        {"flags": [_flag(rules=[{"rollout": {True: 10, False: 80}}])]},
        [("flags[0].rules[0].rollout", r"rollout weights must sum to 100, got 90")],
    ),
    "unknown-prerequisite-flag": (
        {"flags": [_flag("a"), _flag("b", prerequisites=[{"flag": "c", "value": True}])]},
        [("flags[1].prerequisites[0]", r"unknown flag 'c'")],
    ),
    "prerequisite-cycle": (
        {
            "flags": [
                _flag("a", prerequisites=[{"flag": "b", "value": True}]),
                _flag("b", prerequisites=[{"flag": "a", "value": True}]),
            ]
        },
        [("flags[0].prerequisites", r"cycle: a -> b -> a")],
    ),
    "prerequisite-on-itself": (
        {"flags": [_flag("a", prerequisites=[{"flag": "a", "value": True}])]},
        [("flags[0].prerequisites", r"cycle: a -> a")],
    ),
    "malformed-prerequisite": (
        {"flags": [_flag("a"), _flag("b", prerequisites=[{"flag": "a"}])]},
        [("flags[1].prerequisites[0]", r"missing required key 'value'")],
    ),
    "canary-steps-going-down": (
        _canary(
            steps=[{"percent": 10, "hold": "1h"}, {"percent": 50, "hold": "1d"}, {"percent": 5}]
        ),
        [("rollouts[0].steps[2].percent", r"only go up \(5 after 50\)")],
    ),
    "canary-step-after-roll-back": (
        _canary(
            steps=[{"percent": 10, "hold": "1h"}, {"percent": 0, "hold": "1h"}, {"percent": 5}]
        ),
        [("rollouts[0].steps[2]", r"nothing may follow the roll-back step at .*steps\[1\]")],
    ),
    "canary-without-start": (
        _canary(start=None),
        [("rollouts[0]", r"missing required key 'start'")],
    ),
    "canary-bad-hold": (
        _canary(steps=[{"percent": 10, "hold": "soon"}, {"percent": 100}]),
        [("rollouts[0].steps[0].hold", r"duration such as 30m, 2h or 1d.*'soon'")],
    ),
    "rollout-with-three-arms": (
        _canary(arms={"a": None, "b": None, "c": None}),
        [("rollouts[0].arms", r"exactly two arms")],
    ),
    "rollout-unknown-type": (
        {"rollouts": [{"key": "r", "type": "linear"}]},
        [("rollouts[0].type", r"one of canary, blue_green, got str 'linear'")],
    ),
    "blue-green-unknown-active-arm": (
        {
            "rollouts": [
                {
                    "key": "stack",
                    "type": "blue_green",
                    "arms": {"blue": {"c": "a"}, "green": {"c": "b"}},
                    "active": "red",
                }
            ]
        },
        [("rollouts[0].active", r"expected 'blue' or 'green', got str 'red'")],
    ),
    "huge-integer-weight-and-exposure": (
        _one(arms={"control": 10**400, "treatment": 50}, exposure=-(10**400)),
        [
            ("experiments[0].arms.control", r"between 0 and 100.*got int 1000"),
            ("experiments[0].exposure", r"between 0 and 1.*got int -1000"),
        ],
    ),
    "layer-not-a-string": (
        {"layers": [{"key": "L"}], "experiments": [_exp(layer=["L"], layer_share=10)]},
        [("experiments[0].layer", r"expected a layer key, got list")],
    ),
    "prerequisite-flag-not-a-string": (
        {"flags": [_flag("a"), _flag("b", prerequisites=[{"flag": ["a"], "value": True}])]},
        [("flags[1].prerequisites[0].flag", r"expected a flag key, got list")],
    ),
    "rollout-with-experiment-only-key": (
        _canary(exposure=0.5),
        [("rollouts[0].exposure", r"unknown key.*steps.*active")],
    ),
}

# Paths inside configurations written by people (not by yaml.safe_dump) keep None as "absent".
BROKEN["canary-without-start"][0]["rollouts"][0].pop("start")


@pytest.mark.parametrize(("config", "expected"), list(BROKEN.values()), ids=list(BROKEN))
def test_broken_configuration_yaml(
    tmp_path: Path, config: dict[str, Any], expected: Expected
) -> None:
    path = _write(tmp_path / "config.yaml", config)
    _check(_issues(path), expected, str(path))


def _all_keys(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return [*value, *(k for v in value.values() for k in _all_keys(v))]
    if isinstance(value, list):
        return [k for v in value for k in _all_keys(v)]
    return []


# JSON objects have string keys only: the cases with bool mapping keys are YAML-only.
JSON_CASES = {k: v for k, v in BROKEN.items() if not any(map(_is_bool, _all_keys(v[0])))}


@pytest.mark.parametrize(("config", "expected"), list(JSON_CASES.values()), ids=list(JSON_CASES))
def test_broken_configuration_json_and_mapping(
    tmp_path: Path, config: dict[str, Any], expected: Expected
) -> None:
    path = _write(tmp_path / "config.json", config)
    _check(_issues(path), expected, str(path))
    with pytest.raises(ConfigValidationError) as info:
        parse_config(config, "inline")
    _check(info.value.issues, expected, "inline")


# Broken configurations whose problems each appear once, at their own path.
IMPERFECT = [
    pytest.param(
        {"experiments": [{"key": "e", "exposure": 0.5}]},
        [("experiments[0]", r"missing required key 'arms'")],
        id="missing-arms",
    ),
    pytest.param(
        {"holdouts": [{"key": "global"}]},
        [("holdouts[0]", r"missing required key 'percent'")],
        id="holdout-without-percent",
    ),
    pytest.param(
        {"experiments": [{"arms": {"a": 100}}]},
        [("experiments[0]", r"missing required key 'key'")],
        id="experiment-without-key",
    ),
    pytest.param(
        _one(
            allocated_at="2026-11-15T00:00:00Z",
            history=[{"at": "2026-11-01T00:00:00Z", "weights": {"control": 90, "treatmnt": 10}}],
        ),
        [("experiments[0].history[0].weights.treatmnt", r"unknown arm 'treatmnt'")],
        id="history-names-unknown-arm",
    ),
    pytest.param(
        _one(history=[{"at": "2026-11-01T00:00:00Z", "weights": {"control": 90, "treatment": 10}}]),
        [("experiments[0]", r"allocated_at is required")],
        id="history-without-allocated-at",
    ),
    pytest.param(
        _one(
            allocated_at="2026-11-15T00:00:00Z",
            history=[{"at": "2026-11-01T00:00:00Z", "weights": {"control": 90, "treatment": 20}}],
        ),
        [("experiments[0].history[0].weights", r"sum to 100.*110")],
        id="history-weights-not-summing-to-100",
    ),
    pytest.param(
        _one(salt=5, buckets=0),
        [
            ("experiments[0].salt", r"string"),
            ("experiments[0].buckets", r"1 and 1,000,000|1 to 1,000,000"),
        ],
        id="bad-salt-and-buckets",
    ),
    pytest.param(
        _canary(
            steps=[{"percent": 500, "hold": "1h"}, {"percent": "x", "hold": "soon"}, {"percent": 1}]
        ),
        [
            ("rollouts[0].steps[0].percent", r"0-100.*500"),
            ("rollouts[0].steps[1].percent", r"0-100.*'x'"),
            ("rollouts[0].steps[1].hold", r"duration.*'soon'"),
        ],
        id="canary-several-bad-steps",
    ),
]


@pytest.mark.parametrize(("config", "expected"), IMPERFECT)
def test_broken_configuration_reported_once_at_its_path(
    tmp_path: Path, config: dict[str, Any], expected: Expected
) -> None:
    path = _write(tmp_path / "config.yaml", config)
    _check(_issues(path), expected, str(path))


def test_rollout_payloads_that_are_not_json_are_reported_per_arm(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "rollouts:\n  - key: stack\n    type: blue_green\n"
        "    arms: {blue: {since: 2026-11-20}, green: {since: 2026-11-21}}\n",
        encoding="utf-8",
    )
    expected = [
        ("rollouts[0].arms.blue", r"JSON.*date"),
        ("rollouts[0].arms.green", r"JSON.*date"),
    ]
    _check(_issues(path), expected, str(path))


def test_exposure_as_percent_gets_the_same_hint_as_experiment() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 0\.5"):
        ts.Experiment("e", {"a": 50, "b": 50}, exposure=50)
    with pytest.raises(ConfigValidationError) as info:
        parse_config(_one(exposure=50))
    _check(info.value.issues, [("experiments[0].exposure", r"did you mean 0\.5")])


def test_key_repeated_within_one_yaml_mapping(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "experiments:\n  - key: e\n    arms: {a: 50, b: 50}\n    exposure: 0.5\n"
        "    exposure: 0.7\n",
        encoding="utf-8",
    )
    _check(
        _issues(path),
        [("", r"invalid YAML at line 5, column 5: key 'exposure' is repeated \(first at line 4\)")],
        str(path),
    )


# -- several problems, several files ------------------------------------------------------------


def test_every_problem_of_one_file_is_reported_together() -> None:
    path = CONFIG / "broken.yaml"
    with pytest.raises(ConfigValidationError) as info:
        load_config(path)
    _check(
        info.value.issues,
        [
            ("holdouts[0].percent", r"between 0 and 100.*120"),
            ("experiments[0].holdouts[0]", r"unknown holdout 'global-2027'"),
            ("experiments[0].exposure", r"between 0 and 1.*got int 50"),
            ("experiments[0].arms.treatment.weight", r"expected a weight.*'fifty'"),
            ("experiments[1].layer", r"unknown layer 'rankng'.*ranking"),
            ("experiments[1].status", r"draft, running, stopped.*'paused'"),
            ("flags[0].default", r"bool value.*'no'"),
            ("flags[0].rules[0].when", r"expected an operand.*line 1, column 9"),
        ],
        str(path),
    )
    message = str(info.value)
    assert message.startswith("8 problems in the configuration:")
    for issue in info.value.issues:
        assert f"{path}: {issue.path}: " in message


def test_duplicate_keys_across_files_of_a_folder_name_both_places() -> None:
    folder = CONFIG / "dup_dir"
    a, b = str(folder / "a.yaml"), str(folder / "b.yaml")
    issues = _issues(folder)
    _check(
        issues,
        [
            ("layers[0].key", r"layer 'ranking' is defined twice"),
            ("experiments[1].key", r"experiment 'ranker-v2' is defined twice"),
            ("flags[0].key", r"flag 'dark-mode' is defined twice"),
        ],
        b,  # the later file in sorted order is the duplicate ...
    )
    for issue in issues:  # ... and each message names the first place too
        assert re.search(re.escape(a) + r": (layers|experiments|flags)\[0\]\.key", issue.message)


def test_duplicates_across_files_given_separately(tmp_path: Path) -> None:
    one = _write(tmp_path / "one.yaml", {"experiments": [_exp("e")]})
    two = _write(tmp_path / "two.json", {"experiments": [_exp("x"), _exp("e")]})
    issues = _issues(one, two)
    _check(issues, [("experiments[1].key", rf"'e' is defined twice.*{re.escape(str(one))}")])
    assert issues[0].file == str(two)


def test_problems_in_several_files_are_all_reported(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    a = _write(folder / "a.yaml", {"experiments": [_exp("e", exposure=2)]})
    b = _write(folder / "b.json", {"flags": [_flag(default="yes")]})
    c = folder / "c.yml"
    c.write_text("experiments: [ {key: x, arms: {a: 100}\n", encoding="utf-8")
    issues = _issues(folder)
    # A file that does not parse is reported on its own; the others are not validated then.
    assert [(i.file, i.path) for i in issues] == [(str(c), "")]
    c.unlink()
    issues = _issues(folder)
    assert sorted((i.file, i.path) for i in issues) == [
        (str(a), "experiments[0].exposure"),
        (str(b), "flags[0].default"),
    ]


def test_invalid_yaml_names_line_and_column() -> None:
    path = CONFIG / "invalid.yaml"
    issues = _issues(path)
    _check(issues, [("", r"^invalid YAML at line 4, column 18: mapping values")], str(path))


def test_invalid_yaml_in_a_folder_and_unclosed_flow(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "a.yaml"
    path.parent.mkdir()
    path.write_text("experiments:\n  - key: e\n    arms: [a, b\n", encoding="utf-8")
    _check(_issues(path.parent), [("", r"invalid YAML at line \d+, column \d+")], str(path))


def test_invalid_json_names_line_and_column() -> None:
    path = CONFIG / "invalid.json"
    issues = _issues(path)
    _check(
        issues, [("", r"^invalid JSON at line 3, column 49: Expecting property name")], str(path)
    )


def test_several_unparseable_files_are_all_reported() -> None:
    issues = _issues(CONFIG / "invalid.yaml", CONFIG / "invalid.json")
    assert [i.file for i in issues] == [str(CONFIG / "invalid.yaml"), str(CONFIG / "invalid.json")]


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a configuration")
    _check(_issues(tmp_path), [("", r"no \.yaml, \.yml or \.json files")], str(tmp_path))


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    _check(_issues(missing), [("", r"no such file or directory")], str(missing))
    _check(_issues(EXAMPLE, missing), [("", r"no such file")], str(missing))


def test_missing_file_does_not_hide_other_problems(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    issues = _issues(missing, CONFIG / "invalid.json")
    assert [i.file for i in issues] == [str(missing), str(CONFIG / "invalid.json")]


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- key: e\n  arms: {a: 100}\n", encoding="utf-8")
    _check(_issues(path), [("", r"expected a mapping, got list")], str(path))


def test_load_config_needs_a_path() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        load_config()


def test_validation_error_is_a_config_error_with_every_issue() -> None:
    with pytest.raises(ValueError) as info:
        parse_config({"experiments": [_exp(exposure=3), _exp("f", status="on")]}, "inline.yaml")
    err = info.value
    assert isinstance(err, ts.Error)
    assert isinstance(err, ConfigValidationError)
    assert [str(i) for i in err.issues] == [
        "inline.yaml: experiments[0].exposure: expected an exposure between 0 and 1 "
        "(a share of units), got int 3; did you mean 0.03 (3 percent)?",
        "inline.yaml: experiments[1].status: expected one of draft, running, stopped, got str 'on'",
    ]
    assert str(ConfigIssue("", "", "bare")) == "bare"
    assert str(ConfigIssue("", "a.b", "m")) == "a.b: m"


# -- valid configurations ------------------------------------------------------------------------


def test_example_compiles() -> None:
    snap = load_config(EXAMPLE)
    assert list(snap.experiments) == ["ranker-v2", "search-ui", "reranker-canary", "serving-stack"]
    assert list(snap.flags) == ["new-reranker"]
    assert snap.sources == (str(EXAMPLE),)
    assert re.fullmatch(r"[0-9a-f]{12}", snap.version)
    ranker = snap.experiments["ranker-v2"]
    assert ranker.layer == "ranking"
    assert ranker.layer_share == 40
    assert ranker.holdouts == ("global-2027",)
    assert ranker.experiment.exposure == 0.5
    assert ranker.experiment.weights == {"control": 50, "treatment": 50}
    assert len(ranker.experiment.steps) == 2
    assert dict(ranker.overrides) == {"qa-user-1": "treatment", "42": "treatment"}
    assert dict(snap.layers["ranking"].ranges) == {
        "ranker-v2": (0, 4000),
        "search-ui": (4000, 7000),
    }
    assert snap.holdouts["global-2027"].threshold == 500
    canary = snap.experiments["reranker-canary"].experiment
    assert canary.arm_names == ("stable", "canary")
    assert [s.weights["canary"] for s in canary.steps] == [1, 10, 50, 100]
    blue_green = snap.experiments["serving-stack"].experiment
    assert blue_green.weights == {"blue": 100, "green": 0}
    flag = snap.flags["new-reranker"]
    assert flag.type == "bool"
    assert flag.default is False
    assert len(flag.rules) == 2


def test_the_same_configuration_in_json_has_the_same_version(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    as_json = json.loads(json.dumps(data, default=lambda d: d.isoformat()))
    # JSON object keys are strings: a bool flag's rollout is written in the list form there
    as_json["flags"][0]["rules"][1]["rollout"] = [
        {"value": True, "weight": 10},
        {"value": False, "weight": 90},
    ]
    path = tmp_path / "example.json"
    path.write_text(json.dumps(as_json), encoding="utf-8")
    from_json = load_config(path)
    from_yaml = load_config(EXAMPLE)
    assert list(from_json.experiments) == list(from_yaml.experiments)
    for key, e in from_yaml.experiments.items():
        assert from_json.experiments[key].experiment.bucket_map().tolist() == (
            e.experiment.bucket_map().tolist()
        )
    assert parse_config(data).version == from_yaml.version  # the version hashes content only
    copy = tmp_path / "copy.yaml"
    shutil.copy(EXAMPLE, copy)
    assert load_config(copy).version == from_yaml.version
    data["experiments"][1]["arms"]["control"] = 40
    data["experiments"][1]["arms"]["treatment"] = 60
    assert parse_config(data).version != from_yaml.version


def test_folder_files_are_merged_in_sorted_order() -> None:
    folder = CONFIG / "split"
    snap = load_config(folder)
    # notes.txt and the hidden .draft.yaml are not read
    assert snap.sources == tuple(
        str(folder / f) for f in ("a-layers.yaml", "b-search.json", "c-ranker.yml")
    )
    assert list(snap.experiments) == ["search-ui", "ranker-v2"]
    # experiments take consecutive layer ranges in configuration (= sorted file) order
    assert dict(snap.layers["ranking"].ranges) == {
        "search-ui": (0, 3000),
        "ranker-v2": (3000, 7000),
    }
    assert snap.experiments["ranker-v2"].holdouts == ("global",)
    assert list(snap.flags) == ["dark-mode"]


def test_paths_given_separately_merge_in_the_order_given(tmp_path: Path) -> None:
    folder = CONFIG / "split"
    first = load_config(folder / "c-ranker.yml", folder / "a-layers.yaml", folder / "b-search.json")
    assert dict(first.layers["ranking"].ranges) == {
        "ranker-v2": (0, 4000),
        "search-ui": (4000, 7000),
    }
    # a folder and a file together
    extra = _write(tmp_path / "z.yaml", {"experiments": [_exp("z")]})
    snap = load_config(folder, extra)
    assert list(snap.experiments) == ["search-ui", "ranker-v2", "z"]


def test_empty_document_is_an_empty_configuration(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    snap = load_config(path)
    assert dict(snap.experiments) == {} and dict(snap.flags) == {}


def test_times_labels_and_descriptions(tmp_path: Path) -> None:
    path = tmp_path / "times.yaml"
    path.write_text(
        "version: 2026-11 release\n"
        "experiments:\n"
        "  - key: a\n"
        "    description: {owner: search, ticket: 12}\n"
        "    start: 2026-11-10\n"  # a date alone: midnight UTC
        "    end: 1795132800\n"  # epoch seconds: 2026-11-20T00:00:00Z
        "    arms: {x: 50, y: 50}\n"
        "  - key: b\n"
        "    start: 2026-11-10T01:00:00+01:00\n"
        "    end: 2026-11-20T00:00:00\n"  # no offset: UTC
        "    arms: {x: 50, y: 50}\n",
        encoding="utf-8",
    )
    snap = load_config(path)
    for key in ("a", "b"):
        e = snap.experiments[key]
        assert e.start_us == 1_794_268_800 * 10**6  # 2026-11-10T00:00:00Z
        assert e.end_us == 1_795_132_800 * 10**6


def test_layer_ranges_round_and_may_leave_a_remainder() -> None:
    snap = parse_config(
        {
            "layers": [{"key": "L", "buckets": 1000}],
            "experiments": [
                _exp("a", layer="L", layer_share=33.35),
                _exp("b", layer="L", layer_share=33.3),
                _exp("c", layer="L", layer_share=0),
            ],
        }
    )
    # floor(share / 100 * B + 0.5), consecutive, from 0
    assert dict(snap.layers["L"].ranges) == {"a": (0, 334), "b": (334, 667), "c": (667, 667)}


def test_full_layer_is_accepted() -> None:
    snap = parse_config(
        {
            "layers": [{"key": "L"}],
            "experiments": [
                _exp("a", layer="L", layer_share=60),
                _exp("b", layer="L", layer_share=40),
            ],
        }
    )
    assert dict(snap.layers["L"].ranges) == {"a": (0, 6000), "b": (6000, 10_000)}


def test_overrides_normalise_integers_to_decimal_text() -> None:
    snap = parse_config(_one(overrides={"control": [7, "qa"], "treatment": [-3, 2**70]}))
    assert dict(snap.experiments["e"].overrides) == {
        "7": "control",
        "qa": "control",
        "-3": "treatment",
        str(2**70): "treatment",
    }
    # the same unit listed twice for the same arm is fine
    parse_config(_one(overrides={"control": [7, "7"]}))


def test_arms_as_a_list_and_payloads_are_frozen() -> None:
    snap = parse_config(
        _one(
            arms=[
                {"name": "control", "weight": 30, "payload": {"model": "v1", "k": [1, 2]}},
                {"name": "treatment", "weight": 70},
            ]
        )
    )
    e = snap.experiments["e"].experiment
    assert e.weights == {"control": 30, "treatment": 70}
    payload = e.arms[0].payload
    assert payload == {"model": "v1", "k": (1, 2)}
    with pytest.raises(TypeError):
        payload["model"] = "v2"  # type: ignore[index]


def test_flag_rollout_values_keep_their_order_and_types() -> None:
    snap = parse_config(
        {
            "flags": [
                {
                    "key": "colour",
                    "type": "string",
                    "default": "grey",
                    "rules": [
                        {"when": 'tier == "gold"', "value": "gold"},
                        {
                            "rollout": [
                                {"value": "red", "weight": 25},
                                {"value": "blue", "weight": 75},
                            ]
                        },
                    ],
                },
                {"key": "limits", "type": "json", "default": {"max": 3, "tags": ["a"]}},
                {"key": "ratio", "type": "number", "default": 0.5, "enabled": False},
            ]
        }
    )
    colour = snap.flags["colour"]
    assert colour.rules[1].rollout_values == ("red", "blue")
    assert colour.rules[1].rollout is not None
    assert colour.rules[1].rollout.weights == {"v0": 25, "v1": 75}
    assert colour.rules[1].rollout.key == "colour/rule1"
    assert snap.flags["limits"].default == {"max": 3, "tags": ("a",)}
    assert snap.flags["ratio"].enabled is False


def test_canary_compiles_to_a_history_of_steps() -> None:
    snap = parse_config(
        _canary(
            steps=[
                {"percent": 1, "hold": "90s"},
                {"percent": 5, "hold": "15m"},
                {"percent": 20, "hold": 3600},
                {"percent": 20, "hold": "1d"},
                {"percent": 100},
            ]
        )
    )
    e = snap.experiments["r"].experiment
    assert [s.weights["canary"] for s in e.steps] == [1, 5, 20, 20, 100]
    starts = [s.effective.isoformat() for s in e.steps]
    assert starts == [
        "2026-11-20T00:00:00+00:00",
        "2026-11-20T00:01:30+00:00",
        "2026-11-20T00:16:30+00:00",
        "2026-11-20T01:16:30+00:00",
        "2026-11-21T01:16:30+00:00",
    ]


def test_canary_roll_back_returns_every_unit_to_stable() -> None:
    snap = parse_config(_canary(steps=[{"percent": 10, "hold": "1h"}, {"percent": 0}]))
    e = snap.experiments["r"].experiment
    assert [s.weights["canary"] for s in e.steps] == [10, 0]
    units = [f"u{i}" for i in range(2000)]
    during = [e.assign(u, at="2026-11-20T00:30:00Z").arm for u in units]
    after = [e.assign(u, at="2026-11-20T02:00:00Z").arm for u in units]
    assert 100 < during.count("canary") < 300
    assert set(after) == {"stable"}


# -- editing one entry keeps the rest of the file --------------------------------------------

_COMMENTED = """\
# Ranking experiments; owner: search-quality
experiments:
  # the long-running ranker test
  - key: ranker
    arms: {control: 50, treatment: 50}   # flow style inside is fine
    exposure: 0.2
  - key: banner  # kept as written
    arms:
      control: 50
      bold: 50

rollouts:
  - key: reranker
    arms: {stable: {model: v1}, canary: {model: v2}}
    start: 2026-11-20T00:00:00Z
    steps:
      - {percent: 5, hold: 1h}
      - {percent: 50, hold: 1h}
# trailing note
"""


def test_edit_entry_rewrites_only_that_entry(tmp_path: Path) -> None:
    from trafficsplit.config import edit_entry

    path = tmp_path / "experiments.yaml"
    path.write_text(_COMMENTED)
    edit_entry(path, "ranker", lambda e: e.update(exposure=0.5))
    text = path.read_text()
    before, after = (
        _COMMENTED.split("  - key: ranker\n")[0],
        _COMMENTED.split("    exposure: 0.2\n")[1],
    )
    assert text.startswith(before)  # the header and the comment above the entry
    assert text.endswith(after)  # the next entry, its comment, the rollouts and the trailing note
    assert yaml.safe_load(text)["experiments"][0] == {
        "key": "ranker",
        "arms": {"control": 50, "treatment": 50},
        "exposure": 0.5,
    }
    edit_entry(path, "reranker", lambda e: e["steps"].append({"percent": 100, "hold": "1h"}))
    text = path.read_text()
    assert text.endswith("\n    - percent: 100\n      hold: 1h\n# trailing note\n")
    assert "  - key: banner  # kept as written\n" in text
    assert "    start: 2026-11-20T00:00:00Z\n" in text  # times as people write them
    assert yaml.safe_load(text)["rollouts"][0]["steps"][-1] == {"percent": 100, "hold": "1h"}
    ts.load_config(path)  # still a valid configuration


def test_edit_entry_writes_a_flow_style_file_whole(tmp_path: Path) -> None:
    from trafficsplit.config import edit_entry

    path = tmp_path / "flow.yaml"
    path.write_text("# gone after the edit\nexperiments: [{key: a, arms: {x: 50, y: 50}}]\n")
    edit_entry(path, "a", lambda e: e.update(exposure=0.3))
    assert yaml.safe_load(path.read_text()) == {
        "experiments": [{"key": "a", "arms": {"x": 50, "y": 50}, "exposure": 0.3}]
    }


def test_snapshot_json_round_trip_keeps_version_and_assignments() -> None:
    """Snapshot.to_json is how a configuration reaches a Spark executor: compiled back, it has
    the same version (times included, written as str(datetime)) and assigns every unit alike."""
    from trafficsplit.config import as_snapshot, snapshot_from_json

    snap = ts.load_config(DATA / "config" / "example.yaml")
    assert any("time" in str(type(v)) for v in _leaves(snap.raw))  # a datetime crosses JSON
    back = snapshot_from_json(snap.to_json())
    assert back.version == snap.version
    assert back.sources == snap.sources
    units = [f"user-{i}" for i in range(2000)] + list(range(2000))
    checked = 0
    for key, e in snap.experiments.items():
        if e.experiment.targeting is not None:
            continue
        a = e.experiment.assign_batch(units)
        b = back.experiments[key].experiment.assign_batch(units)
        assert (a.arm_index == b.arm_index).all() and (a.bucket == b.bucket).all()
        checked += 1
    assert checked >= 2
    assert as_snapshot(ts.Splitter(snap)) is snap
    assert as_snapshot(str(DATA / "config" / "example.yaml")).version == snap.version
    with pytest.raises(ts.ArgumentError, match="got int"):
        as_snapshot(3)
    with pytest.raises(ts.ConfigError, match=r"as written by Snapshot\.to_json"):
        snapshot_from_json('{"documents": 1}')
    with pytest.raises(ts.ConfigError, match="not JSON"):
        snapshot_from_json("{")


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]
