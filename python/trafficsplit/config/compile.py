"""Validation and compilation in one pass: documents in, a :class:`Snapshot` or every problem
out."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

from .._core import assignment as _assignment
from .._frozen import FrozenDict
from ..errors import ConfigError
from .checker import Checker, child, items_of, section_entries
from .experiments import compile_experiments
from .flags import compile_flags
from .model import (
    TOP_LEVEL,
    ConfigValidationError,
    ExperimentConfig,
    HoldoutConfig,
    LayerConfig,
    Snapshot,
)
from .schema import validate


def compile_documents(documents: list[tuple[str, Any]]) -> Snapshot:
    checker = Checker()
    merged: dict[str, list[tuple[str, str, Any]]] = {k: [] for k in TOP_LEVEL if k != "version"}
    for source, data in documents:
        checker.file = source
        checker.structure(validate(data))
        if not isinstance(data, Mapping):
            continue
        for section in merged:
            for p, item in items_of(data.get(section), section):
                merged[section].append((source, p, item))

    try:
        layers = compile_layers(checker, merged["layers"])
        holdouts = compile_holdouts(checker, merged["holdouts"])
        experiments = compile_experiments(
            checker, merged["experiments"] + merged["rollouts"], layers, holdouts
        )
        ranged = layer_ranges(checker, layers, experiments, merged["experiments"])
        flags = compile_flags(checker, merged["flags"])
    except (ConfigError, TypeError, ValueError, OverflowError, KeyError) as exc:
        # A shape no check above anticipated: still a report, never a traceback.
        checker.add("", f"could not be validated ({type(exc).__name__}: {exc})")
        raise ConfigValidationError(checker.issues) from exc
    if checker.issues:
        raise ConfigValidationError(checker.issues)
    # Without issues, every layer and holdout compiled.
    valid_holdouts = {k: v for k, v in holdouts.items() if v is not None}
    experiments = {
        k: dataclasses.replace(e, route=compile_route(e, ranged, valid_holdouts))
        for k, e in experiments.items()
    }
    raw = {"documents": [{"source": s, "data": d} for s, d in documents]}
    canonical = json.dumps(
        [d for _, d in documents], sort_keys=True, default=str, separators=(",", ":")
    )
    import hashlib  # OpenSSL's: loaded with the first configuration, not at package import

    version = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    return Snapshot(
        FrozenDict(experiments),
        FrozenDict(ranged),
        FrozenDict(valid_holdouts),
        FrozenDict(flags),
        version,
        tuple(s for s, _ in documents),
        raw,
    )


def compile_route(
    e: ExperimentConfig, layers: Mapping[str, LayerConfig], holdouts: Mapping[str, HoldoutConfig]
) -> Any:
    """The core's route of one experiment: its holdouts, its layer range, its status and its
    time window around the compiled experiment, evaluated with it in one call. The stages'
    salts are derived by the core's stage rule (``<salt>/holdout``, ``<salt>/layer``)."""
    stages = [(holdouts[h].salt, holdouts[h].buckets, holdouts[h].threshold) for h in e.holdouts]
    layer = None
    if e.layer is not None:
        spec = layers[e.layer]
        lo, hi = spec.ranges.get(e.key, (0, 0))
        layer = (spec.salt, spec.buckets, lo, hi)
    return _assignment.Route(
        e.experiment.compiled, stages, layer, e.status != "running", e.start_us, e.end_us
    )


def parse_config(data: Mapping[str, Any], source: str = "") -> Snapshot:
    """Validates and compiles a configuration given as a mapping (as loaded from YAML/JSON)."""
    return compile_documents([(source, data)])


def snapshot_from_json(text: str | bytes) -> Snapshot:
    """The snapshot of :meth:`Snapshot.to_json`'s text, validated and compiled again."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"snapshot JSON: not JSON ({exc})") from None
    documents = data.get("documents") if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or data.get("trafficsplit_snapshot") != 1
        or not isinstance(documents, list)
        or not all(isinstance(d, dict) and isinstance(d.get("source"), str) for d in documents)
    ):
        raise ConfigError(
            "snapshot JSON: expected an object {'trafficsplit_snapshot': 1, 'documents': "
            "[{'source': ..., 'data': ...}, ...]} as written by Snapshot.to_json"
        )
    return compile_documents([(d["source"], d.get("data")) for d in documents])


def compile_layers(
    checker: Checker, items: list[tuple[str, str, Any]]
) -> dict[str, LayerConfig | None]:
    """Every layer by key; None for one with problems (its key can still be referred to)."""
    out: dict[str, LayerConfig | None] = {}
    for path, m, key in section_entries(checker, items, "layer"):
        salt = checker.text(m.get("salt", key), child(path, "salt"), "a salt (a string)")
        ok = checker.ok(path) and salt is not None
        out[key] = LayerConfig(key, salt, m.get("buckets", 10_000)) if ok and salt else None
    return out


def compile_holdouts(
    checker: Checker, items: list[tuple[str, str, Any]]
) -> dict[str, HoldoutConfig | None]:
    """Every holdout by key; None for one with problems (its key can still be referred to)."""
    out: dict[str, HoldoutConfig | None] = {}
    for path, m, key in section_entries(checker, items, "holdout"):
        salt = checker.text(m.get("salt", key), child(path, "salt"), "a salt (a string)")
        ok = checker.ok(path) and salt is not None
        out[key] = (
            HoldoutConfig(key, float(m["percent"]), salt, m.get("buckets", 10_000))
            if ok and salt
            else None
        )
    return out


def layer_ranges(
    checker: Checker,
    layers: Mapping[str, LayerConfig | None],
    experiments: Mapping[str, ExperimentConfig],
    items: list[tuple[str, str, Any]],
) -> dict[str, LayerConfig]:
    """Each layer's experiments take consecutive bucket ranges in configuration order."""
    out = {}
    paths: dict[str, tuple[str, str]] = {}
    for source, path, item in items:
        if isinstance(item, Mapping) and isinstance(item.get("key"), str):
            paths.setdefault(item["key"], (source, path))
    for key, layer in layers.items():
        if layer is None:
            continue
        ranges: dict[str, tuple[int, int]] = {}
        cursor = 0
        total = 0.0
        members = [
            (e.key, e.layer_share)
            for e in experiments.values()
            if e.layer == key and e.layer_share is not None
        ]
        for member, share in members:
            total += share
            count = math.floor(share / 100 * layer.buckets + 0.5)
            ranges[member] = (cursor, min(layer.buckets, cursor + count))
            cursor += count
        if total > 100 + 1e-9:
            listing = ", ".join(f"{member}={share:g}" for member, share in members)
            source, path = paths.get(members[-1][0], ("", "experiments"))
            checker.file = source
            checker.add(
                child(path, "layer_share"),
                f"layer '{key}' is over-booked: shares add up to {total:g} percent "
                f"({listing}); experiments in one layer must share at most 100",
            )
        out[key] = LayerConfig(layer.key, layer.salt, layer.buckets, FrozenDict(ranges))
    return out
