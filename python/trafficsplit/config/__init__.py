"""Experiments as configuration (docs/configuration.md): YAML/JSON files or folders, validated
with every problem reported at once and compiled in the same pass into an immutable
:class:`Snapshot` that :class:`trafficsplit.Splitter` evaluates; entries edited in place.

``model`` (what a compiled configuration is), ``files`` (reading), ``compile`` (validation and
compilation: ``checker``, ``experiments``, ``flags``), ``edit`` (in-place edits).
"""

from __future__ import annotations

from .compile import parse_config, snapshot_from_json
from .edit import edit_entry, find_entry
from .files import as_snapshot, config_files, load_config
from .model import (
    FLAG_TYPES,
    STATUSES,
    ConfigIssue,
    ConfigValidationError,
    ExperimentConfig,
    FlagConfig,
    FlagRule,
    HoldoutConfig,
    LayerConfig,
    Snapshot,
)

__all__ = [
    "FLAG_TYPES",
    "STATUSES",
    "ConfigIssue",
    "ConfigValidationError",
    "ExperimentConfig",
    "FlagConfig",
    "FlagRule",
    "HoldoutConfig",
    "LayerConfig",
    "Snapshot",
    "as_snapshot",
    "config_files",
    "edit_entry",
    "find_entry",
    "load_config",
    "parse_config",
    "snapshot_from_json",
]
