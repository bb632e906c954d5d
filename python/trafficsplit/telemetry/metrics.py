"""Guardrail metrics per arm (latency, errors, cost), accumulated in the C++ core as sufficient
statistics that the statistics module and rollout decisions read (docs/telemetry.md).

>>> import trafficsplit as ts
>>> rec = ts.MetricsRecorder()
>>> for ms in (12.0, 15.0, 18.0):
...     rec.record("latency_ms", "treatment", ms)
>>> m = rec.moments()[("latency_ms", "treatment")]
>>> m.n, m.mean, m.var
(3, 15.0, 9.0)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .._core import telemetry as _telemetry
from .._optional import require
from ..errors import ConfigError
from ..experiment import Assignment
from ..stats import Moments

__all__ = ["MetricsRecorder"]


class MetricsRecorder:
    """A thread-safe, in-process recorder of metrics per (metric, arm).

    Values are folded into count, mean and centred sum of squares in the core (Welford per
    shard, merged with Chan's formula on read); nothing is stored per value. Threads write to
    separate shards, so concurrent requests rarely share a lock. NaN and infinite values are
    left out and counted as ``skipped``.

    ``arm`` is an arm name or an :class:`~trafficsplit.Assignment` (its arm; ``""`` when it has
    none).
    """

    def __init__(self, shards: int = 16) -> None:
        if not isinstance(shards, int) or isinstance(shards, bool) or not 1 <= shards <= 1024:
            raise ConfigError(f"shards must be an int between 1 and 1024, got {shards!r}")
        self._core = _telemetry.Recorder(shards)
        self._ids: dict[tuple[str, str], int] = {}

    def _series(self, metric: str, arm: str | Assignment) -> int:
        if isinstance(arm, Assignment):
            arm = arm.arm or ""
        key = (metric, arm)
        sid = self._ids.get(key)
        if sid is None:
            if not isinstance(metric, str) or not metric:
                raise ConfigError(f"metric must be a non-empty str, got {metric!r}")
            if not isinstance(arm, str):
                raise ConfigError(f"arm must be a str or an Assignment, got {arm!r}")
            # The core hands out the same id to racing threads, so the dict needs no lock.
            sid = self._ids[key] = self._core.series(metric, arm)
        return sid

    def record(self, metric: str, arm: str | Assignment, value: float) -> None:
        """Adds one value of ``metric`` for ``arm``."""
        self._core.record(self._series(metric, arm), float(value))

    def record_many(self, metric: str, arm: str | Assignment, values: Any) -> None:
        """Adds many values at once (one lock, the GIL released for large arrays)."""
        arr = np.ascontiguousarray(values, dtype=np.float64)
        if arr.ndim != 1:
            raise ConfigError(f"values must be one-dimensional, got shape {arr.shape}")
        self._core.record_many(self._series(metric, arm), arr)

    def observe(
        self,
        arm: str | Assignment,
        *,
        latency: float | None = None,
        error: bool | None = None,
        cost: float | None = None,
    ) -> None:
        """The usual guardrails of one request: ``latency`` (seconds), ``error`` (recorded as
        0 or 1, so its mean is the error rate) and ``cost``; None leaves a metric out."""
        if latency is not None:
            self.record("latency", arm, latency)
        if error is not None:
            self.record("errors", arm, 1.0 if error else 0.0)
        if cost is not None:
            self.record("cost", arm, cost)

    @contextmanager
    def timer(self, arm: str | Assignment, metric: str = "latency") -> Iterator[None]:
        """Records the seconds the ``with`` block took; an exception also records
        ``errors`` = 1 (and 0 otherwise)."""
        sid = self._series(metric, arm)
        errors = self._series("errors", arm)
        t0 = time.perf_counter()
        failed = True
        try:
            yield
            failed = False
        finally:
            self._core.record(sid, time.perf_counter() - t0)
            self._core.record(errors, 1.0 if failed else 0.0)

    def moments(self) -> dict[tuple[str, str], Moments]:
        """Per (metric, arm): :class:`~trafficsplit.stats.Moments` with one column named after
        the metric (``skipped`` counts NaN and infinite values)."""
        out = {}
        for metric, arm, n, mean, m2, skipped in self._core.snapshot():
            out[(metric, arm)] = Moments(
                int(n), np.array([mean]), np.array([[m2]]), (metric,), int(skipped)
            )
        return out

    def summary(self) -> Any:
        """A DataFrame with one row per (metric, arm): n, mean, std (n - 1), sum, skipped."""
        pd = require("pandas", what="MetricsRecorder.summary")

        rows = [
            {
                "metric": metric,
                "arm": arm,
                "n": m.n,
                "mean": m.mean if m.n else float("nan"),
                "std": m.std if m.n > 1 else float("nan"),
                "sum": m.sum,
                "skipped": m.skipped,
            }
            for (metric, arm), m in self.moments().items()
        ]
        columns = ["metric", "arm", "n", "mean", "std", "sum", "skipped"]
        return pd.DataFrame(rows, columns=columns)

    def reset(self) -> None:
        """Zeroes every series (for example after a rollout step)."""
        self._core.reset()

    def __repr__(self) -> str:
        return f"MetricsRecorder(series={self._core.series_count})"
