"""ASGI and WSGI middleware: each request's propagation headers become the request context
that ``Splitter.assign`` reads (an upstream arm is reused, reason ``propagated``), and the
response carries the request's decisions back out (docs/telemetry.md, "Middleware").

ASGI (Starlette, FastAPI, any ASGI 3 app)::

    app = trafficsplit.middleware.ASGIMiddleware(app)

WSGI (Flask, Django, any WSGI app)::

    app = trafficsplit.middleware.WSGIMiddleware(app)

Inside a request, ``trafficsplit.propagation.outgoing_headers()`` gives the headers to put on
calls to downstream services.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from .propagation import _CURRENT, RequestContext, baggage_of, from_headers, to_headers

__all__ = ["ASGIMiddleware", "WSGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _response_headers(req: RequestContext, respond: bool) -> list[tuple[str, str]]:
    if not respond:
        return []
    return list(to_headers(req.arms(), baggage=req.baggage).items())


def _replaced(headers: Iterable[tuple[Any, Any]], extra: list[tuple[Any, Any]]) -> list[Any]:
    """``headers`` without those named (case-insensitively) in ``extra``, then ``extra``."""
    names = {k.lower() for k, _ in extra}
    return [(k, v) for k, v in headers if k.lower() not in names] + extra


class ASGIMiddleware:
    """Wraps an ASGI 3 application. ``respond=False`` leaves response headers alone (the
    context is still set for the app)."""

    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], respond: bool = True
    ) -> None:
        self.app = app
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        req = RequestContext(from_headers(headers), baggage=baggage_of(headers))

        async def send_with_headers(message: Message) -> None:
            if message.get("type") == "http.response.start":
                extra = [
                    (k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in _response_headers(req, self.respond)
                ]
                if extra:
                    message = {**message, "headers": _replaced(message.get("headers", []), extra)}
            await send(message)

        token = _CURRENT.set(req)
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            _CURRENT.reset(token)


class WSGIMiddleware:
    """Wraps a WSGI application. ``respond=False`` leaves response headers alone."""

    def __init__(self, app: Callable[..., Iterable[bytes]], respond: bool = True) -> None:
        self.app = app
        self.respond = respond

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        headers = [
            (k[5:].replace("_", "-").lower(), v)
            for k, v in environ.items()
            if k.startswith("HTTP_") and isinstance(v, str)
        ]
        req = RequestContext(from_headers(headers), baggage=baggage_of(headers))

        def start(status: str, response_headers: list[tuple[str, str]], *exc: Any) -> Any:
            extra = _response_headers(req, self.respond)
            if extra:
                response_headers = _replaced(response_headers, extra)
            return start_response(status, response_headers, *exc)

        token = _CURRENT.set(req)
        try:
            return self.app(environ, start)
        finally:
            _CURRENT.reset(token)
