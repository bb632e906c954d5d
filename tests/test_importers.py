"""trafficsplit.importers and `trafficsplit import`: the peers' own example definitions
(tests/data/peers: GrowthBook cases.json, the Unleash client specification, the flagd testbed
flags) imported, and every unit of a 100,000-id sample (ASCII and non-ASCII) assigned by the
imported configuration exactly as the peer assigns it. The peer's side comes from elsewhere:
the independent re-implementation of the peers' algorithms (tests/peers/reference.py), the
GrowthBook Python SDK where conditions decide, and the expectations the suites publish.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import trafficsplit as ts
from peers import reference as ref
from trafficsplit.cli import main
from trafficsplit.importers import (
    ImportProblem,
    ImportResult,
    import_flagd,
    import_growthbook,
    import_unleash,
)

PEERS = Path(__file__).parent / "data" / "peers"
CASES = json.loads((PEERS / "growthbook" / "cases.json").read_text(encoding="utf-8"))
UNLEASH_SPECS = sorted((PEERS / "unleash" / "specifications").glob("*.json"))
FLAGD = json.loads(
    (PEERS / "flagd" / "evaluator" / "flags" / "testkit-flags.json").read_text(encoding="utf-8")
)
N = 100_000
# Per entry when a suite has dozens of them (Unleash toggles, GrowthBook features, the legacy
# flagd scheme), to keep the module under a minute.
N_EACH = 30_000


def sample_ids(n: int = N, seed: int = 7) -> list[str]:
    """Unit ids: ASCII, Latin-1, CJK, astral-plane (two UTF-16 code units) and digits."""
    rng = random.Random(seed)
    shapes = [
        lambda i: f"u{i}",
        lambda i: f"user-{i:08d}",
        lambda i: f"Jürgen-{i}",
        lambda i: f"用户{i}",
        lambda i: f"😀{i}🚀",
        lambda i: str(rng.randrange(10**12)),
    ]
    return [shapes[i % len(shapes)](i) for i in range(n)]


IDS = sample_ids()
IDS_EACH = IDS[:N_EACH]


def splitter(result: ImportResult) -> ts.Splitter:
    return ts.Splitter(ts.parse_config(result.config))


# -- GrowthBook experiments --------------------------------------------------------------------


def distinct_run_cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    seen: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}
    for name, context, exp, *_ in CASES["run"]:
        key = json.dumps([exp, context.get("savedGroups")], sort_keys=True)
        seen.setdefault(key, (name, context, exp))
    return list(seen.values())


def gb_sdk_run(exp: Mapping[str, Any], rows: list[dict[str, Any]], groups: Any) -> list[Any]:
    """The GrowthBook Python SDK's answer per row: the variation index, or None."""
    from growthbook import Experiment, GrowthBook

    gb = GrowthBook(attributes={}, savedGroups=groups or None)
    experiment = Experiment(**exp)
    out = []
    for attrs in rows:
        gb.set_attributes(attrs)
        r = gb.run(experiment)
        out.append(r.variationId if r.inExperiment else None)
    return out


def test_growthbook_run_experiments_assign_every_unit_as_growthbook() -> None:
    imported = skipped = 0
    for name, context, exp in distinct_run_cases():
        result = import_growthbook(
            {"experiments": [exp], "savedGroups": context.get("savedGroups", {})}
        )
        if not result.complete:
            skipped += 1
            assert all(p.path.startswith("experiments[0]") for p in result.skipped), name
            assert result.config == {}, name
            continue
        imported += 1
        entry = result.config["experiments"][0]
        unit = exp.get("hashAttribute", "id")
        assert entry["unit"] == unit
        sp = splitter(result)
        rng = random.Random(name)
        ids = list(IDS)
        if "condition" in exp:
            # Attributes that pass and fail the condition, and the saved group's own members.
            ids[:3] = ["4", "5", "6"]
            rows = [{unit: u, "browser": rng.choice(["firefox", "chrome", None])} for u in ids]
            for row in rows:
                if row["browser"] is None:
                    del row["browser"]
            expected = gb_sdk_run(exp, rows, context.get("savedGroups"))
            frame = pd.DataFrame({unit: ids, "browser": [r.get("browser") for r in rows]})
        else:
            expected = []
            for u in ids:
                value, in_exp, _ = ref.gb_run_experiment({"attributes": {unit: u}}, exp)
                expected.append(exp["variations"].index(value) if in_exp else None)
            frame = pd.DataFrame({unit: ids})
        got = sp.assign_frame(frame, unit)[exp["key"]].astype(object)
        names = [arm["name"] for arm in entry["arms"]]
        got_index = [None if not isinstance(a, str) else names.index(a) for a in got]
        mismatches = [(u, e, g) for u, e, g in zip(ids, expected, got_index, strict=True) if e != g]
        assert not mismatches, (name, len(mismatches), mismatches[:5])
        # The case's own published expectation for its own context (where the context does not
        # force a variation through a URL, QA mode or forcedVariations, which are not config).
        if {"url", "qaMode", "forcedVariations", "enabled"} & set(context):
            continue
        _, _, _, value, in_experiment, _ = next(c for c in CASES["run"] if c[0] == name)
        a = sp.assign(exp["key"], None, context["attributes"])
        assert (a.arm is not None) == in_experiment, name
        if in_experiment:
            assert a.payload == value, name
    # Most of the suite's experiments translate; the rest are left out with a reason.
    assert imported > skipped > 0


def test_growthbook_weights_are_checked_at_every_bucket() -> None:
    # 1/3 each: the percentages that reproduce the ranges are found (or the entry is left out).
    third = 1 / 3
    result = import_growthbook(
        {
            "experiments": [
                {"key": "three", "variations": [0, 1, 2], "weights": [third, third, third]},
                {"key": "uneven", "variations": [0, 1], "weights": [0.123456, 0.876544]},
                {"key": "v2", "variations": [0, 1], "weights": [0.1, 0.9], "hashVersion": 2},
            ]
        }
    )
    assert result.complete
    for entry in result.config["experiments"]:
        exp_weights = {"three": [third] * 3, "uneven": [0.123456, 0.876544], "v2": [0.1, 0.9]}
        buckets = 10000 if entry["hashing"]["mode"].endswith("v2") else 1000
        percent = [arm["weight"] for arm in entry["arms"]]
        peer = ref.gb_bucket_ranges(len(percent), 1.0, exp_weights[entry["key"]])
        mine = ref.gb_bucket_ranges(len(percent), 1.0, [p / 100 for p in percent])
        for k in range(buckets):
            n = k / buckets
            assert ref.gb_choose_variation(n, peer) == ref.gb_choose_variation(n, mine)
    assert [a["weight"] for a in result.config["experiments"][2]["arms"]] == [10, 90]


def test_growthbook_weights_it_ignores_become_equal_weights_with_a_note() -> None:
    # Weights summing to 0.8 are ignored by GrowthBook's SDKs, which split equally.
    exp = {"key": "e", "variations": [0, 1], "weights": [0.5, 0.3]}
    result = import_growthbook({"experiments": [exp]})
    assert [arm["weight"] for arm in result.config["experiments"][0]["arms"]] == [50, 50]
    (note,) = result.problems
    assert not note.skipped and note.path == "experiments[0].weights"
    sp = splitter(result)
    got = sp.assign_frame(pd.DataFrame({"id": IDS_EACH}), "id")["e"].astype(object)
    for u, arm in zip(IDS_EACH, got, strict=True):
        value, in_experiment, _ = ref.gb_run_experiment({"attributes": {"id": u}}, exp)
        assert in_experiment and arm == str(value)


def test_growthbook_ranges_that_no_percentages_reproduce_are_skipped() -> None:
    result = import_growthbook(
        {"experiments": [{"key": "r", "variations": [0, 1], "ranges": [[0, 0.1], [0.9, 1.0]]}]}
    )
    assert result.config == {}
    (problem,) = result.problems
    assert problem.skipped and problem.path == "experiments[0].ranges"
    assert "no percentages reproduce GrowthBook's ranges exactly" in problem.message


# -- GrowthBook features -----------------------------------------------------------------------


def gb_feature(features: Any, groups: Any, key: str, attrs: Mapping[str, Any]) -> Any:
    """evalFeature of GrowthBook's JavaScript SDK (core.ts) for the rules bucketing decides:
    conditions by the GrowthBook Python SDK's evalCondition, hashes, ranges and experiments by
    the reference; a force rule's coverage includes n <= coverage, as core.ts does."""
    from growthbook.core import evalCondition

    feature = features[key]
    for rule in feature.get("rules", []):
        if rule.get("condition") and not evalCondition(dict(attrs), rule["condition"], groups):
            continue
        if "force" in rule:
            if rule.get("coverage") is not None or "range" in rule:
                value = str(attrs.get(rule.get("hashAttribute", "id"), ""))
                n = ref.gb_hash(rule.get("seed") or key, value, rule.get("hashVersion", 1))
                if not value or n is None:
                    continue
                if "range" in rule and not ref.gb_in_range(n, rule["range"]):
                    continue
                if "range" not in rule and n > rule["coverage"]:
                    continue
            return rule["force"]
        if "variations" in rule:
            exp = {k: v for k, v in rule.items() if k not in ("condition", "id")}
            exp["key"] = rule.get("key") or key
            value, in_experiment, _ = ref.gb_run_experiment({"attributes": dict(attrs)}, exp)
            if in_experiment:
                return value
    return feature.get("defaultValue")


def test_growthbook_features_serve_what_growthbook_serves() -> None:
    imported = skipped = sampled = 0
    for name, context, key, expected, *_ in CASES["feature"]:
        features = context.get("features", {})
        if key not in features or context.get("forcedVariations") or context.get("url"):
            continue
        groups = context.get("savedGroups", {})
        result = import_growthbook({"features": {key: features[key]}, "savedGroups": groups})
        if not result.complete:
            skipped += 1
            continue
        imported += 1
        sp = splitter(result)
        attrs = context.get("attributes", {})
        # The suite's published value for the case's own attributes.
        assert sp.flag(key, None, attrs) == expected["value"], name
        flag = result.config["flags"][0]
        if not any("rollout" in r for r in flag.get("rules", [])):
            continue
        sampled += 1
        unit = flag["unit"]
        for u in IDS_EACH:
            row = {**attrs, unit: u}
            assert sp.flag(key, None, row) == gb_feature(features, groups, key, row), (name, u)
    assert imported > skipped > 0 and sampled > 0


def test_growthbook_force_rule_coverage_is_inclusive_as_in_growthbook() -> None:
    # GrowthBook includes a unit when its hash value is <= coverage: 0.5 includes 500/1000.
    feature = {"defaultValue": 0, "rules": [{"force": 1, "coverage": 0.5}, {"force": 2}]}
    result = import_growthbook({"features": {"f": feature}})
    rule = result.config["flags"][0]["rules"][0]
    assert rule["exposure"] == 0.501
    sp = splitter(result)
    boundary = [u for u in IDS if ref.gb_bucket("f", u, 1) == 500]
    assert boundary
    for u in boundary:
        assert gb_feature({"f": feature}, {}, "f", {"id": u}) == 1
        assert sp.flag("f", u) == 1
    (note,) = result.problems
    assert not note.skipped and "n <= coverage" in note.message


# -- Unleash -----------------------------------------------------------------------------------


def unleash_attributes(context: Mapping[str, Any]) -> dict[str, Any]:
    """An Unleash context as trafficsplit attributes: its fields and properties side by side."""
    out = {k: v for k, v in context.items() if k != "properties" and v is not None}
    out.update({k: v for k, v in (context.get("properties") or {}).items() if v is not None})
    return out


def test_unleash_specification_toggles_assign_as_unleash() -> None:
    imported = skipped = sampled = 0
    for spec_file in UNLEASH_SPECS:
        spec = json.loads(spec_file.read_text(encoding="utf-8"))
        state = spec["state"]
        result = import_unleash(spec)
        imported += len(result.translated)
        skipped += len(result.skipped)
        sp = splitter(result)
        entries = {e["key"]: e for e in result.config.get("experiments", [])}
        # The suite's own expectations, where the unit attribute is given (without it Unleash
        # falls back to other fields or a random number; trafficsplit answers missing_unit).
        for case in spec.get("tests", []):
            entry = entries.get(case["toggleName"])
            attrs = unleash_attributes(case.get("context", {}))
            if entry is None or entry["unit"] not in attrs:
                continue
            a = sp.assign(entry["key"], None, attrs)
            assert a.in_experiment == case["expectedResult"], (spec_file.name, case)
        for case in spec.get("variantTests", []):
            entry = entries.get(case["toggleName"])
            attrs = unleash_attributes(case.get("context", {}))
            if entry is None or entry["unit"] not in attrs:
                continue
            a = sp.assign(entry["key"], None, attrs)
            want = case["expectedResult"]
            if want["enabled"] and want["name"] != "disabled":
                assert a.arm == want["name"], (spec_file.name, case)
            else:
                assert a.arm in (None, "enabled"), (spec_file.name, case)
        # Every unit of the sample, against the reference of Unleash's algorithm.
        for key, entry in entries.items():
            unit = entry["unit"]
            frame = pd.DataFrame({unit: IDS_EACH})
            got = sp.assign_frame(frame, unit)[key].astype(object)
            has_variants = "variant_group" in entry["hashing"]
            try:
                expected = []
                for u in IDS_EACH:
                    context = {"userId": u} if unit == "userId" else {"properties": {unit: u}}
                    if has_variants:
                        v = ref.unleash_variant(state, key, context)
                        expected.append(v["name"] if v["enabled"] else None)
                    else:
                        enabled = ref.unleash_is_enabled(state, key, context)
                        expected.append("enabled" if enabled else None)
            except (ref.Unsupported, ref.Indeterminate):
                continue
            sampled += 1
            got_names = [a if isinstance(a, str) else None for a in got]
            pairs = zip(IDS_EACH, expected, got_names, strict=True)
            bad = [(u, e, g) for u, e, g in pairs if e != g]
            assert not bad, (spec_file.name, key, len(bad), bad[:5])
    assert imported > skipped > 0 and sampled > 0


def test_unleash_constraint_operators_translate_with_unleash_semantics() -> None:
    def toggle(constraint: dict[str, Any]) -> dict[str, Any]:
        strategy = {"name": "default", "parameters": {}, "constraints": [constraint]}
        return {"features": [{"name": "t", "enabled": True, "strategies": [strategy]}]}

    def enabled(constraint: dict[str, Any], attrs: dict[str, Any]) -> bool:
        result = import_unleash(toggle(constraint))
        assert result.complete, result.problems
        return splitter(result).assign("t", "u-1", attrs).in_experiment

    starts = {"contextName": "email", "operator": "STR_STARTS_WITH", "values": ["ab", "cd"]}
    assert enabled(starts, {"email": "abc"}) and enabled(starts, {"email": "cde"})
    assert not enabled(starts, {"email": "xab"}) and not enabled(starts, {})
    # inverted: the missing value makes the constraint true, as in Unleash.
    assert enabled({**starts, "inverted": True}, {}) and not enabled(
        {**starts, "inverted": True}, {"email": "ab"}
    )
    not_in = {"contextName": "country", "operator": "NOT_IN", "values": ["US"]}
    assert enabled(not_in, {}) and enabled(not_in, {"country": "DE"})
    assert not enabled(not_in, {"country": "US"})
    semver = {"contextName": "v", "operator": "SEMVER_GT", "value": "1.2.3"}
    assert enabled(semver, {"v": "1.10.0"}) and not enabled(semver, {"v": "1.2.3-rc.1"})
    assert not enabled(semver, {"v": "v2.0.0"})  # Unleash refuses a leading v
    assert enabled({**semver, "inverted": True}, {"v": "v2.0.0"})
    nocase = {
        "contextName": "e",
        "operator": "STR_ENDS_WITH",
        "values": ["@Example.COM"],
        "caseInsensitive": True,
    }
    assert enabled(nocase, {"e": "a@EXAMPLE.com"}) and not enabled(nocase, {"e": "a@example.org"})
    regex = {"contextName": "e", "operator": "REGEX", "value": "^a+b$"}
    assert enabled(regex, {"e": "aab"}) and not enabled(regex, {"e": "aabc"})


def test_unleash_several_strategies_and_untranslatable_operators_are_reported() -> None:
    rollout = {"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "userId"}}
    default = {"name": "default", "parameters": {}}
    lookaround = {"contextName": "e", "operator": "REGEX", "value": "a(?=b)"}
    data = {
        "features": [
            {"name": "two", "enabled": True, "strategies": [rollout, default]},
            {"name": "look", "enabled": True, "strategies": [
                {**default, "constraints": [lookaround]}]},
            {"name": "odd", "enabled": True, "strategies": [{**default, "constraints": [
                {"contextName": "x", "operator": "NOT_A_VALID_OPERATOR", "values": ["1"]}]}]},
            {"name": "ok", "enabled": False, "strategies": [rollout]},
        ]
    }  # fmt: skip
    result = import_unleash(data)
    assert result.translated == ["features[3]"]
    assert result.config["experiments"][0]["status"] == "stopped"
    problems = {p.path: p for p in result.skipped}
    assert set(problems) == {
        "features.two.strategies[0]",
        "features.look.strategies[0].constraints",
        "features.odd.strategies[0].constraints[0].operator",
    }
    assert "2 strategies" in problems["features.two.strategies[0]"].message
    assert "invalid perl operator" in problems["features.look.strategies[0].constraints"].message
    assert (
        "unknown constraint operator"
        in problems["features.odd.strategies[0].constraints[0].operator"].message
    )


# -- flagd -------------------------------------------------------------------------------------


def flagd_context(flag_key: str, u: str, rng: random.Random) -> dict[str, Any]:
    row = {
        "targetingKey": u,
        "user": {"name": u},
        "user.name": u,
        "email": rng.choice(["ballmer@macrosoft.com", "jobs@orange.com", "x@y.z"]),
        "tier": rng.choice(["premium", "basic"]),
    }
    if rng.random() < 0.5:
        row["missing_key"] = f"k-{u}"
    return row


@pytest.mark.parametrize("scheme", ["current", "legacy"])
def test_flagd_testkit_flags_resolve_as_flagd(scheme: str) -> None:
    result = import_flagd(FLAGD, scheme=scheme)
    sp = splitter(result)
    flags = {k: {**v} for k, v in FLAGD["flags"].items()}
    evaluators = FLAGD.get("$evaluators", {})

    def plain(node: Any) -> Any:
        """$ref substituted, and an if without else given JsonLogic's null else, for the
        reference's evaluator."""
        if isinstance(node, list):
            return [plain(n) for n in node]
        if isinstance(node, dict):
            if set(node) == {"$ref"} and node["$ref"] in evaluators:
                return plain(evaluators[node["$ref"]])
            out = {k: plain(v) for k, v in node.items()}
            if isinstance(out.get("if"), list) and len(out["if"]) % 2 == 0:
                out["if"] = [*out["if"], None]
            return out
        return node

    for flag in flags.values():
        flag["targeting"] = plain(flag.get("targeting"))
    sampled = 0
    for entry in result.config["flags"]:
        key = entry["key"]
        flag = flags[key]
        if flag["state"] != "ENABLED" or "targeting" not in flag:
            continue
        rng = random.Random(key)
        # Every id of the sample where the answer hashes the unit; a few thousand elsewhere.
        hashed = any("rollout" in r for r in entry.get("rules", []))
        ids = (IDS if scheme == "current" else IDS_EACH) if hashed else IDS[:2000]
        rows = [flagd_context(key, u, rng) for u in ids]
        try:
            expected = [ref.flagd_evaluate(flags, key, row, scheme == "legacy") for row in rows]
        except ref.Unsupported:
            continue
        sampled += 1
        unit = entry.get("unit")
        for row, (value, reason) in zip(rows, expected, strict=True):
            assert reason != "ERROR"
            if unit is not None and unit not in row:
                # flagd then buckets flagKey + targetingKey: reported as a note on import.
                assert any(p.path.startswith(f"flags.{key}.") for p in result.problems)
                continue
            assert sp.flag(key, None, row) == value, (key, row)
    assert len(result.translated) > len(result.skipped) > 0 and sampled > 0


def test_flagd_fractional_rule_carries_the_bucketing_key() -> None:
    result = import_flagd(FLAGD)
    flags = {f["key"]: f for f in result.config["flags"]}
    rule = flags["fractional-flag"]["rules"][0]
    assert rule["hashing"] == {"mode": "flagd", "prefix": "fractional-flag", "weight_total": 100}
    assert [r["weight"] for r in rule["rollout"]] == [25, 25, 25, 25]
    assert flags["fractional-flag"]["unit"] == "user.name"
    shared = flags["fractional-flag-A-shared-seed"]["rules"][0]["hashing"]
    assert shared["prefix"] == "shared-seed"
    shorthand = flags["fractional-flag-shorthand"]
    assert shorthand["unit"] == "targetingKey"
    assert shorthand["rules"][0]["hashing"]["weight_total"] == 2
    edge = import_flagd(FLAGD, scheme="legacy").config["flags"]
    legacy = next(f for f in edge if f["key"] == "fractional-hash-edge-flag")
    assert legacy["rules"][0]["hashing"] == {"mode": "flagd-legacy", "prefix": ""}


def test_flagd_if_chains_become_ordered_rules() -> None:
    flag = {
        "state": "ENABLED",
        "variants": {"a": "A", "b": "B", "c": "C", "d": "D"},
        "defaultVariant": "d",
        "targeting": {
            "if": [
                {"!": {"in": [{"var": "country"}, ["US", "CA"]]}},
                "a",
                {"sem_ver": [{"var": "version"}, "^", "2.0.0"]},
                {"if": [{"ends_with": [{"var": "email"}, "@x.com"]}, "b"]},
                "c",
            ]
        },
    }
    result = import_flagd({"flags": {"f": flag}})
    assert result.complete
    sp = splitter(result)
    assert sp.flag("f", None, {}) == "A"  # not in [...] is true without a country, as in JsonLogic
    assert sp.flag("f", None, {"country": "DE"}) == "A"
    assert sp.flag("f", None, {"country": "US", "version": "2.9.1", "email": "q@x.com"}) == "B"
    # The nested if has no else: it answers null, the default variant, not the next branch.
    assert sp.flag("f", None, {"country": "US", "version": "2.0.0-rc.1", "email": "q@y"}) == "D"
    assert sp.flag("f", None, {"country": "US", "version": "3.0.0"}) == "C"


# -- hostile and untranslatable input ---------------------------------------------------------


def test_unknown_operators_and_shapes_are_problems_not_tracebacks() -> None:
    result = import_growthbook(
        {
            "features": {
                "checkout": {
                    "defaultValue": 0,
                    "rules": [
                        {"force": 1},
                        {"force": 2, "condition": {"tags": {"$elemMatch": {"$eq": "x"}}}},
                    ],
                },
                "broken": "not a feature",
            },
            "experiments": [{"key": "k", "variations": [0, 1], "condition": {"a": {"$what": 1}}}],
        }
    )
    assert result.config == {}
    paths = [p.path for p in result.problems]
    assert paths == [
        "features.checkout.rules[1].condition.tags.$elemMatch",
        "features.broken",
        "experiments[0].condition.a.$what",
    ]
    assert all(p.skipped for p in result.problems)
    assert "no exact equivalent" in result.problems[0].message
    assert str(result.problems[0]).startswith(
        "features.checkout.rules[1].condition.tags.$elemMatch: skipped: "
    )
    for importer in (import_growthbook, import_unleash, import_flagd):
        with pytest.raises(ts.ConfigError):
            importer([1, 2, 3])
    with pytest.raises(ts.ConfigError, match="'features' must be an array"):
        import_unleash({"features": {"a": 1}})


def test_mangled_suite_documents_give_problems_or_config_errors_only() -> None:
    """Random values dropped into the suites' documents: each import returns a result whose
    configuration loads, or raises ConfigError; nothing else escapes."""
    rng = random.Random(5)
    junk = [None, True, 0, -1, 1.5, "", "x", [], {}, [1], {"a": 1}, "$in", 1e308, [[0, 1]]]

    def mangle(node: Any) -> None:
        if isinstance(node, (dict, list)) and node:
            key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
            if rng.random() < 0.3:
                node[key] = rng.choice(junk)
            else:
                mangle(node[key])

    growthbook = [{"experiments": [c[2]]} for c in CASES["run"]] + [
        {"features": c[1].get("features", {})} for c in CASES["feature"]
    ]
    unleash = [json.loads(f.read_text(encoding="utf-8")) for f in UNLEASH_SPECS]
    for importer, docs in [
        (import_growthbook, growthbook),
        (import_unleash, unleash),
        (import_flagd, [FLAGD]),
    ]:
        for _ in range(300):
            doc = json.loads(json.dumps(rng.choice(docs)))
            for _ in range(rng.randint(1, 4)):
                mangle(doc)
            try:
                result = importer(doc)
            except ts.ConfigError:
                continue
            ts.parse_config(result.config)


def test_deep_nesting_is_refused_with_a_path() -> None:
    cond: dict[str, Any] = {"a": 1}
    for _ in range(500):
        cond = {"$not": cond}
    result = import_growthbook(
        {"experiments": [{"key": "k", "variations": [0, 1], "condition": cond}]}
    )
    (problem,) = result.problems
    assert problem.skipped and "nested deeper than 200 levels" in problem.message


def test_growthbook_condition_negations_are_two_valued() -> None:
    exp = {
        "key": "k",
        "variations": [0, 1],
        "condition": {"$not": {"country": {"$in": ["US", "CA"]}}, "tier": {"$ne": "free"}},
    }
    result = import_growthbook({"experiments": [exp]})
    entry = result.config["experiments"][0]
    assert entry["targeting"] == (
        '(country is null or country not in ["US", "CA"]) and (tier is null or tier != "free")'
    )
    sp = splitter(result)
    for attrs, want in [({}, True), ({"country": "US"}, False), ({"tier": "free"}, False)]:
        from growthbook import Experiment, GrowthBook

        peer = GrowthBook(attributes={"id": "u-1", **attrs}).run(Experiment(**exp)).inExperiment
        assert peer is want
        assert sp.assign("k", "u-1", attrs).in_experiment is want


# -- the command -------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trafficsplit", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_writes_a_configuration_that_loads(tmp_path: Path) -> None:
    src = tmp_path / "flags.json"
    src.write_text(json.dumps(FLAGD), encoding="utf-8")
    out = tmp_path / "config" / "flagd.yaml"
    out.parent.mkdir()
    done = run_cli("import", "flagd", str(src), "-o", str(out))
    assert done.returncode == 1, done.stderr  # some flags are skipped
    text = out.read_text(encoding="utf-8")
    assert text.startswith(
        f"# Imported by 'trafficsplit import' from {src}.\n# Hashing mode: flagd"
    )
    snapshot = ts.load_config(out)
    assert len(snapshot.flags) == len(import_flagd(FLAGD).translated)
    lines = done.stderr.splitlines()
    assert (
        f"{src}: flags.null-default-flag.defaultVariant: skipped: no default variant"
        in "\n".join(lines)
    )
    counts = import_flagd(FLAGD)
    assert lines[-1].startswith(
        f"imported {len(counts.translated)} entries, skipped {len(counts.skipped)}"
    )
    assert run_cli("import", "flagd", str(src), "-o", str(out), "--strict").returncode == 2
    legacy = run_cli("import", "flagd", str(src), "--flagd-scheme", "legacy")
    assert "mode: flagd-legacy" in legacy.stdout
    assert ts.parse_config(__import__("yaml").safe_load(legacy.stdout)).flags


def test_cli_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = tmp_path / "gb.json"
    clean.write_text(
        json.dumps({"experiments": [{"key": "e", "variations": ["a", "b"], "hashVersion": 2}]})
    )
    assert main(["import", "growthbook", str(clean)]) == 0
    out = capsys.readouterr()
    assert "hashing:\n    mode: growthbook-v2\n    seed: e\n" in out.out
    assert out.err.strip() == "imported 1 entry, skipped 0"
    assert main(["import", "growthbook", str(clean), "--json", "--encoding", "codepoints"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["translated"] == ["experiments[0]"]
    assert report["config"]["experiments"][0]["hashing"]["encoding"] == "codepoints"
    # Unreadable input: one line, exit 2.
    bad = tmp_path / "bad.json"
    for content in [b"{not json", b"\xff\xfe", b"[" * 10_000_000, b"[1, 2]"]:
        bad.write_bytes(content)
        assert main(["import", "unleash", str(bad)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("trafficsplit import: "), err
    assert main(["import", "flagd", str(tmp_path / "missing.json")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["import", "flagd", str(clean), "--encoding", "utf8"]) == 2


def test_import_problem_is_a_plain_record() -> None:
    problem = ImportProblem("flags.a.targeting", "why", skipped=False)
    assert str(problem) == "flags.a.targeting: note: why"
