"""Guardrail-driven rollouts: read the canary's guardrail statistics, decide advance / hold /
roll back by non-inferiority tests, and write the decision into the configuration file
atomically so every server picks it up on hot reload."""

from __future__ import annotations

import datetime as _dt
import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _time
from .analysis import Analysis, Guardrail, analyze
from .config import ConfigValidationError, edit_entry, find_entry, load_config
from .errors import ConfigError

__all__ = ["RolloutController", "RolloutDecision", "RolloutPolicy"]

ACTIONS = ("advance", "hold", "rollback")


@dataclass(frozen=True)
class RolloutPolicy:
    """How a controlled rollout moves.

    - ``steps``: the percents of units the new version gets, in order (a canary's percent, or an
      experiment's exposure in percent). The controller moves one step at a time.
    - ``guardrails``: metric → :class:`~trafficsplit.Guardrail` (or a relative margin).
    - ``alpha``: level of the one-sided tests (non-inferiority to advance, harm to roll back).
    - ``min_units``: each arm needs this many observations of every guardrail before the
      controller does anything but hold.
    - ``min_hold``: seconds a canary step must have lasted before it may advance.
    - ``srm_alpha``: a sample-ratio mismatch at this level holds the rollout (the data cannot be
      trusted to decide either way).
    """

    guardrails: Mapping[str, Guardrail | float]
    steps: Sequence[float] = (1, 5, 25, 50, 100)
    alpha: float = 0.05
    min_units: int = 100
    min_hold: float = 0.0
    srm_alpha: float = 0.001

    def __post_init__(self) -> None:
        if not self.guardrails:
            raise ConfigError("RolloutPolicy: name at least one guardrail metric")
        steps = [float(s) for s in self.steps]
        if not steps or any(not 0 < s <= 100 for s in steps):
            raise ConfigError(f"RolloutPolicy: steps must be percents in (0, 100], got {steps}")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ConfigError(f"RolloutPolicy: steps must increase, got {steps}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"RolloutPolicy: alpha must be in (0, 1), got {self.alpha!r}")
        if self.min_units < 2:
            raise ConfigError(f"RolloutPolicy: min_units must be >= 2, got {self.min_units!r}")


@dataclass(frozen=True)
class RolloutDecision:
    """What the controller decided, why, and the percent before and after."""

    action: str
    reason: str
    percent_before: float
    percent_after: float
    analysis: Analysis | None = None
    written: bool = False
    at: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.UTC))


class RolloutController:
    """Drives one canary rollout (``rollouts:``) or experiment exposure (``experiments:``) in a
    configuration file or folder by its guardrails.

    ::

        ctl = RolloutController("config/", "reranker-canary", policy)
        ctl.step(recorder)   # reads guardrail moments, decides, writes the file
        # RolloutDecision(action='advance', reason='all guardrails non-inferior', ...)

    ``step(data)`` takes per-arm guardrail statistics as a metrics recorder (anything with a
    ``moments()`` method returning ``{(metric, arm): Moments}``), a mapping of that shape or
    ``{metric: {arm: Moments}}``, or a DataFrame of units or per-arm sums as
    :func:`~trafficsplit.analyze` reads them.
    """

    def __init__(
        self,
        config_path: str | os.PathLike[str],
        experiment: str,
        policy: RolloutPolicy,
        *,
        control: str | None = None,
        treatment: str | None = None,
    ) -> None:
        self.config_path = Path(config_path)
        self.key = experiment
        self.policy = policy
        self._file, section, entry = self._locate()[:3]
        self.section = section
        self.kind = "canary" if section == "rollouts" else "experiment"
        if self.kind == "canary" and entry.get("type", "canary") != "canary":
            raise ConfigError(
                f"RolloutController: rollout {experiment!r} is {entry.get('type')!r}; only "
                "canary rollouts and experiments can be controlled"
            )
        arms = self._arm_names(entry)
        self.control = control or arms[0]
        self.treatment = treatment or (arms[1] if self.kind == "canary" else None)
        if self.control not in arms:
            raise ConfigError(f"RolloutController: control {self.control!r} is not in {arms}")

    # -- reading -------------------------------------------------------------------------------
    def _locate(self) -> tuple[Path, str, dict[str, Any], _Schedule]:
        """The entry's file, section and raw text (for editing), and its schedule as the
        configuration compiled it: each canary step with the time it starts."""
        try:
            file, section, entry = find_entry(
                self.config_path, self.key, ("rollouts", "experiments")
            )
            compiled = load_config(self.config_path).experiments[self.key].experiment
        except ConfigValidationError:
            raise  # a file that does not load: its own problems, each at its place
        except ConfigError as exc:
            raise ConfigError(f"RolloutController: {exc}") from None
        schedule: _Schedule = []
        if section == "rollouts" and entry.get("type", "canary") == "canary":
            raw = entry.get("steps") or []
            # One allocation step per canary step, in order (config/experiments.py).
            schedule = [
                (step.effective or _time.from_micros(0), s)
                for step, s in zip(compiled.steps, raw, strict=True)
            ]
        return file, section, entry, schedule

    @staticmethod
    def _arm_names(entry: Mapping[str, Any]) -> list[str]:
        arms = entry.get("arms", {"stable": None, "canary": None})
        if isinstance(arms, Mapping):
            return [str(a) for a in arms]
        return [str(a["name"]) for a in arms if isinstance(a, Mapping) and "name" in a]

    def current_percent(self, now: Any = None) -> float:
        """The percent the new version has at ``now`` (default: the clock)."""
        _, _, entry, schedule = self._locate()
        return self._percent(entry, schedule, _when(now))

    def _percent(self, entry: Mapping[str, Any], schedule: _Schedule, now: _dt.datetime) -> float:
        if self.kind == "experiment":
            return float(entry.get("exposure", 1)) * 100
        current = _current_step(schedule, now)
        return 0.0 if current is None else float(current[1]["percent"])

    # -- deciding ------------------------------------------------------------------------------
    def decide(self, data: Any, now: Any = None) -> RolloutDecision:
        """The decision for ``data`` at ``now``, without writing anything."""
        _, _, entry, schedule = self._locate()
        return self._decide(data, _when(now), entry, schedule)

    def _decide(
        self, data: Any, when: _dt.datetime, entry: Mapping[str, Any], schedule: _Schedule
    ) -> RolloutDecision:
        before = self._percent(entry, schedule, when)
        if self.kind == "canary" and _rolled_back(entry):
            return RolloutDecision("hold", "rolled back already", before, before, None, at=when)
        result, srm_applies = self._analysis(data, entry, before)
        guards = [r for r in result.results if r.kind == "guardrail"]
        arm = self.treatment
        if arm is not None:
            guards = [r for r in guards if r.arm == arm]
        if not guards:
            raise ConfigError(
                f"RolloutController: no guardrail data for arm {arm!r}; arms in the data: "
                f"{list(result.arms)}"
            )
        short = [
            f"{r.metric} ({min(r.n, r.control_n)})"
            for r in guards
            if min(r.n, r.control_n) < self.policy.min_units
        ]
        harmed = [r.metric for r in guards if r.decision == "harm"]
        if harmed:
            reason = f"guardrails worse than control: {', '.join(harmed)}"
            return RolloutDecision("rollback", reason, before, 0.0, result, at=when)
        if short:
            return RolloutDecision(
                "hold", f"too few observations: {', '.join(short)}", before, before, result, at=when
            )
        if srm_applies and result.srm.mismatch:
            return RolloutDecision(
                "hold",
                f"sample-ratio mismatch (p = {result.srm.pvalue:.3g})",
                before,
                before,
                result,
                at=when,
            )
        pending = [r.metric for r in guards if r.decision != "pass"]
        if pending:
            reason = f"not yet shown non-inferior: {', '.join(pending)}"
            return RolloutDecision("hold", reason, before, before, result, at=when)
        nxt = [s for s in self.policy.steps if s > before + 1e-9]
        if not nxt:
            return RolloutDecision(
                "hold", "at the last step already", before, before, result, at=when
            )
        if self.kind == "canary" and self.policy.min_hold > 0:
            current = _current_step(schedule, when)
            lasted = None if current is None else (when - current[0]).total_seconds()
            if lasted is not None and lasted < self.policy.min_hold:
                return RolloutDecision(
                    "hold",
                    f"the step has lasted {lasted:g}s of the {self.policy.min_hold:g}s minimum",
                    before,
                    before,
                    result,
                    at=when,
                )
        return RolloutDecision(
            "advance", "all guardrails non-inferior", before, float(nxt[0]), result, at=when
        )

    def _analysis(
        self, data: Any, entry: Mapping[str, Any], percent: float
    ) -> tuple[Analysis, bool]:
        """The guardrail analysis, and whether its sample-ratio check applies (it needs the
        configured split, which a canary at 0 % or 100 % does not have)."""
        policy = self.policy
        expected = self._expected(entry, percent)
        result = analyze(
            _as_input(data),
            metrics=(),
            control=self.control,
            guardrails=dict(policy.guardrails),
            alpha=policy.alpha,
            weights=expected,
            srm_alpha=policy.srm_alpha,
        )
        return result, expected is not None

    def _expected(self, entry: Mapping[str, Any], percent: float) -> Mapping[str, float] | None:
        """The split the data should show, for the sample-ratio check: the configured one (for
        a canary, ``percent`` on the new version at the decision time)."""
        if self.kind == "canary":
            if not 0 < percent < 100 or self.treatment is None:
                return None
            return {self.control: 100 - percent, self.treatment: percent}
        arms = entry.get("arms")
        if isinstance(arms, Mapping):
            out = {}
            for name, v in arms.items():
                w = v.get("weight") if isinstance(v, Mapping) else v
                if not isinstance(w, int | float):
                    return None
                out[str(name)] = float(w)
            return out
        return None

    # -- writing -------------------------------------------------------------------------------
    def step(self, data: Any, now: Any = None) -> RolloutDecision:
        """Decides and writes the new step (or the roll-back) into the configuration file."""
        _, _, entry, schedule = self._locate()
        d = self._decide(data, _when(now), entry, schedule)
        has_future = self.kind == "canary" and any(t > d.at for t, _ in schedule)
        if d.action == "hold" and not has_future:
            return d
        self.apply(d)
        return RolloutDecision(
            d.action, d.reason, d.percent_before, d.percent_after, d.analysis, True, d.at
        )

    def apply(self, decision: RolloutDecision) -> None:
        """Writes ``decision`` into the file atomically (temporary file, fsync, rename) after
        validating the whole configuration with the change; on any problem the file is left as
        it was and the error says why."""
        if decision.action not in ACTIONS:
            raise ConfigError(f"RolloutController: unknown action {decision.action!r}")

        schedule = self._locate()[3]

        def change(entry: dict[str, Any]) -> None:
            if self.kind == "canary":
                _rewrite_canary(entry, schedule, decision)
            else:
                entry["exposure"] = round(decision.percent_after / 100, 12)

        try:
            edit_entry(self.config_path, self.key, change, (self.section,))
        except ConfigValidationError:
            raise
        except ConfigError as exc:
            raise ConfigError(f"RolloutController: {exc}") from None


# -- helpers ---------------------------------------------------------------------------------


def _when(now: Any) -> _dt.datetime:
    if now is None:
        return _dt.datetime.now(_dt.UTC)
    return _time.from_micros(_time.to_micros(now, "now"))


_Schedule = list[tuple[_dt.datetime, Mapping[str, Any]]]


def _current_step(
    schedule: _Schedule, now: _dt.datetime
) -> tuple[_dt.datetime, Mapping[str, Any]] | None:
    """The start and the step running at ``now`` (None before the first step)."""
    current = None
    for t, step in schedule:
        if t <= now:
            current = (t, step)
    return current


def _rolled_back(entry: Mapping[str, Any]) -> bool:
    steps = entry.get("steps") or []
    return len(steps) > 1 and float(steps[-1].get("percent", 1)) == 0


def _rewrite_canary(entry: dict[str, Any], starts: _Schedule, d: RolloutDecision) -> None:
    """Keeps the steps that have run, ends the current one at the decision time, drops the
    ones planned after it (the controller owns the schedule), and appends the new step."""
    now = d.at
    kept = [dict(s) for t, s in starts if t <= now]
    if not kept:  # not started yet: the first step starts now
        entry["start"] = _iso(now)
    elif d.action != "hold":
        began = starts[len(kept) - 1][0]
        kept[-1]["hold"] = f"{_seconds(now - began)}s"
    if d.action == "advance":
        kept.append({"percent": _num(d.percent_after)})
    elif d.action == "rollback":
        kept.append({"percent": 0})
    if not kept:
        kept = [{"percent": _num(d.percent_before)}]
    for s in kept[:-1]:
        s.setdefault("hold", 0)
    kept[-1].pop("hold", None)
    entry["steps"] = kept


def _seconds(delta: _dt.timedelta) -> int | float:
    s = delta.total_seconds()
    return int(s) if float(s).is_integer() else round(s, 6)


def _num(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def _iso(t: _dt.datetime) -> str:
    return t.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


def _as_input(data: Any) -> Any:
    """Metrics recorders and ``{(metric, arm): Moments}`` become ``{metric: {arm: Moments}}``."""
    if hasattr(data, "moments") and callable(data.moments):
        data = data.moments()
    if isinstance(data, Mapping) and data and all(isinstance(k, tuple) for k in data):
        out: dict[str, dict[str, Any]] = {}
        for (metric, arm), m in data.items():
            out.setdefault(str(metric), {})[str(arm)] = m
        return out
    return data
