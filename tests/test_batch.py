"""Batch assignment equals scalar assignment on every row, for every input type."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trafficsplit as ts
from trafficsplit.errors import ArgumentError

EXP = ts.Experiment(
    "batch",
    [ts.Arm("control", 40, {"model": "v1"}), ts.Arm("a", 35), ts.Arm("b", 25)],
    exposure=0.7,
)
FULL = ts.Experiment("batch-full", {"control": 50, "treatment": 50})
MURMUR = ts.Experiment(
    "batch-mm", {"x": 20, "y": 80}, exposure=0.5, algorithm="murmur3", buckets=1009
)
EXPERIMENTS = [EXP, FULL, MURMUR]


def _scalar(exp: ts.Experiment, units) -> tuple[list, list, list]:
    arms, buckets, reasons = [], [], []
    for u in units:
        a = exp.assign(u)
        arms.append(a.arm_index)
        buckets.append(a.bucket)
        reasons.append(a.reason)
    return arms, buckets, reasons


def _check(units_for_batch, units_for_scalar, experiments=EXPERIMENTS):
    for exp in experiments:
        b = exp.assign_batch(units_for_batch)
        arms, buckets, reasons = _scalar(exp, units_for_scalar)
        assert len(b) == len(units_for_scalar)
        assert b.arm_index.dtype == np.int16 and b.bucket.dtype == np.int32
        assert b.arm_index.tolist() == arms
        assert b.bucket.tolist() == buckets
        assert [ts.REASONS[c] for c in b.reason] == reasons


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
ints64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.one_of(
            text,
            ints64,
            st.binary(max_size=20),
            st.none(),
            st.just(math.nan),
            st.just(pd.NA),
            st.integers(min_value=2**63, max_value=2**70),
        ),
        max_size=60,
    )
)
def test_python_list(units):
    _check(units, units)
    _check(tuple(units), units)
    _check(np.array([*units, object()], dtype=object)[:-1], units)


@settings(max_examples=60, deadline=None)
@given(st.lists(ints64, max_size=80))
def test_integer_arrays(values):
    arr = np.array(values, dtype=np.int64)
    _check(arr, values)
    _check(pd.Series(arr), values)
    _check(pa.array(arr), values)
    small = [v for v in values if -(2**31) <= v < 2**31]
    _check(np.array(small, dtype=np.int32), small)
    _check(pa.array(small, pa.int32()), small)
    unsigned = [v % 2**64 for v in values]
    _check(np.array(unsigned, dtype=np.uint64), unsigned)
    _check(pa.array(unsigned, pa.uint64()), unsigned)
    _check(np.array([v % 256 for v in values], dtype=np.uint8), [v % 256 for v in values])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(ints64, st.none()), max_size=80))
def test_nullable_integers(values):
    expected = [v for v in values]
    _check(pd.Series(values, dtype="Int64"), expected)
    _check(pa.array(values, pa.int64()), expected)
    _check(pd.Series(values, dtype="int64[pyarrow]"), expected)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(text, st.none()), max_size=60))
def test_string_columns(values):
    present = [v for v in values if v is not None]
    # numpy 'U' arrays drop trailing NULs, as numpy does when reading an element.
    _check(np.array(present, dtype=str), [v.rstrip("\0") for v in present])
    _check(pd.Series(values, dtype="string[python]"), values)
    _check(pd.Series(values, dtype="string[pyarrow]"), values)
    _check(pd.Series(values, dtype=pd.StringDtype("pyarrow", na_value=np.nan)), values)
    _check(pd.Series(values), values)  # object or the default string dtype
    _check(pd.Series(values, dtype="category"), values)
    _check(pa.array(values, pa.string()), values)
    _check(pa.array(values, pa.large_string()), values)
    _check(pa.array(values, pa.string_view()), values)
    _check(pa.array(values, pa.string()).dictionary_encode(), values)
    _check(
        pa.chunked_array(
            [
                pa.array(values[: len(values) // 2], pa.string()),
                pa.array(values[len(values) // 2 :], pa.string()),
            ]
        ),
        values,
    )
    _check(pd.Index(values, dtype="string[pyarrow]"), values)
    _check(pd.CategoricalIndex(values), values)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=30), st.none()), max_size=60))
def test_binary_columns(values):
    _check(pa.array(values, pa.binary()), values)
    _check(pa.array(values, pa.large_binary()), values)
    _check(pa.array(values, pa.binary_view()), values)
    present = [v.rstrip(b"\0") for v in values if v is not None]
    _check(np.array([v for v in values if v is not None], dtype="S"), present)


def test_sliced_arrow_arrays_respect_offsets():
    values = [f"user-{i}" if i % 7 else None for i in range(5000)]
    for typ in (pa.string(), pa.large_string(), pa.string_view()):
        arr = pa.array(values, typ)
        _check(arr.slice(1234, 2000), values[1234:3234], [EXP])
    ints = pa.array([i if i % 5 else None for i in range(5000)], pa.int64())
    _check(ints.slice(333, 1000), [i if i % 5 else None for i in range(333, 1333)], [EXP])


def test_numpy_unicode_and_non_contiguous():
    units = np.array(["a", "ünï", "東京", "👩‍💻", "", "e\u0301"])
    _check(units, units.tolist())
    strided = np.arange(100, dtype=np.int64)[::3]
    _check(strided, strided.tolist())


def test_null_and_empty_inputs():
    _check(pa.nulls(5), [None] * 5)
    _check([], [])
    _check(np.array([], dtype=np.int64), [])
    _check(pa.chunked_array([], pa.string()), [])
    b = EXP.assign_batch([None, math.nan, pd.NA, pd.NaT, np.float32("nan")])
    assert b.reason_counts()["missing_unit"] == 5
    assert b.bucket.tolist() == [-1] * 5


def test_threads_do_not_change_results():
    n = 600_000
    ids = np.random.default_rng(7).integers(-(2**63), 2**63 - 1, n, dtype=np.int64)
    strings = pa.array([f"{i:036d}" for i in range(n)])
    for units in (ids, strings):
        one = EXP.assign_batch(units, threads=1)
        two = EXP.assign_batch(units, threads=2)
        many = EXP.assign_batch(units, threads=7)
        for other in (two, many):
            np.testing.assert_array_equal(one.arm_index, other.arm_index)
            np.testing.assert_array_equal(one.bucket, other.bucket)
            np.testing.assert_array_equal(one.reason, other.reason)


def test_batch_result_views():
    units = pd.Series(["u1", None, "u3", "u4"], index=[10, 11, 12, 13], dtype="string")
    b = EXP.assign_batch(units)
    df = b.to_pandas()
    assert list(df.index) == [10, 11, 12, 13]
    assert list(df.columns) == ["arm", "arm_index", "bucket", "reason", "in_experiment"]
    assert isinstance(df["arm"].dtype, pd.CategoricalDtype)
    assert list(df["arm"].cat.categories) == ["control", "a", "b"]
    assert df["reason"].iloc[1] == "missing_unit"
    for i in range(4):
        a = EXP.assign(units.iloc[i] if units.iloc[i] is not pd.NA else None)
        assert (df["arm"].iloc[i] if not pd.isna(df["arm"].iloc[i]) else None) == a.arm
    assert sum(b.counts().values()) == int(b.in_experiment.sum())
    assert b.arm.tolist() == [EXP.assign(u).arm for u in ["u1", None, "u3", "u4"]]
    table = b.to_arrow()
    assert table.column("arm").to_pylist() == b.arm.tolist()
    assert "rows=4" in repr(b)


def test_per_row_times_must_match_length():
    with pytest.raises(ts.ConfigError, match="one time per unit id: 3 unit ids"):
        EXP.assign_batch(
            ["a", "b", "c"], at=np.array(["2026-01-01", "2026-01-02"], dtype="datetime64[us]")
        )
    with pytest.raises(ts.ConfigError, match=r"missing \(NaT\) at row 1"):
        EXP.assign_batch(["a", "b"], at=np.array(["2026-01-01", "NaT"], dtype="datetime64[us]"))


@pytest.mark.parametrize("distinct", [3, 300, 40_000])  # int8, int16 and int32 codes
def test_categoricals_at_every_code_width(distinct):
    rng = np.random.default_rng(distinct)
    names = [f"user-{i}" for i in range(distinct)]
    picks = rng.integers(0, distinct, 5000)
    values = [names[k] if k % 11 else None for k in picks]
    series = pd.Series(pd.Categorical(values, categories=names))
    width = 1 if distinct < 128 else 2 if distinct < 2**15 else 4
    assert series.cat.codes.dtype.itemsize == width
    _check(series, values)
    expected = [ts.hash64(v, "s") if v is not None else None for v in values]
    got = ts.hash64_batch(series, "s")
    assert [None if m else int(h) for h, m in zip(got.data, got.mask, strict=True)] == expected


@pytest.mark.parametrize("index_type", [pa.int8(), pa.uint8(), pa.int16(), pa.uint32(), pa.int64()])
def test_arrow_dictionaries_with_any_index_type(index_type):
    dictionary = pa.array(["a", "bb", "ccc", "dddd"])
    raw = [0, 3, None, 2, 1, 3, None, 0]
    arr = pa.DictionaryArray.from_arrays(pa.array(raw, index_type), dictionary)
    values = [None if k is None else dictionary[k].as_py() for k in raw]
    _check(arr, values)


def test_dictionary_rows_with_their_own_times():
    exp = ts.Experiment("dict-times", {"a": 90, "b": 10}).reallocate(
        {"a": 10, "b": 90}, effective="2026-01-02T00:00:00Z"
    )
    values = [f"user-{i % 50}" for i in range(400)]
    when = pd.to_datetime(["2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z"] * 200)
    batch = exp.assign_batch(pd.Series(values, dtype="category"), at=when)
    scalar = [exp.assign(v, at=t) for v, t in zip(values, when, strict=True)]
    assert batch.arm_index.tolist() == [a.arm_index for a in scalar]
    assert batch.bucket.tolist() == [a.bucket for a in scalar]


def test_dictionary_codes_out_of_range_name_the_row():
    from trafficsplit._core import assignment as core

    table = np.array([5, 6, 7, -1], np.int32)  # three entries and the missing-unit one
    out = np.empty(4, np.int32)
    core.take_by_codes(table, np.array([2, -1, 0, 1], np.int8), out)
    assert out.tolist() == [7, -1, 5, 6]
    for bad, row in (([0, 3, 1, 0], 1), ([0, 1, -2, 9], 2)):
        with pytest.raises(ArgumentError, match=rf"dictionary code -?\d+ at row {row} is out of"):
            core.take_by_codes(table, np.array(bad, np.int64), out)
    with pytest.raises(ArgumentError, match="signed integers, got uint8"):
        core.take_by_codes(table, np.array([0], np.uint8), out[:1])
    with pytest.raises(ArgumentError, match="writable array of the table's dtype"):
        core.take_by_codes(table, np.array([0], np.int8), np.empty(1, np.int64))
