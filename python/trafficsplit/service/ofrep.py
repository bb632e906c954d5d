"""The OpenFeature Remote Evaluation Protocol (OFREP, open-feature/protocol ``service/
openapi.yaml``): the request's evaluation context, the resolution of
:func:`trafficsplit.openfeature.resolve` (the in-process provider's, so both give the same
answers) as OFREP's success body, and OFREP's error bodies."""

from __future__ import annotations

from typing import Any

from ..config import Snapshot
from ..openfeature import Resolution, resolve
from ..splitter import Splitter
from .http import HTTPError

__all__ = ["bulk", "context_of", "evaluate", "kind_of"]

# OFREP's HTTP status for each OpenFeature error code of a single evaluation.
_STATUS = {
    "FLAG_NOT_FOUND": 404,
    "PARSE_ERROR": 400,
    "TARGETING_KEY_MISSING": 400,
    "INVALID_CONTEXT": 400,
    "TYPE_MISMATCH": 400,
    "GENERAL": 500,
}
# The value of a resolution that fell back to the caller's default: OFREP then sends no value
# and the client uses its own default (OFREP ADR 0006).
_NO_VALUE: Any = object()


def failure(status: int, key: str | None, code: str, details: str) -> HTTPError:
    """An OFREP error response: ``{key, errorCode, errorDetails}`` (no key in bulk), or
    ``{errorDetails}`` for a 500."""
    body: dict[str, Any] = {} if key is None or status >= 500 else {"key": key}
    if status < 500:
        body["errorCode"] = code
    body["errorDetails"] = details
    return HTTPError(status, code, details, body=body)


def context_of(request: Any, key: str | None) -> tuple[str | None, dict[str, Any]]:
    """(targeting key, attributes) of an OFREP request body ``{"context": {...}}``: the
    context's ``targetingKey`` (None without one) and its other entries."""
    if not isinstance(request, dict):
        raise failure(400, key, "PARSE_ERROR", "the body must be a JSON object")
    context = request.get("context", {})
    if context is None:
        context = {}
    if not isinstance(context, dict):
        raise failure(
            400, key, "INVALID_CONTEXT", f"context must be an object, got {type(context).__name__}"
        )
    attributes = dict(context)
    unit = attributes.pop("targetingKey", None)
    if unit is not None and not isinstance(unit, str):
        raise failure(
            400,
            key,
            "INVALID_CONTEXT",
            f"targetingKey must be a string, got {type(unit).__name__}",
        )
    return unit, attributes


def kind_of(snapshot: Snapshot, key: str) -> str:
    """The OpenFeature type a key resolves as over OFREP, which names none: a flag's own type
    (a number flag whose values are all whole numbers as ``integer``, else ``float``), an
    experiment's arm as ``string``."""
    flag = snapshot.flags.get(key)
    if flag is None:
        return "string"
    if flag.type == "number":
        values = [flag.default]
        for rule in flag.rules:
            values.extend(rule.rollout_values if rule.rollout is not None else (rule.value,))
        whole = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        return "integer" if whole else "float"
    return {"bool": "boolean", "string": "string", "json": "object"}.get(flag.type, "object")


def _body(r: Resolution) -> dict[str, Any]:
    out: dict[str, Any] = {"key": r.key}
    if r.value is not _NO_VALUE:
        out["value"] = r.value
    out["reason"] = r.reason
    out["variant"] = r.variant if r.variant is not None else "default"
    out["metadata"] = dict(r.metadata)
    return out


def _resolve(splitter: Splitter, snapshot: Snapshot, key: str, unit: Any, attrs: Any) -> Resolution:
    return resolve(splitter, key, kind_of(snapshot, key), _NO_VALUE, unit, attrs)


def evaluate(splitter: Splitter, key: str, request: Any) -> dict[str, Any]:
    """The body of ``POST /ofrep/v1/evaluate/flags/{key}`` (a flag, or an experiment's arm),
    resolved by :func:`trafficsplit.openfeature.resolve` as the in-process provider resolves
    it; an :class:`HTTPError` with OFREP's error body otherwise (404 ``FLAG_NOT_FOUND``, 400
    ``INVALID_CONTEXT``, ``TARGETING_KEY_MISSING`` or ``PARSE_ERROR``)."""
    unit, attributes = context_of(request, key)
    r = _resolve(splitter, splitter.snapshot, key, unit, attributes)
    if r.error_code is not None:
        status = _STATUS.get(r.error_code, 400)
        raise failure(status, key, r.error_code, r.error_message or r.error_code)
    return _body(r)


def bulk(splitter: Splitter, request: Any) -> dict[str, Any]:
    """The body of ``POST /ofrep/v1/evaluate/flags``: every flag and experiment of the
    configuration in force, one that cannot be resolved for this context as an error entry."""
    try:
        unit, attributes = context_of(request, None)
    except HTTPError as exc:
        assert exc.body is not None
        exc.body.pop("key", None)
        raise
    snapshot = splitter.snapshot
    flags: list[dict[str, Any]] = []
    for key in (*snapshot.flags, *snapshot.experiments):
        r = _resolve(splitter, snapshot, key, unit, attributes)
        if r.error_code is None:
            flags.append(_body(r))
        else:
            error = {"key": key, "errorCode": r.error_code, "errorDetails": r.error_message}
            flags.append(error)
    return {"flags": flags, "metadata": {"version": snapshot.version}}
