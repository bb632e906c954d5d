"""ASGI and WSGI middleware: each request's propagation headers become the request context
that ``Splitter.assign`` reads (an upstream arm the ``trust`` setting admits is reused, reason
``propagated``), and the response carries the request's decisions back out
(docs/telemetry.md, "Middleware").

ASGI (Starlette, FastAPI, any ASGI 3 app)::

    app = trafficsplit.middleware.ASGIMiddleware(app, trust="signed", propagation_key=keys)

WSGI (Flask, Django, any WSGI app)::

    app = trafficsplit.middleware.WSGIMiddleware(app, trust="signed", propagation_key=keys)

With no ``trust``, no incoming arm counts (``"none"``): each service decides for itself.

Inside a request, ``trafficsplit.propagation.outgoing_headers()`` gives the headers to put on
calls to downstream services.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from ..errors import ConfigError
from .propagation import (
    KEYS_ENV,
    PropagationKeys,
    RequestContext,
    Trust,
    baggage_of,
    check_trust,
    from_headers,
    keys_of,
    to_headers,
    use,
)

__all__ = ["ASGIMiddleware", "WSGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _response_headers(req: RequestContext, respond: bool) -> list[tuple[str, str]]:
    if not respond:
        return []
    keys = req.propagation_keys or False
    return list(to_headers(req.arms(), baggage=req.baggage, propagation_key=keys).items())


class _Propagation:
    """What both middlewares share: the trust setting, the keys, and the request context."""

    def __init__(self, respond: bool, trust: Trust, propagation_key: Any) -> None:
        self.respond = respond
        self.trust = check_trust(trust)
        self.keys: PropagationKeys | None = keys_of(propagation_key)
        if self.trust == "signed" and self.keys is None:
            raise ConfigError(
                f"trust='signed' needs the propagation keys: propagation_key=... or {KEYS_ENV}"
            )

    def context(self, headers: Any) -> RequestContext:
        incoming = from_headers(headers, self.trust, self.keys)
        return RequestContext(incoming, baggage=baggage_of(headers), propagation_keys=self.keys)


def _replaced(headers: Iterable[tuple[Any, Any]], extra: list[tuple[Any, Any]]) -> list[Any]:
    """``headers`` without those named (case-insensitively) in ``extra``, then ``extra``."""
    names = {k.lower() for k, _ in extra}
    return [(k, v) for k, v in headers if k.lower() not in names] + extra


_ARGS = """``respond=False`` leaves response headers alone (the context is still set for the
    app). ``trust``: which incoming arms count, ``"none"`` (default), ``"signed"`` or ``"any"``
    (only behind a gateway that strips the propagation headers). ``propagation_key``: a
    :class:`~trafficsplit.propagation.PropagationKeys`, a secret or ``{id: secret}`` (default:
    the ``TRAFFICSPLIT_PROPAGATION_KEYS`` variable) that verifies incoming tags and signs this
    service's own decisions in the response and in ``outgoing_headers()``."""


class ASGIMiddleware(_Propagation):
    __doc__ = "Wraps an ASGI 3 application. " + _ARGS

    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        respond: bool = True,
        *,
        trust: Trust = "none",
        propagation_key: Any = None,
    ) -> None:
        super().__init__(respond, trust, propagation_key)
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        req = self.context(scope.get("headers") or [])

        async def send_with_headers(message: Message) -> None:
            if message.get("type") == "http.response.start":
                extra = [
                    (k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in _response_headers(req, self.respond)
                ]
                if extra:
                    message = {**message, "headers": _replaced(message.get("headers", []), extra)}
            await send(message)

        with use(req):
            await self.app(scope, receive, send_with_headers)


class WSGIMiddleware(_Propagation):
    __doc__ = "Wraps a WSGI application. " + _ARGS

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        respond: bool = True,
        *,
        trust: Trust = "none",
        propagation_key: Any = None,
    ) -> None:
        super().__init__(respond, trust, propagation_key)
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        headers = [
            (k[5:].replace("_", "-").lower(), v)
            for k, v in environ.items()
            if k.startswith("HTTP_") and isinstance(v, str)
        ]
        req = self.context(headers)

        def start(status: str, response_headers: list[tuple[str, str]], *exc: Any) -> Any:
            extra = _response_headers(req, self.respond)
            if extra:
                response_headers = _replaced(response_headers, extra)
            return start_response(status, response_headers, *exc)

        with use(req):
            return self.app(environ, start)
