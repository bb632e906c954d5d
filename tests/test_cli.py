"""The command line: ``trafficsplit validate FILE...`` and ``trafficsplit plan OLD NEW``, run
both as a subprocess (``python -m trafficsplit``) and through ``cli.main``, with the exact
figures a plan must show, computed from the bucket maps."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import trafficsplit as ts
from trafficsplit import cli
from trafficsplit.plan import plan

from conftest import DATA

EXAMPLE = DATA / "config" / "example.yaml"


def _exp(key: str = "e", **fields: Any) -> dict[str, Any]:
    return {"key": key, "arms": {"control": 50, "treatment": 50}, **fields}


def _write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trafficsplit", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _main(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _row(output: str, key: str) -> list[str]:
    """The cells of an experiment's row in a plan table (columns are 2+ spaces apart)."""
    for line in output.splitlines():
        if line.startswith(f"  {key} "):
            return re.split(r"\s{2,}", line.strip())
    raise AssertionError(f"no row for {key!r} in:\n{output}")


def _plan_cells(row: list[str]) -> dict[str, str]:
    names = ["experiment", "change", "before", "after", "moved", "entered", "left"]
    return dict(zip(names, row, strict=True))


def _both_ways(
    capsys: pytest.CaptureFixture[str], old: Path, new: Path
) -> tuple[str, dict[str, str]]:
    """Runs ``plan OLD NEW`` as a subprocess and through main(); both print the same."""
    proc = _run("plan", old, new)
    assert proc.returncode == 0, proc.stderr
    code, out, err = _main(capsys, "plan", old, new)
    assert code == 0, err
    assert out == proc.stdout
    return out, _plan_cells(_row(out, "e"))


# -- validate ---------------------------------------------------------------------------------


def test_validate_ok_prints_one_summary_line(capsys: pytest.CaptureFixture[str]) -> None:
    version = ts.load_config(EXAMPLE).version
    expected = f"ok: 4 experiments, 1 flags, version {version}\n"
    proc = _run("validate", EXAMPLE)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, expected, "")
    assert _main(capsys, "validate", EXAMPLE) == (0, expected, "")


def test_validate_merges_files_and_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path / "conf" / "a.yaml", {"experiments": [_exp("a")]})
    flag = {"key": "f", "type": "bool", "default": False}
    _write(tmp_path / "conf" / "b.yaml", {"flags": [flag]})
    extra = _write(tmp_path / "extra.yaml", {"experiments": [_exp("c")]})
    version = ts.load_config(tmp_path / "conf", extra).version
    code, out, _ = _main(capsys, "validate", tmp_path / "conf", extra)
    assert (code, out) == (0, f"ok: 2 experiments, 1 flags, version {version}\n")


def test_validate_prints_every_problem_one_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _write(
        tmp_path / "bad.yaml",
        {
            "experiments": [
                {"key": "e", "arms": {"a": 60, "b": 30}, "exposure": 50, "colour": "red"},
                _exp("f", status="paused"),
            ],
            "flags": [{"key": "g", "type": "int", "default": 1}],
        },
    )
    with pytest.raises(ts.ConfigValidationError) as info:
        ts.load_config(bad)
    expected = [str(issue) for issue in info.value.issues]
    assert len(expected) == 5
    proc = _run("validate", bad)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == expected
    assert proc.stderr == "invalid: 5 problems\n"
    code, out, err = _main(capsys, "validate", bad)
    assert (code, out.splitlines(), err) == (1, expected, "invalid: 5 problems\n")
    paths = [line.split(": ")[1] for line in expected]
    assert sorted(paths) == [
        "experiments[0].arms",
        "experiments[0].colour",
        "experiments[0].exposure",
        "experiments[1].status",
        "flags[0].type",
    ]
    assert all(line.startswith(f"{bad}: ") for line in expected)


def test_validate_reports_problems_across_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _write(tmp_path / "a.yaml", {"experiments": [_exp("same")]})
    b = _write(tmp_path / "b.yaml", {"experiments": [_exp("same")]})
    code, out, _ = _main(capsys, "validate", a, b)
    assert code == 1
    assert out.startswith(f"{b}: experiments[0].key: ")
    assert "defined twice" in out


def test_validate_targeting_error_keeps_its_excerpt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _write(tmp_path / "t.yaml", {"experiments": [_exp(targeting='country == "US" and')]})
    code, out, _ = _main(capsys, "validate", bad)
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith(f"{bad}: experiments[0].targeting: ")
    assert lines[1:] and all(line.startswith("  ") for line in lines[1:])  # the caret excerpt


def test_validate_missing_and_unreadable_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.yaml"
    code, out, _ = _main(capsys, "validate", missing)
    assert (code, out) == (1, f"{missing}: no such file or directory\n")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"experiments:\n  - key: caf\xe9\n")
    code, out, _ = _main(capsys, "validate", latin)
    assert code == 1
    assert out.startswith(f"{latin}: not UTF-8 text")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, _ = _main(capsys, "validate", empty)
    assert (code, out) == (1, f"{empty}: no .yaml, .yml or .json files\n")


def test_validate_invalid_yaml_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    y = tmp_path / "a.yaml"
    y.write_text("experiments:\n  - key: e\n    arms: {a: 100\n")
    j = tmp_path / "b.json"
    j.write_text('{"experiments": [}')
    code, out, _ = _main(capsys, "validate", y, j)
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith(f"{y}: invalid YAML at line ")
    assert lines[1].startswith(f"{j}: invalid JSON at line 1, column ")


def test_validate_an_empty_file_is_an_empty_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    code, out, _ = _main(capsys, "validate", empty)
    assert code == 0
    assert out.startswith("ok: 0 experiments, 0 flags, version ")


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["validate"],
        ["plan"],
        ["plan", "only-one.yaml"],
        ["plan", "a.yaml", "b.yaml", "c.yaml"],
        ["frobnicate"],
        ["validate", "--no-such-option", "x.yaml"],
    ],
)
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _main(capsys, *args)
    assert code == 2
    assert out == ""
    assert "usage: trafficsplit" in err
    proc = _run(*args)
    assert proc.returncode == 2
    assert "usage: trafficsplit" in proc.stderr


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(capsys, "--version")
    assert (code, out) == (0, f"trafficsplit {ts.__version__}\n")
    for args in (["--help"], ["validate", "--help"], ["plan", "--help"]):
        code, out, _ = _main(capsys, *args)
        assert code == 0
        assert out.startswith("usage: trafficsplit")


def test_demo_still_works(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(capsys, "demo", "--users", "20000")
    assert code == 0
    assert "sample-ratio check" in out
    assert "one request: exp.assign('user-42')" in out
    rows = {line.split()[0] + " " + line.split()[1]: line for line in out.splitlines()[-8:]}
    # at 20,000 users the 8 % slower challenger-b is already clearly worse on latency
    assert rows["latency_ms challenger-b"].endswith("harm")
    assert "CUPED: variance -" in rows["minutes challenger-a"]
    code, _, err = _main(capsys, "demo", "--users", "0")
    assert code == 2
    assert "argument --users: expected a positive integer, got '0'" in err


# -- plan ---------------------------------------------------------------------------------------


def test_plan_weight_change_moves_exactly_the_tv_distance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _write(tmp_path / "old.yaml", {"experiments": [_exp()]})
    new = _write(
        tmp_path / "new.yaml", {"experiments": [_exp(arms={"control": 10, "treatment": 90})]}
    )
    out, cells = _both_ways(capsys, old, new)
    assert cells == {
        "experiment": "e",
        "change": "changed",
        "before": "100.0 %",
        "after": "100.0 %",
        "moved": "40.0 %",
        "entered": "0.0 %",
        "left": "0.0 %",
    }
    assert "arms: control 50, treatment 50 -> control 10, treatment 90" in out
    p = plan(ts.load_config(old), ts.load_config(new)).experiment("e")
    assert (p.moved, p.entered, p.left, p.stayed) == (0.4, 0.0, 0.0, 0.6)
    assert not p.rerandomised


def test_plan_weight_change_with_history_and_exposure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """50/50 -> 10/90 kept as history at exposure 0.5: 40 % of the exposed half moves."""
    old = _write(tmp_path / "old.yaml", {"experiments": [_exp(exposure=0.5)]})
    new = _write(
        tmp_path / "new.yaml",
        {
            "experiments": [
                _exp(
                    exposure=0.5,
                    arms={"control": 10, "treatment": 90},
                    allocated_at="2026-12-01T00:00:00Z",
                    history=[{"at": None, "weights": {"control": 50, "treatment": 50}}],
                )
            ]
        },
    )
    out, cells = _both_ways(capsys, old, new)
    assert (cells["before"], cells["after"], cells["moved"]) == ("50.0 %", "50.0 %", "20.0 %")
    p = plan(ts.load_config(old), ts.load_config(new)).experiment("e")
    assert (p.exposed_before, p.exposed_after, p.moved) == (0.5, 0.5, 0.2)
    assert "history" not in out  # the old allocation is kept: nothing rewritten


def test_plan_notes_a_fresh_allocation_that_moves_more_than_needed(tmp_path: Path) -> None:
    old = ts.parse_config({"experiments": [_exp(arms={"a": 34, "b": 33, "c": 33})]})
    fresh = ts.parse_config({"experiments": [_exp(arms={"a": 50, "b": 25, "c": 25})]})
    kept = ts.parse_config(
        {
            "experiments": [
                _exp(
                    arms={"a": 50, "b": 25, "c": 25},
                    allocated_at="2026-12-01T00:00:00Z",
                    history=[{"at": None, "weights": {"a": 34, "b": 33, "c": 33}}],
                )
            ]
        }
    )
    p = plan(old, fresh).experiment("e")
    assert p.moved == 0.24  # contiguous ranges: a grows into b's, b into c's
    assert any("where 16.0 % would do" in note for note in p.notes)
    assert plan(old, kept).experiment("e").moved == 0.16  # the total-variation distance


def test_plan_exposure_change_enters_and_leaves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    low = _write(tmp_path / "low.yaml", {"experiments": [_exp(exposure=0.2)]})
    high = _write(tmp_path / "high.yaml", {"experiments": [_exp(exposure=0.5)]})
    out, cells = _both_ways(capsys, low, high)
    assert (cells["before"], cells["after"]) == ("20.0 %", "50.0 %")
    assert (cells["moved"], cells["entered"], cells["left"]) == ("0.0 %", "30.0 %", "0.0 %")
    assert "exposure: 0.2 -> 0.5" in out
    up = plan(ts.load_config(low), ts.load_config(high)).experiment("e")
    assert (up.entered, up.left, up.moved) == (0.3, 0.0, 0.0)
    down = plan(ts.load_config(high), ts.load_config(low)).experiment("e")
    assert (down.entered, down.left, down.moved) == (0.0, 0.3, 0.0)


@pytest.mark.parametrize(
    ("change", "because"),
    [
        ({"salt": "e-2"}, "salt 'e' -> 'e-2'"),
        ({"bucket_version": 2}, "bucket_version 1 -> 2"),
        ({"buckets": 1000}, "buckets 10000 -> 1000"),
        ({"algorithm": "murmur3"}, "algorithm xxh3 -> murmur3"),
        ({"unit": "device_id"}, "unit user_id -> device_id"),
    ],
)
def test_plan_rerandomising_changes(
    change: dict[str, Any], because: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _write(tmp_path / "old.yaml", {"experiments": [_exp()]})
    new = _write(tmp_path / "new.yaml", {"experiments": [_exp(**change)]})
    out, cells = _both_ways(capsys, old, new)
    assert (cells["moved"], cells["entered"], cells["left"]) == ("re-randomised", "–", "–")
    assert f"every unit is re-randomised: {because}" in out
    p = plan(ts.load_config(old), ts.load_config(new)).experiment("e")
    assert p.rerandomised
    assert p.rerandomised_because == (because,)
    assert (p.moved, p.entered, p.left) == (None, None, None)


def test_plan_added_and_removed_experiments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _write(tmp_path / "old.yaml", {"experiments": [_exp("e"), _exp("gone", exposure=0.3)]})
    new = _write(tmp_path / "new.yaml", {"experiments": [_exp("e"), _exp("fresh", exposure=0.7)]})
    out, cells = _both_ways(capsys, old, new)
    assert cells["change"] == "unchanged"
    gone = _plan_cells(_row(out, "gone"))
    assert (gone["change"], gone["before"], gone["after"], gone["left"]) == (
        "removed",
        "30.0 %",
        "0.0 %",
        "30.0 %",
    )
    fresh = _plan_cells(_row(out, "fresh"))
    assert (fresh["change"], fresh["before"], fresh["after"], fresh["entered"]) == (
        "added",
        "0.0 %",
        "70.0 %",
        "70.0 %",
    )
    assert "added: fresh\n" in out
    assert "removed: gone\n" in out
    p = plan(ts.load_config(old), ts.load_config(new))
    assert (p.added, p.removed) == (("fresh",), ("gone",))


def _layered(*members: tuple[str, float], salt: str | None = None) -> dict[str, Any]:
    layer: dict[str, Any] = {"key": "L"}
    if salt is not None:
        layer["salt"] = salt
    return {
        "layers": [layer],
        "experiments": [_exp(k, layer="L", layer_share=share) for k, share in members],
    }


def test_plan_removing_a_layer_member_shifts_the_ranges_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """a 30, b 30, e 40 -> a 30, e 40: e's range moves from [6000, 10000) to [3000, 7000);
    only [6000, 7000) stays, so 30 % of units leave e and another 30 % enter it."""
    old = _write(tmp_path / "old.yaml", _layered(("a", 30), ("b", 30), ("e", 40)))
    new = _write(tmp_path / "new.yaml", _layered(("a", 30), ("e", 40)))
    out, cells = _both_ways(capsys, old, new)
    assert (cells["before"], cells["after"]) == ("40.0 %", "40.0 %")
    assert (cells["moved"], cells["entered"], cells["left"]) == ("0.0 %", "30.0 %", "30.0 %")
    assert "layer range: [6000, 10000) -> [3000, 7000)" in out
    table = out[out.index("layers (") :].splitlines()
    assert table[1] == "  L (10,000 buckets)"
    assert [re.split(r"\s{2,}", line.strip()) for line in table[2:]] == [
        ["experiment", "before", "after"],
        ["a", "30.0 % [0, 3000)", "30.0 % [0, 3000)"],
        ["b", "30.0 % [3000, 6000)", "–"],
        ["e", "40.0 % [6000, 10000)", "40.0 % [3000, 7000)"],
        ["free", "0.0 %", "30.0 %"],
    ]
    p = plan(ts.load_config(old), ts.load_config(new))
    layer = p.layer("L")
    assert layer.free_before == 0.0
    assert layer.free_after == 0.3
    assert [(s.experiment, s.lo, s.hi, s.share) for s in layer.after] == [
        ("a", 0, 3000, 0.3),
        ("e", 3000, 7000, 0.4),
    ]


def test_plan_stopping_instead_of_removing_keeps_the_ranges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _layered(("a", 30), ("b", 30), ("e", 40))
    new = copy.deepcopy(old)
    new["experiments"][1]["status"] = "stopped"
    out, cells = _both_ways(
        capsys, _write(tmp_path / "old.yaml", old), _write(tmp_path / "new.yaml", new)
    )
    assert cells["change"] == "unchanged"
    b = _plan_cells(_row(out, "b"))
    assert (b["change"], b["before"], b["after"], b["left"]) == (
        "changed",
        "30.0 %",
        "0.0 %",
        "30.0 %",
    )
    assert "status: running -> stopped" in out


def test_plan_layer_salt_change_redraws_layer_membership(tmp_path: Path) -> None:
    """A new layer salt draws the 50 % independently: a quarter stays, a quarter leaves and
    another quarter enters."""
    old = ts.parse_config(_layered(("e", 50)))
    new = ts.parse_config(_layered(("e", 50), salt="L-2"))
    p = plan(old, new)
    e = p.experiment("e")
    assert (e.exposed_before, e.exposed_after, e.entered, e.left, e.moved) == (
        0.5,
        0.5,
        0.25,
        0.25,
        0.0,
    )
    assert "salt 'L' -> 'L-2': re-drawn" in str(p)


def test_plan_holdout_and_layer_combine_exactly(tmp_path: Path) -> None:
    """Holdout 5 % -> 10 %, layer share 40 %, exposure 0.5, weights 50/50 -> 10/90."""
    base: dict[str, Any] = {
        "layers": [{"key": "L"}],
        "holdouts": [{"key": "h", "percent": 5}],
        "experiments": [_exp(layer="L", layer_share=40, holdouts=["h"], exposure=0.5)],
    }
    new = copy.deepcopy(base)
    new["holdouts"][0]["percent"] = 10
    new["experiments"][0]["arms"] = {"control": 10, "treatment": 90}
    p = plan(ts.parse_config(base), ts.parse_config(new))
    e = p.experiment("e")
    assert e.exposed_before == pytest.approx(0.95 * 0.4 * 0.5, abs=1e-15)
    assert e.exposed_after == pytest.approx(0.90 * 0.4 * 0.5, abs=1e-15)
    assert e.left == pytest.approx(0.05 * 0.4 * 0.5, abs=1e-15)
    assert e.entered == 0.0
    assert e.moved == pytest.approx(0.90 * 0.4 * 0.5 * 0.4, abs=1e-15)
    assert "  h: changed, 5 % -> 10 %" in str(p)


def test_plan_flags_and_targeting_changes_are_named(tmp_path: Path) -> None:
    flag = {"key": "f", "type": "bool", "default": False}
    old = ts.parse_config({"experiments": [_exp(targeting='country == "US"')], "flags": [flag]})
    new = ts.parse_config(
        {
            "experiments": [_exp(targeting='country == "CA"')],
            "flags": [{**flag, "default": True}, {**flag, "key": "g"}],
        }
    )
    p = plan(old, new)
    assert any(note.startswith("targeting changed") for note in p.experiment("e").notes)
    assert [(f.key, f.change) for f in p.flags] == [("f", "changed"), ("g", "added")]
    text = str(p)
    assert "  added: g" in text
    assert "  changed: f" in text


def test_plan_of_identical_configurations(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(capsys, "plan", EXAMPLE, EXAMPLE)
    version = ts.load_config(EXAMPLE).version
    assert (code, out) == (0, f"plan: configuration {version} -> {version}\nno change\n")


def test_plan_of_folders_and_json_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = yaml.safe_load(EXAMPLE.read_text())
    _write(tmp_path / "old" / "all.yaml", raw)
    new = copy.deepcopy(raw)
    new["rollouts"][1]["active"] = "green"  # blue-green switch: every unit moves
    _write(tmp_path / "new" / "experiments.yaml", {"experiments": new["experiments"]})
    _write(tmp_path / "new" / "rest.yaml", {k: v for k, v in new.items() if k != "experiments"})
    code, out, _ = _main(capsys, "plan", tmp_path / "old", tmp_path / "new")
    assert code == 0
    cells = _plan_cells(_row(out, "serving-stack"))
    assert (cells["moved"], cells["entered"], cells["left"]) == ("100.0 %", "0.0 %", "0.0 %")
    assert _plan_cells(_row(out, "ranker-v2"))["change"] == "unchanged"
    code, out, _ = _main(capsys, "plan", "--json", tmp_path / "old", tmp_path / "new")
    assert code == 0
    data = json.loads(out)
    figures = {e["key"]: e for e in data["experiments"]}
    assert figures["serving-stack"]["moved"] == 1.0
    assert figures["ranker-v2"]["exposed_before"] == pytest.approx(0.95 * 0.4 * 0.5)
    assert data["layers"][0]["key"] == "ranking"


def test_plan_with_an_invalid_side_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _write(tmp_path / "good.yaml", {"experiments": [_exp()]})
    bad = _write(tmp_path / "bad.yaml", {"experiments": [_exp(exposure=50)]})
    proc = _run("plan", good, bad)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"{bad}: experiments[0].exposure: ")
    code, out, err = _main(capsys, "plan", tmp_path / "missing.yaml", bad)
    assert (code, out) == (1, "")
    assert err.splitlines()[0] == f"{tmp_path / 'missing.yaml'}: no such file or directory"
    assert err.splitlines()[1].startswith(f"{bad}: experiments[0].exposure: ")
    assert err.splitlines()[-1] == "invalid: 2 problems"
