from collections.abc import Sequence
from typing import Any

def chi2_sf(x: float, df: float) -> float: ...
def srm_chi_square(
    counts: Sequence[float], weights: Sequence[float]
) -> tuple[float, float, int, list[float]]: ...

# --- moments (grouped sufficient statistics) -------------------------------------------------



# --- tests, intervals, power, Bayesian, multiple comparisons ----------------------------------

# Test results are dicts with keys estimate, se, statistic, df (inf: normal reference), pvalue,
# ci_low, ci_high (float) and bounded (bool: False when Fieller's interval is unbounded).
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
) -> dict[str, Any]: ...
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
) -> dict[str, Any]: ...
def proportions_ztest(
    successes_c: float,
    trials_c: float,
    successes_t: float,
    trials_t: float,
    pooled: bool,
    alpha: float,
    alternative: str,
    null: float,
) -> dict[str, Any]: ...
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
) -> dict[str, Any]: ...
def ratio_metric(summary: _Six) -> tuple[float, float]: ...
def ratio_test(
    control: _Six, treatment: _Six, relative: bool, alpha: float, alternative: str
) -> dict[str, Any]: ...
def cuped(
    control: _Six, treatment: _Six, alpha: float, relative: bool, alternative: str
) -> dict[str, Any]: ...
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
) -> dict[str, float]: ...


# --- sequential designs and always-valid inference --------------------------------------------


