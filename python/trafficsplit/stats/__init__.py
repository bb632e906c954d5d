"""Statistics for experiments: mergeable sufficient statistics, tests and intervals, power,
sequential designs, Bayesian summaries and multiple-comparison adjustments.

Every function takes raw arrays or :class:`Moments`; heavy work runs in the C++ core.
"""

from __future__ import annotations

from ._always_valid import *  # noqa: F403
from ._always_valid import __all__ as _always_valid_all
from ._bayes import *  # noqa: F403
from ._bayes import __all__ as _bayes_all
from ._moments import *  # noqa: F403
from ._moments import __all__ as _moments_all
from ._multiple import *  # noqa: F403
from ._multiple import __all__ as _multiple_all
from ._power import *  # noqa: F403
from ._power import __all__ as _power_all
from ._results import *  # noqa: F403
from ._results import __all__ as _results_all
from ._sequential import *  # noqa: F403
from ._sequential import __all__ as _sequential_all
from ._srm import *  # noqa: F403
from ._srm import __all__ as _srm_all
from ._tests import *  # noqa: F403
from ._tests import __all__ as _tests_all

__all__ = [
    *_always_valid_all,
    *_bayes_all,
    *_moments_all,
    *_multiple_all,
    *_power_all,
    *_results_all,
    *_sequential_all,
    *_srm_all,
    *_tests_all,
]
