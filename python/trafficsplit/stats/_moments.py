"""Mergeable sufficient statistics (count, means, co-moments) of one or more numeric columns.

The one-pass grouped kernel lives in the C++ core (``_core.stats.grouped_moments``); this module
turns what users have (numpy, pandas, pyarrow, lists) into its inputs and its outputs into
:class:`Moments`. See docs/statistics-moments.md.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .._core import stats as _core
from .._optional import loaded, require
from .._shared.checks import check_threads
from ..errors import ArgumentError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Moments", "MomentsByGroup", "grouped_moments"]

# Non-negative integer labels below this bound index the kernel's groups directly (arm indices,
# small ids); larger or negative ones are factorised first, so that sparse labels do not make
# the kernel carry many empty groups.
_DIRECT_CODES_LIMIT = 1 << 12


@dataclass(frozen=True, eq=False)
class Moments:
    """Sufficient statistics of ``k`` columns over ``n`` rows.

    ``means[i]`` is the mean of column ``i`` and ``comoments[i, j]`` the centred cross-product
    sum ``Σ (x_i - mean_i)(x_j - mean_j)``; ``skipped`` counts rows left out because a value was
    NaN. Centred sums merge exactly (Chan, Golub, LeVeque 1979) and avoid the cancellation of
    ``Σx² - (Σx)²/n``. The first column is the metric: ``mean``, ``var``, ``std``, ``sum`` and
    ``sum_sq`` refer to it.

    >>> m = Moments.from_values([1.0, 2.0, 4.0, 7.0, 10.0])
    >>> m.n, m.mean, round(m.var, 12)
    (5, 4.8, 13.7)
    >>> a, b = Moments.from_values([1.0, 2.0]), Moments.from_values([4.0, 7.0, 10.0])
    >>> round(a.merge(b).var, 12)
    13.7
    """

    n: int
    means: np.ndarray
    comoments: np.ndarray
    columns: tuple[str, ...] = ("y",)
    skipped: int = 0
    _: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        means = np.atleast_1d(np.asarray(self.means, dtype=np.float64))
        com = np.atleast_2d(np.asarray(self.comoments, dtype=np.float64))
        k = means.size
        if means.ndim != 1 or com.shape != (k, k):
            raise ArgumentError(
                f"Moments: {k} means need a {k}x{k} co-moment matrix, got shape {com.shape}"
            )
        columns = (self.columns,) if isinstance(self.columns, str) else tuple(self.columns)
        if len(columns) != k:
            raise ArgumentError(f"Moments: {k} columns but {len(columns)} names {columns}")
        if int(self.n) < 0 or int(self.skipped) < 0:
            raise ArgumentError(f"Moments: n={self.n} and skipped={self.skipped} must be >= 0")
        object.__setattr__(self, "n", int(self.n))
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "comoments", com)
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "skipped", int(self.skipped))

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_values(
        cls,
        values: Any,
        *more: Any,
        columns: Sequence[str] | None = None,
        threads: int | None = None,
    ) -> Moments:
        """Moments of one column, or of several columns of equal length (metric first).

        Columns may be numpy arrays (any real dtype), pandas Series (nullable ``Float64`` /
        ``Int64`` too), pyarrow arrays or lists; a row with a NaN or null in any column is
        skipped and counted in ``skipped``. One pass in the C++ core.
        """
        names = _names(columns, 1 + len(more), "Moments.from_values")
        cols = [
            _value_column(v, name, ravel=True)
            for v, name in zip((values, *more), names, strict=True)
        ]
        _check_lengths(cols, names, None, "Moments.from_values")
        n, means, com, skipped, _ = _core.grouped_moments(None, cols, 1, check_threads(threads))
        return cls(int(n[0]), means[0], com[0], names, int(skipped[0]))

    @classmethod
    def from_sums(
        cls,
        n: int,
        sums: float | Sequence[float],
        sums_of_products: float | Sequence[Sequence[float]],
        columns: Sequence[str] | None = None,
    ) -> Moments:
        """From raw sums as SQL or Spark produce them: ``n``, ``Σx`` and ``Σx²`` for one column,
        or a vector of sums and the matrix ``Σ x_i x_j`` for several.

        Raw sums lose digits when the mean is large next to the spread (``Σx² - (Σx)²/n``
        cancels); prefer per-partition :class:`Moments` merged with :meth:`merge` there.

        >>> m = Moments.from_sums(5, 24.0, 170.0)  # COUNT(*), SUM(y), SUM(y * y)
        >>> m.mean, round(m.var, 12)
        (4.8, 13.7)
        """
        s = np.atleast_1d(np.asarray(sums, dtype=np.float64))
        sp = np.atleast_2d(np.asarray(sums_of_products, dtype=np.float64))
        k = s.size
        if sp.shape != (k, k):
            raise ArgumentError(f"Moments.from_sums: expected a {k}x{k} matrix of product sums")
        means = s / n if n else np.zeros(k)
        com = sp - np.outer(s, s) / n if n else np.zeros((k, k))
        names = tuple(columns) if columns is not None else _default_names(k)
        return cls(int(n), means, com, names, 0)

    @classmethod
    def grouped(
        cls,
        groups: Any,
        *values: Any,
        columns: Sequence[str] | None = None,
        threads: int | None = None,
    ) -> MomentsByGroup:
        """Moments of each group in one pass: see :func:`grouped_moments`."""
        return grouped_moments(groups, *values, columns=columns, threads=threads)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        by: str,
        columns: str | Sequence[str],
        threads: int | None = None,
    ) -> MomentsByGroup:
        """Moments of ``columns`` (metric first) for each value of the column ``by``.

        >>> import pandas as pd
        >>> df = pd.DataFrame({"arm": ["a", "b", "a", "b"], "y": [1.0, 2.0, 3.0, 6.0]})
        >>> by_arm = Moments.from_frame(df, "arm", "y")
        >>> by_arm["a"].mean, by_arm["b"].var
        (2.0, 8.0)
        """
        names = [columns] if isinstance(columns, str) else list(columns)
        missing = [c for c in [by, *names] if c not in frame.columns]
        if missing:
            raise ArgumentError(f"Moments.from_frame: no column {missing[0]!r} in the frame")
        return grouped_moments(
            frame[by], *(frame[c] for c in names), columns=[str(c) for c in names], threads=threads
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; :meth:`from_dict` reads it back unchanged."""
        return {
            "n": self.n,
            "means": self.means.tolist(),
            "comoments": self.comoments.tolist(),
            "columns": list(self.columns),
            "skipped": self.skipped,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Moments:
        """The moments :meth:`to_dict` wrote."""
        if not isinstance(data, Mapping):
            raise ArgumentError(f"Moments.from_dict: expected a mapping, got {type(data).__name__}")
        missing = [key for key in ("n", "means", "comoments") if key not in data]
        if missing:
            raise ArgumentError(f"Moments.from_dict: missing key {missing[0]!r}")
        unknown = sorted(set(data) - {"n", "means", "comoments", "columns", "skipped"})
        if unknown:
            raise ArgumentError(f"Moments.from_dict: unknown key {unknown[0]!r}")
        try:
            means = np.asarray(data["means"], dtype=np.float64)
            com = np.asarray(data["comoments"], dtype=np.float64)
            n, skipped = int(data["n"]), int(data.get("skipped", 0))
        except (TypeError, ValueError) as e:
            raise ArgumentError(f"Moments.from_dict: malformed data ({e})") from None
        columns = data.get("columns")
        names = tuple(columns) if columns is not None else _default_names(means.size)
        return cls(n, means, com, names, skipped)

    # -- algebra -----------------------------------------------------------------------------
    def merge(self, other: Moments) -> Moments:
        """The moments of the union of both row sets (exact, order-independent up to rounding)."""
        if self.columns != other.columns:
            raise ArgumentError(f"Moments.merge: columns {self.columns} and {other.columns} differ")
        n = self.n + other.n
        if n == 0:
            return Moments(
                0,
                self.means.copy(),
                self.comoments.copy(),
                self.columns,
                self.skipped + other.skipped,
            )
        delta = other.means - self.means
        means = self.means + delta * (other.n / n)
        com = self.comoments + other.comoments + np.outer(delta, delta) * (self.n * other.n / n)
        return Moments(n, means, com, self.columns, self.skipped + other.skipped)

    __add__ = merge

    @classmethod
    def merge_all(cls, parts: Iterable[Moments]) -> Moments:
        """Merges many moments (e.g. of data partitions) as a balanced tree, so rounding grows
        with the log of their count."""
        items = list(parts)
        if not items:
            raise ArgumentError("Moments.merge_all: nothing to merge")
        while len(items) > 1:
            items = [
                items[i].merge(items[i + 1]) if i + 1 < len(items) else items[i]
                for i in range(0, len(items), 2)
            ]
        return items[0]

    # -- the metric (first column) -----------------------------------------------------------
    @property
    def mean(self) -> float:
        return float(self.means[0])

    @property
    def var(self) -> float:
        """Sample variance (``n - 1`` denominator) of the metric."""
        return self.cov(0, 0)

    @property
    def std(self) -> float:
        return float(np.sqrt(self.var))

    @property
    def sum(self) -> float:
        return float(self.means[0] * self.n)

    @property
    def sum_sq(self) -> float:
        return float(self.comoments[0, 0] + self.n * self.means[0] ** 2)

    def index(self, column: int | str) -> int:
        if isinstance(column, str):
            try:
                return self.columns.index(column)
            except ValueError:
                raise ArgumentError(f"Moments: no column {column!r}; have {self.columns}") from None
        return int(column)

    def cov(self, a: int | str = 0, b: int | str = 0, ddof: int = 1) -> float:
        """Sample covariance of two columns (``ddof=1``); NaN with fewer than ``ddof + 1`` rows."""
        i, j = self.index(a), self.index(b)
        if self.n <= ddof:
            return float("nan")
        return float(self.comoments[i, j] / (self.n - ddof))

    def column(self, name: int | str) -> Moments:
        """The one-column moments of ``name``."""
        i = self.index(name)
        return Moments(
            self.n,
            self.means[[i]].copy(),
            self.comoments[[i]][:, [i]].copy(),
            (self.columns[i],),
            self.skipped,
        )


class MomentsByGroup(dict[Hashable, Moments]):
    """:class:`Moments` by group label, as :func:`grouped_moments` returns them.

    A plain dict (label -> Moments) plus ``null_rows``, the rows left out because their group
    label was null (None, NaN, pandas NA). Groups present only with NaN values are included
    with ``n == 0``.
    """

    def __init__(self, items: Any = (), null_rows: int = 0) -> None:
        super().__init__(items)
        self.null_rows = int(null_rows)

    def merge(self, other: Mapping[Hashable, Moments]) -> MomentsByGroup:
        """Group by group :meth:`Moments.merge` of both, e.g. of two data partitions; a label
        present in one only is kept as it is."""
        out = MomentsByGroup(self, self.null_rows + getattr(other, "null_rows", 0))
        for label, m in other.items():
            out[label] = out[label].merge(m) if label in out else m
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: ``{"groups": [[label, Moments.to_dict()], ...], "null_rows": n}``
        (a list of pairs, so that labels need not be strings)."""
        groups = [[_plain(label), m.to_dict()] for label, m in self.items()]
        return {"groups": groups, "null_rows": self.null_rows}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MomentsByGroup:
        """The groups :meth:`to_dict` wrote."""
        try:
            pairs = [(label, Moments.from_dict(m)) for label, m in data["groups"]]
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, ArgumentError):
                raise
            raise ArgumentError(f"MomentsByGroup.from_dict: malformed data ({e})") from None
        return cls(pairs, int(data.get("null_rows", 0)))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self), self.null_rows))

    def __repr__(self) -> str:
        return f"MomentsByGroup({dict.__repr__(self)}, null_rows={self.null_rows})"


def grouped_moments(
    groups: Any,
    *values: Any,
    columns: Sequence[str] | None = None,
    threads: int | None = None,
) -> MomentsByGroup:
    """Per group label, the :class:`Moments` of ``values`` (metric first), in one pass.

    ``groups``: one label per row, as a numpy array (ints or objects), a pandas Series
    (categorical too), a pyarrow array or a list; null labels are left out and counted in
    ``null_rows``. ``values``: columns of the same length (numpy, pandas incl. nullable
    ``Float64`` / ``Int64``, pyarrow, lists); a row with a NaN or null in any column is left out
    and counted in its group's ``skipped``. ``columns``: names (default ``("y",)`` for one
    column, ``x0, x1, ...`` for several). ``threads``: None for all cores; results depend on it
    only through rounding.

    >>> by_arm = grouped_moments(["a", "b", "a", None], [1.0, 5.0, 3.0, 9.0])
    >>> sorted(by_arm), by_arm["a"].mean, by_arm.null_rows
    (['a', 'b'], 2.0, 1)
    """
    if not values:
        raise ArgumentError("grouped_moments: no value column given")
    names = _names(columns, len(values), "grouped_moments")
    cols = [_value_column(v, name) for v, name in zip(values, names, strict=True)]
    codes, labels = _group_codes(groups)
    _check_lengths(cols, names, codes, "grouped_moments")
    return moments_by_codes(codes, labels, cols, names, threads)


def moments_by_codes(
    codes: np.ndarray,
    labels: Sequence[Any],
    columns: Sequence[np.ndarray],
    names: tuple[str, ...],
    threads: int | None = None,
) -> MomentsByGroup:
    """The kernel pass behind :func:`grouped_moments`, for callers that already hold group
    codes (contiguous ints, ``< 0`` for no group) and float64 columns: one entry per label with
    at least one row."""
    n, means, com, skipped, null_rows = _core.grouped_moments(
        codes, list(columns), len(labels), check_threads(threads)
    )
    present = np.flatnonzero((n + skipped) > 0)
    return MomentsByGroup(
        (
            (labels[g], Moments(int(n[g]), means[g].copy(), com[g].copy(), names, int(skipped[g])))
            for g in present.tolist()
        ),
        null_rows,
    )


def _default_names(k: int) -> tuple[str, ...]:
    return ("y",) if k == 1 else tuple(f"x{i}" for i in range(k))


def _names(columns: Sequence[str] | None, k: int, where: str) -> tuple[str, ...]:
    if columns is None:
        return _default_names(k)
    names = (columns,) if isinstance(columns, str) else tuple(columns)
    if len(names) != k:
        raise ArgumentError(f"{where}: {k} columns but {len(names)} names")
    return names


def _check_lengths(
    cols: list[np.ndarray], names: tuple[str, ...], codes: np.ndarray | None, where: str
) -> None:
    if codes is None:
        if len({len(c) for c in cols}) > 1:
            sizes = ", ".join(f"{name!r}: {len(c)}" for c, name in zip(cols, names, strict=True))
            raise ArgumentError(f"{where}: columns have different lengths ({sizes})")
        return
    for col, name in zip(cols, names, strict=True):
        if len(col) != len(codes):
            raise ArgumentError(
                f"{where}: column {name!r} has {len(col)} rows but the group labels have "
                f"{len(codes)}"
            )


def _plain(label: Any) -> Any:
    return label.item() if isinstance(label, np.generic) else label


_NUMERIC_INFERRED = {"integer", "floating", "mixed-integer-float", "decimal", "boolean", "empty"}


def _value_column(values: Any, name: str, ravel: bool = False) -> np.ndarray:
    """A contiguous native float64 (or float32) array; nulls become NaN. Non-numeric values are
    an ArgumentError naming the column."""
    if _is_arrow(values):
        values = _to_pandas(values)
    pd = loaded("pandas")
    if pd is not None and isinstance(values, (pd.Series, pd.Index)):
        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            raise ArgumentError(f"value column {name!r} is categorical; expected numbers")
        if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            if isinstance(dtype, np.dtype) and dtype.kind == "f":
                arr = values.to_numpy()
            else:
                arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            arr = values.to_numpy(dtype=object)
    else:
        try:
            arr = np.asarray(values)
        except (TypeError, ValueError) as e:  # ragged nested sequences
            raise ArgumentError(f"value column {name!r}: not a column of numbers ({e})") from None
    if ravel:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ArgumentError(f"value column {name!r} must be one-dimensional, got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind == "f" and arr.dtype.itemsize in (4, 8):
        return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
    if kind in "fiub":
        return np.ascontiguousarray(arr, dtype=np.float64)
    if kind == "O":
        pd = require("pandas", what="a column of Python objects as values")
        inferred = pd.api.types.infer_dtype(arr, skipna=True)
        if inferred in _NUMERIC_INFERRED:
            return np.ascontiguousarray(
                pd.to_numeric(pd.Series(arr, dtype=object)).to_numpy(
                    dtype=np.float64, na_value=np.nan
                )
            )
        raise ArgumentError(f"value column {name!r} holds {inferred} values; expected numbers")
    raise ArgumentError(f"value column {name!r} has dtype {arr.dtype}; expected numbers")


def _is_arrow(values: Any) -> bool:
    return type(values).__module__.startswith("pyarrow") and hasattr(values, "to_pandas")


def _to_pandas(values: Any) -> Any:
    require("pandas", what="statistics of a pyarrow column")
    return values.to_pandas()


def _group_codes(groups: Any) -> tuple[np.ndarray, list[Any]]:
    """Signed integer codes (-1 for a null label) and the label of each code."""
    if _is_arrow(groups):
        groups = _to_pandas(groups)
    pd = loaded("pandas")
    if pd is not None and isinstance(groups, (pd.Series, pd.Index)):
        if isinstance(groups.dtype, pd.CategoricalDtype):
            cat = groups.array
            return np.ascontiguousarray(cat.codes), [_plain(c) for c in cat.categories]
        if isinstance(groups.dtype, np.dtype) and groups.dtype.kind in "iu":
            return _int_codes(groups.to_numpy())
        return _factorize(groups)
    arr = groups if isinstance(groups, np.ndarray) else np.asarray(groups, dtype=object)
    if arr.dtype == object and arr.size and not isinstance(groups, np.ndarray):
        # A list of plain ints takes the direct path; anything else is factorised.
        as_int = np.asarray(groups)
        if as_int.dtype.kind in "iu":
            arr = as_int
    if arr.ndim != 1:
        raise ArgumentError(f"group labels must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        return _int_codes(arr)
    return _factorize(arr)


def _int_codes(arr: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Non-negative small integer labels are the codes themselves (no factorising pass)."""
    if arr.size == 0:
        return np.zeros(0, dtype=np.int8), []
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= _DIRECT_CODES_LIMIT:
        return _factorize(arr)
    if arr.dtype.kind == "u":
        arr = arr.astype(np.min_scalar_type(-hi - 1))  # a signed type that holds hi
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("=")), list(range(hi + 1))


def _factorize(values: Any) -> tuple[np.ndarray, list[Any]]:
    pd = require("pandas", what="grouping by labels other than small non-negative integers")
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError:  # labels of types that do not compare: first-seen order
        codes, uniques = pd.factorize(values, sort=False)
    labels = list(uniques)
    if len(labels) < 2**7:
        codes = codes.astype(np.int8)  # a quarter of the bytes for the kernel to read
    elif len(labels) < 2**15:
        codes = codes.astype(np.int16)
    return np.ascontiguousarray(codes), [_plain(label) for label in labels]


def as_moments(x: Any) -> Moments:
    """``Moments`` as given, or the moments of raw values."""
    if isinstance(x, Moments):
        return x
    if isinstance(x, Mapping):
        raise ArgumentError("expected Moments or an array of values, got a mapping")
    return Moments.from_values(x)
