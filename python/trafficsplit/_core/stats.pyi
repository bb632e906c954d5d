from collections.abc import Sequence

import numpy as np

def chi2_sf(x: float, df: float) -> float: ...
def srm_chi_square(
    counts: Sequence[float], weights: Sequence[float]
) -> tuple[float, float, int, list[float]]: ...

# --- moments (grouped sufficient statistics) -------------------------------------------------

def grouped_moments(
    codes: np.ndarray | None,
    columns: list[np.ndarray],
    groups: int,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """(n[G] int64, means[G, k], comoments[G, k, k], skipped[G] int64, rows with code < 0).

    codes: None (every row in group 0) or a 1-D contiguous int8/16/32/64 array, codes in
    [0, groups) or < 0 for a null group; columns: 1 to 16 contiguous float64/float32 arrays of
    the same length; threads: 0 for all cores."""


# --- tests, intervals, power, Bayesian, multiple comparisons ----------------------------------



# --- sequential designs and always-valid inference --------------------------------------------

from numpy.typing import NDArray  # noqa: E402

_F = NDArray[np.float64]

def spending_cumulative(
    family: str, parameter: float, fractions: Sequence[float], alpha: float
) -> _F: ...
def spending_boundaries(
    fractions: Sequence[float], alpha: float, sides: int, family: str, parameter: float, grid: int
) -> tuple[_F, _F, _F]: ...
def cumulative_alpha_boundaries(
    fractions: Sequence[float],
    cumulative_alpha: Sequence[float],
    sides: int,
    grid: int,
    fixed: Sequence[float] = ...,
) -> tuple[_F, _F, _F]: ...
def wang_tsiatis_boundaries(
    fractions: Sequence[float], alpha: float, sides: int, shape: float, grid: int
) -> tuple[_F, _F, _F]: ...
def crossing_probabilities(
    fractions: Sequence[float], upper: Sequence[float], sides: int, drift: float, grid: int
) -> tuple[_F, _F]: ...
def drift_for_power(
    fractions: Sequence[float], upper: Sequence[float], sides: int, power: float, grid: int
) -> float: ...
def inflation_factor(
    fractions: Sequence[float],
    upper: Sequence[float],
    alpha: float,
    sides: int,
    power: float,
    grid: int,
) -> float: ...
def sequential_decide(
    z: Sequence[float],
    fractions: Sequence[float],
    alpha: float,
    sides: int,
    family: str,
    parameter: float,
    grid: int,
) -> tuple[_F, _F, _F, _F, int, int, bool]: ...
def sequential_crossing(
    z: Sequence[float], bounds: Sequence[float], sides: int
) -> tuple[_F, int, int]: ...
def msprt_path(
    estimate: Sequence[float],
    variance: Sequence[float],
    tau2: Sequence[float],
    alpha: float,
    null: float,
) -> tuple[_F, _F, _F, _F, _F]: ...
def confidence_sequence_rho2(alpha: float, tuning: float, sides: int) -> float: ...
def one_sided_cs_half_width(variance: float, n: float, alpha: float, tuning: float) -> float: ...
def one_sided_cs_pvalue(
    distance: float, variance: float, n: float, alpha: float, tuning: float
) -> float: ...


