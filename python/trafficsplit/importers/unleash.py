"""Unleash feature toggles as trafficsplit experiments.

A toggle becomes an experiment with ``hashing: {mode: unleash, group_id, variant_group,
weight_total}``: a unit is enabled (assigned) when the toggle's rollout lets it in, and its arm is
the toggle's variant (or ``enabled`` when it has none). The strategy's constraints become the
targeting, its stickiness the unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ArgumentError, ConfigError
from . import _conditions as c
from ._report import (
    ImportResult,
    Report,
    Skip,
    expect_list,
    expect_mapping,
    expect_str,
    path_key,
    percents,
    short,
    top_mapping,
)

ENCODINGS = ("utf8", "utf16-low-byte")

# The Unleash context's own fields; any other contextName names one of its properties. Both are
# read from the attributes under the same name.
_STANDARD = {"userId", "sessionId", "remoteAddress", "environment", "appName", "currentTime"}

_STRATEGY_WHY = {
    "gradualRolloutRandom": "a random rollout draws again at every request: nothing to reproduce",
    "remoteAddress": "IP address ranges (CIDR) have no equivalent in the targeting language",
    "applicationHostname": "the host name is not a request attribute here",
}


def import_unleash(data: Any, *, encoding: str | None = None) -> ImportResult:
    """Translates an Unleash client payload (``{"version": 2, "features": [...], "segments":
    [...]}``, as ``/api/client/features`` answers; a client-specification file's ``state`` is read
    too) into a trafficsplit configuration.

    ``encoding`` is the client whose hashing of non-ASCII ids to reproduce (``utf8``: yggdrasil
    and the SDKs built on it; ``utf16-low-byte``: the Node client); None leaves the mode's default.

    >>> toggle = {"name": "new-ui", "enabled": True, "strategies": [
    ...     {"name": "flexibleRollout", "parameters": {"rollout": "25", "stickiness": "userId"}}]}
    >>> import_unleash({"features": [toggle]}).config["experiments"][0]["exposure"]
    0.25
    """
    doc = top_mapping(data, "Unleash", "a client payload with 'features'")
    if encoding is not None and encoding not in ENCODINGS:
        raise ArgumentError(f"encoding: expected one of {', '.join(ENCODINGS)}, got {encoding!r}")
    if "state" in doc and "features" not in doc:
        doc = top_mapping(doc["state"], "Unleash", "a state with 'features'")
    if "features" not in doc:
        if "events" in doc:
            raise ConfigError(
                "Unleash: delta API events hold changes, not features: import a full payload"
            )
        raise ConfigError("Unleash: expected a client payload with 'features'")
    report = Report()
    features = doc["features"]
    if not isinstance(features, list):
        raise ConfigError(f"Unleash: 'features' must be an array, got {short(features)}")
    segments: dict[Any, list[Any]] = {}
    for j, seg in enumerate(doc.get("segments") or []):
        if isinstance(seg, Mapping) and isinstance(seg.get("constraints"), list):
            segments[seg.get("id")] = seg["constraints"]
        else:
            report.note(f"segments[{j}]", "not a segment with constraints: ignored")
    seen: set[str] = set()
    for i, feature in enumerate(features):
        path = f"features[{i}]"
        notes: list[tuple[str, str]] = []
        try:
            entry = _toggle(feature, path, segments, encoding, notes)
            if entry["key"] in seen:
                raise Skip(path_key(path, "name"), f"the name {entry['key']!r} is already imported")
        except Skip as exc:
            report.skip(exc.path, exc.message)
            continue
        seen.add(entry["key"])
        said: set[str] = set()
        for where, message in notes:
            if message not in said:
                said.add(message)
                report.note(where, message)
        report.experiments.append(entry)
        report.translated.append(path)
    return report.result()


def _toggle(
    feature: Any,
    path: str,
    segments: Mapping[Any, list[Any]],
    encoding: str | None,
    notes: list[tuple[str, str]],
) -> dict[str, Any]:
    feature = expect_mapping(feature, path, "a feature toggle")
    name = expect_str(feature.get("name"), path_key(path, "name"), "a toggle name")
    path = path_key("features", name)
    if feature.get("dependencies"):
        raise Skip(
            path_key(path, "dependencies"),
            "dependent features (a parent toggle's state or variant) are not translated",
        )
    strategies = feature.get("strategies") or []
    expect_list(strategies, path_key(path, "strategies"), "strategies")
    parsed = [
        _strategy(s, f"{path}.strategies[{j}]", name, segments, notes)
        for j, s in enumerate(strategies)
    ]
    if not parsed:  # no strategy: enabled for everyone
        parsed = [_Strategy(100.0, "default", name, None, None, f"{path}.strategies")]
    if len(parsed) > 1:
        parsed = [s for s in parsed if s.rollout > 0] or parsed[:1]
    if len(parsed) > 1:
        partial = [s for s in parsed if s.rollout < 100 or s.variants is not None]
        if partial:
            raise Skip(
                partial[0].path,
                f"{len(parsed)} strategies: a unit is enabled when any of them enables it, and "
                "this one has its own rollout or variants; one trafficsplit experiment has one "
                "rollout",
            )
        whens = [s.when for s in parsed]
        when: str | None = (
            None
            if any(w is None for w in whens)
            else " or ".join(f"({w})" if " or " in w else w for w in whens if w)
        )
        strategy = _Strategy(100.0, parsed[0].stickiness, name, when, None, parsed[0].path)
        if len({s.stickiness for s in parsed}) > 1:
            notes.append(
                (
                    path_key(path, "strategies"),
                    "the strategies' stickiness differs: the first is kept",
                )
            )
    else:
        strategy = parsed[0]
    variants_path = path_key(path, "variants")
    variants = strategy.variants
    variant_group = strategy.group_id
    if not variants:
        variants = feature.get("variants") or []
        variant_group = name
        expect_list(variants, variants_path, "variants")
    else:
        variants_path = path_key(strategy.path, "variants")
    unit = _stickiness(strategy.stickiness, strategy.path, notes)
    entry: dict[str, Any] = {"key": name}
    if not feature.get("enabled", False):
        entry["status"] = "stopped"
    entry["unit"] = unit
    if strategy.rollout != 100:
        entry["exposure"] = strategy.rollout / 100
    if strategy.when:
        entry["targeting"] = strategy.when
    hashing: dict[str, Any] = {"mode": "unleash", "group_id": strategy.group_id}
    if variants:
        arms, total, overrides = _variants(variants, variants_path, unit, notes)
        v_stick = variants[0].get("stickiness") if isinstance(variants[0], Mapping) else None
        v_unit = _stickiness(v_stick or "default", f"{variants_path}[0]", notes)
        if v_unit != unit:
            raise Skip(
                path_key(f"{variants_path}[0]", "stickiness"),
                f"the variants hash {v_unit!r} and the rollout {unit!r}; an experiment has one "
                "unit",
            )
        if overrides:
            if strategy.rollout != 100 or strategy.when or not feature.get("enabled", False):
                raise Skip(
                    variants_path,
                    "variant overrides apply to enabled units only in Unleash, while trafficsplit "
                    "overrides win over the rollout and the targeting: translated only for a "
                    "toggle enabled for everyone",
                )
            entry["overrides"] = overrides
        hashing["variant_group"] = variant_group
        hashing["weight_total"] = total
    else:
        arms = [{"name": "enabled", "weight": 100}]
    if encoding is not None:
        hashing["encoding"] = encoding
    entry["arms"] = arms
    entry["hashing"] = hashing
    return entry


class _Strategy:
    def __init__(
        self,
        rollout: float,
        stickiness: str,
        group_id: str,
        when: str | None,
        variants: list[Any] | None,
        path: str,
    ) -> None:
        self.rollout = rollout
        self.stickiness = stickiness
        self.group_id = group_id
        self.when = when
        self.variants = variants
        self.path = path


def _strategy(
    strategy: Any,
    path: str,
    toggle: str,
    segments: Mapping[Any, list[Any]],
    notes: list[tuple[str, str]],
) -> _Strategy:
    strategy = expect_mapping(strategy, path, "a strategy")
    kind = strategy.get("name")
    params = strategy.get("parameters") or {}
    if not isinstance(params, Mapping):
        raise Skip(path_key(path, "parameters"), "expected an object of parameters")
    if strategy.get("disabled") is True:
        raise Skip(path_key(path, "disabled"), "a disabled strategy is not translated")
    constraints = list(strategy.get("constraints") or [])
    for j, seg_id in enumerate(strategy.get("segments") or []):
        if seg_id not in segments:
            raise Skip(f"{path}.segments[{j}]", f"segment {short(seg_id)} is not in the payload")
        constraints.extend(segments[seg_id])
    conds = [
        _constraint(con, f"{path}.constraints[{j}]", notes) for j, con in enumerate(constraints)
    ]
    rollout = 100.0
    stickiness = "default"
    group_id = toggle
    if kind == "default":
        pass
    elif kind in ("flexibleRollout", "gradualRolloutUserId", "gradualRolloutSessionId"):
        key = "rollout" if kind == "flexibleRollout" else "percentage"
        rollout = _percent(params.get(key), f"{path}.parameters.{key}")
        if kind == "flexibleRollout":
            stickiness = str(params.get("stickiness") or "default")
        else:
            stickiness = "userId" if kind == "gradualRolloutUserId" else "sessionId"
        group = params.get("groupId")
        if group not in (None, ""):
            group_id = str(group)
    elif kind == "userWithId":
        ids = [u.strip() for u in str(params.get("userIds", "")).split(",") if u.strip()]
        conds.append(c.one_of("userId", ids))
    elif isinstance(kind, str) and kind in _STRATEGY_WHY:
        raise Skip(path_key(path, "name"), f"strategy {kind}: {_STRATEGY_WHY[kind]}")
    else:
        raise Skip(path_key(path, "name"), f"strategy {short(kind)} is a custom strategy (code)")
    text = c.render(c.all_of(conds)) if conds else True
    if text is False:
        notes.append(
            (
                path_key(path, "constraints"),
                "the constraints never hold: the strategy enables nobody",
            )
        )
        return _Strategy(0.0, "default", group_id, None, None, path)
    when = text if isinstance(text, str) else None
    if when is not None:
        try:
            c.check(when)
        except c.Untranslatable as exc:
            raise Skip(path_key(path, "constraints"), str(exc)) from None
    variants = strategy.get("variants")
    if variants is not None:
        expect_list(variants, path_key(path, "variants"), "variants")
    return _Strategy(rollout, stickiness, group_id, when, variants or None, path)


def _percent(value: Any, path: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Skip(path, f"expected a percentage, got {short(value)}") from None
    if not 0 <= number <= 100:
        raise Skip(path, f"expected a percentage from 0 to 100, got {short(value)}")
    return number


def _stickiness(stickiness: str, path: str, notes: list[tuple[str, str]]) -> str:
    if stickiness == "random":
        raise Skip(path_key(path, "stickiness"), "random stickiness draws again at every request")
    if stickiness == "default":
        notes.append(
            (
                path_key(path, "stickiness"),
                "default stickiness hashes userId; Unleash falls back to sessionId, then a random "
                "number, when it is missing, where trafficsplit answers missing_unit",
            )
        )
        return "userId"
    return stickiness


def _variants(
    variants: list[Any], path: str, unit: str, notes: list[tuple[str, str]]
) -> tuple[list[dict[str, Any]], int, dict[str, list[Any]]]:
    arms: list[dict[str, Any]] = []
    weights: list[int] = []
    overrides: dict[str, list[Any]] = {}
    taken: set[str] = set()
    for j, v in enumerate(variants):
        vpath = f"{path}[{j}]"
        v = expect_mapping(v, vpath, "a variant")
        vname = expect_str(v.get("name"), path_key(vpath, "name"), "a variant name")
        weight = v.get("weight", 0)
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise Skip(path_key(vpath, "weight"), f"expected a whole weight, got {short(weight)}")
        arm: dict[str, Any] = {"name": vname, "weight": 0}
        if "payload" in v and v["payload"] is not None:
            arm["payload"] = v["payload"]
        arms.append(arm)
        weights.append(weight)
        for k, o in enumerate(v.get("overrides") or []):
            opath = f"{vpath}.overrides[{k}]"
            if not isinstance(o, Mapping) or o.get("contextName") != unit:
                raise Skip(
                    opath,
                    f"an override on {short(o.get('contextName') if isinstance(o, Mapping) else o)}"
                    f" rather than the unit ({unit}) has no equivalent",
                )
            ids = [x for x in o.get("values") or [] if x not in taken]
            taken.update(ids)
            if ids:
                overrides.setdefault(vname, []).extend(ids)
    total = sum(weights)
    if total == 0:
        raise Skip(path, "the variants' weights sum to 0")
    for arm, p in zip(arms, percents(weights, total), strict=True):
        arm["weight"] = p
    return arms, total, overrides


def _values(con: Mapping[str, Any], path: str) -> list[str]:
    values = con.get("values")
    if values is None and "value" in con:
        values = [con["value"]]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise Skip(path, "expected string values")
    return values


def _constraint(con: Any, path: str, notes: list[tuple[str, str]]) -> c.Cond:
    con = expect_mapping(con, path, "a constraint")
    name = expect_str(con.get("contextName"), path_key(path, "contextName"), "a context field")
    op = con.get("operator")
    try:
        attr = c.attribute(name)
        cond = _operator(attr, op, con, path, notes)
    except c.Untranslatable as exc:
        raise Skip(path_key(path, "operator"), str(exc)) from None
    return c.Not(cond) if con.get("inverted") else cond


def _operator(
    attr: str, op: Any, con: Mapping[str, Any], path: str, notes: list[tuple[str, str]]
) -> c.Cond:
    insensitive = bool(con.get("caseInsensitive"))
    if op in ("IN", "NOT_IN"):
        values = [v.strip() for v in _values(con, path)]
        leaf = c.one_of(attr, values)
        return leaf if op == "IN" else c.Not(leaf)
    if op in ("STR_STARTS_WITH", "STR_ENDS_WITH", "STR_CONTAINS"):
        function = {"STR_STARTS_WITH": "startswith", "STR_ENDS_WITH": "endswith"}.get(
            op, "contains"
        )
        values = _values(con, path)
        target = f"lower({attr})" if insensitive else attr
        if insensitive:
            if not all(v.isascii() for v in values):
                raise c.Untranslatable(
                    "caseInsensitive with non-ASCII values: trafficsplit's lower() changes ASCII "
                    "letters only"
                )
            values = [v.lower() for v in values]
        leaves: list[c.Cond] = [
            c.Leaf(
                f"{function}({target}, {c.literal(v)})",
                f"{attr} is null or not {function}({target}, {c.literal(v)})",
            )
            for v in values
        ]
        return c.any_of(leaves) if leaves else c.FALSE
    if op in ("NUM_EQ", "NUM_GT", "NUM_GTE", "NUM_LT", "NUM_LTE"):
        raw: Any = con.get("value")
        try:
            number: float = float(raw)
        except (TypeError, ValueError):
            raise c.Untranslatable(f"{op} with {short(raw)}, which is not a number") from None
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        notes.append(
            (
                path,
                f"{op} parses the context value as a number: pass {attr} as a number (trafficsplit "
                "does not compare the text '5' with 5)",
            )
        )
        if op == "NUM_EQ":
            return c.equals(attr, number)
        symbol = {"NUM_GT": ">", "NUM_GTE": ">=", "NUM_LT": "<", "NUM_LTE": "<="}[op]
        return c.compare(attr, symbol, number)
    if op in ("SEMVER_EQ", "SEMVER_GT", "SEMVER_LT", "SEMVER_GTE", "SEMVER_LTE"):
        wanted = con.get("value")
        if not isinstance(wanted, str) or wanted.startswith("v"):
            raise c.Untranslatable(f"{op} with {short(wanted)}: Unleash matches no version then")
        symbol = {
            "SEMVER_EQ": "==",
            "SEMVER_GT": ">",
            "SEMVER_LT": "<",
            "SEMVER_GTE": ">=",
            "SEMVER_LTE": "<=",
        }[op]
        leaf = c.version(attr, symbol, wanted)
        # Unleash refuses a leading v on the context value, trafficsplit's semver() accepts it.
        guard = f'not startswith({attr}, "v")'
        inverse = leaf.negative
        return c.Leaf(
            f"{leaf.positive} and {guard}",
            f'{inverse} or startswith({attr}, "v")',
        )
    if op == "REGEX":
        pattern = con.get("value")
        if not isinstance(pattern, str):
            raise c.Untranslatable("REGEX needs a pattern string")
        return c.regex(attr, ("(?i)" + pattern) if insensitive else pattern)
    if op in ("DATE_AFTER", "DATE_BEFORE"):
        raise c.Untranslatable(
            f"{op} compares the request's current time; use the experiment's start and end"
        )
    if op == "IN_CIDR":
        raise c.Untranslatable(
            "IP address ranges (CIDR) have no equivalent in the targeting language"
        )
    raise c.Untranslatable(
        f"unknown constraint operator {short(op)} (Unleash evaluates it as false)"
    )
