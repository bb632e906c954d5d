"""What a configuration change does to units, computed exactly from the bucket maps.

>>> import trafficsplit as ts
>>> old = ts.parse_config({"experiments": [{"key": "e", "arms": {"a": 50, "b": 50}}]})
>>> new = ts.parse_config({"experiments": [{"key": "e", "arms": {"a": 10, "b": 90}}]})
>>> p = plan(old, new)
>>> p.experiment("e").moved
0.4

Every stage a unit passes to be exposed (not held out by each holdout, inside its layer range,
under the exposure threshold) hashes with its own salt, so the stages are independent and the
share of units that pass all of them is the product of the per-stage shares. A stage whose salt
and bucket count did not change keeps every unit's bucket, so the share that passes it before
*and* after is the overlap of the two bucket ranges; a stage whose hashing changed re-draws its
units, and the two versions pass independent sets. Among the units exposed in both versions,
the share that changes arm is the share of arm buckets whose arm (by name) differs.

Figures are shares of all units of the experiment's unit id, counted among the units that match
its targeting in both versions (targeting reads request attributes, which a configuration alone
cannot count). They describe the latest allocation step of each experiment, which is what
:class:`trafficsplit.Splitter` serves when it is not given a time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from . import _time, hashing_modes
from .config import ExperimentConfig, LayerConfig, Snapshot

__all__ = [
    "ExperimentPlan",
    "FlagPlan",
    "HoldoutPlan",
    "LayerPlan",
    "LayerSlot",
    "Plan",
    "plan",
]


@dataclass(frozen=True)
class ExperimentPlan:
    """One experiment (or rollout) before and after.

    ``change``: ``added``, ``removed``, ``changed`` or ``unchanged``. Shares are in 0..1, of
    all units. ``moved``, ``entered`` and ``left`` are ``None`` when every unit is
    re-randomised (``rerandomised``; ``rerandomised_because`` says which setting did it).
    """

    key: str
    change: str
    exposed_before: float
    exposed_after: float
    moved: float | None
    entered: float | None
    left: float | None
    rerandomised: bool = False
    rerandomised_because: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def stayed(self) -> float | None:
        """Exposed before and after, in the same arm."""
        if self.moved is None or self.left is None:
            return None
        return max(0.0, self.exposed_before - self.left - self.moved)


@dataclass(frozen=True)
class LayerSlot:
    """An experiment's range ``[lo, hi)`` of layer buckets and its share of the layer."""

    experiment: str
    lo: int
    hi: int
    share: float


@dataclass(frozen=True)
class LayerPlan:
    """A layer's occupancy before and after (``None`` where the layer does not exist)."""

    key: str
    buckets_before: int | None
    buckets_after: int | None
    salt_before: str | None
    salt_after: str | None
    before: tuple[LayerSlot, ...]
    after: tuple[LayerSlot, ...]
    free_before: float | None
    free_after: float | None

    @property
    def change(self) -> str:
        if self.buckets_before is None:
            return "added"
        if self.buckets_after is None:
            return "removed"
        same = (
            self.buckets_before == self.buckets_after
            and self.salt_before == self.salt_after
            and self.before == self.after
        )
        return "unchanged" if same else "changed"


@dataclass(frozen=True)
class HoldoutPlan:
    """A holdout's percent and salt before and after (``None`` where it does not exist)."""

    key: str
    percent_before: float | None
    percent_after: float | None
    salt_before: str | None
    salt_after: str | None

    @property
    def change(self) -> str:
        if self.percent_before is None:
            return "added"
        if self.percent_after is None:
            return "removed"
        same = self.percent_before == self.percent_after and self.salt_before == self.salt_after
        return "unchanged" if same else "changed"


@dataclass(frozen=True)
class FlagPlan:
    """A flag whose definition was added, removed or changed."""

    key: str
    change: str


@dataclass(frozen=True)
class Plan:
    """Everything a change from one snapshot to another does; ``str(plan)`` is the table that
    ``trafficsplit plan OLD NEW`` prints."""

    version_before: str
    version_after: str
    experiments: tuple[ExperimentPlan, ...]
    layers: tuple[LayerPlan, ...]
    holdouts: tuple[HoldoutPlan, ...]
    flags: tuple[FlagPlan, ...]

    @property
    def added(self) -> tuple[str, ...]:
        return tuple(e.key for e in self.experiments if e.change == "added")

    @property
    def removed(self) -> tuple[str, ...]:
        return tuple(e.key for e in self.experiments if e.change == "removed")

    @property
    def changed(self) -> bool:
        """True when anything at all differs."""
        return (
            any(e.change != "unchanged" for e in self.experiments)
            or any(x.change != "unchanged" for x in self.layers)
            or any(h.change != "unchanged" for h in self.holdouts)
            or bool(self.flags)
        )

    def experiment(self, key: str) -> ExperimentPlan:
        for e in self.experiments:
            if e.key == key:
                return e
        raise KeyError(key)

    def layer(self, key: str) -> LayerPlan:
        for layer in self.layers:
            if layer.key == key:
                return layer
        raise KeyError(key)

    def __str__(self) -> str:
        return _render(self)


# -- computation ------------------------------------------------------------------------------


# A gate is one hashing stage a unit must pass to be exposed: identity (what hashes the same
# way) -> (lo, hi, buckets), passed when lo <= bucket < hi.
_Gates = dict[tuple[Any, ...], tuple[int, int, int]]


def _gates(snapshot: Snapshot, e: ExperimentConfig) -> _Gates:
    exp = e.experiment
    gates: _Gates = {}
    for h in e.holdouts:
        hold = snapshot.holdouts[h]
        ident = ("holdout", hold.salt, hold.buckets)
        lo = hold.threshold
        if ident in gates:  # the same salt: held out below the larger threshold
            lo = max(lo, gates[ident][0])
        gates[ident] = (lo, hold.buckets, hold.buckets)
    if e.layer is not None:
        layer = snapshot.layers[e.layer]
        lo, hi = layer.ranges.get(e.key, (0, 0))
        gates[("layer", layer.salt, layer.buckets)] = (lo, hi, layer.buckets)
    spec = exp.peer_spec
    if spec is None:
        gates[("traffic", exp.traffic_salt, exp.buckets, exp.algorithm)] = (
            0,
            exp.exposed_buckets(),
            exp.buckets,
        )
        return gates
    # A peer mode: its traffic and namespace stages; the coverage inside the arm ranges is
    # counted by _coverage.
    if spec["traffic"] is not None:
        traffic: tuple[Any, ...] = ("peer traffic", json.dumps(spec["traffic"], sort_keys=True))
        gates[traffic] = hashing_modes.range_share(spec["traffic"], spec["traffic_steps"][-1])
    if spec["gate"] is not None:
        namespace: tuple[Any, ...] = ("peer namespace", json.dumps(spec["gate"], sort_keys=True))
        gates[namespace] = hashing_modes.range_share(spec["gate"], spec["gate_segments"])
    return gates


def _coverage(e: ExperimentConfig) -> Fraction:
    """The share of units a peer mode's arm ranges cover (GrowthBook's coverage); 1 for ts1."""
    spec = e.experiment.peer_spec
    if spec is None:
        return Fraction(1)
    names = e.experiment.arm_names
    return hashing_modes.arm_overlap(spec, spec, names, names)[0]


def _share(gate: tuple[int, int, int]) -> Fraction:
    lo, hi, buckets = gate
    return Fraction(max(0, hi - lo), buckets)


def _exposed(gates: _Gates, running: bool) -> Fraction:
    if not running:
        return Fraction(0)
    return math.prod((_share(g) for g in gates.values()), start=Fraction(1))


def _both(old: _Gates, new: _Gates) -> Fraction:
    share = Fraction(1)
    for ident in old.keys() | new.keys():
        if ident in old and ident in new:
            (lo1, hi1, b), (lo2, hi2, _) = old[ident], new[ident]
            share *= Fraction(max(0, min(hi1, hi2) - max(lo1, lo2)), b)
        else:
            share *= _share(old.get(ident) or new[ident])
    return share


def _arm_text(e: ExperimentConfig) -> str:
    return ", ".join(f"{a.name} {a.weight:g}" for a in e.experiment.arms)


def _when(us: int | None) -> str:
    if us is None:
        return "none"
    return _time.from_micros(us).isoformat().replace("+00:00", "Z")


def _pct(x: float | None) -> str:
    if x is None:
        return "–"
    p = x * 100
    if p != 0 and abs(p) < 0.05:
        return f"{p:.2g} %"
    return f"{p:.1f} %"


def _rerandomised_because(a: ExperimentConfig, b: ExperimentConfig) -> list[str]:
    ea, eb = a.experiment, b.experiment
    why = []
    if a.unit != b.unit:
        why.append(f"unit {a.unit} -> {b.unit}")
    if ea.salt != eb.salt:
        why.append(f"salt {ea.salt!r} -> {eb.salt!r}")
    if ea.bucket_version != eb.bucket_version:
        why.append(f"bucket_version {ea.bucket_version} -> {eb.bucket_version}")
    if ea.buckets != eb.buckets:
        why.append(f"buckets {ea.buckets} -> {eb.buckets}")
    if ea.algorithm != eb.algorithm:
        why.append(f"algorithm {ea.algorithm} -> {eb.algorithm}")
    if ea.hashing != eb.hashing:
        why.append(f"hashing {_mode_text(ea.hashing)} -> {_mode_text(eb.hashing)}")
    peer = ea.hashing["mode"] != "ts1"
    if not why and not peer and (ea.arm_salt != eb.arm_salt or ea.traffic_salt != eb.traffic_salt):
        why.append(f"arm salt {ea.arm_salt!r} -> {eb.arm_salt!r}")
    return why


def _mode_text(hashing: Mapping[str, Any]) -> str:
    params = ", ".join(f"{k} {v!r}" for k, v in hashing.items() if k != "mode" and v is not None)
    return hashing["mode"] + (f" ({params})" if params else "")


def _notes(old: Snapshot, new: Snapshot, a: ExperimentConfig, b: ExperimentConfig) -> list[str]:
    ea, eb = a.experiment, b.experiment
    notes = []
    if _arm_text(a) != _arm_text(b):
        notes.append(f"arms: {_arm_text(a)} -> {_arm_text(b)}")
    payloads_a = {arm.name: arm.payload for arm in ea.arms}
    for arm in eb.arms:
        if arm.name in payloads_a and payloads_a[arm.name] != arm.payload:
            notes.append(f"payload of arm {arm.name} changed")
    if ea.exposure != eb.exposure:
        notes.append(f"exposure: {ea.exposure:g} -> {eb.exposure:g}")
    if a.layer != b.layer:
        notes.append(f"layer: {a.layer or 'none'} -> {b.layer or 'none'}")
    ra = old.layers[a.layer].ranges.get(a.key) if a.layer is not None else None
    rb = new.layers[b.layer].ranges.get(b.key) if b.layer is not None else None
    if a.layer == b.layer and ra != rb and ra is not None and rb is not None:
        notes.append(f"layer range: [{ra[0]}, {ra[1]}) -> [{rb[0]}, {rb[1]})")
    if a.holdouts != b.holdouts:
        notes.append(
            f"holdouts: {', '.join(a.holdouts) or 'none'} -> {', '.join(b.holdouts) or 'none'}"
        )
    if a.status != b.status:
        notes.append(f"status: {a.status} -> {b.status}")
    if a.start_us != b.start_us:
        notes.append(f"start: {_when(a.start_us)} -> {_when(b.start_us)}")
    if a.end_us != b.end_us:
        notes.append(f"end: {_when(a.end_us)} -> {_when(b.end_us)}")
    ta = None if ea.targeting is None else ea.targeting.expression
    tb = None if eb.targeting is None else eb.targeting.expression
    if ta != tb:
        notes.append(
            "targeting changed: the figures count units that match both; units that match only "
            "the old targeting leave, units that match only the new one enter"
        )
    elif ta is not None and _lists(ea) != _lists(eb):
        notes.append("targeting lists changed: units whose membership changed enter or leave")
    if dict(a.overrides) != dict(b.overrides):
        gone = len(set(a.overrides) - set(b.overrides))
        added = len(set(b.overrides) - set(a.overrides))
        moved = sum(
            1 for k in set(a.overrides) & set(b.overrides) if a.overrides[k] != b.overrides[k]
        )
        notes.append(f"overrides: {added} units added, {gone} removed, {moved} forced elsewhere")
    steps_a, steps_b = _steps(ea), _steps(eb)
    if len(steps_a) > 1 and steps_b[: len(steps_a)] != steps_a:
        notes.append("allocation history rewritten: replays (at=) of past times change")
    return notes


def _lists(exp: Any) -> Any:
    t = exp.targeting
    return None if t is None else t._lists


def _steps(exp: Any) -> list[Any]:
    return [(dict(s.weights), s.exposure, s.effective) for s in exp.steps]


def _compare_peer(
    a: ExperimentConfig,
    b: ExperimentConfig,
    gated: tuple[Fraction, Fraction, Fraction],
    notes: list[str],
) -> ExperimentPlan:
    """Two versions of an experiment in one peer mode: the arm ranges decide, as the peer
    recomputes them from the weights (contiguous ranges in arm order)."""
    ea, eb = a.experiment, b.experiment
    assert ea.peer_spec is not None and eb.peer_spec is not None
    cov_a, cov_b, cov_both, differ = hashing_modes.arm_overlap(
        ea.peer_spec, eb.peer_spec, ea.arm_names, eb.arm_names
    )
    before, after, both = gated[0] * cov_a, gated[1] * cov_b, gated[2] * cov_both
    moved = gated[2] * differ
    weights_a, weights_b = ea.weights, eb.weights
    fewest = sum(max(0.0, w - weights_b.get(name, 0.0)) for name, w in weights_a.items()) / 100
    if moved and float(differ) > fewest + 1e-12:
        notes.append(
            f"{_pct(float(differ))} of covered units change arm where {_pct(fewest)} would do: "
            f"mode {ea.hashing['mode']} recomputes contiguous ranges as the peer does (ts1 "
            "moves only what the new weights need)"
        )
    return _moved_plan(a.key, before, after, both, moved, notes)


def _compare(old: Snapshot, new: Snapshot, a: ExperimentConfig, b: ExperimentConfig) -> Any:
    ga, gb = _gates(old, a), _gates(new, b)
    run_a, run_b = a.status == "running", b.status == "running"
    before, after = _exposed(ga, run_a), _exposed(gb, run_b)
    why = _rerandomised_because(a, b)
    notes = _notes(old, new, a, b)
    if why:
        return ExperimentPlan(
            a.key, "changed", float(before), float(after), None, None, None, True, tuple(why),
            tuple(notes),
        )  # fmt: skip
    both = _both(ga, gb) if run_a and run_b else Fraction(0)
    spec_a, spec_b = a.experiment.peer_spec, b.experiment.peer_spec
    if spec_a is not None and spec_b is not None:
        return _compare_peer(a, b, (before, after, both), notes)
    names_a = np.array([arm.name for arm in a.experiment.arms], dtype=object)
    names_b = np.array([arm.name for arm in b.experiment.arms], dtype=object)
    arms_a = names_a[a.experiment.bucket_map()]
    arms_b = names_b[b.experiment.bucket_map()]
    differ = int(np.count_nonzero(arms_a != arms_b))
    moved = both * Fraction(differ, a.experiment.buckets)
    # The fewest arm buckets any re-allocation to these weights could move.
    fewest = sum(
        max(0, int(np.count_nonzero(arms_a == name)) - int(np.count_nonzero(arms_b == name)))
        for name in set(names_a.tolist())
    )
    if differ > fewest:
        share = a.experiment.buckets
        notes.append(
            f"{_pct(differ / share)} of arm buckets change arm where "
            f"{_pct(fewest / share)} would do: keep the old weights as a history entry"
        )
    return _moved_plan(a.key, before, after, both, moved, notes)


def _moved_plan(
    key: str, before: Fraction, after: Fraction, both: Fraction, moved: Fraction, notes: list[str]
) -> ExperimentPlan:
    """An experiment's plan from the shares exposed before, after and in both versions and
    the share that changes arm."""
    entered, left = after - both, before - both
    change = "changed" if (notes or moved or entered or left) else "unchanged"
    return ExperimentPlan(
        key, change, float(before), float(after), float(moved), float(entered), float(left),
        notes=tuple(notes),
    )  # fmt: skip


def _slots(layer: LayerConfig | None) -> tuple[tuple[LayerSlot, ...], float | None]:
    if layer is None:
        return (), None
    slots = tuple(
        LayerSlot(k, lo, hi, float(Fraction(hi - lo, layer.buckets)))
        for k, (lo, hi) in layer.ranges.items()
    )
    used = sum(hi - lo for _, (lo, hi) in layer.ranges.items())
    return slots, float(Fraction(max(0, layer.buckets - used), layer.buckets))


def _flag_definitions(snapshot: Snapshot) -> dict[str, str]:
    """Each flag's definition as canonical JSON, read from the raw documents."""
    out = {}
    for doc in snapshot.raw.get("documents", ()):
        data = doc.get("data")
        if not isinstance(data, Mapping):
            continue
        for item in data.get("flags") or ():
            if isinstance(item, Mapping) and item.get("key") in snapshot.flags:
                out[item["key"]] = json.dumps(item, sort_keys=True, default=repr)
    for key in snapshot.flags:
        out.setdefault(key, repr(snapshot.flags[key]))
    return out


def plan(old: Snapshot, new: Snapshot) -> Plan:
    """What changing the configuration from ``old`` to ``new`` does, per experiment, layer,
    holdout and flag. Snapshots come from :func:`trafficsplit.load_config` or
    :func:`trafficsplit.parse_config` (or ``Splitter.snapshot``)."""
    experiments = []
    for key, a in old.experiments.items():
        b = new.experiments.get(key)
        if b is None:
            before = float(_exposed(_gates(old, a), a.status == "running") * _coverage(a))
            experiments.append(ExperimentPlan(key, "removed", before, 0.0, 0.0, 0.0, before))
        else:
            experiments.append(_compare(old, new, a, b))
    for key, b in new.experiments.items():
        if key not in old.experiments:
            after = float(_exposed(_gates(new, b), b.status == "running") * _coverage(b))
            experiments.append(ExperimentPlan(key, "added", 0.0, after, 0.0, after, 0.0))

    layers = []
    for key in [*old.layers, *(k for k in new.layers if k not in old.layers)]:
        la, lb = old.layers.get(key), new.layers.get(key)
        sa, fa = _slots(la)
        sb, fb = _slots(lb)
        layers.append(
            LayerPlan(
                key,
                None if la is None else la.buckets,
                None if lb is None else lb.buckets,
                None if la is None else la.salt,
                None if lb is None else lb.salt,
                sa,
                sb,
                fa,
                fb,
            )
        )

    holdouts = []
    for key in [*old.holdouts, *(k for k in new.holdouts if k not in old.holdouts)]:
        ha, hb = old.holdouts.get(key), new.holdouts.get(key)
        holdouts.append(
            HoldoutPlan(
                key,
                None if ha is None else ha.percent,
                None if hb is None else hb.percent,
                None if ha is None else ha.salt,
                None if hb is None else hb.salt,
            )
        )

    flags = []
    da, db = _flag_definitions(old), _flag_definitions(new)
    for key in da:
        if key not in db:
            flags.append(FlagPlan(key, "removed"))
        elif da[key] != db[key]:
            flags.append(FlagPlan(key, "changed"))
    flags += [FlagPlan(key, "added") for key in db if key not in da]

    return Plan(
        old.version, new.version, tuple(experiments), tuple(layers), tuple(holdouts), tuple(flags)
    )


# -- rendering --------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(header), *(line(r) for r in rows)]


def _render(p: Plan) -> str:
    out = [f"plan: configuration {p.version_before} -> {p.version_after}"]
    if not p.changed:
        out.append("no change")
        return "\n".join(out)
    out.append("")
    out.append(
        "experiments (shares of all units, among those that match the targeting before and after)"
    )
    rows = []
    extra: list[list[str]] = []
    for e in p.experiments:
        if e.rerandomised:
            figures = ["re-randomised", "–", "–"]
        else:
            figures = [_pct(e.moved), _pct(e.entered), _pct(e.left)]
        rows.append([e.key, e.change, _pct(e.exposed_before), _pct(e.exposed_after), *figures])
        lines = []
        if e.rerandomised:
            lines.append(f"every unit is re-randomised: {', '.join(e.rerandomised_because)}")
        lines += list(e.notes)
        extra.append(lines)
    header = ["experiment", "change", "exposed before", "exposed after", "moved", "entered", "left"]
    table = _table(header, rows, {2, 3, 4, 5, 6})
    out.append("  " + table[0])
    for row, lines in zip(table[1:], extra, strict=True):
        out.append("  " + row)
        out += [f"      {line}" for line in lines]
    if p.added:
        out.append(f"added: {', '.join(p.added)}")
    if p.removed:
        out.append(f"removed: {', '.join(p.removed)}")

    if p.layers:
        out.append("")
        out.append("layers (share of the layer's buckets and range, before and after)")
        for layer in p.layers:
            if layer.buckets_before is None:
                head = f"{layer.key}: added ({layer.buckets_after:,} buckets)"
            elif layer.buckets_after is None:
                head = f"{layer.key}: removed"
            else:
                head = f"{layer.key} ({layer.buckets_after:,} buckets)"
                if layer.buckets_before != layer.buckets_after:
                    head = (
                        f"{layer.key} ({layer.buckets_before:,} -> {layer.buckets_after:,} buckets)"
                    )
                if layer.salt_before != layer.salt_after:
                    head += f", salt {layer.salt_before!r} -> {layer.salt_after!r}: re-drawn"
            out.append("  " + head)
            before = {s.experiment: s for s in layer.before}
            after = {s.experiment: s for s in layer.after}
            keys = [*before, *(k for k in after if k not in before)]

            def cell(s: LayerSlot | None) -> str:
                return "–" if s is None else f"{_pct(s.share)} [{s.lo}, {s.hi})"

            rows = [[k, cell(before.get(k)), cell(after.get(k))] for k in keys]
            rows.append(["free", _pct(layer.free_before), _pct(layer.free_after)])
            out += ["    " + r for r in _table(["experiment", "before", "after"], rows, set())]

    changed_holdouts = [h for h in p.holdouts if h.change != "unchanged"]
    if changed_holdouts:
        out.append("")
        out.append("holdouts")
        for h in changed_holdouts:
            pa = "–" if h.percent_before is None else f"{h.percent_before:g} %"
            pb = "–" if h.percent_after is None else f"{h.percent_after:g} %"
            text = f"  {h.key}: {h.change}, {pa} -> {pb}"
            if h.salt_before and h.salt_after and h.salt_before != h.salt_after:
                text += f", salt {h.salt_before!r} -> {h.salt_after!r}: re-drawn"
            out.append(text)

    if p.flags:
        out.append("")
        out.append("flags")
        for change in ("added", "removed", "changed"):
            keys = [f.key for f in p.flags if f.change == change]
            if keys:
                out.append(f"  {change}: {', '.join(keys)}")
    return "\n".join(out)
