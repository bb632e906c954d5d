from collections.abc import Sequence

import numpy as np

from . import _Pybind11Type

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

class TestStat(metaclass=_Pybind11Type):
    """A test's outcome. df is inf for the normal reference; bounded is False when Fieller's
    interval is unbounded (its ends are then infinite)."""

    @property
    def estimate(self) -> float: ...
    @property
    def se(self) -> float: ...
    @property
    def statistic(self) -> float: ...
    @property
    def df(self) -> float: ...
    @property
    def pvalue(self) -> float: ...
    @property
    def ci_low(self) -> float: ...
    @property
    def ci_high(self) -> float: ...
    @property
    def bounded(self) -> bool: ...

class CupedStat(metaclass=_Pybind11Type):
    """CUPED: the adjusted and unadjusted tests, theta and the variance reduction."""

    @property
    def adjusted(self) -> TestStat: ...
    @property
    def unadjusted(self) -> TestStat: ...
    @property
    def theta(self) -> float: ...
    @property
    def variance_reduction(self) -> float: ...

class NormalPosterior(metaclass=_Pybind11Type):
    """The Gaussian posterior of an effect."""

    @property
    def mean(self) -> float: ...
    @property
    def sd(self) -> float: ...
    @property
    def prob_positive(self) -> float: ...
    @property
    def loss_treatment(self) -> float: ...
    @property
    def loss_control(self) -> float: ...
    @property
    def ci_low(self) -> float: ...
    @property
    def ci_high(self) -> float: ...

# Ratio summaries: (n, mean_num, mean_den, var_num, var_den, cov);
# CUPED summaries: (n, mean_y, mean_x, var_y, var_x, cov_xy).
_Six = tuple[float, float, float, float, float, float]

def welch_ttest(
    n_c: float,
    mean_c: float,
    var_c: float,
    n_t: float,
    mean_t: float,
    var_t: float,
    alpha: float,
    alternative: str,
    null: float,
) -> TestStat: ...
def ztest_means(
    n_c: float,
    mean_c: float,
    var_c: float,
    n_t: float,
    mean_t: float,
    var_t: float,
    alpha: float,
    alternative: str,
    null: float,
) -> TestStat: ...
def proportions_ztest(
    successes_c: float,
    trials_c: float,
    successes_t: float,
    trials_t: float,
    pooled: bool,
    alpha: float,
    alternative: str,
    null: float,
) -> TestStat: ...
def relative_lift(
    n_c: float,
    mean_c: float,
    var_c: float,
    n_t: float,
    mean_t: float,
    var_t: float,
    alpha: float,
    method: str,
    alternative: str,
    use_t: bool,
    null: float,
) -> TestStat: ...
def ratio_metric(summary: _Six) -> tuple[float, float]: ...
def ratio_test(
    control: _Six, treatment: _Six, relative: bool, alpha: float, alternative: str
) -> TestStat: ...
def cuped(
    control: _Six, treatment: _Six, alpha: float, relative: bool, alternative: str
) -> CupedStat: ...
def adjust_pvalues(pvalues: Sequence[float], method: str) -> list[float]: ...
def sample_size_proportions(
    baseline: float, diff: float, alpha: float, power: float, sides: int, ratio: float
) -> tuple[float, float]: ...
def sample_size_means(
    sd: float, diff: float, alpha: float, power: float, sides: int, ratio: float
) -> tuple[float, float]: ...
def power_proportions(
    baseline: float, diff: float, n_control: float, alpha: float, sides: int, ratio: float
) -> float: ...
def power_means(
    sd: float, diff: float, n_control: float, alpha: float, sides: int, ratio: float
) -> float: ...
def mde_proportions(
    baseline: float, n_control: float, alpha: float, power: float, sides: int, ratio: float
) -> float: ...
def mde_means(
    sd: float, n_control: float, alpha: float, power: float, sides: int, ratio: float
) -> float: ...
def beta_prob_greater(
    a_t: float, b_t: float, a_c: float, b_c: float, method: str = "auto"
) -> float: ...
def beta_prob_best(arms: Sequence[tuple[float, float]]) -> list[float]: ...
def beta_expected_loss(a_t: float, b_t: float, a_c: float, b_c: float) -> tuple[float, float]: ...
def beta_interval(a: float, b: float, alpha: float) -> tuple[float, float]: ...
def normal_effect_posterior(
    estimate: float, se: float, prior_mean: float, prior_sd: float, alpha: float
) -> NormalPosterior: ...

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
