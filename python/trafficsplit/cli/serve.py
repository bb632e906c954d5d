"""``trafficsplit serve CONFIG``: the HTTP service (OFREP and ``/v1/assign``) on uvicorn
(docs/service.md). SIGTERM or Ctrl-C stop it once the requests in flight are answered; it
then ends by that signal, as uvicorn does. Exit code 2 when it cannot start (a bad
configuration, a missing extra)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .._optional import require
from ..errors import Error
from ._args import count

EPILOG = """examples:
  trafficsplit serve experiments.yaml
  trafficsplit serve config/ --host 0.0.0.0 --port 8080 --workers 2 --token-file /run/secrets/token
  TRAFFICSPLIT_PROPAGATION_KEYS=k1:... trafficsplit serve config/ --trust signed
  curl -s -X POST localhost:8080/ofrep/v1/evaluate/flags/new-checkout \\
       -d '{"context": {"targetingKey": "user-1", "country": "US"}}'
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a configuration over HTTP: OFREP flags, /v1/assign, /metrics",
        description="Serves every experiment and flag of CONFIG (a file or folder, re-read "
        "when it changes) over HTTP: POST /ofrep/v1/evaluate/flags[/KEY], POST /v1/assign, "
        "POST /v1/assign/batch (JSON or Arrow), GET /healthz, /readyz, /metrics. The bearer "
        "token, if any, comes from --token-file or the TRAFFICSPLIT_SERVE_TOKEN variable "
        "(never the command line, which other users can read); propagation keys from "
        "TRAFFICSPLIT_PROPAGATION_KEYS.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", metavar="CONFIG", help="a YAML/JSON configuration file or folder")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (127.0.0.1): 0.0.0.0 for every interface",
    )
    p.add_argument(
        "--port", type=int, default=8080, help="port to listen on (8080): 0 lets the system choose"
    )
    p.add_argument("--workers", type=count, default=1, help="worker processes (1): 2")
    p.add_argument(
        "--token-file", type=Path, help="a file holding the bearer token: /run/secrets/token"
    )
    p.add_argument(
        "--max-body",
        type=count,
        default=8 * 1024 * 1024,
        help="largest body in bytes (8 MiB): 67108864",
    )
    p.add_argument(
        "--max-batch",
        type=count,
        default=100_000,
        help="most units per batch request (100000): 500000",
    )
    p.add_argument(
        "--trust",
        choices=("none", "signed", "any"),
        default="none",
        help="which incoming propagation headers count (none): signed",
    )
    p.add_argument(
        "--exposures",
        metavar="DIR",
        help="write an exposure record for every decision of /v1/assign and OFREP as JSON "
        "Lines files in DIR (one file per worker): exposures/",
    )
    p.add_argument(
        "--watch-interval", type=float, default=1.0, help="seconds between looks at CONFIG (1): 5"
    )
    p.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        help="seconds to finish requests in flight on shutdown (30): 10",
    )
    p.add_argument("--log-level", default="info", help="uvicorn's log level (info): warning")
    p.add_argument(
        "--access-log", action="store_true", help="log every request (off: it costs throughput)"
    )
    p.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        uvicorn = require("uvicorn", what="trafficsplit serve")
        require("pyarrow", extra="serve", what="trafficsplit serve")
        from ..service.app import OPTIONS_ENV, TOKEN_ENV, Service
        from ..telemetry.sinks import JsonlSink

        token = os.environ.get(TOKEN_ENV) or None
        if args.token_file is not None:
            token = args.token_file.read_text(encoding="utf-8").strip()
        options = {
            "max_body": args.max_body,
            "max_batch": args.max_batch,
            "trust": args.trust,
            "interval": args.watch_interval,
        }
        # Loaded here too with more workers: a bad configuration stops the command at once.
        exposures = None
        if args.exposures is not None and args.workers == 1:
            exposures = JsonlSink(args.exposures)
        app = Service(args.config, token=token, exposures=exposures, **options)
    except (Error, OSError, ImportError) as exc:
        print(f"trafficsplit serve: {exc}", file=sys.stderr)
        return 2
    settings = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "timeout_graceful_shutdown": args.shutdown_timeout,
        "lifespan": "on",
        "access_log": args.access_log,
    }
    if args.workers == 1:
        uvicorn.run(app, **settings)
    else:
        app.splitter.close()
        if args.exposures is not None:
            options["exposures"] = args.exposures
        os.environ[OPTIONS_ENV] = json.dumps({"config": args.config, **options})
        if token is not None:
            os.environ[TOKEN_ENV] = token
        uvicorn.run(
            "trafficsplit.service.app:from_environment",
            factory=True,
            workers=args.workers,
            **settings,
        )
    return 0
