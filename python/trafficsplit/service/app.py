"""The ASGI application behind ``trafficsplit serve``: one :class:`~trafficsplit.Splitter` over
HTTP, so that services in any language get the decisions the Python ones get
(docs/service.md).

Endpoints: ``POST /v1/assign``, ``POST /v1/assign/batch`` (JSON or an Arrow IPC stream),
OFREP's ``POST /ofrep/v1/evaluate/flags/{key}`` and ``POST /ofrep/v1/evaluate/flags``,
``GET /healthz``, ``GET /readyz`` and ``GET /metrics``. Every response carries the
configuration version it was made under (``X-Trafficsplit-Config-Version``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qs

import numpy as np

from .._optional import require
from ..batch import REASONS
from ..config import Snapshot, as_snapshot
from ..errors import ArgumentError, Error, UnitTypeError, UnitValueError
from ..splitter import Splitter
from ..telemetry.middleware import ASGIMiddleware
from ..telemetry.propagation import Trust
from ..telemetry.sinks import JsonlSink
from . import ofrep
from .http import (
    ARROW_TYPE,
    HTTPError,
    Receive,
    Scope,
    Send,
    bearer_ok,
    dumps,
    header,
    parse_json,
    read_body,
    respond,
)
from .metrics import ServiceMetrics

__all__ = ["OPTIONS_ENV", "TOKEN_ENV", "VERSION_HEADER", "Service", "from_environment"]

log = logging.getLogger("trafficsplit")

VERSION_HEADER = "X-Trafficsplit-Config-Version"
"""The response header with the version of the configuration that made the response."""
TOKEN_ENV = "TRAFFICSPLIT_SERVE_TOKEN"
"""Environment variable with the bearer token ``trafficsplit serve`` requires (none: open)."""
OPTIONS_ENV = "TRAFFICSPLIT_SERVE_OPTIONS"
"""Environment variable with the service's options as JSON, read by each worker process."""

T = TypeVar("T")

_VERSION = VERSION_HEADER.lower().encode()
_OPEN = frozenset({"/healthz", "/readyz"})  # probes need no token
_OFREP_FLAG = "/ofrep/v1/evaluate/flags/"
_TEXT = b"text/plain; version=0.0.4; charset=utf-8"


class Service:
    """The ASGI 3 application over one Splitter.

    ``config``: a path (a file or folder, re-read when it changes with ``watch=True``), a
    mapping, a :class:`~trafficsplit.config.Snapshot` or a :class:`~trafficsplit.Splitter`
    (which the service then uses as it is and leaves open at shutdown).
    ``token``: the bearer token every endpoint but ``/healthz`` and ``/readyz`` requires (None:
    none). ``max_body``: the largest request body in bytes; ``max_batch``: the most units in
    one batch request. ``trust`` and ``propagation_key``: which incoming propagation headers
    count, as for :class:`trafficsplit.middleware.ASGIMiddleware` (none by default); the
    response carries ``/v1/assign``'s decisions in them. ``exposures``: what
    :class:`~trafficsplit.Splitter` takes (a sink, a list of sinks, an ExposureLogger): every
    decision of ``/v1/assign`` and OFREP with an arm or a rollout's value leaves an exposure
    record, with the request's ``X-Request-ID``; the batch endpoint leaves none.

    >>> app = Service({"experiments": [{"key": "e", "arms": {"a": 50, "b": 50}}]})
    >>> app.splitter.assign("e", "user-1").reason
    'assigned'
    """

    def __init__(
        self,
        config: Any,
        *,
        token: str | bytes | None = None,
        max_body: int = 8 * 1024 * 1024,
        max_batch: int = 100_000,
        trust: Trust = "none",
        propagation_key: Any = None,
        watch: bool = True,
        interval: float = 1.0,
        threads: int | None = None,
        exposures: Any = None,
    ) -> None:
        for name, value in (("max_body", max_body), ("max_batch", max_batch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ArgumentError(f"Service: {name} must be a positive integer, got {value!r}")
        if token is not None:
            token = token.encode() if isinstance(token, str) else bytes(token)
            if not token.strip():
                raise ArgumentError("Service: token must not be empty (None for no token)")
        self.token: bytes | None = token
        self.max_body = max_body
        self.max_batch = max_batch
        self.threads = threads
        self._owns_splitter = not isinstance(config, Splitter)
        if isinstance(config, Splitter):
            if exposures is not None:
                raise ArgumentError("Service: give exposures to the Splitter, not to the Service")
            self.splitter = config
        elif isinstance(config, str | os.PathLike):
            self.splitter = Splitter.from_file(
                config, watch=watch, interval=interval, exposures=exposures
            )
        else:
            self.splitter = Splitter(as_snapshot(config, "Service"), exposures=exposures)
        self.metrics = ServiceMetrics()
        self.ready = True
        self._app = ASGIMiddleware(self._http, trust=trust, propagation_key=propagation_key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "http":
            await self._app(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # The server has finished the requests in flight before this.
                self.ready = False
                if self._owns_splitter:  # a Splitter passed in is its owner's to close
                    self.splitter.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- one request -------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        path: str = scope.get("path", "")
        endpoint = _endpoint(path)
        version = b""
        try:
            if self.token is not None and path not in _OPEN and not bearer_ok(scope, self.token):
                raise HTTPError(
                    401,
                    "Unauthorized",
                    "this service needs 'Authorization: Bearer <token>'",
                    headers=[(b"www-authenticate", b'Bearer realm="trafficsplit"')],
                )
            status, content_type, body, headers = await self._route(endpoint, scope, receive, path)
            version = headers.pop(_VERSION, b"")
        except HTTPError as exc:
            status = exc.status
            content_type, body = exc.response_body()
            headers = dict(exc.headers)
        except Exception:  # never a stack trace to the client; the log has it
            log.exception("trafficsplit serve: %s %s", scope.get("method"), path)
            status = 500
            failed = HTTPError(500, "Internal Server Error", "the request failed; see the log")
            content_type, body = failed.response_body()
            if endpoint.startswith("ofrep"):
                content_type, body = b"application/json", dumps({"errorDetails": "internal error"})
            headers = {}
        out = [(_VERSION, version or self.splitter.version.encode()), *headers.items()]
        await respond(send, status, body, content_type, out)
        self.metrics.observe(endpoint, status, time.perf_counter() - start)

    async def _route(
        self, endpoint: str, scope: Scope, receive: Receive, path: str
    ) -> tuple[int, bytes | None, bytes, dict[bytes, bytes]]:
        method = scope.get("method", "GET")
        wanted = "GET" if endpoint in ("healthz", "readyz", "metrics") else "POST"
        if endpoint == "other":
            raise HTTPError(404, "Not Found", f"no endpoint at {path}")
        if method != wanted:
            raise HTTPError(
                405,
                "Method Not Allowed",
                f"{path} takes {wanted}, not {method}",
                headers=[(b"allow", wanted.encode())],
            )
        sp = self.splitter
        if endpoint == "healthz":
            return 200, b"application/json", b'{"status":"ok"}', {}
        if endpoint == "readyz":
            if not self.ready:
                raise HTTPError(503, "Service Unavailable", "shutting down")
            return 200, b"application/json", dumps({"status": "ready", "version": sp.version}), {}
        if endpoint == "metrics":
            text = self.metrics.render(sp.version, sp.reloads, sp.reload_errors)
            return 200, _TEXT, text, {}
        body = await read_body(scope, receive, self.max_body)
        if endpoint == "ofrep_flag":
            key = path[len(_OFREP_FLAG) :]
            request = _ofrep_json(body, key)
            _, result = _on_one_snapshot(sp, lambda: ofrep.evaluate(sp, key, request))
            self.metrics.flag(result["key"], result["variant"])
            return 200, b"application/json", dumps(result), _version(result)
        if endpoint == "ofrep_bulk":
            return self._ofrep_bulk(scope, body)
        if endpoint == "assign":
            return self._assign(parse_json(body, "POST /v1/assign"))
        return await self._assign_batch(scope, body)

    # -- OFREP bulk --------------------------------------------------------------------------

    def _ofrep_bulk(
        self, scope: Scope, body: bytes
    ) -> tuple[int, bytes | None, bytes, dict[bytes, bytes]]:
        request = _ofrep_json(body, None)
        sp = self.splitter
        _, result = _on_one_snapshot(sp, lambda: ofrep.bulk(sp, request))
        for flag in result["flags"]:
            if "variant" in flag:
                self.metrics.flag(flag["key"], flag["variant"])
        text = dumps(result)
        # The tag of exactly this response: it changes with the configuration and the context.
        tag = b'"' + hashlib.sha256(text).hexdigest()[:32].encode() + b'"'
        version = result["metadata"]["version"].encode()
        headers = {b"etag": tag, _VERSION: version}
        if _etag_matches(header(scope, b"if-none-match"), tag):
            return 304, None, b"", headers
        return 200, b"application/json", text, headers

    # -- assignments -------------------------------------------------------------------------

    def _assign(self, request: Any) -> tuple[int, bytes | None, bytes, dict[bytes, bytes]]:
        what = "POST /v1/assign"
        if not isinstance(request, dict):
            raise HTTPError(400, "Bad Request", f"{what}: the body must be a JSON object")
        _only(request, ("unit", "attributes", "experiment", "experiments"), what)
        unit = request.get("unit")
        _check_unit(unit, f"{what}: unit")
        attributes = request.get("attributes")
        if attributes is not None and not isinstance(attributes, dict):
            raise HTTPError(400, "Bad Request", f"{what}: attributes must be an object")
        sp = self.splitter
        snapshot = sp.snapshot
        keys = _experiments(request, snapshot.experiments, what)

        def decide() -> dict[str, Any]:
            if keys is None:
                return sp.assign_all(unit, attributes)
            return {k: sp.assign(k, unit, attributes) for k in keys}

        try:
            snapshot, decided = _on_one_snapshot(sp, decide)
        except (UnitTypeError, UnitValueError) as exc:
            raise HTTPError(400, "Bad Request", f"{what}: unit: {exc}") from None
        except Error as exc:
            raise HTTPError(400, "Bad Request", f"{what}: {exc}") from None
        out = {}
        for key, a in decided.items():
            bucket = a.bucket if a.bucket >= 0 else None  # null without a unit, as in Arrow
            out[key] = {"arm": a.arm, "bucket": bucket, "reason": a.reason, "payload": a.payload}
            if a.arm is not None:
                self.metrics.assigned(key, ((a.arm, 1),))
        text = dumps({"version": snapshot.version, "assignments": out})
        return 200, b"application/json", text, {_VERSION: snapshot.version.encode()}

    async def _assign_batch(
        self, scope: Scope, body: bytes
    ) -> tuple[int, bytes | None, bytes, dict[bytes, bytes]]:
        what = "POST /v1/assign/batch"
        pa = require("pyarrow", what=what)
        content_type = (header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
        arrow = content_type == ARROW_TYPE
        snapshot = self.splitter.snapshot
        if arrow:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            unit_column = query.get("unit", ["unit"])[-1]
            request: dict[str, Any] = {}
            if "experiment" in query:
                request["experiments"] = query["experiment"]
            keys = _experiments(request, snapshot.experiments, what)
            table = self._read_arrow(pa, body, what)
            if unit_column not in table.column_names:
                raise HTTPError(
                    400,
                    "Bad Request",
                    f"{what}: the stream has no column '{unit_column}' (the unit column: "
                    f"?unit=NAME); columns: {', '.join(table.column_names) or '(none)'}",
                )
        else:
            request = parse_json(body, what)
            if not isinstance(request, dict):
                raise HTTPError(400, "Bad Request", f"{what}: the body must be a JSON object")
            _only(request, ("units", "attributes", "experiments"), what)
            keys = _experiments(request, snapshot.experiments, what)
            unit_column = "unit"
            table = self._json_table(pa, request, what)
        sp = self.splitter
        try:
            for _ in range(_TRIES):
                snapshot = sp.snapshot
                results = await asyncio.to_thread(
                    sp.assign_columns, table, unit_column, keys, threads=self.threads
                )
                if sp.snapshot is snapshot:
                    break
        except (UnitTypeError, UnitValueError) as exc:
            raise HTTPError(400, "Bad Request", f"{what}: row {exc.row}: {exc}") from None
        except Error as exc:
            raise HTTPError(400, "Bad Request", f"{what}: {exc}") from None
        for key, b in results.items():
            got = b.arm_index[b.arm_index >= 0]
            counts = np.bincount(got, minlength=len(b.arms)) if len(got) else ()
            self.metrics.assigned(key, zip(b.arms, map(int, counts), strict=False))
        headers = {_VERSION: snapshot.version.encode()}
        if arrow:
            return 200, ARROW_TYPE, _arrow_response(pa, results), headers
        experiments = {}
        for key, b in results.items():
            arms = np.array([*b.arms, None], dtype=object)
            experiments[key] = {
                "arm": arms[b.arm_index].tolist(),  # -1 picks the None at the end
                "bucket": [x if x >= 0 else None for x in b.bucket.tolist()],
                "reason": np.array(REASONS, dtype=object)[b.reason].tolist(),
            }
        text = dumps(
            {"version": snapshot.version, "rows": table.num_rows, "experiments": experiments}
        )
        return 200, b"application/json", text, headers

    def _read_arrow(self, pa: Any, body: bytes, what: str) -> Any:
        rows = 0
        batches = []
        try:
            reader = pa.ipc.open_stream(pa.py_buffer(body))
            for batch in reader:
                rows += batch.num_rows
                self._check_rows(rows, what)
                batches.append(batch)
            return pa.Table.from_batches(batches, schema=reader.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise HTTPError(400, "Bad Request", f"{what}: not an Arrow IPC stream: {exc}") from None

    def _check_rows(self, rows: int, what: str) -> None:
        if rows > self.max_batch:
            raise HTTPError(
                413,
                "Content Too Large",
                f"{what}: over {self.max_batch:,} units; send at most {self.max_batch:,} a request",
            )

    def _json_table(self, pa: Any, request: dict[str, Any], what: str) -> Any:
        units = request.get("units")
        if not isinstance(units, list):
            raise HTTPError(400, "Bad Request", f"{what}: units must be a list of unit ids")
        self._check_rows(len(units), what)
        for i, u in enumerate(units):
            _check_unit(u, f"{what}: units[{i}]")
        # Integers as their decimal text: the contract hashes 123 and "123" alike.
        columns: dict[str, Any] = {
            "unit": pa.array(
                [u if u is None or isinstance(u, str) else str(u) for u in units], pa.string()
            )
        }
        attributes = request.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise HTTPError(400, "Bad Request", f"{what}: attributes must be an object of columns")
        for name, values in attributes.items():
            if name == "unit" or not isinstance(values, list) or len(values) != len(units):
                raise HTTPError(
                    400,
                    "Bad Request",
                    f"{what}: attributes['{name}'] must be a list of {len(units):,} values, "
                    "one per unit (and not named 'unit')",
                )
            try:
                columns[name] = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                raise HTTPError(
                    400, "Bad Request", f"{what}: attributes['{name}']: mixed or bad values: {exc}"
                ) from None
        return pa.table(columns)


_TRIES = 3


def _on_one_snapshot(splitter: Splitter, decide: Callable[[], T]) -> tuple[Snapshot, T]:
    """``decide()`` and the snapshot it ran on, so that the version a response names is the
    one that made it: a reload swaps in a new snapshot object, so a snapshot that is the same
    before and after the call is the one the call used. Tried again when a reload fell
    inside the call (under reloads faster than requests, the last try is taken)."""
    for _ in range(_TRIES):
        before = splitter.snapshot
        result = decide()
        if splitter.snapshot is before:
            break
    return before, result


def _endpoint(path: str) -> str:
    """The route name of a path (the metrics' label: a fixed set, whatever the path)."""
    if path == "/v1/assign":
        return "assign"
    if path == "/v1/assign/batch":
        return "assign_batch"
    if path == "/ofrep/v1/evaluate/flags":
        return "ofrep_bulk"
    if path.startswith(_OFREP_FLAG) and len(path) > len(_OFREP_FLAG):
        return "ofrep_flag"
    if path in ("/healthz", "/readyz", "/metrics"):
        return path[1:]
    return "other"


def _ofrep_json(body: bytes, key: str | None) -> Any:
    """The JSON of an OFREP body, or OFREP's PARSE_ERROR (with the flag's key where known)."""
    try:
        return parse_json(body, "OFREP request")
    except HTTPError as exc:
        raise ofrep.failure(400, key, "PARSE_ERROR", exc.detail) from None


def _version(result: Mapping[str, Any]) -> dict[bytes, bytes]:
    return {_VERSION: str(result["metadata"]["version"]).encode()}


def _etag_matches(value: bytes | None, tag: bytes) -> bool:
    if value is None:
        return False
    if value.strip() == b"*":
        return True
    return any(t.strip().removeprefix(b"W/") == tag for t in value.split(b","))


def _only(request: Mapping[str, Any], allowed: tuple[str, ...], what: str) -> None:
    extra = sorted(set(request) - set(allowed))
    if extra:
        raise HTTPError(
            400,
            "Bad Request",
            f"{what}: unknown field(s) {', '.join(map(repr, extra))}; fields: {', '.join(allowed)}",
        )


def _check_unit(unit: Any, what: str) -> None:
    if (
        unit is None
        or isinstance(unit, str)
        or (isinstance(unit, int) and not isinstance(unit, bool))
    ):
        return
    raise HTTPError(
        400,
        "Bad Request",
        f"{what} must be a string, an integer or null, got {json.dumps(unit)[:40]}",
    )


def _experiments(
    request: Mapping[str, Any], known: Mapping[str, Any], what: str
) -> list[str] | None:
    """The experiments a request names (``experiment`` or ``experiments``), or None for all;
    404 for one the configuration does not have."""
    if "experiment" in request and "experiments" in request:
        raise HTTPError(400, "Bad Request", f"{what}: give experiment or experiments, not both")
    if "experiment" in request:
        keys = [request["experiment"]]
    elif "experiments" in request:
        keys = request["experiments"]
        if not isinstance(keys, list):
            raise HTTPError(400, "Bad Request", f"{what}: experiments must be a list of keys")
    else:
        return None
    for k in keys:
        if not isinstance(k, str):
            raise HTTPError(400, "Bad Request", f"{what}: experiment keys are strings")
        if k not in known:
            raise HTTPError(
                404,
                "Not Found",
                f"{what}: unknown experiment '{k}'; "
                f"experiments: {', '.join(sorted(known)) or '(none)'}",
            )
    return keys


def _arrow_response(pa: Any, results: Mapping[str, Any]) -> bytes:
    """An Arrow IPC stream with, per experiment, ``<key>`` (the arm, dictionary-encoded, null
    without one), ``<key>_bucket`` (int32, null without a unit: as Parquet, DuckDB and Spark
    give it) and ``<key>_reason``."""
    columns = {}
    for key, b in results.items():
        arm, bucket, reason = b.arrow_columns()
        columns[key] = arm
        columns[f"{key}_bucket"] = bucket
        columns[f"{key}_reason"] = reason
    table = pa.table(columns)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def from_environment() -> Service:
    """The service ``trafficsplit serve --workers N`` starts in each worker process: options
    from :data:`OPTIONS_ENV` (JSON), the token from :data:`TOKEN_ENV`."""
    options = json.loads(os.environ[OPTIONS_ENV])
    config = options.pop("config")
    folder = options.pop("exposures", None)
    exposures = None if folder is None else JsonlSink(folder)  # files named by process id
    return Service(config, token=os.environ.get(TOKEN_ENV) or None, exposures=exposures, **options)
