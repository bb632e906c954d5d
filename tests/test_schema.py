"""The JSON Schema shipped as ``trafficsplit/config.schema.json``: a valid draft 2020-12 schema
that accepts every configuration of the docs and the example, and rejects configurations that
``trafficsplit.load_config`` rejects too."""

from __future__ import annotations

import datetime as dt
import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import trafficsplit as ts

from conftest import DATA

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = DATA / "config" / "example.yaml"
GUIDE = ROOT / "docs" / "configuration.md"


def _schema() -> dict[str, Any]:
    text = importlib.resources.files("trafficsplit").joinpath("config.schema.json").read_text()
    return json.loads(text)


VALIDATOR = jsonschema.Draft202012Validator(_schema())


def _as_json(data: Any) -> Any:
    """The JSON form of a YAML document, as editors' YAML servers see it: timestamps as ISO
    strings, mapping keys as strings."""

    def default(value: Any) -> Any:
        if isinstance(value, dt.date | dt.datetime):
            return value.isoformat()
        raise TypeError(type(value).__name__)

    return json.loads(json.dumps(data, default=default))


def _errors(data: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in VALIDATOR.iter_errors(_as_json(data))]


def _guide_examples() -> list[tuple[int, str]]:
    text = GUIDE.read_text(encoding="utf-8")
    blocks = re.findall(r"^```yaml\n(.*?)^```", text, re.S | re.M)
    return [(text[: text.index(b)].count("\n") + 1, b) for b in blocks]


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = _schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_schema_is_a_file_of_the_package() -> None:
    here = Path(ts.__file__).resolve().parent / "config.schema.json"
    assert json.loads(here.read_text(encoding="utf-8")) == _schema()


def test_the_schema_names_every_top_level_section() -> None:
    assert set(_schema()["properties"]) == {
        "layers",
        "holdouts",
        "experiments",
        "rollouts",
        "flags",
        "version",
    }


def test_the_example_passes_the_schema_and_loads() -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert _errors(data) == []
    ts.load_config(EXAMPLE)


def test_the_guide_has_yaml_examples() -> None:
    assert len(_guide_examples()) >= 8


@pytest.mark.parametrize(("line", "block"), _guide_examples(), ids=lambda v: str(v)[:12])
def test_every_guide_example_passes_the_schema_and_loads(line: int, block: str) -> None:
    data = yaml.safe_load(block)
    assert _errors(data) == [], f"docs/configuration.md line {line}"
    ts.parse_config(data, f"docs/configuration.md:{line}")


VALID: list[tuple[str, Any]] = [
    ("empty document", None),
    ("empty sections", {"layers": None, "experiments": [], "flags": None}),
    ("version label", {"version": "2026-11-26", "experiments": []}),
    (
        "arms as a list, history with a null first step",
        {
            "experiments": [
                {
                    "key": "e",
                    "arms": [{"name": "a", "weight": 20}, {"name": "b", "weight": 80}],
                    "allocated_at": 1_790_000_000,
                    "history": [{"at": None, "weights": {"a": 50, "b": 50}, "exposure": 0.5}],
                }
            ]
        },
    ),
    (
        "bool flag rollout as a list (the JSON spelling)",
        {
            "flags": [
                {
                    "key": "f",
                    "type": "bool",
                    "default": False,
                    "rules": [
                        {
                            "rollout": [
                                {"value": True, "weight": 30},
                                {"value": False, "weight": 70},
                            ]
                        }
                    ],
                }
            ]
        },
    ),
    (
        "number flag and canary holds in seconds",
        {
            "flags": [
                {
                    "key": "n",
                    "type": "number",
                    "default": 1.5,
                    "rules": [{"when": "x > 1", "value": 3}],
                }
            ],
            "rollouts": [
                {
                    "key": "c",
                    "start": "2026-11-20",
                    "steps": [{"percent": 5, "hold": 3600}, {"percent": 50, "hold": "1.5h"}],
                }
            ],
        },
    ),
]


@pytest.mark.parametrize(("name", "data"), VALID, ids=[n for n, _ in VALID])
def test_valid_configurations_pass_both(name: str, data: Any) -> None:
    assert _errors(data) == []
    ts.parse_config(data)


def _e(**fields: Any) -> dict[str, Any]:
    return {"experiments": [{"key": "e", "arms": {"a": 50, "b": 50}, **fields}]}


INVALID: list[tuple[str, Any]] = [
    ("unknown top-level key", {"experiment": []}),
    ("a section that is not a list", {"experiments": {"key": "e"}}),
    ("unknown experiment key", _e(colour="red")),
    ("experiment without arms", {"experiments": [{"key": "e"}]}),
    ("blank key", {"experiments": [{"key": "  ", "arms": {"a": 100}}]}),
    ("exposure in percent", _e(exposure=50)),
    ("weight above 100", {"experiments": [{"key": "e", "arms": {"a": 150}}]}),
    ("weight as text", {"experiments": [{"key": "e", "arms": {"a": "100"}}]}),
    ("no arms", {"experiments": [{"key": "e", "arms": {}}]}),
    ("unknown status", _e(status="paused")),
    ("unknown algorithm", _e(algorithm="md5")),
    ("bucket_version 0", _e(bucket_version=0)),
    ("too many buckets", _e(buckets=2_000_000)),
    ("layer without layer_share", {"layers": [{"key": "L"}], **_e(layer="L")}),
    ("layer_share without layer", _e(layer_share=10)),
    ("holdouts as a string", {"holdouts": [{"key": "h", "percent": 5}], **_e(holdouts="h")}),
    ("holdout without percent", {"holdouts": [{"key": "h"}]}),
    ("holdout above 100 %", {"holdouts": [{"key": "h", "percent": 101}]}),
    ("layer with 0 buckets", {"layers": [{"key": "L", "buckets": 0}]}),
    ("start that is not a time", _e(start="next monday")),
    ("override unit id that is a bool", _e(overrides={"a": [True]})),
    ("history step without weights", _e(allocated_at="2026-12-01", history=[{"at": None}])),
    ("canary without start", {"rollouts": [{"key": "c", "steps": [{"percent": 5}]}]}),
    ("canary without steps", {"rollouts": [{"key": "c", "start": "2026-11-20T00:00:00Z"}]}),
    (
        "canary hold in weeks",
        {
            "rollouts": [
                {"key": "c", "start": "2026-11-20", "steps": [{"percent": 5, "hold": "2w"}]}
            ]
        },
    ),
    (
        "blue-green with three arms",
        {"rollouts": [{"key": "b", "type": "blue_green", "arms": {"x": 1, "y": 2, "z": 3}}]},
    ),
    ("unknown rollout type", {"rollouts": [{"key": "r", "type": "linear"}]}),
    ("rollout in a layer", {"rollouts": [{"key": "b", "type": "blue_green", "layer": "L"}]}),
    ("unknown flag type", {"flags": [{"key": "f", "type": "int", "default": 1}]}),
    ("flag without default", {"flags": [{"key": "f", "type": "bool"}]}),
    ("bool flag with a text default", {"flags": [{"key": "f", "type": "bool", "default": "no"}]}),
    (
        "string flag with a number rule value",
        {"flags": [{"key": "f", "type": "string", "default": "a", "rules": [{"value": 3}]}]},
    ),
    (
        "rule with both value and rollout",
        {
            "flags": [
                {
                    "key": "f",
                    "type": "bool",
                    "default": False,
                    "rules": [{"value": True, "rollout": {"true": 50, "false": 50}}],
                }
            ]
        },
    ),
    (
        "rule with neither value nor rollout",
        {"flags": [{"key": "f", "type": "bool", "default": False, "rules": [{"when": "x"}]}]},
    ),
    (
        "enabled as text",
        {"flags": [{"key": "f", "type": "bool", "default": False, "enabled": "yes"}]},
    ),
    (
        "prerequisite without value",
        {
            "flags": [
                {"key": "f", "type": "bool", "default": False, "prerequisites": [{"flag": "g"}]}
            ]
        },
    ),
]


@pytest.mark.parametrize(("name", "data"), INVALID, ids=[n for n, _ in INVALID])
def test_invalid_configurations_fail_both(name: str, data: Any) -> None:
    assert _errors(data), f"the schema accepts: {name}"
    with pytest.raises(ts.ConfigValidationError):
        ts.parse_config(data)


def test_the_schema_reports_where_the_problem_is() -> None:
    errors = _errors(_e(exposure=50))
    assert errors
    assert all(e.startswith("$.experiments[0]") for e in errors)
