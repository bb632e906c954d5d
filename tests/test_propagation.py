"""Propagation headers (W3C baggage, X-Experiment-ID), Splitter contexts, and the ASGI and
WSGI middleware served for real on 127.0.0.1."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from urllib.parse import unquote
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trafficsplit as ts
from trafficsplit.propagation import (
    BAGGAGE_MAX_BYTES,
    BAGGAGE_MAX_MEMBERS,
    Propagated,
    PropagationContext,
    from_headers,
    outgoing_headers,
    to_headers,
)

CONFIG = {
    "experiments": [
        {
            "key": "ranker-v2",
            "arms": [
                {"name": "control", "weight": 50, "payload": {"model": "v1"}},
                {"name": "treatment", "weight": 50, "payload": {"model": "v2"}},
            ],
            "bucket_version": 3,
        },
        {"key": "search-ui", "arms": {"control": 100, "new": 0}},
    ]
}


def trusted(headers):
    """Headers read as a service behind a gateway that strips them would read them."""
    return from_headers(headers, trust="any")


# -- header formats ------------------------------------------------------------------------------


def test_issue_example_round_trips():
    ctx = trusted({"X-Experiment-ID": "ranker-v2=treatment;v=3,search-ui=control;v=1"})
    assert dict(ctx) == {
        "ranker-v2": Propagated("ranker-v2", "treatment", 3),
        "search-ui": Propagated("search-ui", "control", 1),
    }
    h = to_headers(ctx)
    assert h["X-Experiment-ID"] == "ranker-v2=treatment;v=3,search-ui=control;v=1"
    assert h["baggage"] == "trafficsplit.ranker-v2=treatment;v=3,trafficsplit.search-ui=control;v=1"
    assert dict(trusted({"baggage": h["baggage"]})) == dict(ctx)


def test_assignments_with_versions_from_the_splitter():
    sp = ts.Splitter(CONFIG)
    out = sp.assign_all("user-1")
    h = to_headers(out, versions=sp)
    arm = out["ranker-v2"].arm
    assert h["X-Experiment-ID"] == f"ranker-v2={arm};v=3,search-ui=control;v=1"
    assert to_headers(out)["X-Experiment-ID"] == f"ranker-v2={arm},search-ui=control"
    assert to_headers(list(out.values()), versions={"ranker-v2": 7})["X-Experiment-ID"] == (
        f"ranker-v2={arm};v=7,search-ui=control"
    )
    assert to_headers({}) == {}


def test_reserved_characters_are_percent_encoded():
    p = Propagated("exp,1;x=y", "arm %zwei ü/é", 2)
    h = to_headers([p])
    member = h["baggage"]
    # Only tchar outside "%" stays literal in keys and values (RFC 7230 token, W3C baggage).
    assert member == "trafficsplit.exp%2C1%3Bx%3Dy=arm%20%25zwei%20%C3%BC%2F%C3%A9;v=2"
    assert unquote("%C3%BC") == "ü"
    assert dict(trusted(h)) == {"exp,1;x=y": p}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=20),
            st.text(min_size=1, max_size=20),
            st.none() | st.integers(1, 2**32 - 1),
        ),
        min_size=1,
        max_size=10,
        unique_by=lambda t: t[0],
    )
)
def test_any_text_round_trips(decisions):
    ps = [Propagated(k, a, v) for k, a, v in decisions]
    h = to_headers(ps)
    for name in ("baggage", "X-Experiment-ID"):
        value = h[name]
        assert value.isascii() and " " not in value and '"' not in value and "\\" not in value
        # Keys are baggage tokens, whatever the experiment key held.
        if name == "baggage":
            for m in value.split(","):
                key = m.split("=", 1)[0]
                assert all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in key)
        got = trusted({name: value})
        assert {k: got[k] for k in got} == {p.experiment: p for p in ps}


def test_baggage_limits_keep_whole_members(caplog):
    other = ",".join(f"k{i}=v{i}" for i in range(60))
    ps = [Propagated(f"exp-{i}", "treatment", 1) for i in range(10)]
    h = to_headers(ps, baggage=other)
    members = h["baggage"].split(",")
    assert len(members) == BAGGAGE_MAX_MEMBERS
    assert members[:60] == other.split(",")  # what the request carried comes first, kept
    assert members[60:] == [f"trafficsplit.exp-{i}=treatment;v=1" for i in range(4)]
    assert "left out exp-4" in caplog.text
    # Every decision is still in X-Experiment-ID.
    assert len(h["X-Experiment-ID"].split(",")) == 10

    big = [Propagated(f"e{i}", "x" * 1000, None) for i in range(12)]
    h = to_headers(big)
    assert len(h["baggage"].encode()) <= BAGGAGE_MAX_BYTES
    assert len(h["baggage"].split(",")) == 8  # 8 x 1016 bytes fit, the 9th would not
    assert all(m.endswith("x" * 1000) for m in h["baggage"].split(","))


def test_our_members_replace_earlier_ones_of_the_same_experiment():
    incoming = "trafficsplit.a=old;v=1,userId=alice,trafficsplit.b=keep"
    h = to_headers([Propagated("a", "new", 2)], baggage=incoming)
    assert h["baggage"] == "userId=alice,trafficsplit.b=keep,trafficsplit.a=new;v=2"


def test_parsing_is_tolerant():
    headers = [
        ("Baggage", "userId=alice, trafficsplit.a = x ; v = 4 ;prop, trafficsplit.bad"),
        ("baggage", "trafficsplit.b=y;v=notanint,trafficsplit.c=%E2%82%AC,trafficsplit.d="),
        ("x-experiment-id", "a=z;v=5,,=nokey,e=w"),
        ("X-Request-ID", "  req-9 "),
    ]
    ctx = trusted(headers)
    assert dict(ctx) == {
        "a": Propagated("a", "z", 5),  # X-Experiment-ID wins over baggage
        "c": Propagated("c", "€", None),
        "e": Propagated("e", "w", None),
    }
    assert ctx.request_id == "req-9"
    raw = [
        (b"baggage", b"trafficsplit.a=x"),
        (b"traceparent", b"00-" + b"ab" * 16 + b"-" + b"cd" * 8 + b"-01"),
    ]
    ctx = trusted(raw)
    assert ctx["a"].arm == "x" and ctx.request_id == "ab" * 16
    assert dict(trusted({})) == {} and trusted({}).request_id is None
    assert trusted({"baggage": "trafficsplit.x=%FF"})["x"].arm == "\ufffd"


def test_http_client_message_headers():
    msg = http.client.HTTPMessage()
    msg["Baggage"] = "trafficsplit.a=1"
    msg["Baggage"] = "trafficsplit.b=2"
    assert {k: p.arm for k, p in trusted(msg).items()} == {"a": "1", "b": "2"}


# -- the Splitter with contexts ------------------------------------------------------------------


class Memory(ts.ExposureSink):
    def __init__(self):
        self.records = []

    def write(self, records):
        self.records.extend(records)


def test_upstream_arm_is_reused_with_reason_propagated_and_mismatch_flagged():
    sink = Memory()
    lg = ts.ExposureLogger(sink, dedup_keys=0)
    sp = ts.Splitter(CONFIG, exposures=lg)
    units = [f"user-{i}" for i in range(40)]
    own = {u: sp.assign("ranker-v2", u, log_exposure=False).arm for u in units}
    for u in units:
        ctx = trusted({"X-Experiment-ID": "ranker-v2=treatment;v=3", "X-Request-ID": u})
        a = sp.assign("ranker-v2", u, context=ctx)
        assert (a.arm, a.reason, a.arm_index) == ("treatment", "propagated", 1)
        assert a.payload == {"model": "v2"}
        assert a.bucket == sp.assign("ranker-v2", u, log_exposure=False).bucket
    lg.close()
    assert [r.unit for r in sink.records] == units
    for r in sink.records:
        assert (r.arm, r.reason, r.request_id) == ("treatment", "propagated", r.unit)
        assert r.evaluated_arm == own[r.unit]
        assert r.mismatch == (own[r.unit] != "treatment")
        assert r.probability == 0.5
    assert 5 < sum(r.mismatch for r in sink.records) < 35


def test_unknown_upstream_arms_and_other_experiments_evaluate_locally():
    sp = ts.Splitter(CONFIG)
    ctx = PropagationContext({"ranker-v2": Propagated("ranker-v2", "retired")})
    a = sp.assign("ranker-v2", "u1", context=ctx)
    assert a.reason == "assigned" and a == sp.assign("ranker-v2", "u1")
    ctx = trusted({"X-Experiment-ID": "search-ui=new"})
    out = sp.assign_all("u1", context=ctx)
    assert (out["search-ui"].arm, out["search-ui"].reason) == ("new", "propagated")
    assert out["ranker-v2"].reason == "assigned"


def test_propagated_arms_do_not_touch_the_sticky_store():
    store = ts.sticky.MemoryStickyStore()
    sp = ts.Splitter(CONFIG, sticky=store)
    ctx = trusted({"X-Experiment-ID": "ranker-v2=treatment"})
    sp.assign("ranker-v2", "u1", context=ctx)
    assert store.get_many("ranker-v2", 3, ["u1"]) == {}
    a = sp.assign("ranker-v2", "u1")
    assert store.get_many("ranker-v2", 3, ["u1"]) == {"u1": a.arm}


def test_request_context_collects_decisions_for_outgoing_headers():
    sp = ts.Splitter(CONFIG)
    incoming = trusted({"X-Experiment-ID": "search-ui=new;v=1", "baggage": "userId=bob"})
    assert outgoing_headers() == {}
    with ts.propagation.use(ts.propagation.RequestContext(incoming, baggage="userId=bob")) as req:
        a = sp.assign("ranker-v2", "u7")
        b = sp.assign("search-ui", "u7")
        h = outgoing_headers()
    assert b.reason == "propagated"
    assert req.decided["ranker-v2"] == Propagated("ranker-v2", a.arm, 3)
    assert h["X-Experiment-ID"] == f"search-ui=new;v=1,ranker-v2={a.arm};v=3"
    assert h["baggage"].startswith("userId=bob,")


# -- middleware over loopback --------------------------------------------------------------------


def splitter_app_payload(sp: ts.Splitter, unit: str) -> bytes:
    a = sp.assign("ranker-v2", unit)
    return json.dumps({"arm": a.arm, "reason": a.reason, "out": outgoing_headers()}).encode()


def make_asgi_app(sp, trust="any"):
    async def app(scope, receive, send):
        assert scope["type"] == "http"
        while (await receive()).get("more_body"):
            pass
        unit = dict(scope["headers"]).get(b"x-user", b"anonymous").decode()
        await asyncio.sleep(0)  # the context must survive a suspension
        body = splitter_app_payload(sp, unit)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"baggage", b"stale=1")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return ts.middleware.ASGIMiddleware(app, trust=trust)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def request(port: int, headers: dict[str, str]) -> tuple[dict, http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/", headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return json.loads(body), resp, body


@pytest.fixture
def asgi_server():
    import uvicorn

    sink = Memory()
    lg = ts.ExposureLogger(sink, dedup_keys=0)
    sp = ts.Splitter(CONFIG, exposures=lg)
    sock = free_socket()
    config = uvicorn.Config(make_asgi_app(sp), lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    yield sock.getsockname()[1], sp, lg, sink
    server.should_exit = True
    thread.join(10)
    sock.close()


def check_middleware_round_trip(port, lg, sink):
    # 1. No headers: the service decides and says so in the response.
    body, resp, _ = request(port, {"X-User": "alice"})
    assert body["reason"] == "assigned"
    first = body["arm"]
    assert resp.getheader("X-Experiment-ID") == f"ranker-v2={first};v=3"
    assert resp.getheader("baggage") == f"trafficsplit.ranker-v2={first};v=3"
    assert body["out"]["X-Experiment-ID"] == f"ranker-v2={first};v=3"
    # 2. The response headers sent on by the next hop, for another unit: the same arm.
    forwarded = {
        "X-User": "bob",
        "baggage": resp.getheader("baggage") + ",userId=bob",
        "X-Request-ID": "r-42",
    }
    body, resp, _ = request(port, forwarded)
    assert (body["arm"], body["reason"]) == (first, "propagated")
    assert resp.getheader("baggage") == f"userId=bob,trafficsplit.ranker-v2={first};v=3"
    # 3. X-Experiment-ID alone works too.
    other = "control" if first == "treatment" else "treatment"
    body, resp, _ = request(port, {"X-User": "carol", "X-Experiment-ID": f"ranker-v2={other}"})
    assert (body["arm"], body["reason"]) == (other, "propagated")
    assert resp.getheader("X-Experiment-ID") == f"ranker-v2={other};v=3"
    lg.flush(10)
    recs = {r.unit: r for r in sink.records}
    assert recs["alice"].reason == "assigned" and recs["alice"].request_id is None
    assert recs["bob"].reason == "propagated" and recs["bob"].request_id == "r-42"
    assert recs["carol"].arm == other


def test_asgi_middleware_over_uvicorn(asgi_server):
    port, _sp, lg, sink = asgi_server
    check_middleware_round_trip(port, lg, sink)
    # Requests in parallel keep their contexts apart.
    results = {}

    def hit(i: int) -> None:
        arm = "treatment" if i % 2 else "control"
        body, _, _ = request(port, {"X-User": f"p{i}", "X-Experiment-ID": f"ranker-v2={arm}"})
        results[i] = (arm, body["arm"], body["reason"])

    pool = [threading.Thread(target=hit, args=(i,)) for i in range(16)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert all(want == got and reason == "propagated" for want, got, reason in results.values())


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def test_wsgi_middleware_over_wsgiref():
    sink = Memory()
    lg = ts.ExposureLogger(sink, dedup_keys=0)
    sp = ts.Splitter(CONFIG, exposures=lg)

    def app(environ, start_response):
        body = splitter_app_payload(sp, environ.get("HTTP_X_USER", "anonymous"))
        start_response("200 OK", [("Content-Type", "application/json"), ("baggage", "stale=1")])
        return [body]

    server = make_server(
        "127.0.0.1", 0, ts.middleware.WSGIMiddleware(app, trust="any"), handler_class=QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        check_middleware_round_trip(server.server_port, lg, sink)
    finally:
        server.shutdown()
        server.server_close()
    lg.close()


def test_asgi_passes_other_scopes_through():
    seen = []

    async def app(scope, receive, send):
        seen.append((scope["type"], ts.propagation.current()))

    asyncio.run(ts.middleware.ASGIMiddleware(app)({"type": "lifespan"}, None, None))
    assert seen == [("lifespan", None)]


def test_middleware_replaces_response_headers_of_the_same_name_in_any_case():
    incoming = "e=b;v=1"
    ours = [("X-Experiment-ID", "e=b;v=1"), ("baggage", "trafficsplit.e=b;v=1")]
    started = []

    def wsgi_app(environ, start_response):
        start_response(
            "200 OK", [("x-experiment-id", "old"), ("BAGGAGE", "x=1"), ("Content-Type", "t/p")]
        )
        return [b""]

    ts.middleware.WSGIMiddleware(wsgi_app, trust="any")(
        {"HTTP_X_EXPERIMENT_ID": incoming}, lambda status, headers, *exc: started.append(headers)
    )
    assert started == [[("Content-Type", "t/p"), *ours]]

    sent = []

    async def asgi_app(scope, receive, send):
        headers = [(b"X-Experiment-ID", b"old"), (b"Baggage", b"x=1"), (b"content-type", b"t/p")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "headers": [(b"x-experiment-id", incoming.encode())]}
    asyncio.run(ts.middleware.ASGIMiddleware(asgi_app, trust="any")(scope, None, send))
    assert sent[0]["headers"] == [
        (b"content-type", b"t/p"),
        *[(k.lower().encode(), v.encode()) for k, v in ours],
    ]
