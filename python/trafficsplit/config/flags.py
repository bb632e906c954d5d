"""Feature flags: checked and compiled in one pass (rules, rollouts, prerequisites)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from .._frozen import freeze
from ..errors import ConfigError
from ..experiment import Experiment
from .checker import Checker, child, items_of, kind_of, section_entries
from .model import FLAG_TYPES, FlagConfig, FlagRule


def _flag_value(checker: Checker, typ: str, value: Any, path: str) -> bool:
    ok = {
        "bool": isinstance(value, bool),
        "string": isinstance(value, str),
        "number": isinstance(value, numbers.Real) and not isinstance(value, bool),
        "json": True,
    }.get(typ, True)
    if not ok:
        checker.add(path, f"expected a {typ} value, got {kind_of(value)}")
        return False
    if typ == "json":
        try:
            freeze(value, path)
        except ConfigError as exc:
            checker.add(path, str(exc))
            return False
    return True


def compile_flags(checker: Checker, items: list[tuple[str, str, Any]]) -> dict[str, FlagConfig]:
    out: dict[str, FlagConfig] = {}
    paths: dict[str, tuple[str, str]] = {}
    allowed = (
        (
            "key",
            "type",
            "default",
            "enabled",
            "rules",
            "prerequisites",
            "unit",
            "lists",
            "description",
        ),
        ("key", "type", "default"),
    )
    for path, m, key in section_entries(checker, items, "flag", lambda _: allowed):
        paths[key] = (checker.file, path)
        typ = m.get("type")
        if typ not in FLAG_TYPES:
            checker.add(
                child(path, "type"),
                f"expected one of {', '.join(FLAG_TYPES)}, got {kind_of(typ)}",
            )
            continue
        default = m.get("default")
        ok = _flag_value(checker, typ, default, child(path, "default"))
        enabled = m.get("enabled", True)
        if not isinstance(enabled, bool):
            checker.add(child(path, "enabled"), f"expected true or false, got {kind_of(enabled)}")
            ok = False
        rules = []
        lists = m.get("lists")
        for rule_index, (p, rule) in enumerate(
            items_of(checker, m.get("rules"), child(path, "rules"))
        ):
            r = checker.mapping(rule, p)
            if r is None:
                ok = False
                continue
            checker.keys(r, p, ("when", "value", "rollout"))
            when = checker.targeting(r.get("when"), child(p, "when"), lists)
            if r.get("when") is not None and when is None:
                ok = False
            if ("value" in r) == ("rollout" in r):
                checker.add(p, "a rule gives either a 'value' or a 'rollout', not both or neither")
                ok = False
                continue
            if "value" in r:
                ok &= _flag_value(checker, typ, r["value"], child(p, "value"))
                rules.append(FlagRule(when, freeze(r["value"], p) if ok else None))
                continue
            rollout = r["rollout"]
            rp = child(p, "rollout")
            pairs: list[tuple[Any, Any]] = []
            if isinstance(rollout, Mapping):
                pairs = list(rollout.items())
            elif isinstance(rollout, list):
                for i, entry in enumerate(rollout):
                    if not isinstance(entry, Mapping) or set(entry) != {"value", "weight"}:
                        checker.add(child(rp, i), "expected {value: ..., weight: ...}")
                        ok = False
                        continue
                    pairs.append((entry["value"], entry["weight"]))
            else:
                checker.add(rp, f"expected a mapping of value to weight, got {kind_of(rollout)}")
                ok = False
                continue
            values, weights = [], []
            for v, w in pairs:
                ok &= _flag_value(checker, typ, v, child(rp, str(v)))
                wv = checker.number(w, child(rp, str(v)), 0, 100, "a weight in percent")
                if wv is None:
                    ok = False
                values.append(v)
                weights.append(wv or 0.0)
            if ok and values and abs(math.fsum(weights) - 100) > 1e-9:
                checker.add(rp, f"rollout weights must sum to 100, got {math.fsum(weights):g}")
                ok = False
            if not values:
                checker.add(rp, "a rollout needs at least one value with a weight")
                ok = False
            if ok and values:
                # Named by the rule's position in the configuration (docs/assignment-spec.md).
                exp = Experiment(
                    f"{key}/rule{rule_index}", {f"v{i}": w for i, w in enumerate(weights)}
                )
                rules.append(FlagRule(when, None, exp, tuple(freeze(v, rp) for v in values)))
        prereqs = []
        for p, pre in items_of(checker, m.get("prerequisites"), child(path, "prerequisites")):
            pm = checker.mapping(pre, p)
            if pm is None or "flag" not in pm or "value" not in pm:
                checker.add(p, "expected {flag: <key>, value: <value>}")
                ok = False
                continue
            if not isinstance(pm["flag"], str):
                checker.add(child(p, "flag"), f"expected a flag key, got {kind_of(pm['flag'])}")
                ok = False
                continue
            prereqs.append((pm["flag"], pm["value"]))
        unit = m.get("unit", "user_id")
        if ok:
            out[key] = FlagConfig(
                key, typ, freeze(default, path), enabled, tuple(rules), tuple(prereqs), unit
            )
    # Prerequisites name known flags and form no cycle.
    for key, flag in out.items():
        source, path = paths[key]
        checker.file = source
        for i, (other, _) in enumerate(flag.prerequisites):
            if other not in out and other not in paths:
                checker.add(child(child(path, "prerequisites"), i), f"unknown flag '{other}'")
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
