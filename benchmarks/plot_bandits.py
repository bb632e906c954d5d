#!/usr/bin/env python
"""Regret and allocation plots of the bandit policies against a fixed equal split
(docs/bandits.md). Run from the repository root:

    .venv/bin/python benchmarks/plot_bandits.py [--seeds 20]

Writes docs/img/bandit_regret.png and docs/img/bandit_allocation.png and prints the mean
final regret of every policy. Seeded: the same command draws the same figures.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from trafficsplit import bandit

ARMS = ["a", "b", "c"]
BERNOULLI_MEANS = [0.04, 0.05, 0.07]
NORMAL_MEANS = [10.0, 10.5, 11.0]
NOISE_SD = 4.0
HORIZON = 100_000
BATCH = 1_000
OUT = Path(__file__).resolve().parent.parent / "docs" / "img"

BERNOULLI: dict[str, Callable[[int], bandit.Policy]] = {
    "equal split": lambda s: bandit.FixedSplit(ARMS),
    "Thompson (Beta)": lambda s: bandit.BernoulliThompson(ARMS, seed=s),
    "Thompson, floor 5 %, cap 10 %": lambda s: bandit.BernoulliThompson(
        ARMS, floor=0.05, max_change=0.1, seed=s
    ),
    "UCB1": lambda s: bandit.UCB1(ARMS),
    "epsilon-greedy (0.1)": lambda s: bandit.EpsilonGreedy(ARMS, epsilon=0.1),
}
NORMAL: dict[str, Callable[[int], bandit.Policy]] = {
    "equal split": lambda s: bandit.FixedSplit(ARMS),
    "Thompson (normal, unknown variance)": lambda s: bandit.NormalThompson(
        ARMS, mu0=10, beta0=16, seed=s
    ),
    "epsilon-greedy (0.1)": lambda s: bandit.EpsilonGreedy(ARMS, epsilon=0.1),
}


def run(
    policies: dict[str, Callable[[int], bandit.Policy]],
    means: list[float],
    seeds: int,
    noise_sd: float | None = None,
) -> dict[str, list[bandit.SimulationResult]]:
    return {
        name: [
            bandit.simulate(make(seed), means, HORIZON, BATCH, seed=seed, noise_sd=noise_sd)
            for seed in range(seeds)
        ]
        for name, make in policies.items()
    }


def regret_panel(ax: plt.Axes, results: dict[str, list[bandit.SimulationResult]], title: str):
    for name, runs in results.items():
        rounds = runs[0].rounds
        regret = np.stack([r.regret for r in runs])
        mean = regret.mean(axis=0)
        lo, hi = np.percentile(regret, [10, 90], axis=0)
        (line,) = ax.plot(rounds, mean, label=f"{name} ({mean[-1]:,.0f})")
        ax.fill_between(rounds, lo, hi, color=line.get_color(), alpha=0.15)
    ax.set_title(title)
    ax.set_xlabel("rounds")
    ax.set_ylabel("cumulative regret (mean, 10-90 % band)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="simulated runs per policy")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)

    bern = run(BERNOULLI, BERNOULLI_MEANS, args.seeds)
    norm = run(NORMAL, NORMAL_MEANS, args.seeds, NOISE_SD)

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    regret_panel(axes[0], bern, f"Bernoulli arms {BERNOULLI_MEANS}, batches of {BATCH:,}")
    regret_panel(
        axes[1], norm, f"normal arms {NORMAL_MEANS}, sd {NOISE_SD:g}, batches of {BATCH:,}"
    )
    fig.tight_layout()
    fig.savefig(OUT / "bandit_regret.png", dpi=110)
    plt.close(fig)

    panels = [(f"{name} (Bernoulli)", runs[0]) for name, runs in bern.items()]
    panels += [
        (f"{name} (normal)", runs[0]) for name, runs in norm.items() if name != "equal split"
    ]
    cols = 3
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(13, 3.2 * rows), sharey=True)
    for ax, (name, r) in zip(axes.ravel(), panels, strict=False):
        ax.stackplot(r.rounds, r.weights.T, labels=list(r.arms), alpha=0.85)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("rounds")
        ax.set_ylim(0, 1)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    axes.ravel()[0].set_ylabel("allocation (share of traffic)")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    axes.ravel()[-1].legend(handles, labels, loc="center", title="arm (c is best)")
    fig.tight_layout()
    fig.savefig(OUT / "bandit_allocation.png", dpi=110)
    plt.close(fig)

    for label, results in (("Bernoulli", bern), ("normal", norm)):
        for name, runs in results.items():
            final = np.array([r.total_regret for r in runs])
            print(f"{label:9s} {name:38s} regret {final.mean():8,.0f} ± {final.std():6,.0f}")
    print(f"wrote {OUT / 'bandit_regret.png'} and {OUT / 'bandit_allocation.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
