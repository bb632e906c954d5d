#!/usr/bin/env python
"""How often ``ipw_estimate``'s intervals cover the true arm means, under a fixed split and
under an adaptive (Thompson sampling) allocation: a simulation, not a timing.

Run from the repository root:

    .venv/bin/python benchmarks/sim_ipw_coverage.py [--quick] [--markdown docs/benchmarks.md]

Each replication plays a two-arm Bernoulli bandit (true means 0.10 and 0.12) for 20 epochs of
1,000 units: the policy's weights for an epoch are the serving probabilities of its units, the
exposure log records (arm, reward, probability), and ``ipw_estimate`` gives IPW and Hájek
estimates with 95 % intervals. The figures are the share of replications whose interval covers
each arm's true mean, the bias in Monte Carlo standard errors, and the ratio of the reported
standard error to the estimates' spread across replications.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from _common import environment_lines, finish_run, parse_args, publish, start_run, table
from trafficsplit.bandit import BernoulliThompson, FixedSplit, ipw_estimate

SECTION = "sim_ipw_coverage"
SECTION_TITLE = "## Off-policy intervals under adaptive allocation (simulation)"

TRUE = (0.10, 0.12)
EPOCHS, BATCH = 20, 1_000


def replicate(policy_kind: str, seed: int) -> dict[str, tuple[float, float, float]]:
    """(estimate, se, covered) of arm 'b' for IPW and Hájek in one replication."""
    rng = np.random.default_rng(seed)
    arms = ["a", "b"]
    if policy_kind == "fixed":
        policy = FixedSplit(arms)
    else:
        policy = BernoulliThompson(arms, floor=0.05, seed=seed)
    served, rewards, probs = [], [], []
    previous = None
    for epoch in range(EPOCHS):
        w = policy.weights(epoch=epoch, previous=previous)
        p = np.array([w[a] for a in arms]) / sum(w.values())
        k = rng.choice(2, size=BATCH, p=p)
        r = (rng.random(BATCH) < np.asarray(TRUE)[k]).astype(float)
        served.append(k)
        rewards.append(r)
        probs.append(p[k])
        policy.update([arms[i] for i in k], r)
        previous = w
    log = {
        "arm": np.array(arms, dtype=object)[np.concatenate(served)],
        "reward": np.concatenate(rewards),
        "probability": np.concatenate(probs),
    }
    est = ipw_estimate(log).loc["b"]
    out = {}
    for form in ("ipw", "hajek"):
        low, high = est[f"{form}_low"], est[f"{form}_high"]
        out[form] = (float(est[form]), float(est[f"{form}_se"]), float(low <= TRUE[1] <= high))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, SECTION, argv)
    reps = 60 if args.quick else 400
    started = time.perf_counter()
    machine, command = start_run()
    rows = []
    for kind in ("fixed", "thompson"):
        results = [replicate(kind, seed) for seed in range(reps)]
        for form in ("ipw", "hajek"):
            est = [r[form][0] for r in results]
            se = [r[form][1] for r in results]
            cover = statistics.fmean(r[form][2] for r in results)
            spread = statistics.stdev(est)
            bias_mcse = (statistics.fmean(est) - TRUE[1]) / (spread / reps**0.5)
            mc_cover = (cover * (1 - cover) / reps) ** 0.5
            rows.append(
                [
                    "fixed 50/50" if kind == "fixed" else "Thompson sampling (floor 5 %)",
                    "IPW" if form == "ipw" else "Hájek",
                    f"{cover:.1%} ± {mc_cover:.1%}",
                    f"{bias_mcse:+.1f}",
                    f"{statistics.fmean(se) / spread:.2f}",
                ]
            )
    seconds = finish_run(machine, started)
    body = environment_lines(command, machine)
    body += [
        f"### Coverage of the 95 % intervals for arm b, {reps} replications",
        "",
        *table(
            ["allocation", "estimate", "coverage", "bias (MC SE)", "reported SE / true spread"],
            rows,
        ),
        "",
        "Coverage is the share of replications whose 95 % interval holds arm b's true mean "
        "(± its Monte Carlo standard error); bias is the mean estimate's distance from the "
        "truth in Monte Carlo standard errors; the last column is the mean reported standard "
        "error over the standard deviation of the estimates across replications (1 when the "
        "reported error is right). The reported error treats the log's rows as independent; "
        "under an allocation that adapts to the rewards they are not. "
        f"The run took {seconds:.0f} s.",
        "",
    ]
    publish(body, args.markdown, SECTION, SECTION_TITLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
