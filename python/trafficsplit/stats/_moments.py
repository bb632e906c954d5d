"""Mergeable sufficient statistics (count, means, co-moments) of one or more numeric columns.

This reference implementation fixes the API; the grouped one-pass kernel lives in the C++ core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["Moments"]


@dataclass(frozen=True, eq=False)
class Moments:
    """Sufficient statistics of ``k`` columns over ``n`` rows.

    ``means[i]`` is the mean of column ``i`` and ``comoments[i, j]`` the centred cross-product
    sum ``Σ (x_i - mean_i)(x_j - mean_j)``; ``skipped`` counts rows left out because a value was
    NaN. Centred sums merge exactly (Chan, Golub, LeVeque 1979) and avoid the cancellation of
    ``Σx² - (Σx)²/n``. The first column is the metric: ``mean``, ``var``, ``std``, ``sum`` and
    ``sum_sq`` refer to it.
    """

    n: int
    means: np.ndarray
    comoments: np.ndarray
    columns: tuple[str, ...] = ("y",)
    skipped: int = 0
    _: Any = field(default=None, repr=False, compare=False)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_values(cls, values: Any, *more: Any, columns: Sequence[str] | None = None) -> Moments:
        """Moments of one column, or of several columns of equal length (metric first)."""
        cols = [np.asarray(v, dtype=np.float64).ravel() for v in (values, *more)]
        names = tuple(columns) if columns is not None else _default_names(len(cols))
        if len({len(c) for c in cols}) > 1:
            raise ConfigError("Moments.from_values: columns have different lengths")
        if len(names) != len(cols):
            raise ConfigError(f"Moments.from_values: {len(cols)} columns but {len(names)} names")
        x = np.column_stack(cols) if cols[0].size else np.empty((0, len(cols)))
        keep = ~np.isnan(x).any(axis=1)
        x = x[keep]
        n = int(x.shape[0])
        means = x.mean(axis=0) if n else np.zeros(len(cols))
        d = x - means
        return cls(n, means, d.T @ d, names, int((~keep).sum()))

    @classmethod
    def from_sums(
        cls,
        n: int,
        sums: float | Sequence[float],
        sums_of_products: float | Sequence[Sequence[float]],
        columns: Sequence[str] | None = None,
    ) -> Moments:
        """From raw sums as SQL or Spark produce them: ``n``, ``Σx`` and ``Σx²`` for one column,
        or a vector of sums and the matrix ``Σ x_i x_j`` for several."""
        s = np.atleast_1d(np.asarray(sums, dtype=np.float64))
        sp = np.atleast_2d(np.asarray(sums_of_products, dtype=np.float64))
        k = s.size
        if sp.shape != (k, k):
            raise ConfigError(f"Moments.from_sums: expected a {k}x{k} matrix of product sums")
        means = s / n if n else np.zeros(k)
        com = sp - np.outer(s, s) / n if n else np.zeros((k, k))
        names = tuple(columns) if columns is not None else _default_names(k)
        return cls(int(n), means, com, names, 0)

    # -- algebra -----------------------------------------------------------------------------
    def merge(self, other: Moments) -> Moments:
        """The moments of the union of both row sets (exact, order-independent up to rounding)."""
        if self.columns != other.columns:
            raise ConfigError(f"Moments.merge: columns {self.columns} and {other.columns} differ")
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
                raise ConfigError(f"Moments: no column {column!r}; have {self.columns}") from None
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


def _default_names(k: int) -> tuple[str, ...]:
    return ("y",) if k == 1 else tuple(f"x{i}" for i in range(k))


def as_moments(x: Any) -> Moments:
    """``Moments`` as given, or the moments of raw values."""
    if isinstance(x, Moments):
        return x
    if isinstance(x, Mapping):
        raise ConfigError("expected Moments or an array of values, got a mapping")
    return Moments.from_values(x)
