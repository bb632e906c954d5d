"""The common pandas shapes read where they are: unit ids in numpy object arrays and pandas
object Series, and Targeting.mask over columns of Python objects.

Each shape must give what the other shapes and the per-row paths give: ``Experiment.assign``
for each unit, ``xxhash`` on the contract's bytes, ``Targeting.matches`` for each row, pandas'
own ``Series.isin``. Python code run while the objects are read must not crash the process.
"""

from __future__ import annotations

import gc
import json
import math
import subprocess
import sys
import textwrap
import tracemalloc
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

import trafficsplit as ts
from trafficsplit.errors import UnitTypeError

EXP = ts.Experiment("shapes", {"control": 40, "a": 35, "b": 25}, exposure=0.8)
MURMUR = ts.Experiment("shapes-mm", {"x": 30, "y": 70}, algorithm="murmur3", buckets=1009)

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
units = st.one_of(
    text,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.binary(max_size=12),
    st.sampled_from([None, float("nan"), pd.NA]),
)


def _shapes(values: list[Any]) -> dict[str, Any]:
    """The same unit ids as a list, an object array, views of a longer object array (strided,
    reversed twice) and a pandas object Series."""
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    wide = np.empty(2 * len(values), dtype=object)
    wide[::2] = values
    backwards = np.empty(len(values), dtype=object)
    backwards[:] = values[::-1]
    return {
        "list": values,
        "object array": arr,
        "strided view": wide[::2],
        "reversed view": backwards[::-1],
        "object Series": pd.Series(arr, dtype=object),
    }


def _per_row(exp: ts.Experiment, values: list[Any]) -> tuple[list[int], list[int], list[str]]:
    rows = [exp.assign(v) for v in values]
    return [r.arm_index for r in rows], [r.bucket for r in rows], [r.reason for r in rows]


@settings(max_examples=80, deadline=None)
@given(st.lists(units, max_size=60))
def test_object_arrays_and_series_assign_as_each_unit_does(values: list[Any]) -> None:
    for exp in (EXP, MURMUR):
        arms, buckets, reasons = _per_row(exp, values)
        for name, shape in _shapes(values).items():
            got = exp.assign_batch(shape)
            assert got.arm_index.tolist() == arms, name
            assert got.bucket.tolist() == buckets, name
            assert [ts.REASONS[c] for c in got.reason] == reasons, name


def _contract_bytes(v: Any) -> bytes | None:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, int):
        return str(v).encode()
    return bytes(v)


@settings(max_examples=60, deadline=None)
@given(st.lists(units, max_size=60))
def test_object_arrays_hash_as_xxhash_hashes_the_contract_bytes(values: list[Any]) -> None:
    seed = xxhash.xxh3_64_intdigest(b"shape-salt")
    want = [_contract_bytes(v) for v in values]
    for name, shape in _shapes(values).items():
        got = ts.hash64_batch(shape, "shape-salt")
        mask = np.ma.getmaskarray(got).tolist()
        assert mask == [w is None for w in want], name
        for g, w, m in zip(got.data.tolist(), want, mask, strict=True):
            if not m:
                assert w is not None
                assert g == xxhash.xxh3_64_intdigest(w, seed=seed), name


@settings(max_examples=40, deadline=None)
@given(st.lists(text, min_size=1, max_size=80))
def test_object_strings_assign_as_arrow_strings(values: list[str]) -> None:
    # The Arrow path reads the UTF-8 buffers: an independent reading of the same text.
    want = EXP.assign_batch(pa.array(values, pa.string()))
    for name, shape in _shapes(values).items():
        got = EXP.assign_batch(shape)
        assert got.bucket.tolist() == want.bucket.tolist(), name
        assert got.arm_index.tolist() == want.arm_index.tolist(), name


def test_a_refused_unit_in_an_object_array_names_its_row() -> None:
    arr = np.array(["a", 7, "b", 1.5, "c"], dtype=object)
    for shape in (arr, pd.Series(arr), arr[::-1]):
        with pytest.raises(UnitTypeError, match=r"row (3|1)\b.*'float'"):
            EXP.assign_batch(shape)


def test_an_empty_slot_of_an_object_array_is_a_missing_unit() -> None:
    # np.empty(dtype=object) holds None; a 0-d or 2-d array is not a column of unit ids.
    arr = np.empty(3, dtype=object)
    arr[1] = "u-1"
    got = EXP.assign_batch(arr)
    assert [ts.REASONS[c] for c in got.reason][0::2] == ["missing_unit"] * 2
    assert got.bucket[1] == EXP.assign("u-1").bucket
    with pytest.raises(UnitTypeError, match="one-dimensional"):
        EXP.assign_batch(np.empty((2, 2), dtype=object))


def _traced_peak_beyond_outputs(fn: Any) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    outputs = sum(getattr(result, f).nbytes for f in ("arm_index", "bucket", "reason"))
    return peak - base - outputs


def test_object_arrays_are_not_copied() -> None:
    # A list made of the array would be 8 bytes a row (1.6 MB here); the Series too.
    n = 200_000
    arr = np.array([f"user-{i}" for i in range(n)], dtype=object)
    series = pd.Series(arr, dtype=object)
    EXP.assign_batch(arr[:10])
    for shape in (arr, series, arr[::2]):
        assert _traced_peak_beyond_outputs(lambda s=shape: EXP.assign_batch(s)) < 64 * 1024


# -- Targeting.mask over Python objects ----------------------------------------------------

attribute_values = st.one_of(
    st.sampled_from(["US", "CA", "FR", "", "é", "2.3.0", "a" * 40]),
    text,
    st.integers(min_value=-5, max_value=5),
    st.integers(min_value=2**63, max_value=2**70),
    st.sampled_from([1.0, 2.5, -0.0, float("inf"), True, False, b"US", b"\xff"]),
    st.sampled_from([None, float("nan"), pd.NA]),
)

EXPRESSIONS = [
    'x in ["US", "CA", 1, 2.5]',
    'x in ["US", "CA"]',
    'not (x in ["US", "é", ""])',
    'x == "US"',
    'x != "FR" or x > 3',
    "x >= 1",
    "x is null",
    'startswith(x, "a") and len(x) > 3',
    'semver(x) >= "2.0.0"',
    'lower(x) in ["us", "ca"]',
    'x in ["US"] and y == "CA"',
]


def _mask_shapes(xs: list[Any], ys: list[Any]) -> dict[str, Any]:
    x_arr = np.empty(len(xs), dtype=object)
    x_arr[:] = xs
    y_arr = np.empty(len(ys), dtype=object)
    y_arr[:] = ys
    return {
        "DataFrame of object Series": pd.DataFrame(
            {"x": pd.Series(x_arr, dtype=object), "y": pd.Series(y_arr, dtype=object)}
        ),
        "mapping of object arrays": {"x": x_arr, "y": y_arr},
        "mapping of lists": {"x": xs, "y": ys},
        "mapping of tuples": {"x": tuple(xs), "y": tuple(ys)},
    }


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(attribute_values, attribute_values), max_size=50))
def test_masks_of_object_columns_equal_matches_per_row(rows: list[tuple[Any, Any]]) -> None:
    xs = [x for x, _ in rows]
    ys = [y for _, y in rows]
    for expression in EXPRESSIONS:
        t = ts.Targeting(expression)
        want = [t.matches({"x": x, "y": y}) for x, y in rows]
        for name, data in _mask_shapes(xs, ys).items():
            assert t.mask(data, threads=2).tolist() == want, (expression, name)


def test_masks_of_object_columns_cross_blocks_of_rows() -> None:
    # Blocks are 1,024 rows: values of every kind on both sides of several block edges, and
    # two attributes read from one object column.
    rng = np.random.default_rng(5)
    pool = ["US", "CA", "FR", "é", None, float("nan"), 3, 2**64, 2.5, b"US", pd.NA, True]
    xs = [pool[i] for i in rng.integers(0, len(pool), 5_000)]
    arr = np.empty(len(xs), dtype=object)
    arr[:] = xs
    for expression in ['x in ["US", "CA", 3]', 'x == "US" or x.y == "FR"', "x > 2"]:
        t = ts.Targeting(expression)
        want = [t.matches({"x": x, "x.y": x}) for x in xs]
        got = t.mask({"x": arr, "x.y": arr}, threads=2)
        assert got.tolist() == want, expression


@pytest.mark.parametrize(
    "dtype", ["object", "string[python]", pd.StringDtype("python", na_value=np.nan), "str"]
)
def test_in_list_on_string_columns_equals_pandas_isin(dtype: Any) -> None:
    rng = np.random.default_rng(11)
    words = [f"city-{i}" for i in range(300)] + ["é-ville", ""]
    values = [words[i] for i in rng.integers(0, len(words), 4_000)]
    values[::97] = [None] * len(values[::97])
    series = pd.Series(values, dtype=dtype)
    wanted = [*words[::3], "absent"]
    t = ts.Targeting("city in @wanted", lists={"wanted": wanted})
    got = t.mask(pd.DataFrame({"city": series}))
    # isin says False for missing values, and so does the mask (unknown is not True).
    assert got.tolist() == series.isin(wanted).tolist()
    assert got.sum() > 100


def test_categorical_with_object_categories_is_converted_once() -> None:
    categories = pd.Index(["US", 3, "CA", b"US"], dtype=object)
    codes = np.array([0, 1, -1, 3, 0, 2], dtype=np.int8)
    series = pd.Series(pd.Categorical.from_codes(codes, categories=categories))
    t = ts.Targeting('x in ["US", 3]')
    assert t.mask(pd.DataFrame({"x": series})).tolist() == [
        t.matches({"x": v}) for v in series.tolist()
    ]


def test_object_columns_are_not_copied() -> None:
    # An Arrow copy would be about 14 bytes a row (Arrow's own allocator, so its pool is
    # asked, in a fresh process); a Python copy would show in tracemalloc.
    out = _run(
        """
        import gc, tracemalloc
        import pandas as pd, pyarrow as pa
        n = 200_000
        column = np.array([f"w{i % 5000}" for i in range(n)], dtype=object)
        df = pd.DataFrame({"city": pd.Series(column, dtype=object)})
        t = ts.Targeting('city in ["w1", "w2"]')
        t.mask(df.iloc[:10])
        gc.collect()
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        mask = t.mask(df)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        report([int(mask.sum()), peak - base - mask.nbytes, pa.default_memory_pool().max_memory()])
        """
    )
    matched, traced, arrow_peak = out
    assert matched == 2 * 200_000 // 5000
    assert traced < 64 * 1024
    assert arrow_peak < 64 * 1024


# -- Python code that changes the objects while they are read ------------------------------

PRELUDE = """
import datetime, json
import numpy as np
import trafficsplit as ts

arr = None

class ClearingIndex(np.int64):
    def __index__(self):
        arr[:] = None  # drops every object the array held
        return 7

class Reshaping(np.int64):
    def __index__(self):
        arr.shape = (len(arr) // 2, 2)
        return 7

class ClearingOffset(datetime.datetime):
    def utcoffset(self):
        arr[:] = None
        return None

def fresh(text):  # a str no one else holds
    return "".join(list(text))

def report(value):
    print(json.dumps(value))
"""


def _run(body: str) -> Any:
    code = PRELUDE + textwrap.dedent(body)
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_unit_that_empties_the_object_array_leaves_the_rest_missing() -> None:
    out = _run(
        """
        e = ts.Experiment("e", {"a": 50, "b": 50})
        ids = [fresh("unit-%05d" % i) for i in range(3000)]
        arr = np.array(ids[:1500] + [ClearingIndex(1)] + ids[1500:], dtype=object)
        got = e.assign_batch(arr)
        want = e.assign_batch(ids[:1500] + [7] + [None] * 1500)
        report([got.bucket.tolist() == want.bucket.tolist(),
                got.reason.tolist() == want.reason.tolist()])
        """
    )
    assert out == [True, True]


def test_a_unit_that_reshapes_the_object_array_raises_runtime_error() -> None:
    out = _run(
        """
        arr = np.array(["x"] * 9 + [Reshaping(1)] + ["y"] * 10, dtype=object)
        try:
            ts.hash64_batch(arr, "salt")
        except RuntimeError as e:
            report(str(e))
        """
    )
    assert out == (
        "the sequence of unit ids changed size while it was read (20 rows at the start, "
        "0 at row 10)"
    )


def test_an_attribute_that_empties_the_object_column_keeps_the_rows_read() -> None:
    # The rows read before the conversion (in the same block) stay as they were read: their
    # text is held, not freed under the evaluator; the rows after it are None.
    out = _run(
        """
        t = ts.Targeting('country in ["US", "CA"]')
        first = [fresh(["US", "CA", "FR"][i % 3]) for i in range(700)]
        rest = [fresh("US") for i in range(2000)]
        arr = np.array(first + [ClearingOffset(2020, 1, 1)] + rest, dtype=object)
        got = t.mask({"country": arr}).tolist()
        want = [v in ("US", "CA") for v in first] + [False] * 2001
        report(got == want)
        """
    )
    assert out is True
