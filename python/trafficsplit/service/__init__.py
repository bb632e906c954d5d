"""``trafficsplit serve``: the decisions of a Splitter over HTTP for services in any language,
with the OpenFeature Remote Evaluation Protocol (OFREP) for flags (docs/service.md).

Needs the ``serve`` extra (uvicorn, pyarrow) to run; :class:`Service` is a plain ASGI 3
application that any ASGI server can host.
"""

from __future__ import annotations

from .app import VERSION_HEADER, Service

__all__ = ["VERSION_HEADER", "Service"]
