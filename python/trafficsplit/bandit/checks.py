"""Argument checks and column conversions that the bandit modules share: arm names, shares,
seeds, counts, per-arm aggregates, and arm and reward columns read into arrays."""

from __future__ import annotations

import functools
import importlib.util
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .._optional import require
from .._shared.checks import is_real
from ..errors import ConfigError

__all__ = [
    "aggregate",
    "arm_codes",
    "check_arms",
    "check_count",
    "check_max_change",
    "check_seed",
    "check_share",
    "distinct",
    "floats",
    "has_pandas",
    "is_missing",
    "log_arms",
    "reward_array",
]


def is_missing(v: Any) -> bool:
    """None, NaN and pandas.NA (by type name, so pandas stays optional)."""
    return v is None or (isinstance(v, float) and math.isnan(v)) or type(v).__name__ == "NAType"


@functools.cache
def has_pandas() -> bool:
    """pandas is optional; with it, arm columns are factorised by hashing."""
    return importlib.util.find_spec("pandas") is not None


def log_arms(served: Any, arms: Sequence[str] | None) -> list[str]:
    if arms is not None:
        return list(check_arms(arms))
    return sorted({str(a) for a in distinct(served)})


def check_arms(arms: Any) -> tuple[str, ...]:
    if isinstance(arms, str | bytes) or not isinstance(arms, Iterable):
        raise ConfigError(f"arms must be a list of arm names, got {type(arms).__name__}")
    out = tuple(arms)
    if not out:
        raise ConfigError("arms must name at least one arm")
    for i, a in enumerate(out):
        if not isinstance(a, str) or not a:
            raise ConfigError(f"arms[{i}] must be a non-empty str, got {a!r}")
    if len(set(out)) != len(out):
        raise ConfigError(f"arm names must be unique, got {list(out)}")
    return out


def check_share(x: Any, name: str) -> float:
    if not is_real(x) or not 0 <= float(x) <= 1:
        raise ConfigError(f"{name} must be a share between 0 and 1, got {x!r}")
    return float(x)


def check_max_change(x: Any) -> float:
    if x is None:
        return 1.0
    if not is_real(x) or not 0 < float(x) <= 1:
        raise ConfigError(f"max_change must be a share in (0, 1] (or None), got {x!r}")
    return float(x)


def check_seed(x: Any, name: str) -> int:
    if not isinstance(x, numbers.Integral) or isinstance(x, bool) or not 0 <= int(x) < 2**64:
        raise ConfigError(f"{name} must be an int between 0 and 2**64 - 1, got {x!r}")
    return int(x)


def check_count(x: Any, name: str) -> int:
    if not isinstance(x, numbers.Integral) or isinstance(x, bool) or int(x) < 1:
        raise ConfigError(f"{name} must be a positive int, got {x!r}")
    return int(x)


def floats(values: Any, name: str) -> list[float]:
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a sequence of numbers, got {values!r:.80}") from None
    for i, v in enumerate(out):
        if not math.isfinite(v):
            raise ConfigError(f"{name}[{i}] must be finite, got {v!r}")
    return out


def aggregate(agg: Any, path: str) -> tuple[float, float, float]:
    if isinstance(agg, Mapping):
        if "count" not in agg or "sum" not in agg or ("m2" not in agg and "sum_sq" not in agg):
            raise ConfigError(f"{path} needs count, sum and sum_sq (or m2), got {sorted(agg)}")
        count, total = float(agg["count"]), float(agg["sum"])
        if "m2" in agg:
            m2 = float(agg["m2"])
        else:
            m2 = float(agg["sum_sq"]) - (total * total / count if count > 0 else 0.0)
            m2 = max(m2, 0.0)  # rounding of sum_sq - sum^2 / count
    elif isinstance(agg, Sequence) and len(agg) == 3:
        count, total, sum_sq = (float(x) for x in agg)
        m2 = max(sum_sq - (total * total / count if count > 0 else 0.0), 0.0)
    else:
        raise ConfigError(f"{path} must be (count, sum, sum_of_squares) or a mapping, got {agg!r}")
    return count, total, m2


def arm_codes(arms: Any, index: Mapping[str, int], column: str = "arms") -> np.ndarray:
    """Arm indexes of a column of arm names (or of integer indexes), checked."""
    series = hasattr(arms, "to_numpy") and has_pandas()
    kind = getattr(getattr(arms, "dtype", None), "kind", "") if series else ""
    if series and kind not in ("i", "u"):
        values: Any = arms
    else:
        values = np.asarray(arms.to_numpy() if hasattr(arms, "to_numpy") else arms)
    if np.ndim(values) != 1:
        raise ConfigError(f"{column} must be one-dimensional")
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        codes = values.astype(np.int64)
        bad = np.flatnonzero((codes < 0) | (codes >= len(index)))
        if len(bad):
            raise ConfigError(
                f"{column}[{bad[0]}] is arm index {codes[bad[0]]}, outside 0..{len(index) - 1}"
            )
        return codes
    if len(values) == 0:
        return np.zeros(0, np.int64)
    if has_pandas():
        pd = require("pandas")

        # Hashing, no sort; a Series (categorical included) is factorised without copying.
        inverse, uniques = pd.factorize(values if series else np.asarray(values, dtype=object))
        uniques = np.asarray(uniques, dtype=object)
    else:
        uniques, inverse = np.unique(values.astype(object).astype(str), return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    if (inverse < 0).any():
        row = int(np.flatnonzero(inverse < 0)[0])
        raise ConfigError(f"{column}[{row}] is missing; every row needs the arm served")
    lookup = np.empty(len(uniques), np.int64)
    for j, u in enumerate(uniques):
        if not isinstance(u, str) or u not in index:
            row = int(np.flatnonzero(inverse == j)[0])
            raise ConfigError(f"{column}[{row}] is {u!r}, not among the arms {list(index)}")
        lookup[j] = index[u]
    return lookup[inverse]


def distinct(values: Any) -> list[Any]:
    if has_pandas():
        pd = require("pandas")

        unique = values.unique() if hasattr(values, "unique") else pd.unique(np.asarray(values))
        return [v for v in unique if not is_missing(v)]
    return list(set(np.asarray(values).tolist()))


def reward_array(values: Any, n: int, column: str = "rewards") -> np.ndarray:
    raw = values.to_numpy() if hasattr(values, "to_numpy") else values
    try:
        out = np.ascontiguousarray(np.asarray(raw, dtype=np.float64))
    except (TypeError, ValueError):
        raise ConfigError(f"{column} must be numbers") from None
    if out.ndim != 1 or len(out) != n:
        raise ConfigError(
            f"{column} must be one-dimensional with one value per row ({n} rows), "
            f"got shape {out.shape}"
        )
    return out
