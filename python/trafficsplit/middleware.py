"""Re-exports :mod:`trafficsplit.telemetry.middleware`, where these names live."""

from .telemetry.middleware import ASGIMiddleware, WSGIMiddleware

__all__ = ["ASGIMiddleware", "WSGIMiddleware"]
