"""Every validation error says what was wrong, where, and what was expected."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import trafficsplit as ts

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"arms": {"a": 50, "b": 40}},
            r"arm weights must sum to 100 \(percent\) within 1e-9, "
            r"got 90 \(a=50, b=40\)",
        ),
        ({"arms": {"a": 0.5, "b": 0.5}}, r"they look like fractions"),
        (
            {"arms": {"a": -10, "b": 110}},
            r"arms\[0\]\.weight \('a'\) must be a percentage "
            r"between 0 and 100, got -10",
        ),
        ({"arms": {"a": math.nan, "b": 100}}, r"arms\[0\]\.weight \('a'\) must be a percentage"),
        (
            {"arms": {"a": "50", "b": 50}},
            r"arms\[0\]\.weight \('a'\) must be a number "
            r"\(percent\), got str '50'",
        ),
        ({"arms": {"a": True, "b": 99}}, r"must be a number \(percent\), got bool"),
        ({"arms": {}}, r"arms must name at least one arm"),
        ({"arms": [ts.Arm("a", 50), ts.Arm("a", 50)]}, r"arms\[1\]\.name 'a' is used twice"),
        ({"arms": [ts.Arm("", 100)]}, r"arms\[0\]\.name must be a non-empty str, got ''"),
        ({"arms": [ts.Arm(3, 100)]}, r"arms\[0\]\.name must be a non-empty str, got 3"),
        ({"arms": ["a", "b"]}, r"arms\[0\] must be an Arm\(name, weight, payload\)"),
        (
            {"arms": 100},
            r"arms must be a dict of name -> weight \(percent\) or a list of Arm, "
            r"got int",
        ),
        (
            {"arms": [ts.Arm("a", 100, {"f": object()})]},
            r"arms\[0\]\.payload \('a'\)\.f must be JSON-able",
        ),
        (
            {"arms": [ts.Arm("a", 100, {1: "x"})]},
            r"has a key 1 of type int; JSON object keys "
            r"must be str",
        ),
        ({"arms": [ts.Arm("a", 100, math.inf)]}, r"inf is not valid JSON"),
        (
            {"exposure": 50},
            r"exposure is a share of units between 0 and 1, got 50; "
            r"did you mean 0.5 \(50 percent\)\?",
        ),
        ({"exposure": -0.1}, r"exposure is a share of units between 0 and 1, got -0.1$"),
        ({"exposure": "all"}, r"exposure must be a number between 0 and 1, got str 'all'"),
        ({"buckets": 0}, r"buckets must be between 1 and 1,000,000, got 0"),
        ({"buckets": 2_000_000}, r"buckets must be between 1 and 1,000,000, got 2000000"),
        ({"buckets": 100.0}, r"buckets must be an int, got float 100.0"),
        ({"algorithm": "md5"}, r"algorithm must be one of \('xxh3', 'murmur3'\), got 'md5'"),
        ({"key": ""}, r"key must be a non-empty str, got ''"),
        ({"key": None}, r"key must be a non-empty str, got None"),
        ({"salt": ""}, r"salt must be a non-empty str, got ''"),
        ({"bucket_version": 0}, r"bucket_version must be an int >= 1, got 0"),
        (
            {"history": [{"weights": {"a": 50, "b": 50}, "at": T0}]},
            r"allocated_at is required when history is given",
        ),
        (
            {"history": [{"weights": {"a": 50, "c": 50}, "at": T0}], "allocated_at": T0},
            r"history\[0\]\.weights names arm 'c', which is not among the arms \['a', 'b'\]; "
            r"keep retired arms with weight 0",
        ),
        (
            {"history": [{"weights": {"a": 50, "b": 40}, "at": T0}], "allocated_at": T0},
            r"history\[0\]\.weights must sum to 100",
        ),
        (
            {"history": [{"weights": {"a": 50, "b": 50}, "when": T0}], "allocated_at": T0},
            r"history\[0\] has unknown keys \['when'\]; expected weights, exposure, at",
        ),
        ({"history": [{"at": T0}], "allocated_at": T0}, r"history\[0\] needs 'weights'"),
        (
            {
                "history": [{"weights": {"a": 50, "b": 50}, "at": T0, "exposure": 2}],
                "allocated_at": T0,
            },
            r"history\[0\]\.exposure is a share of units between 0 and 1",
        ),
        (
            {"history": [{"weights": {"a": 50, "b": 50}, "at": "yesterday"}], "allocated_at": T0},
            r"history\[0\]\.at = 'yesterday' is not an ISO-8601 time",
        ),
        (
            {
                "history": [{"weights": {"a": 50, "b": 50}, "at": T0}],
                "allocated_at": T0 - dt.timedelta(days=1),
            },
            r"allocated_at \(2026-10-31T00:00:00\+00:00\) is earlier than the step before it "
            r"\(2026-11-01T00:00:00\+00:00\); history runs oldest first",
        ),
        (
            {
                "history": [{"weights": {"a": 50, "b": 50}}, {"weights": {"a": 50, "b": 50}}],
                "allocated_at": T0,
            },
            r"history\[1\] needs a time: only the first allocation may "
            r"omit it",
        ),
        ({"history": {"weights": {}}}, r"history must be a list of allocation steps"),
    ],
)
def test_experiment_errors(kwargs, message):
    args = {"key": "e", "arms": {"a": 50, "b": 50}} | kwargs
    with pytest.raises(ts.ConfigError, match=message) as info:
        ts.Experiment(**args)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ts.Error)


def test_reallocate_errors():
    e = ts.Experiment("e", {"a": 50, "b": 50}, allocated_at=T0)
    with pytest.raises(
        ts.ConfigError,
        match=r"weights must give every arm a weight; missing "
        r"\['b'\] \(give 0 to retire an arm\)",
    ):
        e.reallocate({"a": 100}, effective=T0)
    with pytest.raises(ts.ConfigError, match=r"weights must sum to 100"):
        e.reallocate({"a": 60, "b": 60}, effective=T0)
    with pytest.raises(ts.ConfigError, match=r"earlier than the step before it"):
        e.reallocate({"a": 60, "b": 40}, effective=T0 - dt.timedelta(seconds=1))
    with pytest.raises(ts.ConfigError, match=r"exposure is a share of units"):
        e.reallocate(exposure=1.5, effective=T0)
    with pytest.raises(ts.ConfigError, match=r"weights keys must be arm names, got 3"):
        e.reallocate({3: 100, "a": 0, "b": 0}, effective=T0)
    # The original is untouched by failed and successful re-allocations.
    e.reallocate({"a": 70, "b": 30}, effective=T0)
    assert e.weights == {"a": 50, "b": 50} and len(e.steps) == 1


def test_moved_fraction_errors():
    a = ts.Experiment("e", {"a": 50, "b": 50})
    with pytest.raises(
        ts.ConfigError,
        match=r"but salt differs \('e' vs 'f'\): every unit is "
        r"re-randomised",
    ):
        a.moved_fraction(ts.Experiment("f", {"a": 50, "b": 50}))
    with pytest.raises(ts.ConfigError, match=r"but buckets differs \(10000 vs 100\)"):
        a.moved_fraction(ts.Experiment("e", {"a": 50, "b": 50}, buckets=100))
    with pytest.raises(TypeError, match=r"compares two Experiments, got dict"):
        a.moved_fraction({})


EXP = ts.Experiment("v", {"a": 50, "b": 50})


@pytest.mark.parametrize(
    ("unit", "message"),
    [
        (1.5, r"unit id has type 'float' \(1\.5\); unit ids must be str, int or bytes"),
        (True, r"unit id has type 'bool' \(True\)"),
        (np.float64(2.0), r"unit id has type 'numpy.float64'"),
        (np.bool_(True), r"unit id has type 'numpy.bool'"),
        (dt.datetime(2026, 1, 1), r"unit id has type 'datetime.datetime'"),
        (object(), r"unit id has type 'object'"),
        (1 + 2j, r"unit id has type 'complex'"),
        (["a"], r"unit id has type 'list'"),
        (bytearray(b"x"), r"unit id has type 'bytearray'"),
    ],
)
def test_scalar_unit_types(unit, message):
    with pytest.raises(ts.UnitTypeError, match=message) as info:
        EXP.assign(unit)
    assert isinstance(info.value, TypeError)


def test_missing_units_do_not_raise():
    for unit in (None, math.nan, np.float32("nan"), pd.NA, pd.NaT):
        a = EXP.assign(unit)
        assert (a.arm, a.arm_index, a.bucket, a.reason, a.in_experiment) == (
            None,
            -1,
            -1,
            "missing_unit",
            False,
        )


def test_lone_surrogate_is_a_value_error_with_its_row():
    with pytest.raises(
        ts.UnitValueError,
        match=r"unit id is a str that cannot be encoded as "
        r"UTF-8 \(it contains a lone surrogate\)",
    ):
        EXP.assign("a\ud800")
    with pytest.raises(ts.UnitValueError, match=r"unit id at row 2 is a str") as info:
        EXP.assign_batch(["ok", "fine", "\udfff"])
    assert info.value.row == 2 and isinstance(info.value, ValueError)
    with pytest.raises(ts.UnitValueError, match=r"at row 1"):
        EXP.assign_batch(np.array(["ok", "\ud800x"]))


@pytest.mark.parametrize(
    ("units", "message"),
    [
        ([1, 2, 3.5], r"unit id at row 2 has type 'float' \(3\.5\)"),
        (["a", True], r"unit id at row 1 has type 'bool'"),
        (
            np.array([1.0, 2.0]),
            r"unit ids have dtype float64; float unit ids are refused .* "
            r"series\.astype\('Int64'\)",
        ),
        (pd.Series([1.0, None]), r"unit ids have dtype float64"),
        (pd.Series([True, False]), r"unit ids have dtype bool; bool unit ids are refused"),
        (
            np.array(["2026-01-01"], dtype="datetime64[D]"),
            r"unit ids have dtype datetime64\[D\]; "
            r"expected integers, strings or bytes",
        ),
        (pa.array([1.5]), r"unit ids have dtype double \(Arrow\); float unit ids are refused"),
        (pa.array([True]), r"unit ids have dtype bool \(Arrow\); bool unit ids are refused"),
        (pa.array([[1]]), r"unit ids have dtype list<item: int64> \(Arrow\); expected integers"),
        (
            np.zeros((2, 2), np.int64),
            r"unit ids must be one-dimensional, got an array of shape "
            r"\(2, 2\)",
        ),
        (
            "user-1",
            r"assign_batch expects a collection of unit ids, got a single str; use "
            r"assign\(\) for one unit",
        ),
        (pd.DataFrame({"u": [1]}), r"got a DataFrame; pass df\['user_id'\]"),
        (42, r"assign_batch expects a collection of unit ids .* got int"),
    ],
)
def test_batch_unit_types(units, message):
    with pytest.raises(ts.UnitTypeError, match=message):
        EXP.assign_batch(units)


def test_threads_and_times_are_checked():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(
            ts.ArgumentError,
            match=r"threads must be None \(all cores\) or an "
            r"int >= 1",
        ):
            EXP.assign_batch([1], threads=bad)
    with pytest.raises(
        ts.ConfigError,
        match=r"at must be a datetime, date, numpy datetime64, "
        r"ISO-8601 string or epoch seconds; got list",
    ):
        EXP.assign("u", at=[1])
    with pytest.raises(ts.ConfigError, match=r"at = 'soon' is not an ISO-8601 time"):
        EXP.assign("u", at="soon")
    with pytest.raises(ts.ConfigError, match=r"at must be a finite time"):
        EXP.assign("u", at=math.inf)
    with pytest.raises(ts.ConfigError, match=r"the experiment had no allocation at"):
        ts.Experiment("t", {"a": 100}, allocated_at=T0).bucket_map(at=T0 - dt.timedelta(1))


def test_payloads_are_read_only_and_shared_safely():
    e = ts.Experiment("p", [ts.Arm("a", 100, {"model": "m", "layers": [1, 2]})])
    payload = e.assign("u").payload
    assert payload == {"model": "m", "layers": (1, 2)}
    with pytest.raises(TypeError, match="arm payloads are read-only"):
        payload["model"] = "other"
    assert e.assign("u").payload["model"] == "m"
    import json

    assert json.loads(json.dumps(payload)) == {"model": "m", "layers": [1, 2]}
