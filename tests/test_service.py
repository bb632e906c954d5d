"""The HTTP service (``trafficsplit serve``) started for real on a loopback port: the OFREP
provider for Python against it gives what the in-process Splitter gives; /v1/assign and the
batch endpoint (JSON and Arrow) give what per-unit ``Splitter.assign`` gives; auth, limits,
malformed input, ETags, metrics, reload under load and graceful shutdown."""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import trafficsplit as ts

pa = pytest.importorskip("pyarrow")
uvicorn = pytest.importorskip("uvicorn")
ofrep_provider = pytest.importorskip("openfeature.contrib.provider.ofrep")
from openfeature import api  # noqa: E402
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import FlagNotFoundError, InvalidContextError  # noqa: E402

from trafficsplit.openfeature import TrafficsplitProvider  # noqa: E402
from trafficsplit.service import VERSION_HEADER, Service  # noqa: E402

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
            "overrides": {"treatment": ["qa-user-1", 42]},
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
        {
            "key": "search-limits",
            "type": "json",
            "default": {"page_size": 20},
            "rules": [{"when": "user_id in @power_users", "value": {"page_size": 100}}],
            "lists": {"power_users": ["u-1", "u-2"]},
        },
        {"key": "max-results", "type": "number", "default": 10, "enabled": False},
        {"key": "ratio", "type": "number", "default": 0.5},
    ],
}

# OpenFeature's reason for each of Splitter.flag_details', written from the OpenFeature spec.
OF_REASON = {
    "split": "SPLIT",
    "targeting_match": "TARGETING_MATCH",
    "default": "DEFAULT",
    "disabled": "DISABLED",
    "prerequisite_failed": "DEFAULT",
}


class Running:
    """A uvicorn server with ``app`` on 127.0.0.1 (port chosen by the OS), in a thread."""

    def __init__(self, app) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def call(port, method, path, body=b"", headers=None):
    """(status, headers, body) of one request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def served():
    app = Service(CONFIG)
    running = Running(app)
    yield app, running
    running.close()


def contexts(n, seed=7):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ctx = {"country": rng.choice(["US", "CA", "DE", "FR"])}
        if rng.random() < 0.2:
            ctx["tier"] = rng.choice(["internal", "premium"])
        if rng.random() < 0.1:
            ctx["user_id"] = rng.choice(["u-1", "u-2", "u-3"])
        key = f"user-{rng.randrange(10**9)}" if i % 50 else None  # some without a unit
        out.append((key, ctx))
    return out


# -- OFREP -------------------------------------------------------------------------------------


def test_ofrep_client_against_the_server_equals_the_in_process_provider(served):
    _, running = served
    sp = ts.Splitter(CONFIG)
    api.set_provider_and_wait(ofrep_provider.OFREPProvider(running.url), domain="ofrep")
    api.set_provider_and_wait(TrafficsplitProvider(sp), domain="in-process")
    remote, local = api.get_client("ofrep"), api.get_client("in-process")
    calls = {
        "new-checkout": ("get_boolean_details", False),
        "checkout-theme": ("get_string_details", "none"),
        "search-limits": ("get_object_details", {}),
        "max-results": ("get_integer_details", 0),
        "ratio": ("get_float_details", 0.0),
        "ranker-v2": ("get_string_details", "no-arm"),
        "ranker-us": ("get_string_details", "no-arm"),
    }
    seen = Counter()
    try:
        for unit, ctx in contexts(2500):
            key = random.Random(f"{unit}{ctx}").choice(sorted(calls))
            method, default = calls[key]
            context = EvaluationContext(unit, ctx)
            got = getattr(remote, method)(key, default, context)
            want = getattr(local, method)(key, default, context)
            assert (got.value, got.variant, got.reason, got.error_code) == (
                want.value,
                want.variant,
                want.reason,
                want.error_code,
            ), (key, unit, ctx)
            if want.error_code is None:
                assert got.flag_metadata == want.flag_metadata
                assert want.flag_metadata["version"] == sp.version
            seen[str(want.reason), str(want.error_code)] += 1
    finally:
        api.clear_providers()
    # The comparison met every kind of answer.
    reasons = {r for r, _ in seen}
    assert {"SPLIT", "TARGETING_MATCH", "DEFAULT", "DISABLED", "STATIC"} <= reasons, seen
    assert ("ERROR", "TARGETING_KEY_MISSING") in seen, seen


def test_ofrep_provider_values_equal_splitter_decisions(served):
    _, running = served
    sp = ts.Splitter(CONFIG)
    provider = ofrep_provider.OFREPProvider(running.url)
    for i in range(300):
        unit, ctx = f"user-{i}", {"country": "US"}
        got = provider.resolve_boolean_details("new-checkout", False, EvaluationContext(unit, ctx))
        want = sp.flag_details("new-checkout", unit, ctx)
        assert (got.value, got.variant) == (want.value, want.variant)
        arm = provider.resolve_string_details("ranker-us", "x", EvaluationContext(unit, ctx))
        assert arm.value == (sp.assign("ranker-us", unit, ctx).arm or "x")
    with pytest.raises(FlagNotFoundError):
        provider.resolve_boolean_details("no-such-flag", True, EvaluationContext("u"))


def test_ofrep_bulk_evaluates_every_flag_with_an_etag(served):
    _, running = served
    sp = ts.Splitter(CONFIG)
    body = {"context": {"targetingKey": "user-9", "country": "CA", "tier": "internal"}}
    status, headers, raw = call(running.port, "POST", "/ofrep/v1/evaluate/flags", body)
    assert status == 200
    flags = {f["key"]: f for f in json.loads(raw)["flags"]}
    assert set(flags) == set(sp.snapshot.flags) | set(sp.snapshot.experiments)
    for key, f in flags.items():
        if key in sp.snapshot.experiments:
            want_arm = sp.assign(key, "user-9", {"country": "CA", "tier": "internal"}).arm
            assert f.get("value") == want_arm and f["reason"] in ("SPLIT", "DEFAULT")
            continue
        want = sp.flag_details(key, "user-9", {"country": "CA", "tier": "internal"})
        assert (f["value"], f["variant"], f["reason"]) == (
            want.value,
            want.variant,
            "STATIC" if key == "ratio" else OF_REASON[want.reason],  # ratio: no rules
        )
    tag = headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]+"', tag)
    status, headers2, raw2 = call(
        running.port, "POST", "/ofrep/v1/evaluate/flags", body, {"If-None-Match": tag}
    )
    assert (status, raw2, headers2["etag"]) == (304, b"", tag)
    other = {"context": {"targetingKey": "user-9", "country": "DE"}}
    status, headers3, _ = call(
        running.port, "POST", "/ofrep/v1/evaluate/flags", other, {"If-None-Match": tag}
    )
    assert status == 200 and headers3["etag"] != tag


def test_ofrep_errors_have_ofrep_shapes(served):
    _, running = served
    port = running.port
    status, _, raw = call(port, "POST", "/ofrep/v1/evaluate/flags/nope", {"context": {}})
    assert status == 404
    assert json.loads(raw)["errorCode"] == "FLAG_NOT_FOUND"
    assert json.loads(raw)["key"] == "nope"
    status, _, raw = call(port, "POST", "/ofrep/v1/evaluate/flags/ratio", b"{not json")
    assert status == 400 and json.loads(raw)["errorCode"] == "PARSE_ERROR"
    status, _, raw = call(port, "POST", "/ofrep/v1/evaluate/flags/ratio", {"context": [1, 2]})
    assert status == 400 and json.loads(raw)["errorCode"] == "INVALID_CONTEXT"
    status, _, raw = call(port, "POST", "/ofrep/v1/evaluate/flags", {"context": "x"})
    body = json.loads(raw)
    assert status == 400 and body["errorCode"] == "INVALID_CONTEXT" and "key" not in body
    provider = ofrep_provider.OFREPProvider(running.url)
    with pytest.raises(FlagNotFoundError):
        provider.resolve_boolean_details("nope", False, EvaluationContext("u"))
    with pytest.raises(InvalidContextError):
        provider.resolve_float_details("ratio", 0.0, EvaluationContext(None, {"targetingKey": 5}))


# -- assignments -------------------------------------------------------------------------------


def units_and_attributes(n, seed=3):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        unit = rng.choice([f"u{rng.randrange(10**8)}", rng.randrange(10**12), "qa-user-1", 42])
        out.append((unit, {"country": rng.choice(["US", "CA", "DE"])}))
    return out


def test_assign_equals_splitter_assign(served):
    _, running = served
    sp = ts.Splitter(CONFIG)
    for unit, attrs in units_and_attributes(600):
        status, headers, raw = call(
            running.port, "POST", "/v1/assign", {"unit": unit, "attributes": attrs}
        )
        assert status == 200
        got = json.loads(raw)
        assert got["version"] == headers[VERSION_HEADER.lower()] == sp.version
        assert set(got["assignments"]) == set(sp.snapshot.experiments)
        for key, a in got["assignments"].items():
            want = sp.assign(key, unit, attrs)
            bucket = want.bucket if want.bucket >= 0 else None
            assert (a["arm"], a["bucket"], a["reason"]) == (want.arm, bucket, want.reason)
    status, _, raw = call(
        running.port, "POST", "/v1/assign", {"unit": "u1", "experiment": "search-ui"}
    )
    assert list(json.loads(raw)["assignments"]) == ["search-ui"]


def test_batch_json_and_arrow_equal_per_unit_assign(served):
    _, running = served
    sp = ts.Splitter(CONFIG)
    rows = units_and_attributes(3000, seed=11)
    units = [u for u, _ in rows] + [None]
    countries = [a["country"] for _, a in rows] + ["US"]
    status, _, raw = call(
        running.port,
        "POST",
        "/v1/assign/batch",
        {"units": units, "attributes": {"country": countries}},
    )
    assert status == 200
    got = json.loads(raw)["experiments"]
    table = pa.table(
        {"user_id": [None if u is None else str(u) for u in units], "country": countries}
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        for batch in table.to_batches(max_chunksize=1000):  # several batches in one stream
            w.write_batch(batch)
    status, headers, raw = call(
        running.port,
        "POST",
        "/v1/assign/batch?unit=user_id&experiment=ranker-v2&experiment=ranker-us",
        sink.getvalue().to_pybytes(),
        {"Content-Type": "application/vnd.apache.arrow.stream"},
    )
    assert status == 200 and headers["content-type"] == "application/vnd.apache.arrow.stream"
    arrow = pa.ipc.open_stream(raw).read_all().to_pylist()
    assert len(arrow) == len(units)
    for i, (unit, country) in enumerate(zip(units, countries, strict=True)):
        for key in sp.snapshot.experiments:
            want = sp.assign(key, unit, {"country": country})
            j = got[key]
            assert (j["arm"][i], j["bucket"][i], j["reason"][i]) == (
                want.arm,
                want.bucket if unit is not None else None,
                want.reason,
            ), (i, unit, key)
            if key != "search-ui":
                r = arrow[i]
                assert (r[key], r[f"{key}_bucket"], r[f"{key}_reason"]) == (
                    want.arm,
                    want.bucket if unit is not None else None,
                    want.reason,
                )
    assert "search-ui" not in pa.ipc.open_stream(raw).schema.names


def test_propagation_follows_the_trust_setting():
    sp = ts.Splitter(CONFIG)
    unit = next(f"u{i}" for i in range(1000) if sp.assign("search-ui", f"u{i}").arm == "control")
    for trust, arm, reason in (("none", "control", "assigned"), ("any", "dense", "propagated")):
        running = Running(Service(CONFIG, trust=trust))
        try:
            status, headers, raw = call(
                running.port,
                "POST",
                "/v1/assign",
                {"unit": unit, "experiment": "search-ui"},
                {"X-Experiment-ID": "search-ui=dense;v=1"},
            )
        finally:
            running.close()
        a = json.loads(raw)["assignments"]["search-ui"]
        assert (status, a["arm"], a["reason"]) == (200, arm, reason)
        assert f"search-ui={arm}" in headers["x-experiment-id"]


def test_signed_propagation_honours_only_a_tag_for_this_unit():
    keys = ts.propagation.PropagationKeys({"k1": "a-secret-of-at-least-16-bytes"})
    sp = ts.Splitter(CONFIG)
    unit = next(f"u{i}" for i in range(1000) if sp.assign("search-ui", f"u{i}").arm == "control")
    tagged = keys.sign(ts.propagation.Propagated("search-ui", "dense", 1), unit)
    header = ts.propagation.to_headers([tagged], propagation_key=False)["X-Experiment-ID"]
    running = Running(Service(CONFIG, trust="signed", propagation_key=keys))
    try:
        got = {}
        for who in (unit, "someone-else"):
            status, _, raw = call(
                running.port,
                "POST",
                "/v1/assign",
                {"unit": who, "experiment": "search-ui"},
                {"X-Experiment-ID": header},
            )
            assert status == 200
            got[who] = json.loads(raw)["assignments"]["search-ui"]
        unsigned = call(
            running.port,
            "POST",
            "/v1/assign",
            {"unit": unit, "experiment": "search-ui"},
            {"X-Experiment-ID": "search-ui=dense;v=1"},
        )
    finally:
        running.close()
    assert (got[unit]["arm"], got[unit]["reason"]) == ("dense", "propagated")
    own = sp.assign("search-ui", "someone-else")
    assert (got["someone-else"]["arm"], got["someone-else"]["reason"]) == (own.arm, own.reason)
    mine = json.loads(unsigned[2])["assignments"]["search-ui"]
    assert (mine["arm"], mine["reason"]) == ("control", "assigned")


def test_decisions_leave_exposure_records(tmp_path):
    sp = ts.Splitter(CONFIG)
    running = Running(Service(CONFIG, exposures=ts.telemetry.JsonlSink(tmp_path)))
    units = [f"x{i}" for i in range(60)]
    try:
        for u in units:
            call(
                running.port,
                "POST",
                "/v1/assign",
                {"unit": u, "experiment": "search-ui"},
                {"X-Request-ID": f"req-{u}"},
            )
            call(
                running.port,
                "POST",
                "/ofrep/v1/evaluate/flags/new-checkout",
                {"context": {"targetingKey": u, "country": "US"}},
            )
        call(running.port, "POST", "/v1/assign/batch", {"units": units})  # leaves none
    finally:
        running.close()  # the shutdown writes what is queued
    df = ts.read_exposures(tmp_path)
    ui = df[df["experiment"] == "search-ui"].set_index("unit")
    assert sorted(ui.index) == sorted(units)
    for u in units:
        assert ui.loc[u, "arm"] == sp.assign("search-ui", u).arm
        assert ui.loc[u, "request_id"] == f"req-{u}"
    rollout = df[df["experiment"] == "new-checkout/rule1"]
    assert sorted(rollout["unit"]) == sorted(units)  # every unit went through the rollout
    for u, arm in zip(rollout["unit"], rollout["arm"], strict=True):
        value = sp.flag_details("new-checkout", u, {"country": "US"}, log_exposure=False).value
        assert arm == ("v0" if value else "v1")
    assert len(df) == 2 * len(units)


def test_importing_the_service_imports_no_server_or_arrow():
    code = (
        "import sys, trafficsplit.service, trafficsplit.cli; "
        "print(sorted(m for m in ('uvicorn', 'pyarrow', 'openfeature') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- auth, limits, malformed input -------------------------------------------------------------


def test_bearer_token():
    running = Running(Service(CONFIG, token="s3cret-token-0123456789"))
    try:
        port = running.port
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
            status, h, raw = call(port, "POST", "/v1/assign", {"unit": "u"}, headers)
            assert status == 401 and h["www-authenticate"].startswith("Bearer")
            assert json.loads(raw)["status"] == 401
        good = {"Authorization": "Bearer s3cret-token-0123456789"}
        assert call(port, "POST", "/v1/assign", {"unit": "u"}, good)[0] == 200
        assert call(port, "GET", "/metrics", b"", good)[0] == 200
        assert call(port, "GET", "/metrics")[0] == 401
        assert call(port, "GET", "/healthz")[0] == 200 and call(port, "GET", "/readyz")[0] == 200
        provider = ofrep_provider.OFREPProvider(running.url)
        with pytest.raises(Exception, match="unauthorized"):
            provider.resolve_boolean_details("new-checkout", False, EvaluationContext("u"))
        authed = ofrep_provider.OFREPProvider(running.url, headers_factory=lambda: good)
        assert authed.resolve_boolean_details(
            "new-checkout", False, EvaluationContext("u", {"tier": "internal"})
        ).value
    finally:
        running.close()


def test_limits_on_body_and_batch():
    running = Running(Service(CONFIG, max_body=4096, max_batch=100))
    try:
        port = running.port
        big = {"units": ["u"] * 2000}
        status, _, raw = call(port, "POST", "/v1/assign/batch", big)
        assert status == 413 and "4,096" in json.loads(raw)["detail"]
        # Without a Content-Length (chunked), refused while reading.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/v1/assign", body=iter([b" " * 3000] * 3), encode_chunked=True)
        assert conn.getresponse().status == 413
        conn.close()
        status, _, raw = call(port, "POST", "/v1/assign/batch", {"units": list(range(101))})
        assert status == 413 and "100" in json.loads(raw)["detail"]
        assert call(port, "POST", "/v1/assign/batch", {"units": list(range(100))})[0] == 200
        table = pa.table({"unit": [str(i) for i in range(101)]})
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
        arrow = {"Content-Type": "application/vnd.apache.arrow.stream"}
        assert call(port, "POST", "/v1/assign/batch", sink.getvalue().to_pybytes(), arrow)[0] == 413
    finally:
        running.close()


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/v1/assign", b"{", 400, "not JSON"),
        ("/v1/assign", b"\xff\xfe", 400, "not"),
        ("/v1/assign", b"[1, 2]", 400, "JSON object"),
        ("/v1/assign", b'{"unit": 1.5}', 400, "unit must be"),
        ("/v1/assign", b'{"unit": true}', 400, "unit must be"),
        ("/v1/assign", b'{"unit": "u", "attributes": [1]}', 400, "attributes"),
        ("/v1/assign", b'{"unit": "u", "experiment": "nope"}', 404, "unknown experiment 'nope'"),
        ("/v1/assign", b'{"unit": "u", "extra": 1}', 400, "unknown field"),
        ("/v1/assign", b'{"unit": ' + b"1" * 5000 + b"}", 400, "not JSON"),
        ("/v1/assign", b"[" * 100_000, 400, "nests too deeply"),
        ("/v1/assign/batch", b'{"units": "abc"}', 400, "units must be a list"),
        ("/v1/assign/batch", b'{"units": ["a", 2.5]}', 400, "units[1]"),
        ("/v1/assign/batch", b'{"units": ["a"], "attributes": {"c": [1, 2]}}', 400, "one per unit"),
        ("/v1/assign/batch", b'{"units": ["a", "b"], "attributes": {"c": [1, "x"]}}', 400, "c"),
        ("/nowhere", b"", 404, "/nowhere"),
    ],
)
def test_malformed_input_gets_a_problem_body(served, path, body, status, words):
    _, running = served
    got, headers, raw = call(running.port, "POST", path, body)
    assert got == status
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(raw)
    assert problem["status"] == status and words in problem["detail"]
    assert "Traceback" not in raw.decode() and 'File "' not in raw.decode()


def test_bad_arrow_and_methods(served):
    _, running = served
    arrow = {"Content-Type": "application/vnd.apache.arrow.stream"}
    status, _, raw = call(running.port, "POST", "/v1/assign/batch", b"garbage" * 10, arrow)
    assert status == 400 and "Arrow" in json.loads(raw)["detail"]
    table = pa.table({"id": ["a"]})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    status, _, raw = call(
        running.port, "POST", "/v1/assign/batch", sink.getvalue().to_pybytes(), arrow
    )
    assert status == 400 and "no column 'unit'" in json.loads(raw)["detail"]
    status, headers, _ = call(running.port, "GET", "/v1/assign")
    assert status == 405 and headers["allow"] == "POST"


# -- metrics -----------------------------------------------------------------------------------


def metric(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + r" (\S+)"
    m = re.search(r"^" + pattern + "$", text, re.M)
    return None if m is None else float(m.group(1))


def test_metrics_count_requests_and_arms():
    sp = ts.Splitter(CONFIG)
    running = Running(Service(CONFIG))
    try:
        port = running.port
        units = [f"m{i}" for i in range(400)]
        for u in units[:100]:
            call(port, "POST", "/v1/assign", {"unit": u, "experiment": "search-ui"})
        call(port, "POST", "/v1/assign/batch", {"units": units[100:], "experiments": ["search-ui"]})
        call(port, "POST", "/v1/assign", b"{")
        text = call(port, "GET", "/metrics")[2].decode()
    finally:
        running.close()
    want = Counter(sp.assign("search-ui", u).arm for u in units)
    for arm, n in want.items():
        assert metric(text, "trafficsplit_assignments_total", experiment="search-ui", arm=arm) == n
    assert metric(text, "trafficsplit_requests_total", endpoint="assign", status="200") == 100
    assert metric(text, "trafficsplit_requests_total", endpoint="assign", status="400") == 1
    count = metric(text, "trafficsplit_request_duration_seconds_count", endpoint="assign")
    inf = metric(text, "trafficsplit_request_duration_seconds_bucket", endpoint="assign", le="+Inf")
    assert count == inf == 101
    assert metric(text, "trafficsplit_config_reloads_total") == 0
    assert metric(text, "trafficsplit_config_info", version=sp.version) == 1


# -- reload and shutdown -----------------------------------------------------------------------


def write_atomically(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def test_reload_under_load(tmp_path):
    path = tmp_path / "experiments.json"
    before = {"experiments": [{"key": "e", "arms": {"a": 50, "b": 50}}]}
    after = {"experiments": [{"key": "e", "arms": {"a": 10, "b": 90}}]}
    write_atomically(path, before)
    app = Service(path, interval=0.05)
    expected = {ts.Splitter(c).version: ts.Splitter(c) for c in (before, after)}
    running = Running(app)
    results: list[tuple[int, str, str, str]] = []
    stop = threading.Event()

    def client(seed: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
        i = 0
        while not stop.is_set():
            unit = f"s{seed}-{i}"
            conn.request("POST", "/v1/assign", body=json.dumps({"unit": unit}))
            r = conn.getresponse()
            body = json.loads(r.read())
            results.append((r.status, r.getheader(VERSION_HEADER), unit, json.dumps(body)))
            i += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(s,)) for s in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.5)
        write_atomically(path, after)
        deadline = time.monotonic() + 10
        while app.splitter.version != ts.Splitter(after).version:
            assert time.monotonic() < deadline, "the new configuration was not taken"
            time.sleep(0.02)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
        text = call(running.port, "GET", "/metrics")[2].decode()
        running.close()
    versions = Counter(v for _, v, _, _ in results)
    assert set(versions) == set(expected) and min(versions.values()) > 20, versions
    for status, version, unit, body in results:
        got = json.loads(body)
        assert status == 200 and got["version"] == version
        want = expected[version].assign("e", unit)
        assert got["assignments"]["e"]["arm"] == want.arm, (version, unit)
    assert metric(text, "trafficsplit_config_reloads_total") == 1


def test_an_invalid_configuration_is_counted_and_the_last_good_one_serves(tmp_path):
    path = tmp_path / "experiments.json"
    good = {"experiments": [{"key": "e", "arms": {"a": 50, "b": 50}}]}
    write_atomically(path, good)
    running = Running(Service(path, interval=0.05))
    try:
        path.write_text('{"experiments": [{"key": "e", "arms": {"a": -1}}]}')
        deadline = time.monotonic() + 10
        while True:
            text = call(running.port, "GET", "/metrics")[2].decode()
            if metric(text, "trafficsplit_config_reload_errors_total") == 1:
                break
            assert time.monotonic() < deadline, "the invalid configuration was not seen"
            time.sleep(0.05)
        status, headers, raw = call(running.port, "POST", "/v1/assign", {"unit": "u1"})
    finally:
        running.close()
    version = ts.Splitter(good).version
    assert status == 200 and headers[VERSION_HEADER.lower()] == version
    assert json.loads(raw)["assignments"]["e"]["arm"] == ts.Splitter(good).assign("e", "u1").arm
    assert metric(text, "trafficsplit_config_reloads_total") == 0


def test_serve_command_with_two_workers(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(CONFIG))
    token = tmp_path / "token"
    token.write_text("a-token-of-some-length\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "trafficsplit", "serve", str(path), "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--workers", "2", "--token-file", str(token), "--log-level", "warning"]
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if call(port, "GET", "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "did not start"
            time.sleep(0.1)
        sp = ts.Splitter(CONFIG)
        auth = {"Authorization": "Bearer a-token-of-some-length"}
        assert call(port, "POST", "/v1/assign", {"unit": "u"})[0] == 401
        for i in range(40):
            status, _, raw = call(port, "POST", "/v1/assign", {"unit": f"w{i}"}, auth)
            got = json.loads(raw)["assignments"]["search-ui"]["arm"]
            assert status == 200 and got == sp.assign("search-ui", f"w{i}").arm
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_command_finishes_in_flight_requests_on_sigterm(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(CONFIG))
    proc = subprocess.Popen(
        [sys.executable, "-m", "trafficsplit", "serve", str(path), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = None
        for line in proc.stderr:
            m = re.search(r"running on http://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        assert port is not None
        body = json.dumps({"unit": "user-1", "experiment": "search-ui"}).encode()
        sock = socket.create_connection(("127.0.0.1", port))
        head = f"POST /v1/assign HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
        sock.sendall(head.encode() + body[:5])  # a request in flight
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        sock.sendall(body[5:])
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
        sock.close()
        assert response.startswith(b"HTTP/1.1 200")
        arm = json.loads(response.split(b"\r\n\r\n", 1)[1])["assignments"]["search-ui"]["arm"]
        assert arm == ts.Splitter(CONFIG).assign("search-ui", "user-1").arm
        # uvicorn stops, then lets the signal end the process as it would have
        assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()


def test_serve_command_refuses_a_bad_configuration(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("experiments:\n  - key: e\n    arms: {a: -5}\n")
    r = subprocess.run(
        [sys.executable, "-m", "trafficsplit", "serve", str(path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "trafficsplit serve:" in r.stderr and "Traceback" not in r.stderr
