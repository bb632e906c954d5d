"""Optional dependencies, imported where they are used.

``import trafficsplit`` needs only numpy and PyYAML. Every import of an optional library goes
through :func:`require`, so that a call which needs a library that is not installed says which
extra brings it: ``Analysis.plot needs matplotlib: pip install 'trafficsplit[plot]'``.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

__all__ = ["EXTRAS", "loaded", "require"]

EXTRAS: dict[str, str] = {
    "pandas": "pandas",
    "pyarrow": "arrow",
    "polars": "polars",
    "matplotlib": "plot",
    "opentelemetry": "otel",
    "redis": "redis",
    "tqdm": "backfill",
    "duckdb": "duckdb",
    "pyspark": "spark",
    "openfeature": "openfeature",
    "uvicorn": "serve",
}
"""The extra that installs each optional top-level package."""


def require(module: str, extra: str | None = None, what: str | None = None) -> ModuleType:
    """The module ``module`` (e.g. ``"pyarrow.parquet"``), or an ImportError naming the extra
    to install. ``what`` names the call that needs it in the message."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.partition(".")[0]
        extra = extra or EXTRAS.get(top, top)
        raise ImportError(
            f"{what or 'this call'} needs {top}: pip install 'trafficsplit[{extra}]'",
            name=e.name,
        ) from e


def loaded(name: str) -> Any:
    """The module if the program has already imported it, else None. An input made by pandas,
    pyarrow or polars can only exist when its library is loaded, so type checks use this and
    never import. A module another thread is still importing counts as not loaded: until its
    import ends it may lack its classes (pyarrow imports pandas lazily, on a reading thread,
    while assigning threads check their inputs)."""
    module = sys.modules.get(name)
    if module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False):
        return None
    return module
