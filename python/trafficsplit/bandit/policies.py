"""Bandit policies over per-arm sufficient statistics (count, sum, m2 per arm), and the
primitives they are made of: the epoch seed, P(best) by Monte Carlo, the floor and cap on a
change of weights (docs/bandits.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from .. import _display
from .._core import bandit as _bandit
from .._shared.checks import check_threads, is_real
from ..errors import ConfigError
from . import allocation
from .checks import (
    aggregate,
    arm_codes,
    check_count,
    check_max_change,
    check_seed,
    check_share,
    floats,
    reward_array,
)
from .serialise import BanditPolicy

if TYPE_CHECKING:
    from ..experiment import Experiment

__all__ = [
    "UCB1",
    "BernoulliThompson",
    "EpsilonGreedy",
    "FixedSplit",
    "NormalThompson",
    "Policy",
    "epoch_seed",
    "limit_weights",
    "probability_best",
]


def epoch_seed(seed: int, epoch: int) -> int:
    """The Monte Carlo seed of one epoch: splitmix64(seed XOR splitmix64(epoch)) (64-bit)."""
    return int(_bandit.epoch_seed(check_seed(seed, "seed"), check_seed(epoch, "epoch")))


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
    draws = check_count(draws, "draws")
    seed = check_seed(seed, "seed")
    nthreads = check_threads(threads)
    if posterior == "beta":
        if len(params) != 2:
            raise ConfigError("probability_best('beta', alpha, beta) needs two parameter lists")
        return np.asarray(
            _bandit.probability_best_beta(
                floats(params[0], "alpha"), floats(params[1], "beta"), draws, seed, nthreads
            )
        )
    if posterior == "student_t":
        if len(params) != 3:
            raise ConfigError(
                "probability_best('student_t', loc, scale, dof) needs three parameter lists"
            )
        return np.asarray(
            _bandit.probability_best_student(
                floats(params[0], "loc"),
                floats(params[1], "scale"),
                floats(params[2], "dof"),
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
            floats(target, "target"),
            [] if previous is None else floats(previous, "previous"),
            check_share(floor, "floor"),
            check_max_change(max_change),
        )
    )


# -- policies over per-arm statistics ---------------------------------------------------------


class Policy(BanditPolicy):
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
        super().__init__(arms, floor=floor, seed=seed, draws=draws)
        self._max_change = None if max_change is None else check_max_change(max_change)
        for name, value in params.items():
            if not is_real(value) or not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")
        self._params = {k: float(v) for k, v in params.items()}
        self._core = self._make_core()

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
    def max_change(self) -> float | None:
        return self._max_change

    @property
    def params(self) -> dict[str, float]:
        """The policy's own parameters (priors, ``c``, ``epsilon``)."""
        return dict(self._params)

    def update(self, arms: Any, rewards: Any) -> None:
        """Adds a batch of observations: ``arms[i]`` (arm names, or integer arm indexes) got
        ``rewards[i]``. Vectorised in C++; refuses unknown arms and non-finite rewards (and
        rewards outside [0, 1] for Bernoulli Thompson sampling), naming the row."""
        codes = arm_codes(arms, self._index)
        values = reward_array(rewards, len(codes))
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
            count, total, m2 = aggregate(agg, f"aggregates[{arm!r}]")
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

    def merge(self, *others: Policy) -> Self:
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

    # -- allocation ----------------------------------------------------------------------------

    def target(self, epoch: int = 0, threads: int | None = None) -> dict[str, float]:
        """What the policy asks for before the floor and cap (docs/bandits.md)."""
        raw = self._core.target(check_seed(epoch, "epoch"), check_threads(threads))
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
        raw = self._core.weights(check_seed(epoch, "epoch"), prev, check_threads(threads))
        return dict(zip(self._arms, (float(x) for x in raw), strict=True))

    def next_step(
        self, experiment: Experiment, at: Any = None, *, epoch: int | None = None
    ) -> Experiment:
        """``experiment`` with one more allocation step: this policy's weights for the next
        epoch, rounded to the experiment's buckets by its largest-remainder apportionment,
        effective ``at`` (default: now). The epoch is the new step's index in the history
        (``len(experiment.steps)``) unless given; the cap applies against the current step."""
        allocation.check_experiment(experiment, self._arms)
        e = len(experiment.steps) if epoch is None else epoch
        current = experiment.weights
        w = self.weights(epoch=e, previous={a: current[a] / 100 for a in self._arms})
        return allocation.next_step(experiment, w, at)

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
        return floats(out, what)

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

    # constructor arguments that to_dict writes beside the policy's own ``params``
    _described: ClassVar[tuple[str, ...]] = ("floor", "max_change", "seed", "draws")

    @classmethod
    def _rebuild(cls, d: Mapping[str, Any]) -> Self:
        policy = cls._construct(d)
        stats = d.get("stats", {})
        if not isinstance(stats, Mapping):
            raise ConfigError("stats must be a mapping of arm -> {count, sum, m2}")
        policy.update_aggregates(stats)
        return policy

    @classmethod
    def _construct(cls, d: Mapping[str, Any]) -> Self:
        """The policy of a description, before its statistics."""
        described = {k: d[k] for k in cls._described if k in d}
        return cls(d["arms"], **described, **dict(d.get("params", {})))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Policy):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    # Equal policies are not interchangeable keys: they change with every update.
    __hash__ = None  # type: ignore[assignment]  # typeshed declares __hash__ a method

    # -- display ---------------------------------------------------------------------------------

    def _posterior_cells(self) -> list[str]:
        """Each arm's posterior as text ('' for policies without one)."""
        return [""] * len(self._arms)

    def _target_label(self) -> str:
        return "target"

    def _title(self) -> str:
        arms = [_display.shorten(a, 20) for a in self._arms[:8]]
        more = f", ... {len(self._arms) - 8} more" if len(self._arms) > 8 else ""
        listed = ", ".join(repr(a) for a in arms) + more
        n = sum(int(d["count"]) for d in self._sums().values())
        return (
            f"{type(self).__name__}([{listed}], floor={self._floor:g}, seed={self._seed}): "
            f"{n:,} observations"
        )

    def _rows(self) -> list[tuple[Any, ...]]:
        stats = self.stats
        target = self.target()
        weights = self.weights()
        posterior = self._posterior_cells()
        return [
            (
                arm,
                int(stats[arm]["count"]),
                stats[arm]["mean"],
                posterior[i],
                _display.percent(target[arm]),
                _display.percent(weights[arm]),
            )
            for i, arm in enumerate(self._arms)
        ]

    def _header(self) -> tuple[str, ...]:
        return ("arm", "count", "mean", "posterior", self._target_label(), "weight")

    def __repr__(self) -> str:
        """One line, then per arm: observations, mean reward, posterior, what the policy asks
        for (P(best) for Thompson sampling) and the weight after the floor, for epoch 0."""
        rows = self._rows()
        header = self._header()
        if not any(r[3] for r in rows):  # no posterior to show
            header = header[:3] + header[4:]
            rows = [r[:3] + r[4:] for r in rows]
        return f"{self._title()}\n{_display.text_table(header, rows)}"

    def _repr_html_(self) -> str:
        rows = self._rows()
        bar = _display.bar(list(self.weights().items()))
        return _display.block(
            self._title(),
            _display.Html("<p>Weights as <code>weights(epoch=0)</code> draws them:</p>"),
            bar,
            _display.legend([r[0] for r in rows]),
            _display.html_table(self._header(), rows),
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

    def _posterior_cells(self) -> list[str]:
        return [f"Beta({a:.4g}, {b:.4g})" for a, b in self.posterior().values()]

    def _target_label(self) -> str:
        return "P(best)"


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

    def _posterior_cells(self) -> list[str]:
        return [f"t({m:.4g}, {sc:.3g}, {d:.4g})" for m, sc, d in self.posterior().values()]

    def _target_label(self) -> str:
        return "P(best)"


class UCB1(Policy):
    """UCB1 (Auer, Cesa-Bianchi & Fischer 2002): index = mean + c * sqrt(2 ln N / n). The
    epoch's allocation puts all weight on the largest index (ties split evenly; untried arms
    first), then the floor and cap. Rewards are assumed in [0, 1]; scale ``c`` otherwise."""

    kind = "ucb1"

    _described = ("floor", "max_change")

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

    _described = ("floor", "max_change")

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

    @classmethod
    def _construct(cls, d: Mapping[str, Any]) -> Self:
        return cls(d["arms"], d.get("weights"))
