"""What an analysis compares: mean metrics (with a CUPED covariate or not), ratio metrics and
guardrails, read from the arguments of ``analyze`` and ``sufficient_statistics``, and the columns
each of them needs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = [
    "Guardrail",
    "column_groups",
    "column_names",
    "column_pairs",
    "covariate_columns",
    "guardrail_specs",
]


@dataclass(frozen=True)
class Guardrail:
    """A metric that must not get worse by more than ``margin``.

    ``margin`` is a share of the control mean when ``relative`` (0.05: at most 5 % worse) or an
    amount in the metric's unit otherwise. Guardrails are usually costs (latency, errors), so
    ``higher_is_better`` defaults to False.
    """

    margin: float
    relative: bool = True
    higher_is_better: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.margin, int | float) and math.isfinite(self.margin)):
            raise ConfigError(f"Guardrail: margin must be a finite number, got {self.margin!r}")
        if self.margin < 0:
            raise ConfigError(f"Guardrail: margin must be >= 0, got {self.margin!r}")


def column_names(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    out = list(value)
    for v in out:
        if not isinstance(v, str) or not v:
            raise ConfigError(f"analyze: {what} must be column names (strings), got {v!r}")
    return out


def column_pairs(value: Any, what: str) -> dict[str, tuple[str, str]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"analyze: {what} must map a name to (numerator, denominator), got "
            f"{type(value).__name__}"
        )
    out = {}
    for k, v in value.items():
        if not (isinstance(v, Sequence) and not isinstance(v, str) and len(v) == 2):
            raise ConfigError(
                f"analyze: {what}[{k!r}] must be a (numerator, denominator) pair, got {v!r}"
            )
        out[str(k)] = (str(v[0]), str(v[1]))
    return out


def covariate_columns(value: Any, metrics: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        out = {str(k): str(v) for k, v in value.items()}
        unknown = [k for k in out if k not in metrics]
        if unknown:
            raise ConfigError(
                f"analyze: covariates name metrics {unknown} that are not in metrics {metrics}"
            )
        return out
    cols = column_names(value, "covariates")
    if len(cols) != len(metrics):
        raise ConfigError(
            "analyze: covariates must be a mapping metric -> pre-period column, or a list with "
            f"one column per metric ({len(metrics)}), got {len(cols)}"
        )
    return dict(zip(metrics, cols, strict=True))


def guardrail_specs(value: Any) -> dict[str, Guardrail]:
    if value is None:
        return {}
    if isinstance(value, str) or not isinstance(value, Mapping):
        raise ConfigError(
            "analyze: guardrails must map a metric to a Guardrail(margin, ...) or to a relative "
            f"margin (0.05 = 5 % worse at most), got {type(value).__name__}"
        )
    out = {}
    for k, g in value.items():
        if isinstance(g, Guardrail):
            out[str(k)] = g
        elif isinstance(g, int | float) and not isinstance(g, bool):
            out[str(k)] = Guardrail(float(g))
        elif isinstance(g, Mapping):
            out[str(k)] = Guardrail(**g)
        else:
            raise ConfigError(f"analyze: guardrails[{k!r}] must be a Guardrail or a number")
    return out


def column_groups(
    metrics: list[str],
    covariates: dict[str, str],
    ratio_metrics: dict[str, tuple[str, str]],
    guardrails: dict[str, Guardrail],
) -> dict[str, tuple[str, ...]]:
    groups: dict[str, tuple[str, ...]] = {}
    for m in metrics:
        groups[m] = (m, covariates[m]) if m in covariates else (m,)
    for name, (num, den) in ratio_metrics.items():
        groups[name] = (num, den)
    for g in guardrails:
        if g not in groups:
            groups[g] = (g,)
    return groups
