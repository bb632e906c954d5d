"""The service's Prometheus metrics, written in the text exposition format (version 0.0.4):
a latency histogram per endpoint, requests by endpoint and status, assignments by experiment
and arm, flag evaluations by flag and variant, and the configuration's reloads. Each worker
process counts its own requests (Prometheus adds the workers up by instance)."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable

__all__ = ["BUCKETS", "ServiceMetrics"]

BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
"""Upper bounds (seconds) of the latency histogram's buckets; ``+Inf`` follows."""


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in pairs) + "}"


class ServiceMetrics:
    """Counters of one service process; safe to update from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # endpoint -> (per-bucket counts, +Inf included; sum of seconds)
        self._latency: dict[str, tuple[list[int], list[float]]] = {}
        self._requests: dict[tuple[str, int], int] = {}
        self._assignments: dict[tuple[str, str], int] = {}
        self._flags: dict[tuple[str, str], int] = {}

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """One request served by ``endpoint`` with ``status`` in ``seconds``."""
        i = bisect.bisect_left(BUCKETS, seconds)
        with self._lock:
            entry = self._latency.get(endpoint)
            if entry is None:
                entry = self._latency[endpoint] = ([0] * (len(BUCKETS) + 1), [0.0])
            entry[0][i] += 1
            entry[1][0] += seconds
            key = (endpoint, status)
            self._requests[key] = self._requests.get(key, 0) + 1

    def assigned(self, experiment: str, counts: Iterable[tuple[str, int]]) -> None:
        """Units given an arm of ``experiment``: (arm, count) pairs."""
        with self._lock:
            for arm, n in counts:
                if n:
                    key = (experiment, arm)
                    self._assignments[key] = self._assignments.get(key, 0) + n

    def flag(self, key: str, variant: str) -> None:
        """One flag evaluation that gave ``variant``."""
        with self._lock:
            k = (key, variant)
            self._flags[k] = self._flags.get(k, 0) + 1

    def assignments(self) -> dict[tuple[str, str], int]:
        """Units given each (experiment, arm) so far."""
        with self._lock:
            return dict(self._assignments)

    def render(self, version: str, reloads: int, reload_errors: int) -> bytes:
        """Every metric as Prometheus text."""
        with self._lock:
            latency = {k: (list(c), s[0]) for k, (c, s) in self._latency.items()}
            requests = dict(self._requests)
            assignments = dict(self._assignments)
            flags = dict(self._flags)
        out: list[str] = []
        out.append("# HELP trafficsplit_request_duration_seconds Time to serve a request.")
        out.append("# TYPE trafficsplit_request_duration_seconds histogram")
        for endpoint, (counts, total) in sorted(latency.items()):
            running = 0
            for bound, n in zip((*BUCKETS, None), counts, strict=True):
                running += n
                le = "+Inf" if bound is None else repr(bound)
                out.append(
                    "trafficsplit_request_duration_seconds_bucket"
                    f"{_labels([('endpoint', endpoint), ('le', le)])} {running}"
                )
            labels = _labels([("endpoint", endpoint)])
            out.append(f"trafficsplit_request_duration_seconds_sum{labels} {total!r}")
            out.append(f"trafficsplit_request_duration_seconds_count{labels} {running}")
        out.append("# HELP trafficsplit_requests_total Requests served, by endpoint and status.")
        out.append("# TYPE trafficsplit_requests_total counter")
        for (endpoint, status), n in sorted(requests.items()):
            labels = _labels([("endpoint", endpoint), ("status", str(status))])
            out.append(f"trafficsplit_requests_total{labels} {n}")
        out.append(
            "# HELP trafficsplit_assignments_total Units given an arm, by experiment and arm."
        )
        out.append("# TYPE trafficsplit_assignments_total counter")
        for (experiment, arm), n in sorted(assignments.items()):
            labels = _labels([("experiment", experiment), ("arm", arm)])
            out.append(f"trafficsplit_assignments_total{labels} {n}")
        out.append("# HELP trafficsplit_flag_evaluations_total Flag evaluations, by variant.")
        out.append("# TYPE trafficsplit_flag_evaluations_total counter")
        for (key, variant), n in sorted(flags.items()):
            labels = _labels([("flag", key), ("variant", variant)])
            out.append(f"trafficsplit_flag_evaluations_total{labels} {n}")
        out.append("# HELP trafficsplit_config_reloads_total New configurations taken.")
        out.append("# TYPE trafficsplit_config_reloads_total counter")
        out.append(f"trafficsplit_config_reloads_total {reloads}")
        out.append(
            "# HELP trafficsplit_config_reload_errors_total Configurations refused on reload."
        )
        out.append("# TYPE trafficsplit_config_reload_errors_total counter")
        out.append(f"trafficsplit_config_reload_errors_total {reload_errors}")
        out.append("# HELP trafficsplit_config_info The configuration version in force.")
        out.append("# TYPE trafficsplit_config_info gauge")
        out.append(f"trafficsplit_config_info{_labels([('version', version)])} 1")
        return ("\n".join(out) + "\n").encode()
