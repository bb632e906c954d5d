"""Experiments and rollouts (canary schedules, blue-green switches): checked and compiled into
:class:`~trafficsplit.Experiment` objects in one pass."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .. import _time
from .._frozen import FrozenDict, freeze
from .._shared.keys import unit_key
from .._time import parse_duration
from ..errors import ConfigError
from ..experiment import Arm, Experiment
from .checker import ABSENT, Checker, child, items_of, kind_of, section_entries
from .model import STATUSES, ConfigIssue, ExperimentConfig, HoldoutConfig, LayerConfig


def _arms(checker: Checker, value: Any, path: str) -> list[Arm] | None:
    """`arms: {name: weight}` or `arms: {name: {weight, payload}}` or a list of {name, weight,
    payload}."""
    if value is ABSENT:
        return None
    if isinstance(value, Mapping):
        entries = list(value.items())
        paths = [child(path, str(k)) for k, _ in entries]
    elif isinstance(value, list):
        entries = []
        paths = []
        for i, item in enumerate(value):
            p = child(path, i)
            m = checker.mapping(item, p)
            if m is None:
                continue
            checker.keys(m, p, ("name", "weight", "payload"), ("name",))
            entries.append((m.get("name"), {k: v for k, v in m.items() if k != "name"}))
            paths.append(p)
    else:
        checker.add(path, f"expected a mapping of arm name to weight, got {kind_of(value)}")
        return None
    if not entries:
        checker.add(path, "at least one arm is needed")
        return None
    arms, ok = [], True
    seen: set[str] = set()
    for (name, spec), p in zip(entries, paths, strict=True):
        if not isinstance(name, str) or not name:
            checker.add(p, f"arm names must be non-empty strings, got {kind_of(name)}")
            ok = False
            continue
        if name in seen:
            checker.add(p, f"arm '{name}' is listed twice")
            ok = False
        seen.add(name)
        payload = None
        if isinstance(spec, Mapping):
            checker.keys(spec, p, ("weight", "payload"), ("weight",))
            weight = spec.get("weight")
            payload = spec.get("payload")
            wpath = child(p, "weight")
        else:
            weight, wpath = spec, p
        w = checker.number(weight, wpath, 0, 100, "a weight in percent between 0 and 100")
        try:
            payload = freeze(payload, child(p, "payload"))
        except ConfigError as exc:
            checker.add(child(p, "payload"), str(exc).split(" must ", 1)[-1].join(["must ", ""]))
            ok = False
        if w is None:
            ok = False
            continue
        arms.append(Arm(name, w, payload))
    if ok:
        total = math.fsum(a.weight for a in arms)
        if abs(total - 100) > 1e-9:
            listing = ", ".join(f"{a.name}={a.weight:g}" for a in arms)
            checker.add(path, f"weights must sum to 100, got {total:g} ({listing})")
            ok = False
    return arms if ok else None


_EXPERIMENT_KEYS = (
    "key",
    "salt",
    "unit",
    "arms",
    "exposure",
    "allocated_at",
    "history",
    "targeting",
    "lists",
    "layer",
    "layer_share",
    "holdouts",
    "status",
    "start",
    "end",
    "bucket_version",
    "buckets",
    "algorithm",
    "overrides",
    "description",
)


_ROLLOUT_KEYS = (
    "key",
    "salt",
    "unit",
    "type",
    "arms",
    "start",
    "steps",
    "active",
    "targeting",
    "lists",
    "holdouts",
    "status",
    "description",
)


def compile_experiments(
    checker: Checker,
    items: list[tuple[str, str, Any]],
    layers: Mapping[str, LayerConfig],
    holdouts: Mapping[str, HoldoutConfig],
) -> dict[str, ExperimentConfig]:
    out: dict[str, ExperimentConfig] = {}

    def keys(path: str) -> tuple[Sequence[str], Sequence[str]]:
        if path.startswith("rollouts"):
            return _ROLLOUT_KEYS, ("key",)
        return _EXPERIMENT_KEYS, ("key", "arms")

    for path, m, key in section_entries(checker, items, "experiment", keys):
        rollout = path.startswith("rollouts")
        compiled = (
            _rollout(checker, m, path, key) if rollout else _experiment(checker, m, path, key)
        )
        unit = m.get("unit", "user_id")
        if checker.key(unit, child(path, "unit")) is None:
            compiled = None
        layer = m.get("layer")
        share = None
        if layer is not None and not isinstance(layer, str):
            checker.add(child(path, "layer"), f"expected a layer key, got {kind_of(layer)}")
            layer = None
            compiled = None
        elif layer is not None:
            if layer not in layers:
                checker.add(
                    child(path, "layer"),
                    f"unknown layer '{layer}'; layers: {', '.join(layers) or '(none)'}",
                )
            share = checker.number(
                m.get("layer_share"),
                child(path, "layer_share"),
                0,
                100,
                "the percent of the layer this experiment owns (0-100)",
            )
        elif "layer_share" in m:
            checker.add(child(path, "layer_share"), "layer_share needs a layer")
        hs = m.get("holdouts", [])
        if not isinstance(hs, list) or not all(isinstance(h, str) for h in hs):
            checker.add(
                child(path, "holdouts"), f"expected a list of holdout keys, got {kind_of(hs)}"
            )
            hs = []
        for i, h in enumerate(hs):
            if h not in holdouts:
                checker.add(
                    child(child(path, "holdouts"), i),
                    f"unknown holdout '{h}'; holdouts: {', '.join(holdouts) or '(none)'}",
                )
        status = m.get("status", "running")
        if status not in STATUSES:
            checker.add(
                child(path, "status"),
                f"expected one of {', '.join(STATUSES)}, got {kind_of(status)}",
            )
        start = checker.time(m.get("start"), child(path, "start"))
        end = checker.time(m.get("end"), child(path, "end"))
        if start is not None and end is not None and end <= start:
            checker.add(child(path, "end"), "end must be after start")
        overrides = _overrides(checker, m.get("overrides"), child(path, "overrides"), compiled)
        if compiled is None:
            continue
        out[key] = ExperimentConfig(
            key, compiled, unit, layer, share, tuple(hs), status, start, end, FrozenDict(overrides)
        )
    return out


def _experiment(checker: Checker, m: Mapping[str, Any], path: str, key: str) -> Experiment | None:
    arms = _arms(checker, m.get("arms", ABSENT), child(path, "arms"))
    exposure = m.get("exposure", 1.0)
    hint = ""
    if isinstance(exposure, int | float) and not isinstance(exposure, bool) and 1 < exposure <= 100:
        hint = f"; did you mean {exposure / 100:g} ({exposure:g} percent)?"
    exposure = checker.number(
        exposure,
        child(path, "exposure"),
        0,
        1,
        "an exposure between 0 and 1 (a share of units)",
    )
    if hint:
        last = checker.issues[-1]
        checker.issues[-1] = ConfigIssue(last.file, last.path, last.message + hint)
    checker.time(m.get("allocated_at"), child(path, "allocated_at"))
    history = []
    for p, step in items_of(checker, m.get("history"), child(path, "history")):
        s = checker.mapping(step, p)
        if s is None:
            continue
        checker.keys(s, p, ("at", "weights", "exposure"), ("at", "weights"))
        weights = s.get("weights")
        if not isinstance(weights, Mapping):
            checker.add(
                child(p, "weights"),
                f"expected a mapping of arm to weight, got {kind_of(weights)}",
            )
            continue
        before = len(checker.issues)
        if arms is not None:
            names = {a.name for a in arms}
            for name in weights:
                if name not in names:
                    checker.add(
                        child(child(p, "weights"), str(name)),
                        f"unknown arm '{name}'; arms: {', '.join(sorted(names))}",
                    )
        checked = [
            checker.number(w, child(child(p, "weights"), str(n)), 0, 100, "a weight in percent")
            for n, w in weights.items()
        ]
        # A weight that is not a number is reported above, and then the sum is not checked.
        values = [w for w in checked if w is not None]
        if len(checker.issues) == before and abs(math.fsum(values) - 100) > 1e-9:
            listing = ", ".join(f"{n}={w:g}" for n, w in zip(weights, values, strict=True))
            checker.add(
                child(p, "weights"),
                f"weights must sum to 100, got {math.fsum(values):g} ({listing})",
            )
        if "exposure" in s:
            checker.number(s["exposure"], child(p, "exposure"), 0, 1, "an exposure between 0 and 1")
        checker.time(s.get("at"), child(p, "at"))
        history.append({k: v for k, v in s.items()})
    if history and "allocated_at" not in m:
        checker.add(
            path, "allocated_at is required with history: when did the current weights take effect?"
        )
    lists = _lists(checker, m.get("lists"), child(path, "lists"))
    targeting = checker.targeting(m.get("targeting"), child(path, "targeting"), lists)
    version = m.get("bucket_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < 2**32:
        checker.add(
            child(path, "bucket_version"), f"expected an integer >= 1, got {kind_of(version)}"
        )
        return None
    salt = m.get("salt")
    if salt is not None:
        checker.key(salt, child(path, "salt"))
    checker.buckets(m.get("buckets", 10_000), child(path, "buckets"))
    algorithm = m.get("algorithm", "xxh3")
    if algorithm not in ("xxh3", "murmur3"):
        checker.add(child(path, "algorithm"), f"expected xxh3 or murmur3, got {kind_of(algorithm)}")
    if checker.issues and any(
        i.path.startswith(path) and i.file == checker.file for i in checker.issues
    ):
        return None  # reported above, each at its own path; the constructor would repeat one
    if arms is None or exposure is None or (m.get("targeting") is not None and targeting is None):
        return None
    try:
        return Experiment(
            key,
            arms,
            exposure,
            m.get("salt"),
            m.get("buckets", 10_000),
            m.get("algorithm", "xxh3"),
            history=history,
            allocated_at=m.get("allocated_at"),
            bucket_version=version,
            targeting=targeting,
        )
    except ConfigError as exc:
        checker.add(path, str(exc))
        return None


def _lists(checker: Checker, value: Any, path: str) -> dict[str, list[Any]] | None:
    """Named lists for `@name` in targeting: a mapping of name to a list of values."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        checker.add(
            path, f"expected a mapping of list name to a list of values, got {kind_of(value)}"
        )
        return None
    out = {}
    for name, items in value.items():
        if not isinstance(name, str) or not name.isidentifier():
            checker.add(child(path, str(name)), "list names must be identifiers")
        elif not isinstance(items, list):
            checker.add(child(path, name), f"expected a list of values, got {kind_of(items)}")
        else:
            out[name] = items
    return out


def _rollout(checker: Checker, m: Mapping[str, Any], path: str, key: str) -> Experiment | None:
    """Canary schedules and blue-green switches, compiled to experiments."""
    kind = m.get("type", "canary")
    arms_spec = m.get(
        "arms",
        {"stable": None, "canary": None} if kind == "canary" else {"blue": None, "green": None},
    )
    if not isinstance(arms_spec, Mapping) or len(arms_spec) != 2:
        checker.add(
            child(path, "arms"),
            "a rollout has exactly two arms: the current version "
            "first, the new one second (name: payload)",
        )
        return None
    (old, old_payload), (new, new_payload) = list(arms_spec.items())
    for name in (old, new):
        if not isinstance(name, str) or not name:
            checker.add(
                child(path, "arms"),
                f"arm names must be non-empty strings, got {kind_of(name)}",
            )
            return None
    salt = m.get("salt")
    if salt is not None and checker.key(salt, child(path, "salt")) is None:
        return None
    payloads = []
    for name, payload in ((old, old_payload), (new, new_payload)):
        where = child(child(path, "arms"), name)
        try:
            payloads.append(freeze(payload, where))
        except ConfigError as exc:  # each arm's payload reported at its own path
            checker.add(where, str(exc))
    if len(payloads) != 2:
        return None
    old_payload, new_payload = payloads
    lists = _lists(checker, m.get("lists"), child(path, "lists"))
    targeting = checker.targeting(m.get("targeting"), child(path, "targeting"), lists)
    if kind == "blue_green":
        active = m.get("active", old)
        if active not in (old, new):
            checker.add(
                child(path, "active"), f"expected '{old}' or '{new}', got {kind_of(active)}"
            )
            return None
        weights = {old: 100.0 if active == old else 0.0, new: 100.0 if active == new else 0.0}
        return Experiment(
            key,
            [Arm(old, weights[old], old_payload), Arm(new, weights[new], new_payload)],
            salt=m.get("salt"),
            targeting=targeting,
        )
    if kind != "canary":
        checker.add(child(path, "type"), f"expected 'canary' or 'blue_green', got {kind_of(kind)}")
        return None
    start = checker.time(m.get("start"), child(path, "start"))
    if start is None:
        checker.add(path, "a canary needs a start time")
        return None
    steps = []
    at = _time.from_micros(start)
    last = None
    rolled_back: str | None = None
    bad = False  # every step is checked before giving up, so all problems are reported
    for p, step in items_of(checker, m.get("steps"), child(path, "steps")):
        s = checker.mapping(step, p)
        if s is None:
            bad = True
            continue
        checker.keys(s, p, ("percent", "hold"), ("percent",))
        pct = checker.number(
            s.get("percent", ABSENT),
            child(p, "percent"),
            0,
            100,
            "the canary's percent of traffic (0-100)",
        )
        hold = parse_duration(s.get("hold", 0))
        if hold is None:
            checker.add(
                child(p, "hold"),
                f"expected a duration such as 30m, 2h or 1d, got {kind_of(s.get('hold'))}",
            )
        if pct is None or hold is None:
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
    if bad:
        return None
    if not steps:
        checker.add(child(path, "steps"), "a canary needs at least one step")
        return None
    history = [{"at": t, "weights": {old: 100 - p, new: p}} for t, p in steps[:-1]]
    final_at, final_pct = steps[-1]
    return Experiment(
        key,
        [Arm(old, 100 - final_pct, old_payload), Arm(new, final_pct, new_payload)],
        salt=m.get("salt"),
        history=history,
        allocated_at=final_at,
        targeting=targeting,
    )


def _overrides(
    checker: Checker, value: Any, path: str, compiled: Experiment | None
) -> dict[str, str]:
    """`overrides: {arm: [unit, ...]}`."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        checker.add(
            path, f"expected a mapping of arm name to a list of unit ids, got {kind_of(value)}"
        )
        return {}
    out: dict[str, str] = {}
    names = set(compiled.arm_names) if compiled is not None else None
    for arm, units in value.items():
        p = child(path, str(arm))
        if names is not None and arm not in names:
            checker.add(p, f"unknown arm '{arm}'; arms: {', '.join(sorted(names))}")
            continue
        if not isinstance(units, list):
            checker.add(p, f"expected a list of unit ids, got {kind_of(units)}")
            continue
        for i, u in enumerate(units):
            try:
                k = unit_key(u)
            except (TypeError, ValueError):
                checker.add(child(p, i), f"unit ids are strings or integers, got {kind_of(u)}")
                continue
            if k in out and out[k] != arm:
                checker.add(
                    child(p, i), f"unit {u!r} is forced into two arms ('{out[k]}' and '{arm}')"
                )
            out[k] = arm
    return out
