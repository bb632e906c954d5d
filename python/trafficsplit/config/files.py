"""Configuration files and folders: reading YAML (libyaml when present) and JSON with every
problem reported against its file."""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import ArgumentError, ConfigError
from .compile import compile_documents
from .model import ConfigIssue, ConfigValidationError, Snapshot

MAX_FILE_BYTES = 64 * 1024 * 1024
"""A configuration file larger than this is refused (a 20,000-experiment file is about 2 MB)."""
MAX_VALUES = 1_000_000
"""The most values (mappings, lists and scalars, counting every use of a YAML alias) a file
may stand for: YAML aliases can make a small file stand for an exponentially large document
(the "billion laughs"), which would then be expanded by hashing and compiling."""
MAX_DEPTH = 200
"""The deepest nesting of mappings and lists a file may have."""


def read_file(path: Path) -> Any:
    """The document in one YAML or JSON file, checked to be bounded (size, nesting, expanded
    size), or a ConfigValidationError naming the file and what is wrong."""

    def refuse(message: str) -> ConfigValidationError:
        return ConfigValidationError([ConfigIssue(str(path), "", message)])

    try:
        # Only regular files: a FIFO or a device would block or never end.
        if not stat.S_ISREG(path.stat().st_mode):
            raise refuse("not a regular file")
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise refuse(f"cannot be read: {exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise refuse(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(f"not UTF-8 text (byte {exc.start} is invalid)") from None
    try:
        doc = _parse(path, text)
    except RecursionError:
        raise refuse(f"nested more than {MAX_DEPTH} levels deep") from None
    _check_bounded(doc, refuse)
    return doc


def _parse(path: Path, text: str) -> Any:
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
        return yaml.load(text, Loader=unique_key_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigValidationError(
            [ConfigIssue(str(path), "", f"invalid YAML{where}: {problem}")]
        ) from None


_CONTAINERS = (dict, list)  # what the YAML and JSON loaders make of mappings and sequences


def _check_bounded(doc: Any, refuse: Callable[[str], ConfigValidationError]) -> None:
    """Refuses a document nested deeper than MAX_DEPTH, holding a cycle (a YAML alias inside
    its own anchor), or standing for more than MAX_VALUES values once its aliases are
    expanded. Linear in the distinct objects: a shared object is sized once."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    # An explicit stack of (object, depth, children pending): no recursion on hostile input.
    stack: list[tuple[Any, int, bool]] = [(doc, 1, True)]
    while stack:
        obj, depth, enter = stack.pop()
        if not isinstance(obj, dict | list):
            continue
        key = id(obj)
        if enter:
            if key in size:
                continue
            if key in on_path:
                raise refuse("a YAML alias refers to a mapping or list that contains it")
            if depth > MAX_DEPTH:
                raise refuse(f"nested more than {MAX_DEPTH} levels deep")
            on_path.add(key)
            stack.append((obj, depth, False))
            children = obj.values() if isinstance(obj, dict) else obj
            stack.extend((c, depth + 1, True) for c in children if type(c) in _CONTAINERS)
            continue
        on_path.discard(key)
        children = obj.values() if isinstance(obj, dict) else obj
        total = 1 + len(obj)
        for c in children:
            if type(c) in _CONTAINERS:
                total += size[id(c)]
        if total > MAX_VALUES:
            raise refuse(
                f"stands for more than {MAX_VALUES:,} values once its YAML aliases are "
                "expanded; write the repeated parts out, or use fewer aliases"
            )
        size[key] = total


@functools.cache
def unique_key_loader() -> Any:
    """A YAML SafeLoader that refuses a key repeated within one mapping (YAML itself would
    silently keep the last value)."""
    import yaml

    # libyaml's parser when PyYAML was built with it: several times faster on large files.
    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        # Plain scalars are resolved (null, bool, int, float, timestamp or str) by regular
        # expressions in Python, once per scalar: a configuration repeats the same few values
        # (arm names, weights, keys) thousands of times, so each is resolved once per file.
        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is not yaml.ScalarNode:
                return super().resolve(kind, value, implicit)
            cache = self.__dict__.setdefault("_resolved", {})
            key = (value, implicit)
            tag = cache.get(key)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(cache) < 65_536:
                    cache[key] = tag
            return tag

    merge_tag = "tag:yaml.org,2002:merge"

    def mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == merge_tag:
                continue  # `<<: *anchor` merges; keys written out beside it override the merged
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

    def timestamp(loader: Any, node: Any) -> Any:
        try:
            return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
        except (ValueError, OverflowError) as exc:  # 2026-13-01: a date that does not exist
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid time ({exc})", node.start_mark
            ) from None

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    Loader.add_constructor("tag:yaml.org,2002:timestamp", timestamp)
    return Loader


def config_files(path: str | os.PathLike[str]) -> list[Path]:
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


def load_config(*paths: str | os.PathLike[str]) -> Snapshot:
    """Loads, validates and compiles configuration files or folders (merged in order).

    Raises :class:`ConfigValidationError` listing every problem, each with its file and path.
    """
    if not paths:
        raise ConfigError("load_config needs at least one file or folder")
    with _paused_gc():
        return _load(paths)


def as_snapshot(config: Any, what: str = "config") -> Snapshot:
    """The snapshot that ``config`` names: a :class:`Snapshot`, anything with a ``snapshot``
    (a :class:`~trafficsplit.Splitter`), a file or folder path (:func:`load_config`), or a
    mapping as loaded from YAML (:func:`~trafficsplit.config.parse_config`). The one way the
    backfill, DuckDB and Spark entry points read their ``config`` argument."""
    if isinstance(config, Snapshot):
        return config
    snapshot = getattr(config, "snapshot", None)
    if isinstance(snapshot, Snapshot):
        return snapshot
    if isinstance(config, str | os.PathLike):
        return load_config(config)
    if isinstance(config, Mapping):
        return compile_documents([("", config)])
    raise ArgumentError(
        f"{what}: expected a Snapshot, a Splitter, a configuration file or folder, or a "
        f"mapping; got {type(config).__name__}"
    )


@contextlib.contextmanager
def _paused_gc() -> Iterator[None]:
    """The cyclic garbage collector paused while a configuration is read and compiled: the
    millions of objects a large file makes (none of them garbage) would otherwise set off
    collections that walk all of them again and again, which made loading superlinear (2 to 3
    times slower at 20,000 experiments). Other threads only see collection postponed."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _load(paths: tuple[str | os.PathLike[str], ...]) -> Snapshot:
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
                documents.append((str(file), read_file(file)))
            except ConfigValidationError as exc:
                issues.extend(exc.issues)
    if issues:
        raise ConfigValidationError(issues)
    return compile_documents(documents)
