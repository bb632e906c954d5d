"""The independent re-implementation of the peers' bucketing (tests/peers/reference.py) against
every case of their published test data that bucketing decides (tests/data/peers, sources and
licences in each directory's SOURCE.md).

Checked here:
- GrowthBook cases.json: every case of hash, getBucketRange, chooseVariation, inNamespace and
  getEqualWeights (hash in all three encodings, which agree on these ASCII inputs), and the run
  cases except those that need URL or query-string forcing, conditions or prerequisites
  (`gb_run_experiment` raises Unsupported for them: 7 of the 73).
- Unleash client-specification 01, 02, 03, 04, 05, 07, 08, 10, 12, 16, 18: every isEnabled and
  variant test, in both encodings. The only constraint operator these suites use is IN, which
  the reference evaluates. Where a test's sticky value would be random, its outcome is still
  determined (rollout 0 or 100, a single variant); the reference raises Indeterminate
  otherwise. Not vendored, hence not run: the constraint-operator suites (09, 11, 13, 14, 15,
  21, 22: operators, not bucketing), 06 (remote address), 17 (dependent features) and 19/20
  (delta API).
- flagd testbed fractional.feature: every example of every scenario, @fractional-v1 tables
  through the legacy scheme and all others through the current one.
- Eppo: the four MD5Sharder vectors and every subject of the vendored ufc tests.
- LaunchDarkly: the eight bucket values of the Go SDK's tests, in float32 as the Go SDK computes
  them (exactly) and in double as the Python/Ruby/Node SDKs do (to the Go test's 1e-7).
- Statsig: the three evaluation-hash vectors.
- The non-ASCII facts. GrowthBook "Jürgen", seed "seed", v2: 0.2549 over UTF-16, 0.9335 over
  UTF-8, as the references say. Unleash "Jürgen" in group "AB12A": 93 over UTF-8 (yggdrasil)
  and 59 over the low bytes of UTF-16 (the Node client); the references give these two the
  other way round. The installed growthbook package (4.0.0) hashes UTF-16 code units, so it
  checks the utf16 encoding everywhere and codepoints only within the BMP.
- That each mode's rule (reference.mode_assign) is what the peer's own evaluator gives for the
  same experiment written in the peer's format.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peers import reference as ref

PEERS = Path(__file__).resolve().parent / "data" / "peers"


def load(path: str) -> Any:
    return json.loads((PEERS / path).read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------- GrowthBook

GB = load("growthbook/cases.json")
GB_ENCODINGS = ("utf16", "codepoints", "utf8")


def test_growthbook_suite_version_and_sizes() -> None:
    assert GB["specVersion"] == "0.8.0"
    sizes = {k: len(GB[k]) for k in ("hash", "getBucketRange", "chooseVariation")}
    assert sizes == {"hash": 15, "getBucketRange": 13, "chooseVariation": 13}
    assert (len(GB["inNamespace"]), len(GB["getEqualWeights"]), len(GB["run"])) == (16, 6, 73)


@pytest.mark.parametrize("encoding", GB_ENCODINGS)
@pytest.mark.parametrize("case", GB["hash"], ids=lambda c: f"{c[0]}|{c[1]}|v{c[2]}")
def test_growthbook_hash(case: list[Any], encoding: str) -> None:
    seed, value, version, expected = case
    got = ref.gb_hash(seed, value, version, encoding)
    if expected is None:
        assert got is None
    else:
        assert got == expected


@pytest.mark.parametrize("case", GB["getBucketRange"], ids=lambda c: c[0])
def test_growthbook_bucket_ranges(case: list[Any]) -> None:
    _, (n, coverage, weights), expected = case
    got = ref.gb_bucket_ranges(n, coverage, weights)
    assert len(got) == len(expected)
    for (a, b), (ea, eb) in zip(got, expected, strict=True):
        assert a == pytest.approx(ea, abs=1e-8)
        assert b == pytest.approx(eb, abs=1e-8)


@pytest.mark.parametrize("case", GB["chooseVariation"], ids=lambda c: c[0])
def test_growthbook_choose_variation(case: list[Any]) -> None:
    _, n, ranges, expected = case
    assert ref.gb_choose_variation(n, ranges) == expected


@pytest.mark.parametrize("encoding", GB_ENCODINGS)
@pytest.mark.parametrize("case", GB["inNamespace"], ids=lambda c: c[0])
def test_growthbook_in_namespace(case: list[Any], encoding: str) -> None:
    _, user, namespace, expected = case
    assert ref.gb_in_namespace(user, namespace, encoding) is expected


@pytest.mark.parametrize("case", GB["getEqualWeights"], ids=lambda c: str(c[0]))
def test_growthbook_equal_weights(case: list[Any]) -> None:
    n, expected = case
    got = ref.gb_equal_weights(n)
    assert got == pytest.approx(expected, abs=1e-8)


GB_RUN_UNSUPPORTED = {
    "querystring force",
    "querystring force with inactive",
    "evaluates conditions - pass",
    "evaluates conditions - fail",
    "Prerequisite condition passes",
    "Prerequisite condition fails",
    "SavedGroups correctly pulled from context for experiment",
}


@pytest.mark.parametrize("case", GB["run"], ids=lambda c: c[0])
def test_growthbook_run(case: list[Any]) -> None:
    name, context, experiment, value, in_experiment, hash_used = case
    try:
        got = ref.gb_run_experiment(context, experiment)
    except ref.Unsupported as e:
        assert name in GB_RUN_UNSUPPORTED, f"unexpectedly unsupported: {e}"
        pytest.skip(f"needs {e}")
    assert name not in GB_RUN_UNSUPPORTED
    assert got == (value, in_experiment, hash_used)


def test_growthbook_run_skips_only_the_listed_cases() -> None:
    names = [c[0] for c in GB["run"]]
    assert set(names) >= GB_RUN_UNSUPPORTED
    assert len(GB["run"]) - sum(n in GB_RUN_UNSUPPORTED for n in names) == 66


def test_growthbook_non_ascii_encodings_differ() -> None:
    # The facts quoted in the references: "Jürgen", seed "seed", hash version 2.
    assert ref.gb_hash("seed", "Jürgen", 2, "utf16") == 0.2549
    assert ref.gb_hash("seed", "Jürgen", 2, "utf8") == 0.9335
    # In the BMP, UTF-16 units are the code points; beyond it they are surrogate pairs.
    assert ref.gb_hash("seed", "Jürgen", 2, "codepoints") == 0.2549
    assert ref.gb_units("😀", "utf16") == [0xD83D, 0xDE00]
    assert ref.gb_units("😀", "codepoints") == [0x1F600]
    assert ref.gb_units("é", "utf8") == [0xC3, 0xA9]


def test_growthbook_fnv_is_standard_fnv1a() -> None:
    # Published FNV-1a 32 test values (Fowler/Noll/Vo): "" and "a", "foobar".
    assert ref.fnv1a32(b"") == 0x811C9DC5
    assert ref.fnv1a32(b"a") == 0xE40C292C
    assert ref.fnv1a32(b"foobar") == 0xBF9CF968


text_units = st.text(alphabet=st.characters(codec="utf-8"), max_size=24)
bmp_units = st.text(alphabet=st.characters(codec="utf-8", max_codepoint=0xFFFF), max_size=24)


@settings(max_examples=400, deadline=None)
@given(seed=text_units, value=text_units, version=st.sampled_from([1, 2]))
def test_growthbook_python_sdk_hashes_utf16_units(seed: str, value: str, version: int) -> None:
    # The installed growthbook package (4.0.0) hashes UTF-16 code units, as the JavaScript
    # SDK does: an independent implementation of the utf16 encoding.
    gb_core = pytest.importorskip("growthbook.core")
    assert ref.gb_hash(seed, value, version, "utf16") == gb_core.gbhash(seed, value, version)


@settings(max_examples=400, deadline=None)
@given(seed=bmp_units, value=bmp_units, version=st.sampled_from([1, 2]))
def test_growthbook_codepoints_is_the_python_sdk_in_the_bmp(
    seed: str, value: str, version: int
) -> None:
    gb_core = pytest.importorskip("growthbook.core")
    assert ref.gb_hash(seed, value, version, "codepoints") == gb_core.gbhash(seed, value, version)


def test_growthbook_codepoints_is_not_the_installed_python_sdk_beyond_the_bmp() -> None:
    # Python SDKs before the UTF-16 change hashed ord(ch) (code points); the installed one
    # hashes surrogate pairs. They part for any character beyond U+FFFF.
    gb_core = pytest.importorskip("growthbook.core")
    assert gb_core.fnv1a32("😀") == ref.fnv1a32([0xD83D, 0xDE00])
    assert gb_core.fnv1a32("😀") != ref.fnv1a32([0x1F600])
    assert ref.gb_hash("exp", "😀", 2, "codepoints") != gb_core.gbhash("exp", "😀", 2)


@settings(max_examples=200, deadline=None)
@given(
    value=text_units,
    namespace=st.tuples(
        st.text(max_size=8),
        st.floats(0, 1, allow_nan=False),
        st.floats(0, 1, allow_nan=False),
    ),
)
def test_growthbook_namespace_is_the_python_sdk(value: str, namespace: tuple) -> None:
    gb_core = pytest.importorskip("growthbook.core")
    assert ref.gb_in_namespace(value, namespace, "utf16") is gb_core.inNamespace(value, namespace)


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(-1, 6),
    coverage=st.floats(-0.5, 1.5, allow_nan=False),
    weights=st.none() | st.lists(st.floats(0, 1, allow_nan=False), max_size=6),
)
def test_growthbook_ranges_are_the_python_sdk(
    n: int, coverage: float, weights: list[float] | None
) -> None:
    gb_core = pytest.importorskip("growthbook.core")
    expected = gb_core.getBucketRanges(n, coverage, weights)
    assert [tuple(r) for r in ref.gb_bucket_ranges(n, coverage, weights)] == [
        tuple(r) for r in expected
    ]


# ---------------------------------------------------------------------------------- Unleash

UNLEASH_SUITES = sorted((PEERS / "unleash" / "specifications").glob("*.json"))


def unleash_cases(kind: str) -> Iterator[Any]:
    for path in UNLEASH_SUITES:
        suite = json.loads(path.read_text(encoding="utf-8"))
        for t in suite.get(kind, []):
            yield pytest.param(suite["state"], t, id=f"{path.stem}: {t['description']}")


def test_unleash_vendored_suites() -> None:
    names = [p.stem[:2] for p in UNLEASH_SUITES]
    assert names == ["01", "02", "03", "04", "05", "07", "08", "10", "12", "16", "18"]
    n_tests = sum(1 for _ in unleash_cases("tests"))
    n_variants = sum(1 for _ in unleash_cases("variantTests"))
    assert (n_tests, n_variants) == (49, 32)


@pytest.mark.parametrize("encoding", ["utf8", "utf16-low-byte"])
@pytest.mark.parametrize(("state", "case"), list(unleash_cases("tests")))
def test_unleash_is_enabled(state: dict, case: dict, encoding: str) -> None:
    got = ref.unleash_is_enabled(state, case["toggleName"], case["context"], encoding)
    assert got is case["expectedResult"]


@pytest.mark.parametrize("encoding", ["utf8", "utf16-low-byte"])
@pytest.mark.parametrize(("state", "case"), list(unleash_cases("variantTests")))
def test_unleash_variant(state: dict, case: dict, encoding: str) -> None:
    got = ref.unleash_variant(state, case["toggleName"], case["context"], encoding)
    assert got == case["expectedResult"]


def test_unleash_non_ascii_encodings_differ() -> None:
    # "Jürgen" in group "AB12A": the UTF-8 key (yggdrasil) and the low bytes of its UTF-16
    # units (murmurhash3js in the Node client) are different byte strings.
    key = "AB12A:Jürgen"
    assert ref.utf16_low_bytes(key) == b"AB12A:J\xfcrgen"
    assert key.encode("utf-8") == b"AB12A:J\xc3\xbcrgen"
    assert ref.unleash_normalized("Jürgen", "AB12A", encoding="utf8") == 93
    assert ref.unleash_normalized("Jürgen", "AB12A", encoding="utf16-low-byte") == 59
    # ASCII ids: both encodings are the same bytes.
    assert ref.utf16_low_bytes("AB12A:user-1") == b"AB12A:user-1"


def test_unleash_murmur_is_the_published_murmur3() -> None:
    # MurmurHash3 x86_32 reference values (SMHasher's verification inputs, seed 0 / 1).
    assert ref.murmur3_x86_32(b"", 0) == 0
    assert ref.murmur3_x86_32(b"", 1) == 0x514E28B7
    assert ref.murmur3_x86_32(b"hello", 0) == 0x248BFA47


# ------------------------------------------------------------------------------------ flagd

FLAGD_FLAGS = load("flagd/evaluator/flags/testkit-flags.json")["flags"]


def gherkin_examples(text: str) -> Iterator[tuple[str, set[str], list[str], dict[str, str]]]:
    """(scenario, tags, steps, example row) for every example of every scenario; a plain
    Scenario yields one row {}. Tags are the feature's, the scenario's and the table's."""
    feature_tags: set[str] = set()
    pending: set[str] = set()
    scenario = ""
    scenario_tags: set[str] = set()
    steps: list[str] = []
    table_tags: set[str] = set()
    header: list[str] | None = None
    outline = False
    lines = [ln.strip() for ln in text.splitlines()]

    def flush_plain() -> Iterator[tuple[str, set[str], list[str], dict[str, str]]]:
        if scenario and not outline:
            yield scenario, feature_tags | scenario_tags, steps, {}

    for line in lines:
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            pending |= set(line.split())
        elif line.startswith("Feature:"):
            feature_tags, pending = pending, set()
        elif line.startswith(("Scenario:", "Scenario Outline:")):
            yield from flush_plain()
            outline = line.startswith("Scenario Outline:")
            scenario = line.split(":", 1)[1].strip()
            scenario_tags, pending = pending, set()
            steps, header = [], None
        elif line.startswith("Examples"):
            table_tags, pending, header = pending, set(), None
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if header is None:
                header = cells
            else:
                row = dict(zip(header, cells, strict=True))
                yield scenario, feature_tags | scenario_tags | table_tags, steps, row
        elif line.startswith(("Given", "And", "When", "Then", "But")):
            steps.append(line.split(" ", 1)[1])
    yield from flush_plain()


def flagd_scenarios() -> list[Any]:
    text = (PEERS / "flagd/evaluator/gherkin/fractional.feature").read_text(encoding="utf-8")
    out = []
    for scenario, tags, steps, row in gherkin_examples(text):

        def fill(s: str, row: dict[str, str] = row) -> str:
            return re.sub(r"<([^>]+)>", lambda m: row[m.group(1)], s)

        label = f"{scenario} {sorted(t for t in tags if t.startswith('@fractional-'))} {row}"
        out.append(pytest.param(tags, [fill(s) for s in steps], id=label))
    return out


FLAGD_SCENARIOS = flagd_scenarios()


def test_flagd_scenario_count() -> None:
    v1 = sum("@fractional-v1" in p.values[0] for p in FLAGD_SCENARIOS)
    assert (len(FLAGD_SCENARIOS), v1) == (54, 15)


@pytest.mark.parametrize(("tags", "steps"), FLAGD_SCENARIOS)
def test_flagd_fractional(tags: set[str], steps: list[str]) -> None:
    context: dict[str, Any] = {}
    flag_key = fallback = None
    expected_value = expected_reason = None
    for s in steps:
        if m := re.fullmatch(r'a \w+-flag with key "([^"]*)" and a fallback value "([^"]*)"', s):
            flag_key, fallback = m.groups()
        elif m := re.fullmatch(
            r'a context containing a nested property with outer key "([^"]*)" and inner key '
            r'"([^"]*)", with value "([^"]*)"',
            s,
        ):
            context.setdefault(m[1], {})[m[2]] = m[3]
        elif m := re.fullmatch(r'a context containing a targeting key with value "([^"]*)"', s):
            context["targetingKey"] = m[1]
        elif m := re.fullmatch(
            r'a context containing a key "([^"]*)", with type "String" and with value "([^"]*)"',
            s,
        ):
            context[m[1]] = m[2]
        elif m := re.fullmatch(r'the resolved details value should be "([^"]*)"', s):
            expected_value = m[1]
        elif m := re.fullmatch(r'the reason should be "([^"]*)"', s):
            expected_reason = m[1]
        else:
            assert s in ("an evaluator", "the flag was evaluated with details"), s
    assert flag_key is not None and expected_value is not None
    legacy = "@fractional-v1" in tags
    value, reason = ref.flagd_evaluate(FLAGD_FLAGS, flag_key, context, legacy=legacy)
    if reason == "ERROR":
        value = fallback
    assert value == expected_value
    if expected_reason is not None:
        assert reason == expected_reason


def test_flagd_edge_vectors_sit_at_the_boundaries() -> None:
    # The testbed's comment: keys whose hash falls on critical values of the v2 scheme
    # (lower half of 50/50 ends at 2^31 - 1, upper starts at 2^31).
    hashes = {k: ref.flagd_hash(k) for k in ("ejOoVL", "bY9fO-", "SI7p-", "6LvT0", "ceQdGm")}
    assert {hashes["SI7p-"], hashes["6LvT0"]} == {0x7FFFFFFF, 0x80000000}
    assert 0 in hashes.values() and 0xFFFFFFFF in hashes.values()


# ------------------------------------------------------------------------------------- Eppo

EPPO_FLAGS = load("eppo/ufc/flags-v1.json")["flags"]
EPPO_TESTS = sorted((PEERS / "eppo/ufc/tests").glob("*.json"))


@pytest.mark.parametrize("case", load("eppo/sharder_vectors.json")["cases"], ids=str)
def test_eppo_sharder(case: dict) -> None:
    assert ref.eppo_shard(case["input"], 10000) == case["expected"]


def eppo_subjects() -> Iterator[Any]:
    for path in EPPO_TESTS:
        t = json.loads(path.read_text(encoding="utf-8"))
        for s in t["subjects"]:
            yield pytest.param(t, s, id=f"{t['flag']}: {s['subjectKey']}")


EPPO_SUBJECTS = list(eppo_subjects())


def test_eppo_subject_count() -> None:
    assert (len(EPPO_TESTS), len(EPPO_SUBJECTS)) == (11, 98)


def _eppo_value(variation_type: str, value: Any) -> Any:
    return json.loads(value) if variation_type == "JSON" else value


@pytest.mark.parametrize(("test", "subject"), EPPO_SUBJECTS)
def test_eppo_ufc(test: dict, subject: dict) -> None:
    key, value = ref.eppo_evaluate(
        EPPO_FLAGS, test["flag"], subject["subjectKey"], subject["subjectAttributes"]
    )
    expected = subject["assignment"]
    if key is None:
        assert expected == test["defaultValue"]
    else:
        assert _eppo_value(test["variationType"], value) == expected
    details = subject.get("evaluationDetails") or {}
    if "variationKey" in details:
        assert key == details["variationKey"]


# ------------------------------------------------------------------------------ LaunchDarkly


def _f32(x: float) -> float:
    return ref._to_float32(x)


@pytest.mark.parametrize("case", load("launchdarkly/bucket_values.json")["cases"], ids=str)
def test_launchdarkly_bucket(case: dict) -> None:
    args = (case["flag_key"], case["salt"], case["value"], case["seed"])
    # The Go SDK: float32 throughout; the expected literal is a float32 constant in Go.
    assert ref.ld_bucket_float32(*args) == _f32(case["expected"])
    # Python, Ruby and Node compute in double: within the Go test's relative 1e-7.
    assert ref.ld_bucket(*args) == pytest.approx(case["expected"], rel=1e-7)


def test_launchdarkly_float32_differs_from_double() -> None:
    # The two precisions disagree on the bucket value itself, so a unit within one float32
    # step of a rollout boundary can land in different variations in the Go and Python SDKs.
    args = ("hashKey", "saltyA", "userKeyA", None)
    assert ref.ld_bucket_float32(*args) != ref.ld_bucket(*args)


def test_int_to_float32_rounds_once() -> None:
    # 2^24 + 1 is halfway between two float32 values: ties to even goes down.
    assert ref._int_to_float32((1 << 24) + 1) == float(1 << 24)
    assert ref._int_to_float32((1 << 24) + 3) == float((1 << 24) + 4)
    # A value that double rounding (int -> double -> float32) would round the wrong way:
    n = (1 << 60) + (1 << 36) + 1  # just above the float32 midpoint; the double drops the +1
    assert ref._int_to_float32(n) == float((1 << 60) + (1 << 37))
    assert _f32(float(n)) == float(1 << 60)


# ---------------------------------------------------------------------------------- Statsig


@pytest.mark.parametrize("case", load("statsig/hash_vectors.json")["cases"], ids=str)
def test_statsig_hash(case: dict) -> None:
    assert ref.statsig_hash(case["input"]) == int(case["expected_hex"], 16)


# ------------------------------------------------- each mode's rule is the peer's evaluation

UNITS = [
    *[f"user-{i}" for i in range(300)],
    *[str(i) for i in range(100)],
    "Jürgen",
    "josé",
    "😀",
    "東京",
    "a\u0301",
    "",
]
ARMS = [[50, 50], [10, 20, 70], [33.3, 33.3, 33.4], [0, 100], [100], [25, 0, 75]]


@pytest.mark.parametrize("weights", ARMS, ids=str)
@pytest.mark.parametrize("exposure", [1.0, 0.8, 0.25, 0.0])
@pytest.mark.parametrize("version", [1, 2])
def test_growthbook_mode_is_run_experiment(weights: list, exposure: float, version: int) -> None:
    for encoding in GB_ENCODINGS:
        experiment = {
            "key": "checkout",
            "variations": list(range(len(weights))) + ([None] if len(weights) == 1 else []),
            "weights": [w / 100 for w in weights] + ([0.0] if len(weights) == 1 else []),
            "coverage": exposure,
            "hashVersion": version,
        }
        params = {"encoding": encoding}
        for u in UNITS:
            arm, _, reason = ref.mode_assign(
                f"growthbook-v{version}", "checkout", weights, exposure, u, params
            )
            value, in_exp, _ = ref.gb_run_experiment(
                {"attributes": {"id": u}}, experiment, encoding
            )
            if u == "":
                continue  # GrowthBook leaves an empty id out of every experiment
            assert (arm if reason == "assigned" else None) == (value if in_exp else None), u


@pytest.mark.parametrize("weights", [[50, 50], [10, 20, 70], [0, 100], [100], [33.3, 33.3, 33.4]])
@pytest.mark.parametrize("exposure", [1.0, 0.55, 0.1, 0.0])
@pytest.mark.parametrize("encoding", ["utf8", "utf16-low-byte"])
def test_unleash_mode_is_flexible_rollout_with_variants(
    weights: list, exposure: float, encoding: str
) -> None:
    state = {
        "features": [
            {
                "name": "new-ui",
                "enabled": True,
                "strategies": [
                    {
                        "name": "flexibleRollout",
                        "parameters": {
                            "rollout": str(round(exposure * 100)),
                            "stickiness": "default",
                            "groupId": "new-ui",
                        },
                    }
                ],
                "variants": [
                    {"name": f"arm{i}", "weight": round(w * 10), "stickiness": "default"}
                    for i, w in enumerate(weights)
                ],
            }
        ]
    }
    for u in UNITS:
        if u == "":
            continue  # an empty userId is no sticky value in Unleash
        arm, _, _ = ref.mode_assign(
            "unleash", "new-ui", weights, exposure, u, {"encoding": encoding}
        )
        v = ref.unleash_variant(state, "new-ui", {"userId": u}, encoding)
        assert (None if arm is None else f"arm{arm}") == (v["name"] if v["enabled"] else None)


@pytest.mark.parametrize("weights", [[50, 50], [10, 20, 70], [0, 100], [100], [25, 0, 75]])
@pytest.mark.parametrize("legacy", [False, True])
def test_flagd_mode_is_fractional(weights: list, legacy: bool) -> None:
    flag = {
        "state": "ENABLED",
        "variants": {f"arm{i}": i for i in range(len(weights))},
        "defaultVariant": "arm0",
        "targeting": {"fractional": [[f"arm{i}", w] for i, w in enumerate(weights)]},
    }
    mode = "flagd-legacy" if legacy else "flagd"
    for u in UNITS:
        if u == "":
            continue  # flagd gives the default variant to an empty targeting key
        arm, _, _ = ref.mode_assign(mode, "my-flag", weights, 1.0, u)
        value, reason = ref.flagd_evaluate(
            {"my-flag": flag}, "my-flag", {"targetingKey": u}, legacy
        )
        assert (arm, "TARGETING_MATCH") == (value, reason), u


@pytest.mark.parametrize(
    "weights", [[50, 50], [10, 20, 70], [0, 100], [100], [33.33, 33.33, 33.34]]
)
@pytest.mark.parametrize("exposure", [1.0, 0.6, 0.05, 0.0])
def test_eppo_mode_is_a_ufc_allocation(weights: list, exposure: float) -> None:
    key = "exp"
    cum = [0]
    for w in weights:
        cum.append(cum[-1] + round(w * 100))
    splits = [
        {
            "variationKey": f"arm{i}",
            "shards": [
                {
                    "salt": f"{key}-traffic",
                    "ranges": [{"start": 0, "end": round(exposure * 10000)}],
                },
                {"salt": f"{key}-split", "ranges": [{"start": cum[i], "end": cum[i + 1]}]},
            ],
        }
        for i in range(len(weights))
    ]
    flags = {
        key: {
            "enabled": True,
            "totalShards": 10000,
            "variations": {f"arm{i}": {"key": f"arm{i}", "value": i} for i in range(len(weights))},
            "allocations": [{"key": "a", "rules": [], "splits": splits, "doLog": True}],
        }
    }
    for u in UNITS:
        arm, _, _ = ref.mode_assign("eppo", key, weights, exposure, u)
        _, value = ref.eppo_evaluate(flags, key, u, {})
        assert arm == value, u


def test_launchdarkly_mode_matches_the_harness_rules() -> None:
    # sdk-test-harness rollout-or-experiment: 99999/1 gives the first bucket, 1/99999 the
    # second, and 1/1 (a value past the end) the last.
    for u in ["user-key", *UNITS[:50]]:
        b = ref.ld_bucket("flag", "salt", u)
        first, _, _ = ref.mode_assign(
            "launchdarkly", "flag", [99.999, 0.001], 1.0, u, {"salt": "salt"}
        )
        assert first == (0 if b < 0.99999 else 1)
    b = ref.ld_bucket("flag", "salt", "user-key")
    assert 0.00002 < b < 0.99999


def test_statsig_mode_buckets() -> None:
    for u in UNITS:
        arm, bucket, reason = ref.mode_assign("statsig", "exp", [30, 70], 0.5, u)
        assert bucket == ref.statsig_hash(f"exp.{ref.unit_text(u)}") % 1000
        passed = ref.statsig_passes("exp", "exp:rule", ref.unit_text(u), 50)
        assert (reason == "assigned") is passed
        if passed:
            assert arm == (0 if bucket < 300 else 1)


def test_units_are_text() -> None:
    for mode in ref.MODES:
        exposure = 1.0
        pairs: list[tuple[ref.Unit, str]] = [(42, "42"), (b"J\xc3\xbcrgen", "Jürgen"), (-7, "-7")]
        for a, b in pairs:
            assert ref.mode_assign(mode, "k", [50, 50], exposure, a) == ref.mode_assign(
                mode, "k", [50, 50], exposure, b
            )
    assert set(string.digits) <= set(ref.unit_text(1234567890))
