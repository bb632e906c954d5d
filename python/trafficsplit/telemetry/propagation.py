"""Carrying arms across services in request headers, so that every service a request touches
serves the arm the first one chose (docs/telemetry.md, "Propagation").

Two headers carry the same decisions:

- W3C ``baggage`` members ``trafficsplit.<experiment>=<arm>;v=<bucket version>``, merged with
  whatever baggage the request already carries and kept within the W3C limits (64 members,
  8192 bytes: whole members are left out beyond them, never cut);
- ``X-Experiment-ID: ranker-v2=treatment;v=3,search-ui=control;v=1``.

Experiment keys and arm names are percent-encoded (UTF-8) wherever they hold a character
other than letters, digits and ``!#$&'*+-.^_`|~``.

Incoming headers are input from anyone: which arms count is explicit (``trust``), and by
default none do. ``trust="signed"`` honours only members that carry an HMAC-SHA256 tag made
with a shared key over the unit, the experiment, the arm and the bucket version (``;kid=…;
sig=…``), so a tag made for one unit serves no other; ``trust="any"`` is for a service that
only a gateway which strips these headers can reach.

>>> import trafficsplit as ts
>>> sp = ts.Splitter({"experiments": [{"key": "ranker-v2", "arms": {"control": 0, "b": 100}}]})
>>> h = to_headers(sp.assign_all("user-1"), versions=sp)
>>> h["X-Experiment-ID"]
'ranker-v2=b;v=1'
>>> from_headers(h)["ranker-v2"]
Traceback (most recent call last):
...
KeyError: 'ranker-v2'
>>> from_headers(h, trust="any")["ranker-v2"]
Propagated(experiment='ranker-v2', arm='b', version=1, key_id=None, tag=None)
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args
from urllib.parse import quote, unquote

from ..errors import ConfigError

__all__ = [
    "BAGGAGE_MAX_BYTES",
    "BAGGAGE_MAX_MEMBERS",
    "BAGGAGE_PREFIX",
    "EXPERIMENT_HEADER",
    "KEYS_ENV",
    "Propagated",
    "PropagationContext",
    "PropagationKeys",
    "RequestContext",
    "Trust",
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
KEYS_ENV = "TRAFFICSPLIT_PROPAGATION_KEYS"
"""Environment variable with the propagation keys: ``id:secret[,id:secret...]``, the first
signs; a lone ``secret`` is key ``0``."""

Trust = Literal["none", "signed", "any"]
"""Which incoming arms count: none (the default), those with a valid tag, or any."""
_TRUST: tuple[str, ...] = get_args(Trust)

# RFC 7230 tchar without "%", which is the escape itself.
_SAFE = "!#$&'*+-.^_`|~"
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


@dataclass(frozen=True)
class Propagated:
    """An arm decided upstream (or here) for one experiment; ``version`` is the experiment's
    bucket version when known. ``key_id`` and ``tag`` are the signature an upstream service
    put on it; ``unit`` (the unit's key, never sent) lets this service sign its own decision."""

    experiment: str
    arm: str
    version: int | None = None
    key_id: str | None = None
    tag: str | None = None
    unit: str | None = field(default=None, repr=False, compare=False)


# The tag: HMAC-SHA256 truncated to 128 bits (RFC 2104 section 5 allows it), in base64url.
_TAG_BYTES = 16
_TAG_DOMAIN = b"trafficsplit/propagation/1\x00"
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
_MIN_SECRET = 16


def _message(unit: str, experiment: str, arm: str, version: int | None) -> bytes:
    # Each field length-prefixed, so no choice of texts can make two tuples sign alike.
    out = bytearray(_TAG_DOMAIN)
    for text in (unit, experiment, arm, "" if version is None else str(version)):
        raw = text.encode("utf-8", "surrogatepass")
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


class PropagationKeys:
    """The shared keys of signed propagation: the first signs, every one verifies, so a key
    can be rotated in (add it second everywhere, then first) and out without a refused request.

    >>> keys = PropagationKeys({"2026-12": "a-secret-of-16-bytes-or-more"})
    >>> p = keys.sign(Propagated("ranker-v2", "treatment", 3), "user-1")
    >>> (p.key_id, len(p.tag), keys.verify(p, "user-1"), keys.verify(p, "user-2"))
    ('2026-12', 22, True, False)
    """

    __slots__ = ("_keys", "signing_id")

    def __init__(self, keys: Mapping[str, str | bytes] | str | bytes) -> None:
        if isinstance(keys, str | bytes):
            keys = {"0": keys}
        if not isinstance(keys, Mapping) or not keys:
            raise ConfigError(
                "propagation keys must be a secret (str or bytes) or a non-empty mapping "
                f"{{key id: secret}}, got {type(keys).__name__}"
            )
        self._keys: dict[str, bytes] = {}
        for kid, secret in keys.items():
            if not isinstance(kid, str) or not _KEY_ID.match(kid):
                raise ConfigError(
                    f"propagation key id {kid!r} must be 1 to 32 letters, digits, '.', '_' or '-'"
                )
            raw = secret.encode("utf-8") if isinstance(secret, str) else secret
            if not isinstance(raw, bytes) or len(raw) < _MIN_SECRET:
                raise ConfigError(
                    f"propagation key {kid!r} must be a str or bytes of at least "
                    f"{_MIN_SECRET} bytes (use a random secret, e.g. secrets.token_urlsafe(32))"
                )
            self._keys[kid] = raw
        self.signing_id = next(iter(self._keys))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PropagationKeys | None:
        """The keys in :data:`KEYS_ENV` (``id:secret,id:secret``; the first signs), or None."""
        value = (os.environ if environ is None else environ).get(KEYS_ENV, "").strip()
        return _keys_from_text(value) if value else None

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def _tag(self, kid: str, p: Propagated, unit: str) -> str:
        # Imported here: OpenSSL's hashlib costs a model server's import milliseconds it may
        # never need.
        import base64
        import hashlib
        import hmac

        digest = hmac.new(
            self._keys[kid], _message(unit, p.experiment, p.arm, p.version), hashlib.sha256
        ).digest()
        return base64.urlsafe_b64encode(digest[:_TAG_BYTES]).rstrip(b"=").decode("ascii")

    def sign(self, p: Propagated, unit: str) -> Propagated:
        """``p`` with a tag for ``unit`` (the unit's key, ``trafficsplit.sticky.unit_key``)."""
        kid = self.signing_id
        return Propagated(p.experiment, p.arm, p.version, kid, self._tag(kid, p, unit), unit)

    def verify(self, p: Propagated, unit: str) -> bool:
        """Whether ``p`` carries a valid tag for ``unit`` (compared in constant time)."""
        import hmac

        if p.tag is None or p.key_id not in self._keys:
            return False
        return hmac.compare_digest(self._tag(p.key_id, p, unit), p.tag)

    def __repr__(self) -> str:  # never the secrets
        return f"PropagationKeys({', '.join(self._keys)})"


@functools.lru_cache(maxsize=8)
def _keys_from_text(value: str) -> PropagationKeys:
    entries = [e.strip() for e in value.split(",") if e.strip()]
    if len(entries) == 1 and ":" not in entries[0]:
        return PropagationKeys(entries[0])
    keys: dict[str, str] = {}
    for e in entries:
        kid, sep, secret = e.partition(":")
        if not sep:
            raise ConfigError(
                f"{KEYS_ENV}: every entry of several must be 'id:secret'; one has no ':'"
            )
        keys[kid.strip()] = secret.strip()
    return PropagationKeys(keys)


def keys_of(propagation_key: Any) -> PropagationKeys | None:
    """Keys from a ``propagation_key=`` argument (PropagationKeys, a secret or a mapping), else
    from :data:`KEYS_ENV`, else None."""
    if propagation_key is None:
        return PropagationKeys.from_env()
    if isinstance(propagation_key, PropagationKeys):
        return propagation_key
    return PropagationKeys(propagation_key)


def check_trust(trust: Any) -> Trust:
    if trust not in _TRUST:
        raise ConfigError(
            f"trust must be one of {', '.join(map(repr, _TRUST))}, got {trust!r}: 'none' "
            "honours no incoming arm, 'signed' those with a valid tag, 'any' every one (only "
            "behind a gateway that strips the propagation headers)"
        )
    return cast(Trust, str(trust))


class PropagationContext(Mapping[str, Propagated]):
    """Upstream decisions by experiment key, and the request id (``X-Request-ID``, else the
    trace id of ``traceparent``). Pass it as ``Splitter.assign(..., context=...)``.

    As a mapping it holds the members its ``trust`` admits; ``refused`` holds the others by
    experiment, with why (``untrusted``, ``unsigned``, ``unknown_key``), so that a Splitter can
    count them. With ``trust="signed"``, a member's tag is checked against the unit when it is
    used (``propagation_keys``). A context made by hand trusts what it is given
    (``trust="any"``)."""

    __slots__ = ("_arms", "propagation_keys", "refused", "request_id", "trust")

    def __init__(
        self,
        arms: Mapping[str, Propagated] | None = None,
        request_id: str | None = None,
        *,
        trust: Trust = "any",
        keys: PropagationKeys | None = None,
        refused: Mapping[str, str] | None = None,
    ) -> None:
        self.trust = check_trust(trust)
        if self.trust == "signed" and keys is None:
            raise ConfigError(
                f"trust='signed' needs the propagation keys: propagation_key=... or {KEYS_ENV}"
            )
        self._arms = dict(arms or {})
        self.request_id = request_id
        self.propagation_keys = keys
        self.refused = dict(refused or {})

    def __getitem__(self, key: str) -> Propagated:
        return self._arms[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arms)

    def __len__(self) -> int:
        return len(self._arms)

    def __repr__(self) -> str:
        arms = ", ".join(f"{k}={p.arm}" for k, p in self._arms.items())
        return (
            f"PropagationContext({arms}, request_id={self.request_id!r}, trust={self.trust!r}, "
            f"refused={len(self.refused)})"
        )


def trust_refusal(
    trust: str, keys: PropagationKeys | None, p: Propagated, unit: str | None
) -> str | None:
    """Why ``trust`` (with ``keys``) refuses the upstream arm ``p`` for ``unit`` (its key):
    ``untrusted``, ``missing_unit``, ``unsigned``, ``unknown_key``, ``bad_signature`` or
    ``version_mismatch`` (a signed arm must name its bucket version); None when it admits it."""
    if trust == "none":
        return "untrusted"
    if trust == "signed":
        if unit is None:
            return "missing_unit"
        if p.tag is None:
            return "unsigned"
        if keys is None or p.key_id not in keys.key_ids:
            return "unknown_key"
        if not keys.verify(p, unit):
            return "bad_signature"
        if p.version is None:
            return "version_mismatch"
    return None


@dataclass
class RequestContext:
    """The state of one request in a service: what came in, and what this service decided
    (so the middleware can send it on). Set by the middleware or :func:`use`. With ``keys``,
    this service's own decisions are signed when they are sent on."""

    incoming: PropagationContext = field(default_factory=PropagationContext)
    decided: dict[str, Propagated] = field(default_factory=dict)
    baggage: str | None = None  # the incoming baggage, passed on with our members merged in
    propagation_keys: PropagationKeys | None = None

    @property
    def request_id(self) -> str | None:
        return self.incoming.request_id

    def arms(self) -> dict[str, Propagated]:
        """Incoming decisions overlaid by this service's own."""
        return {**dict(self.incoming), **self.decided}


_CURRENT: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "trafficsplit_request", default=None
)


current: Callable[[], RequestContext | None] = _CURRENT.get
"""The request context of the running request, if a middleware (or :func:`use`) set one: the
context variable's own getter, so that the serving path reads it without a call of its own."""


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
    keys = req.propagation_keys or False
    return to_headers(req.arms(), baggage=req.baggage, propagation_key=keys)


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
                a = dataclasses.replace(a, version=_version_of(versions, a.experiment))
            out.append(a)
        elif getattr(a, "arm", None) is not None:
            out.append(Propagated(a.experiment, a.arm, _version_of(versions, a.experiment)))
    return out


def _member(p: Propagated, key_prefix: str) -> str:
    text = f"{key_prefix}{_enc(p.experiment)}={_enc(p.arm)}"
    if p.version is not None:
        text = f"{text};v={p.version}"
    if p.tag is not None and p.key_id is not None:
        text = f"{text};kid={_enc(p.key_id)};sig={_enc(p.tag)}"
    return text


def to_headers(
    assignments: Any,
    versions: Any = None,
    baggage: str | None = None,
    *,
    unit: Any = None,
    propagation_key: Any = None,
) -> dict[str, str]:
    """The ``baggage`` and ``X-Experiment-ID`` headers that carry these decisions.

    ``assignments``: ``Splitter.assign_all`` output, a list of Assignments, a
    :class:`PropagationContext` or :class:`RequestContext`; only those with an arm count.
    ``versions``: bucket versions by experiment key, or a Splitter/Snapshot to read them from.
    ``baggage``: baggage the request already carries; its members come first and are kept,
    except earlier trafficsplit members of the same experiments, which these replace. A member
    that would take the header beyond 64 members or 8192 bytes is left out (and logged).

    ``propagation_key`` (a :class:`PropagationKeys`, a secret or ``{id: secret}``; default the
    :data:`KEYS_ENV` variable, ``False`` for none) signs each decision for its unit: ``unit``
    here, or the unit a :class:`RequestContext` noted. A decision that already carries a tag is
    passed on as it is; one without a unit or a version is sent unsigned.
    """
    decisions = _decisions(assignments, versions)
    if not decisions:
        return {}
    keys = None if propagation_key is False else keys_of(propagation_key)
    if keys is not None:
        default_unit = None
        if unit is not None:
            from .._shared.keys import unit_key

            default_unit = unit_key(unit)
        signed = []
        for p in decisions:
            u = p.unit if p.unit is not None else default_unit
            if p.tag is None and u is not None and p.version is not None:
                p = keys.sign(p, u)
            signed.append(p)
        decisions = signed
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
    version = kid = tag = None
    for prop in props:
        if "=" in prop:
            name, value = (t.strip() for t in prop.split("=", 1))
            if name == "v":
                # A bucket version is a uint32; bounding the digits bounds the work on hostile text.
                if not value.isascii() or not value.isdigit() or len(value) > 10:
                    return None
                version = int(value)
                if version > 0xFFFFFFFF:
                    return None
            elif name == "kid":
                kid = _dec(value)
            elif name == "sig":
                tag = _dec(value)
    return Propagated(key, arm, version, kid, tag)


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
        if isinstance(name, str) and isinstance(value, str):  # anything else is no header
            out.setdefault(name.lower(), []).append(value)
    return out


def from_headers(
    headers: Any, trust: Trust = "none", propagation_key: Any = None
) -> PropagationContext:
    """The upstream decisions in a request's headers (``baggage`` members with the
    trafficsplit prefix and ``X-Experiment-ID``; the latter wins where both name an
    experiment). Malformed members are skipped: incoming headers never raise.

    ``trust`` says which members count: ``"none"`` (default) none, ``"signed"`` those with a
    tag of a known key (checked against the unit when used; ``propagation_key`` or
    :data:`KEYS_ENV` gives the keys), ``"any"`` every one. The others are kept in
    ``refused`` with why."""
    trust = check_trust(trust)
    keys = keys_of(propagation_key) if trust == "signed" else None
    if trust == "signed" and keys is None:
        raise ConfigError(
            f"trust='signed' needs the propagation keys: propagation_key=... or {KEYS_ENV}"
        )
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
    refused: dict[str, str] = {}
    if trust == "none":
        refused = dict.fromkeys(arms, "untrusted")
        arms = {}
    elif trust == "signed":
        assert keys is not None
        for k, p in list(arms.items()):
            if p.tag is None:
                refused[k] = "unsigned"
            elif p.key_id not in keys.key_ids:
                refused[k] = "unknown_key"
            else:
                continue
            del arms[k]
    return PropagationContext(arms, request_id, trust=trust, keys=keys, refused=refused)


def baggage_of(headers: Any) -> str | None:
    """Every ``baggage`` header of a request, combined."""
    values = _header_values(headers).get("baggage")
    return ",".join(values) if values else None
