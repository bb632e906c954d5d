"""The figures of an analysis: the forest plot of the lifts and the group-sequential chart of
boundaries and observed z paths.

Figures are built with matplotlib's object API (:class:`matplotlib.figure.Figure`), never
through ``pyplot``: pyplot keeps no reference to them, so a notebook shows a returned figure
once, through its display, and never a second time when the cell ends. Panels grow with the
number of comparisons, and legends sit outside the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._display import new_figure
from .._optional import require
from ..errors import ArgumentError

__all__ = [
    "SEQUENTIAL_HEIGHT",
    "analysis_figure",
    "forest",
    "forest_height",
    "new_figure",
    "sequential",
]

#: Inches per comparison of the forest plot, and what its title and axis take besides.
ROW_HEIGHT = 0.36
FOREST_MARGIN = 1.5
#: Inches of the sequential panel, whatever the number of comparisons.
SEQUENTIAL_HEIGHT = 3.6
WIDTH = 8.0

_INCREASE = "#1f77b4"
_BAD = "#d62728"


def forest_height(rows: int) -> float:
    """The height in inches that gives ``rows`` comparisons of a forest plot room to read."""
    return ROW_HEIGHT * max(rows, 1) + FOREST_MARGIN


def _label(r: Any) -> str:
    return f"{r.metric} · {r.arm}"


def forest(analysis: Any, ax: Any = None, relative: bool = True) -> Any:
    """Draws each comparison's lift with its confidence interval on ``ax`` (a new figure when
    None), one row per comparison in the order of ``analysis.results``; returns the figure."""
    items = analysis.results
    if ax is None:
        fig = new_figure("Analysis.plot", WIDTH, forest_height(len(items)))
        ax = fig.add_subplot()
    est, lo, hi = [], [], []
    for r in items:
        t = r.relative if relative else r.absolute
        est.append(t.estimate if t else math.nan)
        lo.append(t.ci[0] if t else math.nan)
        hi.append(t.ci[1] if t else math.nan)
    scale = 100.0 if relative else 1.0
    y = np.arange(len(items))[::-1]
    est_a, lo_a, hi_a = (np.asarray(v, dtype=float) * scale for v in (est, lo, hi))
    colours = [_BAD if r.decision in ("fail", "harm") else _INCREASE for r in items]
    ax.axvline(0, color="grey", lw=1, ls="--", zorder=1)
    ax.hlines(y, lo_a, hi_a, colors=colours, lw=2, zorder=2)
    ax.scatter(est_a, y, color=colours, zorder=3)
    ax.set_yticks(y, [_label(r) for r in items])
    ax.set_ylim(-0.7, len(items) - 0.3)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("relative lift (%)" if relative else "absolute lift")
    ax.set_title(f"Lift vs {analysis.control} ({(1 - analysis.alpha) * 100:g} % CI)", loc="left")
    return ax.figure


def _colours(count: int) -> list[Any]:
    cm = require("matplotlib", what="Analysis.plot").colormaps
    cmap = cm["tab10"] if count <= 10 else cm["tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


def sequential(analysis: Any, ax: Any = None) -> Any:
    """Draws the design's efficacy boundaries and each comparison's observed z path over the
    information fraction on ``ax`` (a new figure when None), the legend to the right of the
    axes; returns the figure. Guardrails are not decided by the design and are left out."""
    design = analysis.sequential
    if design is None:
        raise ArgumentError(
            "the sequential chart needs an analysis with a design: analyze(..., sequential=)"
        )
    if ax is None:
        fig = new_figure("Analysis.plot", WIDTH, SEQUENTIAL_HEIGHT)
        ax = fig.add_subplot()
    timing = np.asarray(design.timing, dtype=float)
    bounds = np.asarray(design.boundaries(), dtype=float)
    ax.plot(timing, bounds, "k-o", ms=4, label="efficacy boundary", gid="boundary-upper")
    if getattr(design, "sides", 1) == 2:
        ax.plot(timing, -bounds, "k-o", ms=4, gid="boundary-lower")
    ax.axhline(0, color="grey", lw=0.8)
    info = [lk.information for lk in analysis.looks]
    compared = [r for r in analysis.results if r.kind != "guardrail"]
    for r, colour in zip(compared, _colours(len(compared)), strict=True):
        path = [lk.z.get((r.metric, r.arm), math.nan) for lk in analysis.looks]
        ax.plot(info, path, "-x", color=colour, label=_label(r))
    ax.set_xlabel("information fraction")
    ax.set_ylabel("z")
    ax.set_xlim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.set_title("Sequential boundaries and observed z", loc="left")
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        fontsize="small",
        ncols=1 if len(compared) <= 12 else 2,
    )
    return ax.figure


def analysis_figure(analysis: Any, ax: Any = None, relative: bool = True) -> Any:
    """The forest plot, and below it the sequential chart when the analysis has a design.
    ``ax``: one Axes (the forest plot only) or two (forest, sequential)."""
    seq = analysis.sequential is not None
    if ax is not None:
        axes: Sequence[Any] = list(np.atleast_1d(ax))
        forest(analysis, axes[0], relative)
        if seq and len(axes) > 1:
            sequential(analysis, axes[1])
        return axes[0].figure
    top = forest_height(len(analysis.results))
    if not seq:
        return forest(analysis, relative=relative)
    fig = new_figure("Analysis.plot", WIDTH, top + SEQUENTIAL_HEIGHT)
    grid = fig.add_gridspec(2, 1, height_ratios=[top, SEQUENTIAL_HEIGHT])
    forest(analysis, fig.add_subplot(grid[0]), relative)
    sequential(analysis, fig.add_subplot(grid[1]))
    return fig
