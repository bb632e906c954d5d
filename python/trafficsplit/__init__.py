"""trafficsplit: deterministic traffic splitting with a C++ core.

>>> import trafficsplit as ts
>>> exp = ts.Experiment("ranker-v2", {"control": 50, "treatment": 50})
>>> exp.assign("user-42").arm in ("control", "treatment")
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# The serving path is imported eagerly; analysis, statistics, bandits, rollouts, shadows,
# telemetry and middleware load on first use (PEP 562), so that a model server's
# `import trafficsplit` costs little more than numpy's.
from . import errors, sticky
from .batch import REASONS, BatchAssignment
from .config import ConfigIssue, ConfigValidationError, Snapshot, load_config, parse_config
from .errors import (
    ArgumentError,
    ConfigError,
    Error,
    TargetingSyntaxError,
    UnitTypeError,
    UnitValueError,
)
from .experiment import AllocationStep, Arm, Assignment, Experiment
from .hashing import bucket, hash64, hash64_batch
from .splitter import FlagEvaluation, Splitter
from .targeting import Targeting
from .telemetry import (
    CallableSink,
    ExposureLogger,
    ExposureRecord,
    ExposureSink,
    JsonlSink,
    LoggingSink,
    OpenTelemetrySink,
    ParquetSink,
    propagation,
    read_exposures,
)

if TYPE_CHECKING:
    from . import bandit, stats
    from ._backfill import BackfillProgress, BackfillSummary, backfill
    from .analysis import Analysis, Guardrail, analyze, sufficient_statistics
    from .rollout import RolloutController, RolloutDecision, RolloutPolicy
    from .telemetry import middleware
    from .telemetry.metrics import MetricsRecorder
    from .telemetry.shadow import Shadow, ShadowLog, compare_shadow

# public name -> (submodule, attribute in it; None for the submodule itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "bandit": ("bandit", None),
    "backfill": ("_backfill", "backfill"),
    "BackfillProgress": ("_backfill", "BackfillProgress"),
    "BackfillSummary": ("_backfill", "BackfillSummary"),
    "middleware": ("telemetry.middleware", None),
    "stats": ("stats", None),
    "Analysis": ("analysis", "Analysis"),
    "Guardrail": ("analysis", "Guardrail"),
    "analyze": ("analysis", "analyze"),
    "sufficient_statistics": ("analysis", "sufficient_statistics"),
    "RolloutController": ("rollout", "RolloutController"),
    "RolloutDecision": ("rollout", "RolloutDecision"),
    "RolloutPolicy": ("rollout", "RolloutPolicy"),
    "Shadow": ("telemetry.shadow", "Shadow"),
    "ShadowLog": ("telemetry.shadow", "ShadowLog"),
    "compare_shadow": ("telemetry.shadow", "compare_shadow"),
    "MetricsRecorder": ("telemetry.metrics", "MetricsRecorder"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'trafficsplit' has no attribute {name!r}") from None
    import importlib

    value = importlib.import_module(f".{module}", __name__)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__version__ = "0.1.0"
CONTRACT_VERSION = "ts1"
"""The name of the assignment contract in docs/assignment-spec.md."""

__all__ = [
    "CONTRACT_VERSION",
    "REASONS",
    "AllocationStep",
    "Analysis",
    "ArgumentError",
    "Arm",
    "Assignment",
    "BackfillProgress",
    "BackfillSummary",
    "BatchAssignment",
    "CallableSink",
    "ConfigError",
    "ConfigIssue",
    "ConfigValidationError",
    "Error",
    "Experiment",
    "ExposureLogger",
    "ExposureRecord",
    "ExposureSink",
    "FlagEvaluation",
    "Guardrail",
    "JsonlSink",
    "LoggingSink",
    "MetricsRecorder",
    "OpenTelemetrySink",
    "ParquetSink",
    "RolloutController",
    "RolloutDecision",
    "RolloutPolicy",
    "Shadow",
    "ShadowLog",
    "Snapshot",
    "Splitter",
    "Targeting",
    "TargetingSyntaxError",
    "UnitTypeError",
    "UnitValueError",
    "analyze",
    "backfill",
    "bandit",
    "bucket",
    "compare_shadow",
    "errors",
    "hash64",
    "hash64_batch",
    "load_config",
    "middleware",
    "parse_config",
    "propagation",
    "read_exposures",
    "stats",
    "sticky",
    "sufficient_statistics",
]
