"""Multi-armed bandits (docs/bandits.md): traffic shifts toward the better arm while the
experiment runs.

``policies`` (per-arm statistics and the primitives they use), ``linear`` (contextual),
``serialise`` (the base every policy shares and its JSON description), ``allocation`` (weights
into configuration), ``simulate``, ``offpolicy`` (inverse propensity estimates), ``plot`` (the
allocation path, with matplotlib).

Policies keep per-arm sufficient statistics (mergeable, JSON-serialisable) and turn them into
the allocation of the next epoch; :meth:`Policy.next_step` writes that allocation as a new step
of an experiment's allocation history, so the minimal-movement allocator moves only the units
whose bucket changes arm and ``assign(..., at=)`` replays every epoch.

>>> import trafficsplit as ts
>>> from trafficsplit.bandit import BernoulliThompson
>>> policy = BernoulliThompson(["control", "challenger"], floor=0.05, seed=7)
>>> arms = ["control"] * 500 + ["challenger"] * 500
>>> policy.update(arms, [0] * 480 + [1] * 20 + [0] * 460 + [1] * 40)
>>> w = policy.weights(epoch=1)
>>> w["challenger"] > 0.9
True
>>> exp = ts.Experiment("ranker", {"control": 50, "challenger": 50})
>>> exp2 = policy.next_step(exp, at="2026-01-02")
>>> exp2.weights["challenger"] > 90 and len(exp2.steps) == 2
True

Monte Carlo draws are seeded per epoch (``epoch_seed(seed, epoch)``, C++, portable), so every
replica that holds the same statistics computes the same weights.
"""

from .allocation import assignment_probabilities, write_allocation
from .linear import FeatureEncoder, LinearThompson
from .offpolicy import ipw_estimate
from .plot import plot_allocation
from .policies import (
    UCB1,
    BernoulliThompson,
    EpsilonGreedy,
    FixedSplit,
    NormalThompson,
    Policy,
    epoch_seed,
    limit_weights,
    probability_best,
)
from .serialise import BanditPolicy, policy_from_dict
from .simulate import SimulationResult, simulate

__all__ = [
    "UCB1",
    "BanditPolicy",
    "BernoulliThompson",
    "EpsilonGreedy",
    "FeatureEncoder",
    "FixedSplit",
    "LinearThompson",
    "NormalThompson",
    "Policy",
    "SimulationResult",
    "assignment_probabilities",
    "epoch_seed",
    "ipw_estimate",
    "limit_weights",
    "plot_allocation",
    "policy_from_dict",
    "probability_best",
    "simulate",
    "write_allocation",
]
