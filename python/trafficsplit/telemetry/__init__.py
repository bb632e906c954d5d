"""What a service records about its decisions (docs/telemetry.md): exposure records, their
sinks and the background logger that writes them; guardrail metrics per arm
(:class:`MetricsRecorder`); arms carried across services (:mod:`.propagation`) and the
middleware that reads them; shadow traffic (:mod:`.shadow`).

Records, sinks and the logger are on the serving path and load with the package; the metrics
recorder loads on first use (it brings the statistics package).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .logger import ExposureCounters, ExposureLogger, SetAside
from .records import EXPOSURE_FIELDS, ExposureBatch, ExposureRecord, exposure_schema
from .sinks import (
    CallableSink,
    ExposureSink,
    JsonlSink,
    LoggingSink,
    OpenTelemetrySink,
    ParquetSink,
    WriteReport,
    read_exposures,
)

if TYPE_CHECKING:
    from .metrics import MetricsRecorder


def __getattr__(name: str) -> Any:
    if name == "MetricsRecorder":
        from .metrics import MetricsRecorder

        globals()[name] = MetricsRecorder  # later lookups skip __getattr__
        return MetricsRecorder
    raise AttributeError(f"module 'trafficsplit.telemetry' has no attribute {name!r}")


__all__ = [
    "EXPOSURE_FIELDS",
    "CallableSink",
    "ExposureBatch",
    "ExposureCounters",
    "ExposureLogger",
    "ExposureRecord",
    "ExposureSink",
    "JsonlSink",
    "LoggingSink",
    "MetricsRecorder",
    "OpenTelemetrySink",
    "ParquetSink",
    "SetAside",
    "WriteReport",
    "exposure_schema",
    "read_exposures",
]
