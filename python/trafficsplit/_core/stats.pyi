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


