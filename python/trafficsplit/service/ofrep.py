"""The OpenFeature Remote Evaluation Protocol (OFREP, open-feature/protocol ``service/
openapi.yaml``): the request's evaluation context into a unit and attributes, a flag's
evaluation into OFREP's success body, and OFREP's error bodies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import Error
from ..splitter import FlagEvaluation, Splitter
from .http import HTTPError

__all__ = ["REASONS", "bulk", "context_of", "evaluate", "success"]

REASONS: Mapping[str, str] = {
    "disabled": "DISABLED",
    "prerequisite_failed": "DEFAULT",
    "targeting_match": "TARGETING_MATCH",
    "split": "SPLIT",
    "default": "DEFAULT",
    "error": "ERROR",
}
"""OpenFeature's reason for each reason of :meth:`Splitter.flag_details`."""


def failure(status: int, key: str | None, code: str, details: str) -> HTTPError:
    """An OFREP error response: ``{key, errorCode, errorDetails}`` (no key in bulk)."""
    body: dict[str, Any] = {} if key is None else {"key": key}
    body["errorCode"] = code
    body["errorDetails"] = details
    return HTTPError(status, code, details, body=body)


def context_of(request: Any, key: str | None) -> tuple[Any, dict[str, Any]]:
    """(unit, attributes) of an OFREP request body ``{"context": {...}}``: the unit is the
    context's ``targetingKey`` (None without one: a flag then hashes the attribute it names),
    the attributes are the other entries."""
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


def success(e: FlagEvaluation) -> dict[str, Any]:
    """OFREP's success body of one evaluation."""
    return {
        "key": e.key,
        "value": e.value,
        "reason": REASONS.get(e.reason, "UNKNOWN"),
        "variant": e.variant if e.variant is not None else "default",
        "metadata": {"reason": e.reason, "configVersion": e.version},
    }


def evaluate(splitter: Splitter, key: str, request: Any) -> dict[str, Any]:
    """The body of ``POST /ofrep/v1/evaluate/flags/{key}``; an :class:`HTTPError` with OFREP's
    error body for an unknown flag (404 FLAG_NOT_FOUND) or a context that cannot be
    evaluated (400 INVALID_CONTEXT)."""
    unit, attributes = context_of(request, key)
    if key not in splitter.snapshot.flags:
        raise failure(404, key, "FLAG_NOT_FOUND", f"flag '{key}' is not in the configuration")
    try:
        return success(splitter.flag_details(key, unit, attributes, None))
    except Error as exc:
        raise failure(400, key, "INVALID_CONTEXT", str(exc)) from None


def bulk(splitter: Splitter, request: Any) -> dict[str, Any]:
    """The body of ``POST /ofrep/v1/evaluate/flags``: every flag of the configuration in force,
    a flag whose context cannot be evaluated as an error entry."""
    try:
        unit, attributes = context_of(request, None)
    except HTTPError as exc:
        assert exc.body is not None
        exc.body.pop("key", None)
        raise
    snapshot = splitter.snapshot
    flags: list[dict[str, Any]] = []
    for key in snapshot.flags:
        try:
            flags.append(success(splitter.flag_details(key, unit, attributes, None)))
        except Error as exc:
            flags.append({"key": key, "errorCode": "INVALID_CONTEXT", "errorDetails": str(exc)})
    return {"flags": flags, "metadata": {"configVersion": snapshot.version}}
