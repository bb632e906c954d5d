"""GrowthBook experiments and features as trafficsplit experiments and flags.

An experiment (the ``run`` shape of GrowthBook's SDK test cases, or an entry of the SDK payload's
``experiments``) becomes an experiment with ``hashing: {mode: growthbook-v1|v2, seed, namespace}``;
a feature becomes a flag whose force rules are value rules and whose experiment rules are rollout
rules with the same hashing. GrowthBook's weights are fractions and its ranges floating-point
intervals; the mode computes them from percentages, so each translation is checked bucket by
bucket (every one of the 1,000 or 10,000 hash values) against the peer's own ranges.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from ..errors import ArgumentError
from . import _conditions as c
from ._report import (
    MAX_DEPTH,
    ImportResult,
    Report,
    Skip,
    expect_list,
    expect_mapping,
    expect_number,
    expect_str,
    flag_type,
    path_key,
    short,
    top_mapping,
)

ENCODINGS = ("utf16", "codepoints", "utf8")

# Keys of an experiment that say nothing about who gets which arm.
_IGNORED = frozenset(
    {"name", "phase", "trackingKey", "description", "tracks", "id", "type", "banditVersion"}
)
_STICKY = ("bucketVersion", "minBucketVersion", "fallbackAttribute", "disableStickyBucketing")
_UNSUPPORTED = {
    "filters": "namespace filters (several seeds, attributes and ranges) have no equivalent "
    "in the growthbook modes, which take one legacy namespace",
    "parentConditions": "prerequisite features gate GrowthBook rules (a failing gate answers "
    "null); trafficsplit's prerequisites serve the flag's default instead",
    "groups": "experiment groups are not translated",
    "url": "URL targeting has no equivalent on a server",
    "urlPatterns": "URL targeting has no equivalent on a server",
    "contextualVariations": "contextual bandit rules choose weights per context at run time",
    "contextualBanditRef": "contextual bandit rules choose weights per context at run time",
    "include": "an include callback is code, not configuration",
}


def import_growthbook(data: Any, *, encoding: str | None = None) -> ImportResult:
    """Translates a GrowthBook SDK payload (``{"features": {...}, "experiments": [...],
    "savedGroups": {...}}``) into a trafficsplit configuration.

    ``encoding`` is the SDK whose hashing of non-ASCII ids to reproduce (``utf16``: JavaScript
    and Python 4, ``codepoints``: older Python SDKs, ``utf8``: Go and Java); None leaves the
    mode's default.

    >>> result = import_growthbook({"experiments": [
    ...     {"key": "checkout", "variations": ["a", "b"], "weights": [0.1, 0.9]}]})
    >>> [arm["weight"] for arm in result.config["experiments"][0]["arms"]]
    [10, 90]
    """
    doc = top_mapping(data, "GrowthBook", "an SDK payload with 'features' or 'experiments'")
    if encoding is not None and encoding not in ENCODINGS:
        raise ArgumentError(f"encoding: expected one of {', '.join(ENCODINGS)}, got {encoding!r}")
    report = Report()
    groups = doc.get("savedGroups") or {}
    if not isinstance(groups, Mapping):
        report.note("savedGroups", "not an object: ignored")
        groups = {}
    known = {"features", "experiments", "savedGroups", "status", "dateUpdated", "encryptedFeatures"}
    for key in doc:
        if key not in known:
            report.note(path_key("", str(key)), "not read")
    if "encryptedFeatures" in doc:
        report.note("encryptedFeatures", "encrypted features are not read: decrypt them first")
    features = doc.get("features", {})
    if not isinstance(features, Mapping):
        report.skip("features", "expected an object of features")
        features = {}
    for fkey, feature in features.items():
        path = path_key("features", str(fkey))
        ctx = _Context(report, groups, encoding)
        try:
            flag = _feature(str(fkey), feature, path, ctx)
        except Skip as exc:
            report.skip(exc.path, exc.message)
            continue
        ctx.flush()
        report.flags.append(flag)
        report.translated.append(path)
    experiments = doc.get("experiments", [])
    if not isinstance(experiments, list):
        report.skip("experiments", "expected an array of experiments")
        experiments = []
    seen: set[str] = set()
    for i, exp in enumerate(experiments):
        path = f"experiments[{i}]"
        ctx = _Context(report, groups, encoding)
        try:
            entry = _experiment(exp, path, ctx)
            if entry["key"] in seen:
                raise Skip(path_key(path, "key"), f"the key {entry['key']!r} is already imported")
        except Skip as exc:
            report.skip(exc.path, exc.message)
            continue
        seen.add(entry["key"])
        ctx.flush()
        report.experiments.append(entry)
        report.translated.append(path)
    return report.result()


class _Context:
    """Per entry: its notes (kept only if the entry is translated) and named lists."""

    def __init__(self, report: Report, groups: Mapping[str, Any], encoding: str | None) -> None:
        self.report = report
        self.groups = groups
        self.encoding = encoding
        self.notes: list[tuple[str, str]] = []
        self.lists: dict[str, list[Any]] = {}

    def note(self, path: str, message: str) -> None:
        if all(m != message for _, m in self.notes):
            self.notes.append((path, message))

    def flush(self) -> None:
        for path, message in self.notes:
            self.report.note(path, message)


# -- ranges, as GrowthBook's SDKs compute them -------------------------------------------------


def bucket_ranges(
    count: int, coverage: float | None, weights: list[float] | None
) -> list[tuple[float, float]]:
    """getBucketRanges of GrowthBook's JavaScript SDK, in the same floating-point order."""
    cover = 1.0 if coverage is None else min(max(coverage, 0.0), 1.0)
    equal = [1 / count] * count if count > 0 else []
    w = weights if weights is not None else equal
    if len(w) != count:
        w = equal
    total = 0.0
    for x in w:
        total = x + total
    if total < 0.99 or total > 1.01:
        w = equal
    out = []
    cumulative = 0.0
    for x in w:
        start = cumulative
        cumulative += x
        out.append((start, start + cover * x))
    return out


def choose_variation(n: float, ranges: list[tuple[float, float]]) -> int:
    for i, (start, end) in enumerate(ranges):
        if start <= n < end:
            return i
    return -1


def _choices(ranges: list[tuple[float, float]], buckets: int) -> list[int]:
    return [choose_variation(k / buckets, ranges) for k in range(buckets)]


def _candidates(weights: list[float]) -> list[list[float]]:
    """Percentage spellings of fractional weights, shortest first."""
    out: list[list[float]] = []
    for digits in range(0, 13):
        p = [round(w * 100, digits) for w in weights]
        p[-1] = round(100 - sum(p[:-1]), digits)
        out.append([int(x) if float(x).is_integer() else x for x in p])
    out.append([w * 100 for w in weights])
    total = sum(weights)
    if total > 0:
        out.append([100 * w / total for w in weights])
    return out


def exact_percents(
    count: int,
    target: list[int],
    coverage: float,
    weights: list[float],
    buckets: int,
) -> list[float] | None:
    """The first percentage spelling whose ranges (as the mode computes them: weights p/100,
    this coverage) choose the same variation as ``target`` at every bucket, or None."""
    for p in _candidates(weights):
        if any(x < 0 for x in p) or abs(sum(p) - 100) > 1e-9:
            continue
        if _choices(bucket_ranges(count, coverage, [x / 100 for x in p]), buckets) == target:
            return p
    return None


def _first_difference(a: list[int], b: list[int], buckets: int) -> str:
    for k, (x, y) in enumerate(zip(a, b, strict=True)):
        if x != y:
            return f"hash value {k}/{buckets} gets variation {x} in GrowthBook but {y} here"
    return ""


# -- experiments ---------------------------------------------------------------------------------


def _allocation(
    exp: Mapping[str, Any], path: str, count: int, ctx: _Context
) -> tuple[list[float], float, int]:
    """(percentages, exposure, hash version) reproducing the peer's ranges bucket for bucket."""
    version = exp.get("hashVersion", 1)
    if version not in (1, 2) or isinstance(version, bool):
        raise Skip(
            path_key(path, "hashVersion"),
            f"hash version {short(version)}: GrowthBook's SDKs hash with versions 1 and 2 only "
            "(any other puts no unit in the experiment)",
        )
    buckets = 1000 if version == 1 else 10000
    weights_given = exp.get("weights")
    if weights_given is not None:
        expect_list(weights_given, path_key(path, "weights"), "weights")
        for j, w in enumerate(weights_given):
            expect_number(w, f"{path}.weights[{j}]", "a weight")
    coverage_given = exp.get("coverage")
    if coverage_given is not None:
        expect_number(coverage_given, path_key(path, "coverage"), "a coverage")
    if "ranges" in exp:
        ranges = _explicit_ranges(exp["ranges"], path_key(path, "ranges"), count)
        target = _choices(ranges, buckets)
        attempts = _from_ranges(ranges)
    else:
        ranges = bucket_ranges(count, coverage_given, weights_given)
        target = _choices(ranges, buckets)
        effective = [1 / count] * count
        if weights_given is not None:
            total = 0.0
            for w in weights_given:
                total = w + total
            if len(weights_given) == count and 0.99 <= total <= 1.01:
                effective = [float(w) for w in weights_given]
            else:
                ctx.note(
                    path_key(path, "weights"),
                    "GrowthBook ignores these weights (their count differs from the variations' "
                    "or they do not sum to 1) and splits equally: translated as equal weights",
                )
        cover = 1.0 if coverage_given is None else min(max(float(coverage_given), 0.0), 1.0)
        attempts = [(cover, effective)]
    for cover, weights in attempts:
        found = exact_percents(count, target, cover, weights, buckets)
        if found is not None:
            return found, cover, version
    cover, weights = attempts[0]
    p = [w * 100 for w in weights]
    mode = _choices(bucket_ranges(count, cover, [x / 100 for x in p]), buckets)
    detail = _first_difference(target, mode, buckets) or "no percentage spelling sums to 100"
    raise Skip(
        path_key(path, "ranges" if "ranges" in exp else "weights"),
        f"no percentages reproduce GrowthBook's ranges exactly: {detail}",
    )


def _explicit_ranges(value: Any, path: str, count: int) -> list[tuple[float, float]]:
    items = expect_list(value, path, "ranges")
    if len(items) != count:
        raise Skip(path, f"{len(items)} ranges for {count} variations")
    out = []
    for j, item in enumerate(items):
        pair = expect_list(item, f"{path}[{j}]", "a range [start, end]")
        if len(pair) != 2:
            raise Skip(f"{path}[{j}]", "expected a range [start, end]")
        out.append(
            (
                float(expect_number(pair[0], f"{path}[{j}]", "a range start")),
                float(expect_number(pair[1], f"{path}[{j}]", "a range end")),
            )
        )
    return out


def _from_ranges(ranges: list[tuple[float, float]]) -> list[tuple[float, list[float]]]:
    """(coverage, weights) that GrowthBook's ranges may come from: consecutive starts give the
    weights, each range's length over its weight the coverage."""
    starts = [s for s, _ in ranges]
    if starts[0] != 0 or any(b < a for a, b in itertools.pairwise(starts)):
        return [(1.0, [e - s for s, e in ranges])]
    weights = [b - a for a, b in itertools.pairwise(starts)] + [1.0 - starts[-1]]
    covers = [(e - s) / w for (s, e), w in zip(ranges, weights, strict=True) if w > 0]
    out = []
    for cover in dict.fromkeys([covers[0] if covers else 1.0, 1.0, *covers]):
        for rounded in dict.fromkeys([round(cover, 6), cover]):
            if 0 <= rounded <= 1:
                out.append((rounded, weights))
    return out or [(1.0, weights)]


def _arm_names(exp: Mapping[str, Any], path: str, count: int, ctx: _Context) -> list[str]:
    meta = exp.get("meta")
    if isinstance(meta, list) and len(meta) == count:
        for j, m in enumerate(meta):
            if isinstance(m, Mapping) and m.get("passthrough"):
                raise Skip(
                    f"{path}.meta[{j}].passthrough",
                    "a passthrough variation lets its units fall through to the next rules "
                    "(a GrowthBook holdout); trafficsplit holdouts are configured as holdouts",
                )
        keys = [m.get("key") if isinstance(m, Mapping) else None for m in meta]
        if all(isinstance(k, str) and k for k in keys) and len(set(keys)) == count:
            return [str(k) for k in keys]
    return [str(i) for i in range(count)]


def _common(exp: Mapping[str, Any], path: str, ctx: _Context) -> None:
    for key, why in _UNSUPPORTED.items():
        if key in exp and exp[key] not in (None, [], {}):
            raise Skip(path_key(path, key), why)
    sticky = [k for k in _STICKY if k in exp]
    if sticky:
        ctx.note(
            path_key(path, sticky[0]),
            "sticky bucketing is not imported: units keep their arm through the hash alone "
            "(a trafficsplit sticky store can be added)",
        )


def _hashing(version: int, seed: str, ctx: _Context) -> dict[str, Any]:
    hashing: dict[str, Any] = {"mode": f"growthbook-v{version}", "seed": seed}
    if ctx.encoding is not None:
        hashing["encoding"] = ctx.encoding
    return hashing


def _namespace(value: Any, path: str) -> dict[str, Any]:
    items = expect_list(value, path, "a namespace [id, start, end]")
    if len(items) != 3:
        raise Skip(path, "expected a namespace [id, start, end]")
    ns_id = expect_str(items[0], path, "a namespace id")
    start = expect_number(items[1], path, "a namespace start")
    end = expect_number(items[2], path, "a namespace end")
    return {"id": ns_id, "start": start, "end": end}


def _experiment(exp: Any, path: str, ctx: _Context) -> dict[str, Any]:
    exp = expect_mapping(exp, path, "an experiment")
    key = expect_str(exp.get("key"), path_key(path, "key"), "an experiment key")
    variations = expect_list(exp.get("variations"), path_key(path, "variations"), "variations")
    if len(variations) < 2:
        raise Skip(
            path_key(path, "variations"),
            f"{len(variations)} variation(s): GrowthBook puts no unit in an experiment with "
            "fewer than two",
        )
    _common(exp, path, ctx)
    if "force" in exp:
        raise Skip(
            path_key(path, "force"),
            "a forced variation serves one value without the unit entering the experiment; "
            "a trafficsplit arm is an assignment",
        )
    for key_ in exp:
        if key_ not in _KNOWN_EXPERIMENT and key_ not in _IGNORED:
            ctx.note(path_key(path, str(key_)), "not read")
    percents, exposure, version = _allocation(exp, path, len(variations), ctx)
    names = _arm_names(exp, path, len(variations), ctx)
    entry: dict[str, Any] = {"key": key}
    if exp.get("active") is False or exp.get("status") in ("draft", "stopped"):
        entry["status"] = "stopped"
    unit = exp.get("hashAttribute", "id")
    entry["unit"] = expect_str(unit, path_key(path, "hashAttribute"), "an attribute name")
    if exposure != 1:
        entry["exposure"] = exposure
    _targeting(exp, path, ctx, entry, "targeting")
    entry["arms"] = [
        {"name": name, "weight": p, "payload": value}
        for name, p, value in zip(names, percents, variations, strict=True)
    ]
    seed = exp.get("seed") or key
    hashing = _hashing(version, expect_str(seed, path_key(path, "seed"), "a seed"), ctx)
    if exp.get("namespace") is not None:
        hashing["namespace"] = _namespace(exp["namespace"], path_key(path, "namespace"))
    entry["hashing"] = hashing
    return entry


_KNOWN_EXPERIMENT = frozenset(
    {
        "key", "variations", "weights", "coverage", "seed", "hashVersion", "namespace",
        "condition", "hashAttribute", "force", "active", "status", "ranges", "meta",
        *_STICKY, *_UNSUPPORTED,
    }
)  # fmt: skip


def _targeting(
    obj: Mapping[str, Any], path: str, ctx: _Context, entry: dict[str, Any], field: str
) -> None:
    """Sets ``entry[field]`` (and ``lists``) from the object's ``condition``."""
    if obj.get("condition") in (None, {}):
        return
    cpath = path_key(path, "condition")
    lists_before = dict(ctx.lists)
    try:
        cond = condition(obj["condition"], cpath, ctx, 0)
        text = c.render(cond)
        if text is False:
            raise c.Untranslatable("the condition can never be true")
        if isinstance(text, str):
            used = {k: v for k, v in ctx.lists.items() if f"@{k}" in text}
            c.check(text, used)
            entry[field] = text
            if used and field == "targeting":  # a flag takes its lists at the flag's level
                entry.setdefault("lists", {}).update(used)
    except c.Untranslatable as exc:
        ctx.lists = lists_before
        raise Skip(getattr(exc, "path", cpath), str(exc)) from None


class _At(c.Untranslatable):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


_NO_EQUIVALENT = {
    "$elemMatch": "matches elements of an array attribute",
    "$size": "tests the length of an array attribute",
    "$all": "tests that an array attribute holds every value",
    "$alli": "tests that an array attribute holds every value, ignoring case",
    "$ini": "compares ignoring case, which trafficsplit's lower() does for ASCII letters only",
    "$nini": "compares ignoring case, which trafficsplit's lower() does for ASCII letters only",
    "$type": "tests the JSON type of an attribute",
}


def condition(obj: Any, path: str, ctx: _Context, depth: int) -> c.Cond:
    """A GrowthBook condition (MongoDB-like) as a condition tree."""
    if depth > MAX_DEPTH:
        raise _At(path, f"nested deeper than {MAX_DEPTH} levels")
    if not isinstance(obj, Mapping):
        raise _At(path, f"expected a condition object, got {short(obj)}")
    items: list[c.Cond] = []
    for key, value in obj.items():
        p = path_key(path, str(key))
        if key in ("$or", "$nor", "$and"):
            parts = [
                condition(v, f"{p}[{j}]", ctx, depth + 1)
                for j, v in enumerate(_list(value, p, "conditions"))
            ]
            if key == "$and":
                items.append(c.All(tuple(parts)))
            elif key == "$or":
                items.append(c.Any_(tuple(parts)) if parts else c.TRUE)
            else:
                items.append(c.Not(c.Any_(tuple(parts)) if parts else c.TRUE))
        elif key == "$not":
            items.append(c.Not(condition(value, p, ctx, depth + 1)))
        elif isinstance(key, str) and key.startswith("$"):
            raise _At(p, f"unknown condition operator {key!r}")
        else:
            items.append(_field(str(key), value, p, ctx, depth + 1))
    return c.All(tuple(items))


def _list(value: Any, path: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _At(path, f"expected an array of {what}, got {short(value)}")
    return value


def _field(name: str, cond: Any, path: str, ctx: _Context, depth: int) -> c.Cond:
    if depth > MAX_DEPTH:
        raise _At(path, f"nested deeper than {MAX_DEPTH} levels")
    try:
        attr = c.attribute(name)
    except c.Untranslatable as exc:
        raise _At(path, str(exc)) from None
    is_operators = (
        isinstance(cond, Mapping) and len(cond) > 0 and all(str(k).startswith("$") for k in cond)
    )
    if not is_operators:
        if isinstance(cond, (list, Mapping)):
            raise _At(path, "equality with an array or object has no equivalent")
        if isinstance(cond, bool):
            ctx.note(
                path,
                "GrowthBook compares a boolean with the attribute's truthiness (1 and 'yes' are "
                "true there); trafficsplit with boolean attribute values only",
            )
        return c.equals(attr, cond)
    parts: list[c.Cond] = []
    for op, value in cond.items():
        p = path_key(path, str(op))
        try:
            parts.append(_operator(attr, name, str(op), value, p, ctx, depth))
        except _At:
            raise
        except c.Untranslatable as exc:
            raise _At(p, str(exc)) from None
    return c.All(tuple(parts))


def _operator(
    attr: str, name: str, op: str, value: Any, path: str, ctx: _Context, depth: int
) -> c.Cond:
    if op == "$eq":
        return c.equals(attr, c.scalar(value, op))
    if op == "$ne":
        return c.Not(c.equals(attr, c.scalar(value, op)))
    if op in ("$lt", "$lte", "$gt", "$gte"):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise c.Untranslatable(f"{op} with {short(value)} has no equivalent")
        symbol = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}[op]
        return c.compare(attr, symbol, value)
    if op == "$exists":
        leaf = c.Leaf(f"{attr} is not null", f"{attr} is null")
        return leaf if value else c.Not(leaf)
    if op in ("$in", "$nin"):
        values = [c.scalar(v, op) for v in _list(value, path, "values")]
        member = c.one_of(attr, values)
        return member if op == "$in" else c.Not(member)
    if op in ("$inGroup", "$notInGroup"):
        if not isinstance(value, str) or value not in ctx.groups:
            raise c.Untranslatable(f"the saved group {short(value)} is not in the payload")
        members = ctx.groups[value]
        if not isinstance(members, list):
            raise c.Untranslatable(f"the saved group {value!r} is not a list")
        list_name = "group_" + "".join(ch if ch.isalnum() else "_" for ch in value)
        ctx.lists[list_name] = [c.scalar(v, op) for v in members]
        leaf = c.Leaf(f"{attr} in @{list_name}", f"{attr} is null or {attr} not in @{list_name}")
        return leaf if op == "$inGroup" else c.Not(leaf)
    if op in ("$regex", "$regexi", "$notRegex", "$notRegexi"):
        if not isinstance(value, str):
            raise c.Untranslatable(f"{op} needs a pattern string")
        pattern = ("(?i)" + value) if op.endswith("i") else value
        leaf = c.regex(attr, pattern)
        return c.Not(leaf) if op.startswith("$not") else leaf
    if op in ("$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte"):
        if not isinstance(value, str):
            raise c.Untranslatable(f"{op} needs a version string")
        ctx.note(
            path,
            "GrowthBook compares padded version strings, trafficsplit semver.org precedence: "
            "the same for versions MAJOR.MINOR.PATCH[-pre] with parts up to 5 digits, not "
            "for attribute values such as '1.2' (no match in trafficsplit)",
        )
        symbol = {"$veq": "==", "$vne": "!=", "$vgt": ">", "$vgte": ">=", "$vlt": "<"}.get(op, "<=")
        target = value.split("+", 1)[0]
        if symbol == "!=":
            return c.Not(c.version(attr, "==", target))
        return c.version(attr, symbol, target)
    if op == "$not":
        return c.Not(_field(name, value, path, ctx, depth + 1))
    if op in _NO_EQUIVALENT:
        raise c.Untranslatable(
            f"GrowthBook's {op} {_NO_EQUIVALENT[op]}: no exact equivalent in the targeting language"
        )
    raise c.Untranslatable(f"unknown condition operator {op!r}")


# -- features --------------------------------------------------------------------------------


def _feature(fkey: str, feature: Any, path: str, ctx: _Context) -> dict[str, Any]:
    feature = expect_mapping(feature, path, "a feature")
    default = feature.get("defaultValue")
    rules_in = feature.get("rules") or []
    expect_list(rules_in, path_key(path, "rules"), "rules")
    rules: list[dict[str, Any]] = []
    values: list[Any] = [default]
    units: dict[str, str] = {}
    for i, rule in enumerate(rules_in):
        rpath = f"{path}.rules[{i}]"
        rule = expect_mapping(rule, rpath, "a rule")
        _common(rule, rpath, ctx)
        out: dict[str, Any] = {}
        if "force" in rule:
            if rule.get("coverage") == 0 and "range" not in rule:
                ctx.note(
                    path_key(rpath, "coverage"), "coverage 0: the rule never applies, left out"
                )
                continue
            _targeting(rule, rpath, ctx, out, "when")
            values.append(rule["force"])
            if rule.get("coverage") is None and "range" not in rule:
                out["value"] = rule["force"]
            else:
                units[_unit(rule, rpath)] = rpath
                exposure, version = _rollout_share(rule, rpath, ctx)
                out["rollout"] = [{"value": rule["force"], "weight": 100}]
                if exposure != 1:
                    out["exposure"] = exposure
                seed = expect_str(rule.get("seed") or fkey, path_key(rpath, "seed"), "a seed")
                out["hashing"] = _hashing(version, seed, ctx)
        elif "variations" in rule:
            variations = expect_list(
                rule["variations"], path_key(rpath, "variations"), "variations"
            )
            if len(variations) < 2:
                raise Skip(path_key(rpath, "variations"), "fewer than two variations")
            _arm_names(rule, rpath, len(variations), ctx)  # refuses passthrough variations
            percents, exposure, version = _allocation(rule, rpath, len(variations), ctx)
            units[_unit(rule, rpath)] = rpath
            _targeting(rule, rpath, ctx, out, "when")
            out["rollout"] = [
                {"value": v, "weight": p} for v, p in zip(variations, percents, strict=True)
            ]
            if exposure != 1:
                out["exposure"] = exposure
            seed = rule.get("seed") or rule.get("key") or fkey
            out["hashing"] = _hashing(version, expect_str(seed, rpath, "a seed"), ctx)
            if rule.get("namespace") is not None:
                out["hashing"]["namespace"] = _namespace(
                    rule["namespace"], path_key(rpath, "namespace")
                )
            values.extend(variations)
        else:
            continue  # GrowthBook skips a rule with neither force nor variations
        rules.append(out)
    if len(units) > 1:
        (first, _), (second, where) = list(units.items())[:2]
        raise Skip(
            path_key(where, "hashAttribute"),
            f"rules hash different attributes ({first!r}, {second!r}); a flag has one unit",
        )
    flag: dict[str, Any] = {"key": fkey, "type": flag_type(values), "default": default}
    if units:
        flag["unit"] = next(iter(units))
    if rules:
        flag["rules"] = rules
    used = {k: v for k, v in ctx.lists.items() if any(f"@{k}" in r.get("when", "") for r in rules)}
    if used:
        flag["lists"] = used
    return flag


def _unit(rule: Mapping[str, Any], path: str) -> str:
    return expect_str(
        rule.get("hashAttribute", "id"), path_key(path, "hashAttribute"), "an attribute"
    )


def _rollout_share(rule: Mapping[str, Any], path: str, ctx: _Context) -> tuple[float, int]:
    """(exposure, hash version) of a force rule's rollout: GrowthBook includes a unit when its
    hash value n is <= coverage (or in ``range``); the mode when n < exposure. The exposure is
    chosen, and checked at every hash value, to include the same units."""
    version = rule.get("hashVersion", 1)
    if version not in (1, 2) or isinstance(version, bool):
        raise Skip(
            path_key(path, "hashVersion"),
            f"hash version {short(version)}: GrowthBook's SDKs hash with versions 1 and 2 only "
            "(any other includes no unit)",
        )
    buckets = 1000 if version == 1 else 10000
    if "range" in rule:
        r = _explicit_ranges([rule["range"]], path_key(path, "range"), 1)[0]
        if r[0] > 0:
            raise Skip(
                path_key(path, "range"),
                f"a range starting at {r[0]}: the growthbook modes' ranges start at 0",
            )
        target = [1 if r[0] <= k / buckets < r[1] else 0 for k in range(buckets)]
    else:
        cover = float(expect_number(rule["coverage"], path_key(path, "coverage"), "a coverage"))
        target = [1 if k / buckets <= cover else 0 for k in range(buckets)]
        if any(k / buckets == cover for k in range(buckets)):
            ctx.note(
                path_key(path, "coverage"),
                f"units whose hash value is exactly {cover} are included, as GrowthBook's "
                "JavaScript SDK and test cases include them (n <= coverage); the Python SDK 4 "
                "leaves them out (n < coverage)",
            )
    last = max((k for k in range(buckets) if target[k]), default=-1)
    for exposure in dict.fromkeys([min(1.0, (last + 1) / buckets), (last + 0.5) / buckets]):
        ranges = bucket_ranges(1, exposure, [1.0])
        if [
            1 if choose_variation(k / buckets, ranges) == 0 else 0 for k in range(buckets)
        ] == target:
            return (int(exposure) if exposure in (0.0, 1.0) else exposure), version
    raise Skip(
        path_key(path, "range" if "range" in rule else "coverage"),
        "no exposure includes exactly the units GrowthBook includes",
    )
