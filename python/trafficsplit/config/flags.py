"""Feature flags: checked and compiled in one pass (rules, rollouts, prerequisites). Their shape,
and the type of their values, was checked by the schema; what is checked here is what a schema
cannot say."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .. import hashing_modes
from .._frozen import freeze
from ..errors import ConfigError
from ..experiment import Experiment
from .checker import Checker, child, items_of, kind_of, section_entries
from .experiments import _lists
from .model import FlagConfig, FlagRule


def _flag_value(checker: Checker, typ: str, value: Any, path: str) -> bool:
    """What the schema cannot see of a value the schema accepted: a YAML date is a string in
    JSON but not a string value, and a json value must be JSON-able."""
    if typ == "string" and not isinstance(value, str):
        checker.add(path, f"expected a string value, got {kind_of(value)}")
        return False
    if typ == "json":
        try:
            freeze(value, path)
        except ConfigError as exc:
            checker.add(path, str(exc))
            return False
    return True


def _fits(typ: str, value: Any) -> bool:
    """Whether a value can be a value of a flag of this type."""
    if typ == "bool":
        return isinstance(value, bool)
    if typ == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if typ == "string":
        return isinstance(value, str)
    return True  # json: any JSON value


def _rollout_value(typ: str, value: Any) -> Any:
    """A rollout's value from a mapping key: in JSON every key is a string, so the keys of a
    bool or number flag are read as JSON (``"true"``, ``"0.5"``); YAML keys keep their type."""
    if typ in ("bool", "number") and isinstance(value, str):
        return json.loads(value)
    return value


def compile_flags(checker: Checker, items: list[tuple[str, str, Any]]) -> dict[str, FlagConfig]:
    out: dict[str, FlagConfig] = {}
    paths: dict[str, tuple[str, str]] = {}
    for path, m, key in section_entries(checker, items, "flag"):
        before = len(checker.issues)
        paths[key] = (checker.file, path)
        if not checker.ok(child(path, "type")) or "type" not in m:
            continue
        typ = m["type"]
        default = m.get("default")
        if checker.ok(child(path, "default")) and "default" in m:
            _flag_value(checker, typ, default, child(path, "default"))
        rules = []
        lists = _lists(checker, m.get("lists"), child(path, "lists"))
        for rule_index, (p, rule) in enumerate(items_of(m.get("rules"), child(path, "rules"))):
            if not isinstance(rule, Mapping):
                continue
            when = None
            if lists is not None or "lists" not in m:
                when = checker.targeting(rule.get("when"), child(p, "when"), lists)
            if not checker.ok(p):
                continue
            if "value" in rule:
                for extra in ("exposure", "hashing"):
                    if extra in rule:
                        checker.add(child(p, extra), f"{extra} applies to a rollout rule only")
                if _flag_value(checker, typ, rule["value"], child(p, "value")):
                    rules.append(FlagRule(when, freeze(rule["value"], p)))
                continue
            rollout, rp = rule["rollout"], child(p, "rollout")
            if isinstance(rollout, Mapping):
                pairs = [(_rollout_value(typ, v), w, child(rp, str(v))) for v, w in rollout.items()]
            else:
                pairs = [
                    (e["value"], e["weight"], child(child(rp, i), "value"))
                    for i, e in enumerate(rollout)
                ]
            ok = all([_flag_value(checker, typ, v, where) for v, _, where in pairs])
            weights = [float(w) for _, w, _ in pairs]
            if ok and abs(math.fsum(weights) - 100) > 1e-9:
                checker.add(rp, f"rollout weights must sum to 100, got {math.fsum(weights):g}")
                ok = False
            if ok:
                # Named by the rule's position in the configuration (docs/assignment-spec.md).
                try:
                    # A peer mode's defaults (seed, prefix, ...) come from the flag's key.
                    mode = hashing_modes.resolve(rule.get("hashing", "ts1"), key, key)
                    exp = Experiment(
                        f"{key}/rule{rule_index}",
                        {f"v{i}": w for i, w in enumerate(weights)},
                        float(rule.get("exposure", 1.0)),
                        hashing=mode or "ts1",
                    )
                except ConfigError as exc:
                    checker.add(p, str(exc))
                    continue
                values = tuple(freeze(v, rp) for v, _, _ in pairs)
                rules.append(FlagRule(when, None, exp, values))
        prereqs = []
        for p, pre in items_of(m.get("prerequisites"), child(path, "prerequisites")):
            if isinstance(pre, Mapping) and checker.ok(p):
                other = checker.text(pre["flag"], child(p, "flag"), "a flag key")
                if other is not None:
                    prereqs.append((other, pre["value"]))
        unit = checker.text(m.get("unit", "user_id"), child(path, "unit"), "a non-empty string key")
        if len(checker.issues) == before and checker.ok(path) and unit is not None:
            out[key] = FlagConfig(
                key,
                typ,
                freeze(default, path),
                m.get("enabled", True),
                tuple(rules),
                tuple(prereqs),
                unit,
            )
    # Prerequisites name known flags and form no cycle.
    for key, flag in out.items():
        source, path = paths[key]
        checker.file = source
        for i, (other, value) in enumerate(flag.prerequisites):
            if other not in out and other not in paths:
                checker.add(child(child(path, "prerequisites"), i), f"unknown flag '{other}'")
            elif other in out and not _fits(out[other].type, value):
                # A value of another type than the flag's can never hold: the flag would be off.
                checker.add(
                    child(child(child(path, "prerequisites"), i), "value"),
                    f"flag '{other}' is a {out[other].type} flag; {kind_of(value)} can never "
                    "be its value",
                )
    state: dict[str, int] = {}

    def visit(key: str, trail: list[str]) -> None:
        if state.get(key) == 2 or key not in out:
            return
        if state.get(key) == 1:
            cycle = " -> ".join([*trail[trail.index(key) :], key])
            source, path = paths[key]
            checker.file = source
            checker.add(child(path, "prerequisites"), f"prerequisites form a cycle: {cycle}")
            return
        state[key] = 1
        for other, _ in out[key].prerequisites:
            visit(other, [*trail, key])
        state[key] = 2

    for key in out:
        visit(key, [])
    return out
