"""The OpenFeature provider, through the real OpenFeature client API (api.set_provider, clients,
hooks, evaluation contexts and events) over a Splitter read from a YAML file."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("openfeature")

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.hook import Hook
from openfeature.provider import AbstractProvider, ProviderStatus
from openfeature.track import TrackingEventDetails

import trafficsplit as ts
from trafficsplit.openfeature import TrafficsplitProvider, resolve

CONFIG = """\
experiments:
  - key: ranker-v2
    targeting: 'country != "FR"'
    overrides: {control: [qa-1]}
    arms:
      control:   {weight: 50, payload: {model: ranker-v1, depth: 2}}
      treatment: {weight: 50, payload: {model: ranker-v2, stages: [1, 2]}}
  - key: banner
    arms: {left: 30, right: 70}
  - key: sunset
    status: stopped
    arms: {a: 50, b: 50}
  - key: labelled
    arms:
      a: {weight: 50, payload: plain-text}
      b: {weight: 50}
flags:
  - key: new-checkout
    type: bool
    default: false
    rules:
      - when: 'tier == "internal"'
        value: true
      - rollout: {true: 25, false: 75}
  - key: theme
    type: string
    default: classic
    rules:
      - when: 'country == "SE"'
        value: dark
  - key: max-results
    type: number
    default: 25
  - key: ratio
    type: number
    default: 0.25
  - key: limits
    type: json
    default: {page_size: 20, sizes: [10, 20]}
    rules:
      - when: 'user_id in @power_users'
        value: {page_size: 100, sizes: [100]}
    lists:
      power_users: [u-1, u-2]
  - key: retired
    type: string
    default: old
    enabled: false
    rules:
      - value: new
"""

UNITS = [f"user-{i}" for i in range(2_000)]


@pytest.fixture(autouse=True)
def fresh_api():
    api.shutdown()
    yield
    api.shutdown()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def splitter(config_file: Path):
    sp = ts.Splitter.from_file(config_file)
    yield sp
    sp.close()


def client_for(splitter, **kwargs):
    provider = TrafficsplitProvider(splitter, **kwargs)
    api.set_provider_and_wait(provider)
    return api.get_client(), provider


def test_the_provider_is_an_openfeature_provider_named_trafficsplit(splitter) -> None:
    client, provider = client_for(splitter)
    assert isinstance(provider, AbstractProvider)
    assert api.get_provider_metadata().name == "trafficsplit"
    assert client.get_provider_status() == ProviderStatus.READY


def test_boolean_rollout_matches_the_rollout_hashed_as_an_experiment(splitter) -> None:
    client, _ = client_for(splitter)
    # A flag rollout hashes units like an experiment keyed <flag>/rule<i> (docs/configuration.md).
    reference = ts.Experiment("new-checkout/rule1", {"v0": 25, "v1": 75}).assign_batch(UNITS)
    expected = [arm == "v0" for arm in reference.arm.tolist()]
    got = [client.get_boolean_details("new-checkout", False, EvaluationContext(u)) for u in UNITS]
    assert [d.value for d in got] == expected
    assert {d.reason for d in got} == {Reason.SPLIT}
    assert [d.variant for d in got] == [f"rule1/{arm}" for arm in reference.arm.tolist()]
    assert {d.flag_metadata["version"] for d in got} == {splitter.version}
    assert 0.2 < np.mean(expected) < 0.3
    internal = client.get_boolean_details(
        "new-checkout", False, EvaluationContext("user-0", {"tier": "internal"})
    )
    assert (internal.value, internal.reason, internal.variant) == (
        True,
        Reason.TARGETING_MATCH,
        "rule0",
    )


def test_string_integer_float_and_object_flags(splitter) -> None:
    client, _ = client_for(splitter)
    ctx = EvaluationContext("user-5", {"country": "SE"})
    d = client.get_string_details("theme", "none", ctx)
    assert (d.value, d.reason, d.variant) == ("dark", Reason.TARGETING_MATCH, "rule0")
    d = client.get_string_details("theme", "none", EvaluationContext("user-5", {"country": "US"}))
    assert (d.value, d.reason, d.variant) == ("classic", Reason.DEFAULT, "default")

    d = client.get_integer_details("max-results", 0)
    assert (d.value, type(d.value), d.reason, d.error_code) == (25, int, Reason.STATIC, None)
    d = client.get_float_details("max-results", 0.0)
    assert (d.value, type(d.value), d.reason) == (25.0, float, Reason.STATIC)
    d = client.get_float_details("ratio", 0.0)
    assert (d.value, d.reason) == (0.25, Reason.STATIC)

    # The targeting key is the flag's unit attribute (user_id) for its rules.
    d = client.get_object_details("limits", {}, EvaluationContext("u-2"))
    assert (d.value, d.reason) == ({"page_size": 100, "sizes": [100]}, Reason.TARGETING_MATCH)
    d = client.get_object_details("limits", {}, EvaluationContext("u-3"))
    assert (d.value, d.reason, d.variant) == (
        {"page_size": 20, "sizes": [10, 20]},
        Reason.DEFAULT,
        "default",
    )
    # A plain dict the caller may change without changing what the next caller gets.
    d.value["sizes"].append(999)
    again = client.get_object_value("limits", {}, EvaluationContext("u-3"))
    assert again == {"page_size": 20, "sizes": [10, 20]}

    d = client.get_string_details("retired", "x", EvaluationContext("user-5"))
    assert (d.value, d.reason, d.variant) == ("old", Reason.DISABLED, "default")
    assert d.flag_metadata == {"version": splitter.version, "reason": "disabled"}


def test_experiments_resolve_to_the_arm_and_its_payload(splitter) -> None:
    client, _ = client_for(splitter)
    countries = ["US", "FR", "SE", "DE"] * (len(UNITS) // 4)
    frame = pd.DataFrame({"user_id": UNITS, "country": countries})
    reference = splitter.assign_frame(frame, "user_id", ["ranker-v2"])
    payloads = {
        "control": {"model": "ranker-v1", "depth": 2},
        "treatment": {"model": "ranker-v2", "stages": [1, 2]},
    }
    default = {"model": "fallback"}
    for unit, country, arm, why in zip(
        UNITS,
        countries,
        reference["ranker-v2"],
        reference["ranker-v2_reason"],
        strict=True,
    ):
        ctx = EvaluationContext(unit, {"country": country})
        name = client.get_string_details("ranker-v2", "none", ctx)
        payload = client.get_object_details("ranker-v2", default, ctx)
        assert name.flag_metadata["reason"] == why
        if why == "assigned":
            assert (name.value, name.variant, name.reason) == (arm, arm, Reason.SPLIT)
            assert (payload.value, payload.variant) == (payloads[arm], arm)
        else:
            assert why == "targeting_miss" and country == "FR"
            assert (name.value, name.variant, name.reason) == ("none", "default", Reason.DEFAULT)
            assert payload.value == default
    assert set(reference["ranker-v2"].dropna()) == {"control", "treatment"}

    # An override is a targeting match on the unit; a stopped experiment is disabled.
    d = client.get_string_details("ranker-v2", "none", EvaluationContext("qa-1", {"country": "FR"}))
    assert (d.value, d.reason, d.flag_metadata["reason"]) == (
        "control",
        Reason.TARGETING_MATCH,
        "override",
    )
    d = client.get_string_details("sunset", "none", EvaluationContext("user-1"))
    assert (d.value, d.reason, d.variant, d.error_code) == (
        "none",
        Reason.DISABLED,
        "default",
        None,
    )
    assert d.flag_metadata["experiment"] == "sunset"
    assert d.flag_metadata["bucket_version"] == 1
    # An arm without a payload gives the caller's default as its object.
    banner = ts.Experiment("banner", {"left": 30, "right": 70})
    d = client.get_object_details("banner", {"none": True}, EvaluationContext("user-3"))
    assert (d.value, d.variant, d.reason) == (
        {"none": True},
        banner.assign("user-3").arm,
        Reason.SPLIT,
    )


def test_type_mismatches_give_the_default(splitter) -> None:
    client, _ = client_for(splitter)
    ctx = EvaluationContext("user-1")
    cases = [
        client.get_string_details("new-checkout", "dflt", ctx),  # a bool flag
        client.get_boolean_details("theme", True, ctx),  # a string flag
        client.get_integer_details("ratio", 7, ctx),  # 0.25 is no integer
        client.get_object_details("max-results", {"d": 1}, ctx),  # a number flag
        client.get_boolean_details("ranker-v2", True, ctx),  # experiments: string or object
        client.get_float_details("banner", 1.5, ctx),
        client.get_object_details("labelled", {"d": 1}, ctx),  # a text payload
    ]
    for d, default in zip(cases, ["dflt", True, 7, {"d": 1}, True, 1.5, {"d": 1}], strict=True):
        assert (d.value, d.reason, d.error_code, d.variant) == (
            default,
            Reason.ERROR,
            ErrorCode.TYPE_MISMATCH,
            None,
        ), d
        assert d.error_message


def test_missing_targeting_key(splitter) -> None:
    client, _ = client_for(splitter)
    d = client.get_string_details("ranker-v2", "none", EvaluationContext(None, {"country": "US"}))
    assert (d.value, d.reason, d.error_code) == (
        "none",
        Reason.ERROR,
        ErrorCode.TARGETING_KEY_MISSING,
    )
    # A flag whose rollout applies needs a unit; one whose rules need none does not.
    d = client.get_boolean_details("new-checkout", True)
    assert (d.value, d.error_code) == (True, ErrorCode.TARGETING_KEY_MISSING)
    d = client.get_boolean_details(
        "new-checkout", False, EvaluationContext(None, {"tier": "internal"})
    )
    assert (d.value, d.reason, d.error_code) == (True, Reason.TARGETING_MATCH, None)
    # The unit attribute stands in for the targeting key.
    via_attribute = client.get_string_value(
        "ranker-v2", "none", EvaluationContext(None, {"user_id": "user-9", "country": "US"})
    )
    assert via_attribute == splitter.assign("ranker-v2", "user-9", {"country": "US"}).arm


def test_unknown_keys_and_unusable_contexts(splitter) -> None:
    client, _ = client_for(splitter)
    d = client.get_boolean_details("no-such-flag", True, EvaluationContext("user-1"))
    assert (d.value, d.reason, d.error_code) == (True, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND)
    assert "no-such-flag" in d.error_message
    # A unit attribute of a type the hash contract refuses (a float) is an invalid context.
    d = client.get_string_details("banner", "none", EvaluationContext(None, {"user_id": 1.5}))
    assert (d.value, d.reason, d.error_code) == ("none", Reason.ERROR, ErrorCode.INVALID_CONTEXT)


def test_contexts_merge_api_then_client_then_invocation(splitter) -> None:
    client, _ = client_for(splitter)
    api.set_evaluation_context(EvaluationContext("user-api", {"country": "SE", "tier": "free"}))
    client.context = EvaluationContext(None, {"tier": "internal"})
    # API: country SE; client: tier internal; the API's targeting key.
    assert client.get_string_value("theme", "none") == "dark"
    d = client.get_boolean_details("new-checkout", False)
    assert (d.value, d.reason) == (True, Reason.TARGETING_MATCH)
    # The invocation's values win over both.
    ctx = EvaluationContext("user-7", {"tier": "free", "country": "US"})
    assert client.get_string_value("theme", "none", ctx) == "classic"
    expected = ts.Experiment("new-checkout/rule1", {"v0": 25, "v1": 75}).assign("user-7").arm
    assert client.get_boolean_value("new-checkout", True, ctx) == (expected == "v0")
    arm = client.get_string_value("ranker-v2", "none", EvaluationContext(None, {"country": "US"}))
    assert arm == splitter.assign("ranker-v2", "user-api", {"country": "US"}).arm


def test_hooks_see_the_details_and_add_context(splitter) -> None:
    seen = []

    class Record(Hook):
        def before(self, hook_context, hints):
            return EvaluationContext(None, {"country": "SE"})

        def after(self, hook_context, details, hints):
            seen.append(("after", details.flag_key, details.value, details.reason, details.variant))

        def error(self, hook_context, exception, hints):
            seen.append(("error", hook_context.flag_key, type(exception).__name__))

        def finally_after(self, hook_context, details, hints):
            seen.append(("finally", details.flag_key, details.error_code))

    client, _ = client_for(splitter)
    api.add_hooks([Record()])
    assert client.get_string_value("theme", "none", EvaluationContext("user-1")) == "dark"
    assert client.get_boolean_value("theme", False, EvaluationContext("user-1")) is False
    assert seen == [
        ("after", "theme", "dark", Reason.TARGETING_MATCH, "rule0"),
        ("finally", "theme", None),
        ("error", "theme", "TypeMismatchError"),
        ("finally", "theme", ErrorCode.TYPE_MISMATCH),
    ]


def wait_for(events: list, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(events) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(events) >= count, events


def test_reload_emits_configuration_changed_then_error_then_ready(
    splitter, config_file: Path
) -> None:
    client, _ = client_for(splitter)
    events: list[tuple[ProviderEvent, EventDetails]] = []
    lock = threading.Lock()

    def on(event: ProviderEvent):
        def handler(details: EventDetails) -> None:
            with lock:
                events.append((event, details))

        return handler

    for event in (
        ProviderEvent.PROVIDER_CONFIGURATION_CHANGED,
        ProviderEvent.PROVIDER_ERROR,
    ):
        client.add_handler(event, on(event))
    wait_for(events, 0)
    old = splitter.version
    config_file.write_text(
        CONFIG.replace("default: classic", "default: modern").replace(
            "arms: {left: 30, right: 70}", "arms: {left: 40, right: 60}"
        )
    )
    assert splitter.reload()
    wait_for(events, 1)
    event, details = events[0]
    assert event == ProviderEvent.PROVIDER_CONFIGURATION_CHANGED
    assert details.flags_changed == ["banner", "theme"]
    assert details.metadata == {"version": splitter.version, "previous_version": old}
    assert client.get_string_value("theme", "none", EvaluationContext("user-1")) == "modern"

    good = splitter.version
    config_file.write_text(CONFIG + "  - key: broken\n    type: nope\n    default: 1\n")
    assert not splitter.reload()
    wait_for(events, 2)
    event, details = events[1]
    assert event == ProviderEvent.PROVIDER_ERROR
    assert details.error_code == ErrorCode.PARSE_ERROR
    assert good in details.message and "flags[6].type" in details.message
    assert client.get_provider_status() == ProviderStatus.ERROR
    # The last good configuration keeps serving.
    d = client.get_string_details("theme", "none", EvaluationContext("user-1"))
    assert (d.value, d.flag_metadata["version"]) == ("modern", good)

    ready: list[EventDetails] = []
    client.add_handler(ProviderEvent.PROVIDER_READY, ready.append)
    config_file.write_text(CONFIG)
    assert splitter.reload()
    wait_for(events, 3)
    wait_for(ready, 1)
    assert events[2][0] == ProviderEvent.PROVIDER_CONFIGURATION_CHANGED
    assert events[2][1].flags_changed == ["banner", "theme"]
    assert client.get_provider_status() == ProviderStatus.READY

    # After shutdown the provider no longer listens to the Splitter.
    api.shutdown()
    config_file.write_text(CONFIG.replace("default: classic", "default: gone"))
    assert splitter.reload()
    time.sleep(0.2)
    assert len(events) == 3


def read_records(folder: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(folder.glob("*.jsonl")) for line in f.open()]


def test_split_decisions_leave_exposure_records(config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "exposures"
    sp = ts.Splitter.from_file(config_file, exposures=ts.JsonlSink(out))
    client, _ = client_for(sp)
    units = UNITS[:300]
    for u in units:
        ctx = EvaluationContext(u, {"country": "FR" if u.endswith("7") else "US"})
        client.get_string_value("ranker-v2", "none", ctx)
        client.get_boolean_value("new-checkout", False, ctx)
        client.get_string_value("theme", "none", ctx)  # no split: no record
    client.get_boolean_value(
        "new-checkout", False, EvaluationContext("user-1", {"tier": "internal"})
    )
    sp.close()
    records = read_records(out)
    by_experiment: dict[str, dict[str, str]] = {}
    for r in records:
        by_experiment.setdefault(r["experiment"], {})[r["unit"]] = r["arm"]
    assert set(by_experiment) == {"ranker-v2", "new-checkout/rule1"}
    # Units in the experiment: every unit but the targeting misses (country FR).
    expected = {u: splitter_arm(sp, u) for u in units if not u.endswith("7")}
    assert by_experiment["ranker-v2"] == expected
    rollout = ts.Experiment("new-checkout/rule1", {"v0": 25, "v1": 75}).assign_batch(units)
    assert by_experiment["new-checkout/rule1"] == dict(
        zip(units, rollout.arm.tolist(), strict=True)
    )
    assert {r["version"] for r in records} == {sp.version}


def splitter_arm(sp, unit: str) -> str:
    return sp.assign("ranker-v2", unit, {"country": "US"}, log_exposure=False).arm


def test_track_feeds_the_metrics_recorder_by_arm(splitter) -> None:
    recorder = ts.MetricsRecorder()
    client, provider = client_for(splitter, metrics=recorder, experiment="banner")
    assert provider.metrics is recorder
    rng = np.random.default_rng(7)
    values = rng.normal(10.0, 2.0, len(UNITS))
    for u, v in zip(UNITS, values, strict=True):
        client.track("revenue", EvaluationContext(u), TrackingEventDetails(value=float(v)))
        client.track("visit", EvaluationContext(u))  # no value: counted as 1.0
    # Named in the event: another experiment; a unit outside it records nothing.
    for u in UNITS[:100]:
        client.track(
            "clicks",
            EvaluationContext(u, {"country": "FR" if u.endswith("3") else "US"}),
            TrackingEventDetails(value=2.0, attributes={"experiment": "ranker-v2"}),
        )
    client.track(
        "clicks", EvaluationContext("user-1"), TrackingEventDetails(1.0, {"experiment": "nope"})
    )

    arms = ts.Experiment("banner", {"left": 30, "right": 70}).assign_batch(UNITS).arm.tolist()
    frame = pd.DataFrame({"arm": arms, "value": values})
    moments = recorder.moments()
    for arm, group in frame.groupby("arm"):
        m = moments[("revenue", arm)]
        assert m.n == len(group)
        assert m.mean == pytest.approx(group["value"].mean(), rel=1e-12)
        assert m.var == pytest.approx(group["value"].var(ddof=1), rel=1e-9)
        assert moments[("visit", arm)].n == len(group)
        assert moments[("visit", arm)].mean == 1.0
    in_ranker = [u for u in UNITS[:100] if not u.endswith("3")]
    clicks = {arm: m.n for (metric, arm), m in moments.items() if metric == "clicks"}
    expected = pd.Series([splitter_arm(splitter, u) for u in in_ranker]).value_counts()
    assert clicks == expected.to_dict()
    assert sum(clicks.values()) == 90


def test_async_evaluation_gives_the_same_details(splitter) -> None:
    import asyncio

    client, _ = client_for(splitter)
    ctx = EvaluationContext("user-11", {"country": "US"})
    sync = client.get_string_details("ranker-v2", "none", ctx)
    got = asyncio.run(client.get_string_details_async("ranker-v2", "none", ctx))
    assert (got.value, got.variant, got.reason) == (sync.value, sync.variant, sync.reason)


def test_providers_of_two_domains_serve_their_own_splitter(splitter, tmp_path: Path) -> None:
    other = ts.Splitter({"flags": [{"key": "theme", "type": "string", "default": "other"}]})
    api.set_provider_and_wait(TrafficsplitProvider(splitter), "main")
    api.set_provider_and_wait(TrafficsplitProvider(other), "other")
    assert api.get_client("main").get_string_value("theme", "x") == "classic"
    assert api.get_client("other").get_string_value("theme", "x") == "other"


def test_the_provider_needs_a_splitter() -> None:
    with pytest.raises(ts.ConfigError, match=r"needs a trafficsplit\.Splitter, got dict"):
        TrafficsplitProvider({"flags": []})
    sp = ts.Splitter({})
    with pytest.raises(ts.ConfigError, match="MetricsRecorder"):
        TrafficsplitProvider(sp, metrics=object())


def test_resolve_needs_a_known_kind(splitter) -> None:
    with pytest.raises(ts.ArgumentError, match="kind must be one of boolean"):
        resolve(splitter, "theme", "text", "x")


def test_resolve_works_without_the_sdk_and_the_provider_names_the_extra() -> None:
    code = """
import sys
sys.modules["openfeature"] = None  # as if openfeature-sdk were not installed
import trafficsplit as ts
from trafficsplit.openfeature import resolve
sp = ts.Splitter({"flags": [{"key": "f", "type": "number", "default": 3}]})
r = resolve(sp, "f", "float", 0.0)
print(r.value, r.reason, r.variant)
try:
    from trafficsplit.openfeature import TrafficsplitProvider
except ImportError as e:
    print(e)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [
        "3.0 STATIC default",
        "trafficsplit.openfeature.TrafficsplitProvider needs openfeature: "
        "pip install 'trafficsplit[openfeature]'",
    ]


# -- Splitter.on_reload -----------------------------------------------------------------------


def test_on_reload_tells_of_swaps_and_failures_until_unsubscribed(config_file: Path) -> None:
    sp = ts.Splitter.from_file(config_file)
    calls: list[tuple] = []
    stop = sp.on_reload(lambda *args: calls.append(args))

    def broken(*args):
        raise RuntimeError("a listener that fails")

    sp.on_reload(broken)
    first = sp.version
    assert not sp.reload()  # nothing changed: nothing to tell
    assert calls == []
    config_file.write_text(CONFIG.replace("default: classic", "default: modern"))
    assert sp.reload()
    assert calls == [(first, sp.version)] and sp.version != first
    config_file.write_text("flags: [{key: x, type: nope, default: 1}]\n")
    assert not sp.reload()
    assert len(calls) == 2 and isinstance(calls[1][0], ts.ConfigError)
    config_file.write_text("")  # empty: never replaces a serving configuration
    assert not sp.reload()
    assert isinstance(calls[2][0], ts.ConfigError) and "empty" in str(calls[2][0])
    stop()
    stop()  # twice is harmless
    config_file.write_text(CONFIG)
    assert sp.reload()
    assert len(calls) == 3
    assert sp.stats["reloads"] == 2
