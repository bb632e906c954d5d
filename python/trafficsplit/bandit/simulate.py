"""Simulated runs of a policy against arms with known means: regret, weights and pulls per
epoch (docs/bandits.md, "Simulation")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _display
from ..errors import ConfigError
from .checks import check_count, check_seed, floats
from .policies import Policy

__all__ = ["SimulationResult", "simulate"]


@dataclass(frozen=True)
class SimulationResult:
    """A simulated run: per epoch (batch), the rounds played so far, the cumulative regret
    sum over rounds of (best mean - mean of the arm played), and the weights used; and the
    pulls and total reward per arm."""

    arms: tuple[str, ...]
    rounds: np.ndarray
    regret: np.ndarray
    weights: np.ndarray
    pulls: np.ndarray
    reward: np.ndarray

    @property
    def total_regret(self) -> float:
        return float(self.regret[-1]) if len(self.regret) else 0.0

    def _title(self) -> str:
        rounds = int(self.rounds[-1]) if len(self.rounds) else 0
        epochs = len(self.rounds)
        return (
            f"SimulationResult: {rounds:,} rounds in {epochs:,} epoch{'s' if epochs != 1 else ''}, "
            f"total regret {self.total_regret:.4g}"
        )

    def _rows(self) -> list[tuple[Any, ...]]:
        total = int(self.pulls.sum())
        last = self.weights[-1] if len(self.weights) else np.full(len(self.arms), np.nan)
        return [
            (
                arm,
                int(self.pulls[i]),
                _display.percent(self.pulls[i] / total) if total else "",
                float(self.reward[i] / self.pulls[i]) if self.pulls[i] else math.nan,
                _display.percent(float(last[i])),
            )
            for i, arm in enumerate(self.arms)
        ]

    _HEADER = ("arm", "pulls", "share", "mean reward", "last weight")

    def __repr__(self) -> str:
        """One line (rounds, epochs, total regret), then per arm the pulls, their share, the
        mean reward observed and the weight of the last epoch."""
        return f"{self._title()}\n{_display.text_table(self._HEADER, self._rows())}"

    def _repr_html_(self) -> str:
        chart = _display.line_chart(
            self.rounds.tolist(),
            [("cumulative regret", self.regret.tolist())],
            x_label="rounds",
            y_label="regret",
        )
        return _display.block(self._title(), chart, _display.html_table(self._HEADER, self._rows()))


def simulate(
    policy: Policy,
    true_means: Sequence[float],
    horizon: int,
    batch_size: int,
    seed: int = 0,
    *,
    noise_sd: float | None = None,
    threads: int | None = 1,
) -> SimulationResult:
    """Plays ``policy`` (a copy; the argument is left as it is) against arms with
    ``true_means`` for ``horizon`` rounds in epochs of ``batch_size``: each epoch draws the
    arms of its rounds from the policy's weights (multinomial), the rewards (Bernoulli, or
    normal with ``noise_sd`` when given), and updates the policy with per-arm aggregates.
    Epoch ``e`` uses ``weights(epoch=e, previous=weights of e-1)``. Seeded by ``seed`` (the
    environment) and the policy's own seed (its Monte Carlo draws).

    >>> from trafficsplit.bandit import FixedSplit
    >>> r = simulate(FixedSplit(["a", "b"]), [0.1, 0.2], 10_000, 1_000, seed=1)
    >>> round(r.total_regret, -1)   # 0.05 * 10,000 on average
    500.0
    """
    if not isinstance(policy, Policy):
        raise ConfigError(f"simulate needs a Policy, got {type(policy).__name__}")
    mu = np.asarray(floats(true_means, "true_means"))
    k = len(policy.arms)
    if len(mu) != k:
        raise ConfigError(f"true_means has {len(mu)} values for {k} arms")
    horizon = check_count(horizon, "horizon")
    batch_size = check_count(batch_size, "batch_size")
    if noise_sd is None and ((mu < 0) | (mu > 1)).any():
        raise ConfigError("Bernoulli rewards need true_means between 0 and 1 (or give noise_sd)")
    if noise_sd is not None and not (noise_sd > 0 and math.isfinite(noise_sd)):
        raise ConfigError(f"noise_sd must be positive, got {noise_sd!r}")
    rng = np.random.default_rng(check_seed(seed, "seed"))
    p = policy.copy()
    gap = mu.max() - mu
    epochs = -(-horizon // batch_size)
    rounds = np.empty(epochs, np.int64)
    regret = np.empty(epochs)
    weights = np.empty((epochs, k))
    pulls = np.zeros(k, np.int64)
    reward = np.zeros(k)
    previous: list[float] | None = None
    done, total = 0, 0.0
    for e in range(epochs):
        n = min(batch_size, horizon - done)
        w = np.array(list(p.weights(epoch=e, previous=previous, threads=threads).values()))
        weights[e] = w
        counts = rng.multinomial(n, w / w.sum())
        aggregates = {}
        for i, arm in enumerate(p.arms):
            c = int(counts[i])
            if c == 0:
                continue
            if noise_sd is None:
                s = float(rng.binomial(c, mu[i]))
                sum_sq = s
            else:
                r = rng.normal(mu[i], noise_sd, c)
                s, sum_sq = float(r.sum()), float((r * r).sum())
            reward[i] += s
            aggregates[arm] = {"count": c, "sum": s, "m2": max(sum_sq - s * s / c, 0.0)}
        p.update_aggregates(aggregates)
        pulls += counts
        total += float(counts @ gap)
        done += n
        rounds[e] = done
        regret[e] = total
        previous = list(w)
    return SimulationResult(tuple(p.arms), rounds, regret, weights, pulls, reward)
