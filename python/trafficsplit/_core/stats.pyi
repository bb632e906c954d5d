from collections.abc import Sequence

def chi2_sf(x: float, df: float) -> float: ...
def srm_chi_square(
    counts: Sequence[float], weights: Sequence[float]
) -> tuple[float, float, int, list[float]]: ...

# --- moments (grouped sufficient statistics) -------------------------------------------------



# --- tests, intervals, power, Bayesian, multiple comparisons ----------------------------------



# --- sequential designs and always-valid inference --------------------------------------------


