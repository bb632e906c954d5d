"""Experiments as configuration (docs/configuration.md): loading YAML/JSON files or folders,
validating them with every error reported at once, and compiling them into an immutable
:class:`Snapshot` that :class:`trafficsplit.Splitter` evaluates."""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _time
from ._frozen import FrozenDict, freeze
from ._shared.keys import unit_key
from .errors import ConfigError, TargetingSyntaxError
from .experiment import Arm, Experiment
from .targeting import Targeting

__all__ = [
    "ConfigIssue",
    "ConfigValidationError",
    "FlagConfig",
    "HoldoutConfig",
    "LayerConfig",
    "Snapshot",
    "load_config",
    "parse_config",
]

STATUSES = ("draft", "running", "stopped")
FLAG_TYPES = ("bool", "string", "number", "json")
_TOP_LEVEL = ("layers", "holdouts", "experiments", "flags", "rollouts", "version")


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration: where (file and path inside it) and what."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class ConfigValidationError(ConfigError):
    """A configuration with one or more problems; ``issues`` lists every one of them."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = tuple(issues)
        count = len(self.issues)
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} in the configuration:\n{lines}"
        )


@dataclass(frozen=True)
class LayerConfig:
    """Experiments in one layer are mutually exclusive: each owns a disjoint range of the
    layer's buckets, in the order they appear in the configuration."""

    key: str
    salt: str
    buckets: int = 10_000
    ranges: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # experiment -> [lo, hi)


@dataclass(frozen=True)
class HoldoutConfig:
    """A share of units kept out of every experiment that lists the holdout."""

    key: str
    percent: float
    salt: str
    buckets: int = 10_000

    @property
    def threshold(self) -> int:
        return math.floor(self.percent / 100 * self.buckets + 0.5)


@dataclass(frozen=True)
class ExperimentConfig:
    """An experiment with everything the configuration adds around its allocation."""

    key: str
    experiment: Experiment
    unit: str = "user_id"
    layer: str | None = None
    layer_share: float | None = None
    holdouts: tuple[str, ...] = ()
    status: str = "running"
    start_us: int | None = None
    end_us: int | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)  # unit key -> arm name


@dataclass(frozen=True)
class FlagRule:
    when: Targeting | None
    value: Any = None
    rollout: Experiment | None = None  # arms named by index; values in rollout_values
    rollout_values: tuple[Any, ...] = ()


@dataclass(frozen=True)
class FlagConfig:
    key: str
    type: str
    default: Any
    enabled: bool = True
    rules: tuple[FlagRule, ...] = ()
    prerequisites: tuple[tuple[str, Any], ...] = ()
    unit: str = "user_id"


@dataclass(frozen=True)
class Snapshot:
    """A validated, compiled configuration. Immutable and shared by every thread."""

    experiments: Mapping[str, ExperimentConfig]
    layers: Mapping[str, LayerConfig]
    holdouts: Mapping[str, HoldoutConfig]
    flags: Mapping[str, FlagConfig]
    version: str
    sources: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


# -- loading ---------------------------------------------------------------------------------


def _read_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigValidationError(
            [ConfigIssue(str(path), "", f"not UTF-8 text (byte {exc.start} is invalid)")]
        ) from None
    except OSError as exc:
        raise ConfigValidationError(
            [ConfigIssue(str(path), "", f"cannot be read: {exc}")]
        ) from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigValidationError(
                [
                    ConfigIssue(
                        str(path),
                        "",
                        f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                    )
                ]
            ) from None
    import yaml

    try:
        return yaml.load(text, Loader=_unique_key_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigValidationError(
            [ConfigIssue(str(path), "", f"invalid YAML{where}: {problem}")]
        ) from None


@functools.cache
def _unique_key_loader() -> Any:
    """A YAML SafeLoader that refuses a key repeated within one mapping (YAML itself would
    silently keep the last value)."""
    import yaml

    # libyaml's parser when PyYAML was built with it: several times faster on large files.
    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    def mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} is repeated (first at line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return loader.construct_mapping(node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def config_files(path: str | Path) -> list[Path]:
    """The files a path stands for: itself, or the YAML/JSON files of a folder (sorted)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(
            f
            for f in p.iterdir()
            if f.suffix.lower() in (".yaml", ".yml", ".json")
            and f.is_file()
            and not f.name.startswith(".")
        )
        if not files:
            raise ConfigValidationError([ConfigIssue(str(p), "", "no .yaml, .yml or .json files")])
        return files
    if not p.exists():
        raise ConfigValidationError([ConfigIssue(str(p), "", "no such file or directory")])
    return [p]


_SECTION_NAMES = {"experiments": "experiment", "rollouts": "rollout"}


def find_entry(
    config_path: str | Path, key: str, sections: Sequence[str] = ("experiments", "rollouts")
) -> tuple[Path, str, dict[str, Any]]:
    """The file, section and (a copy of the) entry with ``key`` in a configuration file or
    folder; a ConfigError when there is none or more than one."""
    try:
        files = config_files(config_path)
    except ConfigValidationError as exc:
        raise ConfigError(str(exc)) from None
    found = []
    for f in files:
        doc = _read_file(f)
        if not isinstance(doc, Mapping):
            continue
        for section in sections:
            for entry in doc.get(section) or []:
                if isinstance(entry, Mapping) and entry.get("key") == key:
                    found.append((f, section, dict(entry)))
    if not found:
        what = " or ".join(_SECTION_NAMES.get(s, s) for s in sections)
        raise ConfigError(f"no {what} {key!r} in {config_path}")
    if len(found) > 1:
        raise ConfigError(
            f"{key!r} is defined more than once ({', '.join(str(f[0]) for f in found)})"
        )
    return found[0]


def edit_entry(
    config_path: str | Path,
    key: str,
    edit: Callable[[dict[str, Any]], None],
    sections: Sequence[str] = ("experiments", "rollouts"),
) -> Path:
    """Changes the entry with ``key`` in place with ``edit(entry)`` and writes its file back:
    under an advisory lock (``fcntl.flock`` on ``.<file>.lock``), after validating the whole
    configuration with the change (an invalid result is refused and nothing is written), through
    a temporary dot-file in the same folder that is fsynced and renamed over the original. In a
    YAML file only the entry's own lines are rewritten: the rest of the file, comments included,
    is kept byte for byte (comments inside the entry are not kept; a file whose layout does not
    allow that, such as flow style, is written whole). Returns the file written."""
    import fcntl

    file, section, _ = find_entry(config_path, key, sections)
    lock = file.parent / f".{file.name}.lock"
    with open(lock, "a+") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        try:
            original = file.read_text(encoding="utf-8")
            doc = _read_file(file)
            positions = [
                i
                for i, e in enumerate(doc.get(section) or [])
                if isinstance(e, dict) and e.get("key") == key
            ]
            if len(positions) != 1:
                raise ConfigError(f"{key!r} changed in {file} while being edited")
            entry = doc[section][positions[0]]
            edit(entry)
            documents = [
                (str(f), doc if f == file else _read_file(f)) for f in config_files(config_path)
            ]
            try:
                _compile(documents)
            except ConfigValidationError as exc:
                raise ConfigError(
                    f"the change would make the configuration invalid, nothing was written: {exc}"
                ) from None
            text = None
            if file.suffix.lower() != ".json":
                text = _splice_entry(original, section, positions[0], entry, doc)
            _write_atomically(file, doc, text)
        finally:
            fcntl.flock(lk, fcntl.LOCK_UN)
    return file


def _splice_entry(
    text: str, section: str, index: int, entry: dict[str, Any], doc: Any
) -> str | None:
    """``text`` with entry ``index`` of ``section`` replaced by the YAML of ``entry`` and every
    other byte kept, or None when the file's layout does not allow it (not a block sequence
    of block mappings) or the result would not read back as ``doc``."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if not isinstance(root, yaml.MappingNode):
        return None
    items = next(
        (v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == section), None
    )
    if not isinstance(items, yaml.SequenceNode) or items.flow_style or index >= len(items.value):
        return None
    node = items.value[index]
    if not isinstance(node, yaml.MappingNode) or node.flow_style or not node.value:
        return None
    start = node.start_mark.index
    last = node
    while isinstance(last, yaml.MappingNode | yaml.SequenceNode) and last.value:
        if last.flow_style:  # ends at its closing bracket
            break
        last = last.value[-1][1] if isinstance(last, yaml.MappingNode) else last.value[-1]
    end = last.end_mark.index
    while end > start and text[end - 1] in "\r\n":  # a block scalar ends on the next line
        end -= 1
    dumped = _dump_yaml(entry).rstrip("\n")
    spliced = text[:start] + dumped.replace("\n", "\n" + " " * node.start_mark.column) + text[end:]
    try:
        if yaml.load(spliced, Loader=_unique_key_loader()) != doc:
            return None
    except yaml.YAMLError:
        return None
    return spliced


def _write_atomically(path: Path, doc: Any, text: str | None = None) -> None:
    """Writes ``text``, or else ``doc`` serialised by the file's kind, through a temporary
    dot-file that is fsynced and renamed over ``path``."""
    import contextlib
    import os
    import tempfile

    if text is None and path.suffix.lower() == ".json":
        text = json.dumps(doc, indent=2, default=_json_default) + "\n"
    elif text is None:
        text = _dump_yaml(doc)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _dump_yaml(data: Any) -> str:
    """YAML in the configuration's own style: keys in their order, times as ISO 8601 with
    ``T`` (and ``Z`` for UTC), as people write them."""
    import yaml

    return yaml.dump(data, Dumper=_dumper(), sort_keys=False, allow_unicode=True)


@functools.cache
def _dumper() -> Any:
    """The SafeDumper of :func:`_dump_yaml` (made once: PyYAML is imported only when needed)."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def timestamp(dumper: Any, value: _dt.datetime) -> Any:
        text = value.isoformat()
        if text.endswith("+00:00"):
            text = text[: -len("+00:00")] + "Z"
        return dumper.represent_scalar("tag:yaml.org,2002:timestamp", text)

    Dumper.add_representer(_dt.datetime, timestamp)
    return Dumper


def _json_default(x: Any) -> Any:
    if isinstance(x, _dt.datetime | _dt.date):
        return x.isoformat()
    raise TypeError(f"cannot write {type(x).__name__} to JSON")


def load_config(*paths: str | Path) -> Snapshot:
    """Loads, validates and compiles configuration files or folders (merged in order).

    Raises :class:`ConfigValidationError` listing every problem, each with its file and path.
    """
    if not paths:
        raise ConfigError("load_config needs at least one file or folder")
    documents = []
    issues: list[ConfigIssue] = []
    for path in paths:
        try:
            files = config_files(path)
        except ConfigValidationError as exc:
            issues.extend(exc.issues)
            continue
        for file in files:
            try:
                documents.append((str(file), _read_file(file)))
            except ConfigValidationError as exc:
                issues.extend(exc.issues)
    if issues:
        raise ConfigValidationError(issues)
    return _compile(documents)


def parse_config(data: Mapping[str, Any], source: str = "") -> Snapshot:
    """Validates and compiles a configuration given as a mapping (as loaded from YAML/JSON)."""
    return _compile([(source, data)])


# -- validation and compilation ---------------------------------------------------------------


_ABSENT: Any = object()  # a required key that keys() already reported missing


class _Checker:
    def __init__(self) -> None:
        self.issues: list[ConfigIssue] = []
        self.file = ""

    def add(self, path: str, message: str) -> None:
        self.issues.append(ConfigIssue(self.file, path, message))

    def mapping(self, value: Any, path: str) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.add(path, f"expected a mapping, got {_kind(value)}")
            return None
        return value

    def keys(
        self,
        value: Mapping[str, Any],
        path: str,
        allowed: Sequence[str],
        required: Sequence[str] = (),
    ) -> None:
        for k in value:
            if k not in allowed:
                self.add(_join(path, str(k)), f"unknown key; expected one of {', '.join(allowed)}")
        for k in required:
            if k not in value:
                self.add(path, f"missing required key '{k}'")

    def key(self, value: Any, path: str) -> str | None:
        if value is _ABSENT:
            return None
        if not isinstance(value, str) or not value.strip():
            self.add(path, f"expected a non-empty string key, got {_kind(value)}")
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.add(path, "must be valid Unicode")
            return None
        return value

    def number(self, value: Any, path: str, lo: float, hi: float, what: str) -> float | None:
        if value is _ABSENT:
            return None
        try:
            ok = (
                isinstance(value, numbers.Real)
                and not isinstance(value, bool)
                and math.isfinite(float(value))
                and lo <= float(value) <= hi
            )
        except (OverflowError, ValueError):
            ok = False
        if not ok:
            self.add(path, f"expected {what}, got {_kind(value)}")
            return None
        return float(value)

    def buckets(self, value: Any, path: str) -> int | None:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1_000_000:
            self.add(path, f"expected an integer from 1 to 1,000,000, got {_kind(value)}")
            return None
        return value

    def time(self, value: Any, path: str) -> int | None:
        if value is None:
            return None
        try:
            return _time.to_micros(value, path)
        except ConfigError:
            self.add(
                path, f"expected a time (ISO-8601 such as 2026-11-15T00:00:00Z), got {_kind(value)}"
            )
            return None

    def targeting(
        self, value: Any, path: str, lists: Mapping[str, Any] | None = None
    ) -> Targeting | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(path, f"expected a targeting expression (a string), got {_kind(value)}")
            return None
        try:
            return Targeting(value, lists)
        except TargetingSyntaxError as exc:
            first = str(exc).splitlines()[0].removeprefix("targeting: ")
            self.add(path, f"{first}\n{exc.excerpt}" if exc.excerpt else first)
        except ConfigError as exc:
            self.add(path, str(exc))
        return None


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _items(checker: _Checker, value: Any, path: str) -> list[tuple[str, Any]]:
    """(path, item) for a list section; a missing section is empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        checker.add(path, f"expected a list, got {_kind(value)}")
        return []
    return [(_join(path, i), item) for i, item in enumerate(value)]


def _arms(checker: _Checker, value: Any, path: str) -> list[Arm] | None:
    """`arms: {name: weight}` or `arms: {name: {weight, payload}}` or a list of {name, weight,
    payload}."""
    if value is _ABSENT:
        return None
    if isinstance(value, Mapping):
        entries = list(value.items())
        paths = [_join(path, str(k)) for k, _ in entries]
    elif isinstance(value, list):
        entries = []
        paths = []
        for i, item in enumerate(value):
            p = _join(path, i)
            m = checker.mapping(item, p)
            if m is None:
                continue
            checker.keys(m, p, ("name", "weight", "payload"), ("name",))
            entries.append((m.get("name"), {k: v for k, v in m.items() if k != "name"}))
            paths.append(p)
    else:
        checker.add(path, f"expected a mapping of arm name to weight, got {_kind(value)}")
        return None
    if not entries:
        checker.add(path, "at least one arm is needed")
        return None
    arms, ok = [], True
    seen: set[str] = set()
    for (name, spec), p in zip(entries, paths, strict=True):
        if not isinstance(name, str) or not name:
            checker.add(p, f"arm names must be non-empty strings, got {_kind(name)}")
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
            wpath = _join(p, "weight")
        else:
            weight, wpath = spec, p
        w = checker.number(weight, wpath, 0, 100, "a weight in percent between 0 and 100")
        try:
            payload = freeze(payload, _join(p, "payload"))
        except ConfigError as exc:
            checker.add(_join(p, "payload"), str(exc).split(" must ", 1)[-1].join(["must ", ""]))
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


def _compile(documents: list[tuple[str, Any]]) -> Snapshot:
    checker = _Checker()
    merged: dict[str, list[tuple[str, str, Any]]] = {k: [] for k in _TOP_LEVEL if k != "version"}
    for source, data in documents:
        checker.file = source
        if data is None:
            continue
        top = checker.mapping(data, "")
        if top is None:
            continue
        checker.keys(top, "", _TOP_LEVEL)
        for section in merged:
            for p, item in _items(checker, top.get(section), section):
                merged[section].append((source, p, item))

    try:
        layers = _layers(checker, merged["layers"])
        holdouts = _holdouts(checker, merged["holdouts"])
        experiments = _experiments(
            checker, merged["experiments"] + merged["rollouts"], layers, holdouts
        )
        layers = _layer_ranges(checker, layers, experiments, merged["experiments"])
        flags = _flags(checker, merged["flags"])
    except (ConfigError, TypeError, ValueError, OverflowError, KeyError) as exc:
        # A shape no check above anticipated: still a report, never a traceback.
        checker.add("", f"could not be validated ({type(exc).__name__}: {exc})")
        raise ConfigValidationError(checker.issues) from exc
    if checker.issues:
        raise ConfigValidationError(checker.issues)
    raw = {"documents": [{"source": s, "data": d} for s, d in documents]}
    canonical = json.dumps(
        [d for _, d in documents], sort_keys=True, default=str, separators=(",", ":")
    )
    version = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    return Snapshot(
        FrozenDict(experiments),
        FrozenDict(layers),
        FrozenDict(holdouts),
        FrozenDict(flags),
        version,
        tuple(s for s, _ in documents),
        raw,
    )


def _unique(checker: _Checker, seen: dict[str, str], key: str, path: str, what: str) -> bool:
    if key in seen:
        checker.add(path, f"{what} '{key}' is defined twice (also at {seen[key]})")
        return False
    seen[key] = f"{checker.file}: {path}" if checker.file else path
    return True


def _entries(
    checker: _Checker,
    items: list[tuple[str, str, Any]],
    what: str,
    keys: Callable[[str], tuple[Sequence[str], Sequence[str]]],
) -> Iterator[tuple[str, Mapping[str, Any], str]]:
    """(path, entry, key) for each entry of a section that is a mapping with a valid key not
    used before; `keys(path)` gives the allowed and required keys. Sets the checker's file."""
    seen: dict[str, str] = {}
    for source, path, item in items:
        checker.file = source
        m = checker.mapping(item, path)
        if m is None:
            continue
        allowed, required = keys(path)
        checker.keys(m, path, allowed, required)
        key = checker.key(m.get("key", _ABSENT), _join(path, "key"))
        if key is None or not _unique(checker, seen, key, _join(path, "key"), what):
            continue
        yield path, m, key


def _layers(checker: _Checker, items: list[tuple[str, str, Any]]) -> dict[str, LayerConfig]:
    out: dict[str, LayerConfig] = {}
    allowed = ("key", "salt", "buckets", "description"), ("key",)
    for path, m, key in _entries(checker, items, "layer", lambda _: allowed):
        salt = m.get("salt", key)
        buckets = checker.buckets(m.get("buckets", 10_000), _join(path, "buckets"))
        if buckets is None:
            continue
        if checker.key(salt, _join(path, "salt")) is None:
            continue
        out[key] = LayerConfig(key, salt, buckets)
    return out


def _holdouts(checker: _Checker, items: list[tuple[str, str, Any]]) -> dict[str, HoldoutConfig]:
    out: dict[str, HoldoutConfig] = {}
    allowed = ("key", "percent", "salt", "buckets", "description"), ("key", "percent")
    for path, m, key in _entries(checker, items, "holdout", lambda _: allowed):
        percent = checker.number(
            m.get("percent", _ABSENT),
            _join(path, "percent"),
            0,
            100,
            "a percentage between 0 and 100",
        )
        salt = m.get("salt", key)
        buckets = checker.buckets(m.get("buckets", 10_000), _join(path, "buckets"))
        if buckets is None:
            continue
        if percent is None or checker.key(salt, _join(path, "salt")) is None:
            continue
        out[key] = HoldoutConfig(key, percent, salt, buckets)
    return out


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


def _experiments(
    checker: _Checker,
    items: list[tuple[str, str, Any]],
    layers: Mapping[str, LayerConfig],
    holdouts: Mapping[str, HoldoutConfig],
) -> dict[str, ExperimentConfig]:
    out: dict[str, ExperimentConfig] = {}

    def keys(path: str) -> tuple[Sequence[str], Sequence[str]]:
        if path.startswith("rollouts"):
            return _ROLLOUT_KEYS, ("key",)
        return _EXPERIMENT_KEYS, ("key", "arms")

    for path, m, key in _entries(checker, items, "experiment", keys):
        rollout = path.startswith("rollouts")
        compiled = (
            _rollout(checker, m, path, key) if rollout else _experiment(checker, m, path, key)
        )
        unit = m.get("unit", "user_id")
        if checker.key(unit, _join(path, "unit")) is None:
            compiled = None
        layer = m.get("layer")
        share = None
        if layer is not None and not isinstance(layer, str):
            checker.add(_join(path, "layer"), f"expected a layer key, got {_kind(layer)}")
            layer = None
            compiled = None
        elif layer is not None:
            if layer not in layers:
                checker.add(
                    _join(path, "layer"),
                    f"unknown layer '{layer}'; layers: {', '.join(layers) or '(none)'}",
                )
            share = checker.number(
                m.get("layer_share"),
                _join(path, "layer_share"),
                0,
                100,
                "the percent of the layer this experiment owns (0-100)",
            )
        elif "layer_share" in m:
            checker.add(_join(path, "layer_share"), "layer_share needs a layer")
        hs = m.get("holdouts", [])
        if not isinstance(hs, list) or not all(isinstance(h, str) for h in hs):
            checker.add(
                _join(path, "holdouts"), f"expected a list of holdout keys, got {_kind(hs)}"
            )
            hs = []
        for i, h in enumerate(hs):
            if h not in holdouts:
                checker.add(
                    _join(_join(path, "holdouts"), i),
                    f"unknown holdout '{h}'; holdouts: {', '.join(holdouts) or '(none)'}",
                )
        status = m.get("status", "running")
        if status not in STATUSES:
            checker.add(
                _join(path, "status"), f"expected one of {', '.join(STATUSES)}, got {_kind(status)}"
            )
        start = checker.time(m.get("start"), _join(path, "start"))
        end = checker.time(m.get("end"), _join(path, "end"))
        if start is not None and end is not None and end <= start:
            checker.add(_join(path, "end"), "end must be after start")
        overrides = _overrides(checker, m.get("overrides"), _join(path, "overrides"), compiled)
        if compiled is None:
            continue
        out[key] = ExperimentConfig(
            key, compiled, unit, layer, share, tuple(hs), status, start, end, FrozenDict(overrides)
        )
    return out


def _experiment(checker: _Checker, m: Mapping[str, Any], path: str, key: str) -> Experiment | None:
    arms = _arms(checker, m.get("arms", _ABSENT), _join(path, "arms"))
    exposure = m.get("exposure", 1.0)
    hint = ""
    if isinstance(exposure, int | float) and not isinstance(exposure, bool) and 1 < exposure <= 100:
        hint = f"; did you mean {exposure / 100:g} ({exposure:g} percent)?"
    exposure = checker.number(
        exposure, _join(path, "exposure"), 0, 1, "an exposure between 0 and 1 (a share of units)"
    )
    if hint:
        last = checker.issues[-1]
        checker.issues[-1] = ConfigIssue(last.file, last.path, last.message + hint)
    checker.time(m.get("allocated_at"), _join(path, "allocated_at"))
    history = []
    for p, step in _items(checker, m.get("history"), _join(path, "history")):
        s = checker.mapping(step, p)
        if s is None:
            continue
        checker.keys(s, p, ("at", "weights", "exposure"), ("at", "weights"))
        weights = s.get("weights")
        if not isinstance(weights, Mapping):
            checker.add(
                _join(p, "weights"), f"expected a mapping of arm to weight, got {_kind(weights)}"
            )
            continue
        before = len(checker.issues)
        if arms is not None:
            names = {a.name for a in arms}
            for name in weights:
                if name not in names:
                    checker.add(
                        _join(_join(p, "weights"), str(name)),
                        f"unknown arm '{name}'; arms: {', '.join(sorted(names))}",
                    )
        values = [
            checker.number(w, _join(_join(p, "weights"), str(n)), 0, 100, "a weight in percent")
            for n, w in weights.items()
        ]
        if len(checker.issues) == before and abs(math.fsum(values) - 100) > 1e-9:
            listing = ", ".join(f"{n}={w:g}" for n, w in zip(weights, values, strict=True))
            checker.add(
                _join(p, "weights"),
                f"weights must sum to 100, got {math.fsum(values):g} ({listing})",
            )
        if "exposure" in s:
            checker.number(s["exposure"], _join(p, "exposure"), 0, 1, "an exposure between 0 and 1")
        checker.time(s.get("at"), _join(p, "at"))
        history.append({k: v for k, v in s.items()})
    if history and "allocated_at" not in m:
        checker.add(
            path, "allocated_at is required with history: when did the current weights take effect?"
        )
    lists = _lists(checker, m.get("lists"), _join(path, "lists"))
    targeting = checker.targeting(m.get("targeting"), _join(path, "targeting"), lists)
    version = m.get("bucket_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < 2**32:
        checker.add(
            _join(path, "bucket_version"), f"expected an integer >= 1, got {_kind(version)}"
        )
        return None
    salt = m.get("salt")
    if salt is not None:
        checker.key(salt, _join(path, "salt"))
    checker.buckets(m.get("buckets", 10_000), _join(path, "buckets"))
    algorithm = m.get("algorithm", "xxh3")
    if algorithm not in ("xxh3", "murmur3"):
        checker.add(_join(path, "algorithm"), f"expected xxh3 or murmur3, got {_kind(algorithm)}")
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


def _lists(checker: _Checker, value: Any, path: str) -> dict[str, list[Any]] | None:
    """Named lists for `@name` in targeting: a mapping of name to a list of values."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        checker.add(
            path, f"expected a mapping of list name to a list of values, got {_kind(value)}"
        )
        return None
    out = {}
    for name, items in value.items():
        if not isinstance(name, str) or not name.isidentifier():
            checker.add(_join(path, str(name)), "list names must be identifiers")
        elif not isinstance(items, list):
            checker.add(_join(path, name), f"expected a list of values, got {_kind(items)}")
        else:
            out[name] = items
    return out


def _parse_duration(value: Any) -> _dt.timedelta | None:
    """'90s', '15m', '2h', '1d', or a number of seconds."""
    seconds = None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and len(value) >= 2 and value[-1] in "smhd":
        try:
            seconds = float(value[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[value[-1]]
        except ValueError:
            return None
    if seconds is None or not math.isfinite(seconds) or not 0 <= seconds <= 100 * 365 * 86400:
        return None  # negative, NaN, infinite or beyond a century
    return _dt.timedelta(seconds=seconds)


def _rollout(checker: _Checker, m: Mapping[str, Any], path: str, key: str) -> Experiment | None:
    """Canary schedules and blue-green switches, compiled to experiments."""
    kind = m.get("type", "canary")
    arms_spec = m.get(
        "arms",
        {"stable": None, "canary": None} if kind == "canary" else {"blue": None, "green": None},
    )
    if not isinstance(arms_spec, Mapping) or len(arms_spec) != 2:
        checker.add(
            _join(path, "arms"),
            "a rollout has exactly two arms: the current version "
            "first, the new one second (name: payload)",
        )
        return None
    (old, old_payload), (new, new_payload) = list(arms_spec.items())
    for name in (old, new):
        if not isinstance(name, str) or not name:
            checker.add(
                _join(path, "arms"), f"arm names must be non-empty strings, got {_kind(name)}"
            )
            return None
    salt = m.get("salt")
    if salt is not None and checker.key(salt, _join(path, "salt")) is None:
        return None
    payloads = []
    for name, payload in ((old, old_payload), (new, new_payload)):
        where = _join(_join(path, "arms"), name)
        try:
            payloads.append(freeze(payload, where))
        except ConfigError as exc:  # each arm's payload reported at its own path
            checker.add(where, str(exc))
    if len(payloads) != 2:
        return None
    old_payload, new_payload = payloads
    lists = _lists(checker, m.get("lists"), _join(path, "lists"))
    targeting = checker.targeting(m.get("targeting"), _join(path, "targeting"), lists)
    if kind == "blue_green":
        active = m.get("active", old)
        if active not in (old, new):
            checker.add(_join(path, "active"), f"expected '{old}' or '{new}', got {_kind(active)}")
            return None
        weights = {old: 100.0 if active == old else 0.0, new: 100.0 if active == new else 0.0}
        return Experiment(
            key,
            [Arm(old, weights[old], old_payload), Arm(new, weights[new], new_payload)],
            salt=m.get("salt"),
            targeting=targeting,
        )
    if kind != "canary":
        checker.add(_join(path, "type"), f"expected 'canary' or 'blue_green', got {_kind(kind)}")
        return None
    start = checker.time(m.get("start"), _join(path, "start"))
    if start is None:
        checker.add(path, "a canary needs a start time")
        return None
    steps = []
    at = _time.from_micros(start)
    last = None
    rolled_back: str | None = None
    bad = False  # every step is checked before giving up, so all problems are reported
    for p, step in _items(checker, m.get("steps"), _join(path, "steps")):
        s = checker.mapping(step, p)
        if s is None:
            bad = True
            continue
        checker.keys(s, p, ("percent", "hold"), ("percent",))
        pct = checker.number(
            s.get("percent", _ABSENT),
            _join(p, "percent"),
            0,
            100,
            "the canary's percent of traffic (0-100)",
        )
        hold = _parse_duration(s.get("hold", 0))
        if hold is None:
            checker.add(
                _join(p, "hold"),
                f"expected a duration such as 30m, 2h or 1d, got {_kind(s.get('hold'))}",
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
                rolled_back = _join(p, "percent")  # a roll-back: allowed as the last step
            else:
                checker.add(
                    _join(p, "percent"),
                    f"canary steps only go up ({pct:g} after {last:g}); "
                    "roll back with a last step of percent 0, or edit the schedule",
                )
        last = pct
        steps.append((at, pct))
        at = at + hold
    if bad:
        return None
    if not steps:
        checker.add(_join(path, "steps"), "a canary needs at least one step")
        return None
    history = [{"at": t, "weights": {old: 100 - p, new: p}} for t, p in steps[:-1]]
    t, p = steps[-1]
    return Experiment(
        key,
        [Arm(old, 100 - p, old_payload), Arm(new, p, new_payload)],
        salt=m.get("salt"),
        history=history,
        allocated_at=t,
        targeting=targeting,
    )


def _overrides(
    checker: _Checker, value: Any, path: str, compiled: Experiment | None
) -> dict[str, str]:
    """`overrides: {arm: [unit, ...]}`."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        checker.add(
            path, f"expected a mapping of arm name to a list of unit ids, got {_kind(value)}"
        )
        return {}
    out: dict[str, str] = {}
    names = set(compiled.arm_names) if compiled is not None else None
    for arm, units in value.items():
        p = _join(path, str(arm))
        if names is not None and arm not in names:
            checker.add(p, f"unknown arm '{arm}'; arms: {', '.join(sorted(names))}")
            continue
        if not isinstance(units, list):
            checker.add(p, f"expected a list of unit ids, got {_kind(units)}")
            continue
        for i, u in enumerate(units):
            try:
                k = unit_key(u)
            except (TypeError, ValueError):
                checker.add(_join(p, i), f"unit ids are strings or integers, got {_kind(u)}")
                continue
            if k in out and out[k] != arm:
                checker.add(
                    _join(p, i), f"unit {u!r} is forced into two arms ('{out[k]}' and '{arm}')"
                )
            out[k] = arm
    return out


def _layer_ranges(
    checker: _Checker,
    layers: Mapping[str, LayerConfig],
    experiments: Mapping[str, ExperimentConfig],
    items: list[tuple[str, str, Any]],
) -> dict[str, LayerConfig]:
    """Each layer's experiments take consecutive bucket ranges in configuration order."""
    out = {}
    paths = {}
    for source, path, item in items:
        if isinstance(item, Mapping) and isinstance(item.get("key"), str):
            paths.setdefault(item["key"], (source, path))
    for key, layer in layers.items():
        ranges: dict[str, tuple[int, int]] = {}
        cursor = 0
        total = 0.0
        members = [e for e in experiments.values() if e.layer == key and e.layer_share is not None]
        for e in members:
            total += e.layer_share
            count = math.floor(e.layer_share / 100 * layer.buckets + 0.5)
            ranges[e.key] = (cursor, min(layer.buckets, cursor + count))
            cursor += count
        if total > 100 + 1e-9:
            listing = ", ".join(f"{e.key}={e.layer_share:g}" for e in members)
            source, path = paths.get(members[-1].key, ("", "experiments"))
            checker.file = source
            checker.add(
                _join(path, "layer_share"),
                f"layer '{key}' is over-booked: shares add up to {total:g} percent "
                f"({listing}); experiments in one layer must share at most 100",
            )
        out[key] = LayerConfig(layer.key, layer.salt, layer.buckets, FrozenDict(ranges))
    return out


def _flag_value(checker: _Checker, typ: str, value: Any, path: str) -> bool:
    ok = {
        "bool": isinstance(value, bool),
        "string": isinstance(value, str),
        "number": isinstance(value, numbers.Real) and not isinstance(value, bool),
        "json": True,
    }.get(typ, True)
    if not ok:
        checker.add(path, f"expected a {typ} value, got {_kind(value)}")
        return False
    if typ == "json":
        try:
            freeze(value, path)
        except ConfigError as exc:
            checker.add(path, str(exc))
            return False
    return True


def _flags(checker: _Checker, items: list[tuple[str, str, Any]]) -> dict[str, FlagConfig]:
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
    for path, m, key in _entries(checker, items, "flag", lambda _: allowed):
        paths[key] = (checker.file, path)
        typ = m.get("type")
        if typ not in FLAG_TYPES:
            checker.add(
                _join(path, "type"), f"expected one of {', '.join(FLAG_TYPES)}, got {_kind(typ)}"
            )
            continue
        default = m.get("default")
        ok = _flag_value(checker, typ, default, _join(path, "default"))
        enabled = m.get("enabled", True)
        if not isinstance(enabled, bool):
            checker.add(_join(path, "enabled"), f"expected true or false, got {_kind(enabled)}")
            ok = False
        rules = []
        lists = m.get("lists")
        for rule_index, (p, rule) in enumerate(
            _items(checker, m.get("rules"), _join(path, "rules"))
        ):
            r = checker.mapping(rule, p)
            if r is None:
                ok = False
                continue
            checker.keys(r, p, ("when", "value", "rollout"))
            when = checker.targeting(r.get("when"), _join(p, "when"), lists)
            if r.get("when") is not None and when is None:
                ok = False
            if ("value" in r) == ("rollout" in r):
                checker.add(p, "a rule gives either a 'value' or a 'rollout', not both or neither")
                ok = False
                continue
            if "value" in r:
                ok &= _flag_value(checker, typ, r["value"], _join(p, "value"))
                rules.append(FlagRule(when, freeze(r["value"], p) if ok else None))
                continue
            rollout = r["rollout"]
            rp = _join(p, "rollout")
            pairs: list[tuple[Any, Any]] = []
            if isinstance(rollout, Mapping):
                pairs = list(rollout.items())
            elif isinstance(rollout, list):
                for i, entry in enumerate(rollout):
                    if not isinstance(entry, Mapping) or set(entry) != {"value", "weight"}:
                        checker.add(_join(rp, i), "expected {value: ..., weight: ...}")
                        ok = False
                        continue
                    pairs.append((entry["value"], entry["weight"]))
            else:
                checker.add(rp, f"expected a mapping of value to weight, got {_kind(rollout)}")
                ok = False
                continue
            values, weights = [], []
            for v, w in pairs:
                ok &= _flag_value(checker, typ, v, _join(rp, str(v)))
                wv = checker.number(w, _join(rp, str(v)), 0, 100, "a weight in percent")
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
        for p, pre in _items(checker, m.get("prerequisites"), _join(path, "prerequisites")):
            pm = checker.mapping(pre, p)
            if pm is None or "flag" not in pm or "value" not in pm:
                checker.add(p, "expected {flag: <key>, value: <value>}")
                ok = False
                continue
            if not isinstance(pm["flag"], str):
                checker.add(_join(p, "flag"), f"expected a flag key, got {_kind(pm['flag'])}")
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
                checker.add(_join(_join(path, "prerequisites"), i), f"unknown flag '{other}'")
    state: dict[str, int] = {}

    def visit(key: str, trail: list[str]) -> None:
        if state.get(key) == 2 or key not in out:
            return
        if state.get(key) == 1:
            cycle = " -> ".join([*trail[trail.index(key) :], key])
            source, path = paths[key]
            checker.file = source
            checker.add(_join(path, "prerequisites"), f"prerequisites form a cycle: {cycle}")
            return
        state[key] = 1
        for other, _ in out[key].prerequisites:
            visit(other, [*trail, key])
        state[key] = 2

    for key in out:
        visit(key, [])
    return out
