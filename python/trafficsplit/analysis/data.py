"""Reading the data of an analysis into per-arm :class:`~trafficsplit.stats.Moments`: unit-level
rows, per-arm sufficient-statistics tables (and writing them: ``sufficient_statistics``) or a
mapping metric -> {arm: Moments}."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._frames import as_pandas_frame
from .._optional import require
from ..errors import ConfigError
from ..stats import Moments
from .metrics import column_groups, column_names, column_pairs, covariate_columns, guardrail_specs

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["per_arm_moments", "sufficient_statistics"]


def per_arm_moments(
    data: Any, arm: str, groups: dict[str, tuple[str, ...]]
) -> tuple[dict[str, dict[str, Moments]], dict[str, int]]:
    """Moments per group of columns and arm, and units per arm, from a mapping
    metric -> {arm: Moments}, a per-arm sufficient-statistics table or one row per unit."""
    plain = [c for g in groups.values() for c in g]
    if isinstance(data, Mapping):
        return _moments_from_mapping(data, groups)
    if _is_sums_table(data, plain):
        return _moments_from_sums(data, arm, groups)
    return _moments_from_units(data, arm, groups)


def _is_sums_table(df: Any, columns: list[str]) -> bool:
    cols = set(map(str, df.columns))
    if "n" in cols and all(f"sum__{c}" in cols for c in columns):
        return not all(c in cols for c in columns)
    return False


def _arm_codes(values: Any) -> tuple[np.ndarray, list[str]]:
    """Small integer codes per row (-1: no arm) and the arm of each code, in first-seen order
    (categories order for a categorical)."""
    pd = require("pandas", what="analyze")

    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = np.asarray(s.cat.codes.to_numpy())
        labels = [str(c) for c in s.cat.categories]
    else:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        labels = [str(u) for u in uniques]
    dtype = np.int8 if len(labels) < 2**7 else np.int32
    return np.ascontiguousarray(codes, dtype=dtype), labels


def _float_column(df: Any, name: str) -> np.ndarray:
    pd = require("pandas", what="analyze")

    if name not in df.columns:
        raise ConfigError(f"analyze: no column {name!r} in the data; columns: {list(df.columns)}")
    col = df[name]
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.astype("float64").to_numpy()
    if not pd.api.types.is_numeric_dtype(col.dtype):
        raise ConfigError(
            f"analyze: column {name!r} must be numeric (or boolean), got dtype {col.dtype}"
        )
    out = col.to_numpy(dtype=np.float64, na_value=np.nan)
    inf = np.isinf(out)
    if inf.any():
        rows = np.flatnonzero(inf)
        raise ConfigError(
            f"analyze: column {name!r} has {len(rows)} infinite value(s), first at row "
            f"{int(rows[0])} ({out[rows[0]]}); use NaN for a missing value"
        )
    return out


def _moments_from_units(
    df: Any, arm: str, groups: dict[str, tuple[str, ...]]
) -> tuple[dict[str, dict[str, Moments]], dict[str, int]]:
    if arm not in df.columns:
        raise ConfigError(
            f"analyze: no arm column {arm!r} in the data; columns: {list(df.columns)}"
        )
    codes, labels = _arm_codes(df[arm])
    counts_arr = np.bincount(codes[codes >= 0], minlength=len(labels))
    # arms without a single unit (unused categories) are not compared
    counts = {lab: int(c) for lab, c in zip(labels, counts_arr, strict=True) if c > 0}
    out: dict[str, dict[str, Moments]] = {}
    cache: dict[str, np.ndarray] = {}
    for name, cols in groups.items():
        arrays = []
        for c in cols:
            if c not in cache:
                cache[c] = _float_column(df, c)
            arrays.append(cache[c])
        per = _grouped(codes, labels, arrays, cols)
        out[name] = {a: per[a] for a in counts}
    return out, counts


def _grouped(
    codes: np.ndarray, labels: list[str], arrays: list[np.ndarray], cols: tuple[str, ...]
) -> Mapping[Hashable, Moments]:
    """Per-arm moments of ``arrays`` in one pass of the core kernel (negative codes: rows
    without an arm, left out; arms without rows are absent)."""
    from ..stats._moments import moments_by_codes

    return moments_by_codes(
        codes, labels, [np.ascontiguousarray(a, dtype=np.float64) for a in arrays], cols
    )


def _moments_from_sums(
    df: Any, arm: str, groups: dict[str, tuple[str, ...]]
) -> tuple[dict[str, dict[str, Moments]], dict[str, int]]:
    for c in (arm, "n"):
        if c not in df.columns:
            raise ConfigError(
                f"analyze: a sufficient-statistics table needs column {c!r}; columns: "
                f"{list(df.columns)}"
            )

    def col(name: str) -> np.ndarray:
        if name not in df.columns:
            raise ConfigError(
                f"analyze: the sufficient-statistics table lacks column {name!r} "
                "(see trafficsplit.sufficient_statistics for the layout)"
            )
        return df[name].to_numpy(dtype=np.float64)

    arms = [str(a) for a in df[arm].tolist()]
    n = col("n")
    out: dict[str, dict[str, Moments]] = {}
    for name, cols in groups.items():
        k = len(cols)
        sums = np.stack([col(f"sum__{c}") for c in cols], axis=1)
        prods = np.empty((len(arms), k, k))
        for i in range(k):
            prods[:, i, i] = col(f"sumsq__{cols[i]}")
            for j in range(i + 1, k):
                prods[:, i, j] = prods[:, j, i] = col(_prod_name(cols[i], cols[j]))
        per: dict[str, Moments] = {}
        for r, a in enumerate(arms):
            m = Moments.from_sums(int(n[r]), sums[r], prods[r], columns=cols)
            per[a] = per[a].merge(m) if a in per else m  # partitions of one arm merge
        out[name] = per
    counts: dict[str, int] = {}
    for a, v in zip(arms, n, strict=True):
        counts[a] = counts.get(a, 0) + int(v)
    return out, counts


def _moments_from_mapping(
    data: Mapping[str, Any], groups: dict[str, tuple[str, ...]]
) -> tuple[dict[str, dict[str, Moments]], dict[str, int]]:
    out: dict[str, dict[str, Moments]] = {}
    for name, cols in groups.items():
        per = data.get(name)
        if not isinstance(per, Mapping) or not per:
            raise ConfigError(
                f"analyze: no moments for {name!r}; the mapping has {sorted(map(str, data))}"
            )
        checked = {}
        for a, m in per.items():
            if not isinstance(m, Moments):
                raise ConfigError(
                    f"analyze: data[{name!r}][{a!r}] must be Moments, got {type(m).__name__}"
                )
            if len(m.columns) < len(cols):
                raise ConfigError(
                    f"analyze: data[{name!r}][{a!r}] has {len(m.columns)} column(s); "
                    f"{name!r} needs {len(cols)} ({', '.join(cols)})"
                )
            checked[str(a)] = m
        out[name] = checked
    # units per arm for the sample-ratio check: the first metric's counts
    first = next(iter(out.values()))
    return out, {a: m.n for a, m in first.items()}


def _prod_name(a: str, b: str) -> str:
    return f"sumprod__{a}__{b}"


def sufficient_statistics(
    data: pd.DataFrame,
    arm: str = "arm",
    metrics: Sequence[str] = (),
    covariates: Mapping[str, str] | Sequence[str] | None = None,
    ratio_metrics: Mapping[str, tuple[str, str]] | None = None,
    guardrails: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The per-arm table ``analyze`` also accepts: one row per arm with ``n``, and for every
    column ``c`` used ``sum__c`` and ``sumsq__c``, and ``sumprod__a__b`` for each metric and
    its covariate and each ratio's numerator and denominator. The same table from SQL::

        SELECT arm, COUNT(*) AS n, SUM(revenue) AS sum__revenue,
               SUM(revenue * revenue) AS sumsq__revenue, ...
        FROM units GROUP BY arm

    Rows with the same arm (per-partition aggregates) are merged by ``analyze``. Values must be
    complete: NaN in a used column is an error here (``analyze`` on units skips them instead).
    ``data`` may also be a polars DataFrame or a pyarrow Table (read as pandas).
    """
    pd = require("pandas", what="sufficient_statistics")
    data = as_pandas_frame(data, "sufficient_statistics")

    metric_list = column_names(metrics, "metrics")
    cov = covariate_columns(covariates, metric_list)
    ratios = column_pairs(ratio_metrics, "ratio_metrics")
    guards = guardrail_specs(guardrails)
    groups = column_groups(metric_list, cov, ratios, guards)
    if arm not in data.columns:
        raise ConfigError(f"no arm column {arm!r} in the data; columns: {list(data.columns)}")
    codes, labels = _arm_codes(data[arm])
    cols: list[str] = []
    for g in groups.values():
        cols.extend(c for c in g if c not in cols)
    arrays = {c: _float_column(data, c) for c in cols}
    for c, values in arrays.items():
        bad = int(np.isnan(values).sum())
        if bad:
            raise ConfigError(
                f"sufficient_statistics: column {c!r} has {bad} missing values; fill or drop "
                "them first (sums of incomplete rows would not be consistent)"
            )
    per = _grouped(codes, labels, list(arrays.values()), tuple(cols))
    present = [lab for lab in labels if lab in per]  # unused categories have no row
    # raw sums from the centred moments: Σx = n·mean, Σxy = comoment + n·mean_x·mean_y
    sums = {lab: per[lab].n * per[lab].means for lab in present}
    prods = {
        lab: per[lab].comoments + per[lab].n * np.outer(per[lab].means, per[lab].means)
        for lab in present
    }
    table: dict[str, Any] = {arm: present, "n": [per[lab].n for lab in present]}
    for i, c in enumerate(cols):
        table[f"sum__{c}"] = [sums[lab][i] for lab in present]
        table[f"sumsq__{c}"] = [prods[lab][i, i] for lab in present]
    for g in groups.values():
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                a, b = cols.index(g[i]), cols.index(g[j])
                table[_prod_name(g[i], g[j])] = [prods[lab][a, b] for lab in present]
    return pd.DataFrame(table)
