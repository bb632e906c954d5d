"""SQL functions on DuckDB (trafficsplit.duckdb): real connections over Parquet files, every row
checked against the in-process paths (Splitter.assign_frame for arm and reason, the experiment's
own batch kernel for the bucket, Splitter.assign row by row on samples)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trafficsplit as ts
from trafficsplit.errors import ArgumentError

duckdb = pytest.importorskip("duckdb")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from trafficsplit.duckdb import register  # noqa: E402

UTC = dt.UTC

# Two experiments share a layer behind a holdout; ranker-v2 is targeted and both have an
# allocation history and overrides (string and integer ids); windowed runs between two times,
# retired is stopped.
CONFIG = """
layers:
  - key: ranking
holdouts:
  - key: global-2027
    percent: 5
experiments:
  - key: ranker-v2
    layer: ranking
    layer_share: 40
    holdouts: [global-2027]
    targeting: 'country in ["US", "CA"]'
    exposure: 0.5
    arms: {control: 50, treatment: 50}
    allocated_at: 2026-11-15T00:00:00Z
    history:
      - {at: 2026-11-01T00:00:00Z, weights: {control: 90, treatment: 10}}
    overrides:
      treatment: [qa-user-1, 42]
  - key: search-ui
    layer: ranking
    layer_share: 30
    holdouts: [global-2027]
    arms: {control: 34, blue: 33, green: 33}
    allocated_at: 2026-10-20T00:00:00Z
    history:
      - {at: null, weights: {control: 90, blue: 5, green: 5}, exposure: 0.2}
      - {at: 2026-10-10T00:00:00Z, weights: {control: 50, blue: 25, green: 25}, exposure: 0.6}
    overrides:
      green: [qa-user-2, 7]
  - key: windowed
    start: 2026-10-05T00:00:00Z
    end: 2026-10-25T00:00:00Z
    arms: {a: 50, b: 50}
  - key: retired
    status: stopped
    arms: {a: 50, b: 50}
    overrides: {b: [qa-user-1, 0]}
"""

ROWS = 6_000  # three of DuckDB's vectors, and more
FIRST = dt.datetime(2026, 9, 25, tzinfo=UTC)
LAST = dt.datetime(2026, 11, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("duckdb-config") / "experiments.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def splitter(config_path: Path) -> ts.Splitter:
    return ts.Splitter(config_path)


def _users(rows: int, seed: int, kind: str) -> Any:
    """A table of users: row, user_id (str with non-ASCII ids, or int64; some NULL, some with
    overrides), country (some NULL) and a time in the history, naive and aware."""
    rng = np.random.default_rng(seed)
    if kind == "str":
        ids: list[Any] = [
            f"user-{i}" if i % 7 else f"ünï-{i}-日本" for i in rng.integers(0, 10**9, rows)
        ]
        ids[:4] = ["qa-user-1", "qa-user-2", "42", "7"]
    else:
        ids = [int(i) for i in rng.integers(-(2**62), 2**62, rows)]
        ids[:4] = [42, 7, 0, -1]
    for i in rng.choice(np.arange(4, rows), rows // 50, replace=False):
        ids[i] = None
    countries = rng.choice(
        np.array(["US", "CA", "FR", None], dtype=object), rows, p=[0.4, 0.2, 0.3, 0.1]
    )
    span = int((LAST - FIRST).total_seconds() * 1e6)
    micros = int(FIRST.timestamp() * 1e6) + rng.integers(0, span, rows)
    return pa.table(
        {
            "row": pa.array(np.arange(rows)),
            "user_id": pa.array(ids, pa.string() if kind == "str" else pa.int64()),
            "country": pa.array(countries.tolist(), pa.string()),
            "seen_at": pa.array(micros, pa.timestamp("us", tz="UTC")),
            "seen_at_naive": pa.array(micros, pa.timestamp("us")),
        }
    )


@pytest.fixture(scope="module", params=["str", "int"])
def users(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, Path]:
    table = _users(ROWS, 7 if request.param == "str" else 8, request.param)
    path = tmp_path_factory.mktemp("duckdb-users") / f"users-{request.param}.parquet"
    pq.write_table(table, path, row_group_size=2_500)
    return table, path


@pytest.fixture()
def con(config_path: Path) -> Any:
    con = duckdb.connect()
    con.execute("SET threads = 2").fetchall()
    register(con, config_path)
    yield con
    con.close()


def _sql(con: Any, key: str, path: Path, args: str = "") -> tuple[list[Any], list[Any], list[Any]]:
    """(arms, buckets, reasons) of every row of the file, in row order."""
    call = f"'{key}', user_id{args}"
    rows = con.execute(
        f"SELECT ts_arm({call}), ts_bucket({call}), ts_reason({call}) "
        f"FROM read_parquet('{path}') ORDER BY row"
    ).fetchall()
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def _expected(
    splitter: ts.Splitter, table: Any, key: str, at_column: str | None = None
) -> tuple[list[Any], list[Any], list[Any]]:
    """(arms, buckets, reasons) in process: assign_frame for arm and reason, the experiment's
    batch kernel (no configuration around it) for the bucket (None for a missing unit)."""
    out = splitter.assign_frame(table, "user_id", [key], at_column=at_column)
    exp = splitter.snapshot.experiments[key].experiment
    bucket = exp.assign_batch(table.column("user_id"), attributes=table).bucket
    buckets = [None if b < 0 else b for b in bucket.tolist()]
    return out.column(key).to_pylist(), buckets, out.column(f"{key}_reason").to_pylist()


def _times(table: Any, column: str = "seen_at") -> list[dt.datetime]:
    return [t.replace(tzinfo=UTC) for t in table.column(column).to_pylist()]


# -- the rows of assign_frame ---------------------------------------------------------------------


@pytest.mark.parametrize("key", ["search-ui", "windowed", "retired"])
def test_replayed_rows_equal_assign_frame(
    con: Any, splitter: ts.Splitter, users: Any, key: str
) -> None:
    table, path = users
    got = _sql(con, key, path, ", seen_at")
    want = _expected(splitter, table, key, at_column="seen_at")
    assert got == want
    reasons = set(got[2])
    assert "missing_unit" in reasons
    if key == "search-ui":
        assert {"assigned", "not_exposed", "holdout", "layer_other", "override"} <= reasons
        # Every step of the history was replayed: each arm's share follows its step's weights.
        arms = np.array(got[0], dtype=object)
        at = np.array(_times(table))
        early = at < dt.datetime(2026, 10, 10, tzinfo=UTC)
        assert np.mean(arms[early & (arms != None)] == "control") > 0.8  # noqa: E711
        assert np.mean(arms[~early & (arms != None)] == "control") < 0.6  # noqa: E711
    if key == "windowed":
        assert {"not_started", "stopped", "assigned"} <= reasons
    if key == "retired":
        assert reasons == {"stopped", "missing_unit", "override"}


def test_targeted_rows_with_struct_attributes(con: Any, splitter: ts.Splitter, users: Any) -> None:
    table, path = users
    got = _sql(con, "ranker-v2", path, ", seen_at, {'country': country}")
    assert got == _expected(splitter, table, "ranker-v2", at_column="seen_at")
    assert {"assigned", "targeting_miss", "holdout", "layer_other", "override"} <= set(got[2])


def test_attributes_as_json_text(con: Any, splitter: ts.Splitter, users: Any) -> None:
    table, path = users
    # A JSON object per row, with a time-like string that must stay text.
    got = _sql(
        con,
        "ranker-v2",
        path,
        ", seen_at, CASE WHEN country IS NULL THEN NULL ELSE "
        '\'{"country": "\' || country || \'", "since": "2026-01-01"}\' END',
    )
    assert got == _expected(splitter, table, "ranker-v2", at_column="seen_at")


@pytest.mark.parametrize(
    "setting", ["produce_arrow_string_view = true", "arrow_large_buffer_size = true"]
)
def test_arrow_export_settings(con: Any, splitter: ts.Splitter, users: Any, setting: str) -> None:
    """Text arguments may arrive as string views or large strings."""
    table, path = users
    con.execute(f"SET {setting}").fetchall()
    got = _sql(con, "ranker-v2", path, ", seen_at, {'country': country}")
    assert got == _expected(splitter, table, "ranker-v2", at_column="seen_at")
    keys = "['search-ui', 'windowed', NULL][row % 3 + 1]"
    mixed = con.execute(
        f"SELECT ts_reason({keys}, user_id, seen_at) FROM read_parquet('{path}') ORDER BY row"
    ).fetchall()
    search = _expected(splitter, table, "search-ui", at_column="seen_at")[2]
    windowed = _expected(splitter, table, "windowed", at_column="seen_at")[2]
    want = [
        (search[i],) if i % 3 == 0 else (windowed[i],) if i % 3 == 1 else (None,)
        for i in range(ROWS)
    ]
    assert mixed == want


def test_null_attributes_are_rows_without_attributes(
    con: Any, splitter: ts.Splitter, users: Any
) -> None:
    table, path = users
    got = _sql(con, "ranker-v2", path, ", seen_at, NULL")
    without = table.drop_columns(["country"])
    assert got == _expected(splitter, without, "ranker-v2", at_column="seen_at")
    assert "targeting_miss" in got[2] and "assigned" not in got[2]


def test_rows_match_scalar_assign(con: Any, splitter: ts.Splitter, users: Any) -> None:
    """Sampled rows against Splitter.assign, the per-request path."""
    table, path = users
    arms, buckets, reasons = _sql(con, "ranker-v2", path, ", seen_at, {'country': country}")
    times = _times(table)
    ids = table.column("user_id").to_pylist()
    countries = table.column("country").to_pylist()
    for i in range(0, ROWS, 37):
        a = splitter.assign(
            "ranker-v2", ids[i], {"country": countries[i]}, at=times[i], log_exposure=False
        )
        assert (arms[i], reasons[i]) == (a.arm, a.reason), i
        if ids[i] is not None:
            assert buckets[i] == a.bucket


def test_naive_timestamps_are_utc_whatever_the_session_zone(
    con: Any, splitter: ts.Splitter, users: Any
) -> None:
    table, path = users
    con.execute("SET TimeZone = 'America/New_York'").fetchall()
    want = _expected(splitter, table, "search-ui", at_column="seen_at")
    assert _sql(con, "search-ui", path, ", seen_at_naive") == want
    assert _sql(con, "search-ui", path, ", seen_at") == want
    # Across a step boundary, five hours matter: the aware time seen through New York.
    boundary = "TIMESTAMP '2026-10-10 00:00:00'"
    before = con.execute(
        f"SELECT ts_arm('search-ui', 'user-1', {boundary} - INTERVAL 1 MICROSECOND), "
        f"ts_arm('search-ui', 'user-1', ({boundary} - INTERVAL 1 MICROSECOND)::TIMESTAMPTZ)"
    ).fetchall()[0]
    reference = splitter.assign(
        "search-ui",
        "user-1",
        at=dt.datetime(2026, 10, 9, 23, 59, 59, 999999, tzinfo=UTC),
        log_exposure=False,
    )
    shifted = splitter.assign(
        "search-ui",
        "user-1",
        at=dt.datetime(2026, 10, 10, 4, 59, 59, 999999, tzinfo=UTC),
        log_exposure=False,
    )
    assert before == (reference.arm, shifted.arm)


def test_dates_and_one_time_for_every_row(con: Any, splitter: ts.Splitter, users: Any) -> None:
    table, path = users
    day = dt.datetime(2026, 10, 12, tzinfo=UTC)
    pinned = table.set_column(
        table.column_names.index("seen_at"),
        "seen_at",
        pa.array([day] * ROWS, pa.timestamp("us", tz="UTC")),
    )
    want = _expected(splitter, pinned, "search-ui", at_column="seen_at")
    assert _sql(con, "search-ui", path, ", DATE '2026-10-12'") == want
    assert _sql(con, "search-ui", path, ", TIMESTAMP '2026-10-12 00:00:00'") == want


def test_without_at_is_now(con: Any, splitter: ts.Splitter, users: Any) -> None:
    """Every step of search-ui is in the past and windowed has ended: now is unambiguous."""
    table, path = users
    assert _sql(con, "search-ui", path) == _expected(splitter, table, "search-ui")
    arms, _, reasons = _sql(con, "windowed", path)
    assert set(reasons) == {"stopped", "missing_unit"} and set(arms) == {None}


def test_null_units_and_their_buckets(con: Any) -> None:
    got = con.execute(
        "SELECT ts_arm('search-ui', u), ts_bucket('search-ui', u), ts_reason('search-ui', u) "
        "FROM (VALUES (NULL::VARCHAR), (NULL::BIGINT::VARCHAR)) t(u)"
    ).fetchall()
    assert got == [(None, None, "missing_unit")] * 2
    assert con.execute("SELECT ts_reason('search-ui', NULL)").fetchall() == [("missing_unit",)]


# -- unit types: integers hash as their decimal text ---------------------------------------------


def test_integer_types_hash_as_their_decimal_text(con: Any) -> None:
    exp = ts.Experiment("plain", {"a": 50, "b": 50})
    con2 = register(
        duckdb.connect(), {"experiments": [{"key": "plain", "arms": {"a": 50, "b": 50}}]}
    )
    values = [
        0,
        1,
        127,
        255,
        32767,
        65535,
        2**31 - 1,
        2**32 - 1,
        2**63 - 1,
        2**64 - 1,
        -1,
        -(2**63),
    ]
    for sql_type in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT",
                     "UINTEGER", "UBIGINT", "HUGEINT", "UHUGEINT", "VARCHAR"):  # fmt: skip
        for v in values:
            try:
                got = con2.execute(
                    f"SELECT ts_bucket('plain', ({v})::{sql_type}), "
                    f"ts_arm('plain', ({v})::{sql_type})"
                ).fetchall()[0]
            except (duckdb.ConversionException, duckdb.OutOfRangeException):
                continue  # out of the type's range
            want = exp.assign(str(v))
            assert got == (want.bucket, want.arm), (sql_type, v)
            assert got == (exp.assign(v).bucket, exp.assign(v).arm)


def test_blob_and_enum_units(con: Any) -> None:
    exp = ts.Experiment("plain", {"a": 50, "b": 50})
    con2 = register(
        duckdb.connect(), {"experiments": [{"key": "plain", "arms": {"a": 50, "b": 50}}]}
    )
    blob = con2.execute("SELECT ts_bucket('plain', '\\xC3\\xBC-7'::BLOB)").fetchall()[0][0]
    assert blob == exp.assign("ü-7".encode()).bucket == exp.assign(b"\xc3\xbc-7").bucket
    con2.execute("CREATE TYPE tier AS ENUM ('gold', 'silver')").fetchall()
    enum = con2.execute("SELECT ts_bucket('plain', 'silver'::tier)").fetchall()[0][0]
    assert enum == exp.assign("silver").bucket


@pytest.mark.parametrize(
    "expression", ["1.5", "1.0::DOUBLE", "true", "DATE '2026-01-01'", "{'a': 1}"]
)
def test_other_unit_types_are_refused(con: Any, expression: str) -> None:
    with pytest.raises(duckdb.Error, match="the unit must be VARCHAR, BLOB or an integer"):
        con.execute(f"SELECT ts_arm('search-ui', x) FROM (SELECT {expression} AS x)").fetchall()


# -- experiment names ----------------------------------------------------------------------------


def test_a_column_of_experiment_names(con: Any, splitter: ts.Splitter, users: Any) -> None:
    table, path = users
    keys = ["search-ui", "windowed", None, "retired"]
    got = con.execute(
        "SELECT ts_arm(e, user_id, seen_at), ts_bucket(e, user_id, seen_at), "
        "ts_reason(e, user_id, seen_at) FROM "
        f"(SELECT *, ['search-ui', 'windowed', NULL, 'retired'][row % 4 + 1] e "
        f"FROM read_parquet('{path}')) ORDER BY row"
    ).fetchall()
    expected = {k: _expected(splitter, table, k, at_column="seen_at") for k in keys if k}
    for i, row in enumerate(got):
        key = keys[i % 4]
        want = (None, None, None) if key is None else tuple(c[i] for c in expected[key])
        assert row == want, i


def test_unknown_experiment_names_the_known(con: Any) -> None:
    with pytest.raises(duckdb.Error, match=r"unknown experiment 'nope'; experiments: ranker-v2, "
                       r"retired, search-ui, windowed"):  # fmt: skip
        con.execute("SELECT ts_arm('nope', 'user-1')").fetchall()


def test_targeting_without_attributes_says_how(con: Any) -> None:
    with pytest.raises(duckdb.Error, match=r"has targeting .*fourth argument.*'country': country"):
        con.execute("SELECT ts_arm('ranker-v2', 'user-1')").fetchall()


# -- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("'2026-10-01'", "at must be a TIMESTAMP, TIMESTAMPTZ or DATE, not VARCHAR"),
        ("1790000000", "at must be a TIMESTAMP, TIMESTAMPTZ or DATE, not INTEGER"),
        ("NULL::TIMESTAMP", "at is NULL in 1 of 1 rows"),
    ],
)
def test_bad_times(con: Any, at: str, message: str) -> None:
    with pytest.raises(duckdb.Error, match=message):
        con.execute(f"SELECT ts_arm('search-ui', 'user-1', {at})").fetchall()


def test_null_times_among_others(con: Any) -> None:
    with pytest.raises(duckdb.Error, match=r"at is NULL in 1 of 3 rows"):
        con.execute(
            "SELECT ts_arm('search-ui', 'u', t) FROM (VALUES (TIMESTAMP '2026-10-01'), "
            "(NULL), (TIMESTAMP '2026-10-02')) v(t)"
        ).fetchall()


def test_register_arguments(config_path: Path) -> None:
    con = duckdb.connect()
    with pytest.raises(ArgumentError, match="con must be a DuckDB connection"):
        register("duckdb", config_path)
    with pytest.raises(ArgumentError, match="prefix must be letters, digits and '_'"):
        register(con, config_path, prefix="ts-")
    with pytest.raises(ArgumentError, match="expected a Snapshot, a Splitter"):
        register(con, 42)
    with pytest.raises(ts.ConfigError):
        register(con, {"experiments": [{"key": "e", "arms": {"a": 60, "b": 60}}]})


def test_prefix_cursor_and_registering_again(config_path: Path) -> None:
    splitter = ts.Splitter(config_path)
    con = register(duckdb.connect(), splitter, prefix="ab_")
    want = splitter.assign("search-ui", "user-9", log_exposure=False)
    assert con.execute("SELECT ab_arm('search-ui', 'user-9')").fetchall() == [(want.arm,)]
    # Macros belong to one connection: a cursor registers its own.
    cursor = con.cursor()
    with pytest.raises(duckdb.Error, match="ab_arm"):
        cursor.execute("SELECT ab_arm('search-ui', 'user-9')").fetchall()
    register(cursor, splitter.snapshot, prefix="ab_")
    assert cursor.execute("SELECT ab_arm('search-ui', 'user-9')").fetchall() == [(want.arm,)]
    # Registering another configuration replaces the functions of this connection only.
    other = {"experiments": [{"key": "search-ui", "arms": {"x": 100}}]}
    register(cursor, other, prefix="ab_")
    assert cursor.execute("SELECT ab_arm('search-ui', 'user-9')").fetchall() == [("x",)]
    assert con.execute("SELECT ab_arm('search-ui', 'user-9')").fetchall() == [(want.arm,)]


def test_one_udf_call_for_the_three_functions(con: Any) -> None:
    plan = con.execute(
        "EXPLAIN SELECT ts_arm('search-ui', i), ts_bucket('search-ui', i), "
        "ts_reason('search-ui', i) FROM range(10) t(i)"
    ).fetchall()[0][1]
    assert plan.count("__ts_assign_") == 1, plan


# -- a property: random ids ----------------------------------------------------------------------

_PLAIN = ts.Experiment("plain", {"a": 20, "b": 30, "c": 50}, exposure=0.7)
_PLAIN_CON = None


def _plain_con() -> Any:
    global _PLAIN_CON
    if _PLAIN_CON is None:
        config = {
            "experiments": [{"key": "plain", "arms": {"a": 20, "b": 30, "c": 50}, "exposure": 0.7}]
        }
        _PLAIN_CON = register(duckdb.connect(), config)
    return _PLAIN_CON


@settings(max_examples=40, deadline=None)
@given(
    texts=st.lists(st.one_of(st.none(), st.text(max_size=40)), min_size=1, max_size=300),
    ints=st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), min_size=1, max_size=300),
)
def test_random_ids_match_the_scalar_path(texts: list[str | None], ints: list[int | None]) -> None:
    con = _plain_con()
    for values, typ in ((texts, pa.string()), (ints, pa.int64())):
        con.register("ids", pa.table({"row": np.arange(len(values)), "u": pa.array(values, typ)}))
        got = con.execute(
            "SELECT ts_arm('plain', u), ts_bucket('plain', u), ts_reason('plain', u) "
            "FROM ids ORDER BY row"
        ).fetchall()
        want = []
        for v in values:
            a = _PLAIN.assign(v)
            want.append((a.arm, a.bucket if v is not None else None, a.reason))
        assert got == want


# -- the extra -------------------------------------------------------------------------------------

BLOCKER = """
import sys

class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
"""


@pytest.mark.parametrize("blocked", ["duckdb", "pyarrow"])
def test_missing_extra_names_it(blocked: str) -> None:
    script = (
        f"BLOCKED = {{{blocked!r}}}\n"
        + BLOCKER
        + textwrap.dedent(
            """
        import json, sys
        import trafficsplit, trafficsplit.duckdb
        loaded = sorted(m for m in ("duckdb", "pyarrow") if m in sys.modules)
        try:
            trafficsplit.duckdb.register(None, {"experiments": []})
            message = None
        except ImportError as e:
            message = str(e)
        print(json.dumps({"loaded": loaded, "message": message}))
        """
        )
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["loaded"] == []
    assert result["message"] == (
        f"trafficsplit.duckdb.register needs {blocked}: pip install 'trafficsplit[duckdb]'"
    )
