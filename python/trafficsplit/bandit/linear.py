"""Contextual bandits: linear Thompson sampling over request features, and the fixed feature
encoding it reads (docs/bandits.md, "Contextual bandits")."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from .. import _display
from .._core import bandit as _bandit
from .._core import hashing as _hashing
from ..errors import ConfigError
from . import allocation
from .checks import arm_codes, check_seed, is_missing, reward_array
from .serialise import BanditPolicy

if TYPE_CHECKING:
    from ..experiment import Experiment

__all__ = ["FeatureEncoder", "LinearThompson"]


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
            given = cols.get(k)
            for level in levels:
                if given is not None:
                    out[:, j] = [not is_missing(v) and v == level for v in given]
                j += 1
        for k, (mean, sd) in self._numeric.items():
            given = cols.get(k)
            if given is not None:
                x = np.array([np.nan if is_missing(v) else float(v) for v in given], dtype=float)
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


class LinearThompson(BanditPolicy):
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
        super().__init__(arms, floor=floor, seed=seed, draws=draws)
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
        self._core = _bandit.LinearThompson(
            len(self._arms), dims, self._ridge, self._scale, self._draws, self._seed, self._floor
        )

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
        codes = arm_codes(arms, self._index)
        self._core.update(x, codes, reward_array(rewards, len(codes)))

    def probabilities(self, features: Any, epoch: int = 0) -> np.ndarray:
        """(rows x arms) probability of serving each arm to each request in ``epoch``."""
        return self._core.probabilities(self.features(features), check_seed(epoch, "epoch"))

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
        allocation.check_experiment(experiment, self._arms)
        e = len(experiment.steps) if epoch is None else epoch
        return allocation.next_step(experiment, self.weights(features, epoch=e), at)

    def coefficients(self) -> dict[str, np.ndarray]:
        """Posterior mean coefficients A^-1 b per arm."""
        theta = self._core.coefficients()
        return {a: theta[i] for i, a in enumerate(self._arms)}

    def merge(self, *others: LinearThompson) -> Self:
        """A new policy with summed statistics (same arms, features and parameters)."""
        out = self.copy()
        for o in others:
            if not isinstance(o, LinearThompson) or o._arms != self._arms or o.dims != self.dims:
                raise ConfigError("cannot merge linear policies over different arms or features")
            if (o._ridge, o._scale) != (self._ridge, self._scale):
                raise ConfigError("cannot merge linear policies with different ridge or scale")
            out._core.merge(o._core)
        return out

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

    @classmethod
    def _rebuild(cls, d: Mapping[str, Any]) -> Self:
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

    def _title(self) -> str:
        arms = ", ".join(repr(_display.shorten(a, 20)) for a in self._arms[:8])
        more = f", ... {len(self._arms) - 8} more" if len(self._arms) > 8 else ""
        counts = self._core.state()[2]
        return (
            f"LinearThompson([{arms}{more}], dims={self.dims}, seed={self._seed}): "
            f"{int(counts.sum()):,} observations; the weights depend on the request features"
        )

    def _rows(self) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        """Per arm: observations and the posterior mean coefficients (the first few)."""
        counts = self._core.state()[2]
        names = self._encoder.names if self._encoder is not None else ()
        shown = min(self.dims, 6)
        labels = [names[j] if j < len(names) else f"x{j}" for j in range(shown)]
        header = ("arm", "count", *(f"coef {n}" for n in labels))
        if self.dims > shown:
            header = (*header, "...")
        theta = self._core.coefficients()
        rows = []
        for i, arm in enumerate(self._arms):
            row: tuple[Any, ...] = (arm, int(counts[i]), *(float(v) for v in theta[i][:shown]))
            rows.append((*row, "") if self.dims > shown else row)
        return header, rows

    def __repr__(self) -> str:
        """One line, then per arm the observations and the posterior mean coefficients."""
        header, rows = self._rows()
        return f"{self._title()}\n{_display.text_table(header, rows)}"

    def _repr_html_(self) -> str:
        header, rows = self._rows()
        return _display.block(self._title(), _display.html_table(header, rows))
