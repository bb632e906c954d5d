"""Configuration files and folders: reading YAML (libyaml when present) and JSON with every
problem reported against its file."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .compile import compile_documents
from .model import ConfigIssue, ConfigValidationError, Snapshot


def read_file(path: Path) -> Any:
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
        return yaml.load(text, Loader=unique_key_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigValidationError(
            [ConfigIssue(str(path), "", f"invalid YAML{where}: {problem}")]
        ) from None


@functools.cache
def unique_key_loader() -> Any:
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
                documents.append((str(file), read_file(file)))
            except ConfigValidationError as exc:
                issues.extend(exc.issues)
    if issues:
        raise ConfigValidationError(issues)
    return compile_documents(documents)
