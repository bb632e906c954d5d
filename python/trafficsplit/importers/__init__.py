"""Configurations of other experimentation and flag systems as trafficsplit configurations.

``import_growthbook``, ``import_unleash`` and ``import_flagd`` take the peer's parsed JSON and
return an :class:`ImportResult`: the configuration (experiments and flags whose ``hashing`` mode
reproduces the peer's bucketing, so no unit changes arm) and an :class:`ImportProblem` for
everything that could not be translated exactly, naming the peer's path. An entry with a part that
has no exact equivalent is left out rather than translated approximately. ``trafficsplit import``
is the command over these functions ([migration.md](docs/migration.md)).
"""

from __future__ import annotations

from ._report import ImportProblem, ImportResult
from .flagd import import_flagd
from .growthbook import import_growthbook
from .unleash import import_unleash

__all__ = ["ImportProblem", "ImportResult", "import_flagd", "import_growthbook", "import_unleash"]
