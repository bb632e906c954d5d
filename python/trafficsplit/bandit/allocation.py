"""From a policy's weights to configuration: a new allocation step of an experiment (the
minimal-movement allocator then moves only the units whose bucket changes arm, and
``assign(..., at=)`` replays every epoch), the probabilities exposure records log, and the
experiment's entry in a configuration file rewritten in place."""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from .._core import hashing as _hashing
from ..config import ConfigValidationError, edit_entry
from ..errors import ConfigError
from ..experiment import Experiment

__all__ = ["assignment_probabilities", "check_experiment", "next_step", "write_allocation"]


def check_experiment(experiment: Any, arms: Sequence[str]) -> Experiment:
    """``experiment``, refused unless it is an :class:`~trafficsplit.Experiment` over ``arms``
    (the policy's)."""
    if not isinstance(experiment, Experiment):
        raise ConfigError(f"next_step needs an Experiment, got {type(experiment).__name__}")
    names = experiment.arm_names
    if set(names) != set(arms):
        raise ConfigError(
            f"the policy's arms {list(arms)} differ from experiment "
            f"{experiment.key!r}'s arms {list(names)}"
        )
    return experiment


def next_step(experiment: Experiment, weights: Mapping[str, float], at: Any = None) -> Experiment:
    """``experiment`` with one more allocation step: ``weights`` (a share per arm, summing to
    1) rounded to the experiment's buckets by its largest-remainder apportionment, effective
    ``at`` (default: now)."""
    check_experiment(experiment, list(weights))
    names = experiment.arm_names
    counts = _hashing.apportion([weights[a] * 100 for a in names], experiment.buckets)
    percent = {a: c * 100 / experiment.buckets for a, c in zip(names, counts, strict=True)}
    return experiment.reallocate(percent, effective=at)


def assignment_probabilities(experiment: Experiment, at: Any = None) -> dict[str, float]:
    """The probability that a unit reaching the experiment is served each arm under the step
    in force at ``at`` (default: the current step): the exposed share of traffic buckets times
    the arm's share of arm buckets, as exposure records log it (``probability``); with
    exposure 1, the arms' bucket shares. :meth:`Experiment.assignment_probabilities`."""
    return experiment.assignment_probabilities(at)


def write_allocation(path: str | os.PathLike[str], experiment: Experiment) -> None:
    """Writes ``experiment``'s arm weights, ``allocated_at`` and ``history`` into its entry
    (found by key under ``experiments``) of the YAML or JSON configuration file or folder
    ``path``, and nothing else, through :func:`trafficsplit.config.edit_entry`: validated with
    the rest of the configuration and replaced atomically, so a watching
    :class:`~trafficsplit.Splitter` reloads either the old or the new file. Only the entry's
    own lines are rewritten: comments elsewhere in a YAML file are kept."""
    weights = experiment.weights
    d = experiment.to_dict()

    def change(entry: dict[str, Any]) -> None:
        arms = entry.get("arms")
        if isinstance(arms, MutableMapping):
            for name in list(arms):
                if name not in weights:
                    raise ConfigError(f"arm {name!r} of {experiment.key!r} is not in the policy")
                if isinstance(arms[name], MutableMapping):
                    arms[name]["weight"] = weights[name]
                else:
                    arms[name] = weights[name]
        elif isinstance(arms, list):
            for a in arms:
                if not isinstance(a, MutableMapping) or a.get("name") not in weights:
                    raise ConfigError(f"cannot match arm entry {a!r} of {experiment.key!r}")
                a["weight"] = weights[a["name"]]
        else:
            raise ConfigError(f"experiment {experiment.key!r} has no arms to update")
        entry["allocated_at"] = d["allocated_at"]
        entry["history"] = d["history"]

    try:
        edit_entry(Path(path), experiment.key, change, ("experiments",))
    except ConfigValidationError:
        raise
    except ConfigError as exc:
        raise ConfigError(f"write_allocation: {path}: {exc}") from None
