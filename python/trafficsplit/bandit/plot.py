"""The allocation path of a bandit: each arm's share of traffic, epoch after epoch, from a
simulation or from the allocation history a policy wrote into an experiment."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._display import new_figure
from .._optional import require
from ..errors import ArgumentError
from ..experiment import Experiment
from .simulate import SimulationResult

__all__ = ["allocation_path", "plot_allocation"]


def allocation_path(source: Any) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], str]:
    """``(x, shares, arms, x_label)``: ``shares[i, j]`` is arm ``j``'s share of the traffic of
    the arms from ``x[i]`` on. A :class:`SimulationResult` gives one row per epoch (``x``: the
    rounds played before it); an :class:`~trafficsplit.Experiment` one per allocation step
    (``x``: the step's index)."""
    if isinstance(source, SimulationResult):
        weights = np.asarray(source.weights, dtype=float)
        starts = np.concatenate([[0], np.asarray(source.rounds, dtype=float)[:-1]])
        x_label = "rounds played"
        arms = tuple(source.arms)
    elif isinstance(source, Experiment):
        arms = tuple(source.arm_names)
        weights = np.array([[s.weights[a] for a in arms] for s in source.steps], dtype=float)
        starts = np.arange(len(source.steps), dtype=float)
        x_label = "allocation step"
    else:
        raise ArgumentError(
            "plot_allocation: expected a bandit SimulationResult or an Experiment whose history "
            f"holds the policy's steps, got {type(source).__name__}"
        )
    totals = weights.sum(axis=1, keepdims=True)
    shares = np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0)
    return starts, shares, arms, x_label


def plot_allocation(source: Any, ax: Any = None) -> Any:
    """Each arm's share of traffic over the epochs of a simulation or the allocation steps of
    an experiment, stacked, the legend to the right of the axes. Returns the matplotlib
    ``Figure`` (pyplot does not hold it, so a notebook shows it once); draws on ``ax`` when
    given."""
    x, shares, arms, x_label = allocation_path(source)
    if ax is None:
        fig = new_figure("plot_allocation", 8.0, 3.2)
        ax = fig.add_subplot()
    end = x[-1] + (x[-1] - x[-2] if len(x) > 1 else 1.0)
    xs = np.append(x, end)  # the last epoch or step keeps its share to the end
    ys = np.vstack([shares, shares[-1:]]).T
    ax.stackplot(xs, ys, labels=list(arms), step="post", alpha=0.85)
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(0, 1)
    ax.set_xlabel(x_label)
    if isinstance(source, Experiment):
        ticker = require("matplotlib.ticker", what="plot_allocation")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_ylabel("share of traffic")
    ax.set_title("Allocation path", loc="left")
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        title="arm",
        fontsize="small",
    )
    return ax.figure
