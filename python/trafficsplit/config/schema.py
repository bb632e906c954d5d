"""Structural validation by the JSON Schema shipped with the package
(``trafficsplit/config.schema.json``): the schema says what a document's shape is, this module
interprets it, and the section compilers check only what a schema cannot say.

The package interprets the subset of draft 2020-12 that the schema uses rather than depending
on jsonschema: a model server imports trafficsplit and reloads configurations, and jsonschema
would bring attrs, referencing and rpds-py and about 100 ms of import with it. A keyword the
schema uses that is not implemented here is refused when the schema is loaded
(:class:`SchemaKeywordError`), so the schema cannot grow past its validator unnoticed.

Values are taken in their JSON form, as editors' YAML servers see them: YAML timestamps are
strings, mapping keys are compared as JSON text (``true``, ``1``). Two choices are stricter than
the draft: a float with an integral value (``100.0``) is not an ``integer``, and NaN and the
infinities (which JSON cannot write) are not numbers.

Each issue is a path in the notation of :class:`~trafficsplit.ConfigIssue`
(``experiments[2].arms.control.weight``) and a message that says what was expected there, from
the subschema's ``title`` or from its type and bounds. Where alternatives (``oneOf``, ``anyOf``)
all fail, the issues of the most specific one are reported: the alternative whose type the value
has, else the one with the fewest issues.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import numbers
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..errors import ConfigError

Path = tuple[str | int, ...]
Issue = tuple[Path, str]
Node = Callable[[Any, Path, list[Issue]], None]

IMPLEMENTED = frozenset(
    {
        "type",
        "enum",
        "const",
        "$ref",
        "$defs",
        "properties",
        "additionalProperties",
        "required",
        "dependentRequired",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "minLength",
        "pattern",
        "allOf",
        "anyOf",
        "oneOf",
        "if",
        "then",
        "else",
    }
)
"""The draft 2020-12 keywords this module checks."""

ANNOTATIONS = frozenset({"$schema", "title", "description", "$comment", "default", "examples"})
"""Keywords that say nothing about validity."""


class SchemaKeywordError(ConfigError):
    """The shipped schema uses a keyword this module does not implement."""


def _noun(kind: str) -> str:
    return {
        "object": "a mapping",
        "array": "a list",
        "string": "a string",
        "number": "a number",
        "integer": "an integer",
        "boolean": "true or false",
        "null": "nothing",
    }[kind]


_EXACT_TYPES: dict[type, str] = {
    str: "string",
    dict: "object",
    list: "array",
    bool: "boolean",
    int: "integer",
    type(None): "null",
}


def json_type(value: Any) -> str | None:
    """The JSON type of a loaded value (``integer`` for whole numbers), or None for values
    JSON cannot hold (NaN, a set, an object)."""
    kind = _EXACT_TYPES.get(type(value))
    if kind is not None:
        return kind
    if type(value) is float:
        return "number" if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str | _dt.date):  # a YAML timestamp is an ISO-8601 string in JSON
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, numbers.Integral):
        return "integer"
    if isinstance(value, numbers.Real):
        return "number" if math.isfinite(float(value)) else None
    return None


_noun_kinds = ("object", "array", "string", "number", "integer", "boolean", "null")


def _literal(name: str) -> Any:
    """What a YAML key written as `name` could be other than a string (JSON would match it)."""
    try:
        return json.loads(name)
    except ValueError:
        return name


def _text(value: Any) -> str:
    """A string value's JSON text."""
    return value if isinstance(value, str) else value.isoformat()


def key_text(key: Any) -> str:
    """A mapping key as JSON writes it (YAML keys keep their type: ``true``, ``1``)."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return json.dumps(key)
    if isinstance(key, float):
        return json.dumps(key)
    if isinstance(key, _dt.date):
        return key.isoformat()
    return str(key)


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        out = f"{out}[{part}]" if isinstance(part, int) else f"{out}.{part}" if out else part
    return out


def _number(n: Any) -> str:
    if isinstance(n, int):
        return f"{n:,}" if abs(n) >= 10_000 else str(n)
    return f"{n:g}"


def _accept(value: Any, path: Path, out: list[Issue]) -> None:
    return None


def _leaf(schema: Mapping[str, Any], check: Node) -> Node | None:
    """A faster check of the commonest leaves (a number in a range, a string with a pattern):
    the usual value is accepted in one call, and anything else goes to the full `check`."""
    shape = set(schema) - ANNOTATIONS
    kind = schema.get("type")
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if shape == {"type", "minimum", "maximum"} and kind in ("number", "integer"):
        whole = kind == "integer"

        def ranged(value: Any, path: Path, out: list[Issue]) -> None:
            # A NaN fails the comparison and goes to `check`; the bounds are finite.
            t = type(value)
            if not ((t is int or (t is float and not whole)) and lo <= value <= hi):
                check(value, path, out)

        return ranged
    if kind == "string" and shape <= {"type", "pattern", "minLength"}:
        search = re.compile(schema.get("pattern", "")).search
        shortest = schema.get("minLength", 0)

        def string(value: Any, path: Path, out: list[Issue]) -> None:
            if not (type(value) is str and len(value) >= shortest and search(value)):
                check(value, path, out)

        return string
    return None


def _expected(schema: Mapping[str, Any]) -> str:
    """What a subschema without a title expects, from its type and bounds."""
    types = schema.get("type")
    kinds = [types] if isinstance(types, str) else list(types or [])
    if len(kinds) > 1 and "null" in kinds:
        kinds.remove("null")  # null stands for an absent value: not worth saying
    text = " or ".join(_noun(k) for k in kinds)
    if "enum" in schema:
        values = ", ".join(v if isinstance(v, str) else json.dumps(v) for v in schema["enum"])
        return f"one of {values}"
    if "const" in schema:
        return json.dumps(schema["const"])
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None and hi is not None:
        word = ("from", "to") if kinds == ["integer"] else ("between", "and")
        text += f" {word[0]} {_number(lo)} {word[1]} {_number(hi)}"
    elif lo is not None:
        text += f" >= {_number(lo)}"
    elif hi is not None:
        text += f" <= {_number(hi)}"
    if schema.get("minLength") == 1 and "pattern" not in schema:
        text = "a non-empty string"
    elif "minLength" in schema:
        text += f" of at least {schema['minLength']} characters"
    if "pattern" in schema:
        text += f" matching {schema['pattern']}"
    for lo_key, hi_key, unit in (
        ("minItems", "maxItems", "item"),
        ("minProperties", "maxProperties", "entry"),
    ):
        lo, hi = schema.get(lo_key), schema.get(hi_key)
        plural = "entries" if unit == "entry" else "items"
        if lo is not None and lo == hi:
            text += f" of exactly {_number(lo)} {unit if lo == 1 else plural}"
        elif lo is not None and hi is not None:
            text += f" of {_number(lo)} to {_number(hi)} {plural}"
        elif lo is not None:
            text += f" of at least {_number(lo)} {unit if lo == 1 else plural}"
        elif hi is not None:
            text += f" of at most {_number(hi)} {plural}"
    return text.strip() or "a valid value"


class _Compiler:
    """Turns each subschema into one closure, once: validation is then plain calls."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[tuple[str, str | None], Node] = {}

    def resolve(self, ref: str) -> tuple[Mapping[str, Any], str]:
        if not ref.startswith("#/$defs/") or "/" in ref[len("#/$defs/") :]:
            raise SchemaKeywordError(f"config.schema.json: $ref {ref!r} is not a #/$defs/ name")
        name = ref[len("#/$defs/") :]
        try:
            return self.root["$defs"][name], ref
        except KeyError:
            raise SchemaKeywordError(f"config.schema.json: $ref {ref!r} names nothing") from None

    def types(self, schema: Any) -> frozenset[str] | None:
        """The JSON types a subschema can accept (None: any), following $ref, allOf and the
        alternatives: what picks the most specific alternative."""
        if not isinstance(schema, Mapping):
            return None
        if "type" in schema:
            t = schema["type"]
            kinds = {t} if isinstance(t, str) else set(t)
            if "number" in kinds:
                kinds.add("integer")
            return frozenset(kinds)
        if "$ref" in schema:
            return self.types(self.resolve(schema["$ref"])[0])
        for sub in schema.get("allOf", ()):
            found = self.types(sub)
            if found is not None:
                return found
        if "const" in schema or "enum" in schema:
            values = schema["enum"] if "enum" in schema else [schema["const"]]
            return frozenset(json_type(v) or "null" for v in values)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                union: set[str] = set()
                for sub in schema[key]:
                    found = self.types(sub)
                    if found is None:
                        return None
                    union |= found
                return frozenset(union)
        return None

    def ref(self, ref: str, title: str | None) -> Node:
        cache_key = (ref, title)
        if cache_key not in self.refs:
            cell: list[Node] = []
            self.refs[cache_key] = lambda v, p, o: cell[0](v, p, o)  # a $ref cycle
            target, where = self.resolve(ref)
            node = self.node(target, where, title)
            cell.append(node)
            self.refs[cache_key] = node
        return self.refs[cache_key]

    def node(self, schema: Any, where: str, title: str | None = None) -> Node:
        """The check of one subschema. ``title`` is the nearest title around it at the same
        place in the document (through $ref, allOf and alternatives)."""
        if schema is True:
            return _accept
        if schema is False:
            return lambda v, p, o: o.append((p, "not allowed here"))
        if not isinstance(schema, Mapping):
            raise SchemaKeywordError(f"config.schema.json: {where} is not a schema")
        unknown = set(schema) - IMPLEMENTED - ANNOTATIONS
        if unknown:
            raise SchemaKeywordError(
                f"config.schema.json uses {', '.join(sorted(unknown))} at {where or '/'}, which "
                "trafficsplit's schema validator does not implement; implement it in "
                "trafficsplit/config/schema.py first"
            )
        title = schema.get("title", title)
        expected = title or _expected(schema)
        steps: list[Node] = []  # checks that apply whatever the value's type
        typed: dict[str, list[Node]] = {}  # checks that apply to one JSON type

        def on(kind: str, step: Node) -> None:
            typed.setdefault(kind, []).append(step)

        def fail(value: Any, path: Path, out: list[Issue]) -> None:
            out.append((path, f"expected {expected}, got {kind_of(value)}"))

        allowed: frozenset[str] | None = None
        if "type" in schema:
            t = schema["type"]
            kinds = {t} if isinstance(t, str) else set(t)
            if "number" in kinds:
                kinds.add("integer")
            allowed = frozenset(kinds)
        if "enum" in schema or "const" in schema:
            values = schema["enum"] if "enum" in schema else [schema["const"]]
            choices = {(json_type(v), v) for v in values if v is None or isinstance(v, str | bool)}
            numeric = [v for v in values if json_type(v) in ("integer", "number")]

            def enum(value: Any, path: Path, out: list[Issue]) -> None:
                kind = json_type(value)
                if kind == "string":
                    if ("string", _text(value)) in choices:
                        return
                elif kind in ("integer", "number"):
                    if any(value == n for n in numeric):
                        return
                elif kind in ("boolean", "null") and (kind, value) in choices:
                    return
                fail(value, path, out)

            steps.append(enum)
        self.numbers(schema, on, fail)
        self.strings(schema, on, fail)
        self.arrays(schema, where, on, fail)
        self.objects(schema, where, on, fail)
        self.combinators(schema, where, title, steps)

        checks = {kind: tuple(found) for kind, found in typed.items()}
        checks["integer"] = checks.get("integer", ()) + checks.get("number", ())
        common = tuple(steps)
        if allowed is None and not any(checks.values()) and len(common) <= 1:
            # Nothing to check (payloads, descriptions): containers skip the value unvisited;
            # a lone $ref or allOf is its target, not a call around it.
            return common[0] if common else _accept

        if not common and not any(checks.values()):

            def type_only(value: Any, path: Path, out: list[Issue]) -> None:
                if json_type(value) not in allowed:  # type: ignore[operator]
                    fail(value, path, out)

            return type_only

        def check(value: Any, path: Path, out: list[Issue]) -> None:
            kind = json_type(value)
            if allowed is not None and kind not in allowed:
                # The type is the problem; what the other keywords say of a value of another
                # type (a oneOf of required keys holds vacuously twice) would only repeat it.
                fail(value, path, out)
                return
            for step in checks.get(kind or "", ()):
                step(value, path, out)
            for step in common:
                step(value, path, out)

        return _leaf(schema, check) or check

    def numbers(self, schema: Mapping[str, Any], on: Any, fail: Node) -> None:
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if lo is None and hi is None:
            return
        low = -math.inf if lo is None else lo
        high = math.inf if hi is None else hi

        def bounds(value: Any, path: Path, out: list[Issue]) -> None:
            if not low <= value <= high:
                fail(value, path, out)

        on("number", bounds)

    def strings(self, schema: Mapping[str, Any], on: Any, fail: Node) -> None:
        if "minLength" in schema:
            shortest = schema["minLength"]

            def length(value: Any, path: Path, out: list[Issue]) -> None:
                if len(_text(value)) < shortest:
                    fail(value, path, out)

            on("string", length)
        if "pattern" in schema:
            search = re.compile(schema["pattern"]).search

            def pattern(value: Any, path: Path, out: list[Issue]) -> None:
                if search(_text(value)) is None:
                    fail(value, path, out)

            on("string", pattern)

    def arrays(self, schema: Mapping[str, Any], where: str, on: Any, fail: Node) -> None:
        first = [
            self.node(s, f"{where}/prefixItems/{i}")
            for i, s in enumerate(schema.get("prefixItems", ()))
        ]
        rest = self.node(schema["items"], f"{where}/items") if "items" in schema else _accept
        if first or rest is not _accept:
            n = len(first)

            def items(value: Any, path: Path, out: list[Issue]) -> None:
                for i, item in enumerate(value):
                    (first[i] if i < n else rest)(item, (*path, i), out)

            on("array", items)
        lo, hi = schema.get("minItems", 0), schema.get("maxItems", math.inf)
        if "minItems" in schema or "maxItems" in schema:

            def size(value: Any, path: Path, out: list[Issue]) -> None:
                if not lo <= len(value) <= hi:
                    fail(value, path, out)

            on("array", size)

    def objects(self, schema: Mapping[str, Any], where: str, on: Any, fail: Node) -> None:
        props = {
            k: self.node(s, f"{where}/properties/{k}")
            for k, s in schema.get("properties", {}).items()
        }
        extra = schema.get("additionalProperties", True)
        if extra is False:
            names = ", ".join(props)

            def unknown(value: Any, path: Path, out: list[Issue]) -> None:
                out.append((path, f"unknown key; expected one of {names}"))

            other: Node = unknown
        else:
            other = self.node(extra, f"{where}/additionalProperties")
        if other is not _accept or any(n is not _accept for n in props.values()):

            def properties(value: Any, path: Path, out: list[Issue]) -> None:
                get = props.get
                for k, v in value.items():
                    if type(k) is str:
                        check = get(k, other)
                        if check is not _accept:
                            check(v, (*path, k), out)
                    else:
                        check = get(key_text(k), other)
                        if check is not _accept:
                            check(v, (*path, str(k)), out)

            checked = [(k, n) for k, n in props.items() if n is not _accept]
            plain = all(json_type(_literal(k)) == "string" for k in props)

            def named(value: Any, path: Path, out: list[Issue]) -> None:
                # Other keys are accepted: only the named ones need a look. (No property is
                # named like a YAML key of another type, "true" or "1", that JSON would match.)
                for k, check in checked:
                    if k in value:
                        check(value[k], (*path, k), out)

            on("object", named if other is _accept and plain else properties)
        required = tuple(schema.get("required", ()))
        if required:

            def missing(value: Any, path: Path, out: list[Issue]) -> None:
                for k in required:
                    if k not in value:
                        out.append((path, f"missing required key '{k}'"))

            on("object", missing)
        dependent = {k: tuple(v) for k, v in schema.get("dependentRequired", {}).items()}
        if dependent:

            def depends(value: Any, path: Path, out: list[Issue]) -> None:
                for k, needs in dependent.items():
                    if k in value:
                        for n in needs:
                            if n not in value:
                                out.append(((*path, k), f"'{n}' is required with '{k}'"))

            on("object", depends)
        if "propertyNames" in schema:
            name = self.node(schema["propertyNames"], f"{where}/propertyNames")

            def names_(value: Any, path: Path, out: list[Issue]) -> None:
                for k in value:
                    name(key_text(k), (*path, k if type(k) is str else str(k)), out)

            on("object", names_)
        lo, hi = schema.get("minProperties", 0), schema.get("maxProperties", math.inf)
        if "minProperties" in schema or "maxProperties" in schema:

            def size(value: Any, path: Path, out: list[Issue]) -> None:
                if not lo <= len(value) <= hi:
                    fail(value, path, out)

            on("object", size)

    def combinators(
        self, schema: Mapping[str, Any], where: str, title: str | None, steps: list[Node]
    ) -> None:
        if "$ref" in schema:
            steps.append(self.ref(schema["$ref"], title))
        for i, sub in enumerate(schema.get("allOf", ())):
            steps.append(self.node(sub, f"{where}/allOf/{i}", title))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                steps.append(self.alternatives(schema[key], f"{where}/{key}", title, key))
        if "if" in schema:
            test = self.node(schema["if"], f"{where}/if")
            then = self.node(schema.get("then", True), f"{where}/then", title)
            else_ = self.node(schema.get("else", True), f"{where}/else", title)

            def conditional(value: Any, path: Path, out: list[Issue]) -> None:
                probe: list[Issue] = []
                test(value, path, probe)
                (else_ if probe else then)(value, path, out)

            steps.append(conditional)
        elif "then" in schema or "else" in schema:
            self.node(schema.get("then", True), f"{where}/then")
            self.node(schema.get("else", True), f"{where}/else")

    def alternatives(self, subs: list[Any], where: str, title: str | None, key: str) -> Node:
        branches = [
            (self.node(s, f"{where}/{i}", title), self.types(s)) for i, s in enumerate(subs)
        ]
        exactly_one = key == "oneOf"
        required_only = [
            s["required"]
            for s in subs
            if isinstance(s, Mapping) and set(s) - ANNOTATIONS == {"required"}
        ]
        if len(required_only) != len(subs) or not all(len(r) == 1 for r in required_only):
            required_only = []
        keys = [r[0] for r in required_only]
        choice = " or ".join(f"'{k}'" for k in keys)
        by_kind = {
            kind: [b for b in branches if b[1] is None or kind in b[1]]
            for kind in (*_noun_kinds, None)
        }

        def alternatives(value: Any, path: Path, out: list[Issue]) -> None:
            if keys and isinstance(value, Mapping):
                # Alternatives that each require one key: say which keys, not which branch.
                given = [k for k in keys if k in value]
                if len(given) == 1 or (given and not exactly_one):
                    return
                got = "neither" if not given else "both" if len(keys) == 2 else ", ".join(given)
                out.append((path, f"expected exactly one of the keys {choice}, got {got}"))
                return
            fitting = by_kind[json_type(value)]
            if len(fitting) == 1 and fitting[0][1] is not None:
                fitting[0][0](value, path, out)  # the only branch of the value's type decides
                return
            candidates = fitting or branches
            results: list[list[Issue]] = []
            for node, _ in candidates:
                found: list[Issue] = []
                node(value, path, found)
                results.append(found)
            passed = sum(1 for r in results if not r)
            if passed == 1 or (passed and not exactly_one):
                return
            if passed > 1:
                out.append((path, f"matches {passed} of the alternatives; expected exactly one"))
                return
            best: list[Issue] = min(results, key=len)  # the first of the fewest issues
            out.extend(best)

        return alternatives


@functools.cache
def shipped_schema() -> Mapping[str, Any]:
    """The JSON Schema shipped as ``trafficsplit/config.schema.json``, read once."""
    import importlib.resources  # with the first configuration, not at package import

    text = importlib.resources.files("trafficsplit").joinpath("config.schema.json").read_text()
    schema: Mapping[str, Any] = json.loads(text)
    return schema


def compile_schema(schema: Mapping[str, Any]) -> Callable[[Any], list[Issue]]:
    """A validator of documents for ``schema``; SchemaKeywordError for a keyword it uses that
    is not implemented here (every definition is compiled, referenced or not)."""
    compiler = _Compiler(schema)
    # The root's title names the schema for editors; it is not what a document is expected to be.
    root = compiler.node({k: v for k, v in schema.items() if k != "title"}, "")
    for name in schema.get("$defs", {}):
        compiler.ref(f"#/$defs/{name}", None)

    def validate(document: Any) -> list[Issue]:
        out: list[Issue] = []
        root(document, (), out)
        if not out:
            return out
        # Two subschemas (a flag's rules and its type's) may each say what a value should be:
        # one value is expected one thing, so the first (outermost) word stands.
        issues: list[Issue] = []
        expected: set[Path] = set()
        for path, message in dict.fromkeys(out):
            if message.startswith("expected "):
                if path in expected:
                    continue
                expected.add(path)
            issues.append((path, message))
        return issues

    return validate


@functools.cache
def _shipped_validator() -> Callable[[Any], list[Issue]]:
    return compile_schema(shipped_schema())


def validate(document: Any) -> list[Issue]:
    """The structural issues of one document, in document order: (path, message)."""
    return _shipped_validator()(document)


def keywords(schema: Any) -> Iterator[str]:
    """Every keyword used anywhere in a schema (its census)."""
    if isinstance(schema, Mapping):
        for key, sub in schema.items():
            yield key
            if key in ("properties", "$defs", "dependentRequired"):
                if key != "dependentRequired":
                    for s in sub.values():
                        yield from keywords(s)
            elif key in ("allOf", "anyOf", "oneOf", "prefixItems"):
                for s in sub:
                    yield from keywords(s)
            elif key in (
                "items",
                "additionalProperties",
                "propertyNames",
                "if",
                "then",
                "else",
            ):
                yield from keywords(sub)
