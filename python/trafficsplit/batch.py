"""The result of assigning a column of units."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from . import _display
from ._core import assignment as _assignment
from ._core import stats as _stats
from ._optional import require

REASONS: tuple[str, ...] = tuple(_assignment.REASONS)
"""Reason names by code: ``REASONS[batch.reason[i]]``."""


class BatchAssignment:
    """Per-row arm index (int16, -1 when not assigned), arm bucket (int32, -1 for a missing
    unit) and reason code (uint8, see :data:`REASONS`) for a batch of units.

    >>> import trafficsplit as ts
    >>> b = ts.Experiment("e", {"a": 50, "b": 50}).assign_batch([1, 2, None])
    >>> [ts.REASONS[r] for r in b.reason]
    ['assigned', 'assigned', 'missing_unit']

    ``weights``: the weights (percent, by arm) the rows were assigned under, when one
    allocation step holds for all of them: the display then checks the counts against them
    (sample-ratio mismatch).
    """

    __slots__ = ("arm_index", "arms", "bucket", "experiment", "index", "reason", "weights")

    def __init__(
        self,
        experiment: str,
        arms: tuple[str, ...],
        arm_index: np.ndarray,
        bucket: np.ndarray,
        reason: np.ndarray,
        index: Any = None,
        *,
        weights: tuple[float, ...] | None = None,
    ) -> None:
        self.experiment = experiment
        self.arms = arms
        self.arm_index = arm_index
        self.bucket = bucket
        self.reason = reason
        self.index = index
        self.weights = weights

    def __len__(self) -> int:
        return len(self.arm_index)

    @property
    def in_experiment(self) -> np.ndarray:
        """Boolean mask of rows that got an arm (assigned, override, sticky or propagated)."""
        return self.arm_index >= 0

    @property
    def arm(self) -> np.ndarray:
        """Arm names as an object array (None where not assigned)."""
        names = np.array([*self.arms, None], dtype=object)
        return names[np.where(self.arm_index < 0, len(self.arms), self.arm_index)]

    def counts(self) -> dict[str, int]:
        """Units per arm (every arm listed, zeros included)."""
        valid = self.arm_index[self.arm_index >= 0]
        tally = (
            np.bincount(valid, minlength=len(self.arms))
            if len(valid)
            else np.zeros(len(self.arms), np.int64)
        )
        return {name: int(tally[i]) for i, name in enumerate(self.arms)}

    def reason_counts(self) -> dict[str, int]:
        """Rows per reason (every reason listed)."""
        tally = np.bincount(self.reason, minlength=len(REASONS))
        return {name: int(tally[i]) for i, name in enumerate(REASONS)}

    def to_pandas(self) -> Any:
        """A DataFrame with columns arm (categorical), arm_index, bucket, reason (categorical)
        and in_experiment, on the input's index when the input was a pandas object."""
        pd = require("pandas", what="BatchAssignment.to_pandas")

        arm = pd.Categorical.from_codes(self.arm_index.astype(np.int64), categories=list(self.arms))
        reason = pd.Categorical.from_codes(self.reason.astype(np.int64), categories=list(REASONS))
        return pd.DataFrame(
            {
                "arm": arm,
                "arm_index": self.arm_index,
                "bucket": self.bucket,
                "reason": reason,
                "in_experiment": self.in_experiment,
            },
            index=self.index,
        )

    def arrow_columns(self) -> tuple[Any, Any, Any]:
        """The result as Arrow arrays on its own buffers: the arm (dictionary of int16 indices,
        null where none), the bucket (int32, null without a unit) and the reason (dictionary
        of int8 codes): the columns of backfill output, DuckDB, Spark and the HTTP service."""
        pa = require("pyarrow", what="BatchAssignment.arrow_columns")
        arm = pa.DictionaryArray.from_arrays(
            _below_zero_null(pa, pa.int16(), self.arm_index), _dictionary(self.arms)
        )
        bucket = _below_zero_null(pa, pa.int32(), self.bucket)
        codes = np.ascontiguousarray(self.reason).view(np.int8)
        reason = pa.DictionaryArray.from_arrays(
            pa.Array.from_buffers(pa.int8(), len(codes), [None, pa.py_buffer(codes)]),
            _dictionary(REASONS),
        )
        return arm, bucket, reason

    def to_arrow(self) -> Any:
        """A pyarrow Table with dictionary-encoded arm and reason columns."""
        pa = require("pyarrow", what="BatchAssignment.to_arrow")

        valid = self.arm_index >= 0
        arm = pa.DictionaryArray.from_arrays(
            pa.array(self.arm_index.astype(np.int16), mask=~valid), pa.array(list(self.arms))
        )
        reason = pa.DictionaryArray.from_arrays(
            pa.array(self.reason.astype(np.int8)), pa.array(list(REASONS))
        )
        return pa.table(
            {
                "arm": arm,
                "arm_index": self.arm_index,
                "bucket": self.bucket,
                "reason": reason,
                "in_experiment": self.in_experiment,
            }
        )

    def srm_pvalue(self) -> float | None:
        """The p-value of the sample-ratio check of :meth:`counts` against :attr:`weights`
        (what ``trafficsplit.stats.srm`` gives), or None without weights or units."""
        counts = list(self.counts().values())
        if self.weights is None or sum(counts) == 0:
            return None
        return float(_stats.srm_chi_square([float(c) for c in counts], list(self.weights))[1])

    def _arm_rows(self) -> list[tuple[Any, ...]]:
        counts = self.counts()
        n = sum(counts.values())
        total = sum(self.weights) if self.weights else 0.0
        rows = []
        for i, (name, c) in enumerate(counts.items()):
            observed = _display.percent(c / n) if n else ""
            expected = _display.percent(self.weights[i] / total) if self.weights and total else ""
            rows.append((name, c, observed, expected))
        return rows

    def _title(self) -> str:
        reasons = ", ".join(f"{k} {v:,}" for k, v in self.reason_counts().items() if v)
        p = self.srm_pvalue()
        srm = (
            ""
            if p is None
            else f"; sample ratio p = {p:.3g}" + (" (MISMATCH)" if p < 0.001 else "")
        )
        name = _display.shorten(repr(self.experiment))
        return f"BatchAssignment({name}, rows={len(self):,}): {reasons or 'no rows'}{srm}"

    def __repr__(self) -> str:
        """One line (rows by reason, the sample-ratio p-value), then the units per arm
        against the shares of the weights."""
        header = ("arm", "units", "observed", "expected")
        return f"{self._title()}\n{_display.text_table(header, self._arm_rows())}"

    def _repr_html_(self) -> str:
        rows = self._arm_rows()
        n = sum(r[1] for r in rows)
        parts: list[_display.Html | str] = []
        if n:
            parts.append(_display.bar([(r[0], r[1] / n) for r in rows]))
            parts.append(_display.legend([r[0] for r in rows]))
        parts.append(_display.html_table(("arm", "units", "observed", "expected"), rows))
        p = self.srm_pvalue()
        if p is not None and p < 0.001:
            parts.append(
                _display.Html(
                    f'<p style="color:#b00"><b>Sample-ratio mismatch</b>: p = {p:.3g}; the '
                    "units per arm are implausible under the weights.</p>"
                )
            )
        return _display.block(self._title(), *parts)


def _below_zero_null(pa: Any, type_: Any, values: np.ndarray) -> Any:
    """``values`` as an Arrow array of ``type_`` without a copy, null where negative; the
    validity bitmap is packed by numpy (15 times faster than ``pa.array(..., mask=...)``)."""
    values = np.ascontiguousarray(values, type_.to_pandas_dtype())
    valid = values >= 0
    bitmap = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(type_, len(values), [bitmap, pa.py_buffer(values)])


@functools.lru_cache(maxsize=1024)
def _dictionary(names: tuple[str, ...]) -> Any:
    """The dictionary of an arm or reason column, made once per set of names."""
    pa = require("pyarrow")
    return pa.array(list(names), pa.string())
