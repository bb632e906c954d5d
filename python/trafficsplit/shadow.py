"""Re-exports :mod:`trafficsplit.telemetry.shadow`, where these names live."""

from .telemetry.shadow import Shadow, ShadowCounters, ShadowLog, ShadowRecord, compare_shadow

__all__ = ["Shadow", "ShadowCounters", "ShadowLog", "ShadowRecord", "compare_shadow"]
