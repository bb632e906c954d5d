"""Experiments and rollouts (canary schedules, blue-green switches): checked and compiled into
:class:`~trafficsplit.Experiment` objects in one pass. Their shape was checked by the schema;
what is checked here is what a schema cannot say."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .. import _time
from .._frozen import FrozenDict, freeze
from .._shared.keys import unit_key
from .._time import parse_duration
from ..errors import ConfigError
from ..experiment import Arm, Experiment
from .checker import Checker, child, items_of, kind_of, section_entries
from .model import ExperimentConfig, HoldoutConfig, LayerConfig


def _arms(checker: Checker, value: Any, path: str) -> list[Arm] | None:
    """`arms: {name: weight}` or `arms: {name: {weight, payload}}` or a list of {name, weight,
    payload}; None when the schema found a problem in them or one is found here."""
    if value is None or not checker.ok(path):
        return None
    if isinstance(value, Mapping):
        entries = [(name, spec, child(path, str(name))) for name, spec in value.items()]
    else:
        entries = [(item["name"], item, child(path, i)) for i, item in enumerate(value)]
    arms, ok = [], True
    seen: set[str] = set()
    for name, spec, p in entries:
        if not isinstance(name, str):  # a YAML key that JSON would write as a string
            checker.add(p, f"arm names must be non-empty strings, got {kind_of(name)}")
            ok = False
            continue
        if name in seen:
            checker.add(p, f"arm '{name}' is listed twice")
            ok = False
        seen.add(name)
        weight, payload = (
            (spec["weight"], spec.get("payload")) if isinstance(spec, Mapping) else (spec, None)
        )
        try:
            payload = freeze(payload, child(p, "payload"))
        except ConfigError as exc:
            checker.add(child(p, "payload"), str(exc).split(" must ", 1)[-1].join(["must ", ""]))
            ok = False
        arms.append(Arm(name, float(weight), payload))
    if ok:
        total = math.fsum(a.weight for a in arms)
        if abs(total - 100) > 1e-9:
            listing = ", ".join(f"{a.name}={a.weight:g}" for a in arms)
            checker.add(path, f"weights must sum to 100, got {total:g} ({listing})")
            ok = False
    return arms if ok else None


def compile_experiments(
    checker: Checker,
    items: list[tuple[str, str, Any]],
    layers: Mapping[str, LayerConfig | None],
    holdouts: Mapping[str, HoldoutConfig | None],
) -> dict[str, ExperimentConfig]:
    out: dict[str, ExperimentConfig] = {}
    for path, m, key in section_entries(checker, items, "experiment"):
        before = len(checker.issues)
        rollout = path.startswith("rollouts")
        compiled = (
            _rollout(checker, m, path, key) if rollout else _experiment(checker, m, path, key)
        )
        unit = checker.text(m.get("unit", "user_id"), child(path, "unit"), "a non-empty string key")
        layer_path, share_path = child(path, "layer"), child(path, "layer_share")
        layer = m.get("layer") if checker.ok(layer_path) else None
        share = None
        if layer is not None:
            layer = checker.text(layer, layer_path, "a layer key")
            if layer is not None and layer not in layers:
                checker.add(
                    layer_path, f"unknown layer '{layer}'; layers: {', '.join(layers) or '(none)'}"
                )
            if checker.ok(share_path) and "layer_share" in m:
                share = float(m["layer_share"])
        elif m.get("layer", 0) is None and "layer_share" in m and checker.ok(share_path):
            checker.add(share_path, "layer_share needs a layer")  # layer: null
        hs_path = child(path, "holdouts")
        hs = list(m.get("holdouts") or []) if checker.ok(hs_path) else []
        for i, h in enumerate(hs):
            h_path = child(hs_path, i)
            if checker.text(h, h_path, "a holdout key") is not None and h not in holdouts:
                checker.add(
                    h_path, f"unknown holdout '{h}'; holdouts: {', '.join(holdouts) or '(none)'}"
                )
        status = m.get("status", "running")
        start = checker.time(m.get("start"), child(path, "start"))
        end = checker.time(m.get("end"), child(path, "end"))
        if start is not None and end is not None and end <= start:
            checker.add(child(path, "end"), "end must be after start")
        overrides = _overrides(checker, m.get("overrides"), child(path, "overrides"), compiled)
        if compiled is None or unit is None or len(checker.issues) > before or not checker.ok(path):
            continue
        out[key] = ExperimentConfig(
            key, compiled, unit, layer, share, tuple(hs), status, start, end, FrozenDict(overrides)
        )
    return out


def _experiment(checker: Checker, m: Mapping[str, Any], path: str, key: str) -> Experiment | None:
    before = len(checker.issues)
    arms_path = child(path, "arms")
    arms = _arms(checker, m.get("arms"), arms_path)
    exposure_path = child(path, "exposure")
    exposure = m.get("exposure", 1.0)
    if not checker.ok(exposure_path) and (
        isinstance(exposure, int | float) and not isinstance(exposure, bool) and 1 < exposure <= 100
    ):
        checker.amend(exposure_path, f"; did you mean {exposure / 100:g} ({exposure:g} percent)?")
    allocated_at = m.get("allocated_at")
    checker.time(allocated_at, child(path, "allocated_at"))
    history = []
    for p, step in items_of(m.get("history"), child(path, "history")):
        if not isinstance(step, Mapping):
            continue
        weights, weights_path = step.get("weights"), child(p, "weights")
        if isinstance(weights, Mapping) and checker.ok(weights_path) and arms is not None:
            names = {a.name for a in arms}
            unknown = [n for n in weights if n not in names]
            for name in unknown:
                checker.add(
                    child(weights_path, str(name)),
                    f"unknown arm '{name}'; arms: {', '.join(sorted(names))}",
                )
            total = math.fsum(weights.values())
            if not unknown and abs(total - 100) > 1e-9:
                listing = ", ".join(f"{n}={w:g}" for n, w in weights.items())
                checker.add(weights_path, f"weights must sum to 100, got {total:g} ({listing})")
        checker.time(step.get("at"), child(p, "at"))
        history.append(dict(step))
    if history and "allocated_at" not in m:
        checker.add(
            path, "allocated_at is required with history: when did the current weights take effect?"
        )
    lists = _lists(checker, m.get("lists"), child(path, "lists"))
    targeting = None
    if lists is not None or "lists" not in m:
        targeting = checker.targeting(m.get("targeting"), child(path, "targeting"), lists)
    salt = m.get("salt")
    if salt is not None:
        checker.text(salt, child(path, "salt"), "a salt (a string)")
    if arms is None or len(checker.issues) > before or not checker.ok(path):
        return None  # reported, each at its own path; the constructor would repeat one
    try:
        return Experiment(
            key,
            arms,
            float(exposure),
            salt,
            m.get("buckets", 10_000),
            m.get("algorithm", "xxh3"),
            history=history,
            allocated_at=allocated_at,
            bucket_version=m.get("bucket_version", 1),
            targeting=targeting,
            hashing=m.get("hashing", "ts1"),
        )
    except ConfigError as exc:
        checker.add(path, str(exc))
        return None


def _lists(checker: Checker, value: Any, path: str) -> dict[str, list[Any]] | None:
    """Named lists for `@name` in targeting: a mapping of name to a list of values."""
    if value is None or not checker.ok(path):
        return None
    out = {}
    for name, items in value.items():
        if not isinstance(name, str):  # a YAML key that JSON would write as a string
            checker.add(child(path, str(name)), f"list names are identifiers, got {kind_of(name)}")
            return None
        out[name] = items
    return out


def _rollout(checker: Checker, m: Mapping[str, Any], path: str, key: str) -> Experiment | None:
    """Canary schedules and blue-green switches, compiled to experiments."""
    kind = m.get("type", "canary")
    arms_path = child(path, "arms")
    if not checker.ok(child(path, "type")) or not checker.ok(arms_path):
        return None
    arms_spec = m.get(
        "arms",
        {"stable": None, "canary": None} if kind == "canary" else {"blue": None, "green": None},
    )
    (old, old_payload), (new, new_payload) = list(arms_spec.items())
    for name in (old, new):
        if not isinstance(name, str):  # a YAML key that JSON would write as a string
            checker.add(arms_path, f"arm names must be non-empty strings, got {kind_of(name)}")
            return None
    salt = m.get("salt")
    if salt is not None and checker.text(salt, child(path, "salt"), "a salt (a string)") is None:
        return None
    payloads = []
    for name, payload in ((old, old_payload), (new, new_payload)):
        where = child(arms_path, name)
        try:
            payloads.append(freeze(payload, where))
        except ConfigError as exc:  # each arm's payload reported at its own path
            checker.add(where, str(exc))
    if len(payloads) != 2:
        return None
    old_payload, new_payload = payloads
    lists = _lists(checker, m.get("lists"), child(path, "lists"))
    targeting = None
    if lists is not None or "lists" not in m:
        targeting = checker.targeting(m.get("targeting"), child(path, "targeting"), lists)
    if kind == "blue_green":
        active = m.get("active", old)
        if not checker.ok(child(path, "active")):
            return None
        if active not in (old, new):
            checker.add(
                child(path, "active"), f"expected '{old}' or '{new}', got {kind_of(active)}"
            )
            return None
        weights = {old: 100.0 if active == old else 0.0, new: 100.0 if active == new else 0.0}
        return Experiment(
            key,
            [Arm(old, weights[old], old_payload), Arm(new, weights[new], new_payload)],
            salt=salt,
            targeting=targeting,
        )
    start = checker.time(m.get("start"), child(path, "start"))
    if start is None:
        return None  # missing or not a time: reported
    steps = []
    at = _time.from_micros(start)
    last = None
    rolled_back: str | None = None
    bad = False  # every step is checked before giving up, so all problems are reported
    for p, step in items_of(m.get("steps"), child(path, "steps")):
        if not isinstance(step, Mapping) or not checker.ok(p):
            bad = True
            continue
        pct = float(step["percent"])
        hold = parse_duration(step.get("hold", 0))
        if hold is None:  # fits the schema's pattern, but longer than a century
            checker.add(
                child(p, "hold"),
                f"expected a duration such as 30m, 2h or 1d, got {kind_of(step.get('hold'))}",
            )
            bad = True
            continue
        if rolled_back is not None:
            checker.add(
                p, f"nothing may follow the roll-back step at {rolled_back} (percent 0 after >0)"
            )
        elif last is not None and pct < last:
            if pct == 0:
                rolled_back = child(p, "percent")  # a roll-back: allowed as the last step
            else:
                checker.add(
                    child(p, "percent"),
                    f"canary steps only go up ({pct:g} after {last:g}); "
                    "roll back with a last step of percent 0, or edit the schedule",
                )
        last = pct
        steps.append((at, pct))
        at = at + hold
    if bad or not steps:
        return None  # the schema reports a schedule without steps
    history = [{"at": t, "weights": {old: 100 - p, new: p}} for t, p in steps[:-1]]
    final_at, final_pct = steps[-1]
    return Experiment(
        key,
        [Arm(old, 100 - final_pct, old_payload), Arm(new, final_pct, new_payload)],
        salt=salt,
        history=history,
        allocated_at=final_at,
        targeting=targeting,
    )


def _overrides(
    checker: Checker, value: Any, path: str, compiled: Experiment | None
) -> dict[str, str]:
    """`overrides: {arm: [unit, ...]}`."""
    if value is None or not checker.ok(path):
        return {}
    out: dict[str, str] = {}
    names = set(compiled.arm_names) if compiled is not None else None
    for arm, units in value.items():
        p = child(path, str(arm))
        if names is not None and arm not in names:
            checker.add(p, f"unknown arm '{arm}'; arms: {', '.join(sorted(names))}")
            continue
        for i, u in enumerate(units):
            try:
                k = unit_key(u)
            except (TypeError, ValueError):  # a YAML date, or a str with a lone surrogate
                checker.add(child(p, i), f"unit ids are strings or integers, got {kind_of(u)}")
                continue
            if k in out and out[k] != arm:
                checker.add(
                    child(p, i), f"unit {u!r} is forced into two arms ('{out[k]}' and '{arm}')"
                )
            out[k] = arm
    return out
