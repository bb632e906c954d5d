"""The serving path of an installed trafficsplit, end to end, with nothing but the declared
dependencies (numpy, PyYAML). tests/test_wheel.py runs this file with the python of a fresh
virtual environment that holds only the built wheel (or the sdist's build); run by hand::

    python tests/smoke_serving.py --vectors tests/data/assignment_vectors.tsv \\
        --config tests/data/config/example.yaml --invalid tests/data/config/invalid.yaml \\
        --workdir /tmp/smoke [--expected values.json] [--installed]

Values come from elsewhere: the golden vectors of the assignment contract, and ``--expected``,
the :func:`serving_results` that the development environment computed for the same inputs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import trafficsplit as ts

HEAVY = ("pandas", "pyarrow", "polars", "matplotlib", "scipy", "opentelemetry", "redis")
"""Top-level modules that the serving path must not import (they are extras)."""

AT = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
UNITS: list[Any] = [
    *(f"user-{i}" for i in range(40)),
    *range(1000, 1010),
    "qa-user-1",
    42,
    "ünïcødé-用户",
    b"\x00raw-bytes\xff",
]
US = {"country": "US"}
EXPRESSIONS = [
    'country in ["US", "CA"] and tier == "premium"',
    'semver(app_version) >= "2.3.0"',
    'not (device == "tablet") or matches(email, ".*@example\\\\.com$")',
]
ATTRIBUTES: list[dict[str, Any]] = [
    {"country": "US", "tier": "premium", "app_version": "2.10.0", "email": "a@example.com"},
    {"country": "CA", "tier": "free", "app_version": "2.3.0-rc.1", "device": "tablet"},
    {"country": "DE", "device": "tablet", "email": "b@example.org", "app_version": "2.3.0"},
    {},
]


def heavy_modules(names: Iterable[str]) -> list[str]:
    return sorted({n for n in names if n.split(".", 1)[0] in HEAVY})


def _unit_json(unit: Any) -> Any:
    return {"hex": unit.hex()} if isinstance(unit, bytes) else unit


def serving_results(config: Path) -> dict[str, Any]:
    """Every value of the serving path that must not depend on how trafficsplit was installed:
    experiments, targeting, a configuration's experiments and flags, and `validate`'s output."""
    exp = ts.Experiment(
        "ranker-v2",
        [
            ts.Arm("control", 50, {"model": "ranker-v1"}),
            ts.Arm("treatment", 50, {"model": "ranker-v2"}),
        ],
        exposure=0.2,
    )
    out: dict[str, Any] = {"experiment": [], "targeting": [], "splitter": [], "flags": []}
    for u in UNITS:
        a = exp.assign(u)
        out["experiment"].append([_unit_json(u), a.arm, a.bucket, a.reason, a.payload])
    for expression in EXPRESSIONS:
        t = ts.Targeting(expression)
        out["targeting"].append([t.matches(attributes) for attributes in ATTRIBUTES])
    sp = ts.Splitter(config)
    try:
        for u in UNITS:
            for key, a in sp.assign_all(u, US, at=AT, log_exposure=False).items():
                out["splitter"].append([key, _unit_json(u), a.arm, a.bucket, a.reason, a.payload])
            for tier in ("internal", "free"):
                value = sp.flag("new-reranker", u, {"tier": tier}, log_exposure=False)
                out["flags"].append([_unit_json(u), tier, value])
        out["version"] = sp.version
    finally:
        sp.close()
    from trafficsplit.cli import main

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["validate", str(config)])
    out["validate"] = [code, stdout.getvalue()]
    return json.loads(json.dumps(out))  # tuples and lists alike, as they come back from a file


def check_vectors(path: Path) -> int:
    """Checks every unit row of the golden assignment vectors; returns how many."""
    experiments: dict[str, ts.Experiment] = {}
    checked = 0
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

    def when(us: str) -> dt.datetime | None:
        return None if us == "-" else epoch + dt.timedelta(microseconds=int(us))

    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        cols = line.split("\t")
        if cols[0] == "E":
            name, salt_hex, algorithm, buckets, version, steps = cols[1:]
            parsed = []
            for step in steps.split(";"):
                t, x, ws = step.split("|")
                parsed.append((when(t), float(x), [float(w) for w in ws.split(",")]))
            width = max(len(w) for _, _, w in parsed)
            names = [f"arm{i}" for i in range(width)]
            history = [
                {"at": t, "exposure": x, "weights": dict(zip(names, w, strict=False))}
                for t, x, w in parsed[:-1]
            ]
            t, x, w = parsed[-1]
            experiments[name] = ts.Experiment(
                name,
                dict(zip(names, w + [0.0] * (width - len(w)), strict=True)),
                x,
                bytes.fromhex(salt_hex).decode(),
                int(buckets),
                algorithm,
                history=history,
                allocated_at=t,
                bucket_version=int(version),
            )
            continue
        name, kind, text, at, arm, bucket, reason = cols[1:]
        unit: Any = {
            "str": lambda s: bytes.fromhex(s).decode(),
            "bytes": bytes.fromhex,
            "int": int,
            "none": lambda s: None,
        }[kind](text)
        a = experiments[name].assign(unit, at=when(at))
        got = (a.arm_index, a.bucket, a.reason)
        assert got == (int(arm), int(bucket), reason), (name, unit, at, got)
        checked += 1
    return checked


def _records(folder: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for f in sorted(folder.glob("*.jsonl"))
        for line in f.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def _assign_handler(sp: ts.Splitter) -> Callable[[str | None], bytes]:
    def handle(unit: str | None) -> bytes:
        a = sp.assign("ranker-v2", unit, US, at=AT)
        return json.dumps({"arm": a.arm, "reason": a.reason}).encode()

    return handle


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def check_wsgi(sp: ts.Splitter, unit: str, upstream_arm: str) -> dict[str, Any]:
    """A WSGI app behind the middleware, served by wsgiref on loopback, asked over HTTP."""
    handle = _assign_handler(sp)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = handle(environ.get("HTTP_X_USER_ID"))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    server: WSGIServer = make_server(
        "127.0.0.1", 0, ts.middleware.WSGIMiddleware(app, trust="any"), handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        results = {}
        for name, headers in (
            ("own", {"X-User-ID": unit}),
            ("propagated", {"X-User-ID": unit, "X-Experiment-ID": f"ranker-v2={upstream_arm}"}),
        ):
            conn = HTTPConnection("127.0.0.1", server.server_port, timeout=10)
            conn.request("GET", "/", headers=headers)
            response = conn.getresponse()
            assert response.status == 200, response.status
            results[name] = (json.loads(response.read()), response.getheader("X-Experiment-ID"))
            conn.close()
        return results
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def check_asgi(sp: ts.Splitter, unit: str, upstream_arm: str) -> tuple[dict, dict[bytes, bytes]]:
    """An ASGI app behind the middleware, called from asyncio with scope, receive and send."""
    handle = _assign_handler(sp)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        body = handle(dict(scope["headers"])[b"x-user-id"].decode())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "method": "GET",
        "path": "/",
        "headers": [
            (b"x-user-id", unit.encode()),
            (b"x-experiment-id", f"ranker-v2={upstream_arm}".encode()),
        ],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(ts.middleware.ASGIMiddleware(app, trust="any")(scope, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"], sent
    return json.loads(sent[1]["body"]), dict(sent[0]["headers"])


def check_cli(config: Path, invalid: Path, expected: list[Any] | None) -> None:
    """The `trafficsplit` console script of this environment, and what `-m trafficsplit`
    imports."""
    script = Path(sys.executable).with_name("trafficsplit")
    ok = subprocess.run([script, "validate", config], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: "), ok.stdout
    if expected is not None:
        assert [ok.returncode, ok.stdout] == expected, (ok.stdout, expected)
    bad = subprocess.run([script, "validate", invalid], capture_output=True, text=True)
    assert bad.returncode == 1, (bad.returncode, bad.stdout, bad.stderr)
    assert "invalid:" in bad.stderr, bad.stderr
    timed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "trafficsplit", "validate", config],
        capture_output=True,
        text=True,
    )
    assert timed.returncode == 0, timed.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in timed.stderr.splitlines()]
    assert heavy_modules(imported) == [], heavy_modules(imported)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=Path, required=True)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--invalid", type=Path)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--expected", type=Path, help="serving_results of another environment")
    parser.add_argument(
        "--installed", action="store_true", help="trafficsplit must come from this environment"
    )
    parser.add_argument("--vectors-only", action="store_true")
    args = parser.parse_args(argv)

    if args.installed:
        where = Path(ts.__file__).resolve()
        assert where.is_relative_to(Path(sys.prefix).resolve()), (where, sys.prefix)
    checked = check_vectors(args.vectors)
    print(f"golden vectors: {checked} rows match")
    if args.vectors_only:
        assert heavy_modules(sys.modules) == [], heavy_modules(sys.modules)
        return 0

    results = serving_results(args.config)
    if args.expected is not None:
        expected = json.loads(args.expected.read_text(encoding="utf-8"))
        for part in ("experiment", "targeting", "splitter", "flags", "version"):
            assert results[part] == expected[part], (part, results[part], expected[part])
        print("serving results equal the other environment's")
    regex = ts.Targeting('matches(email, "^[a-z]+@example\\\\.com$")')  # runs on RE2
    assert regex.matches({"email": "ab@example.com"}), "RE2 match"
    assert not regex.matches({"email": "ab@example.org"}), "RE2 mismatch"
    assert not regex.matches({"email": "ab@exampleXcom"}), "RE2 escaped dot"

    # An exposure logger writing JSONL, the middlewares and the headers, on one Splitter.
    folder = args.workdir / "exposures"
    sp = ts.Splitter(args.config, exposures=ts.JsonlSink(folder))
    try:
        unit = next(
            str(u)
            for u in UNITS
            if sp.assign("ranker-v2", u, US, at=AT, log_exposure=False).reason == "assigned"
        )
        own = sp.assign("ranker-v2", unit, US, at=AT)
        other = "control" if own.arm == "treatment" else "treatment"

        decisions = sp.assign_all(unit, US, at=AT, log_exposure=False)
        headers = ts.propagation.to_headers(decisions, versions=sp)
        assert headers["X-Experiment-ID"].startswith(f"ranker-v2={own.arm};v=1"), headers
        back = ts.propagation.from_headers(headers, trust="any")
        assert back["ranker-v2"].arm == own.arm and back["ranker-v2"].version == 1, back
        untrusted = ts.propagation.from_headers(headers)
        assert "ranker-v2" not in untrusted, "untrusted headers must not count"

        wsgi = check_wsgi(sp, unit, other)
        assert wsgi["own"][0] == {"arm": own.arm, "reason": "assigned"}, wsgi
        assert wsgi["own"][1].startswith(f"ranker-v2={own.arm};v=1"), wsgi
        assert wsgi["propagated"][0] == {"arm": other, "reason": "propagated"}, wsgi
        assert wsgi["propagated"][1].startswith(f"ranker-v2={other}"), wsgi

        body, sent_headers = check_asgi(sp, unit, other)
        assert body == {"arm": other, "reason": "propagated"}, body
        assert sent_headers[b"x-experiment-id"].decode().startswith(f"ranker-v2={other}")
    finally:
        sp.close()
    records = _records(folder)
    mine = [r for r in records if r["unit"] == unit and r["experiment"] == "ranker-v2"]
    assert {(r["arm"], r["reason"], r["bucket"]) for r in mine} == {
        (own.arm, "assigned", own.bucket),
        (other, "propagated", own.bucket),
    }, mine
    assert all(r["version"] == sp.version for r in records), records
    served = [r for r in mine if r["reason"] == "propagated"]
    assert all(r["evaluated_arm"] == own.arm and r["mismatch"] for r in served), served
    print(f"exposures: {len(records)} records on disk; WSGI over HTTP and ASGI propagate arms")

    check_cli(args.config, args.invalid, results["validate"] if args.expected else None)
    print("trafficsplit validate: ok and invalid files")

    heavy = heavy_modules(sys.modules)
    assert heavy == [], f"the serving path imported {heavy}"
    print("imported none of " + ", ".join(HEAVY))
    return 0


if __name__ == "__main__":
    sys.exit(main())
