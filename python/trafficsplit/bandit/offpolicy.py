"""Off-policy estimates: each arm's mean reward from an exposure log, weighted by the inverse
of the probability with which the arm was served (docs/bandits.md, "Off-policy estimates")."""

from __future__ import annotations

import math
import numbers
import statistics
from collections.abc import Sequence
from typing import Any

from .._core import bandit as _bandit
from .._optional import require
from ..errors import ConfigError
from .checks import arm_codes, log_arms, reward_array

__all__ = ["ipw_estimate"]


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
    names = log_arms(served, arms)
    index = {a: i for i, a in enumerate(names)}
    codes = arm_codes(served, index, column=arm)
    rewards = reward_array(cols["reward"], len(codes), column=reward)
    probs = reward_array(cols["probability"], len(codes), column=probability)
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
