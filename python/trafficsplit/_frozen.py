"""Read-only copies of JSON-able payloads, so one unit cannot change what another receives."""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn

from .errors import ConfigError


class FrozenDict(dict[Any, Any]):
    """A dict that refuses changes. Serialises with ``json`` like any dict."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("arm payloads are read-only; copy them with copy.deepcopy() to change them")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse

    # typeshed declares dict unhashable (``__hash__: None``); a read-only dict is hashable.
    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=lambda kv: kv[0])))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


MAX_DEPTH = 200
"""The deepest nesting a payload may have (as a configuration file: docs/configuration.md)."""


def freeze(value: Any, path: str, depth: int = 0) -> Any:
    """A deep read-only copy of a JSON-able value; ConfigError naming the path otherwise."""
    if depth > MAX_DEPTH:
        raise ConfigError(f"{path} is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{path} must be JSON-able; {value!r} is not valid JSON")
        return value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(
                    f"{path} has a key {k!r} of type {type(k).__name__}; "
                    "JSON object keys must be str"
                )
            out[k] = freeze(v, f"{path}.{k}", depth + 1)
        return FrozenDict(out)
    if isinstance(value, list | tuple):
        return tuple(freeze(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
    raise ConfigError(
        f"{path} must be JSON-able (dict, list, str, number, bool, None), "
        f"got {type(value).__name__}"
    )


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
