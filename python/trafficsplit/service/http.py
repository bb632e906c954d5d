"""The HTTP pieces the service needs without a web framework: reading a bounded request body,
JSON responses, problem bodies (RFC 9457) and bearer-token checks."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_TYPE = b"application/json"
PROBLEM_TYPE = b"application/problem+json"
ARROW_TYPE = b"application/vnd.apache.arrow.stream"


class HTTPError(Exception):
    """A request refused with ``status``: the problem body says ``title`` and ``detail``;
    ``body`` replaces the problem body where a protocol fixes its own (OFREP)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        body: dict[str, Any] | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.body = body
        self.headers = headers or []

    def response_body(self) -> tuple[bytes, bytes]:
        """(content type, body) of the refusal."""
        if self.body is not None:
            return JSON_TYPE, dumps(self.body)
        problem = {"type": "about:blank", "title": self.title, "status": self.status}
        problem["detail"] = self.detail
        return PROBLEM_TYPE, dumps(problem)


def dumps(value: Any) -> bytes:
    """Compact JSON; values JSON cannot hold (NaN) are refused rather than sent as non-JSON."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=str).encode()


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (``name`` in lower case)."""
    for k, v in scope.get("headers") or ():
        if k == name:
            return bytes(v)
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, refused with 413 beyond ``limit`` bytes (before reading it when the
    Content-Length says so, while reading otherwise)."""
    length = header(scope, b"content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise HTTPError(400, "Bad Request", "Content-Length is not a number") from None
        if declared > limit:
            raise HTTPError(
                413,
                "Content Too Large",
                f"the body has {declared:,} bytes; this service takes at most {limit:,}",
            )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPError(400, "Bad Request", "the client went away before the body ended")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPError(
                413, "Content Too Large", f"the body is over {limit:,} bytes, the most taken"
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def parse_json(body: bytes, what: str) -> Any:
    """The JSON of a body (an empty body is ``{}``), or a 400 naming where it fails."""
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise HTTPError(
            400,
            "Bad Request",
            f"{what}: the body is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
        ) from None
    except UnicodeDecodeError:
        raise HTTPError(400, "Bad Request", f"{what}: the body is not UTF-8") from None
    except ValueError as exc:  # a number too long to read, among others
        raise HTTPError(400, "Bad Request", f"{what}: the body is not JSON: {exc}") from None
    except RecursionError:
        raise HTTPError(400, "Bad Request", f"{what}: the body nests too deeply") from None


def bearer_ok(scope: Scope, token: bytes) -> bool:
    """True when the request carries ``Authorization: Bearer <token>``; the comparison takes
    the same time wherever the texts differ."""
    value = header(scope, b"authorization")
    if value is None:
        return False
    scheme, _, given = value.partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(given.strip(), token)


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes | None = JSON_TYPE,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """One complete response."""
    out = [(b"content-length", str(len(body)).encode())]
    if content_type is not None:
        out.append((b"content-type", content_type))
    if headers:
        out.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})
