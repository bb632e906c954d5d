"""trafficsplit: deterministic traffic splitting with a C++ core.

>>> import trafficsplit as ts
>>> exp = ts.Experiment("ranker-v2", {"control": 50, "treatment": 50})
>>> exp.assign("user-42").arm in ("control", "treatment")
True
"""

from __future__ import annotations

from . import bandit, errors, stats, sticky
from .batch import REASONS, BatchAssignment
from .config import ConfigIssue, ConfigValidationError, Snapshot, load_config, parse_config
from .errors import ConfigError, Error, TargetingSyntaxError, UnitTypeError, UnitValueError
from .experiment import AllocationStep, Arm, Assignment, Experiment
from .hashing import bucket, hash64, hash64_batch
from .splitter import FlagEvaluation, Splitter
from .targeting import Targeting

__version__ = "0.1.0"
CONTRACT_VERSION = "ts1"
"""The name of the assignment contract in docs/assignment-spec.md."""

__all__ = [
    "CONTRACT_VERSION",
    "REASONS",
    "AllocationStep",
    "Arm",
    "Assignment",
    "BatchAssignment",
    "ConfigError",
    "ConfigIssue",
    "ConfigValidationError",
    "Error",
    "Experiment",
    "FlagEvaluation",
    "Snapshot",
    "Splitter",
    "Targeting",
    "TargetingSyntaxError",
    "UnitTypeError",
    "UnitValueError",
    "bandit",
    "bucket",
    "errors",
    "hash64",
    "hash64_batch",
    "load_config",
    "parse_config",
    "stats",
    "sticky",
]
