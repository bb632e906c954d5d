"""What a configuration is once compiled: the immutable snapshot a Splitter evaluates, its
experiments, layers, holdouts and flags, and the problems a configuration can have."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..experiment import Experiment
from ..targeting import Targeting

STATUSES = ("draft", "running", "stopped")


FLAG_TYPES = ("bool", "string", "number", "json")


TOP_LEVEL = ("layers", "holdouts", "experiments", "flags", "rollouts", "version")


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration: where (file and path inside it) and what."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class ConfigValidationError(ConfigError):
    """A configuration with one or more problems; ``issues`` lists every one of them."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = tuple(issues)
        count = len(self.issues)
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} in the configuration:\n{lines}"
        )


@dataclass(frozen=True)
class LayerConfig:
    """Experiments in one layer are mutually exclusive: each owns a disjoint range of the
    layer's buckets, in the order they appear in the configuration."""

    key: str
    salt: str
    buckets: int = 10_000
    ranges: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # experiment -> [lo, hi)


@dataclass(frozen=True)
class HoldoutConfig:
    """A share of units kept out of every experiment that lists the holdout."""

    key: str
    percent: float
    salt: str
    buckets: int = 10_000

    @property
    def threshold(self) -> int:
        return math.floor(self.percent / 100 * self.buckets + 0.5)


@dataclass(frozen=True)
class ExperimentConfig:
    """An experiment with everything the configuration adds around its allocation."""

    key: str
    experiment: Experiment
    unit: str = "user_id"
    layer: str | None = None
    layer_share: float | None = None
    holdouts: tuple[str, ...] = ()
    status: str = "running"
    start_us: int | None = None
    end_us: int | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)  # unit key -> arm name
    # The core's route: the holdouts, the layer range, the status and the time window around
    # the experiment, compiled with it (config/compile.py); what Splitter.assign evaluates.
    route: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class FlagRule:
    when: Targeting | None
    value: Any = None
    rollout: Experiment | None = None  # arms named by index; values in rollout_values
    rollout_values: tuple[Any, ...] = ()


@dataclass(frozen=True)
class FlagConfig:
    key: str
    type: str
    default: Any
    enabled: bool = True
    rules: tuple[FlagRule, ...] = ()
    prerequisites: tuple[tuple[str, Any], ...] = ()
    unit: str = "user_id"


@dataclass(frozen=True)
class Snapshot:
    """A validated, compiled configuration. Immutable and shared by every thread."""

    experiments: Mapping[str, ExperimentConfig]
    layers: Mapping[str, LayerConfig]
    holdouts: Mapping[str, HoldoutConfig]
    flags: Mapping[str, FlagConfig]
    version: str
    sources: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def to_json(self) -> str:
        """The configuration as one JSON text, to ship where the snapshot itself cannot go (a
        Spark executor, another process): :func:`trafficsplit.config.snapshot_from_json` compiles
        it back into a snapshot of the same :attr:`version` that assigns every unit alike.
        Times are written as ``str(datetime)`` (ISO 8601 with a space), which the configuration
        reads back and the version is computed from."""
        import json

        return json.dumps(
            {"trafficsplit_snapshot": 1, "documents": self.raw.get("documents", [])},
            default=str,
            separators=(",", ":"),
        )
