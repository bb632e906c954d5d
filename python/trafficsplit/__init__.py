"""trafficsplit: deterministic traffic splitting with a C++ core.

>>> import trafficsplit as ts
>>> exp = ts.Experiment("ranker-v2", {"control": 50, "treatment": 50})
>>> exp.assign("user-42").arm in ("control", "treatment")
True
"""

from __future__ import annotations

from . import bandit, errors, middleware, propagation, stats, sticky
from .analysis import Analysis, Guardrail, analyze, sufficient_statistics
from .batch import REASONS, BatchAssignment
from .config import ConfigIssue, ConfigValidationError, Snapshot, load_config, parse_config
from .errors import ConfigError, Error, TargetingSyntaxError, UnitTypeError, UnitValueError
from .experiment import AllocationStep, Arm, Assignment, Experiment
from .exposure import (
    CallableSink,
    ExposureLogger,
    ExposureRecord,
    ExposureSink,
    JsonlSink,
    LoggingSink,
    OpenTelemetrySink,
    ParquetSink,
    read_exposures,
)
from .hashing import bucket, hash64, hash64_batch
from .rollout import RolloutController, RolloutDecision, RolloutPolicy
from .shadow import Shadow, ShadowLog, compare_shadow
from .splitter import FlagEvaluation, Splitter
from .targeting import Targeting
from .telemetry import MetricsRecorder

__version__ = "0.1.0"
CONTRACT_VERSION = "ts1"
"""The name of the assignment contract in docs/assignment-spec.md."""

__all__ = [
    "CONTRACT_VERSION",
    "REASONS",
    "AllocationStep",
    "Analysis",
    "Arm",
    "Assignment",
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
