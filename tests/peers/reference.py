"""How GrowthBook, Unleash, flagd, Eppo, LaunchDarkly and Statsig put a unit in a bucket,
re-implemented in plain Python from the peers' own algorithms (each function names the
repository and file it follows) and checked against their published test data
(tests/test_peer_reference.py). It shares no code with trafficsplit: the standard library
hashes (md5, sha1, sha256), mmh3 for MurmurHash3 x86_32, and FNV-1a written out here.

Units follow the modes' convention: a str is its characters, an int its decimal text, bytes
are UTF-8 text. `mode_assign` gives, for a mode name and its parameters, the arm index (or
None), the mode's bucket and the reason, as trafficsplit's `Experiment(..., hashing=...)`
must.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import mmh3

Unit = str | int | bytes


class Indeterminate(Exception):
    """The peer would use a random value here (no stickiness attribute), so the outcome is
    not a function of the inputs."""


class Unsupported(Exception):
    """A feature of the peer this reference does not evaluate (the test skips the case)."""


def unit_text(unit: Unit) -> str:
    if isinstance(unit, bool):
        raise TypeError("a bool is not a unit")
    if isinstance(unit, int):
        return str(unit)
    if isinstance(unit, bytes):
        return unit.decode("utf-8")
    if isinstance(unit, str):
        return unit
    raise TypeError(type(unit).__name__)


def _whole(x: float, what: str) -> int:
    """x as an integer, or ValueError when it is not one (to 1e-9 relative)."""
    r = round(x)
    if abs(x - r) > 1e-9 * max(1.0, abs(x)):
        raise ValueError(f"{what} must be whole, got {x!r}")
    return int(r)


def peer_percent(share: float) -> float:
    """The percentage a peer's configuration would hold for a share 0..1: the share's shortest
    decimal text times 100, exactly (0.29 -> 29, where 0.29 * 100 is 28.999999999999996)."""
    return float(Decimal(repr(float(share))) * 100)


def murmur3_x86_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86_32, unsigned (the mmh3 package)."""
    return mmh3.hash(data, seed, signed=False)


def utf16_low_bytes(s: str) -> bytes:
    """The low byte of each UTF-16 code unit: what murmurhash3js (`key.charCodeAt(i) & 0xff`)
    hashes in the Unleash Node client."""
    return s.encode("utf-16-le")[0::2]


# --------------------------------------------------------------------------------------------
# GrowthBook
# growthbook/growthbook packages/sdk-js/src/util.ts (hashFnv32a, hash, getEqualWeights,
# getBucketRanges, chooseVariation, inNamespace, inRange) and src/core.ts (runExperiment,
# isFilteredOut); Python SDK growthbook/core.py (fnv1a32 over ord(ch)); Go SDK hash.go
# (hash/fnv over the UTF-8 bytes).
# --------------------------------------------------------------------------------------------

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193


def fnv1a32(units: Iterable[int]) -> int:
    h = FNV_OFFSET
    for u in units:
        h ^= u
        h = (h * FNV_PRIME) & 0xFFFFFFFF
    return h


def gb_units(s: str, encoding: str = "utf16") -> list[int]:
    """The integers GrowthBook's FNV-1a consumes: UTF-16 code units (JavaScript charCodeAt),
    code points (Python ord) or UTF-8 bytes (Go, Java)."""
    if encoding == "utf16":
        b = s.encode("utf-16-le")
        return [b[i] | (b[i + 1] << 8) for i in range(0, len(b), 2)]
    if encoding == "codepoints":
        return [ord(c) for c in s]
    if encoding == "utf8":
        return list(s.encode("utf-8"))
    raise ValueError(f"unknown GrowthBook encoding {encoding!r}")


def gb_fnv(s: str, encoding: str = "utf16") -> int:
    return fnv1a32(gb_units(s, encoding))


def gb_bucket(seed: str, value: str, version: int, encoding: str = "utf16") -> int | None:
    """The integer behind `hash`: v1 n in 0..999, v2 n in 0..9999; None for other versions."""
    if version == 2:
        inner = gb_fnv(seed + value, encoding)
        return gb_fnv(str(inner), encoding) % 10000
    if version == 1:
        return gb_fnv(value + seed, encoding) % 1000
    return None


def gb_hash(seed: str, value: str, version: int, encoding: str = "utf16") -> float | None:
    """util.ts `hash(seed, value, version)`: a float in [0, 1) or None."""
    n = gb_bucket(seed, value, version, encoding)
    if n is None:
        return None
    return n / (10000 if version == 2 else 1000)


def gb_equal_weights(n: int) -> list[float]:
    if n <= 0:
        return []
    return [1 / n] * n


def gb_bucket_ranges(
    num_variations: int, coverage: float | None = 1.0, weights: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    """util.ts `getBucketRanges`: coverage clamped to [0, 1]; equal weights when the weights
    are missing, of the wrong length or sum outside [0.99, 1.01]; range i is
    [start_i, start_i + coverage * w_i) with start_i the running sum of the weights."""
    c = 1.0 if coverage is None else coverage
    c = min(max(c, 0.0), 1.0)
    equal = gb_equal_weights(num_variations)
    w = list(weights) if weights is not None else equal
    if len(w) != num_variations:
        w = equal
    total = 0.0
    for x in w:
        total += x
    if total < 0.99 or total > 1.01:
        w = equal
    ranges = []
    cumulative = 0.0
    for x in w:
        start = cumulative
        cumulative += x
        ranges.append((start, start + c * x))
    return ranges


def gb_in_range(n: float, r: Sequence[float]) -> bool:
    return r[0] <= n < r[1]


def gb_choose_variation(n: float, ranges: Sequence[Sequence[float]]) -> int:
    for i, r in enumerate(ranges):
        if gb_in_range(n, r):
            return i
    return -1


def gb_in_namespace(hash_value: str, namespace: Sequence[Any], encoding: str = "utf16") -> bool:
    """util.ts `inNamespace`: hash("__" + id, value, 1) in [start, end)."""
    n = gb_hash("__" + namespace[0], hash_value, 1, encoding)
    if n is None:
        return False
    return namespace[1] <= n < namespace[2]


def _gb_attribute(attributes: Mapping[str, Any], name: str) -> str:
    v = attributes.get(name)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def gb_run_experiment(
    context: Mapping[str, Any], experiment: Mapping[str, Any], encoding: str = "utf16"
) -> tuple[Any, bool, bool]:
    """core.ts `runExperiment` for what bucketing decides: (value, inExperiment, hashUsed).
    Raises Unsupported for URL and query-string forcing, conditions and prerequisites."""
    for key in ("condition", "parentConditions", "url", "include", "groups"):
        if key in experiment:
            raise Unsupported(f"experiment.{key}")
    if "url" in context:
        raise Unsupported("context.url")
    variations = experiment["variations"]

    def result(index: int, hash_used: bool) -> tuple[Any, bool, bool]:
        if index < 0 or index >= len(variations):
            return variations[0], False, False
        return variations[index], True, hash_used

    if len(variations) < 2:
        return result(-1, False)
    if context.get("enabled") is False:
        return result(-1, False)
    forced = context.get("forcedVariations") or {}
    if experiment["key"] in forced:
        return result(forced[experiment["key"]], False)
    if experiment.get("active") is False:
        return result(-1, False)
    attributes = context.get("attributes") or {}
    hash_value = _gb_attribute(attributes, experiment.get("hashAttribute") or "id")
    if not hash_value:
        return result(-1, False)
    filters = experiment.get("filters")
    if filters is not None:
        for f in filters:
            value = _gb_attribute(attributes, f.get("attribute") or "id")
            if not value:
                return result(-1, False)
            n = gb_hash(f["seed"], value, f.get("hashVersion") or 2, encoding)
            if n is None or not any(gb_in_range(n, r) for r in f["ranges"]):
                return result(-1, False)
    elif "namespace" in experiment and not gb_in_namespace(
        hash_value, experiment["namespace"], encoding
    ):
        return result(-1, False)
    seed = experiment.get("seed") or experiment["key"]
    n = gb_hash(seed, hash_value, experiment.get("hashVersion") or 1, encoding)
    if n is None:
        return result(-1, False)
    ranges = experiment.get("ranges") or gb_bucket_ranges(
        len(variations), experiment.get("coverage", 1.0), experiment.get("weights")
    )
    assigned = gb_choose_variation(n, ranges)
    if assigned < 0:
        return result(-1, False)
    if "force" in experiment:
        return result(experiment["force"], False)
    if context.get("qaMode"):
        return result(-1, False)
    return result(assigned, True)


def growthbook_assign(
    unit: Unit,
    weights: Sequence[float],
    exposure: float,
    *,
    seed: str,
    version: int,
    encoding: str = "utf16",
    namespace: Mapping[str, Any] | None = None,
) -> tuple[int | None, int, str]:
    """The growthbook-v1/-v2 modes: weights in percent, exposure as coverage."""
    u = unit_text(unit)
    n = gb_bucket(seed, u, version, encoding)
    assert n is not None
    h = n / (10000 if version == 2 else 1000)
    if namespace is not None and not gb_in_namespace(
        u, (namespace["id"], namespace["start"], namespace["end"]), encoding
    ):
        return None, n, "layer_other"
    arm = growthbook_arm_of(h, weights, exposure)
    if arm is None:
        return None, n, "not_exposed"
    return arm, n, "assigned"


def growthbook_arm_of(h: float, weights: Sequence[float], exposure: float) -> int | None:
    """The arm of hash value h in [0, 1): getBucketRanges with the weights as fractions and
    the exposure as coverage, then chooseVariation."""
    ranges = gb_bucket_ranges(len(weights), exposure, [w / 100 for w in weights])
    arm = gb_choose_variation(h, ranges)
    return None if arm < 0 else arm


# --------------------------------------------------------------------------------------------
# Unleash
# Unleash/unleash-client-node src/strategy/util.ts (normalizedValue: murmurhash3js over
# `${groupId}:${id}`, seed 0 for rollouts and 86028157 for variants), src/variant.ts
# (selectVariant, overrides, stickiness), src/strategy/flexible-rollout-strategy.ts,
# gradual-rollout-*.ts; Unleash/yggdrasil unleash-yggdrasil/src/strategy_parsing.rs
# (normalized_hash over the UTF-8 bytes).
# --------------------------------------------------------------------------------------------

UNLEASH_VARIANT_SEED = 86028157


def unleash_normalized(
    id_: str, group_id: str, normalizer: int = 100, seed: int = 0, encoding: str = "utf8"
) -> int:
    """normalizedValue: murmur3_x86_32(f"{groupId}:{id}", seed) % normalizer + 1."""
    key = f"{group_id}:{id_}"
    if encoding == "utf8":
        data = key.encode("utf-8")
    elif encoding == "utf16-low-byte":
        data = utf16_low_bytes(key)
    else:
        raise ValueError(f"unknown Unleash encoding {encoding!r}")
    return murmur3_x86_32(data, seed) % normalizer + 1


def _unleash_context_value(context: Mapping[str, Any], field: str) -> str | None:
    v = context.get(field)
    if v is None:
        v = (context.get("properties") or {}).get(field)
    if v is None or v == "":
        return None
    return str(v)


def _unleash_sticky_value(context: Mapping[str, Any], stickiness: str | None) -> str | None:
    """None means the peer would draw a random value."""
    if stickiness in (None, "", "default"):
        for field in ("userId", "sessionId", "remoteAddress"):
            v = _unleash_context_value(context, field)
            if v is not None:
                return v
        return None
    if stickiness == "random":
        return None
    return _unleash_context_value(context, stickiness)


def _unleash_constraint(context: Mapping[str, Any], c: Mapping[str, Any]) -> bool:
    op = c.get("operator")
    if op not in ("IN", "NOT_IN"):
        raise Unsupported(f"constraint operator {op}")
    v = _unleash_context_value(context, c["contextName"])
    hit = v is not None and v in c.get("values", [])
    result = hit if op == "IN" else not hit
    return (not result) if c.get("inverted") else result


def _unleash_strategy(
    context: Mapping[str, Any], feature: Mapping[str, Any], s: Mapping[str, Any], encoding: str
) -> bool:
    if s.get("segments"):
        raise Unsupported("segments")
    if not all(_unleash_constraint(context, c) for c in s.get("constraints") or []):
        return False
    name = s["name"]
    p = s.get("parameters") or {}
    if name == "default":
        return True
    if name == "userWithId":
        user = _unleash_context_value(context, "userId")
        ids = [x.strip() for x in str(p.get("userIds", "")).split(",")]
        return user is not None and user in ids
    if name in ("gradualRolloutUserId", "gradualRolloutSessionId"):
        field = "userId" if name == "gradualRolloutUserId" else "sessionId"
        v = _unleash_context_value(context, field)
        if v is None:
            return False
        pct = float(p.get("percentage", 0))
        return pct > 0 and unleash_normalized(v, p.get("groupId", ""), 100, 0, encoding) <= pct
    if name == "gradualRolloutRandom":
        pct = float(p.get("percentage", 0))
        if pct >= 100:
            return True
        if pct <= 0:
            return False
        raise Indeterminate("gradualRolloutRandom")
    if name == "flexibleRollout":
        rollout = float(p.get("rollout", 0))
        group_id = p.get("groupId") or feature["name"]
        stickiness = p.get("stickiness", "default")
        v = _unleash_sticky_value(context, stickiness)
        if v is None:
            if stickiness not in ("default", "random", None, ""):
                return False  # a custom stickiness field that is missing: never enabled
            if rollout >= 100:
                return True
            if rollout <= 0:
                return False
            raise Indeterminate("flexibleRollout without a sticky value")
        return rollout > 0 and unleash_normalized(v, group_id, 100, 0, encoding) <= rollout
    raise Unsupported(f"strategy {name}")


def _unleash_select_variant(
    context: Mapping[str, Any],
    variants: Sequence[Mapping[str, Any]],
    group_id: str,
    stickiness: str | None,
    encoding: str,
) -> Mapping[str, Any] | None:
    total = sum(v.get("weight", 0) for v in variants)
    if total <= 0:
        return None
    for v in variants:
        for o in v.get("overrides") or []:
            value = _unleash_context_value(context, o["contextName"])
            if value is not None and value in o["values"]:
                return v
    sticky = _unleash_sticky_value(context, stickiness)
    if sticky is None:
        positive = [v for v in variants if v.get("weight", 0) > 0]
        if len(positive) == 1:
            return positive[0]
        raise Indeterminate("variant without a sticky value")
    target = unleash_normalized(sticky, group_id, total, UNLEASH_VARIANT_SEED, encoding)
    counter = 0
    for v in variants:
        if v.get("weight", 0) == 0:
            continue
        counter += v["weight"]
        if counter >= target:
            return v
    return None


def _unleash_feature(state: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    for f in state.get("features", []):
        if f["name"] == name:
            return f
    return None


def unleash_is_enabled(
    state: Mapping[str, Any], toggle: str, context: Mapping[str, Any], encoding: str = "utf8"
) -> bool:
    """isEnabled for the strategies that bucketing and simple constraints decide."""
    return _unleash_enabled_strategy(state, toggle, context, encoding)[0]


def _unleash_enabled_strategy(
    state: Mapping[str, Any], toggle: str, context: Mapping[str, Any], encoding: str
) -> tuple[bool, Mapping[str, Any] | None]:
    f = _unleash_feature(state, toggle)
    if f is None or not f.get("enabled"):
        return False, None
    if f.get("dependencies"):
        raise Unsupported("dependencies")
    strategies = f.get("strategies") or []
    if not strategies:
        return True, None
    for s in strategies:
        if _unleash_strategy(context, f, s, encoding):
            return True, s
    return False, None


def unleash_variant(
    state: Mapping[str, Any], toggle: str, context: Mapping[str, Any], encoding: str = "utf8"
) -> dict[str, Any]:
    """getVariant: {name, enabled, feature_enabled[, payload]}. Strategy variants (grouped by
    the strategy's groupId, sticky by its stickiness) come before the feature's variants
    (grouped by the feature name, sticky by the first variant's stickiness)."""
    enabled, strategy = _unleash_enabled_strategy(state, toggle, context, encoding)
    disabled: dict[str, Any] = {"name": "disabled", "enabled": False, "feature_enabled": enabled}
    if not enabled:
        return disabled
    f = _unleash_feature(state, toggle)
    assert f is not None
    chosen = None
    if strategy is not None and strategy.get("variants"):
        p = strategy.get("parameters") or {}
        chosen = _unleash_select_variant(
            context,
            strategy["variants"],
            p.get("groupId") or f["name"],
            p.get("stickiness", "default"),
            encoding,
        )
    elif f.get("variants"):
        stickiness = f["variants"][0].get("stickiness", "default")
        chosen = _unleash_select_variant(context, f["variants"], f["name"], stickiness, encoding)
    if chosen is None:
        return disabled
    out: dict[str, Any] = {"name": chosen["name"], "enabled": True, "feature_enabled": True}
    if "payload" in chosen:
        out["payload"] = chosen["payload"]
    return out


def unleash_assign(
    unit: Unit,
    weights: Sequence[float],
    exposure: float,
    *,
    group_id: str,
    variant_group: str,
    weight_total: int = 1000,
    encoding: str = "utf8",
    rollout: float | None = None,
) -> tuple[int | None, int, str]:
    """The unleash mode: a flexibleRollout at the exposure's percentage (`peer_percent`, or
    `rollout` as given), then the feature's variants with integer weights out of
    weight_total."""
    u = unit_text(unit)
    ints = _unleash_weights(weights, weight_total)
    t = unleash_normalized(u, variant_group, weight_total, UNLEASH_VARIANT_SEED, encoding)
    r = peer_percent(exposure) if rollout is None else rollout
    if not (r > 0 and unleash_normalized(u, group_id, 100, 0, encoding) <= r):
        return None, t - 1, "not_exposed"
    return unleash_arm_of(t, ints), t - 1, "assigned"


def _unleash_weights(weights: Sequence[float], weight_total: int) -> list[int]:
    ints = [_whole(w * weight_total / 100, "weight * weight_total / 100") for w in weights]
    if sum(ints) != weight_total:
        raise ValueError("weights must sum to 100")
    return ints


def unleash_arm_of(t: int, ints: Sequence[int]) -> int:
    """The first variant (weight 0 skipped) whose cumulative weight reaches the target t."""
    cumulative = 0
    for i, w in enumerate(ints):
        if w == 0:
            continue
        cumulative += w
        if cumulative >= t:
            return i
    raise AssertionError("unreachable: the weights sum to weight_total")


# --------------------------------------------------------------------------------------------
# flagd `fractional`
# open-feature/flagd core/pkg/evaluator/fractional.go: current scheme (#1909, 2026-04)
# bucket = (uint32(h) * totalWeight) >> 32; before it, abs(float64(int32(h))) / MaxInt32 * 100
# against cumulative 100 * weight / totalWeight. h = murmur3_x86_32(utf8(bucketBy), 0);
# bucketBy = the first argument if a string, else flagKey + targetingKey.
# --------------------------------------------------------------------------------------------


def flagd_hash(bucket_by: str) -> int:
    return murmur3_x86_32(bucket_by.encode("utf-8"), 0)


def flagd_bucket(bucket_by: str, total_weight: int) -> int:
    return (flagd_hash(bucket_by) * total_weight) >> 32


def flagd_fractional(bucket_by: str, variants: Sequence[tuple[Any, int]]) -> Any:
    """Current scheme: the variant of the first cumulative weight above the bucket; weights
    are integers, negative ones count as 0 (the testbed's clamping); total 0 gives None."""
    weights = [max(0, int(w)) for _, w in variants]
    total = sum(weights)
    if total == 0:
        return None
    b = flagd_bucket(bucket_by, total)
    end = 0
    for (name, _), w in zip(variants, weights, strict=True):
        end += w
        if b < end:
            return name
    raise AssertionError("unreachable")


def flagd_legacy_value(bucket_by: str) -> float:
    h = flagd_hash(bucket_by)
    signed = h - (1 << 32) if h >= (1 << 31) else h
    return abs(float(signed)) / 2147483647 * 100


def flagd_fractional_legacy(bucket_by: str, variants: Sequence[tuple[Any, int]]) -> Any:
    """Legacy scheme: v in [0, 100] against cumulative percentages; None past the end."""
    total = sum(int(w) for _, w in variants)
    v = flagd_legacy_value(bucket_by)
    end = 0.0
    for name, w in variants:
        end += 0.0 if total == 0 else 100 * float(int(w)) / float(total)
        if v < end:
            return name
    return None


def _flagd_var(data: Mapping[str, Any], path: str) -> Any:
    cur: Any = data
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def flagd_json_logic(expr: Any, data: Mapping[str, Any], flag_key: str, legacy: bool) -> Any:
    """The JSON Logic subset the fractional flags of the testbed use: var, cat, if, ==,
    fractional (its arguments evaluated first, as flagd does)."""
    if isinstance(expr, list):
        return [flagd_json_logic(e, data, flag_key, legacy) for e in expr]
    if not isinstance(expr, dict):
        return expr
    ((op, args),) = expr.items()
    if op == "var":
        name = args[0] if isinstance(args, list) else args
        if name == "$flagd.flagKey":
            return flag_key
        return _flagd_var(data, name)
    if op == "if":
        cond = flagd_json_logic(args[0], data, flag_key, legacy)
        branch = args[1] if cond else args[2]
        return flagd_json_logic(branch, data, flag_key, legacy)
    values = flagd_json_logic(args, data, flag_key, legacy)
    if op == "cat":
        return "".join("" if v is None else str(v) for v in values)
    if op == "==":
        return values[0] == values[1]
    if op == "fractional":
        if isinstance(values[0], str):
            bucket_by, rest = values[0], values[1:]
        else:
            rest = values[1:] if values[0] is None else values
            key = data.get("targetingKey")
            if not isinstance(key, str) or key == "":
                return None
            bucket_by = flag_key + key
        variants = [(v[0], int(v[1]) if len(v) > 1 else 1) for v in rest]
        if legacy:
            return flagd_fractional_legacy(bucket_by, variants)
        return flagd_fractional(bucket_by, variants)
    raise Unsupported(f"JSON Logic operator {op}")


def flagd_evaluate(
    flags: Mapping[str, Any], flag_key: str, context: Mapping[str, Any], legacy: bool = False
) -> tuple[Any, str]:
    """(value, reason) of a flag: TARGETING_MATCH, DEFAULT, or ERROR when targeting names a
    variant the flag lacks (the caller's fallback applies)."""
    flag = flags[flag_key]
    variant = flagd_json_logic(flag["targeting"], context, flag_key, legacy)
    if variant is None or variant == "":
        return flag["variants"][flag["defaultVariant"]], "DEFAULT"
    if isinstance(variant, bool):
        variant = "true" if variant else "false"
    if variant not in flag["variants"]:
        return None, "ERROR"
    return flag["variants"][variant], "TARGETING_MATCH"


def flagd_assign(
    unit: Unit, weights: Sequence[float], *, prefix: str, weight_total: int = 100
) -> tuple[int | None, int, str]:
    """The flagd mode: bucketBy = prefix + unit, integer weights out of weight_total."""
    u = unit_text(unit)
    ints = [_whole(w * weight_total / 100, "weight * weight_total / 100") for w in weights]
    b = flagd_bucket(prefix + u, sum(ints))
    return _first_below(b, ints), b, "assigned"


def _first_below(key: int, ints: Sequence[int]) -> int:
    """Arm i owns keys [c_(i-1), c_i) of the running sums c of the integer weights."""
    end = 0
    for i, w in enumerate(ints):
        end += w
        if key < end:
            return i
    raise AssertionError("unreachable: the key is below the total")


def flagd_legacy_assign(
    unit: Unit, weights: Sequence[float], *, prefix: str
) -> tuple[int | None, int, str]:
    """The flagd-legacy mode: whole-percent weights."""
    u = unit_text(unit)
    ints = [_whole(w, "a flagd-legacy weight (whole percent)") for w in weights]
    v = flagd_legacy_value(prefix + u)
    bucket = math.floor(v * 100)
    end = 0.0
    total = sum(ints)
    for i, w in enumerate(ints):
        end += 100 * float(w) / float(total)
        if v < end:
            return i, bucket, "assigned"
    return None, bucket, "not_exposed"


# --------------------------------------------------------------------------------------------
# Eppo
# Eppo-exp/js-sdk-common src/sharders.ts (MD5Sharder: int(md5(input).hex[:8], 16) % total),
# src/evaluator.ts (hashKey = salt + "-" + subjectKey; a split matches when every shard's
# ranges hold the shard, start <= s < end; allocations in order, startAt/endAt, rules),
# src/rules.ts (condition operators).
# --------------------------------------------------------------------------------------------


def eppo_shard(input_: str, total_shards: int = 10000) -> int:
    return int(hashlib.md5(input_.encode("utf-8")).hexdigest()[:8], 16) % total_shards


def _js_string(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def _number(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _eppo_condition(attributes: Mapping[str, Any], c: Mapping[str, Any]) -> bool:
    value = attributes.get(c["attribute"])
    op = c["operator"]
    if op == "IS_NULL":
        return (value is None) if c["value"] else (value is not None)
    if value is None:
        return False
    if op in ("GTE", "GT", "LTE", "LT"):
        cv = c["value"]
        if isinstance(cv, str) and _SEMVER.match(cv):
            raise Unsupported("semantic version comparison")
        a, b = _number(value), _number(cv)
        return {"GTE": a >= b, "GT": a > b, "LTE": a <= b, "LT": a < b}[op]
    if op == "MATCHES":
        return re.search(c["value"], _js_string(value)) is not None
    if op == "NOT_MATCHES":
        return re.search(c["value"], _js_string(value)) is None
    if op == "ONE_OF":
        return _js_string(value) in c["value"]
    if op == "NOT_ONE_OF":
        return _js_string(value) not in c["value"]
    raise Unsupported(f"operator {op}")


def _eppo_time(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def eppo_evaluate(
    flags: Mapping[str, Any],
    flag_key: str,
    subject_key: str,
    attributes: Mapping[str, Any],
    now: datetime | None = None,
) -> tuple[str | None, Any]:
    """(variation key, value) the flag gives the subject, or (None, None) for the default."""
    flag = flags.get(flag_key)
    if flag is None or not flag.get("enabled"):
        return None, None
    now = now or datetime.now(UTC)
    attrs = {"id": subject_key, **attributes}
    total = flag.get("totalShards", 10000)
    for alloc in flag.get("allocations", []):
        if alloc.get("startAt") and now < _eppo_time(alloc["startAt"]):
            continue
        if alloc.get("endAt") and now > _eppo_time(alloc["endAt"]):
            continue
        rules = alloc.get("rules") or []
        if rules and not any(
            all(_eppo_condition(attrs, c) for c in r["conditions"]) for r in rules
        ):
            continue
        for split in alloc["splits"]:
            if all(
                any(
                    r["start"] <= eppo_shard(f"{sh['salt']}-{subject_key}", total) < r["end"]
                    for r in sh["ranges"]
                )
                for sh in split["shards"]
            ):
                key = split["variationKey"]
                return key, flag["variations"][key]["value"]
    return None, None


def eppo_assign(
    unit: Unit,
    weights: Sequence[float],
    exposure: float,
    *,
    traffic_salt: str,
    arm_salt: str,
    total_shards: int = 10000,
) -> tuple[int | None, int, str]:
    """The eppo mode: a traffic shard below exposure * total_shards exposes the unit; arm i
    owns arm shards [cum_{i-1}, cum_i) with cum from w * total_shards / 100."""
    u = unit_text(unit)
    threshold = _whole(exposure * total_shards, "exposure * total_shards")
    ints = [_whole(w * total_shards / 100, "weight * total_shards / 100") for w in weights]
    bucket = eppo_shard(f"{arm_salt}-{u}", total_shards)
    if not eppo_shard(f"{traffic_salt}-{u}", total_shards) < threshold:
        return None, bucket, "not_exposed"
    return _first_below(bucket, ints), bucket, "assigned"


# --------------------------------------------------------------------------------------------
# LaunchDarkly
# launchdarkly/go-server-sdk-evaluation evaluator_bucketing.go (computeBucketValue: prefix =
# seed, or flagKey + "." + salt; sha1(prefix + "." + value), first 15 hex digits; the Go SDK
# divides in float32: float32(intVal) / float32(0xFFFFFFFFFFFFFFF)); launchdarkly/
# python-server-sdk ldclient/impl/evaluator.py (the same in double precision, as the Ruby and
# Node SDKs; variation chosen by bucket < sum of weight / 100000, past the end the last one).
# --------------------------------------------------------------------------------------------

LD_LONG_SCALE = 0xFFFFFFFFFFFFFFF


def ld_hash_int(flag_key: str, salt: str, value: str, seed: int | None = None) -> int:
    prefix = str(seed) if seed is not None else f"{flag_key}.{salt}"
    digest = hashlib.sha1(f"{prefix}.{value}".encode()).hexdigest()
    return int(digest[:15], 16)


def ld_bucket(flag_key: str, salt: str, value: str, seed: int | None = None) -> float:
    """The bucket value in double precision (Python, Ruby, Node SDKs)."""
    return ld_hash_int(flag_key, salt, value, seed) / LD_LONG_SCALE


def _int_to_float32(n: int) -> float:
    """Go's float32(int64): rounded once, to nearest with ties to even."""
    if n == 0:
        return 0.0
    bits = n.bit_length()
    if bits <= 24:
        return float(n)
    shift = bits - 24
    q, r = divmod(n, 1 << shift)
    half = 1 << (shift - 1)
    if r > half or (r == half and q & 1):
        q += 1
    return float(q << shift)


def _to_float32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def ld_bucket_float32(flag_key: str, salt: str, value: str, seed: int | None = None) -> float:
    """The bucket value as the Go SDK computes it: both operands rounded to float32, the
    quotient rounded to float32 (computing it in double first rounds the same way, since a
    double carries more than twice float32's precision plus two bits)."""
    a = _int_to_float32(ld_hash_int(flag_key, salt, value, seed))
    b = _to_float32(float(LD_LONG_SCALE))
    return _to_float32(a / b)


def launchdarkly_assign(
    unit: Unit,
    weights: Sequence[float],
    *,
    flag_key: str,
    salt: str,
    seed: int | None = None,
    arithmetic: str = "double",
) -> tuple[int | None, int, str]:
    """The launchdarkly mode: weights in LaunchDarkly's units (w * 1000 of 100000); the
    variation is the first with bucket < running sum of weight / 100000, past the end the
    last. ``arithmetic`` "double" as the Python, Ruby and Node SDKs; "float32" as the Go SDK
    (bucket, quotients and sums each rounded to float32). The bucket reported is
    floor(double bucket value * 100000) in both."""
    u = unit_text(unit)
    ld_weights = [_whole(w * 1000, "weight * 1000") for w in weights]
    b = ld_bucket(flag_key, salt, u, seed)
    bucket = math.floor(b * 100000)
    if arithmetic == "double":
        total = 0.0
        for i, w in enumerate(ld_weights):
            total += w / 100000.0
            if b < total:
                return i, bucket, "assigned"
    elif arithmetic == "float32":
        b32 = ld_bucket_float32(flag_key, salt, u, seed)
        hundred_thousand = _to_float32(100000.0)
        total = 0.0
        for i, w in enumerate(ld_weights):
            total = _to_float32(total + _to_float32(_to_float32(float(w)) / hundred_thousand))
            if b32 < total:
                return i, bucket, "assigned"
    else:
        raise ValueError(f"unknown LaunchDarkly arithmetic {arithmetic!r}")
    return len(weights) - 1, bucket, "assigned"


# --------------------------------------------------------------------------------------------
# Statsig
# statsig-io/statsig-server-core statsig-rust/src/hashing/hash_util.rs (evaluation hash: the
# first 8 bytes of SHA-256, big-endian u64), src/evaluation/evaluator.rs (a rule passes iff
# hash(specSalt + "." + ruleSalt + "." + unitID) % 10000 < passPercentage * 100; user bucket
# = hash(salt + "." + unitID) % 1000).
# --------------------------------------------------------------------------------------------


def statsig_hash(s: str) -> int:
    return int.from_bytes(hashlib.sha256(s.encode("utf-8")).digest()[:8], "big")


def statsig_passes(spec_salt: str, rule_salt: str, unit_id: str, pass_percentage: float) -> bool:
    if pass_percentage >= 100:
        return True
    if pass_percentage <= 0:
        return False
    return statsig_hash(f"{spec_salt}.{rule_salt}.{unit_id}") % 10000 < pass_percentage * 100


def statsig_user_bucket(salt: str, unit_id: str) -> int:
    return statsig_hash(f"{salt}.{unit_id}") % 1000


def statsig_assign(
    unit: Unit,
    weights: Sequence[float],
    exposure: float,
    *,
    salt: str,
    rule_salt: str,
    spec_salt: str,
) -> tuple[int | None, int, str]:
    """The statsig mode: the rule's pass percentage is the exposure's percentage
    (`peer_percent`); arm i owns user buckets [cum_{i-1}, cum_i) of 1000 with w * 10 whole."""
    u = unit_text(unit)
    ints = [_whole(w * 10, "weight * 10") for w in weights]
    bucket = statsig_user_bucket(salt, u)
    if not statsig_passes(spec_salt, rule_salt, u, peer_percent(exposure)):
        return None, bucket, "not_exposed"
    return _first_below(bucket, ints), bucket, "assigned"


# --------------------------------------------------------------------------------------------
# The modes, by name, with the defaults of the shared spec filled in from the key and salt
# --------------------------------------------------------------------------------------------

MODES = (
    "growthbook-v1",
    "growthbook-v2",
    "unleash",
    "flagd",
    "flagd-legacy",
    "eppo",
    "launchdarkly",
    "statsig",
)


def mode_parameters(
    mode: str, key: str, salt: str | None = None, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Every parameter of a mode, the defaults filled in as docs/assignment-spec.md states them:
    from the experiment's salt (which defaults to its key), except Unleash's variant group,
    LaunchDarkly's flag key and Statsig's rule salt, which come from the key."""
    p = dict(params or {})
    p.pop("mode", None)
    s = key if salt is None else salt
    if mode in ("growthbook-v1", "growthbook-v2"):
        defaults: dict[str, Any] = {"seed": s, "namespace": None, "encoding": "utf16"}
    elif mode == "unleash":
        defaults = {"group_id": s, "variant_group": key, "weight_total": 1000, "encoding": "utf8"}
    elif mode == "flagd":
        defaults = {"prefix": s, "weight_total": 100}
    elif mode == "flagd-legacy":
        defaults = {"prefix": s}
    elif mode == "eppo":
        defaults = {"traffic_salt": f"{s}-traffic", "arm_salt": f"{s}-split", "total_shards": 10000}
    elif mode == "launchdarkly":
        defaults = {"flag_key": key, "salt": s, "seed": None, "arithmetic": "double"}
    elif mode == "statsig":
        defaults = {"salt": s, "rule_salt": f"{key}:rule", "spec_salt": s}
    else:
        raise ValueError(f"unknown mode {mode!r}")
    unknown = set(p) - set(defaults)
    if unknown:
        raise ValueError(f"unknown parameters for {mode}: {sorted(unknown)}")
    return {**defaults, **p}


def mode_assign(
    mode: str,
    key: str,
    weights: Sequence[float],
    exposure: float,
    unit: Unit,
    params: Mapping[str, Any] | None = None,
    salt: str | None = None,
) -> tuple[int | None, int, str]:
    """(arm index or None, bucket, reason) of `unit` in an experiment `key` with `weights`
    (percent) and `exposure` (0..1) under `mode`."""
    p = mode_parameters(mode, key, salt, params)
    if mode in ("growthbook-v1", "growthbook-v2"):
        return growthbook_assign(
            unit,
            weights,
            exposure,
            seed=p["seed"],
            version=1 if mode == "growthbook-v1" else 2,
            encoding=p["encoding"],
            namespace=p["namespace"],
        )
    if mode == "unleash":
        return unleash_assign(
            unit,
            weights,
            exposure,
            group_id=p["group_id"],
            variant_group=p["variant_group"],
            weight_total=p["weight_total"],
            encoding=p["encoding"],
        )
    if mode in ("flagd", "flagd-legacy", "launchdarkly") and exposure != 1:
        raise ValueError(f"{mode}: exposure must be 1")
    if mode == "flagd":
        return flagd_assign(unit, weights, prefix=p["prefix"], weight_total=p["weight_total"])
    if mode == "flagd-legacy":
        return flagd_legacy_assign(unit, weights, prefix=p["prefix"])
    if mode == "eppo":
        return eppo_assign(
            unit,
            weights,
            exposure,
            traffic_salt=p["traffic_salt"],
            arm_salt=p["arm_salt"],
            total_shards=p["total_shards"],
        )
    if mode == "launchdarkly":
        return launchdarkly_assign(
            unit,
            weights,
            flag_key=p["flag_key"],
            salt=p["salt"],
            seed=p["seed"],
            arithmetic=p["arithmetic"],
        )
    assert mode == "statsig"
    return statsig_assign(
        unit,
        weights,
        exposure,
        salt=p["salt"],
        rule_salt=p["rule_salt"],
        spec_salt=p["spec_salt"],
    )


def mode_bucket_arms(
    mode: str,
    weights: Sequence[float],
    exposure: float,
    params: Mapping[str, Any] | None = None,
) -> list[int]:
    """The arm (-1 for none) of every bucket value of a mode whose bucket decides the arm:
    GrowthBook's n (coverage included, namespace not), Unleash's t - 1, flagd's b, Eppo's arm
    shard, Statsig's user bucket (their traffic stages apart)."""
    p = mode_parameters(mode, "k", None, params)
    if mode in ("growthbook-v1", "growthbook-v2"):
        n = 1000 if mode == "growthbook-v1" else 10000
        arms = [growthbook_arm_of(i / n, weights, exposure) for i in range(n)]
        return [-1 if a is None else a for a in arms]
    if mode == "unleash":
        ints = _unleash_weights(weights, p["weight_total"])
        return [unleash_arm_of(t + 1, ints) for t in range(p["weight_total"])]
    if mode == "flagd":
        ints = [_whole(w * p["weight_total"] / 100, "weight") for w in weights]
        return [_first_below(b, ints) for b in range(sum(ints))]
    if mode == "eppo":
        total = p["total_shards"]
        ints = [_whole(w * total / 100, "weight * total_shards / 100") for w in weights]
        return [_first_below(s, ints) for s in range(total)]
    if mode == "statsig":
        ints = [_whole(w * 10, "weight * 10") for w in weights]
        return [_first_below(b, ints) for b in range(1000)]
    raise ValueError(f"{mode}: the bucket is a coarse view of the key the arms are decided on")
