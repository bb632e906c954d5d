"""Editing one entry of a configuration file in place: validated first, written atomically,
and in YAML only the entry's own lines rewritten (the rest of the file, comments included,
kept byte for byte)."""

from __future__ import annotations

import datetime as _dt
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._shared.files import write_atomically
from ..errors import ConfigError
from .compile import compile_documents
from .files import config_files, read_file, unique_key_loader
from .model import ConfigValidationError

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
        doc = read_file(f)
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
            doc = read_file(file)
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
                (str(f), doc if f == file else read_file(f)) for f in config_files(config_path)
            ]
            try:
                compile_documents(documents)
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
        if yaml.load(spliced, Loader=unique_key_loader()) != doc:
            return None
    except yaml.YAMLError:
        return None
    return spliced


def _write_atomically(path: Path, doc: Any, text: str | None = None) -> None:
    """Writes ``text``, or else ``doc`` serialised by the file's kind, through a temporary
    dot-file that is fsynced and renamed over ``path``."""
    if text is None and path.suffix.lower() == ".json":
        text = json.dumps(doc, indent=2, default=_json_default) + "\n"
    elif text is None:
        text = _dump_yaml(doc)
    write_atomically(path, text)


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
