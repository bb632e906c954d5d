"""Type stubs of trafficsplit's private C++ extension (import trafficsplit instead)."""

from . import assignment as assignment
from . import bandit as bandit
from . import hashing as hashing
from . import parquet as parquet
from . import stats as stats
from . import targeting as targeting
from . import telemetry as telemetry

class _Pybind11Type(type):
    """The metaclass of the extension's classes (pybind11's ``pybind11_type``)."""
