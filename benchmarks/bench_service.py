#!/usr/bin/env python
"""Service benchmark: `trafficsplit serve` under wrk on loopback (OFREP single and bulk
evaluations, /v1/assign, the Arrow batch endpoint), next to the same decisions in process.

Run from the repository root:

    .venv/bin/python benchmarks/bench_service.py [--quick] [--markdown docs/benchmarks.md]

The service runs as `trafficsplit serve CONFIG --workers 1` in its own process; wrk (Debian's
``wrk``, one thread) drives each endpoint at a fixed number of connections with a Lua script
that changes the targeting key on every request and reports the requests, the errors (socket
errors and non-2xx answers) and the latency percentiles. The cases run in interleaved rounds
and each figure is the median of the rounds. In the same run, in this process: the OpenFeature
client over the in-process provider (`TrafficsplitProvider`), `openfeature.resolve` and
`Splitter.assign_columns` on the batch endpoint's Arrow table.
"""

from __future__ import annotations

import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa

import trafficsplit as ts
from _common import (
    PACKAGE_SOURCES,
    dist_version,
    environment_lines,
    finish_run,
    mark,
    parse_args,
    publish,
    start_run,
    table,
    targets_table,
)

SECTION = "bench_service"
SECTION_TITLE = "## HTTP service: `trafficsplit serve` under wrk"

TARGET_SINGLE_PER_S = 5_000  # OFREP single evaluations per second, one worker
TARGET_P99_MS = 10.0
TARGET_BATCH_UNITS_PER_S = 1_000_000  # unit-assignments per second through the Arrow endpoint

CONFIG = {
    "layers": [{"key": "ranking"}],
    "holdouts": [{"key": "global", "percent": 5}],
    "experiments": [
        {
            "key": "ranker-v2",
            "layer": "ranking",
            "layer_share": 60,
            "holdouts": ["global"],
            "exposure": 0.5,
            "arms": {"control": 50, "treatment": 50},
        },
        {
            "key": "ranker-us",
            "layer": "ranking",
            "layer_share": 40,
            "targeting": 'country in ["US", "CA"]',
            "arms": {"control": 34, "compact": 33, "dense": 33},
        },
        {"key": "search-ui", "arms": {"control": 50, "dense": 50}},
    ],
    "flags": [
        {
            "key": "new-checkout",
            "type": "bool",
            "default": False,
            "rules": [
                {"when": 'tier == "internal"', "value": True},
                {"when": 'country in ["US", "CA"]', "rollout": {"true": 25, "false": 75}},
            ],
        },
        {
            "key": "checkout-theme",
            "type": "string",
            "default": "classic",
            "prerequisites": [{"flag": "new-checkout", "value": True}],
            "rules": [
                {"rollout": [{"value": "dark", "weight": 50}, {"value": "light", "weight": 50}]}
            ],
        },
        {"key": "max-results", "type": "number", "default": 10},
    ],
}

# The Lua script's end: one line of JSON with what wrk measured.
LUA_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"socket_errors":%d,"status_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""

LUA_JSON = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format(%s, n))
end
"""

LUA_ARROW = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/vnd.apache.arrow.stream"
local f = assert(io.open("%s", "rb"))
wrk.body = f:read("*a")
f:close()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_service(config: Path, port: int, max_batch: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "trafficsplit", "serve", str(config), "--port", str(port)]
    cmd += ["--workers", "1", "--log-level", "warning", "--max-batch", str(max_batch)]
    cmd += ["--max-body", str(64 * 1024 * 1024)]
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("trafficsplit serve did not start")
        time.sleep(0.1)


def run_wrk(url: str, script: Path, connections: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    r = json.loads(line[len("RESULT ") :])
    r["per_s"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = r["socket_errors"] + r["status_errors"]
    return r


def arrow_body(rows: int) -> tuple[bytes, pa.Table]:
    rng = np.random.default_rng(5)
    units = [str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**63, rows)]
    units_table = pa.table({"unit": pa.array(units, pa.string())})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, units_table.schema) as w:
        w.write_table(units_table)
    return sink.getvalue().to_pybytes(), units_table


def in_process(sp: ts.Splitter, units_table: pa.Table, reps: int) -> dict[str, float]:
    """Seconds per call of the in-process peers (medians of ``reps`` timings)."""
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext

    from trafficsplit.openfeature import TrafficsplitProvider, resolve

    api.set_provider_and_wait(TrafficsplitProvider(sp), domain="bench")
    client = api.get_client("bench")
    contexts = [EvaluationContext(f"user-{i}", {"country": "US"}) for i in range(1000)]
    attrs = {"country": "US"}

    def provider() -> None:
        for c in contexts:
            client.get_boolean_details("new-checkout", False, c)

    def direct() -> None:
        for i in range(1000):
            resolve(sp, "new-checkout", "boolean", False, f"user-{i}", attrs)

    def assign() -> None:
        for i in range(1000):
            sp.assign("ranker-v2", f"user-{i}", attrs)

    def columns() -> None:
        sp.assign_columns(units_table, "unit", ["ranker-v2"])

    out = {}
    for name, fn, per in (
        ("provider", provider, 1000),
        ("resolve", direct, 1000),
        ("assign", assign, 1000),
        ("columns", columns, units_table.num_rows),
    ):
        fn()
        out[name] = statistics.median(timeit.repeat(fn, number=1, repeat=reps)) / per
    api.clear_providers()
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, SECTION, argv)
    if shutil.which("wrk") is None:
        print("bench_service needs wrk (Debian package wrk)", file=sys.stderr)
        return 2
    seconds = 2.0 if args.quick else 10.0
    rounds = 1 if args.quick else 3
    batch_rows = 100_000
    started = time.perf_counter()
    machine, command = start_run(
        {
            "uvicorn": dist_version("uvicorn"),
            "httptools": dist_version("httptools", "not installed (h11)"),
            "uvloop": dist_version("uvloop", "not installed (asyncio)"),
            "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1],
        },
        git_sources=PACKAGE_SOURCES,
    )
    body, units_table = arrow_body(batch_rows)
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        folder = Path(tmp)
        config = folder / "experiments.json"
        config.write_text(json.dumps(CONFIG))
        (folder / "batch.arrow").write_bytes(body)
        ctx = '\'{"context":{"targetingKey":"user-%d","country":"US"}}\''
        assign = '\'{"unit":"user-%d","experiment":"ranker-v2","attributes":{"country":"US"}}\''
        scripts = {
            "single": LUA_JSON % ctx,
            "bulk": LUA_JSON % ctx,
            "assign": LUA_JSON % assign,
            "arrow": LUA_ARROW % (folder / "batch.arrow"),
        }
        for name, text in scripts.items():
            (folder / f"{name}.lua").write_text(text + LUA_DONE)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        cases = [
            ("OFREP single flag", "single", f"{base}/ofrep/v1/evaluate/flags/new-checkout", 16),
            ("OFREP bulk (6 flags and experiments)", "bulk", f"{base}/ofrep/v1/evaluate/flags", 16),
            ("/v1/assign (one experiment)", "assign", f"{base}/v1/assign", 16),
            (
                f"/v1/assign/batch, Arrow, {batch_rows:,} units",
                "arrow",
                f"{base}/v1/assign/batch",
                2,
            ),
        ]
        proc = start_service(config, port, batch_rows)
        try:
            for _, script, url, conns in cases:  # warm up
                run_wrk(url, folder / f"{script}.lua", conns, 1)
            results: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in cases}
            for _ in range(rounds):
                for name, script, url, conns in cases:
                    results[name].append(run_wrk(url, folder / f"{script}.lua", conns, seconds))
        finally:
            proc.terminate()
            proc.wait(30)
    sp = ts.Splitter(CONFIG)
    local = in_process(sp, units_table, 5 if args.quick else 21)
    elapsed = finish_run(machine, started)

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    rows = []
    for name, script, _, conns in cases:
        per_s = med(name, "per_s")
        units = f"{per_s * batch_rows / 1e6:.2f} M/s" if script == "arrow" else ""
        errors = sum(int(r["errors"]) for r in results[name])
        rows.append(
            [
                name,
                str(conns),
                f"{per_s:,.0f}",
                f"{med(name, 'p50_us') / 1e3:.2f} ms",
                f"{med(name, 'p99_us') / 1e3:.2f} ms",
                str(errors),
                units,
            ]
        )
    single = cases[0][0]
    single_per_s = med(single, "per_s")
    single_p99 = med(single, "p99_us") / 1e3
    single_errors = sum(int(r["errors"]) for r in results[single])
    batch_units = med(cases[3][0], "per_s") * batch_rows
    all_errors = sum(int(r["errors"]) for rs in results.values() for r in rs)
    targets = [
        [
            "OFREP single evaluations per second, one worker",
            f"≥ {TARGET_SINGLE_PER_S:,}",
            f"{single_per_s:,.0f}",
            mark(single_per_s >= TARGET_SINGLE_PER_S),
        ],
        [
            "p99 latency of single evaluations (16 connections)",
            f"< {TARGET_P99_MS:g} ms",
            f"{single_p99:.2f} ms",
            mark(single_p99 < TARGET_P99_MS),
        ],
        ["errors, every case", "0", str(all_errors), mark(all_errors == 0 and single_errors == 0)],
        [
            "unit-assignments per second, Arrow batch endpoint",
            f"≥ {TARGET_BATCH_UNITS_PER_S / 1e6:g} M",
            f"{batch_units / 1e6:.2f} M",
            mark(batch_units >= TARGET_BATCH_UNITS_PER_S),
        ],
    ]
    peers = [
        [
            "OpenFeature client, in-process provider (`get_boolean_details`)",
            f"{local['provider'] * 1e6:.1f} µs",
            f"{1 / local['provider']:,.0f}",
            f"{(1 / local['provider']) / single_per_s:.0f}×",
        ],
        [
            "`trafficsplit.openfeature.resolve` (what OFREP answers with)",
            f"{local['resolve'] * 1e6:.1f} µs",
            f"{1 / local['resolve']:,.0f}",
            f"{(1 / local['resolve']) / single_per_s:.0f}×",
        ],
        [
            "`Splitter.assign` (what /v1/assign answers with)",
            f"{local['assign'] * 1e6:.2f} µs",
            f"{1 / local['assign']:,.0f}",
            f"{(1 / local['assign']) / med(cases[2][0], 'per_s'):.0f}×",
        ],
        [
            f"`Splitter.assign_columns`, the same {batch_rows:,}-unit Arrow table",
            f"{local['columns'] * 1e9:.0f} ns a unit",
            f"{1 / local['columns']:,.0f}",
            f"{(1 / local['columns']) / batch_units:.1f}×",
        ],
    ]
    body_lines = environment_lines(command, machine)
    body_lines += targets_table(targets)
    body_lines += [
        f"### Over HTTP: wrk, one thread, {seconds:g} s a case, median of {rounds} "
        "interleaved rounds",
        "",
        *table(["endpoint", "connections", "requests/s", "p50", "p99", "errors", "units"], rows),
        "",
        "### In process, the same decisions (median of timings; the ratio is in-process "
        "calls per second ÷ the HTTP endpoint's)",
        "",
        *table(["call", "per call", "per second", "× the HTTP endpoint"], peers),
        "",
        "The service and wrk share the machine's two cores: one uvicorn worker, one wrk "
        "thread. Each single request carries a new targeting key (`user-<n>`) and a country "
        "that sends the flag through its percentage rollout; the Arrow body holds 100,000 "
        "UUID strings and the answer an Arrow stream of arm, bucket and reason for "
        "`ranker-v2`. Errors count socket errors and answers other than 2xx/3xx over every "
        f"round. The run took {elapsed:.0f} s.",
        "",
    ]
    publish(body_lines, args.markdown, SECTION, SECTION_TITLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
