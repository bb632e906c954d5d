"""Carrying arms across services in request headers, so that every service a request touches
serves the arm the first one chose (docs/telemetry.md, "Propagation").

Two headers carry the same decisions:

- W3C ``baggage`` members ``trafficsplit.<experiment>=<arm>;v=<bucket version>``, merged with
  whatever baggage the request already carries and kept within the W3C limits (64 members,
  8192 bytes: whole members are left out beyond them, never cut);
- ``X-Experiment-ID: ranker-v2=treatment;v=3,search-ui=control;v=1``.

Experiment keys and arm names are percent-encoded (UTF-8) wherever they hold a character
other than letters, digits and ``!#$&'*+-.^_`|~``.

>>> import trafficsplit as ts
>>> sp = ts.Splitter({"experiments": [{"key": "ranker-v2", "arms": {"control": 0, "b": 100}}]})
>>> h = to_headers(sp.assign_all("user-1"), versions=sp)
>>> h["X-Experiment-ID"]
'ranker-v2=b;v=1'
>>> from_headers(h)["ranker-v2"]
Propagated(experiment='ranker-v2', arm='b', version=1)
"""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

__all__ = [
    "BAGGAGE_MAX_BYTES",
    "BAGGAGE_MAX_MEMBERS",
    "BAGGAGE_PREFIX",
    "EXPERIMENT_HEADER",
    "Propagated",
    "PropagationContext",
    "RequestContext",
    "current",
    "from_headers",
    "outgoing_headers",
    "to_headers",
    "use",
]

log = logging.getLogger("trafficsplit")

BAGGAGE_PREFIX = "trafficsplit."
"""Baggage keys of trafficsplit members: the prefix, then the (encoded) experiment key."""
BAGGAGE_MAX_MEMBERS = 64
BAGGAGE_MAX_BYTES = 8192
EXPERIMENT_HEADER = "X-Experiment-ID"

# RFC 7230 tchar without "%", which is the escape itself.
_SAFE = "!#$&'*+-.^_`|~"
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


@dataclass(frozen=True)
class Propagated:
    """An arm decided upstream (or here) for one experiment; ``version`` is the experiment's
    bucket version when known."""

    experiment: str
    arm: str
    version: int | None = None


class PropagationContext(Mapping[str, Propagated]):
    """Upstream decisions by experiment key, and the request id (``X-Request-ID``, else the
    trace id of ``traceparent``). Pass it as ``Splitter.assign(..., context=...)``."""

    __slots__ = ("_arms", "request_id")

    def __init__(
        self, arms: Mapping[str, Propagated] | None = None, request_id: str | None = None
    ) -> None:
        self._arms = dict(arms or {})
        self.request_id = request_id

    def __getitem__(self, key: str) -> Propagated:
        return self._arms[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arms)

    def __len__(self) -> int:
        return len(self._arms)

    def __repr__(self) -> str:
        arms = ", ".join(f"{k}={p.arm}" for k, p in self._arms.items())
        return f"PropagationContext({arms}, request_id={self.request_id!r})"


@dataclass
class RequestContext:
    """The state of one request in a service: what came in, and what this service decided
    (so the middleware can send it on). Set by the middleware or :func:`use`."""

    incoming: PropagationContext = field(default_factory=PropagationContext)
    decided: dict[str, Propagated] = field(default_factory=dict)
    baggage: str | None = None  # the incoming baggage, passed on with our members merged in

    @property
    def request_id(self) -> str | None:
        return self.incoming.request_id

    def arms(self) -> dict[str, Propagated]:
        """Incoming decisions overlaid by this service's own."""
        return {**dict(self.incoming), **self.decided}


_CURRENT: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "trafficsplit_request", default=None
)


def current() -> RequestContext | None:
    """The request context of the running request, if a middleware (or :func:`use`) set one."""
    return _CURRENT.get()


@contextmanager
def use(context: RequestContext | PropagationContext | None = None) -> Iterator[RequestContext]:
    """Makes a request context current for the ``with`` block (for consumers of queues and
    other non-HTTP entry points)."""
    if context is None:
        context = RequestContext()
    elif isinstance(context, PropagationContext):
        context = RequestContext(context)
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


def outgoing_headers() -> dict[str, str]:
    """Headers to put on calls to downstream services from the running request."""
    req = _CURRENT.get()
    if req is None:
        return {}
    return to_headers(req.arms(), baggage=req.baggage)


# -- encoding --------------------------------------------------------------------------------


def _enc(text: str) -> str:
    return quote(text, safe=_SAFE)


def _dec(text: str) -> str:
    return unquote(text.strip(), errors="replace")


def _version_of(versions: Any, key: str) -> int | None:
    if versions is None:
        return None
    if isinstance(versions, Mapping):
        v = versions.get(key)
        return None if v is None else int(v)
    snapshot = getattr(versions, "snapshot", versions)  # a Splitter or a Snapshot
    e = snapshot.experiments.get(key)
    return None if e is None else int(e.experiment.bucket_version)


def _decisions(assignments: Any, versions: Any) -> list[Propagated]:
    if isinstance(assignments, RequestContext):
        assignments = assignments.arms()
    items: Iterable[Any] = assignments.values() if isinstance(assignments, Mapping) else assignments
    out = []
    for a in items:
        if isinstance(a, Propagated):
            if versions is not None and a.version is None:
                a = Propagated(a.experiment, a.arm, _version_of(versions, a.experiment))
            out.append(a)
        elif getattr(a, "arm", None) is not None:
            out.append(Propagated(a.experiment, a.arm, _version_of(versions, a.experiment)))
    return out


def _member(p: Propagated, key_prefix: str) -> str:
    text = f"{key_prefix}{_enc(p.experiment)}={_enc(p.arm)}"
    return text if p.version is None else f"{text};v={p.version}"


def to_headers(
    assignments: Any, versions: Any = None, baggage: str | None = None
) -> dict[str, str]:
    """The ``baggage`` and ``X-Experiment-ID`` headers that carry these decisions.

    ``assignments``: ``Splitter.assign_all`` output, a list of Assignments, a
    :class:`PropagationContext` or :class:`RequestContext`; only those with an arm count.
    ``versions``: bucket versions by experiment key, or a Splitter/Snapshot to read them from.
    ``baggage``: baggage the request already carries; its members come first and are kept,
    except earlier trafficsplit members of the same experiments, which these replace. A member
    that would take the header beyond 64 members or 8192 bytes is left out (and logged).
    """
    decisions = _decisions(assignments, versions)
    if not decisions:
        return {}
    ours = {p.experiment for p in decisions}
    members = []
    if baggage:
        for m in _split_members(baggage):
            key = m.split("=", 1)[0].strip()
            if key.startswith(BAGGAGE_PREFIX) and _dec(key[len(BAGGAGE_PREFIX) :]) in ours:
                continue
            members.append(m)
    size = len(",".join(members))
    left_out = []
    for p in decisions:
        m = _member(p, BAGGAGE_PREFIX)
        added = len(m) + (1 if members else 0)
        if len(members) + 1 > BAGGAGE_MAX_MEMBERS or size + added > BAGGAGE_MAX_BYTES:
            left_out.append(p.experiment)
            continue
        members.append(m)
        size += added
    if left_out:
        log.warning(
            "trafficsplit: baggage is full (%d members, %d bytes); left out %s (still in %s)",
            len(members),
            size,
            ", ".join(left_out),
            EXPERIMENT_HEADER,
        )
    out = {EXPERIMENT_HEADER: ",".join(_member(p, "") for p in decisions)}
    if members:
        out["baggage"] = ",".join(members)
    return out


def _split_members(value: str) -> list[str]:
    return [m.strip() for m in value.split(",") if m.strip()]


def _parse_member(member: str) -> Propagated | None:
    head, *props = member.split(";")
    if "=" not in head:
        return None
    key, arm = head.split("=", 1)
    key, arm = _dec(key), _dec(arm)
    if not key or not arm:
        return None
    version = None
    for prop in props:
        if "=" in prop:
            name, value = prop.split("=", 1)
            if name.strip() == "v":
                try:
                    version = int(value.strip())
                except ValueError:
                    return None
    return Propagated(key, arm, version)


def _header_values(headers: Any) -> dict[str, list[str]]:
    """Lower-case header name -> every value, from a mapping, pairs (str or bytes, as ASGI
    gives them) or a message object with ``get_all`` (http.client, email)."""
    out: dict[str, list[str]] = {}
    if hasattr(headers, "get_all") and hasattr(headers, "keys"):
        pairs: Iterable[Any] = [(k, v) for k in set(headers.keys()) for v in headers.get_all(k)]
    elif isinstance(headers, Mapping):
        pairs = headers.items()
    else:
        pairs = headers
    for name, value in pairs:
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        out.setdefault(name.lower(), []).append(value)
    return out


def from_headers(headers: Any) -> PropagationContext:
    """The upstream decisions in a request's headers (``baggage`` members with the
    trafficsplit prefix and ``X-Experiment-ID``; the latter wins where both name an
    experiment). Malformed members are skipped: incoming headers never raise."""
    values = _header_values(headers)
    arms: dict[str, Propagated] = {}
    for value in values.get("baggage", []):
        for m in _split_members(value):
            if not m.startswith(BAGGAGE_PREFIX):
                continue
            p = _parse_member(m[len(BAGGAGE_PREFIX) :])
            if p is not None:
                arms[p.experiment] = p
    for value in values.get(EXPERIMENT_HEADER.lower(), []):
        for m in _split_members(value):
            p = _parse_member(m)
            if p is not None:
                arms[p.experiment] = p
    request_id = None
    rid = values.get("x-request-id")
    if rid and rid[0].strip():
        request_id = rid[0].strip()
    else:
        tp = values.get("traceparent")
        match = _TRACEPARENT.match(tp[0].strip()) if tp else None
        if match:
            request_id = match.group(1)
    return PropagationContext(arms, request_id)


def baggage_of(headers: Any) -> str | None:
    """Every ``baggage`` header of a request, combined."""
    values = _header_values(headers).get("baggage")
    return ",".join(values) if values else None
