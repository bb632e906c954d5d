"""The result of assigning a column of units."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._core import assignment as _assignment
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
    """

    __slots__ = ("arm_index", "arms", "bucket", "experiment", "index", "reason")

    def __init__(
        self,
        experiment: str,
        arms: tuple[str, ...],
        arm_index: np.ndarray,
        bucket: np.ndarray,
        reason: np.ndarray,
        index: Any = None,
    ) -> None:
        self.experiment = experiment
        self.arms = arms
        self.arm_index = arm_index
        self.bucket = bucket
        self.reason = reason
        self.index = index

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

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts().items())
        return f"BatchAssignment({self.experiment!r}, rows={len(self)}, {counts})"
