"""flagd flag definitions as trafficsplit flags.

A flag's targeting (JsonLogic) becomes the flag's rules: each ``if`` branch a rule with a ``when``,
each variant name the variant's value, and ``fractional`` a rollout rule with ``hashing: {mode:
flagd, prefix, weight_total}`` (or ``flagd-legacy``, the scheme before 2026-04), so that every
unit keeps its variant.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ArgumentError, ConfigError
from . import _conditions as c
from ._report import (
    MAX_DEPTH,
    ImportResult,
    Report,
    Skip,
    expect_mapping,
    flag_type,
    path_key,
    percents,
    short,
    top_mapping,
)

SCHEMES = ("current", "legacy")


def import_flagd(data: Any, *, scheme: str = "current") -> ImportResult:
    """Translates a flagd flag definition file (``{"flags": {...}, "$evaluators": {...}}``) into
    trafficsplit flags. ``scheme`` is the ``fractional`` bucketing to reproduce: ``current``
    (flagd from 2026-04, mode ``flagd``) or ``legacy`` (before, mode ``flagd-legacy``).

    >>> flags = {"flags": {"new-ui": {"state": "ENABLED", "variants": {"on": True, "off": False},
    ...     "defaultVariant": "off", "targeting": {"fractional": [["on", 10], ["off", 90]]}}}}
    >>> import_flagd(flags).config["flags"][0]["rules"][0]["hashing"]
    {'mode': 'flagd', 'prefix': 'new-ui', 'weight_total': 100}
    """
    doc = top_mapping(data, "flagd", "a flag definition with 'flags'")
    if scheme not in SCHEMES:
        raise ArgumentError(f"scheme: expected one of {', '.join(SCHEMES)}, got {scheme!r}")
    if "flags" not in doc:
        raise ConfigError("flagd: expected a flag definition with 'flags'")
    flags = doc["flags"]
    if isinstance(flags, list):  # flagd's daemon configuration: a list with keys
        items = []
        for i, f in enumerate(flags):
            if not isinstance(f, Mapping) or not isinstance(f.get("key"), str):
                raise ConfigError(f"flagd: flags[{i}] has no 'key'")
            items.append((f["key"], {k: v for k, v in f.items() if k != "key"}))
    elif isinstance(flags, Mapping):
        items = list(flags.items())
    else:
        raise ConfigError(f"flagd: 'flags' must be an object, got {short(flags)}")
    evaluators = doc.get("$evaluators") or {}
    report = Report()
    if not isinstance(evaluators, Mapping):
        report.note("$evaluators", "not an object: ignored")
        evaluators = {}
    for key, flag in items:
        path = path_key("flags", str(key))
        translator = _Flag(str(key), path, evaluators, scheme)
        try:
            entry = translator.flag(flag)
        except Skip as exc:
            report.skip(exc.path, exc.message)
            continue
        for note in dict.fromkeys(translator.notes):
            report.note(*note)
        report.flags.append(entry)
        report.translated.append(path)
    return report.result()


class _Flag:
    def __init__(self, key: str, path: str, evaluators: Mapping[str, Any], scheme: str) -> None:
        self.key = key
        self.path = path
        self.evaluators = evaluators
        self.scheme = scheme
        self.notes: list[tuple[str, str]] = []
        self.variants: Mapping[str, Any] = {}
        self.default: Any = None
        self.unit: str | None = None
        self.rules: list[dict[str, Any]] = []

    def flag(self, flag: Any) -> dict[str, Any]:
        path = self.path
        flag = expect_mapping(flag, path, "a flag")
        variants = expect_mapping(flag.get("variants"), path_key(path, "variants"), "variants")
        if not variants:
            raise Skip(path_key(path, "variants"), "a flag needs at least one variant")
        self.variants = variants
        default_name = flag.get("defaultVariant")
        if default_name is None:
            raise Skip(
                path_key(path, "defaultVariant"),
                "no default variant: flagd answers with the caller's own default, while a "
                "trafficsplit flag carries its default",
            )
        if not isinstance(default_name, str) or default_name not in variants:
            raise Skip(
                path_key(path, "defaultVariant"),
                f"{short(default_name)} is not one of the variants",
            )
        self.default = variants[default_name]
        state = flag.get("state")
        if state not in ("ENABLED", "DISABLED"):
            raise Skip(path_key(path, "state"), f"expected ENABLED or DISABLED, got {short(state)}")
        entry: dict[str, Any] = {
            "key": self.key,
            "type": flag_type(list(variants.values())),
            "default": self.default,
        }
        if state == "DISABLED":
            entry["enabled"] = False
            self.note(
                path_key(path, "state"),
                "a disabled flag: flagd answers with the caller's default, trafficsplit with the "
                "flag's default (reason disabled)",
            )
        targeting = flag.get("targeting")
        if targeting not in (None, {}):
            self.result(targeting, [], path_key(path, "targeting"), 0, top=True)
        if self.unit is not None:
            entry["unit"] = self.unit
        if self.rules:
            entry["rules"] = self.rules
        return entry

    def note(self, path: str, message: str) -> None:
        """Records a note, once per flag for each message (at its first place)."""
        if all(m != message for _, m in self.notes):
            self.notes.append((path, message))

    # -- results: what a targeting answers with --

    def value_of(self, name: Any, path: str) -> Any:
        if isinstance(name, bool):
            name = "true" if name else "false"
        if isinstance(name, (Mapping, list)):
            raise Skip(path, f"a computed variant ({short(name)}) is not translated")
        if not isinstance(name, str) or name not in self.variants:
            raise Skip(path, f"{short(name)} is not one of the flag's variants")
        return self.variants[name]

    def add(self, conds: list[c.Cond], rule: dict[str, Any], path: str) -> None:
        text = c.render(c.all_of(conds)) if conds else True
        if text is False:
            return  # a branch that can never be taken
        if isinstance(text, str):
            try:
                c.check(text)
            except c.Untranslatable as exc:
                raise Skip(path, str(exc)) from None
            rule = {"when": text, **rule}
        self.rules.append(rule)

    def result(
        self, node: Any, conds: list[c.Cond], path: str, depth: int, top: bool = False
    ) -> None:
        """Appends the rules that answer as ``node`` does under the conditions ``conds``; they
        cover every request the conditions admit, so later rules are reached only where flagd
        would take a later branch."""
        if depth > MAX_DEPTH:
            raise Skip(path, f"nested deeper than {MAX_DEPTH} levels")
        node = self.resolve(node, path, depth)
        if node is None:
            if not top or conds:
                self.add(conds, {"value": self.default}, path)
            return
        if isinstance(node, str):
            self.add(conds, {"value": self.value_of(node, path)}, path)
            return
        if isinstance(node, Mapping) and len(node) == 1:
            op, args = next(iter(node.items()))
            if op == "if":
                self.branches(args, conds, path_key(path, "if"), depth)
                return
            if op == "fractional":
                self.fractional(args, conds, path_key(path, "fractional"), depth)
                return
        if isinstance(node, (bool, Mapping)):
            raise Skip(
                path,
                "targeting that answers with a condition's value (a variant named 'true' or "
                "'false') or a computed name is not translated; write it as an 'if'",
            )
        raise Skip(path, f"a targeting result of {short(node)} is not a variant name")

    def branches(self, args: Any, conds: list[c.Cond], path: str, depth: int) -> None:
        if not isinstance(args, list) or not args:
            raise Skip(path, "expected [condition, result, ..., else]")
        pairs = len(args) // 2
        for j in range(pairs):
            cond = self.condition(args[2 * j], f"{path}[{2 * j}]", depth + 1)
            self.result(args[2 * j + 1], [*conds, cond], f"{path}[{2 * j + 1}]", depth + 1)
        if len(args) % 2:
            self.result(args[-1], conds, f"{path}[{len(args) - 1}]", depth + 1)
        elif conds:  # no else: the if answers null, the default variant
            self.add(conds, {"value": self.default}, path)

    def fractional(self, args: Any, conds: list[c.Cond], path: str, depth: int) -> None:
        if not isinstance(args, list) or not args:
            raise Skip(path, "expected [bucketing key, [variant, weight], ...]")
        if isinstance(args[0], list):
            prefix, unit = self.key, "targetingKey"
            entries = args
        else:
            prefix, unit = self.bucket_key(args[0], f"{path}[0]", depth)
            entries = args[1:]
        names: list[Any] = []
        weights: list[int] = []
        for j, e in enumerate(entries):
            epath = f"{path}[{j + (0 if entries is args else 1)}]"
            if not isinstance(e, list) or not 1 <= len(e) <= 2:
                raise Skip(epath, "expected [variant] or [variant, weight]")
            weight = e[1] if len(e) == 2 else 1
            if isinstance(weight, float) and weight.is_integer():
                weight = int(weight)
            if isinstance(weight, bool) or not isinstance(weight, int):
                raise Skip(
                    epath,
                    f"a weight of {short(weight)}: computed or fractional weights are not "
                    "translated",
                )
            if weight < 0:
                if self.scheme == "legacy":
                    raise Skip(epath, "a negative weight in the legacy scheme")
                self.note(epath, "a negative weight counts as 0, as in flagd")
                weight = 0
            names.append(e[0])
            weights.append(weight)
        total = sum(weights)
        if total == 0:
            if self.scheme == "legacy":
                raise Skip(path, "the weights sum to 0")
            self.note(path, "the weights sum to 0: flagd answers with the default variant, as here")
            self.add(conds, {"value": self.default}, path)
            return
        if total > 2**31 - 1:
            raise Skip(path, "the weights sum beyond 2^31 - 1, which flagd refuses")
        values = [self.value_of(n, f"{path}") for n in names]
        if self.unit is not None and self.unit != unit:
            raise Skip(path, f"fractional rules bucket different keys ({self.unit!r}, {unit!r})")
        self.unit = unit
        pcts = percents(weights, total)
        if self.scheme == "legacy":
            if any(w * 100 % total for w in weights):
                raise Skip(
                    path,
                    "the legacy scheme compares floating-point percents: weights that are not "
                    "whole percents are not reproduced",
                )
            hashing: dict[str, Any] = {"mode": "flagd-legacy", "prefix": prefix}
        else:
            hashing = {"mode": "flagd", "prefix": prefix, "weight_total": total}
        rollout = [{"value": v, "weight": p} for v, p in zip(values, pcts, strict=True)]
        self.add(conds, {"rollout": rollout, "hashing": hashing}, path)
        # A request without the bucketing key skips a rollout rule; flagd answers the default
        # (which is what follows an unconditional rule anyway).
        if conds:
            self.add(conds, {"value": self.default}, path)

    def bucket_key(self, node: Any, path: str, depth: int) -> tuple[str, str]:
        """(prefix, unit attribute) of a bucketing expression ``{"var": x}`` or ``{"cat": [text
        or $flagd.flagKey ..., {"var": x}]}``."""
        node = self.resolve(node, path, depth)
        if isinstance(node, Mapping) and len(node) == 1 and "var" in node:
            unit = self.var(node, path)
            if unit != "targetingKey":
                self.note(
                    path,
                    f"flagd buckets {unit!r} when it is text; a request without it is bucketed on "
                    "the flag key and targetingKey, one where it is not text gets the default "
                    "variant. trafficsplit serves the first the default and buckets the second's "
                    "digits",
                )
            return "", unit
        if isinstance(node, Mapping) and len(node) == 1 and isinstance(node.get("cat"), list):
            parts = node["cat"]
            if parts:
                prefix = ""
                for j, part in enumerate(parts[:-1]):
                    if isinstance(part, str):
                        prefix += part
                    elif isinstance(part, Mapping) and self.var_name(part) == "$flagd.flagKey":
                        prefix += self.key
                    else:
                        raise Skip(
                            f"{path}.cat[{j}]", "only text and $flagd.flagKey may precede the unit"
                        )
                unit = self.var(parts[-1], f"{path}.cat[{len(parts) - 1}]")
                if prefix:
                    self.note(
                        path,
                        f"flagd buckets a request without {unit!r} on {prefix!r} alone (every such "
                        "request in one bucket); trafficsplit serves it the default",
                    )
                return prefix, unit
        raise Skip(path, f"a bucketing expression {short(node)} is not translated")

    def var_name(self, node: Mapping[str, Any]) -> Any:
        name = node.get("var")
        if isinstance(name, list):
            if len(name) != 1:
                return None  # a default value
            name = name[0]
        return name

    def var(self, node: Any, path: str) -> str:
        if not isinstance(node, Mapping) or len(node) != 1 or "var" not in node:
            raise Skip(path, f"expected an attribute {{'var': name}}, got {short(node)}")
        name = self.var_name(node)
        if not isinstance(name, str) or not name:
            raise Skip(path, "a var with a default value or no name is not translated")
        if name.startswith("$flagd."):
            raise Skip(path, f"{name} is not a request attribute")
        return name

    def resolve(self, node: Any, path: str, depth: int) -> Any:
        for _ in range(MAX_DEPTH):
            if isinstance(node, Mapping) and len(node) == 1 and "$ref" in node:
                ref = node["$ref"]
                if not isinstance(ref, str) or ref not in self.evaluators:
                    raise Skip(path, f"$ref to {short(ref)}, which is not in $evaluators")
                node = self.evaluators[ref]
            else:
                return node
        raise Skip(path, "$ref refers to itself")

    # -- conditions --

    def attribute(self, node: Any, path: str) -> str:
        try:
            return c.attribute(self.var(node, path))
        except c.Untranslatable as exc:
            raise Skip(path, str(exc)) from None

    def condition(self, node: Any, path: str, depth: int) -> c.Cond:
        if depth > MAX_DEPTH:
            raise Skip(path, f"nested deeper than {MAX_DEPTH} levels")
        node = self.resolve(node, path, depth)
        if isinstance(node, bool):
            return c.Const(node)
        if not isinstance(node, Mapping) or len(node) != 1:
            raise Skip(path, f"a condition {short(node)} is not translated (only operators are)")
        op, args = next(iter(node.items()))
        p = path_key(path, str(op))
        try:
            return self.operator(str(op), args, p, depth)
        except c.Untranslatable as exc:
            raise Skip(p, str(exc)) from None

    def operator(self, op: str, args: Any, path: str, depth: int) -> c.Cond:
        if op in ("and", "or"):
            if not isinstance(args, list) or not args:
                raise Skip(path, f"expected a list of conditions for {op}")
            parts = [self.condition(a, f"{path}[{j}]", depth + 1) for j, a in enumerate(args)]
            return c.all_of(parts) if op == "and" else c.any_of(parts)
        if op in ("!", "!!"):
            inner = args[0] if isinstance(args, list) and len(args) == 1 else args
            cond = self.condition(inner, f"{path}[0]", depth + 1)
            return c.Not(cond) if op == "!" else cond
        if not isinstance(args, list):
            raise Skip(path, f"expected a list of arguments for {op}")
        if op in ("==", "===", "!=", "!=="):
            attr, value = self.attribute_and_literal(args, path)
            if op in ("==", "!=") and not isinstance(value, str):
                self.note(
                    path,
                    f"JsonLogic's {op} converts types (1 == '1'); trafficsplit compares values of "
                    "one type",
                )
            leaf = c.equals(attr, c.scalar(value, op))
            return leaf if op in ("==", "===") else c.Not(leaf)
        if op in ("<", "<=", ">", ">="):
            return self.ordering(op, args, path)
        if op == "in":
            if len(args) != 2:
                raise Skip(path, "expected [value, list or text]")
            needle, haystack = args
            if isinstance(haystack, list):
                attr = self.attribute(needle, f"{path}[0]")
                return c.one_of(attr, [c.scalar(v, "in") for v in haystack])
            if isinstance(needle, str):
                attr = self.attribute(haystack, f"{path}[1]")
                return c.call("contains", attr, needle)
            raise Skip(path, "in needs a literal list or a literal text")
        if op in ("starts_with", "ends_with"):
            if len(args) != 2 or not isinstance(args[1], str):
                raise Skip(path, f"expected [attribute, text] for {op}")
            attr = self.attribute(args[0], f"{path}[0]")
            return c.call(op.replace("_", ""), attr, args[1])
        if op == "sem_ver":
            return self.semver(args, path)
        if op == "fractional":
            raise Skip(path, "fractional as a condition (a random true or false) is not translated")
        raise Skip(path, f"the operator {op!r} is not translated")

    def attribute_and_literal(self, args: list[Any], path: str) -> tuple[str, Any]:
        if len(args) != 2:
            raise Skip(path, "expected two arguments")
        a, b = args
        if isinstance(a, Mapping) and not isinstance(b, Mapping):
            return self.attribute(a, f"{path}[0]"), b
        if isinstance(b, Mapping) and not isinstance(a, Mapping):
            return self.attribute(b, f"{path}[1]"), a
        raise Skip(path, "expected an attribute and a literal")

    def ordering(self, op: str, args: list[Any], path: str) -> c.Cond:
        def number(value: Any, where: str) -> int | float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise Skip(where, f"ordering with {short(value)}: only numbers are translated")
            return value

        self.note(
            path,
            "a missing attribute makes the comparison false in trafficsplit; JsonLogic may read "
            "it as 0",
        )
        if len(args) == 3 and op in ("<", "<="):
            low = number(args[0], f"{path}[0]")
            attr = self.attribute(args[1], f"{path}[1]")
            high = number(args[2], f"{path}[2]")
            return c.all_of(
                [c.compare(attr, ">" if op == "<" else ">=", low), c.compare(attr, op, high)]
            )
        if len(args) != 2:
            raise Skip(path, f"expected two arguments for {op}")
        if isinstance(args[0], Mapping):
            return c.compare(
                self.attribute(args[0], f"{path}[0]"), op, number(args[1], f"{path}[1]")
            )
        mirrored = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
        return c.compare(
            self.attribute(args[1], f"{path}[1]"), mirrored, number(args[0], f"{path}[0]")
        )

    def semver(self, args: list[Any], path: str) -> c.Cond:
        if len(args) != 3 or not isinstance(args[1], str) or not isinstance(args[2], str):
            raise Skip(path, "expected [attribute, operator, version]")
        attr = self.attribute(args[0], f"{path}[0]")
        op, target = args[1], _full_version(args[2], f"{path}[2]")
        self.note(
            path,
            "flagd reads shorthand versions ('1', '1.2') and numbers in the attribute; "
            "trafficsplit's semver() reads MAJOR.MINOR.PATCH (with or without a leading v) only",
        )
        if op in ("=", "!=", "<", "<=", ">", ">="):
            leaf = c.version(attr, "==" if op in ("=", "!=") else op, target)
            return c.Not(leaf) if op == "!=" else leaf
        core = target.split("-", 1)[0].split("+", 1)[0]
        major, minor, _ = (int(x) for x in core.split("."))
        if op == "^":
            return c.version_range(attr, f"{major}.0.0-0", f"{major + 1}.0.0-0")
        if op == "~":
            return c.version_range(attr, f"{major}.{minor}.0-0", f"{major}.{minor + 1}.0-0")
        raise Skip(path, f"sem_ver operator {op!r} is not one of = != < <= > >= ^ ~")


def _full_version(text: str, path: str) -> str:
    """A flagd version literal (leading v, shorthand '1' or '1.2' allowed) as MAJOR.MINOR.PATCH."""
    body = text[1:] if text[:1] in ("v", "V") else text
    build = ""
    if "+" in body:
        body, build = body.split("+", 1)
        build = "+" + build
    core, dash, pre = body.partition("-")
    parts = core.split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts) or (dash and len(parts) < 3):
        raise Skip(path, f"{text!r} is not a version")
    parts += ["0"] * (3 - len(parts))
    return ".".join(parts) + (dash + pre) + build
