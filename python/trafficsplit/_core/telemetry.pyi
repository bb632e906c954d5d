"""trafficsplit._core.telemetry: per-arm metric recorder."""
