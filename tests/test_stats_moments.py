"""Moments: one-pass grouped sufficient statistics (C++ kernel) against numpy and pandas."""

from __future__ import annotations

import itertools
import json
import pickle
import sqlite3

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trafficsplit._core import stats as core
from trafficsplit.errors import ArgumentError
from trafficsplit.stats import Moments, MomentsByGroup, grouped_moments
from trafficsplit.stats._moments import as_moments


def numpy_moments(x: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Two-pass reference on the rows without NaN: n, means, centred co-moments."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    x = x[~np.isnan(x).any(axis=1)]
    n = len(x)
    means = x.mean(axis=0) if n else np.zeros(x.shape[1])
    d = x - means
    return n, means, d.T @ d


def assert_moments(m: Moments, x: np.ndarray, rel: float = 1e-12) -> None:
    n, means, com = numpy_moments(x)
    assert m.n == n
    scale = np.sqrt(np.outer(np.diag(com), np.diag(com))) + 1e-300
    np.testing.assert_allclose(m.means, means, rtol=rel, atol=rel * (np.abs(means).max() + 1))
    np.testing.assert_allclose(m.comoments, com, rtol=0, atol=rel * scale.max() + 1e-12)


# -- one group ---------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 4, 7])
def test_from_values_matches_numpy(k):
    rng = np.random.default_rng(k)
    x = rng.normal(size=(10_001, k)) @ rng.normal(size=(k, k)) + rng.normal(size=k) * 10
    x[rng.random(x.shape) < 0.01] = np.nan
    m = Moments.from_values(*x.T)
    assert_moments(m, x)
    assert m.skipped == int(np.isnan(x).any(axis=1).sum()) > 0
    clean = x[~np.isnan(x).any(axis=1)]
    assert m.var == pytest.approx(np.var(clean[:, 0], ddof=1), rel=1e-12)
    if k > 1:
        cov = np.cov(clean.T)
        assert m.cov(0, 1) == pytest.approx(cov[0, 1], rel=1e-12)
        assert m.cov("x1", "x1") == pytest.approx(cov[1, 1], rel=1e-12)
        assert m.columns == tuple(f"x{i}" for i in range(k))


def test_catastrophic_cancellation_matches_two_pass_variance():
    rng = np.random.default_rng(3)
    y = 1e9 + rng.normal(size=1_000_000)
    m = Moments.from_values(y)
    assert m.var == pytest.approx(np.var(y, ddof=1), rel=1e-12)
    assert m.mean == pytest.approx(np.mean(y), rel=1e-15)
    # The textbook one-pass formula loses the variance on the same data.
    naive = (np.sum(y * y) - np.sum(y) ** 2 / y.size) / (y.size - 1)
    assert abs(naive / np.var(y, ddof=1) - 1) > 1e-6
    # Grouped, in several threads: the same.
    codes = rng.integers(0, 3, y.size)
    by = grouped_moments(codes, y, threads=2)
    for g in range(3):
        assert by[g].var == pytest.approx(np.var(y[codes == g], ddof=1), rel=1e-12)


def test_from_values_small_and_empty_inputs():
    m = Moments.from_values([1.0, 2.0, 4.0, 7.0, 10.0])
    assert (m.n, m.mean, m.sum, m.sum_sq) == (5, 4.8, 24.0, pytest.approx(170.0))
    assert m.var == pytest.approx(13.7)
    assert m.std == pytest.approx(np.sqrt(13.7))
    one = Moments.from_values([3.0])
    assert one.n == 1 and one.mean == 3.0 and np.isnan(one.var)
    empty = Moments.from_values([])
    assert empty.n == 0 and empty.skipped == 0 and np.isnan(empty.var)
    nan_only = Moments.from_values([np.nan, np.nan])
    assert nan_only.n == 0 and nan_only.skipped == 2
    assert Moments.from_values(np.arange(6.0).reshape(2, 3)).n == 6  # ravelled, as before


def test_value_column_types_are_read_as_float64():
    y = np.array([1.5, 2.0, np.nan, 4.0, 8.0])
    want = Moments.from_values(y)
    nullable = pd.Series([1.5, 2.0, None, 4.0, 8.0], dtype="Float64")
    ints = pd.Series([1, 2, None, 4, 8], dtype="Int64")
    for values in (
        y.tolist(),
        [1.5, 2.0, None, 4.0, 8.0],
        y.astype(">f8"),
        pd.Series(y),
        nullable,
        pa.array([1.5, 2.0, None, 4.0, 8.0]),
        pa.chunked_array([[1.5, 2.0], [None, 4.0, 8.0]]),
        pd.Series(y).astype("double[pyarrow]"),
    ):
        m = Moments.from_values(values)
        assert (m.n, m.skipped) == (4, 1)
        assert m.mean == pytest.approx(want.mean) and m.var == pytest.approx(want.var)
    m = Moments.from_values(ints)
    assert (m.n, m.skipped, m.mean) == (4, 1, 3.75)
    assert Moments.from_values(np.array([1, 2, 3], dtype=np.uint8)).mean == 2.0
    assert Moments.from_values(np.array([True, False, True, True])).mean == 0.75
    assert Moments.from_values(np.array([1, None, 3], dtype=object)).n == 2


def test_float32_values_are_their_double_values():
    rng = np.random.default_rng(5)
    y = rng.normal(size=5000).astype(np.float32)
    x = rng.normal(size=5000)
    m = Moments.from_values(y, x)
    assert_moments(m, np.column_stack([y.astype(np.float64), x]), rel=1e-13)


# -- groups ------------------------------------------------------------------------------------


def pandas_reference(labels, y: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({"g": labels, "y": y})
    return frame.groupby("g", dropna=True)["y"].agg(["count", "mean", "var", "sum"])


def test_grouped_matches_pandas_groupby():
    rng = np.random.default_rng(11)
    rows = 200_003
    arms = np.array(["control", "a", "b", "c"])[rng.integers(0, 4, rows)]
    y = rng.exponential(3.0, rows) + 100
    y[rng.random(rows) < 0.02] = np.nan
    by = grouped_moments(arms, y, threads=2)
    ref = pandas_reference(arms, y)
    assert sorted(by) == sorted(ref.index)
    for arm, m in by.items():
        assert m.n == ref.loc[arm, "count"]
        assert m.mean == pytest.approx(ref.loc[arm, "mean"], rel=1e-13)
        assert m.var == pytest.approx(ref.loc[arm, "var"], rel=1e-11)
        assert m.sum == pytest.approx(ref.loc[arm, "sum"], rel=1e-13)
        assert m.skipped == int(np.isnan(y[arms == arm]).sum())
    assert by.null_rows == 0


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.sampled_from(["a", "b", "c", None, "d"]), min_size=0, max_size=300),
    seed=st.integers(0, 2**32 - 1),
    k=st.integers(1, 4),
    nan_share=st.sampled_from([0.0, 0.1, 0.5]),
)
def test_grouped_equals_per_group_from_values_and_numpy(labels, seed, k, nan_share):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(labels), k)) * rng.uniform(0.1, 1e3) + rng.uniform(-1e6, 1e6)
    x[rng.random(x.shape) < nan_share] = np.nan
    by = grouped_moments(labels, *x.T)
    lab = np.array(labels, dtype=object)
    present = {v for v in labels if v is not None}
    assert set(by) == present
    assert by.null_rows == sum(v is None for v in labels)
    for label, m in by.items():
        rows = x[lab == label]
        assert_moments(m, rows, rel=1e-9)
        single = Moments.from_values(*rows.T)
        assert (single.n, single.skipped) == (m.n, m.skipped)
        np.testing.assert_allclose(single.means, m.means, rtol=1e-12)
        np.testing.assert_allclose(
            single.comoments, m.comoments, rtol=1e-9, atol=1e-9 * np.abs(m.comoments).max()
        )


def test_group_label_types():
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    ints = np.array([7, 3, 7, 3, 7, 3])
    cases = {
        "int": ints,
        "uint": ints.astype(np.uint16),
        "list": ints.tolist(),
        "series": pd.Series(ints),
        "negative": ints - 10,
        "huge": ints * 10**12,
        "str": ints.astype(str),
        "object": ints.astype(object),
        "float": ints.astype(float),
        "categorical": pd.Series(ints).astype("category"),
        "arrow": pa.array(ints.astype(str)),
        "arrow dictionary": pa.array(ints.astype(str)).dictionary_encode(),
        "bool": ints == 7,
    }
    for name, labels in cases.items():
        by = grouped_moments(labels, y)
        assert len(by) == 2, name
        seven, three = sorted(by, key=lambda label: by[label].mean)
        assert by[seven].mean == 3.0 and by[three].mean == 4.0, name
        assert by[seven].var == 4.0, name
    assert sorted(grouped_moments(ints, y)) == [3, 7]
    assert sorted(grouped_moments(ints - 10, y)) == [-7, -3]  # ints are labels, never null
    assert sorted(grouped_moments(ints.astype(str), y)) == ["3", "7"]


def test_null_labels_and_unused_categories():
    y = np.arange(8.0)
    cat = pd.Series(["a", "b", None, "a", "b", "a", np.nan, "b"], dtype="category")
    cat = cat.cat.add_categories(["never"])
    by = grouped_moments(cat, y)
    assert sorted(by) == ["a", "b"] and by.null_rows == 2
    assert by["a"].n == 3 and by["a"].mean == pytest.approx((0 + 3 + 5) / 3)
    labels = ["x", None, float("nan"), pd.NA, "x"]
    by = grouped_moments(labels, np.arange(5.0))
    assert list(by) == ["x"] and by.null_rows == 3 and by["x"].mean == 2.0
    # A group whose every row has a NaN value is still reported, with n == 0.
    by = grouped_moments(["p", "q", "q"], [1.0, np.nan, np.nan])
    assert by["q"].n == 0 and by["q"].skipped == 2


def test_many_groups_factorised():
    rng = np.random.default_rng(17)
    labels = rng.integers(0, 10**15, 2000)[rng.integers(0, 2000, 100_000)]
    y = rng.normal(size=labels.size)
    by = grouped_moments(labels, y, threads=2)
    ref = pandas_reference(labels, y)
    assert len(by) == len(ref)
    got = np.array([by[label].var for label in ref.index])
    np.testing.assert_allclose(got, ref["var"].to_numpy(), rtol=1e-10)


def test_thread_count_changes_only_rounding():
    rng = np.random.default_rng(19)
    codes = rng.integers(0, 4, 1_000_003).astype(np.int8)
    y, x = rng.normal(size=(2, codes.size)) + 1e4
    one = grouped_moments(codes, y, x, threads=1)
    for threads in (2, 3, 8, None):
        other = grouped_moments(codes, y, x, threads=threads)
        for g in one:
            np.testing.assert_allclose(other[g].means, one[g].means, rtol=1e-14)
            np.testing.assert_allclose(other[g].comoments, one[g].comoments, rtol=1e-12)


def test_from_frame():
    df = pd.DataFrame(
        {
            "arm": pd.Categorical(["a", "b", "a", "b", "a"]),
            "y": [1.0, 2.0, 3.0, 5.0, np.nan],
            "x": pd.array([1, 1, 2, 3, 4], dtype="Int64"),
        }
    )
    by = Moments.from_frame(df, "arm", ["y", "x"])
    assert by["a"].columns == ("y", "x") and (by["a"].n, by["a"].skipped) == (2, 1)
    assert by["b"].cov("y", "x") == pytest.approx(np.cov([2.0, 5.0], [1.0, 3.0])[0, 1])
    same = Moments.grouped(df["arm"], df["y"], df["x"], columns=["y", "x"])
    assert same["b"].comoments.tolist() == by["b"].comoments.tolist()
    with pytest.raises(ArgumentError, match="no column 'z'"):
        Moments.from_frame(df, "arm", ["y", "z"])


# -- merging -----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 400), min_size=1, max_size=6),
    seed=st.integers(0, 2**32 - 1),
    center=st.sampled_from([0.0, 1e3, -1e8]),
)
def test_merged_partitions_equal_the_whole(sizes, seed, center):
    rng = np.random.default_rng(seed)
    rows = sum(sizes)
    labels = rng.choice(["a", "b", "c"], rows)
    y, x = center + rng.normal(size=(2, rows)) * rng.uniform(0.5, 5)
    whole = grouped_moments(labels, y, x)
    cuts = np.cumsum([0, *sizes])
    parts = [grouped_moments(labels[a:b], y[a:b], x[a:b]) for a, b in itertools.pairwise(cuts)]
    merged = MomentsByGroup()
    for p in parts:
        merged = merged.merge(p)
    assert set(merged) == set(whole)
    for label, m in whole.items():
        got = merged[label]
        assert got.n == m.n
        # Means are float64: each merge may be off by their rounding (eps |mean|) times the
        # spread, a bound that does not depend on how the rows were split.
        eps = np.finfo(float).eps
        atol = 1e-12 * np.abs(m.comoments).max() + 4 * eps * abs(center) * np.sqrt(
            m.n * np.abs(m.comoments).max()
        )
        np.testing.assert_allclose(got.means, m.means, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got.comoments, m.comoments, rtol=1e-12, atol=atol)
        tree = Moments.merge_all(p[label] for p in parts if label in p)
        np.testing.assert_allclose(tree.comoments, m.comoments, rtol=1e-12, atol=atol)


def test_merge_is_chans_update_and_checks_columns():
    a, b = Moments.from_values([1.0, 2.0]), Moments.from_values([4.0, 7.0, 10.0])
    m = a + b
    assert (m.n, m.mean, m.comoments[0, 0]) == (5, 4.8, pytest.approx(54.8))
    assert (a.merge(Moments.from_values([])).n, a.merge(Moments.from_values([])).mean) == (2, 1.5)
    with pytest.raises(ArgumentError, match="columns"):
        a.merge(Moments.from_values([1.0], columns=["z"]))
    with pytest.raises(ArgumentError, match="nothing to merge"):
        Moments.merge_all([])


def test_from_sums_of_sql_aggregates_equals_from_values():
    rng = np.random.default_rng(23)
    rows = 5000
    arms = rng.choice(["control", "treatment"], rows)
    y = rng.gamma(2.0, 3.0, rows)
    x = 0.5 * y + rng.normal(size=rows)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE events (arm TEXT, y REAL, x REAL)")
    db.executemany(
        "INSERT INTO events VALUES (?, ?, ?)", zip(arms, y.tolist(), x.tolist(), strict=True)
    )
    query = """
        SELECT arm, COUNT(*), SUM(y), SUM(x), SUM(y * y), SUM(y * x), SUM(x * x)
        FROM events GROUP BY arm ORDER BY arm
    """
    by = grouped_moments(arms, y, x, columns=["y", "x"])
    for arm, n, sy, sx, syy, syx, sxx in db.execute(query):
        m = Moments.from_sums(n, [sy, sx], [[syy, syx], [syx, sxx]], columns=["y", "x"])
        want = by[arm]
        assert m.n == want.n
        np.testing.assert_allclose(m.means, want.means, rtol=1e-12)
        np.testing.assert_allclose(m.comoments, want.comoments, rtol=1e-9)
        one = Moments.from_sums(n, sy, syy)
        assert one.var == pytest.approx(want.var, rel=1e-9)


# -- serialisation -----------------------------------------------------------------------------


def test_to_dict_json_and_pickle_round_trips():
    rng = np.random.default_rng(29)
    m = Moments.from_values(rng.normal(size=100), rng.normal(size=100), columns=["y", "x"])
    back = Moments.from_dict(json.loads(json.dumps(m.to_dict())))
    assert back.columns == ("y", "x") and back.n == m.n and back.skipped == m.skipped
    assert back.means.tolist() == m.means.tolist()
    assert back.comoments.tolist() == m.comoments.tolist()
    again = pickle.loads(pickle.dumps(m))
    assert again.comoments.tolist() == m.comoments.tolist() and again.columns == m.columns

    by = grouped_moments([1, "b", None, 1], [1.0, 2.0, 3.0, 5.0])
    restored = MomentsByGroup.from_dict(json.loads(json.dumps(by.to_dict())))
    assert set(restored) == {1, "b"} and restored.null_rows == 1
    assert restored[1].var == by[1].var
    pickled = pickle.loads(pickle.dumps(by))
    assert isinstance(pickled, MomentsByGroup) and pickled.null_rows == 1
    assert pickled[1].mean == 3.0


def test_from_dict_and_constructor_errors():
    with pytest.raises(ArgumentError, match="missing key 'comoments'"):
        Moments.from_dict({"n": 1, "means": [1.0]})
    with pytest.raises(ArgumentError, match="unknown key 'extra'"):
        Moments.from_dict({"n": 1, "means": [1.0], "comoments": [[0.0]], "extra": 1})
    with pytest.raises(ArgumentError, match="2x2"):
        Moments.from_dict({"n": 1, "means": [1.0, 2.0], "comoments": [[0.0]]})
    with pytest.raises(ArgumentError, match="malformed"):
        Moments.from_dict({"n": "many", "means": [1.0], "comoments": [[0.0]]})
    with pytest.raises(ArgumentError, match="malformed"):
        MomentsByGroup.from_dict({"groups": 3})
    with pytest.raises(ArgumentError, match="names"):
        Moments(1, [1.0, 2.0], np.zeros((2, 2)), ("y",))
    assert Moments(2, [1.0], [[0.5]]).var == 0.5


def test_as_moments():
    m = Moments.from_values([1.0, 2.0])
    assert as_moments(m) is m
    assert as_moments([1.0, 3.0]).mean == 2.0
    with pytest.raises(ArgumentError, match="mapping"):
        as_moments({"n": 1})


# -- errors ------------------------------------------------------------------------------------


def test_non_numeric_values_name_the_column():
    with pytest.raises(ArgumentError, match="value column 'revenue' has dtype <U"):
        grouped_moments([0, 1], ["a", "b"], columns=["revenue"])
    with pytest.raises(ArgumentError, match="value column 'y' holds string values"):
        Moments.from_values(pd.Series(["1.0", "x"], dtype=object))
    with pytest.raises(ArgumentError, match="value column 'y' holds mixed"):
        Moments.from_values(np.array([1.0, "x"], dtype=object))
    with pytest.raises(ArgumentError, match="'y' holds string"):
        Moments.from_values(pd.Series(["a", "b"], dtype="str"))
    with pytest.raises(ArgumentError, match="categorical"):
        Moments.from_values(pd.Series([1.0, 2.0]).astype("category"))
    with pytest.raises(ArgumentError, match="dtype datetime64"):
        Moments.from_values(np.array(["2024-01-01"], dtype="datetime64[D]"))
    with pytest.raises(ArgumentError, match="dtype complex"):
        Moments.from_values(np.array([1j]))
    with pytest.raises(ValueError):  # ArgumentError is a ValueError
        Moments.from_values(["a"])


def test_shape_and_argument_errors():
    with pytest.raises(ArgumentError, match="column 'x1' has 2 rows but the group labels have 3"):
        grouped_moments([0, 1, 1], [1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ArgumentError, match="columns have different lengths"):
        Moments.from_values([1.0, 2.0], [1.0])
    with pytest.raises(ArgumentError, match="2 columns but 1 names"):
        Moments.from_values([1.0], [2.0], columns=["y"])
    with pytest.raises(ArgumentError, match="no value column"):
        grouped_moments([0, 1])
    with pytest.raises(ArgumentError, match="one-dimensional"):
        grouped_moments([0, 1], np.zeros((2, 2)))
    with pytest.raises(ArgumentError, match="group labels must be one-dimensional"):
        grouped_moments(np.zeros((2, 2), dtype=np.int64), [1.0, 2.0])
    # The thread count is checked by the helper every batch call shares.
    with pytest.raises(ArgumentError, match="threads"):
        grouped_moments([0, 1], [1.0, 2.0], threads=0)


def test_core_binding_validates_inputs():
    y = np.arange(4.0)
    with pytest.raises(ArgumentError, match="signed integer array"):
        core.grouped_moments(np.zeros(4, np.uint8), [y], 1, 1)
    with pytest.raises(ArgumentError, match="group code 5 at row 2 is not below the group count 3"):
        core.grouped_moments(np.array([0, 1, 5, 9]), [y], 3, 1)
    with pytest.raises(
        ArgumentError, match="value column 1 must be float64 or float32, got dtype int64"
    ):
        core.grouped_moments(None, [y, np.arange(4)], 1, 1)
    with pytest.raises(ArgumentError, match="value column 0 must be contiguous"):
        core.grouped_moments(None, [np.arange(8.0)[::2]], 1, 1)
    with pytest.raises(ArgumentError, match="value column 0 has 3 rows, expected 4"):
        core.grouped_moments(np.zeros(4, np.int32), [y[:3]], 1, 1)
    with pytest.raises(ArgumentError, match="native byte order"):
        core.grouped_moments(None, [y.astype(">f8")], 1, 1)
    with pytest.raises(ArgumentError, match="1 to 16 value columns, got 0"):
        core.grouped_moments(None, [], 1, 1)
    n, means, com, skipped, nulls = core.grouped_moments(
        np.array([0, -1, 1, -5], np.int16), [y], 2, 0
    )
    assert n.tolist() == [1, 1] and means[:, 0].tolist() == [0.0, 2.0] and nulls == 2
    assert com.shape == (2, 1, 1) and skipped.tolist() == [0, 0]
