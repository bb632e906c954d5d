"""Multi-armed bandits (docs/bandits.md): traffic shifts toward the better arm while the
experiment runs.

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

from __future__ import annotations

import functools
import importlib.util
import json
import math
import numbers
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ._core import bandit as _bandit
from ._core import hashing as _hashing
from ._optional import require
from ._shared.checks import check_threads, is_real
from .config import ConfigValidationError, edit_entry
from .errors import ConfigError
from .experiment import Experiment

__all__ = [
    "UCB1",
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
    "policy_from_dict",
    "probability_best",
    "simulate",
    "write_allocation",
]


def epoch_seed(seed: int, epoch: int) -> int:
    """The Monte Carlo seed of one epoch: splitmix64(seed XOR splitmix64(epoch)) (64-bit)."""
    return int(_bandit.epoch_seed(_check_seed(seed, "seed"), _check_seed(epoch, "epoch")))


def probability_best(
    posterior: str,
    *params: Sequence[float],
    draws: int = 10_000,
    seed: int = 0,
    threads: int | None = None,
) -> np.ndarray:
    """P(each arm's draw is the largest) by seeded Monte Carlo in C++.

    ``posterior="beta"`` with ``alpha, beta`` per arm, or ``"student_t"`` with ``loc, scale,
    dof`` per arm (the posterior of a normal mean with unknown variance). Arm k draws from its
    own stream ``epoch_seed(seed, k)``, so ``threads`` (None: all cores) does not change the
    result.

    >>> p = probability_best("beta", [41, 61], [961, 941], seed=1)
    >>> bool(p[1] > 0.95)
    True
    """
    draws = _check_count(draws, "draws")
    seed = _check_seed(seed, "seed")
    nthreads = check_threads(threads)
    if posterior == "beta":
        if len(params) != 2:
            raise ConfigError("probability_best('beta', alpha, beta) needs two parameter lists")
        return np.asarray(
            _bandit.probability_best_beta(
                _floats(params[0], "alpha"), _floats(params[1], "beta"), draws, seed, nthreads
            )
        )
    if posterior == "student_t":
        if len(params) != 3:
            raise ConfigError(
                "probability_best('student_t', loc, scale, dof) needs three parameter lists"
            )
        return np.asarray(
            _bandit.probability_best_student(
                _floats(params[0], "loc"),
                _floats(params[1], "scale"),
                _floats(params[2], "dof"),
                draws,
                seed,
                nthreads,
            )
        )
    raise ConfigError(f"posterior must be 'beta' or 'student_t', got {posterior!r}")


def limit_weights(
    target: Sequence[float],
    previous: Sequence[float] | None = None,
    floor: float = 0.0,
    max_change: float | None = None,
) -> np.ndarray:
    """The allocation closest in proportion to ``target`` with every arm at least ``floor``
    and, given ``previous``, no arm more than ``max_change`` away from it (docs/bandits.md).

    >>> limit_weights([0.9, 0.1, 0.0], floor=0.05).round(3).tolist()
    [0.855, 0.095, 0.05]
    """
    return np.asarray(
        _bandit.limit_weights(
            _floats(target, "target"),
            [] if previous is None else _floats(previous, "previous"),
            _check_share(floor, "floor"),
            _max_change(max_change),
        )
    )


# -- policies over per-arm statistics ---------------------------------------------------------


class Policy:
    """A bandit policy over per-arm sufficient statistics (count, sum, m2 per arm).

    Subclasses: :class:`BernoulliThompson`, :class:`NormalThompson`, :class:`UCB1`,
    :class:`EpsilonGreedy` (and :class:`FixedSplit`, the baseline).

    ``floor``: every arm gets at least this share (0 <= floor <= 1/arms).
    ``max_change``: no arm's share moves more than this from the previous epoch's (None: no cap).
    ``seed``: the Monte Carlo seed; epoch ``e`` draws from ``epoch_seed(seed, e)``.
    """

    kind: ClassVar[str] = ""

    def __init__(
        self,
        arms: Sequence[str],
        *,
        floor: float = 0.0,
        max_change: float | None = None,
        seed: int = 0,
        draws: int = 10_000,
        **params: float,
    ) -> None:
        if not self.kind:
            raise TypeError(
                "Policy is the base class; use BernoulliThompson, NormalThompson, UCB1, "
                "EpsilonGreedy or FixedSplit"
            )
        self._arms = _check_arms(arms)
        self._floor = _check_share(floor, "floor")
        self._max_change = None if max_change is None else _max_change(max_change)
        self._seed = _check_seed(seed, "seed")
        self._draws = _check_count(draws, "draws")
        for name, value in params.items():
            if not is_real(value) or not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")
        self._params = {k: float(v) for k, v in params.items()}
        self._core = self._make_core()
        self._index = {a: i for i, a in enumerate(self._arms)}

    def _make_core(self) -> _bandit.Policy:
        """The C++ policy holding the statistics and computing the weights."""
        return _bandit.Policy(
            self.kind,
            len(self._arms),
            floor=self._floor,
            max_change=1.0 if self._max_change is None else self._max_change,
            draws=self._draws,
            seed=self._seed,
            **self._params,
        )

    # -- state ---------------------------------------------------------------------------------

    @property
    def arms(self) -> tuple[str, ...]:
        return self._arms

    @property
    def floor(self) -> float:
        return self._floor

    @property
    def max_change(self) -> float | None:
        return self._max_change

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def draws(self) -> int:
        return self._draws

    @property
    def params(self) -> dict[str, float]:
        """The policy's own parameters (priors, ``c``, ``epsilon``)."""
        return dict(self._params)

    def update(self, arms: Any, rewards: Any) -> None:
        """Adds a batch of observations: ``arms[i]`` (arm names, or integer arm indexes) got
        ``rewards[i]``. Vectorised in C++; refuses unknown arms and non-finite rewards (and
        rewards outside [0, 1] for Bernoulli Thompson sampling), naming the row."""
        codes = _arm_codes(arms, self._index)
        values = _reward_array(rewards, len(codes))
        self._core.update(codes, values)

    def update_aggregates(self, aggregates: Mapping[str, Any]) -> None:
        """Adds per-arm aggregates computed elsewhere (SQL, Spark, another server):
        ``{arm: (count, sum, sum_of_squares)}`` or ``{arm: {"count", "sum", "sum_sq"}}``
        (``"m2"``, the sum of squared deviations from the mean, may replace ``"sum_sq"``)."""
        if not isinstance(aggregates, Mapping):
            raise ConfigError(
                "aggregates must be a mapping of arm -> (count, sum, sum_of_squares), "
                f"got {type(aggregates).__name__}"
            )
        for arm, agg in aggregates.items():
            if arm not in self._index:
                raise ConfigError(f"aggregates name arm {arm!r}, not among {list(self._arms)}")
            count, total, m2 = _aggregate(agg, f"aggregates[{arm!r}]")
            self._core.add(self._index[arm], count, total, m2)

    @property
    def stats(self) -> dict[str, dict[str, float]]:
        """Per arm: ``count``, ``sum``, ``m2`` (sum of squared deviations) and ``mean``."""
        out = self._sums()
        for d in out.values():
            d["mean"] = d["sum"] / d["count"] if d["count"] > 0 else math.nan
        return out

    def _sums(self) -> dict[str, dict[str, float]]:
        """Per arm: ``count``, ``sum`` and ``m2``, as :meth:`to_dict` writes them."""
        s = self._core.stats()
        return {
            a: {"count": float(s[i, 0]), "sum": float(s[i, 1]), "m2": float(s[i, 2])}
            for i, a in enumerate(self._arms)
        }

    def merge(self, *others: Policy) -> Policy:
        """A new policy whose statistics are the sums of this one's and ``others``' (several
        model servers feeding one policy). All must have the same class, arms and parameters."""
        out = self.copy()
        for other in others:
            if not isinstance(other, Policy) or type(other) is not type(self):
                raise ConfigError(
                    f"cannot merge a {type(other).__name__} into a {type(self).__name__}"
                )
            if other._arms != self._arms:
                raise ConfigError(
                    f"cannot merge policies over different arms: {list(self._arms)} vs "
                    f"{list(other._arms)}"
                )
            if other._params != self._params:
                raise ConfigError(
                    f"cannot merge policies with different parameters: {self._params} vs "
                    f"{other._params}"
                )
            out._core.merge(other._core)
        return out

    def copy(self) -> Policy:
        """An independent copy with the same parameters and statistics."""
        return policy_from_dict(self.to_dict())

    # -- allocation ----------------------------------------------------------------------------

    def target(self, epoch: int = 0, threads: int | None = None) -> dict[str, float]:
        """What the policy asks for before the floor and cap (docs/bandits.md)."""
        raw = self._core.target(_check_seed(epoch, "epoch"), check_threads(threads))
        return dict(zip(self._arms, (float(x) for x in raw), strict=True))

    def weights(
        self,
        epoch: int = 0,
        previous: Mapping[str, float] | Sequence[float] | None = None,
        threads: int | None = None,
    ) -> dict[str, float]:
        """The allocation (shares summing to 1) for ``epoch``: :meth:`target` with the floor
        and, against ``previous`` (shares or percents, by arm), the cap ``max_change``.
        ``threads``: for the Monte Carlo (None: all cores); the result does not depend on it."""
        prev = [] if previous is None else self._shares(previous, "previous")
        if self._max_change is None:
            prev = []
        raw = self._core.weights(_check_seed(epoch, "epoch"), prev, check_threads(threads))
        return dict(zip(self._arms, (float(x) for x in raw), strict=True))

    def next_step(
        self, experiment: Experiment, at: Any = None, *, epoch: int | None = None
    ) -> Experiment:
        """``experiment`` with one more allocation step: this policy's weights for the next
        epoch, rounded to the experiment's buckets by its largest-remainder apportionment,
        effective ``at`` (default: now). The epoch is the new step's index in the history
        (``len(experiment.steps)``) unless given; the cap applies against the current step."""
        return _next_step(self, experiment, at, epoch)

    def _shares(self, values: Mapping[str, float] | Sequence[float], what: str) -> list[float]:
        if isinstance(values, Mapping):
            missing = [a for a in self._arms if a not in values]
            extra = [a for a in values if a not in self._index]
            if missing or extra:
                raise ConfigError(
                    f"{what} must give one share per arm {list(self._arms)}; "
                    f"missing {missing}, unknown {extra}"
                )
            out = [values[a] for a in self._arms]
        else:
            out = list(values)
            if len(out) != len(self._arms):
                raise ConfigError(f"{what} has {len(out)} values for {len(self._arms)} arms")
        return _floats(out, what)

    # -- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description: kind, arms, parameters and per-arm statistics."""
        return {
            "kind": self.kind,
            "arms": list(self._arms),
            "floor": self._floor,
            "max_change": self._max_change,
            "seed": self._seed,
            "draws": self._draws,
            "params": dict(self._params),
            "stats": self._sums(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Policy:
        return policy_from_dict(json.loads(text))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Policy):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({list(self._arms)}, floor={self._floor:g}, seed={self._seed})"
        )


class BernoulliThompson(Policy):
    """Thompson sampling for rewards in [0, 1] (conversions): Beta(prior_alpha + sum,
    prior_beta + count - sum) per arm; the weights are P(arm is best) by Monte Carlo.

    >>> p = BernoulliThompson(["a", "b"], seed=1)
    >>> p.update_aggregates({"a": (1000, 40, 40), "b": (1000, 70, 70)})
    >>> p.weights()["b"] > 0.99
    True
    """

    kind = "bernoulli_thompson"

    def __init__(
        self,
        arms: Sequence[str],
        *,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        floor: float = 0.0,
        max_change: float | None = None,
        seed: int = 0,
        draws: int = 10_000,
    ) -> None:
        super().__init__(
            arms,
            floor=floor,
            max_change=max_change,
            seed=seed,
            draws=draws,
            prior_alpha=prior_alpha,
            prior_beta=prior_beta,
        )

    def posterior(self) -> dict[str, tuple[float, float]]:
        """Beta (alpha, beta) of each arm's mean."""
        a, b = self._core.beta_posterior()
        return {arm: (float(x), float(y)) for arm, x, y in zip(self._arms, a, b, strict=True)}


class NormalThompson(Policy):
    """Thompson sampling for real-valued rewards (revenue, latency) with unknown variance:
    a normal-inverse-gamma prior NIG(mu0, kappa0, alpha0, beta0) per arm, so each arm's mean
    has a Student-t posterior; the weights are P(arm is best) by Monte Carlo.

    Set ``beta0`` to about ``alpha0`` times a guess of the reward variance; ``kappa0`` is the
    prior's weight in observations.
    """

    kind = "normal_thompson"

    def __init__(
        self,
        arms: Sequence[str],
        *,
        mu0: float = 0.0,
        kappa0: float = 1e-2,
        alpha0: float = 1.0,
        beta0: float = 1.0,
        floor: float = 0.0,
        max_change: float | None = None,
        seed: int = 0,
        draws: int = 10_000,
    ) -> None:
        super().__init__(
            arms,
            floor=floor,
            max_change=max_change,
            seed=seed,
            draws=draws,
            mu0=mu0,
            kappa0=kappa0,
            alpha0=alpha0,
            beta0=beta0,
        )

    def posterior(self) -> dict[str, tuple[float, float, float]]:
        """Student-t (loc, scale, dof) of each arm's mean."""
        loc, scale, dof = self._core.student_posterior()
        return {
            arm: (float(m), float(s), float(d))
            for arm, m, s, d in zip(self._arms, loc, scale, dof, strict=True)
        }


class UCB1(Policy):
    """UCB1 (Auer, Cesa-Bianchi & Fischer 2002): index = mean + c * sqrt(2 ln N / n). The
    epoch's allocation puts all weight on the largest index (ties split evenly; untried arms
    first), then the floor and cap. Rewards are assumed in [0, 1]; scale ``c`` otherwise."""

    kind = "ucb1"

    def __init__(
        self,
        arms: Sequence[str],
        *,
        c: float = 1.0,
        floor: float = 0.0,
        max_change: float | None = None,
    ) -> None:
        super().__init__(arms, floor=floor, max_change=max_change, draws=1, c=c)


class EpsilonGreedy(Policy):
    """Epsilon-greedy: 1 - epsilon + epsilon/K on the arm with the best mean (ties split
    evenly; untried arms first), epsilon/K on each other arm, then the floor and cap."""

    kind = "epsilon_greedy"

    def __init__(
        self,
        arms: Sequence[str],
        *,
        epsilon: float = 0.1,
        floor: float = 0.0,
        max_change: float | None = None,
    ) -> None:
        super().__init__(arms, floor=floor, max_change=max_change, draws=1, epsilon=epsilon)


class FixedSplit(Policy):
    """Fixed weights whatever the rewards (default: equal): the baseline of :func:`simulate`.
    It keeps statistics like the others, so it can be merged and serialised."""

    kind = "fixed"

    def __init__(self, arms: Sequence[str], weights: Sequence[float] | None = None) -> None:
        super().__init__(arms, draws=1)
        w = [1.0] * len(self._arms) if weights is None else self._shares(weights, "weights")
        total = math.fsum(w)
        if not total > 0 or any(x < 0 for x in w):
            raise ConfigError(f"weights must be >= 0 with a positive sum, got {w}")
        self._fixed = [x / total for x in w]

    def _make_core(self) -> _bandit.Policy:
        # The statistics live in an epsilon-greedy core with epsilon = 1 (the equal split).
        return _bandit.Policy("epsilon_greedy", len(self._arms), epsilon=1.0)

    def target(self, epoch: int = 0, threads: int | None = None) -> dict[str, float]:
        return dict(zip(self._arms, self._fixed, strict=True))

    def weights(
        self,
        epoch: int = 0,
        previous: Mapping[str, float] | Sequence[float] | None = None,
        threads: int | None = None,
    ) -> dict[str, float]:
        return self.target(epoch)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["weights"] = list(self._fixed)
        return d


_KINDS: dict[str, type[Policy]] = {
    cls.kind: cls for cls in (BernoulliThompson, NormalThompson, UCB1, EpsilonGreedy, FixedSplit)
}


def policy_from_dict(d: Mapping[str, Any] | str) -> Policy | LinearThompson:
    """Rebuilds a policy from :meth:`Policy.to_dict` output (or its JSON text)."""
    if isinstance(d, str | bytes):
        d = json.loads(d)
    if not isinstance(d, Mapping) or "kind" not in d:
        raise ConfigError("a policy description is a mapping with a 'kind'")
    kind = d["kind"]
    if kind == LinearThompson.kind:
        return LinearThompson.from_dict(d)
    if kind not in _KINDS:
        raise ConfigError(f"unknown policy kind {kind!r}; expected one of {sorted(_KINDS)}")
    cls = _KINDS[kind]
    params = dict(d.get("params", {}))
    if cls is FixedSplit:
        policy: Policy = FixedSplit(d["arms"], d.get("weights"))
    elif cls in (UCB1, EpsilonGreedy):
        policy = cls(d["arms"], floor=d.get("floor", 0.0), max_change=d.get("max_change"), **params)
    else:
        policy = cls(
            d["arms"],
            floor=d.get("floor", 0.0),
            max_change=d.get("max_change"),
            seed=d.get("seed", 0),
            draws=d.get("draws", 10_000),
            **params,
        )
    stats = d.get("stats", {})
    if not isinstance(stats, Mapping):
        raise ConfigError("stats must be a mapping of arm -> {count, sum, m2}")
    policy.update_aggregates(stats)
    return policy


# -- driving an experiment ---------------------------------------------------------------------


def _next_step(
    policy: Policy | LinearThompson,
    experiment: Experiment,
    at: Any,
    epoch: int | None,
    features: Any = None,
) -> Experiment:
    if not isinstance(experiment, Experiment):
        raise ConfigError(f"next_step needs an Experiment, got {type(experiment).__name__}")
    names = experiment.arm_names
    if set(names) != set(policy.arms):
        raise ConfigError(
            f"the policy's arms {list(policy.arms)} differ from experiment "
            f"{experiment.key!r}'s arms {list(names)}"
        )
    e = len(experiment.steps) if epoch is None else epoch
    current = experiment.weights
    if isinstance(policy, LinearThompson):
        w = policy.weights(features, epoch=e)
    else:
        w = policy.weights(epoch=e, previous={a: current[a] / 100 for a in policy.arms})
    counts = _hashing.apportion([w[a] * 100 for a in names], experiment.buckets)
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
        if isinstance(arms, Mapping):
            for name in list(arms):
                if name not in weights:
                    raise ConfigError(f"arm {name!r} of {experiment.key!r} is not in the policy")
                if isinstance(arms[name], Mapping):
                    arms[name]["weight"] = weights[name]
                else:
                    arms[name] = weights[name]
        elif isinstance(arms, list):
            for a in arms:
                if not isinstance(a, Mapping) or a.get("name") not in weights:
                    raise ConfigError(f"cannot match arm entry {a!r} of {experiment.key!r}")
                a["weight"] = weights[a["name"]]
        else:
            raise ConfigError(f"experiment {experiment.key!r} has no arms to update")
        entry["allocated_at"] = d["allocated_at"]
        entry["history"] = d["history"]

    try:
        edit_entry(path, experiment.key, change, ("experiments",))
    except ConfigValidationError:
        raise
    except ConfigError as exc:
        raise ConfigError(f"write_allocation: {path}: {exc}") from None


# -- contextual: linear Thompson sampling --------------------------------------------------------


class FeatureEncoder:
    """A fixed feature encoding for contextual policies (docs/bandits.md, "Features").

    The vector is, in order: ``1.0`` (the intercept, if ``intercept``); for each categorical
    attribute in the order given, one indicator per listed level (an unlisted or missing value
    sets none of them); for each numeric attribute, ``(x - mean) / sd`` (missing or NaN: 0,
    i.e. the mean).

    >>> enc = FeatureEncoder(categorical={"country": ["US", "DE"]}, numeric={"age": (40, 10)})
    >>> enc.names
    ('intercept', 'country=US', 'country=DE', 'age')
    >>> enc.encode({"country": "DE", "age": 55}).tolist()
    [1.0, 0.0, 1.0, 1.5]
    """

    def __init__(
        self,
        categorical: Mapping[str, Sequence[Any]] | None = None,
        numeric: Mapping[str, tuple[float, float]] | None = None,
        intercept: bool = True,
    ) -> None:
        self._categorical = {str(k): tuple(v) for k, v in (categorical or {}).items()}
        for k, levels in self._categorical.items():
            if len(set(levels)) != len(levels) or not levels:
                raise ConfigError(f"categorical[{k!r}] must list distinct levels, got {levels}")
        self._numeric: dict[str, tuple[float, float]] = {}
        for k, ms in (numeric or {}).items():
            if not isinstance(ms, Sequence) or len(ms) != 2:
                raise ConfigError(f"numeric[{k!r}] must be (mean, sd), got {ms!r}")
            mean, sd = float(ms[0]), float(ms[1])
            if not math.isfinite(mean) or not (sd > 0 and math.isfinite(sd)):
                raise ConfigError(f"numeric[{k!r}] needs a finite mean and sd > 0, got {ms!r}")
            self._numeric[str(k)] = (mean, sd)
        self._intercept = bool(intercept)
        names = ["intercept"] if self._intercept else []
        for k, levels in self._categorical.items():
            names += [f"{k}={v}" for v in levels]
        names += list(self._numeric)
        if not names:
            raise ConfigError("a feature encoder needs an intercept or at least one attribute")
        self._names = tuple(names)

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def dims(self) -> int:
        return len(self._names)

    def encode(self, attributes: Mapping[str, Any]) -> np.ndarray:
        """The feature vector of one request."""
        return self.encode_frame({k: [attributes.get(k)] for k in self._columns()})[0]

    def encode_frame(self, frame: Any) -> np.ndarray:
        """The (rows x dims) feature matrix of a DataFrame, a mapping of columns or a list of
        attribute dicts."""
        if isinstance(frame, list):
            frame = {k: [row.get(k) for row in frame] for k in self._columns()}
        n = None
        cols: dict[str, np.ndarray] = {}
        for k in self._columns():
            if k in frame:
                col = np.asarray(frame[k], dtype=object)
                cols[k] = col
                if n is not None and len(col) != n:
                    raise ConfigError(f"column {k!r} has {len(col)} rows, expected {n}")
                n = len(col)
        if n is None:
            n = len(frame) if hasattr(frame, "__len__") and not isinstance(frame, Mapping) else 0
            if isinstance(frame, Mapping):
                n = len(next(iter(frame.values()), []))
        out = np.zeros((n, self.dims))
        j = 0
        if self._intercept:
            out[:, 0] = 1.0
            j = 1
        for k, levels in self._categorical.items():
            col = cols.get(k)
            for level in levels:
                if col is not None:
                    out[:, j] = [not _missing(v) and v == level for v in col]
                j += 1
        for k, (mean, sd) in self._numeric.items():
            col = cols.get(k)
            if col is not None:
                x = np.array([np.nan if _missing(v) else float(v) for v in col], dtype=float)
                z = (x - mean) / sd
                out[:, j] = np.where(np.isfinite(z), z, 0.0)
            j += 1
        return out

    def _columns(self) -> list[str]:
        return [*self._categorical, *self._numeric]

    def to_dict(self) -> dict[str, Any]:
        return {
            "categorical": {k: list(v) for k, v in self._categorical.items()},
            "numeric": {k: list(v) for k, v in self._numeric.items()},
            "intercept": self._intercept,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureEncoder:
        return cls(
            d.get("categorical"),
            {k: tuple(v) for k, v in (d.get("numeric") or {}).items()},
            d.get("intercept", True),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureEncoder) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


class LinearThompson:
    """Linear Thompson sampling (Agrawal & Goyal 2013): per arm, ridge regression of the
    reward on the encoded features, A = ridge*I + sum x x^T, b = sum r x; the coefficients'
    posterior is N(A^-1 b, scale^2 A^-1). For a request with features x, the probability of
    each arm is P(x . theta_arm is largest) over ``draws`` posterior draws (seeded per epoch,
    shared by every request of the epoch), then the floor.

    ``encoder``: a :class:`FeatureEncoder`, or the number of columns of raw feature matrices.
    ``scale``: about the standard deviation of the reward noise (0.5 suits rewards in [0, 1]).
    """

    kind: ClassVar[str] = "linear_thompson"

    def __init__(
        self,
        arms: Sequence[str],
        encoder: FeatureEncoder | int,
        *,
        ridge: float = 1.0,
        scale: float = 0.5,
        floor: float = 0.0,
        seed: int = 0,
        draws: int = 10_000,
    ) -> None:
        self._arms = _check_arms(arms)
        self._index = {a: i for i, a in enumerate(self._arms)}
        if isinstance(encoder, FeatureEncoder):
            self._encoder: FeatureEncoder | None = encoder
            dims = encoder.dims
        elif isinstance(encoder, numbers.Integral) and not isinstance(encoder, bool):
            self._encoder = None
            dims = int(encoder)
        else:
            raise ConfigError(
                f"encoder must be a FeatureEncoder or a number of features, got {encoder!r}"
            )
        self._ridge = float(ridge)
        self._scale = float(scale)
        self._floor = _check_share(floor, "floor")
        self._seed = _check_seed(seed, "seed")
        self._draws = _check_count(draws, "draws")
        self._core = _bandit.LinearThompson(
            len(self._arms), dims, self._ridge, self._scale, self._draws, self._seed, self._floor
        )

    @property
    def arms(self) -> tuple[str, ...]:
        return self._arms

    @property
    def encoder(self) -> FeatureEncoder | None:
        return self._encoder

    @property
    def dims(self) -> int:
        return int(self._core.dims)

    def features(self, data: Any) -> np.ndarray:
        """The (rows x dims) matrix of ``data``: encoded when the policy has an encoder and
        ``data`` is a frame, a mapping of columns or a list of dicts; else a float matrix."""
        if isinstance(data, np.ndarray) and data.dtype != object:
            x = np.asarray(data, dtype=float)
        elif (
            self._encoder is not None
            and isinstance(data, Mapping)
            and all(np.ndim(v) == 0 for v in data.values())
        ):
            x = self._encoder.encode(data)  # one request's attributes
        elif self._encoder is not None:
            x = self._encoder.encode_frame(data)
        else:
            x = np.asarray(data, dtype=float)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != self.dims:
            raise ConfigError(f"features must have {self.dims} columns, got shape {x.shape}")
        return np.ascontiguousarray(x)

    def update(self, features: Any, arms: Any, rewards: Any) -> None:
        """Adds observations: the request features, the arm served and the reward."""
        x = self.features(features)
        codes = _arm_codes(arms, self._index)
        self._core.update(x, codes, _reward_array(rewards, len(codes)))

    def probabilities(self, features: Any, epoch: int = 0) -> np.ndarray:
        """(rows x arms) probability of serving each arm to each request in ``epoch``."""
        return self._core.probabilities(self.features(features), _check_seed(epoch, "epoch"))

    def weights(self, features: Any, epoch: int = 0) -> dict[str, float]:
        """The epoch's allocation for a population: the mean of :meth:`probabilities` over
        its rows (e.g. a sample of recent requests)."""
        p = self.probabilities(features, epoch)
        if len(p) == 0:
            raise ConfigError("weights need at least one row of features")
        m = p.mean(axis=0)
        m = m / m.sum()
        return dict(zip(self._arms, (float(v) for v in m), strict=True))

    def choose(self, attributes: Any, unit: str | int | bytes, epoch: int = 0) -> tuple[str, float]:
        """The arm for one request and its probability (to log as the propensity). The draw
        is ``hash64(unit, salt=f"bandit:{seed}:{epoch}")``, so within an epoch the same unit
        with the same features always gets the same arm."""
        p = self.probabilities(attributes, epoch)[0]
        h = _hashing.hash64(unit, f"bandit:{self._seed}:{epoch}", "xxh3")
        u = (int(h) >> 11) * 2.0**-53
        cum = np.cumsum(p)
        k = int(np.searchsorted(cum, u * cum[-1], side="right"))
        k = min(k, len(p) - 1)
        while p[k] == 0 and k > 0:
            k -= 1
        return self._arms[k], float(p[k])

    def next_step(
        self, experiment: Experiment, features: Any, at: Any = None, *, epoch: int | None = None
    ) -> Experiment:
        """``experiment`` with one more step: :meth:`weights` of ``features`` (the population
        the experiment serves), rounded to its buckets."""
        return _next_step(self, experiment, at, epoch, features)

    def coefficients(self) -> dict[str, np.ndarray]:
        """Posterior mean coefficients A^-1 b per arm."""
        theta = self._core.coefficients()
        return {a: theta[i] for i, a in enumerate(self._arms)}

    def merge(self, *others: LinearThompson) -> LinearThompson:
        """A new policy with summed statistics (same arms, features and parameters)."""
        out = self.copy()
        for o in others:
            if not isinstance(o, LinearThompson) or o._arms != self._arms or o.dims != self.dims:
                raise ConfigError("cannot merge linear policies over different arms or features")
            if (o._ridge, o._scale) != (self._ridge, self._scale):
                raise ConfigError("cannot merge linear policies with different ridge or scale")
            out._core.merge(o._core)
        return out

    def copy(self) -> LinearThompson:
        return LinearThompson.from_dict(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        gram, xr, counts = self._core.state()
        return {
            "kind": self.kind,
            "arms": list(self._arms),
            "encoder": None if self._encoder is None else self._encoder.to_dict(),
            "dims": self.dims,
            "ridge": self._ridge,
            "scale": self._scale,
            "floor": self._floor,
            "seed": self._seed,
            "draws": self._draws,
            "stats": {
                a: {"gram": gram[i].tolist(), "xr": xr[i].tolist(), "count": float(counts[i])}
                for i, a in enumerate(self._arms)
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LinearThompson:
        enc = d.get("encoder")
        policy = cls(
            d["arms"],
            FeatureEncoder.from_dict(enc) if enc is not None else int(d["dims"]),
            ridge=d.get("ridge", 1.0),
            scale=d.get("scale", 0.5),
            floor=d.get("floor", 0.0),
            seed=d.get("seed", 0),
            draws=d.get("draws", 10_000),
        )
        stats = d.get("stats", {})
        k, dims = len(policy._arms), policy.dims
        gram = np.zeros((k, dims, dims))
        xr = np.zeros((k, dims))
        counts = np.zeros(k)
        for i, a in enumerate(policy._arms):
            s = stats.get(a)
            if s is None:
                continue
            gram[i] = np.asarray(s["gram"], dtype=float).reshape(dims, dims)
            xr[i] = np.asarray(s["xr"], dtype=float).reshape(dims)
            counts[i] = float(s["count"])
        policy._core.set_state(gram, xr, counts)
        return policy

    def __repr__(self) -> str:
        return f"LinearThompson({list(self._arms)}, dims={self.dims}, seed={self._seed})"


# -- off-policy estimates ----------------------------------------------------------------------


def ipw_estimate(
    log: Any,
    *,
    arm: str = "arm",
    reward: str = "reward",
    probability: str = "probability",
    arms: Sequence[str] | None = None,
    confidence: float = 0.95,
    units: int | None = None,
) -> Any:
    """Each arm's mean reward estimated from an exposure log by inverse propensity weighting.

    ``log``: a pandas DataFrame or a mapping of arrays with the arm served, the reward and the
    probability with which that arm was served (column names configurable). With N rows and
    w_i = 1[arm_i = k] / p_i:

    - IPW (Horvitz-Thompson): sum(w r) / N, standard error sd(w r) / sqrt(N);
    - self-normalised (Hájek): sum(w r) / sum(w), standard error
      sqrt(sum(w^2 (r - estimate)^2)) / sum(w) (delta method);

    with normal intervals at ``confidence``. Returns a pandas DataFrame indexed by arm:
    ``rows, ipw, ipw_se, ipw_low, ipw_high, hajek, hajek_se, hajek_low, hajek_high``.

    ``units``: N, the units that reached the experiment. Exposure records' probabilities
    include the exposed share, and units that were not exposed leave no record, so with an
    exposure below 1 the IPW form needs N from the traffic count (default: the log's rows,
    right when every unit that reached the experiment was exposed). Hájek needs no N.
    """
    pd = require("pandas", what="ipw_estimate")

    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be between 0 and 1, got {confidence!r}")
    cols = {}
    for what, name in (("arm", arm), ("reward", reward), ("probability", probability)):
        try:
            cols[what] = log[name]
        except (KeyError, IndexError, TypeError):
            raise ConfigError(f"the log has no {what} column {name!r}") from None
    served = cols["arm"]
    names = _log_arms(served, arms)
    index = {a: i for i, a in enumerate(names)}
    codes = _arm_codes(served, index, column=arm)
    rewards = _reward_array(cols["reward"], len(codes), column=reward)
    probs = _reward_array(cols["probability"], len(codes), column=probability)
    sums = _bandit.propensity_sums(codes, rewards, probs, len(names))
    n = float(len(codes))
    if units is not None:
        if not isinstance(units, numbers.Integral) or isinstance(units, bool) or units < len(codes):
            raise ConfigError(
                f"units must be an int >= the log's {len(codes)} rows (the units that reached "
                f"the experiment), got {units!r}"
            )
        n = float(units)
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
    rows = []
    for k in range(len(names)):
        rk, w, wr, w2, w2r, w2r2 = sums[k]
        if n > 1:
            mean = wr / n
            var = max(w2r2 - n * mean * mean, 0.0) / (n - 1)
            se = math.sqrt(var / n)
        else:
            mean, se = (wr / n if n else math.nan), math.nan
        if w > 0:
            hajek = wr / w
            h_se = math.sqrt(max(w2r2 - 2 * hajek * w2r + hajek * hajek * w2, 0.0)) / w
        else:
            hajek, h_se = math.nan, math.nan
        rows.append(
            {
                "rows": int(rk),
                "ipw": mean,
                "ipw_se": se,
                "ipw_low": mean - z * se,
                "ipw_high": mean + z * se,
                "hajek": hajek,
                "hajek_se": h_se,
                "hajek_low": hajek - z * h_se,
                "hajek_high": hajek + z * h_se,
            }
        )
    return pd.DataFrame(rows, index=pd.Index(names, name="arm"))


# -- simulation --------------------------------------------------------------------------------


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

    >>> r = simulate(FixedSplit(["a", "b"]), [0.1, 0.2], 10_000, 1_000, seed=1)
    >>> round(r.total_regret, -1)   # 0.05 * 10,000 on average
    500.0
    """
    if not isinstance(policy, Policy):
        raise ConfigError(f"simulate needs a Policy, got {type(policy).__name__}")
    mu = np.asarray(_floats(true_means, "true_means"))
    k = len(policy.arms)
    if len(mu) != k:
        raise ConfigError(f"true_means has {len(mu)} values for {k} arms")
    horizon = _check_count(horizon, "horizon")
    batch_size = _check_count(batch_size, "batch_size")
    if noise_sd is None and ((mu < 0) | (mu > 1)).any():
        raise ConfigError("Bernoulli rewards need true_means between 0 and 1 (or give noise_sd)")
    if noise_sd is not None and not (noise_sd > 0 and math.isfinite(noise_sd)):
        raise ConfigError(f"noise_sd must be positive, got {noise_sd!r}")
    rng = np.random.default_rng(_check_seed(seed, "seed"))
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


# -- argument checks ---------------------------------------------------------------------------


def _missing(v: Any) -> bool:
    """None, NaN and pandas.NA (by type name, so pandas stays optional)."""
    return v is None or (isinstance(v, float) and math.isnan(v)) or type(v).__name__ == "NAType"


@functools.cache
def _has_pandas() -> bool:
    """pandas is optional; with it, arm columns are factorised by hashing."""
    return importlib.util.find_spec("pandas") is not None


def _log_arms(served: Any, arms: Sequence[str] | None) -> list[str]:
    if arms is not None:
        return list(_check_arms(arms))
    return sorted({str(a) for a in _distinct(served)})


def _check_arms(arms: Any) -> tuple[str, ...]:
    if isinstance(arms, str | bytes) or not isinstance(arms, Iterable):
        raise ConfigError(f"arms must be a list of arm names, got {type(arms).__name__}")
    out = tuple(arms)
    if not out:
        raise ConfigError("arms must name at least one arm")
    for i, a in enumerate(out):
        if not isinstance(a, str) or not a:
            raise ConfigError(f"arms[{i}] must be a non-empty str, got {a!r}")
    if len(set(out)) != len(out):
        raise ConfigError(f"arm names must be unique, got {list(out)}")
    return out


def _check_share(x: Any, name: str) -> float:
    if not is_real(x) or not 0 <= float(x) <= 1:
        raise ConfigError(f"{name} must be a share between 0 and 1, got {x!r}")
    return float(x)


def _max_change(x: Any) -> float:
    if x is None:
        return 1.0
    if not is_real(x) or not 0 < float(x) <= 1:
        raise ConfigError(f"max_change must be a share in (0, 1] (or None), got {x!r}")
    return float(x)


def _check_seed(x: Any, name: str) -> int:
    if not isinstance(x, numbers.Integral) or isinstance(x, bool) or not 0 <= int(x) < 2**64:
        raise ConfigError(f"{name} must be an int between 0 and 2**64 - 1, got {x!r}")
    return int(x)


def _check_count(x: Any, name: str) -> int:
    if not isinstance(x, numbers.Integral) or isinstance(x, bool) or int(x) < 1:
        raise ConfigError(f"{name} must be a positive int, got {x!r}")
    return int(x)


def _floats(values: Any, name: str) -> list[float]:
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a sequence of numbers, got {values!r:.80}") from None
    for i, v in enumerate(out):
        if not math.isfinite(v):
            raise ConfigError(f"{name}[{i}] must be finite, got {v!r}")
    return out


def _aggregate(agg: Any, path: str) -> tuple[float, float, float]:
    if isinstance(agg, Mapping):
        if "count" not in agg or "sum" not in agg or ("m2" not in agg and "sum_sq" not in agg):
            raise ConfigError(f"{path} needs count, sum and sum_sq (or m2), got {sorted(agg)}")
        count, total = float(agg["count"]), float(agg["sum"])
        if "m2" in agg:
            m2 = float(agg["m2"])
        else:
            m2 = float(agg["sum_sq"]) - (total * total / count if count > 0 else 0.0)
            m2 = max(m2, 0.0)  # rounding of sum_sq - sum^2 / count
    elif isinstance(agg, Sequence) and len(agg) == 3:
        count, total, sum_sq = (float(x) for x in agg)
        m2 = max(sum_sq - (total * total / count if count > 0 else 0.0), 0.0)
    else:
        raise ConfigError(f"{path} must be (count, sum, sum_of_squares) or a mapping, got {agg!r}")
    return count, total, m2


def _arm_codes(arms: Any, index: Mapping[str, int], column: str = "arms") -> np.ndarray:
    """Arm indexes of a column of arm names (or of integer indexes), checked."""
    series = hasattr(arms, "to_numpy") and _has_pandas()
    kind = getattr(getattr(arms, "dtype", None), "kind", "") if series else ""
    if series and kind not in ("i", "u"):
        values: Any = arms
    else:
        values = np.asarray(arms.to_numpy() if hasattr(arms, "to_numpy") else arms)
    if np.ndim(values) != 1:
        raise ConfigError(f"{column} must be one-dimensional")
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        codes = values.astype(np.int64)
        bad = np.flatnonzero((codes < 0) | (codes >= len(index)))
        if len(bad):
            raise ConfigError(
                f"{column}[{bad[0]}] is arm index {codes[bad[0]]}, outside 0..{len(index) - 1}"
            )
        return codes
    if len(values) == 0:
        return np.zeros(0, np.int64)
    if _has_pandas():
        pd = require("pandas")

        # Hashing, no sort; a Series (categorical included) is factorised without copying.
        inverse, uniques = pd.factorize(values if series else np.asarray(values, dtype=object))
        uniques = np.asarray(uniques, dtype=object)
    else:
        uniques, inverse = np.unique(values.astype(object).astype(str), return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    if (inverse < 0).any():
        row = int(np.flatnonzero(inverse < 0)[0])
        raise ConfigError(f"{column}[{row}] is missing; every row needs the arm served")
    lookup = np.empty(len(uniques), np.int64)
    for j, u in enumerate(uniques):
        if not isinstance(u, str) or u not in index:
            row = int(np.flatnonzero(inverse == j)[0])
            raise ConfigError(f"{column}[{row}] is {u!r}, not among the arms {list(index)}")
        lookup[j] = index[u]
    return lookup[inverse]


def _distinct(values: Any) -> list[Any]:
    if _has_pandas():
        pd = require("pandas")

        unique = values.unique() if hasattr(values, "unique") else pd.unique(np.asarray(values))
        return [v for v in unique if not _missing(v)]
    return list(set(np.asarray(values).tolist()))


def _reward_array(values: Any, n: int, column: str = "rewards") -> np.ndarray:
    raw = values.to_numpy() if hasattr(values, "to_numpy") else values
    try:
        out = np.ascontiguousarray(np.asarray(raw, dtype=np.float64))
    except (TypeError, ValueError):
        raise ConfigError(f"{column} must be numbers") from None
    if out.ndim != 1 or len(out) != n:
        raise ConfigError(
            f"{column} must be one-dimensional with one value per row ({n} rows), "
            f"got shape {out.shape}"
        )
    return out
