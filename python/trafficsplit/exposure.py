"""Re-exports the exposure records, sinks and logger of :mod:`trafficsplit.telemetry`."""

from .telemetry.logger import ExposureCounters, ExposureLogger
from .telemetry.records import (
    EXPOSURE_FIELDS,
    ExposureBatch,
    ExposureInfo,
    ExposureRecord,
    bulk_table,
    exposure_schema,
)
from .telemetry.sinks import (
    CallableSink,
    ExposureSink,
    JsonlSink,
    LoggingSink,
    OpenTelemetrySink,
    ParquetSink,
    read_exposures,
)

__all__ = [
    "EXPOSURE_FIELDS",
    "CallableSink",
    "ExposureBatch",
    "ExposureCounters",
    "ExposureInfo",
    "ExposureLogger",
    "ExposureRecord",
    "ExposureSink",
    "JsonlSink",
    "LoggingSink",
    "OpenTelemetrySink",
    "ParquetSink",
    "bulk_table",
    "exposure_schema",
    "read_exposures",
]
