"""Group-sequential designs: efficacy bounds from alpha spending or classic boundary families,
decisions at planned and unplanned looks, power and the sample-size inflation factor.
Always-valid inference for continuous monitoring is in ``_always_valid.py``.

Conventions (the ldbounds / gsDesign / rpact ones): ``alpha`` is the one-sided level of one
boundary. A one-sided design (``sides=1``) has level ``alpha``; a symmetric two-sided design
(``sides=2``) spends ``alpha`` on each side, so its total level is ``2 * alpha``
(:attr:`GroupSequential.total_alpha`). ``GroupSequential(5, alpha=0.025, sides=2)`` is the usual
"two-sided 5 %" design with bounds 4.877, 3.357, 2.680, 2.290, 2.031. The formulas, the grid and
the sources are in ``docs/statistics-sequential.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _display
from .._core import stats as _stats
from ..errors import ArgumentError
from ._results import check_level, float_array

__all__ = ["GroupSequential", "SequentialDecision"]

#: Spending functions (Lan–DeMets) and their parameter keyword.
SPENDING_FUNCTIONS = ("obrien-fleming", "pocock", "hsd", "kim-demets")
#: Boundaries fixed for the planned looks (no unplanned looks).
CLASSIC_BOUNDARIES = (
    "classic-obrien-fleming",
    "classic-pocock",
    "wang-tsiatis",
    "haybittle-peto",
    "user",
)
_ALIASES = {"power": "kim-demets", "hwang-shih-decani": "hsd", "of": "obrien-fleming"}

DEFAULT_GRID = 18


@dataclass(frozen=True, eq=False)
class SequentialDecision:
    """What a group-sequential design says about the looks observed so far.

    Arrays have one entry per look. ``boundaries`` are the z bounds used at each look (computed
    for the observed information fractions); ``alpha_spent`` is the cumulative alpha per side.
    ``nominal_pvalue`` is the fixed-sample p-value of each ``z`` and ``nominal_alpha`` the level
    its bound corresponds to, both on the scale of the test (two-sided values when
    ``sides == 2``), so a look rejects exactly when ``nominal_pvalue <= nominal_alpha``.
    ``look`` is the index (0-based) of the first look that crossed its bound, or of the last
    look when none did; ``reject`` says whether one did; ``stop`` is true after a rejection or at
    the final look (information fraction >= 1); ``direction`` is +1 (upper), -1 (lower) or 0.
    """

    z: np.ndarray
    information: np.ndarray
    boundaries: np.ndarray
    alpha_spent: np.ndarray
    nominal_alpha: np.ndarray
    nominal_pvalue: np.ndarray
    look: int
    reject: bool
    stop: bool
    final: bool
    direction: int
    sides: int
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (lists for the arrays), e.g. for JSON."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            out[name] = v.tolist() if isinstance(v, np.ndarray) else v
        return out

    def _verdict(self) -> str:
        look = self.look + 1
        if self.reject:
            side = {1: "upper", -1: "lower"}.get(self.direction, "")
            return f"reject at look {look} (z crossed the {side} bound); stop"
        if self.final:
            return f"no rejection at the final look ({look}); stop"
        return f"continue: no bound crossed in {look} look{'s' if look != 1 else ''}"

    def _rows(self) -> list[tuple[Any, ...]]:
        return [
            (
                i + 1,
                float(self.information[i]),
                f"{self.z[i]:.4f}",
                f"{self.boundaries[i]:.4f}",
                float(self.nominal_pvalue[i]),
                float(self.nominal_alpha[i]),
                float(self.alpha_spent[i]),
            )
            for i in range(len(self.z))
        ]

    _HEADER = ("look", "information", "z", "bound", "nominal p", "nominal alpha", "alpha spent")

    def __repr__(self) -> str:
        """The verdict, then per look: information, z, the bound, the nominal p-value and the
        level of its bound, and the alpha spent."""
        title = f"SequentialDecision: {self._verdict()}"
        return f"{title}\n{_display.text_table(self._HEADER, self._rows())}"

    def _repr_html_(self) -> str:
        chart = _boundary_chart(self.information, self.boundaries, self.sides, self.z)
        table = _display.html_table(
            self._HEADER,
            self._rows(),
            bold=[self.reject and i == self.look for i in range(len(self.z))],
        )
        return _display.block(f"Sequential decision: {self._verdict()}", chart, table)


class GroupSequential:
    """A group-sequential design: efficacy bounds on the z scale for ``looks`` analyses.

    ``spending`` picks the boundary family:

    - Lan–DeMets spending functions, which also give bounds at looks not planned in advance
      (see :meth:`decide`): ``"obrien-fleming"`` (2 - 2 Phi(z_{1-alpha/2} / sqrt(t))),
      ``"pocock"`` (alpha ln(1 + (e - 1) t)), ``"hsd"`` (Hwang–Shih–DeCani, needs ``gamma``:
      alpha (1 - e^{-gamma t}) / (1 - e^{-gamma})) and ``"kim-demets"`` (alias ``"power"``:
      alpha t^rho, ``rho`` defaults to 2);
    - classic boundaries for the planned looks only: ``"classic-obrien-fleming"`` and
      ``"classic-pocock"`` (Wang–Tsiatis ``C t^(shape - 1/2)`` with shape 0 and 1/2,
      ``"wang-tsiatis"`` with ``shape``), ``"haybittle-peto"`` (``interim_bound`` at every
      interim, the final bound spending the rest) and ``"user"`` (``cumulative_alpha`` per look).

    ``alpha`` is the one-sided level per boundary: ``sides=2`` gives a symmetric two-sided test
    of total level ``2 * alpha`` (:attr:`total_alpha`). ``timing`` holds the planned information
    fractions (default ``k / looks``); ``grid`` is the grid parameter r of the numerical
    integration (about 12r points per look; 18 as in gsDesign).

    >>> design = GroupSequential(5, alpha=0.025, sides=2)
    >>> design.boundaries().round(3).tolist()
    [4.877, 3.357, 2.68, 2.29, 2.031]
    >>> design.total_alpha
    0.05
    """

    def __init__(
        self,
        looks: int,
        alpha: float = 0.025,
        sides: int = 1,
        spending: str = "obrien-fleming",
        timing: Sequence[float] | np.ndarray | None = None,
        gamma: float | None = None,
        *,
        rho: float | None = None,
        shape: float | None = None,
        interim_bound: float = 3.0,
        cumulative_alpha: Sequence[float] | np.ndarray | None = None,
        grid: int = DEFAULT_GRID,
    ) -> None:
        if isinstance(looks, bool) or not isinstance(looks, (int, np.integer)) or looks < 1:
            raise ArgumentError(f"GroupSequential: looks must be an integer >= 1, got {looks!r}")
        self._looks = int(looks)
        self._alpha = check_level(alpha, "GroupSequential")
        if isinstance(sides, bool) or sides not in (1, 2):
            raise ArgumentError(f"GroupSequential: sides must be 1 or 2, got {sides!r}")
        self._sides = int(sides)
        if not isinstance(spending, str):
            raise ArgumentError(f"GroupSequential: spending must be a name, got {spending!r}")
        name = _ALIASES.get(spending.lower(), spending.lower())
        if name not in SPENDING_FUNCTIONS + CLASSIC_BOUNDARIES:
            raise ArgumentError(
                f"GroupSequential: unknown spending {spending!r}; expected one of "
                f"{', '.join(SPENDING_FUNCTIONS + CLASSIC_BOUNDARIES)}"
            )
        self._spending = name
        if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 1:
            raise ArgumentError(f"GroupSequential: grid must be an integer >= 1, got {grid!r}")
        self._grid = int(grid)
        if timing is None:
            self._timing = np.arange(1, self._looks + 1, dtype=np.float64) / self._looks
        else:
            self._timing = float_array(timing, "GroupSequential: timing")
            if self._timing.size != self._looks:
                raise ArgumentError(
                    f"GroupSequential: timing has {self._timing.size} fractions for "
                    f"{self._looks} looks"
                )
            # n_k / N computed in floating point may end a hair above 1.
            self._timing[(self._timing > 1) & (self._timing <= 1 + 1e-9)] = 1.0
            if not np.all(np.isfinite(self._timing)) or not (
                np.all(self._timing > 0) and np.all(self._timing <= 1)
            ):
                raise ArgumentError(
                    f"GroupSequential: timing must be fractions in (0, 1], got "
                    f"{self._timing.tolist()}"
                )
            if np.any(np.diff(self._timing) <= 0):
                raise ArgumentError(
                    f"GroupSequential: timing must be strictly increasing, got "
                    f"{self._timing.tolist()}"
                )
        self._parameter = 0.0
        self._gamma = None if gamma is None else float(gamma)
        self._rho: float | None = None
        self._shape: float | None = None
        self._interim_bound: float | None = None
        self._cumulative: np.ndarray | None = None
        if name == "hsd":
            if gamma is None:
                raise ArgumentError("GroupSequential: spending='hsd' needs gamma (e.g. -4)")
            self._parameter = float(gamma)
        elif gamma is not None:
            raise ArgumentError(f"GroupSequential: gamma applies to spending='hsd', not {name!r}")
        if name == "kim-demets":
            self._rho = 2.0 if rho is None else float(rho)
            self._parameter = self._rho
        elif rho is not None:
            raise ArgumentError(
                f"GroupSequential: rho applies to spending='kim-demets', not {name!r}"
            )
        if name == "wang-tsiatis":
            if shape is None:
                raise ArgumentError("GroupSequential: spending='wang-tsiatis' needs shape")
            self._shape = float(shape)
        elif name == "classic-obrien-fleming":
            self._shape = 0.0
        elif name == "classic-pocock":
            self._shape = 0.5
        elif shape is not None:
            raise ArgumentError(
                f"GroupSequential: shape applies to spending='wang-tsiatis', not {name!r}"
            )
        if name == "haybittle-peto":
            self._interim_bound = float(interim_bound)
        if name == "user":
            if cumulative_alpha is None:
                raise ArgumentError(
                    "GroupSequential: spending='user' needs cumulative_alpha (one per look)"
                )
            self._cumulative = float_array(cumulative_alpha, "cumulative_alpha")
            if self._cumulative.size != self._looks:
                raise ArgumentError(
                    f"GroupSequential: cumulative_alpha has {self._cumulative.size} values for "
                    f"{self._looks} looks"
                )
        elif cumulative_alpha is not None:
            raise ArgumentError("GroupSequential: cumulative_alpha applies to spending='user'")
        self._bounds, self._spent, self._nominal = self._compute(self._timing)

    # -- construction helpers ------------------------------------------------------------------
    def _compute(self, fractions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = fractions.tolist()
        name = self._spending
        if name in SPENDING_FUNCTIONS:
            b, c, n = _stats.spending_boundaries(
                t, self._alpha, self._sides, name, self._parameter, self._grid
            )
        elif self._shape is not None:
            b, c, n = _stats.wang_tsiatis_boundaries(
                t, self._alpha, self._sides, self._shape, self._grid
            )
        elif name == "haybittle-peto":
            k = len(t)
            bound = self._interim_bound
            assert bound is not None  # __init__ sets it for haybittle-peto
            fixed = [bound] * (k - 1) + [math.nan]
            cum = [0.0] * (k - 1) + [self._alpha]
            b, c, n = _stats.cumulative_alpha_boundaries(t, cum, self._sides, self._grid, fixed)
            if k > 1 and c[-2] >= self._alpha:
                raise ArgumentError(
                    f"GroupSequential: interim bound {bound} spends "
                    f"{c[-2]:.6g} >= alpha {self._alpha} before the final look"
                )
        else:
            assert self._cumulative is not None
            if abs(self._cumulative[-1] - self._alpha) > 1e-12:
                raise ArgumentError(
                    f"GroupSequential: cumulative_alpha must end at alpha={self._alpha}, got "
                    f"{self._cumulative[-1]!r}"
                )
            b, c, n = _stats.cumulative_alpha_boundaries(
                t, self._cumulative.tolist(), self._sides, self._grid
            )
        return np.asarray(b), np.asarray(c), np.asarray(n)

    # -- the design ----------------------------------------------------------------------------
    @property
    def looks(self) -> int:
        return self._looks

    @property
    def alpha(self) -> float:
        """One-sided level per boundary side."""
        return self._alpha

    @property
    def sides(self) -> int:
        return self._sides

    @property
    def total_alpha(self) -> float:
        """Total type I error: ``alpha`` one-sided, ``2 * alpha`` for a symmetric two-sided test."""
        return self._alpha * self._sides

    @property
    def spending(self) -> str:
        return self._spending

    @property
    def timing(self) -> np.ndarray:
        """Planned information fractions."""
        return self._timing.copy()

    @property
    def gamma(self) -> float | None:
        return self._gamma

    @property
    def rho(self) -> float | None:
        return self._rho

    @property
    def spends_alpha(self) -> bool:
        """True for Lan–DeMets spending functions, which allow unplanned looks."""
        return self._spending in SPENDING_FUNCTIONS

    def boundaries(self) -> np.ndarray:
        """z-scale efficacy bounds at the planned looks (reject when z >= b, or |z| >= b)."""
        return self._bounds.copy()

    def alpha_spent(self, total: bool = False) -> np.ndarray:
        """Cumulative alpha spent up to each planned look, per side (``total=True``: times
        ``sides``)."""
        return self._spent * (self._sides if total else 1)

    def nominal_alpha(self, total: bool = False) -> np.ndarray:
        """Per-look nominal level ``1 - Phi(b_k)`` per side (``total=True``: times ``sides``):
        the fixed-sample p-value that the bound corresponds to."""
        return self._nominal * (self._sides if total else 1)

    def spending_function(self, t: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """Cumulative alpha per side that the spending function allows at fractions ``t``."""
        if not self.spends_alpha:
            raise ArgumentError(f"GroupSequential: {self._spending!r} has no spending function")
        return _stats.spending_cumulative(
            self._spending, self._parameter, float_array(t, "t").tolist(), self._alpha
        )

    def boundaries_at(self, information: Sequence[float] | np.ndarray) -> np.ndarray:
        """Bounds for looks at the given (strictly increasing) information fractions, spending
        alpha(t) at each; the last fraction may exceed 1 (final look, spends the rest)."""
        if not self.spends_alpha:
            raise ArgumentError(
                f"GroupSequential: {self._spending!r} bounds exist only at the planned looks"
            )
        return self._compute(float_array(information, "information"))[0]

    def decide(
        self,
        z: Sequence[float] | np.ndarray,
        information: Sequence[float] | np.ndarray | None = None,
        *,
        max_information: float | None = None,
    ) -> SequentialDecision:
        """Decision after the looks so far: ``z`` are the observed z statistics (treatment minus
        control over its standard error) and ``information`` the matching information fractions
        (default: the planned ones). With ``max_information`` the information is absolute
        (e.g. ``1 / se**2``) and divided by it.

        Fractions may differ from the plan: the bounds are recomputed for the observed fractions,
        spending alpha(t) at each observed t. A fraction >= 1 is the final look and spends the
        rest; a repeated fraction reuses the previous bound. Classic boundaries accept only the
        planned fractions.
        """
        zs = float_array(z, "decide: z")
        if zs.size == 0:
            raise ArgumentError("decide: no looks (z is empty)")
        if information is None:
            if zs.size > self._looks:
                raise ArgumentError(
                    f"decide: {zs.size} z statistics for a design of {self._looks} looks; "
                    "pass information for looks beyond the plan"
                )
            info = self._timing[: zs.size].copy()
        else:
            info = float_array(information, "decide: information")
        if max_information is not None:
            if not float(max_information) > 0:
                raise ArgumentError(f"decide: max_information must be > 0, got {max_information!r}")
            info = info / float(max_information)
        if info.size != zs.size:
            raise ArgumentError(
                f"decide: {zs.size} z statistics but {info.size} information fractions"
            )
        if self.spends_alpha:
            b, spent, nominal, pvalue, crossed, direction, final = _stats.sequential_decide(
                zs.tolist(),
                info.tolist(),
                self._alpha,
                self._sides,
                self._spending,
                self._parameter,
                self._grid,
            )
            bounds, spent, nominal = np.asarray(b), np.asarray(spent), np.asarray(nominal)
        else:
            k = info.size
            if k > self._looks or not np.allclose(info, self._timing[:k], rtol=0, atol=1e-9):
                raise ArgumentError(
                    f"decide: {self._spending!r} bounds exist only at the planned fractions "
                    f"{self._timing.tolist()}; use a spending function for unplanned looks"
                )
            bounds, spent, nominal = self._bounds[:k], self._spent[:k], self._nominal[:k]
            pvalue, crossed, direction = _stats.sequential_crossing(
                zs.tolist(), bounds.tolist(), self._sides
            )
            final = bool(k == self._looks)
        reject = crossed >= 0
        return SequentialDecision(
            z=zs,
            information=info,
            boundaries=bounds,
            alpha_spent=spent,
            nominal_alpha=nominal * self._sides,
            nominal_pvalue=np.asarray(pvalue),
            look=int(crossed) if reject else int(zs.size - 1),
            reject=bool(reject),
            stop=bool(reject or final),
            final=bool(final),
            direction=int(direction),
            sides=self._sides,
            alpha=self._alpha,
        )

    # -- power -----------------------------------------------------------------------------------
    def power(self, drift: float) -> float:
        """Probability of crossing an upper bound when E[Z_k] = drift * sqrt(t_k) (drift is the
        expected z at full information)."""
        up, _ = self.crossing_probabilities(drift)
        return float(np.sum(up))

    def crossing_probabilities(self, drift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Per-look probabilities of stopping at that look by crossing the upper bound and the
        lower one (zeros when one-sided) when E[Z_k] = drift * sqrt(t_k)."""
        up, low = _stats.crossing_probabilities(
            self._timing.tolist(), self._bounds.tolist(), self._sides, float(drift), self._grid
        )
        return np.asarray(up), np.asarray(low)

    def expected_information(self, drift: float = 0.0) -> float:
        """Expected information fraction at stopping (the average sample size as a fraction
        of the maximum) when the design stops at the first crossing."""
        up, low = self.crossing_probabilities(drift)
        stop = (up + low)[:-1]
        t = self._timing
        return float(np.sum(stop * t[:-1]) + (1.0 - np.sum(stop)) * t[-1])

    def drift(self, power: float = 0.8) -> float:
        """The drift (expected z at full information) at which :meth:`power` is ``power``."""
        return float(
            _stats.drift_for_power(
                self._timing.tolist(), self._bounds.tolist(), self._sides, power, self._grid
            )
        )

    def inflation(self, power: float = 0.8) -> float:
        """Maximum-information inflation I_max / I_fixed for ``power``: the design reaches
        ``power`` at drift theta, the fixed-sample test (one-sided level ``alpha``) at
        z_{1-alpha} + z_{power}, and the ratio is (theta / (z_{1-alpha} + z_{power}))^2.
        Multiply a fixed-sample size by it to get the design's maximum sample size."""
        return float(
            _stats.inflation_factor(
                self._timing.tolist(),
                self._bounds.tolist(),
                self._alpha,
                self._sides,
                power,
                self._grid,
            )
        )

    # -- presentation --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The design and its bounds as plain Python values."""
        return {
            "looks": self._looks,
            "alpha": self._alpha,
            "sides": self._sides,
            "total_alpha": self.total_alpha,
            "spending": self._spending,
            "gamma": self._gamma,
            "rho": self._rho,
            "shape": self._shape,
            "interim_bound": self._interim_bound,
            "timing": self._timing.tolist(),
            "boundaries": self._bounds.tolist(),
            "alpha_spent": self._spent.tolist(),
            "nominal_alpha": self._nominal.tolist(),
            "grid": self._grid,
        }

    def _title(self) -> str:
        extra = ""
        if self._gamma is not None:
            extra += f", gamma={self._gamma:g}"
        if self._rho is not None:
            extra += f", rho={self._rho:g}"
        if self._spending == "wang-tsiatis":
            extra += f", shape={self._shape:g}"
        return (
            f"GroupSequential(looks={self._looks}, alpha={self._alpha:g}, sides={self._sides}, "
            f"spending={self._spending!r}{extra}): total alpha {self.total_alpha:g}"
        )

    _HEADER = ("look", "information", "bound", "nominal alpha", "alpha spent")

    def _rows(self) -> list[tuple[Any, ...]]:
        nominal = self._nominal * self._sides
        return [
            (
                i + 1,
                float(self._timing[i]),
                f"{self._bounds[i]:.4f}",
                float(nominal[i]),
                float(self._spent[i]),
            )
            for i in range(self._looks)
        ]

    def __repr__(self) -> str:
        """The design on one line, then the boundary table: per look the information
        fraction, the z bound, the level of the bound on the test's scale and the alpha spent
        (cumulative, per side)."""
        return f"{self._title()}\n{_display.text_table(self._HEADER, self._rows())}"

    def _repr_html_(self) -> str:
        chart = _boundary_chart(self._timing, self._bounds, self._sides)
        table = _display.html_table(self._HEADER, self._rows())
        return _display.block(self._title(), chart, table)


def _boundary_chart(
    information: np.ndarray, bounds: np.ndarray, sides: int, z: np.ndarray | None = None
) -> _display.Html:
    """The bounds (and the lower ones of a two-sided design, and an observed z path) over the
    information fraction, as inline SVG."""
    series: list[tuple[str, Sequence[float]]] = [("efficacy bound", bounds.tolist())]
    if sides == 2:
        series.append(("lower bound", (-bounds).tolist()))
    if z is not None:
        series.append(("observed z", z.tolist()))
    return _display.line_chart(
        information.tolist(), series, x_label="information fraction", y_label="z"
    )
