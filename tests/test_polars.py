"""polars frames and series are accepted wherever pandas and Arrow are, through the Arrow C
stream interface, and give the same answers row by row as the pandas path."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trafficsplit as ts

pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")

EXAMPLE = Path(__file__).resolve().parent / "data" / "config" / "example.yaml"
# ranker-v2 (targeted at US/CA, in a layer, behind a holdout, with overrides for qa-user-1
# and 42 and an allocation history), search-ui, a rollout and a blue/green switch.
EXPERIMENTS = ["ranker-v2", "search-ui", "reranker-canary", "serving-stack"]


def _ids(n: int, seed: int) -> list[str | None]:
    rng = np.random.default_rng(seed)
    ids: list[str | None] = [f"user-{i}" for i in rng.integers(0, 10**9, n)]
    for i in rng.choice(n, n // 10, replace=False):
        ids[i] = None
    ids[3] = "qa-user-1"  # an override
    ids[5] = "42"  # an override given as an integer in the configuration
    return ids


def _countries(n: int, seed: int) -> list[str | None]:
    rng = np.random.default_rng(seed + 1)
    c: list[str | None] = list(rng.choice(["US", "CA", "FR", "DE"], n))
    for i in rng.choice(n, n // 8, replace=False):
        c[i] = None
    return c


def _pandas_values(col: pd.Series) -> list:
    return [
        None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v
        for v in col.astype(object).tolist()
    ]


def _assert_same_assignments(out_pl, out_pd, keys=EXPERIMENTS) -> None:
    assert isinstance(out_pl, pl.DataFrame)
    assert out_pl.height == len(out_pd)
    for key in keys:
        for col in (key, f"{key}_reason"):
            assert out_pl[col].dtype == pl.Enum(list(out_pd[col].cat.categories)), col
            assert out_pl[col].cast(pl.String).to_list() == _pandas_values(out_pd[col]), col


@pytest.fixture(scope="module")
def splitter() -> ts.Splitter:
    return ts.Splitter(str(EXAMPLE))


def test_assign_frame_string_units_with_nulls_and_targeting(splitter) -> None:
    n = 5000
    df_pl = pl.DataFrame({"user_id": _ids(n, 1), "country": _countries(n, 1)})
    df_pd = pd.DataFrame({"user_id": _ids(n, 1), "country": _countries(n, 1)})
    out_pl = splitter.assign_frame(df_pl, "user_id")
    out_pd = splitter.assign_frame(df_pd, "user_id")
    _assert_same_assignments(out_pl, out_pd)
    assert out_pl.columns[:2] == ["user_id", "country"]
    assert out_pl["user_id"].to_list() == df_pl["user_id"].to_list()  # the input, unchanged
    reasons = set(out_pl["ranker-v2_reason"].cast(pl.String).to_list())
    # every stage of the example's precedence is exercised
    assert {"assigned", "override", "missing_unit", "targeting_miss", "holdout"} <= reasons
    assert out_pl["ranker-v2"][3] == "treatment" and out_pl["ranker-v2_reason"][3] == "override"


def test_assign_frame_integer_units_with_nulls(splitter) -> None:
    rng = np.random.default_rng(7)
    ids = [int(v) for v in rng.integers(0, 2**62, 3000)]
    ids[0] = 42  # the integer override
    ids[9] = None
    countries = ["US"] * len(ids)
    df_pl = pl.DataFrame(
        {"user_id": ids, "country": countries}, schema_overrides={"user_id": pl.Int64}
    )
    df_pd = pd.DataFrame({"user_id": pd.array(ids, dtype="Int64"), "country": countries})
    _assert_same_assignments(
        splitter.assign_frame(df_pl, "user_id"), splitter.assign_frame(df_pd, "user_id")
    )
    out = splitter.assign_frame(df_pl, "user_id")
    assert out["ranker-v2_reason"][0] == "override"
    assert out["ranker-v2_reason"][9] == "missing_unit"


def test_assign_frame_categorical_units_and_attributes(splitter) -> None:
    n = 4000
    ids, countries = _ids(n, 3), _countries(n, 3)
    df_pl = pl.DataFrame({"user_id": ids, "country": countries}).with_columns(
        pl.col("user_id").cast(pl.Categorical), pl.col("country").cast(pl.Categorical)
    )
    df_pd = pd.DataFrame(
        {
            "user_id": pd.Series(ids, dtype="category"),
            "country": pd.Series(countries, dtype="category"),
        }
    )
    _assert_same_assignments(
        splitter.assign_frame(df_pl, "user_id"), splitter.assign_frame(df_pd, "user_id")
    )


def test_assign_frame_replays_history_from_a_time_column(splitter) -> None:
    n = 2000
    start = dt.datetime(2026, 10, 25, tzinfo=dt.UTC)
    times = [start + dt.timedelta(hours=12 * (i % 60)) for i in range(n)]
    ids = _ids(n, 5)
    countries = ["US"] * n
    df_pl = pl.DataFrame({"user_id": ids, "country": countries, "at": times})
    df_pd = pd.DataFrame({"user_id": ids, "country": countries, "at": pd.to_datetime(times)})
    out_pl = splitter.assign_frame(df_pl, "user_id", at_column="at")
    out_pd = splitter.assign_frame(df_pd, "user_id", at_column="at")
    _assert_same_assignments(out_pl, out_pd)
    # before 2026-11-01 ranker-v2 had not started; the 90/10 and 50/50 steps differ
    assert "not_started" in set(out_pl["ranker-v2_reason"].cast(pl.String).to_list())


def test_assign_frame_arrow_table_in_arrow_table_out(splitter) -> None:
    n = 1000
    ids, countries = _ids(n, 9), _countries(n, 9)
    table = pa.table({"user_id": ids, "country": countries})
    out = splitter.assign_frame(table, "user_id", experiments=["ranker-v2"])
    ref = splitter.assign_frame(
        pd.DataFrame({"user_id": ids, "country": countries}), "user_id", experiments=["ranker-v2"]
    )
    assert isinstance(out, pa.Table)
    assert out.schema.field("ranker-v2").type == pa.dictionary(pa.int32(), pa.string())
    assert out.column("ranker-v2").to_pylist() == _pandas_values(ref["ranker-v2"])
    assert out.column("ranker-v2_reason").to_pylist() == _pandas_values(ref["ranker-v2_reason"])


def test_assign_frame_with_a_sticky_store(tmp_path) -> None:
    n = 500
    ids = [f"user-{i}" for i in range(n)]
    df_pl = pl.DataFrame({"user_id": ids, "country": ["US"] * n})
    first = ts.sticky.SQLiteStickyStore(tmp_path / "a.db")
    second = ts.sticky.SQLiteStickyStore(tmp_path / "b.db")
    sp = ts.Splitter(str(EXAMPLE))
    once_pl = sp.assign_frame(df_pl, "user_id", sticky=first)
    once_pd = sp.assign_frame(df_pl.to_pandas(), "user_id", sticky=second)
    _assert_same_assignments(once_pl, once_pd)
    again = sp.assign_frame(df_pl, "user_id", sticky=first)
    reasons = again["search-ui_reason"].cast(pl.String).to_list()
    was = once_pl["search-ui_reason"].cast(pl.String).to_list()
    # a unit assigned the first time is now held by the store, in the same arm
    assert [r == "sticky" for r in reasons] == [r == "assigned" for r in was]
    assert again["search-ui"].to_list() == once_pl["search-ui"].to_list()


def test_assign_frame_exposures_match_the_pandas_path(tmp_path) -> None:
    n = 800
    ids, countries = _ids(n, 11), _countries(n, 11)
    records = []
    for kind, df in (
        (
            "polars",
            pl.DataFrame({"user_id": ids, "country": countries}).with_columns(
                pl.col("country").cast(pl.Categorical)
            ),
        ),
        (
            "pandas",
            pd.DataFrame({"user_id": ids, "country": pd.Series(countries, dtype="category")}),
        ),
    ):
        folder = tmp_path / kind
        logger = ts.ExposureLogger(ts.JsonlSink(folder), attributes=["country"])
        sp = ts.Splitter(str(EXAMPLE), exposures=logger)
        sp.assign_frame(df, "user_id", experiments=["ranker-v2", "search-ui"], log_exposures=True)
        sp.close()
        logger.close()
        rows = [
            json.loads(line)
            for f in sorted(folder.glob("*.jsonl"))
            for line in f.read_text().splitlines()
        ]
        for r in rows:
            del r["timestamp"]  # the time of the call
        records.append(sorted(rows, key=lambda r: (r["experiment"], r["unit"])))
    assert records[0] == records[1]
    assert any(r["reason"] == "override" and r["unit"] == "42" for r in records[0])
    assert {json.dumps(r["attributes"]) for r in records[0]} >= {'{"country": "US"}'}


def test_targeting_mask_matches_pandas() -> None:
    n = 3000
    rng = np.random.default_rng(2)
    countries = _countries(n, 2)
    ages = [None if i % 11 == 0 else int(v) for i, v in enumerate(rng.integers(10, 80, n))]
    versions = [f"2.{i % 5}.{i % 3}" for i in range(n)]
    t = ts.Targeting(
        'country in ["US", "CA"] and age >= 18 and semver(app_version) >= "2.3.0" '
        'or country == "FR"'
    )
    data = {"country": countries, "age": ages, "app_version": versions}
    df_pl = pl.DataFrame(data)
    df_pd = pd.DataFrame(
        {"country": countries, "age": pd.array(ages, dtype="Int64"), "app_version": versions}
    )
    expected = t.mask(df_pd)
    assert 0 < expected.sum() < n
    np.testing.assert_array_equal(t.mask(df_pl), expected)
    cat = df_pl.with_columns(pl.col("country").cast(pl.Categorical))
    np.testing.assert_array_equal(t.mask(cat), expected)
    np.testing.assert_array_equal(t.mask({k: df_pl[k] for k in df_pl.columns}), expected)
    # the per-request evaluation agrees row by row
    rows = df_pl.head(200).to_dicts()
    assert [t.matches({k: v for k, v in r.items() if v is not None}) for r in rows] == list(
        expected[:200]
    )


def test_assign_batch_with_polars_units_and_attributes() -> None:
    exp = ts.Experiment("e", {"a": 30, "b": 70}, targeting='country in ["US", "CA"]', exposure=0.8)
    n = 4000
    ids, countries = _ids(n, 4), _countries(n, 4)
    got = exp.assign_batch(pl.Series(ids), attributes=pl.DataFrame({"country": countries}))
    ref = exp.assign_batch(pd.Series(ids), attributes=pd.DataFrame({"country": countries}))
    np.testing.assert_array_equal(got.arm_index, ref.arm_index)
    np.testing.assert_array_equal(got.bucket, ref.bucket)
    np.testing.assert_array_equal(got.reason, ref.reason)
    assert set(ref.reason_counts()) and ref.reason_counts()["targeting_miss"] > 0
    ints = [None if i % 7 == 0 else i * 7919 for i in range(n)]
    got = exp.assign_batch(pl.Series(ints, dtype=pl.Int64), attributes={"country": ["US"] * n})
    ref = exp.assign_batch(pd.array(ints, dtype="Int64"), attributes={"country": ["US"] * n})
    np.testing.assert_array_equal(got.arm_index, ref.arm_index)
    np.testing.assert_array_equal(got.reason, ref.reason)
    with pytest.raises(ts.UnitTypeError, match="one column of unit ids"):
        exp.assign_batch(pl.DataFrame({"u": ["a"]}))


def test_analyze_polars_equals_pandas() -> None:
    rng = np.random.default_rng(5)
    n = 6000
    arm = rng.choice(["control", "treatment"], n)
    converted = rng.random(n) < np.where(arm == "treatment", 0.12, 0.10)
    minutes = rng.normal(30.0, 8.0, n) + np.where(arm == "treatment", 0.5, 0.0)
    pre = minutes * 0.5 + rng.normal(0.0, 4.0, n)
    data = {"arm": arm, "converted": converted, "minutes": minutes, "minutes_pre": pre}
    kwargs = {"metrics": ["converted", "minutes"], "covariates": {"minutes": "minutes_pre"}}
    ref = ts.analyze(pd.DataFrame(data), **kwargs).summary()
    got = ts.analyze(pl.DataFrame(data), **kwargs).summary()
    pd.testing.assert_frame_equal(got, ref)
    cat = pl.DataFrame(data).with_columns(pl.col("arm").cast(pl.Categorical))
    got_cat = ts.analyze(cat, **kwargs).summary()
    pd.testing.assert_frame_equal(
        got_cat.sort_values(["metric", "arm"]).reset_index(drop=True),
        ref.sort_values(["metric", "arm"]).reset_index(drop=True),
    )
