"""Propagation that cannot be forged: the trust settings, signed members, and the
configuration's refusals of upstream arms, in the Splitter and over real HTTP (uvicorn and
wsgiref on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import socket
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trafficsplit as ts
from trafficsplit.propagation import (
    KEYS_ENV,
    Propagated,
    PropagationContext,
    PropagationKeys,
    from_headers,
    outgoing_headers,
    to_headers,
)

SECRET = "a-shared-secret-of-32-bytes-long"
KEYS = PropagationKeys({"k2": SECRET})

CONFIG = {
    "holdouts": [{"key": "everyone", "percent": 100}],
    "experiments": [
        {
            "key": "held",
            "holdouts": ["everyone"],
            "arms": {"control": 50, "treatment": 50},
            "bucket_version": 2,
        },
        {"key": "old", "status": "stopped", "arms": {"control": 50, "treatment": 50}},
        {"key": "later", "start": "2999-01-01T00:00:00Z", "arms": {"control": 50, "b": 50}},
        {
            "key": "ranker",
            "arms": {"control": 50, "treatment": 50},
            "overrides": {"control": ["vip"]},
            "bucket_version": 3,
        },
        {"key": "narrow", "targeting": 'tier == "gold"', "arms": {"a": 50, "b": 50}},
    ],
    "rollouts": [
        {
            "key": "canary",
            "arms": {"stable": None, "canary": None},
            "start": "2020-01-01T00:00:00Z",
            "steps": [{"percent": 10}],
        }
    ],
}


class Memory(ts.ExposureSink):
    def __init__(self):
        self.records = []

    def write(self, records):
        self.records.extend(records)


def splitter(**kwargs):
    sink = Memory()
    return ts.Splitter(CONFIG, exposures=ts.ExposureLogger(sink, dedup_keys=0), **kwargs), sink


def flip(tag: str) -> str:
    """The tag with its first character changed (the last one holds padding bits)."""
    return ("B" if tag[0] != "B" else "C") + tag[1:]


def signed(experiment, arm, version, unit, keys=KEYS):
    return keys.sign(Propagated(experiment, arm, version), unit)


# -- the tag ----------------------------------------------------------------------------------


def reference_tag(secret: bytes, unit: str, experiment: str, arm: str, version: int) -> str:
    """The tag as docs/telemetry.md specifies it, written out independently."""
    msg = b"trafficsplit/propagation/1\x00"
    for field in (unit, experiment, arm, str(version)):
        raw = field.encode()
        msg += len(raw).to_bytes(4, "big") + raw
    digest = hmac.new(secret, msg, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@settings(max_examples=200, deadline=None)
@given(
    unit=st.text(min_size=1, max_size=30),
    other=st.text(min_size=1, max_size=30),
    experiment=st.text(min_size=1, max_size=20),
    arm=st.text(min_size=1, max_size=20),
    version=st.integers(1, 2**32 - 1),
)
def test_tags_follow_the_spec_and_bind_the_unit(unit, other, experiment, arm, version):
    try:
        unit.encode()
        other.encode()
        experiment.encode()
        arm.encode()
    except UnicodeEncodeError:
        return  # lone surrogates are not unit keys
    p = signed(experiment, arm, version, unit)
    assert p.key_id == "k2"
    assert p.tag == reference_tag(SECRET.encode(), unit, experiment, arm, version)
    assert KEYS.verify(p, unit)
    assert KEYS.verify(p, other) == (other == unit)
    # A tag survives the headers (percent-encoding of odd keys and arms) intact.
    back = from_headers(to_headers([p]), trust="signed", propagation_key=KEYS)
    assert KEYS.verify(back[experiment], unit)


def test_field_boundaries_cannot_be_shifted():
    # Without length prefixes, ("ab", "c") and ("a", "bc") would sign alike.
    one = signed("bc", "x", 1, "a")
    two = Propagated("c", "x", 1, one.key_id, one.tag)
    assert KEYS.verify(one, "a") and not KEYS.verify(two, "ab")


def test_keys_rotate_and_refuse_weak_secrets(monkeypatch):
    old = PropagationKeys({"k1": "the-old-secret-of-enough-bytes"})
    both = PropagationKeys({"k2": SECRET, "k1": "the-old-secret-of-enough-bytes"})
    p_old = signed("ranker", "treatment", 3, "u1", keys=old)
    assert both.verify(p_old, "u1") and not KEYS.verify(p_old, "u1")
    assert both.sign(Propagated("ranker", "treatment", 3), "u1").key_id == "k2"
    with pytest.raises(ts.ConfigError, match="at least 16 bytes"):
        PropagationKeys("short")
    with pytest.raises(ts.ConfigError, match="key id"):
        PropagationKeys({"bad id!": SECRET})
    assert "secret" not in repr(both)
    monkeypatch.setenv(KEYS_ENV, f"k2:{SECRET},k1:the-old-secret-of-enough-bytes")
    env = PropagationKeys.from_env()
    assert env.key_ids == ("k2", "k1") and env.verify(p_old, "u1")
    monkeypatch.setenv(KEYS_ENV, SECRET)
    assert PropagationKeys.from_env().key_ids == ("0",)
    monkeypatch.setenv(KEYS_ENV, f"k2:{SECRET},nocolon")
    with pytest.raises(ts.ConfigError, match="id:secret"):
        PropagationKeys.from_env()


def test_trust_settings_are_checked():
    with pytest.raises(ts.ConfigError, match="trust must be one of"):
        from_headers({}, trust="yes")
    with pytest.raises(ts.ConfigError, match="needs the propagation keys"):
        from_headers({}, trust="signed")
    with pytest.raises(ts.ConfigError, match="needs the propagation keys"):
        ts.middleware.WSGIMiddleware(lambda e, s: [], trust="signed")
    with pytest.raises(ts.ConfigError, match="trust must be one of"):
        ts.Splitter(CONFIG, trust="all")


# -- what the Splitter serves -------------------------------------------------------------------

FORGED = "held=treatment,old=treatment,later=b,ranker=treatment;v=3,canary=canary,narrow=b"


def own(sp, key, unit, attributes=None):
    return sp.assign(key, unit, attributes, log_exposure=False)


def test_by_default_no_incoming_arm_counts():
    sp, sink = splitter()
    ctx = from_headers({"X-Experiment-ID": FORGED, "baggage": "trafficsplit.held=control"})
    assert dict(ctx) == {} and set(ctx.refused) == {
        "held",
        "old",
        "later",
        "ranker",
        "canary",
        "narrow",
    }
    for unit in ("u1", "u2", "u3", "vip"):
        for key in ("held", "old", "later", "ranker", "canary", "narrow"):
            a = sp.assign(key, unit, {"tier": "gold"}, context=ctx)
            assert a.reason != "propagated" and a == own(sp, key, unit, {"tier": "gold"})
    assert sp.stats["propagated"] == 0
    assert sp.stats["propagation_refused"] == {"untrusted": 24}
    sp.close()
    # Records (for the decisions with an arm) say why the upstream arm was not served.
    assert sink.records and {r.propagation for r in sink.records} == {"untrusted"}


def test_the_configuration_refuses_even_a_trusted_arm():
    sp, sink = splitter()
    ctx = from_headers({"X-Experiment-ID": FORGED}, trust="any")
    units = [f"user-{i}" for i in range(200)]
    canary_own = [own(sp, "canary", u).arm for u in units]
    assert 5 < canary_own.count("canary") < 40  # the rollout is at 10 %
    for u in units:
        # Stopped and not started: nobody gets an arm, whatever upstream says.
        assert sp.assign("old", u, context=ctx).reason == "stopped"
        assert sp.assign("later", u, context=ctx).reason == "not_started"
        # A 100 % holdout, the canary's percentage and targeting are this service's own
        # evaluation: the upstream arm is served there (one experience per request) and the
        # disagreement is recorded.
        h = sp.assign("held", u, context=ctx)
        assert (h.arm, h.reason, h.in_experiment) == ("treatment", "propagated", True)
        assert sp.assign("canary", u, context=ctx).arm == "canary"
        assert sp.assign("narrow", u, {"tier": "basic"}, context=ctx).arm == "b"
    # An override beats the upstream arm; a missing unit gets none.
    v = sp.assign("ranker", "vip", context=ctx)
    assert (v.arm, v.reason, v.in_experiment) == ("control", "override", True)
    m = sp.assign("ranker", None, context=ctx)
    assert (m.arm, m.reason, m.in_experiment) == (None, "missing_unit", False)
    # An arm the experiment lacks, and a bucket version other than the configured one.
    for header, why in (
        ("ranker=retired", "unknown_arm"),
        ("ranker=treatment;v=2", "version_mismatch"),
    ):
        a = sp.assign(
            "ranker", "u1", context=from_headers({"X-Experiment-ID": header}, trust="any")
        )
        assert a == own(sp, "ranker", "u1") and sp.stats["propagation_refused"][why] == 1
    stats = sp.stats
    assert stats["propagation_refused"]["stopped"] == 200
    assert stats["propagation_refused"]["not_started"] == 200
    assert stats["propagation_refused"]["override"] == 1
    assert stats["propagation_refused"]["missing_unit"] == 1
    assert stats["propagated"] == 600
    mismatches = 200 + (200 - canary_own.count("canary")) + 200  # held, canary, narrow
    assert stats["propagated_mismatch"] == mismatches
    sp.close()
    by = {}
    for r in sink.records:
        by.setdefault((r.experiment, r.propagation), []).append(r)
    assert len(by[("held", "served")]) == 200
    assert all(r.evaluated_arm is None and r.mismatch for r in by[("held", "served")])
    assert [r.arm for r in by[("ranker", "override")]] == ["control"]
    assert ("old", "stopped") not in by  # no arm, no exposure record


def test_signed_arms_serve_their_unit_only():
    sp, _ = splitter()
    good = signed("held", "treatment", 2, "alice")

    def ctx(*ps, **kw):
        return from_headers(to_headers(list(ps), propagation_key=False), "signed", KEYS, **kw)

    assert sp.assign("held", "alice", context=ctx(good)).reason == "propagated"
    # The same member replayed for another unit.
    assert sp.assign("held", "bob", context=ctx(good)).reason == "holdout"
    # Tampered: another arm, another version, another experiment under the same tag.
    for p in (
        Propagated("held", "control", 2, good.key_id, good.tag),
        Propagated("held", "treatment", 3, good.key_id, good.tag),
        Propagated("ranker", "treatment", 2, good.key_id, good.tag),
        Propagated("held", "treatment", 2, good.key_id, flip(good.tag)),
    ):
        key = p.experiment
        a = sp.assign(key, "alice", context=ctx(p))
        assert a.reason != "propagated" and a == own(sp, key, "alice")
    # Unsigned, and signed with a key this service does not know.
    stranger = PropagationKeys({"k9": "someone-elses-secret-entirely"})
    for p in (
        Propagated("held", "treatment", 2),
        signed("held", "treatment", 2, "alice", stranger),
    ):
        assert sp.assign("held", "alice", context=ctx(p)).reason == "holdout"
    assert sp.stats["propagated"] == 1
    assert sp.stats["propagation_refused"] == {
        "bad_signature": 5,
        "unknown_key": 1,
        "unsigned": 1,
    }
    # Even a valid tag does not beat the configuration.
    assert sp.assign(
        "old", "alice", context=ctx(signed("old", "treatment", 1, "alice"))
    ).reason == ("stopped")


def test_the_splitters_ceiling_applies_to_every_context():
    ctx = PropagationContext({"ranker": Propagated("ranker", "treatment", 3)})  # made by hand
    assert ts.Splitter(CONFIG).assign("ranker", "u1", context=ctx).reason == "propagated"
    strict = ts.Splitter(CONFIG, trust="none")
    assert strict.assign("ranker", "u1", context=ctx).reason == "assigned"
    assert strict.stats["propagation_refused"] == {"untrusted": 1}
    signed_only = ts.Splitter(CONFIG, trust="signed", propagation_key=KEYS)
    assert signed_only.assign("ranker", "u1", context=ctx).reason == "assigned"
    tagged = PropagationContext({"ranker": signed("ranker", "treatment", 3, "u1")})
    assert signed_only.assign("ranker", "u1", context=tagged).reason == "propagated"
    assert signed_only.stats["propagation_refused"] == {"unsigned": 1}


def test_outgoing_decisions_are_signed_and_incoming_tags_passed_on():
    sp = ts.Splitter(CONFIG)
    incoming = from_headers(
        to_headers([signed("held", "control", 2, "carol")], propagation_key=False),
        "signed",
        KEYS,
    )
    req = ts.propagation.RequestContext(incoming, propagation_keys=KEYS)
    with ts.propagation.use(req):
        a = sp.assign("ranker", "carol")
        assert sp.assign("held", "carol").reason == "propagated"
        h = outgoing_headers()
    downstream = from_headers(h, "signed", KEYS)
    assert KEYS.verify(downstream["ranker"], "carol") and downstream["ranker"].arm == a.arm
    assert downstream["held"].tag == incoming["held"].tag  # passed on, not signed anew
    assert not KEYS.verify(downstream["ranker"], "dave")


# -- over real HTTP -------------------------------------------------------------------------------


def app_body(sp: ts.Splitter, unit: str | None) -> bytes:
    out = {}
    for key in ("held", "old", "later", "ranker", "canary", "narrow"):
        a = sp.assign(key, unit, {"tier": "basic"})
        out[key] = [a.arm, a.reason]
    return json.dumps({"arms": out, "out": outgoing_headers()}).encode()


def asgi_app(sp):
    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        unit = dict(scope["headers"]).get(b"x-user")
        await asyncio.sleep(0)
        body = app_body(sp, unit.decode() if unit is not None else None)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def wsgi_app(sp):
    def app(environ, start_response):
        body = app_body(sp, environ.get("HTTP_X_USER"))  # decide before the headers go out
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return app


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def serve(kind: str, trust: str):
    """A service on 127.0.0.1 behind the middleware; yields (port, splitter)."""
    sp = ts.Splitter(CONFIG)
    keys = KEYS if trust == "signed" else None
    if kind == "wsgi":
        server = make_server(
            "127.0.0.1",
            0,
            ts.middleware.WSGIMiddleware(wsgi_app(sp), trust=trust, propagation_key=keys),
            handler_class=Quiet,
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        return server.server_port, sp, lambda: (server.shutdown(), server.server_close())
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    app = ts.middleware.ASGIMiddleware(asgi_app(sp), trust=trust, propagation_key=keys)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started

    def stop():
        server.should_exit = True
        thread.join(10)
        sock.close()

    return sock.getsockname()[1], sp, stop


def get(port: int, headers: dict[str, str]) -> tuple[dict, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/", headers=headers)
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    return body, resp


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
@pytest.mark.parametrize("trust", ["none", "signed", "any"])
def test_forged_replayed_tampered_and_unsigned_headers_over_http(kind, trust):
    port, sp, stop = serve(kind, trust)
    try:
        plain, _ = get(port, {"X-User": "alice"})
        own_arms = plain["arms"]
        assert own_arms["held"] == [None, "holdout"] and own_arms["old"] == [None, "stopped"]
        # 1. A forged header and forged baggage from any client.
        forged, _ = get(
            port,
            {
                "X-User": "alice",
                "X-Experiment-ID": FORGED,
                "baggage": "trafficsplit.held=treatment",
            },
        )
        served = {k for k, (_, why) in forged["arms"].items() if why == "propagated"}
        assert forged["arms"]["old"] == [None, "stopped"]  # never, under any trust
        assert forged["arms"]["later"] == [None, "not_started"]
        assert forged["arms"]["ranker"][1] != "override"
        if trust == "any":
            assert served == {"held", "ranker", "canary", "narrow"}
        else:
            assert served == set() and forged["arms"] == own_arms
        # 2. A signed header made upstream for bob, replayed for alice; then for bob himself.
        bob = to_headers(
            [signed("held", "treatment", 2, "bob"), signed("ranker", "control", 3, "bob")],
            propagation_key=False,
        )
        replayed, _ = get(port, {"X-User": "alice", **bob})
        mine, _ = get(port, {"X-User": "bob", **bob})
        if trust == "any":
            assert replayed["arms"]["held"] == ["treatment", "propagated"]
        else:
            assert replayed["arms"] == own_arms
        if trust == "none":
            assert mine["arms"]["held"] == [None, "holdout"]
        else:
            assert mine["arms"]["held"] == ["treatment", "propagated"]
            assert mine["arms"]["ranker"] == ["control", "propagated"]
        # 3. Tampered: the arm changed under bob's tag.
        tampered = {k: v.replace("ranker=control", "ranker=treatment") for k, v in bob.items()}
        t, _ = get(port, {"X-User": "bob", **tampered})
        want = "propagated" if trust == "any" else "assigned"
        assert t["arms"]["ranker"][1] == want
        # 4. The response carries this service's decisions, signed when it has keys.
        _, resp = get(port, {"X-User": "carol"})
        back = from_headers({"X-Experiment-ID": resp.getheader("X-Experiment-ID")}, "signed", KEYS)
        if trust == "signed":
            assert KEYS.verify(back["ranker"], "carol")
        else:
            assert dict(back) == {} and back.refused["ranker"] == "unsigned"
        stats = sp.stats
        if trust == "none":
            assert stats["propagated"] == 0 and stats["propagation_refused"]["untrusted"] > 0
        if trust == "signed":
            assert stats["propagation_refused"]["unsigned"] == 6  # the forged request's 6
            assert stats["propagation_refused"]["bad_signature"] == 2 + 1  # replay x2, tamper
    finally:
        stop()
